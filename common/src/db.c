#include "es/db.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "es/log.h"

/* Backoff between connection attempts: 100 ms doubling to 2 s. */
#define DB_BACKOFF_FIRST_MS 100
#define DB_BACKOFF_MAX_MS 2000
/* With timeout_ms == 0 the single attempt still needs a bound: PQconnectPoll
 * ignores libpq's connect_timeout, and a black-holed host would hang. */
#define DB_SINGLE_ATTEMPT_MS 10000
/* es_db_tx: attempts for a serialization failure or a deadlock. */
#define DB_TX_ATTEMPTS 5
/* The outbox trigger notifies on 'es_outbox_<schema>', and a channel name is
 * an identifier of at most 63 bytes: 63 - strlen("es_outbox_"). */
#define DB_SCHEMA_MAX 53
/* A migration file is SQL written by hand; anything larger is a mistake. */
#define DB_MIGRATION_MAX_BYTES (16 * 1024 * 1024)

/* ------------------------------------------------------------------------ */
/* Built-in migrations: the tables every service needs before its own.      */
/* ------------------------------------------------------------------------ */

static const char migration_000[] =
	"CREATE TABLE IF NOT EXISTS es_outbox (\n"
	"  id           bigserial PRIMARY KEY,\n"
	"  topic        text        NOT NULL,\n"
	"  msg_key      text        NOT NULL,\n"
	"  event_id     text        NOT NULL UNIQUE,\n"
	"  event_type   text        NOT NULL,\n"
	"  payload      text        NOT NULL, -- the serialized CloudEvent (JSON)\n"
	"  created_at   timestamptz NOT NULL DEFAULT now(),\n"
	"  published_at timestamptz\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS es_outbox_unpublished ON es_outbox (id)\n"
	"  WHERE published_at IS NULL;\n"
	"\n"
	/* Wakes the relay (LISTEN es_outbox_<schema>) once per inserting
	 * statement; the relay reads the rows itself, so the payload is empty. */
	"CREATE OR REPLACE FUNCTION es_outbox_notify() RETURNS trigger\n"
	"  LANGUAGE plpgsql AS $$\n"
	"BEGIN\n"
	"  PERFORM pg_notify('es_outbox_' || TG_TABLE_SCHEMA, '');\n"
	"  RETURN NULL;\n"
	"END $$;\n"
	/* CREATE TRIGGER has no IF NOT EXISTS; the drop keeps the file
	 * re-runnable by hand. */
	"DROP TRIGGER IF EXISTS es_outbox_notify ON es_outbox;\n"
	"CREATE TRIGGER es_outbox_notify AFTER INSERT ON es_outbox\n"
	"  FOR EACH STATEMENT EXECUTE FUNCTION es_outbox_notify();\n"
	"\n"
	"CREATE TABLE IF NOT EXISTS es_inbox (\n"
	"  consumer     text        NOT NULL,\n"
	"  event_id     text        NOT NULL,\n"
	"  event_type   text,\n"
	"  processed_at timestamptz NOT NULL DEFAULT now(),\n"
	"  PRIMARY KEY (consumer, event_id)\n"
	");\n";

/*
 * What es_retention_prune finds old rows by (es/retention.h). BRIN, not
 * B-tree: rows are written in time order, so a summary per block range is
 * enough to find the old ones, and it costs an insert next to nothing,
 * where a B-tree on the inbox costs every consumed event an index entry.
 */
static const char migration_001[] =
	"CREATE INDEX IF NOT EXISTS es_inbox_processed_at ON es_inbox\n"
	"  USING brin (processed_at) WITH (autosummarize = on);\n"
	"CREATE INDEX IF NOT EXISTS es_outbox_published_at ON es_outbox\n"
	"  USING brin (published_at) WITH (autosummarize = on);\n";

/* A row the relay gave up on is parked, out of its way, with the reason,
 * until an operator retries it (es/outbox.h); the index finds the parked
 * row a later row of the same key must wait behind. */
static const char migration_002[] =
	"ALTER TABLE es_outbox ADD COLUMN IF NOT EXISTS attempts int NOT NULL DEFAULT 0;\n"
	"ALTER TABLE es_outbox ADD COLUMN IF NOT EXISTS parked_at timestamptz;\n"
	"ALTER TABLE es_outbox ADD COLUMN IF NOT EXISTS park_reason text;\n"
	"CREATE INDEX IF NOT EXISTS es_outbox_parked ON es_outbox (topic, msg_key, id)\n"
	"  WHERE parked_at IS NOT NULL;\n";

/* Applied in this order, before the service's files. Never edit an entry
 * once released: add a new one (003_eventshop_...) instead. */
static const struct es_migration builtin_migrations[] = {
	{"000_eventshop_outbox_inbox", migration_000},
	{"001_eventshop_retention", migration_001},
	{"002_eventshop_outbox_parking", migration_002},
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	/* A signal cutting the sleep short only makes the next attempt early. */
	nanosleep(&ts, NULL);
}

/* Copies a libpq message into dst on one line: libpq ends messages with a
 * newline and joins the failures of several hosts with newlines. */
