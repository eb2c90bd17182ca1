#include "db_private.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/clock.h"
#include "es/log.h"

/* Backoff between connection attempts: 100 ms doubling to 2 s. */
#define DB_BACKOFF_FIRST_MS 100
#define DB_BACKOFF_MAX_MS 2000
/* With timeout_ms == 0 the single attempt still needs a bound: PQconnectPoll
 * ignores libpq's connect_timeout, and a black-holed host would hang. */
#define DB_SINGLE_ATTEMPT_MS 10000
/* The outbox trigger notifies on 'es_outbox_<schema>', and a channel name is
 * an identifier of at most 63 bytes: 63 - strlen("es_outbox_"). */
#define DB_SCHEMA_MAX 53

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* Copies a libpq message into dst on one line: libpq ends messages with a
 * newline and joins the failures of several hosts with newlines. */
void db_copy_message(char *dst, size_t size, const char *msg)
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
void db_result_error(struct es_db *db, const PGresult *res, char *errstr, size_t errstr_size)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char msg[512];

	set_sqlstate(db, res);
	if (primary)
		db_copy_message(msg, sizeof(msg), primary);
	else if (res && *PQresultErrorMessage(res))
		db_copy_message(msg, sizeof(msg), PQresultErrorMessage(res));
	else if (db->conn)
		db_copy_message(msg, sizeof(msg), PQerrorMessage(db->conn));
	else
		snprintf(msg, sizeof(msg), "not connected");
	if (!msg[0])
		snprintf(msg, sizeof(msg), "unknown libpq error");

	if (db->sqlstate[0])
		snprintf(errstr, errstr_size, "%s (SQLSTATE %s)", msg, db->sqlstate);
	else
		snprintf(errstr, errstr_size, "%s", msg);
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
		long long left = deadline - es_monotonic_ms();
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
	db_copy_message(errstr, errstr_size, PQerrorMessage(conn));
	PQfinish(conn);
	return NULL;
}

/*
 * A service's schema belongs to the service's role (deploy/postgres/
 * roles.sql). A session of another role that may act as that one (a
 * superuser, an operator granted the role) takes it on with SET ROLE, so
 * that what it creates (a migration's tables) belongs to the service and it
 * has the service's rights, no more. The daemons log in as the owner, for
 * whom this does nothing.
 */
static int act_as_owner(struct es_db *db, const char *owner, char *errstr, size_t errstr_size)
{
	const char *params[1] = {owner};
	PGresult *res;

	res = db_run(db, "SELECT pg_catalog.set_config('role', $1, false)", 1, params,
		     PGRES_TUPLES_OK, errstr, errstr_size);
	if (!res)
		return -1;
	PQclear(res);
	es_debug("acting as role %s, the owner of schema %s", owner, db->schema);
	return 0;
}

/* Creates the schema unless it exists. Looking first means a role without
 * CREATE on the database can still use a schema made for it. */
static int ensure_schema(struct es_db *db, const char *quoted, char *errstr, size_t errstr_size)
{
	const char *params[1] = {db->schema};
	char sql[128], owner[64] = "";
	PGresult *res;
	int found;

	/* Only a login role that is no superuser is a service's: not
	 * pg_database_owner, which owns public. */
	res = db_run(db,
		     "SELECT r.rolname AS owner, r.rolname <> current_user AND r.rolcanlogin "
		     "AND NOT r.rolsuper AND pg_catalog.pg_has_role(r.oid, 'MEMBER') AS adopt "
		     "FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r "
		     "ON r.oid = n.nspowner WHERE n.nspname = $1",
		     1, params, PGRES_TUPLES_OK, errstr, errstr_size);
	if (!res)
		return -1;
	found = PQntuples(res) > 0;
	if (found && !strcmp(PQgetvalue(res, 0, 1), "t"))
		snprintf(owner, sizeof(owner), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (owner[0])
		return act_as_owner(db, owner, errstr, errstr_size);
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
		db_copy_message(errstr, errstr_size, PQerrorMessage(db->conn));
		return -1;
	}
	if (ensure_schema(db, quoted, errstr, errstr_size))
		goto out;

	/* set_config() rather than SET: it takes the value as a parameter. */
	snprintf(path, sizeof(path), "%s, pg_catalog", quoted);
	params[0] = path;
	res = db_run(db, "SELECT pg_catalog.set_config('search_path', $1, false)", 1, params,
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
	long long start = es_monotonic_ms();
	long long deadline = start + (timeout_ms > 0 ? timeout_ms : 0);
	long long delay = DB_BACKOFF_FIRST_MS;
	char why[512] = "";
	char before[512] = "";
	bool timed_out = false;
	int attempt;

	for (attempt = 1;; attempt++) {
		long long until = timeout_ms > 0 ? deadline
						 : es_monotonic_ms() + DB_SINGLE_ATTEMPT_MS;
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
				/* A role may not create schemas (least privilege):
				 * say who makes them. */
				snprintf(errstr, errstr_size, "setting up schema %s: %s%s",
					 db->schema, why,
					 strcmp(db->sqlstate, "42501")
						 ? ""
						 : "; the schema must exist and belong to this "
						   "role (deploy/postgres/roles.sql makes it)");
				return -1;
			}
			PQfinish(db->conn);
			db->conn = NULL;
		}
		left = deadline - es_monotonic_ms();
		if (left <= 0)
			break;
		if (delay > left)
			delay = left;
		es_warn("PostgreSQL connection attempt %d failed, retrying in %lld ms: %s", attempt,
			delay, why);
		es_sleep_ms(delay);
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
		 attempt == 1 ? "" : "s", es_monotonic_ms() - start, why);
	return -1;
}

