/*
 * db: PostgreSQL through libpq.
 *
 * Parameterized queries only; every result is checked for the exact status
 * expected and cleared on every path. Two things keep a daemon's many small
 * statements cheap, both invisible to callers:
 *
 *   - each SELECT, INSERT, UPDATE, DELETE or WITH is prepared on the
 *     connection the first time it runs and executed by name after that,
 *     so the server parses and plans it once per connection instead of on
 *     every call (up to 256 statements a connection; beyond that they run
 *     unprepared; and see ES_DB_PLAN_EACH_RUN);
 *   - es_db_begin sends nothing: BEGIN goes out with the transaction's
 *     first statement, in one pipeline (libpq's pipeline mode), which saves
 *     a round trip per transaction.
 *
 * Named prepared statements need a session of their own on the server: a
 * pooler in transaction mode (PgBouncer before 1.21) breaks them, so the
 * daemons connect to PostgreSQL directly or through a session-mode pool.
 * Each service keeps its
 * tables in its own schema (search_path is set to "<schema>, pg_catalog" at
 * connect), so several services can share one database without touching
 * each other's tables.
 */
#ifndef ES_DB_H
#define ES_DB_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

/* A connection to PostgreSQL and what the module remembers of it (its
 * prepared statements, the SQLSTATE of the last failure). Opaque: one
 * thread at a time; es_dbpool lends them to HTTP handlers. */
struct es_db;

/*
 * Connects to conninfo (libpq keyword/value string or URI), retrying with
 * exponential backoff (100 ms doubling to 2 s) until timeout_ms has passed
 * (0: one attempt). Creates the schema if missing and sets search_path.
 * schema is 1 to 53 bytes, so that the outbox channel "es_outbox_<schema>"
 * fits in an identifier. Returns a new handle (free with es_db_free), or
 * NULL with errstr filled.
 */
struct es_db *es_db_connect(const char *conninfo, const char *schema, int timeout_ms, char *errstr,
			    size_t errstr_size);

void es_db_free(struct es_db *db);

/* Drops a broken connection and connects again (same retry rule). */
int es_db_reconnect(struct es_db *db, int timeout_ms, char *errstr, size_t errstr_size);

/* true while the connection is usable. */
bool es_db_ok(const struct es_db *db);

/*
 * Runs a parameterized statement (params are text, NULL means SQL NULL).
 * es_db_query expects rows (PGRES_TUPLES_OK) and returns the result, which
 * the caller must PQclear(); es_db_exec expects a command and returns the
 * affected row count. Both return NULL / -1 on failure with errstr filled
 * and the SQLSTATE recorded
 * (es_db_sqlstate).
 */
PGresult *es_db_query(struct es_db *db, const char *sql, int nparams, const char *const *params,
		      char *errstr, size_t errstr_size);
long es_db_exec(struct es_db *db, const char *sql, int nparams, const char *const *params,
		char *errstr, size_t errstr_size);

/* es_db_exec for a statement that must change exactly one row. Returns 0,
 * or -1 with errstr filled: the SQL error, or, when the statement ran, how
 * many rows it changed ("UPDATE orders SET ...: 0 rows where one was
 * expected"; es_db_sqlstate() is then "": no retry will change it). */
int es_db_exec_one(struct es_db *db, const char *sql, int nparams, const char *const *params,
		   char *errstr, size_t errstr_size);

/*
 * es_db_exec for a set-based statement: a batch's rows as one JSON
 * parameter, $1 (read with json_to_recordset($1::json) in sql), and
 * nparams more params as $2, $3... (at most ES_DB_ROWS_PARAMS). An empty
 * array runs nothing and returns 0. Returns the affected row count, or -1
 * with errstr filled (out of memory too).
 *
 * A statement that finds existing rows by the batch's keys should hand the
 * planner the keys as a list, `WHERE t.key = ANY (ARRAY(SELECT ... FROM
 * json_to_recordset($1::json) ...))`, not only as a join: a JSON set
 * function is estimated at 100 rows, and up to tens of thousands of rows
 * the planner would rather hash the whole table than probe its index 100
 * times (order-service's write-back of a batch's orders: 7.8 ms that way,
 * 1.6 ms with the list, at 20,000 orders; docs/benchmarks.md).
 */
#define ES_DB_ROWS_PARAMS 7

/*
 * Put in front of a statement that finds existing rows by a batch's keys
 * (the `= ANY (ARRAY(...))` above): it then runs unprepared, planned anew
 * on every call (the comment stays in its text, so pg_stat_statements
 * shows why).
 * A prepared statement keeps the plan it was given while its table was
 * small until the next ANALYZE of the table, and on a table that was
 * empty that plan reads every row: a daemon started on a new database
 * kept scanning all of `orders` for each batch while the table grew to
 * 10,000 rows in the benchmark (docs/benchmarks.md). A fresh plan sees
 * the table's current size. Planning costs a fraction of a millisecond,
 * once per batch; a statement run once per event stays prepared.
 */
#define ES_DB_PLAN_EACH_RUN "/* planned on every run */ "

long es_db_exec_rows(struct es_db *db, const char *sql, const json_t *rows, int nparams,
		     const char *const *params, char *errstr, size_t errstr_size);

/* es_db_exec_rows for a statement that must change one row per element of
 * rows (an UPDATE of rows the batch read under its locks). Returns 0, or
 * -1 with errstr filled: the SQL error, or how many rows it changed (as
 * es_db_exec_one says it). */