static void copy_message(char *dst, size_t size, const char *msg)
{
	size_t n = 0;
	bool space = false;

	if (!size)
		return;
	for (; msg && *msg && n + 1 < size; msg++) {
		if (*msg == '\n' || *msg == '\r' || *msg == '\t' || *msg == ' ') {
			space = n > 0;
			continue;
		}
		if (space && n + 2 < size)
			dst[n++] = ' ';
		space = false;
		dst[n++] = *msg;
	}
	dst[n] = '\0';
}

static void set_sqlstate(struct es_db *db, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", state ? state : "");
}

/*
 * Fills errstr from a failed result (or from the connection when libpq gave
 * no result at all) and records the SQLSTATE. Only the primary message goes
 * into errstr: DETAIL lines may quote row values, which do not belong in logs.
 */
static void result_error(struct es_db *db, const PGresult *res, char *errstr, size_t errstr_size)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char msg[512];

	set_sqlstate(db, res);
	if (primary)
		copy_message(msg, sizeof(msg), primary);
	else if (res && *PQresultErrorMessage(res))
		copy_message(msg, sizeof(msg), PQresultErrorMessage(res));
	else if (db->conn)
		copy_message(msg, sizeof(msg), PQerrorMessage(db->conn));
	else
		snprintf(msg, sizeof(msg), "not connected");
	if (!msg[0])
		snprintf(msg, sizeof(msg), "unknown libpq error");

	if (db->sqlstate[0])
		snprintf(errstr, errstr_size, "%s (SQLSTATE %s)", msg, db->sqlstate);
	else
		snprintf(errstr, errstr_size, "%s", msg);
}

/*
 * Checks that res has the status the caller expects. On any other status
 * the result is cleared, errstr filled and NULL returned; otherwise res is
 * handed back to the caller, who then owns it.
 */
static PGresult *expect_status(struct es_db *db, PGresult *res, ExecStatusType want, char *errstr,
			       size_t errstr_size)
{
	ExecStatusType got = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (res && got == want) {
		db->sqlstate[0] = '\0';
		return res;
	}
	if (got == PGRES_FATAL_ERROR || got == PGRES_NONFATAL_ERROR || got == PGRES_BAD_RESPONSE) {
		result_error(db, res, errstr, errstr_size);
	} else {
		/* A statement of the wrong kind (a SELECT given to es_db_exec):
		 * a bug in the caller, not a server failure. */
		db->sqlstate[0] = '\0';
		snprintf(errstr, errstr_size, "unexpected result %s (expected %s)",
			 PQresStatus(got), PQresStatus(want));
	}
	PQclear(res);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Prepared statements                                                      */
/* ------------------------------------------------------------------------ */

/*
 * The statements prepared on one connection, by their text: an open
 * addressing table that only grows until the connection is replaced. The
 * texts are the services' own constants, so a few dozen per connection;
 * DB_PREPARED_MAX bounds it should a caller build SQL at run time.
 */
#define DB_PREPARED_SLOTS 512
#define DB_PREPARED_MAX 256

struct prepared {
	char *sql; /* owned copy; NULL: free slot */
	unsigned hash;
	char name[16]; /* "es_<n>" */
};

struct es_db_statements {
	struct prepared slot[DB_PREPARED_SLOTS];
	unsigned count; /* slots in use */
	unsigned next_id; /* names are never reused on a connection */
};

static unsigned hash_text(const char *s)
{
	unsigned h = 2166136261u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Only plannable statements are worth preparing; BEGIN, COMMIT, SET,
 * LISTEN and the like are not, and some cannot be prepared at all. */
static bool preparable(const char *sql)
{
	static const char *const kinds[] = {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"};

	while (*sql == ' ' || *sql == '\n' || *sql == '\t')
		sql++;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i]);

		if (!strncasecmp(sql, kinds[i], n) && !isalnum((unsigned char)sql[n]))
			return true;
	}
	return false;
}

/* Forgets every statement (the connection was replaced, or the server lost
 * them); the numbering goes on, so a name the server may still hold is not
 * reused. */
static void prepared_forget(struct es_db *db)
{
	if (!db->prepared)
		return;
	for (unsigned i = 0; i < DB_PREPARED_SLOTS; i++) {
		free(db->prepared->slot[i].sql);
		db->prepared->slot[i].sql = NULL;
	}
	db->prepared->count = 0;
}

/*
 * The slot of sql: its name when already prepared (*fresh false), or a new
 * slot to prepare it into (*fresh true, sql still NULL: filled only once the
 * server accepted it). NULL when sql is not to be prepared.
 */
static struct prepared *prepared_slot(struct es_db *db, const char *sql, bool *fresh)
{
	unsigned h, i;

	if (!preparable(sql))
		return NULL;
	if (!db->prepared) {
		db->prepared = calloc(1, sizeof(*db->prepared));
		if (!db->prepared)
			return NULL;
	}
	h = hash_text(sql);
	for (i = h % DB_PREPARED_SLOTS;; i = (i + 1) % DB_PREPARED_SLOTS) {
		struct prepared *p = &db->prepared->slot[i];

		if (!p->sql) {
			if (db->prepared->count >= DB_PREPARED_MAX)
				return NULL;
			p->hash = h;
			snprintf(p->name, sizeof(p->name), "es_%u", db->prepared->next_id);
			*fresh = true;
			return p;
		}
		if (p->hash == h && !strcmp(p->sql, sql)) {
			*fresh = false;
			return p;
		}
	}
}