/*
 * libpq's complaints about a malformed conninfo quote the part they could
 * not read, which may be a password ("invalid percent-encoded token:
 * \"s3%cret\""). Every quoted part becomes "..." except the name of an
 * option, which is what the reader needs to mend the string.
 */
static void redact_quoted(char *msg)
{
	char *out = msg;
	const char *in = msg;

	while (*in) {
		const char *end;
		size_t done = (size_t)(out - msg);
		bool name = (done >= 7 && !strncmp(out - 7, "option ", 7)) ||
			    (done >= 11 && !strncmp(out - 11, "parameter: ", 11));

		if (*in != '"' || !(end = strchr(in + 1, '"')) || name) {
			if (*in == '"' && name && (end = strchr(in + 1, '"'))) {
				size_t n = (size_t)(end - in) + 1;

				memmove(out, in, n);
				out += n;
				in += n;
				continue;
			}
			*out++ = *in++;
			continue;
		}
		/* "..." is never longer than what it replaces plus the quotes
		 * around it, except for "" and "x": keep those as they are. */
		if (end - in < 4) {
			size_t n = (size_t)(end - in) + 1;

			memmove(out, in, n);
			out += n;
		} else {
			memcpy(out, "\"...\"", 5);
			out += 5;
		}
		in = end + 1;
	}
	*out = '\0';
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

		db_copy_message(msg, sizeof(msg), parse_err ? parse_err : "out of memory");
		redact_quoted(msg);
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
	db_statements_free(db);
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
	db_drop_connection(db);
	return db_open(db, timeout_ms, errstr, errstr_size);
}

bool es_db_ok(const struct es_db *db)
{
	return db && db->conn && PQstatus(db->conn) == CONNECTION_OK;
}

/*
 * A connection that lost track of a pipeline cannot be trusted with the
 * next statement: drop it, so that es_db_ok() says so and the caller's
 * reconnect logic takes over.
 */
void db_drop_connection(struct es_db *db)
{
	PQfinish(db->conn);
	db->conn = NULL;
	db->begin_pending = false;
	db->commit_hook_due = false;
	db_statements_forget(db);
}

/* ------------------------------------------------------------------------ */
/* Statements                                                               */
/* ------------------------------------------------------------------------ */

PGresult *es_db_query(struct es_db *db, const char *sql, int nparams, const char *const *params,
		      char *errstr, size_t errstr_size)
{
	return db_run(db, sql, nparams, params, PGRES_TUPLES_OK, errstr, errstr_size);
}