int es_db_exec_rows_all(struct es_db *db, const char *sql, const json_t *rows, char *errstr,
			size_t errstr_size);

/*
 * Waits for, then holds until the transaction ends, an advisory lock on
 * each of the n keys in the lock space `space` (e.g.
 * "payment-service:order"), with one statement. The keys are locked in
 * one order (sorted, each once), so that two transactions locking
 * overlapping sets cannot deadlock; a hash collision only makes two keys
 * take turns. Returns 0, or -1 with errstr filled.
 */
int es_db_lock_keys(struct es_db *db, const char *space, const char *const *keys, size_t n,
		    char *errstr, size_t errstr_size);

/* The value of column `col` (looked up by name) in row `row`, or NULL when
 * the value is SQL NULL or the column does not exist. */
const char *es_db_get(const PGresult *res, int row, const char *col);

/*
 * true when the last failure is worth retrying: the connection is gone,
 * the server is shutting down or starting (class 08, 57P), a serialization
 * failure (40001), a deadlock (40P01), or a prepared statement the server
 * lost (26000).
 */
bool es_db_error_is_transient(const struct es_db *db);

/* true when the last failure was a unique violation (23505). */
bool es_db_error_is_unique_violation(const struct es_db *db);

/* The SQLSTATE of the last failure ("23505"), or "" when the last call
 * succeeded or failed outside the server (not connected, a wrong row
 * count). Valid until the next call on db. */
const char *es_db_sqlstate(const struct es_db *db);

/* The server process serving this connection (pg_stat_activity.pid, for
 * diagnostics and tests), or 0 when not connected. */
int es_db_backend_pid(const struct es_db *db);

/*
 * LISTEN on channel (quoted as an identifier here). Returns 0, or -1 with
 * errstr filled. Notifications then wake es_db_wait_notify; a reconnect
 * ends the LISTEN, so call it again after one.
 */
int es_db_listen(struct es_db *db, const char *channel, char *errstr, size_t errstr_size);

/* Waits up to timeout_ms for a NOTIFY on a channel db listens on, or for
 * wake_fd (another descriptor, -1 for none) to become readable, and
 * consumes every notification that arrived (reading wake_fd is the
 * caller's). Returns 1 when either came, 0 when neither did, -1 when the
 * connection is broken. */
int es_db_wait_notify(struct es_db *db, int wake_fd, int timeout_ms);

/*
 * A commit hook: what runs on this connection's thread after the COMMIT of
 * a transaction that asked for it, e.g. waking the outbox relay after
 * outbox rows committed (es/outbox.h). The owner sets it once; fn gets arg
 * and the connection, on which it may run statements of its own (no
 * transaction is open then). NULL fn: no hook.
 */
typedef void es_db_commit_fn(void *arg, struct es_db *db);
void es_db_set_commit_hook(struct es_db *db, es_db_commit_fn *fn, void *arg);

/* Asks for the commit hook to run once when the open transaction commits;
 * a rollback (or a lost connection) cancels the request. Outside a
 * transaction the statement before has committed already: the hook runs
 * now. Without a hook, nothing happens. */
void es_db_after_commit(struct es_db *db);

/* BEGIN is sent with the first statement that follows; a transaction with
 * no statement at all costs nothing and commits as a no-op. */
int es_db_begin(struct es_db *db, char *errstr, size_t errstr_size);
int es_db_commit(struct es_db *db, char *errstr, size_t errstr_size);
/* true between es_db_begin and the commit or rollback (also before BEGIN
 * went out), and while a failed transaction waits for its rollback. */
bool es_db_in_transaction(const struct es_db *db);
/* Never fails visibly: a rollback on a dead connection is a no-op. */
void es_db_rollback(struct es_db *db);

/*
 * Runs fn inside BEGIN ... COMMIT. fn returns 0 to commit or -1 to roll back
 * (filling errstr). A serialization failure or deadlock is retried up to 5
 * times. Returns 0 when committed, -1 otherwise (es_db_error_is_transient()
 * then tells whether the caller should retry later).
 */
typedef int (*es_db_tx_fn)(struct es_db *db, void *arg, char *errstr, size_t errstr_size);
int es_db_tx(struct es_db *db, es_db_tx_fn fn, void *arg, char *errstr, size_t errstr_size);

/*
 * Applies migrations: first the library's own (the outbox and inbox
 * tables), then every NNN_name.sql file of dir in name order (dir may be
 * NULL). Each file runs in its own transaction and is recorded in the table
 * es_migrations(name, applied_at); applied files are skipped. A session
 * advisory lock keyed by the schema makes concurrent starts safe: the
 * second waits, then finds nothing left to do. A file must not contain
 * BEGIN, COMMIT or ROLLBACK. Returns the number of migrations applied (the
 * library's own included), or -1 with errstr naming the failed migration.
 */
int es_db_migrate(struct es_db *db, const char *dir, char *errstr, size_t errstr_size);

/* A migration compiled into the daemon (see es_embed_migrations in
 * cmake/Eventshop.cmake, which turns a service's migrations/NNN_*.sql
 * files into an array of these, in name order). */
struct es_migration {
	const char *name;
	const char *sql;
};

/* Like es_db_migrate, with the service's migrations given as an array
 * (n entries, in the order to apply) instead of a directory. */
int es_db_migrate_list(struct es_db *db, const struct es_migration *list, size_t n, char *errstr,
		       size_t errstr_size);

#endif
