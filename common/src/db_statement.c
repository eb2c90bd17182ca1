#include "db_private.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
		db_result_error(db, res, errstr, errstr_size);
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
 * LISTEN and the like are not, and some cannot be prepared at all. Nor is
 * one that asks to be planned on every run (es/db.h). */
static bool preparable(const char *sql)
{
	static const char *const kinds[] = {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"};

	if (!strncmp(sql, ES_DB_PLAN_EACH_RUN, strlen(ES_DB_PLAN_EACH_RUN)))
		return false;
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
void db_statements_forget(struct es_db *db)
{
	if (!db->prepared)
		return;
	for (unsigned i = 0; i < DB_PREPARED_SLOTS; i++) {
		free(db->prepared->slot[i].sql);
		db->prepared->slot[i].sql = NULL;
	}
	db->prepared->count = 0;
}

void db_statements_free(struct es_db *db)
{
	db_statements_forget(db);
	free(db->prepared);
	db->prepared = NULL;
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
	db_copy_message(why, sizeof(why),
			*PQerrorMessage(conn) ? PQerrorMessage(conn) : "unexpected results");
	snprintf(errstr, errstr_size, "connection dropped, the pipeline failed: %s", why);
	db_drop_connection(db);
	/* A lost connection is what the caller should see: class 08. */
	snprintf(db->sqlstate, sizeof(db->sqlstate), "08006");
	return NULL;
}

PGresult *db_run(struct es_db *db, const char *sql, int nparams, const char *const *params,
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
		db_statements_forget(db);
		if (!retried && PQtransactionStatus(db->conn) == PQTRANS_IDLE) {
			retried = true;
			goto again;
		}
	}
	return res;
}
