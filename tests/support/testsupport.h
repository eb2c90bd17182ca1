/*
 * testsupport: helpers shared by the integration tests.
 *
 * A test never shares state with another test run: each one makes its own
 * throwaway database (or schema) with a unique name, so test binaries can
 * run in parallel against one PostgreSQL server and leave nothing behind.
 *
 *   struct es_test_db tdb;
 *
 *   if (es_test_db_create(&tdb, errstr, sizeof(errstr)))
 *           ...
 *   db = es_db_connect(tdb.conninfo, "orders", 5000, errstr, sizeof(errstr));
 *   ...
 *   es_test_db_drop(&tdb);
 */
#ifndef ES_TESTSUPPORT_H
#define ES_TESTSUPPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "es/consumer.h"

/* Exit status of a test binary that could not run for lack of
 * infrastructure (the automake convention; ctest's SKIP_RETURN_CODE). */
#define ES_TEST_SKIP 77

/*
 * Returns the server given by DATABASE_URL (libpq URI or keyword/value
 * string), or NULL after printing a line that says the test is skipped
 * and why. The pointer is the environment's: do not free.
 */
const char *es_test_database_url(void);

struct es_test_db {
	char name[64]; /* the database's name, e.g. es_it_4242_9f3a01c2 */
	char *conninfo; /* owned: DATABASE_URL pointed at that database */
	char *admin_url; /* owned: DATABASE_URL itself, used to drop it */
};

/*
 * Creates an empty database with a unique name on DATABASE_URL's server and
 * fills tdb (release with es_test_db_drop). Returns 0, or -1 with errstr
 * filled (also when DATABASE_URL is unset).
 */
int es_test_db_create(struct es_test_db *tdb, char *errstr, size_t errstr_size);

/* Drops the database, ending any session still connected to it, and frees
 * tdb's strings. Safe on a tdb that es_test_db_create did not fill. */
void es_test_db_drop(struct es_test_db *tdb);

/*
 * The services' database roles (deploy/postgres/roles.sql), which
 * tests/infra/postgres creates with their passwords in the passfile that
 * admin_url names.
 *
 * es_test_service_schemas runs roles.sql on admin_url (a superuser's) with
 * a schema prefix: schemas prefix + role (prefix "e2e_42_" gives
 * e2e_42_order_service), each owned by its role. Returns 0, or -1 with
 * a message printed.
 *
 * es_test_role_conninfo returns admin_url with user=role (a new string,
 * the caller frees), or NULL with a message printed: the service's
 * connection, its password read by libpq from the URL's passfile.
 */
int es_test_service_schemas(const char *admin_url, const char *prefix);
char *es_test_role_conninfo(const char *admin_url, const char *role);

/*
 * Writes prefix + pid + 32 random bits into buf, e.g. "es_it_4242_9f3a01c2"
 * ("_" is added after the prefix unless it ends with one). Lowercase, so
 * the result is a valid unquoted SQL identifier when prefix is. Returns 0,
 * or -1 when buf is too small.
 */
int es_test_unique_name(char *buf, size_t size, const char *prefix);

/*
 * The main() of a database test: makes a throwaway database, points
 * *conninfo at it, runs the suite (taking it over), drops the database.
 * Returns the process's exit status: 0 when every test passed, 1
 * otherwise (also when the database could not be made).
 */
struct Suite;
int es_test_run_with_db(struct Suite *suite, const char **conninfo);

/*
 * Calls cond(arg) every 10 ms until it returns true or timeout_ms has
 * passed. Tests wait for events with this, never with a fixed sleep.
 * Returns true when the condition was met.
 */
bool es_test_wait_until(bool (*cond)(void *), void *arg, int timeout_ms);

/* Writes evs[0..n) into the outbox for topic in one transaction; the test
 * fails if that does not commit. */
struct es_db;
void es_test_outbox_put_all(struct es_db *db, const char *topic, struct es_event **evs, int n);

/* Connects to schema of the test's database (creating the schema); the
 * test fails if that does not succeed within 10 s. */
struct es_db *es_test_connect(const char *conninfo, const char *schema);

/*
 * Waits (es_test_wait_until) until the connection of backend pid waits on
 * a lock, as seen from observer: how a race test knows that its second
 * transaction is blocked behind the first. No Check assertion inside, so
 * that it may run beside a thread.
 */
struct es_test_lock_wait {
	struct es_db *observer;
	int pid; /* es_db_backend_pid() of the connection that should wait */
};
bool es_test_waits_on_lock(void *lock_wait);

/* Runs a query returning one row with a number in column "n"; the test
 * fails if it does not run. */
long es_test_count(struct es_db *db, const char *sql, int nparams, const char *const *params);

/*
 * A consumer-loop handler (es_batch_fn for es_consumer_config.handler, with
 * a pointer to this as handler_arg) that applies each batch in one
 * transaction through the inbox of `consumer` on db, whatever the events'
 * data; the effect is one row per new event in the test's table effects
 * (event_id text). calls counts deliveries handled, duplicates those the
 * inbox recognised.
 */
struct es_test_inbox_handler {
	struct es_db *db;
	const char *consumer;
	int calls;
	int duplicates;
};

es_batch_fn es_test_inbox_handle;

#endif