long es_db_exec(struct es_db *db, const char *sql, int nparams, const char *const *params,
		char *errstr, size_t errstr_size)
{
	PGresult *res;
	long n = 0;

	res = db_run(db, sql, nparams, params, PGRES_COMMAND_OK, errstr, errstr_size);
	if (!res)
		return -1;
	/* "" for commands that report no count (BEGIN, CREATE ...). */
	n = strtol(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return n < 0 ? 0 : n;
}

long es_db_exec_rows(struct es_db *db, const char *sql, const json_t *rows, int nparams,
		     const char *const *params, char *errstr, size_t errstr_size)
{
	const char *all[1 + ES_DB_ROWS_PARAMS];
	char *text;
	long n;

	if (nparams < 0 || nparams > ES_DB_ROWS_PARAMS) {
		snprintf(errstr, errstr_size, "es_db_exec_rows: %d params, at most %d", nparams,
			 ES_DB_ROWS_PARAMS);
		return -1;
	}
	if (json_array_size(rows) == 0)
		return 0;
	text = json_dumps(rows, JSON_COMPACT);
	if (!text) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	all[0] = text;
	for (int i = 0; i < nparams; i++)
		all[1 + i] = params[i];
	n = es_db_exec(db, sql, 1 + nparams, all, errstr, errstr_size);
	free(text);
	return n;
}

int es_db_lock_keys(struct es_db *db, const char *space, const char *const *keys, size_t n,
		    char *errstr, size_t errstr_size)
{
	json_t *arr = json_array();
	char *text = NULL;
	PGresult *res;

	for (size_t i = 0; arr && i < n; i++) {
		if (json_array_append_new(arr, json_string(keys[i]))) {
			json_decref(arr);
			arr = NULL;
		}
	}
	text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
	json_decref(arr);
	if (!text) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	/* The two-key form keeps these locks apart from the library's
	 * one-key ones (the relay's, the migrations'). */
	res = es_db_query(db,
			  "SELECT count(pg_advisory_xact_lock(hashtext($2), hashtext(k.key))) AS n"
			  " FROM (SELECT DISTINCT t.key COLLATE \"C\" AS key"
			  " FROM json_array_elements_text($1::json) AS t(key) ORDER BY 1) k",
			  2, (const char *const[]){text, space}, errstr, errstr_size);
	free(text);
	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

/* errstr when a statement that ran changed got rows where want were
 * expected: the data was not what the caller knew it to be (no retry will
 * change that: es_db_sqlstate() is ""). The statement's first words say
 * which one. */
static void unexpected_rows(const char *sql, long got, size_t want, char *errstr,
			    size_t errstr_size)
{
	const char *space;
	int words;

	if (!strncmp(sql, ES_DB_PLAN_EACH_RUN, strlen(ES_DB_PLAN_EACH_RUN)))
		sql += strlen(ES_DB_PLAN_EACH_RUN);
	space = strchr(sql, ' ');
	space = space ? strchr(space + 1, ' ') : NULL;
	space = space ? strchr(space + 1, ' ') : NULL;
	words = space ? (int)(space - sql) : (int)strlen(sql);
	if (want == 1)
		snprintf(errstr, errstr_size, "%.*s ...: %ld rows where one was expected", words,
			 sql, got);
	else
		snprintf(errstr, errstr_size, "%.*s ...: %ld rows where %zu were expected", words,
			 sql, got, want);
}

int es_db_exec_one(struct es_db *db, const char *sql, int nparams, const char *const *params,
		   char *errstr, size_t errstr_size)
{
	long n = es_db_exec(db, sql, nparams, params, errstr, errstr_size);

	if (n == 1)
		return 0;
	if (n >= 0)
		unexpected_rows(sql, n, 1, errstr, errstr_size);
	return -1;
}

int es_db_exec_rows_all(struct es_db *db, const char *sql, const json_t *rows, char *errstr,
			size_t errstr_size)
{
	long n = es_db_exec_rows(db, sql, rows, 0, NULL, errstr, errstr_size);

	if (n >= 0 && (size_t)n == json_array_size(rows))
		return 0;
	if (n >= 0)
		unexpected_rows(sql, n, json_array_size(rows), errstr, errstr_size);
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
/* What callers may know of the connection                                  */
/* ------------------------------------------------------------------------ */

const char *es_db_sqlstate(const struct es_db *db)
{
	return db->sqlstate;
}

int es_db_backend_pid(const struct es_db *db)
{
	return es_db_ok(db) ? PQbackendPID(db->conn) : 0;
}

int es_db_listen(struct es_db *db, const char *channel, char *errstr, size_t errstr_size)
{
	char sql[160];
	char *ident;
	long rc;

	if (!es_db_ok(db)) {
		db->sqlstate[0] = '\0';
		snprintf(errstr, errstr_size, "LISTEN: not connected");
		return -1;
	}
	/* LISTEN takes an identifier, not a parameter: quote it. */
	ident = PQescapeIdentifier(db->conn, channel, strlen(channel));
	if (!ident || strlen(ident) + sizeof("LISTEN ") > sizeof(sql)) {
		PQfreemem(ident);
		db->sqlstate[0] = '\0';
		snprintf(errstr, errstr_size, "LISTEN: cannot quote channel name %.64s", channel);
		return -1;
	}
	snprintf(sql, sizeof(sql), "LISTEN %s", ident);
	PQfreemem(ident);
	rc = es_db_exec(db, sql, 0, NULL, errstr, errstr_size);
	return rc < 0 ? -1 : 0;
}

/* Frees the notifications libpq has read; true when there was one. */
static bool take_notifies(PGconn *conn)
{
	PGnotify *n;
	bool any = false;

	while ((n = PQnotifies(conn))) {
		any = true;
		PQfreemem(n);
	}
	return any;
}

int es_db_wait_notify(struct es_db *db, int wake_fd, int timeout_ms)
{
	struct pollfd pfd[2];
	bool woken;

	if (!es_db_ok(db))
		return -1;
	/* A notification that came in with the results of the last query
	 * already sits in libpq's buffer, where poll() cannot see it: look
	 * there first. */
	if (take_notifies(db->conn))
		return 1;
	pfd[0] = (struct pollfd){.fd = PQsocket(db->conn), .events = POLLIN};
	/* poll() ignores an entry whose fd is negative. */
	pfd[1] = (struct pollfd){.fd = wake_fd, .events = POLLIN};
	if (poll(pfd, 2, timeout_ms) <= 0)
		return 0;
	woken = wake_fd >= 0 && (pfd[1].revents & POLLIN);
	if ((pfd[0].revents & POLLIN) && !PQconsumeInput(db->conn))
		return -1;
	return take_notifies(db->conn) || woken ? 1 : 0;
}

void es_db_set_commit_hook(struct es_db *db, es_db_commit_fn *fn, void *arg)
{
	db->commit_hook = fn;
	db->commit_hook_arg = arg;
	db->commit_hook_due = false;
}

void es_db_after_commit(struct es_db *db)
{
	if (!db->commit_hook)
		return;
	if (es_db_in_transaction(db))
		db->commit_hook_due = true;
	else
		db->commit_hook(db->commit_hook_arg, db);
}