/* ------------------------------------------------------------------------ */
/* Running a statement                                                      */
/* ------------------------------------------------------------------------ */

/*
 * A connection that lost track of a pipeline cannot be trusted with the
 * next statement: drop it, so that es_db_ok() says so and the caller's
 * reconnect logic takes over.
 */
static void drop_connection(struct es_db *db)
{
	PQfinish(db->conn);
	db->conn = NULL;
	db->begin_pending = false;
	prepared_forget(db);
}

/*
 * Sends up to three commands in one round trip: the BEGIN that es_db_begin
 * left pending, the statement's Parse when it is new on this connection,
 * and the statement itself. Returns the statement's result; the first
 * failure among the three is the one reported (the server skips the rest).
 */
static PGresult *run_pipeline(struct es_db *db, const char *sql, struct prepared *p, bool fresh,
			      int nparams, const char *const *params, char *errstr,
			      size_t errstr_size)
{
	PGconn *conn = db->conn;
	bool begin = db->begin_pending;
	PGresult *failed = NULL, *last = NULL, *res, *extra;
	char why[512];
	bool prepared = false;
	int sent = 0, i;

	db->begin_pending = false;
	if (!PQenterPipelineMode(conn))
		goto broken;
	if (begin) {
		if (!PQsendQueryParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
			goto broken;
		sent++;
	}
	if (p && fresh) {
		if (!PQsendPrepare(conn, p->name, sql, nparams, NULL))
			goto broken;
		sent++;
	}
	if (p ? !PQsendQueryPrepared(conn, p->name, nparams, params, NULL, NULL, 0)
	      : !PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
		goto broken;
	sent++;
	if (!PQpipelineSync(conn))
		goto broken;

	/* Each command's results end with a NULL; the Sync's result ends the
	 * pipeline. */
	for (i = 0; i < sent; i++) {
		res = PQgetResult(conn);
		if (!res)
			goto broken;
		while ((extra = PQgetResult(conn))) /* one result a command; to be sure */
			PQclear(extra);
		if (i == sent - 1) {
			last = res;
		} else if (!failed && PQresultStatus(res) != PGRES_COMMAND_OK) {
			failed = res;
		} else {
			if (p && fresh && i == sent - 2 && PQresultStatus(res) == PGRES_COMMAND_OK)
				prepared = true;
			PQclear(res);
		}
	}
	res = PQgetResult(conn);
	if (!res || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
		PQclear(res);
		goto broken;
	}
	PQclear(res);
	if (!PQexitPipelineMode(conn))
		goto broken;
	if (prepared) {
		/* The name is taken on the server even if the copy fails; the
		 * statement is prepared again, under a new name, next time. */
		p->sql = strdup(sql);
		db->prepared->count += p->sql != NULL;
		db->prepared->next_id++;
	}
	if (failed) {
		PQclear(last);
		return failed;
	}
	return last;

broken:
	PQclear(failed);
	PQclear(last);
	copy_message(why, sizeof(why),
		     *PQerrorMessage(conn) ? PQerrorMessage(conn) : "unexpected results");
	snprintf(errstr, errstr_size, "connection dropped, the pipeline failed: %s", why);
	drop_connection(db);
	/* A lost connection is what the caller should see: class 08. */
	snprintf(db->sqlstate, sizeof(db->sqlstate), "08006");
	return NULL;
}

static PGresult *run(struct es_db *db, const char *sql, int nparams, const char *const *params,
		     ExecStatusType want, char *errstr, size_t errstr_size)
{
	struct prepared *p;
	PGresult *res;
	bool fresh = false, retried = false;

again:
	if (!db->conn) {
		db->sqlstate[0] = '\0';
		snprintf(errstr, errstr_size, "not connected");
		return NULL;
	}
	p = prepared_slot(db, sql, &fresh);
	if (db->begin_pending || (p && fresh)) {
		res = run_pipeline(db, sql, p, fresh, nparams, params, errstr, errstr_size);
		if (!res)
			return NULL;
	} else if (p) {
		res = PQexecPrepared(db->conn, p->name, nparams, params, NULL, NULL, 0);
	} else {
		res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
	}
	res = expect_status(db, res, want, errstr, errstr_size);
	/* The server lost our statements (DEALLOCATE, DISCARD ALL): prepare
	 * them again. Outside a transaction that can be done at once; inside,
	 * the failure has aborted it and the caller retries the whole. */
	if (!res && !strcmp(db->sqlstate, "26000")) {
		prepared_forget(db);
		if (!retried && PQtransactionStatus(db->conn) == PQTRANS_IDLE) {
			retried = true;
			goto again;
		}
	}
	return res;
}

/* ------------------------------------------------------------------------ */
/* Connection                                                               */
/* ------------------------------------------------------------------------ */

/* Server notices (e.g. "relation already exists, skipping") would otherwise
 * be printed by libpq as plain text on stderr, breaking the JSON log. */
static void notice_receiver(void *arg, const PGresult *res)
{
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	enum es_log_level level = ES_LOG_DEBUG;

	if (severity && !strcmp(severity, "WARNING"))
		level = ES_LOG_WARN;
	es_log(level, NULL, "PostgreSQL %s: %s", severity ? severity : "notice",
	       primary ? primary : "");
}

/* Waits until the connection's socket is ready in the direction libpq asked
 * for. Returns 1 when ready, 0 at the deadline, -1 on error. */
static int wait_socket(PGconn *conn, PostgresPollingStatusType st, long long deadline)
{
	struct pollfd pfd = {
		.fd = PQsocket(conn),
		.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT,
	};

	if (pfd.fd < 0)
		return -1;
	for (;;) {
		long long left = deadline - now_ms();
		int n;

		/* Past the deadline, still look once: a refusal that has already
		 * arrived is a better reason to report than a timeout. */
		if (left < 0)
			left = 0;
		n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 1;
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/*
 * One connection attempt, abandoned at deadline. The non-blocking interface
 * is used so that the caller's timeout holds even when the host does not
 * answer at all. Returns the connection, or NULL with errstr filled.
 */
static PGconn *connect_once(const char *conninfo, long long deadline, bool *timed_out, char *errstr,
			    size_t errstr_size)
{
	/* fallback_application_name comes before dbname so that an
	 * application_name in the caller's conninfo wins. */
	const char *const keys[] = {"fallback_application_name", "dbname", NULL};
	const char *const values[] = {"eventshop", conninfo, NULL};
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	PGconn *conn;

	*timed_out = false;
	conn = PQconnectStartParams(keys, values, 1);
	if (!conn) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	while (PQstatus(conn) != CONNECTION_BAD) {
		int ready;

		if (st == PGRES_POLLING_OK) {
			PQsetNoticeReceiver(conn, notice_receiver, NULL);
			return conn;
		}
		if (st == PGRES_POLLING_FAILED)
			break;
		ready = wait_socket(conn, st, deadline);
		if (ready == 0) {
			*timed_out = true;
			snprintf(errstr, errstr_size, "timed out while connecting");
			PQfinish(conn);
			return NULL;
		}
		if (ready < 0) {
			snprintf(errstr, errstr_size, "waiting for the server: %s",
				 strerror(errno));
			PQfinish(conn);
			return NULL;
		}
		st = PQconnectPoll(conn);
	}
	copy_message(errstr, errstr_size, PQerrorMessage(conn));
	PQfinish(conn);
	return NULL;
}

/* Creates the schema unless it exists. Looking first means a role without
 * CREATE on the database can still use a schema made for it. */
static int ensure_schema(struct es_db *db, const char *quoted, char *errstr, size_t errstr_size)
{
	const char *params[1] = {db->schema};
	char sql[128];
	PGresult *res;
	int found;

	res = run(db, "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", 1, params,
		  PGRES_TUPLES_OK, errstr, errstr_size);
	if (!res)
		return -1;
	found = PQntuples(res) > 0;
	PQclear(res);
	if (found)
		return 0;

	snprintf(sql, sizeof(sql), "CREATE SCHEMA IF NOT EXISTS %s", quoted);
	if (es_db_exec(db, sql, 0, NULL, errstr, errstr_size) >= 0)
		return 0;
	/* Two services starting together race on pg_namespace's unique index:
	 * IF NOT EXISTS does not cover that, but the schema is there. */
	if (!strcmp(db->sqlstate, "23505") || !strcmp(db->sqlstate, "42P06"))
		return 0;
	return -1;
}

/*
 * Prepares a fresh session: the service's schema first in search_path, then
 * pg_catalog, so that unqualified names find our tables. Runs after every
 * (re)connect, since a new backend starts with the server's defaults.
 */
static int session_setup(struct es_db *db, char *errstr, size_t errstr_size)
{
	const char *params[1];
	char path[128];
	char *quoted;
	PGresult *res;
	int result = -1;

	quoted = PQescapeIdentifier(db->conn, db->schema, strlen(db->schema));
	if (!quoted) {
		copy_message(errstr, errstr_size, PQerrorMessage(db->conn));
		return -1;
	}
	if (ensure_schema(db, quoted, errstr, errstr_size))
		goto out;

	/* set_config() rather than SET: it takes the value as a parameter. */
	snprintf(path, sizeof(path), "%s, pg_catalog", quoted);
	params[0] = path;
	res = run(db, "SELECT pg_catalog.set_config('search_path', $1, false)", 1, params,
		  PGRES_TUPLES_OK, errstr, errstr_size);
	if (!res)
		goto out;
	PQclear(res);
	result = 0;
out:
	PQfreemem(quoted);
	return result;
}

/* Connects db->conn with the retry rule of es_db_connect. */
static int db_open(struct es_db *db, int timeout_ms, char *errstr, size_t errstr_size)
{
	long long start = now_ms();
	long long deadline = start + (timeout_ms > 0 ? timeout_ms : 0);
	long long delay = DB_BACKOFF_FIRST_MS;
	char why[512] = "";
	char before[512] = "";
	bool timed_out = false;
	int attempt;

	for (attempt = 1;; attempt++) {
		long long until = timeout_ms > 0 ? deadline : now_ms() + DB_SINGLE_ATTEMPT_MS;
		long long left;

		if (!timed_out)
			memcpy(before, why, sizeof(before));
		es_debug("connecting to PostgreSQL (attempt %d)", attempt);
		db->conn = connect_once(db->conninfo, until, &timed_out, why, sizeof(why));
		if (db->conn) {
			if (!session_setup(db, why, sizeof(why))) {
				db->sqlstate[0] = '\0';
				es_info("connected to PostgreSQL at %s:%s, database %s, schema %s",
					PQhost(db->conn), PQport(db->conn), PQdb(db->conn),
					db->schema);
				return 0;
			}
			/* Connected but refused (e.g. no right to create the
			 * schema): waiting will not change the answer. */
			if (!es_db_error_is_transient(db)) {
				PQfinish(db->conn);
				db->conn = NULL;
				snprintf(errstr, errstr_size, "setting up schema %s: %s",
					 db->schema, why);
				return -1;
			}
			PQfinish(db->conn);
			db->conn = NULL;
		}
		left = deadline - now_ms();
		if (left <= 0)
			break;
		if (delay > left)
			delay = left;
		es_warn("PostgreSQL connection attempt %d failed, retrying in %lld ms: %s", attempt,
			delay, why);
		sleep_ms(delay);
		delay = delay * 2 > DB_BACKOFF_MAX_MS ? DB_BACKOFF_MAX_MS : delay * 2;
	}
	db->sqlstate[0] = '\0';
	/* The last attempt was cut short by the deadline: the one before it
	 * saw how the server actually failed. */
	if (timed_out && before[0])
		snprintf(why + strlen(why), sizeof(why) - strlen(why), " (before that: %.400s)",
			 before);
	snprintf(errstr, errstr_size,
		 "could not connect to PostgreSQL (%d attempt%s in %lld ms): %s", attempt,
		 attempt == 1 ? "" : "s", now_ms() - start, why);
	return -1;
}

struct es_db *es_db_connect(const char *conninfo, const char *schema, int timeout_ms, char *errstr,
			    size_t errstr_size)
{
	PQconninfoOption *opts;
	struct es_db *db;
	char *parse_err = NULL;

	if (!conninfo || !schema || !*schema || strlen(schema) > DB_SCHEMA_MAX) {
		snprintf(errstr, errstr_size,
			 "es_db_connect: need a conninfo and a schema name "
			 "of 1 to %d bytes",
			 DB_SCHEMA_MAX);
		return NULL;
	}
	/* A malformed conninfo will never connect: say so now instead of
	 * retrying until the timeout. */
	opts = PQconninfoParse(conninfo, &parse_err);
	if (!opts) {
		char msg[256];

		copy_message(msg, sizeof(msg), parse_err ? parse_err : "out of memory");
		snprintf(errstr, errstr_size, "invalid PostgreSQL connection string: %s", msg);
		PQfreemem(parse_err);
		return NULL;
	}
	PQconninfoFree(opts);

	db = calloc(1, sizeof(*db));
	if (!db) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	db->conninfo = strdup(conninfo);
	db->schema = strdup(schema);
	if (!db->conninfo || !db->schema) {
		snprintf(errstr, errstr_size, "out of memory");
		es_db_free(db);
		return NULL;
	}
	if (db_open(db, timeout_ms, errstr, errstr_size)) {
		es_db_free(db);
		return NULL;
	}
	return db;
}

void es_db_free(struct es_db *db)
{
	if (!db)
		return;
	PQfinish(db->conn);
	prepared_forget(db);
	free(db->prepared);
	if (db->conninfo) {
		/* The conninfo may hold a password: do not leave it in freed
		 * memory for a core dump to show. */
		explicit_bzero(db->conninfo, strlen(db->conninfo));
		free(db->conninfo);
	}
	free(db->schema);
	free(db);
}

int es_db_reconnect(struct es_db *db, int timeout_ms, char *errstr, size_t errstr_size)
{
	drop_connection(db);
	return db_open(db, timeout_ms, errstr, errstr_size);
}

bool es_db_ok(const struct es_db *db)
{
	return db && db->conn && PQstatus(db->conn) == CONNECTION_OK;
}

/* ------------------------------------------------------------------------ */
/* Statements                                                               */
/* ------------------------------------------------------------------------ */

PGresult *es_db_query(struct es_db *db, const char *sql, int nparams, const char *const *params,
		      char *errstr, size_t errstr_size)
{
	return run(db, sql, nparams, params, PGRES_TUPLES_OK, errstr, errstr_size);
}

long es_db_exec(struct es_db *db, const char *sql, int nparams, const char *const *params,
		char *errstr, size_t errstr_size)
{
	PGresult *res;
	long n = 0;

	res = run(db, sql, nparams, params, PGRES_COMMAND_OK, errstr, errstr_size);
	if (!res)
		return -1;
	/* "" for commands that report no count (BEGIN, CREATE ...). */
	n = strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return n < 0 ? 0 : n;
}

int es_db_exec_one(struct es_db *db, const char *sql, int nparams, const char *const *params,
		   char *errstr, size_t errstr_size)
{
	long n = es_db_exec(db, sql, nparams, params, errstr, errstr_size);
	const char *space;

	if (n == 1)
		return 0;
	if (n >= 0) {
		/* No SQL error: the data was not what the caller knew it to
		 * be. The statement's first words say which one. */
		space = strchr(sql, ' ');
		space = space ? strchr(space + 1, ' ') : NULL;
		space = space ? strchr(space + 1, ' ') : NULL;
		snprintf(errstr, errstr_size, "%.*s ...: %ld rows where one was expected",
			 space ? (int)(space - sql) : (int)strlen(sql), sql, n);
	}
	return -1;
}

const char *es_db_get(const PGresult *res, int row, const char *col)
{
	int field;

	if (!res || !col || row < 0 || row >= PQntuples(res))
		return NULL;
	field = PQfnumber(res, col);
	if (field < 0 || PQgetisnull(res, row, field))
		return NULL;
	return PQgetvalue(res, row, field);
}

bool es_db_error_is_transient(const struct es_db *db)
{
	const char *s = db->sqlstate;

	/* No SQLSTATE: libpq's own failure, which is transient exactly when
	 * the connection is gone. */
	if (!s[0])
		return !es_db_ok(db);
	if (!strncmp(s, "08", 2))
		return true;
	/* 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect
	 * now, 57P05 idle session timeout; but not 57P04 (database dropped),
	 * which no retry will fix. */
	if (!strncmp(s, "57P", 3))
		return strcmp(s, "57P04") != 0;
	/* 26000: a prepared statement the server lost; prepared again on
	 * the next attempt. */
	return !strcmp(s, "40001") || !strcmp(s, "40P01") || !strcmp(s, "26000");
}

bool es_db_error_is_unique_violation(const struct es_db *db)
{
	return !strcmp(db->sqlstate, "23505");
}

/* ------------------------------------------------------------------------ */
/* Transactions                                                             */
/* ------------------------------------------------------------------------ */

int es_db_begin(struct es_db *db, char *errstr, size_t errstr_size)
{
	if (!es_db_ok(db)) {
		db->sqlstate[0] = '\0';
		snprintf(errstr, errstr_size, "BEGIN: not connected");
		return -1;
	}
	/* The server only warns about a nested BEGIN, and the inner COMMIT
	 * would then commit the outer work early. */
	if (es_db_in_transaction(db)) {
		db->sqlstate[0] = '\0';
		snprintf(errstr, errstr_size, "BEGIN: a transaction is already open");
		return -1;
	}
	db->begin_pending = true;
	return 0;
}

/* Sends a pending BEGIN on its own, for code that talks to libpq directly. */
static int begin_now(struct es_db *db, char *errstr, size_t errstr_size)
{
	if (!db->begin_pending)
		return 0;
	db->begin_pending = false;
	return es_db_exec(db, "BEGIN", 0, NULL, errstr, errstr_size) < 0 ? -1 : 0;
}

bool es_db_in_transaction(const struct es_db *db)
{
	return db->begin_pending || (es_db_ok(db) && PQtransactionStatus(db->conn) != PQTRANS_IDLE);
}

int es_db_commit(struct es_db *db, char *errstr, size_t errstr_size)
{
	PGresult *res;
	int rolled_back;

	if (db->begin_pending) { /* nothing was sent: nothing to commit */
		db->begin_pending = false;
		return 0;
	}
	res = run(db, "COMMIT", 0, NULL, PGRES_COMMAND_OK, errstr, errstr_size);
	if (!res)
		return -1;
	/* COMMIT of a transaction that already failed "succeeds" with the tag
	 * ROLLBACK: the work is gone, and the caller must hear about it. */
	rolled_back = !strcmp(PQcmdStatus(res), "ROLLBACK");
	PQclear(res);
	if (rolled_back) {
		snprintf(db->sqlstate, sizeof(db->sqlstate), "25P02");
		snprintf(errstr, errstr_size,
			 "COMMIT: the transaction had failed and was rolled "
			 "back (SQLSTATE 25P02)");
		return -1;
	}
	return 0;
}

void es_db_rollback(struct es_db *db)
{
	db->begin_pending = false;
	/* Runs libpq directly so that db->sqlstate keeps the failure that made
	 * the caller roll back. */
	if (!es_db_ok(db) || PQtransactionStatus(db->conn) == PQTRANS_IDLE)
		return;
	PQclear(PQexecParams(db->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0));
}

static bool tx_retryable(const struct es_db *db)
{
	return !strcmp(db->sqlstate, "40001") || !strcmp(db->sqlstate, "40P01");
}

int es_db_tx(struct es_db *db, es_db_tx_fn fn, void *arg, char *errstr, size_t errstr_size)
{
	int attempt;

	for (attempt = 1;; attempt++) {
		int rc;

		if (es_db_begin(db, errstr, errstr_size))
			return -1;
		snprintf(errstr, errstr_size, "transaction rolled back");
		rc = fn(db, arg, errstr, errstr_size);
		if (!rc)
			rc = es_db_commit(db, errstr, errstr_size);
		if (!rc)
			return 0;
		es_db_rollback(db);
		if (!tx_retryable(db) || attempt >= DB_TX_ATTEMPTS)
			return -1;
		es_warn("retrying transaction (attempt %d of %d): %s", attempt + 1, DB_TX_ATTEMPTS,
			errstr);
		/* The other party of a deadlock retries too: wait a little,
		 * longer each time and not in step with it. */
		sleep_ms(attempt * 10 + now_ms() % 10);
	}
}

/* ------------------------------------------------------------------------ */
/* Migrations                                                               */
/* ------------------------------------------------------------------------ */

/* Holds or releases the session-level advisory lock for this schema. */
static int migrate_lock(struct es_db *db, bool take, char *errstr, size_t errstr_size)
{
	const char *params[1] = {db->schema};
	PGresult *res;

	res = run(db,
		  take ? "SELECT pg_advisory_lock(hashtext('es_migrate:' || $1))"
		       : "SELECT pg_advisory_unlock(hashtext('es_migrate:' || $1))",
		  1, params, PGRES_TUPLES_OK, errstr, errstr_size);
	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

/* Releases the lock without disturbing the caller's errstr and sqlstate.
 * On a dead connection there is nothing to do: the server released the lock
 * with the session. */
static void migrate_unlock(struct es_db *db)
{
	char saved[sizeof(db->sqlstate)];
	char err[256];

	if (!es_db_ok(db))
		return;
	memcpy(saved, db->sqlstate, sizeof(saved));
	if (migrate_lock(db, false, err, sizeof(err)))
		es_warn("releasing the migration lock: %s", err);
	memcpy(db->sqlstate, saved, sizeof(saved));
}

/* Returns 1 when name is recorded in es_migrations, 0 when not, -1. */
static int migration_applied(struct es_db *db, const char *name, char *errstr, size_t errstr_size)
{
	const char *params[1] = {name};
	PGresult *res;
	int found;

	res = run(db, "SELECT 1 FROM es_migrations WHERE name = $1", 1, params, PGRES_TUPLES_OK,
		  errstr, errstr_size);
	if (!res)
		return -1;
	found = PQntuples(res) > 0;
	PQclear(res);
	return found;
}

/* The line of a 1-based character position in sql, for error messages. */
static int line_of(const char *sql, const char *position)
{
	long pos = position ? strtol(position, NULL, 10) : 0;
	int line = 1;

	for (; *sql && pos > 1; sql++) {
		/* The server counts characters, not bytes. */
		if (((unsigned char)*sql & 0xC0) != 0x80)
			pos--;
		if (*sql == '\n')
			line++;
	}
	return line;
}

/*
 * Runs a migration's body. This is the one place that uses PQexec, and the
 * one statement that is not parameterized: a migration holds several
 * statements, which PQexecParams refuses. That is safe only because the text
 * is a file shipped with the service (or a constant of this library), never
 * input from outside.
 */
static int migration_run_sql(struct es_db *db, const char *sql, char *errstr, size_t errstr_size)
{
	PGresult *res;
	ExecStatusType st;
	int result = -1;

	if (begin_now(db, errstr, errstr_size))
		return -1;
	res = PQexec(db->conn, sql);
	st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
		/* A COMMIT or ROLLBACK in the file would end our transaction
		 * and let the record of the file drift from its effect. */
		if (PQtransactionStatus(db->conn) != PQTRANS_INTRANS) {
			db->sqlstate[0] = '\0';
			snprintf(errstr, errstr_size,
				 "must not contain BEGIN, COMMIT or ROLLBACK (each migration runs "
				 "in its own transaction)");
		} else {
			db->sqlstate[0] = '\0';
			result = 0;
		}
	} else if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR ||
		   st == PGRES_BAD_RESPONSE) {
		char msg[512];
		const char *position = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION)
					   : NULL;

		result_error(db, res, msg, sizeof(msg));
		if (position)
			snprintf(errstr, errstr_size, "line %d: %s", line_of(sql, position), msg);
		else
			snprintf(errstr, errstr_size, "%s", msg);
	} else {
		db->sqlstate[0] = '\0';
		snprintf(errstr, errstr_size, "unexpected result %s", PQresStatus(st));
	}
	PQclear(res);
	return result;
}

/* Applies one migration in its own transaction, unless already recorded.
 * Returns 1 when applied, 0 when skipped, -1 (errstr names the migration). */
static int migration_apply(struct es_db *db, const char *name, const char *sql, char *errstr,
			   size_t errstr_size)
{
	const char *params[1] = {name};
	char err[1024];
	int applied;

	applied = migration_applied(db, name, err, sizeof(err));
	if (applied < 0)
		goto fail;
	if (applied)
		return 0;
	if (es_db_begin(db, err, sizeof(err)))
		goto fail;
	if (migration_run_sql(db, sql, err, sizeof(err)) ||
	    es_db_exec(db, "INSERT INTO es_migrations (name) VALUES ($1)", 1, params, err,
		       sizeof(err)) < 0 ||
	    es_db_commit(db, err, sizeof(err))) {
		es_db_rollback(db);
		goto fail;
	}
	es_info("applied migration %s", name);
	return 1;
fail:
	snprintf(errstr, errstr_size, "migration %s: %s", name, err);
	return -1;
}

static bool migration_file_name(const char *name)
{
	size_t len = strlen(name);

	/* NNN_name.sql: three digits keep plain name order numeric. */
	return len > 8 && name[0] >= '0' && name[0] <= '9' && name[1] >= '0' && name[1] <= '9' &&
	       name[2] >= '0' && name[2] <= '9' && name[3] == '_' &&
	       !strcmp(name + len - 4, ".sql");
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

/* Lists dir's migration files in name order. The caller frees the array
 * and its strings (free_names). Returns 0, or -1 with errstr filled. */
static int list_migrations(const char *dir, char ***out, size_t *count, char *errstr,
			   size_t errstr_size)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	d = opendir(dir);
	if (!d) {
		snprintf(errstr, errstr_size, "migrations directory %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		if (!migration_file_name(de->d_name))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **grown = realloc(names, ncap * sizeof(*names));

			if (!grown)
				goto oom;
			names = grown;
			cap = ncap;
		}
		names[n] = strdup(de->d_name);
		if (!names[n])
			goto oom;
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), compare_names);
	*out = names;
	*count = n;
	return 0;
oom:
	closedir(d);
	free_names(names, n);
	snprintf(errstr, errstr_size, "out of memory");
	return -1;
}

/* Reads a whole migration file into a new string (caller frees). */
static char *read_migration(const char *dir, const char *name, char *errstr, size_t errstr_size)
{
	char path[PATH_MAX];
	char *buf = NULL;
	size_t len = 0, cap = 0;
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
		snprintf(errstr, errstr_size, "path too long");
		return NULL;
	}
	f = fopen(path, "rb");
	if (!f) {
		snprintf(errstr, errstr_size, "cannot open: %s", strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t got;

		if (cap - len < 4096 + 1) {
			size_t ncap = cap ? cap * 2 : 16384;
			char *grown;

			if (ncap > DB_MIGRATION_MAX_BYTES + 1) {
				snprintf(errstr, errstr_size, "larger than %d bytes",
					 DB_MIGRATION_MAX_BYTES);
				goto fail;
			}
			grown = realloc(buf, ncap);
			if (!grown) {
				snprintf(errstr, errstr_size, "out of memory");
				goto fail;
			}
			buf = grown;
			cap = ncap;
		}
		got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(errstr, errstr_size, "read error");
		goto fail;
	}
	fclose(f);
	buf[len] = '\0';
	/* PQexec takes a C string: a NUL would silently cut the file short. */
	if (strlen(buf) != len) {
		snprintf(errstr, errstr_size, "contains a NUL byte");
		free(buf);
		return NULL;
	}
	return buf;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

static int migrate_dir(struct es_db *db, const char *dir, char *errstr, size_t errstr_size)
{
	char **names = NULL;
	size_t count = 0;
	int applied = 0;

	if (list_migrations(dir, &names, &count, errstr, errstr_size))
		return -1;
	for (size_t i = 0; i < count; i++) {
		char err[512];
		char *sql = read_migration(dir, names[i], err, sizeof(err));
		int rc;

		if (!sql) {
			db->sqlstate[0] = '\0';
			snprintf(errstr, errstr_size, "migration %s: %s", names[i], err);
			applied = -1;
			break;
		}
		rc = migration_apply(db, names[i], sql, errstr, errstr_size);
		free(sql);
		if (rc < 0) {
			applied = -1;
			break;
		}
		applied += rc;
	}
	free_names(names, count);
	return applied;
}

static int migrate(struct es_db *db, const char *dir, const struct es_migration *list, size_t n,
		   char *errstr, size_t errstr_size)
{
	int applied = 0;
	int result = -1;

	if (!es_db_ok(db)) {
		db->sqlstate[0] = '\0';
		snprintf(errstr, errstr_size, "migrate: not connected");
		return -1;
	}
	/* Session-level, so it spans the one transaction per migration. */
	if (migrate_lock(db, true, errstr, errstr_size))
		return -1;
	if (es_db_exec(db,
		       "CREATE TABLE IF NOT EXISTS es_migrations ("
		       " name text PRIMARY KEY,"
		       " applied_at timestamptz NOT NULL DEFAULT now())",
		       0, NULL, errstr, errstr_size) < 0)
		goto out;
	for (size_t i = 0; i < sizeof(builtin_migrations) / sizeof(builtin_migrations[0]); i++) {
		int rc = migration_apply(db, builtin_migrations[i].name, builtin_migrations[i].sql,
					 errstr, errstr_size);

		if (rc < 0)
			goto out;
		applied += rc;
	}
	if (dir) {
		int rc = migrate_dir(db, dir, errstr, errstr_size);

		if (rc < 0)
			goto out;
		applied += rc;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = migration_apply(db, list[i].name, list[i].sql, errstr, errstr_size);

		if (rc < 0)
			goto out;
		applied += rc;
	}
	result = applied;
	es_info("migrations of schema %s: %d applied", db->schema, applied);
out:
	migrate_unlock(db);
	return result;
}

int es_db_migrate(struct es_db *db, const char *dir, char *errstr, size_t errstr_size)
{
	return migrate(db, dir, NULL, 0, errstr, errstr_size);
}

int es_db_migrate_list(struct es_db *db, const struct es_migration *list, size_t n, char *errstr,
		       size_t errstr_size)
{
	return migrate(db, NULL, list, n, errstr, errstr_size);
}
