#include "db_private.h"

#include <stdio.h>
#include <string.h>

#include "es/clock.h"
#include "es/log.h"

/* es_db_tx: attempts for a serialization failure or a deadlock. */
#define DB_TX_ATTEMPTS 5

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
int db_begin_now(struct es_db *db, char *errstr, size_t errstr_size)
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
	bool hook_due = db->commit_hook_due;

	db->commit_hook_due = false;
	if (db->begin_pending) { /* nothing was sent: nothing to commit */
		db->begin_pending = false;
		return 0;
	}
	res = db_run(db, "COMMIT", 0, NULL, PGRES_COMMAND_OK, errstr, errstr_size);
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
	if (hook_due && db->commit_hook)
		db->commit_hook(db->commit_hook_arg, db);
	return 0;
}

void es_db_rollback(struct es_db *db)
{
	db->begin_pending = false;
	db->commit_hook_due = false;
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
		es_sleep_ms(attempt * 10 + es_monotonic_ms() % 10);
	}
}
