/*
 * db_private: what the four files of the db module share and nobody else
 * sees (es/db.h is the module's interface; struct es_db is opaque there).
 *
 *   db.c            connecting, errors, the public statement calls
 *   db_statement.c  running one statement: prepared statements, pipelining
 *   db_tx.c         transactions
 *   db_migrate.c    migrations, the library's own (common/migrations/) first
 */
#ifndef ES_DB_PRIVATE_H
#define ES_DB_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "es/db.h"

struct es_db_statements;

struct es_db {
	PGconn *conn; /* NULL while disconnected */
	char *conninfo; /* owned; may hold a password */
	char *schema; /* owned */
	char sqlstate[6]; /* SQLSTATE of the last failure, "" when none */
	struct es_db_statements *prepared; /* this connection's prepared statements */
	bool begin_pending; /* es_db_begin called, BEGIN not sent yet */
	es_db_commit_fn *commit_hook; /* es_db_set_commit_hook; NULL: none */
	void *commit_hook_arg;
	bool commit_hook_due; /* es_db_after_commit called in this transaction */
};

/* Runs sql and checks that its result has the status want: the one path
 * every statement of the module takes. Returns the result (the caller
 * clears it), or NULL with errstr filled and db->sqlstate set. */
PGresult *db_run(struct es_db *db, const char *sql, int nparams, const char *const *params,
		 ExecStatusType want, char *errstr, size_t errstr_size);

/* Forgets every prepared statement (the connection was replaced, or the
 * server lost them); db_statements_free also frees the table. */
void db_statements_forget(struct es_db *db);
void db_statements_free(struct es_db *db);

/* Closes a connection that can no longer be trusted, so that es_db_ok()
 * says so and the caller's reconnect logic takes over. */
void db_drop_connection(struct es_db *db);

/* Sends a pending BEGIN on its own, for code that talks to libpq directly
 * (a migration's body). Returns 0 or -1. */
int db_begin_now(struct es_db *db, char *errstr, size_t errstr_size);

/* Copies a libpq message into dst on one line. */
void db_copy_message(char *dst, size_t size, const char *msg);

/* Fills errstr from a failed result (or from the connection when libpq gave
 * no result) and records its SQLSTATE in db->sqlstate. */
void db_result_error(struct es_db *db, const PGresult *res, char *errstr, size_t errstr_size);

#endif
