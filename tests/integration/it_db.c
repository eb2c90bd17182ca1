/*
 * Integration tests for db.c against a real PostgreSQL (DATABASE_URL).
 *
 * The binary makes one throwaway database; every test works in its own
 * freshly named schema inside it, so tests share nothing and the database
 * is dropped at the end whatever happened.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "db_private.h"
#include "es/log.h"
#include "testsupport.h"

#define CONNECT_TIMEOUT_MS 10000

static const char *test_conninfo;

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static struct es_db *connect_schema(const char *schema)
{
	return es_test_connect(test_conninfo, schema);
}

/* Connects to a new, uniquely named schema (written into schema). */
static struct es_db *connect_fresh(char *schema, size_t size)
{
	ck_assert_int_eq(es_test_unique_name(schema, size, "s"), 0);
	return connect_schema(schema);
}

/* Runs a query that must return one row and copies its first column. */
static void query_value(struct es_db *db, const char *sql, int nparams, const char *const *params,
			char *out, size_t size)
{
	char errstr[512];
	PGresult *res = es_db_query(db, sql, nparams, params, errstr, sizeof(errstr));

	ck_assert_msg(res, "%s: %s", sql, errstr);
	ck_assert_int_eq(PQntuples(res), 1);
	snprintf(out, size, "%s", PQgetisnull(res, 0, 0) ? "(null)" : PQgetvalue(res, 0, 0));
	PQclear(res);
}

static long query_long(struct es_db *db, const char *sql, int nparams, const char *const *params)
{
	char value[64];

	query_value(db, sql, nparams, params, value, sizeof(value));
	return strtol(value, NULL, 10);
}

static void exec_ok(struct es_db *db, const char *sql)
{
	char errstr[512];

	ck_assert_msg(es_db_exec(db, sql, 0, NULL, errstr, sizeof(errstr)) >= 0, "%s: %s", sql,
		      errstr);
}

/* true when relation (unqualified) exists in db's schema. */
static bool table_exists(struct es_db *db, const char *table)
{
	const char *params[2] = {db->schema, table};

	return query_long(db,
			  "SELECT count(*) FROM pg_catalog.pg_tables "
			  "WHERE schemaname = $1 AND tablename = $2",
			  2, params) == 1;
}

static void make_dir(char *dir, size_t size)
{
	snprintf(dir, size, "/tmp/es_it_migrations_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_msg(f, "%s: %s", path, strerror(errno));
	ck_assert_int_eq(fputs(text, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

static void remove_dir(const char *dir)
{
	struct dirent *de;
	char path[512];
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

/* ------------------------------------------------------------------------ */
/* Connection, schema, parameters                                           */
/* ------------------------------------------------------------------------ */

START_TEST(connect_creates_schema_and_puts_it_first_in_search_path)
{
	char schema[64], value[256], expected[128];
	struct es_db *db = connect_fresh(schema, sizeof(schema));
	struct es_db *again;

	query_value(db, "SELECT current_schema()", 0, NULL, value, sizeof(value));
	ck_assert_str_eq(value, schema);
	query_value(db, "SELECT current_setting('search_path')", 0, NULL, value, sizeof(value));
	snprintf(expected, sizeof(expected), "\"%s\", pg_catalog", schema);
	ck_assert_str_eq(value, expected);

	/* Unqualified names land in the service's schema. */
	exec_ok(db, "CREATE TABLE orders (id int)");
	ck_assert(table_exists(db, "orders"));

	/* A second connection to the now existing schema sees the same table. */
	again = connect_schema(schema);
	ck_assert_int_eq(query_long(again, "SELECT count(*) FROM orders", 0, NULL), 0);
	es_db_free(again);
	es_db_free(db);
}
END_TEST

START_TEST(connect_quotes_schema_names_that_need_it)
{
	char unique[48], schema[64], value[128];
	struct es_db *db;

	ck_assert_int_eq(es_test_unique_name(unique, sizeof(unique), "x"), 0);
	snprintf(schema, sizeof(schema), "Odd \"Name\"; %s", unique);
	db = connect_schema(schema);
	query_value(db, "SELECT current_schema()", 0, NULL, value, sizeof(value));
	ck_assert_str_eq(value, schema);
	es_db_free(db);
}
END_TEST

START_TEST(parameters_with_sql_metacharacters_stay_data)
{
	static const char *const values[] = {
		"'; DROP TABLE notes; --",
		"Robert'); DROP TABLE notes;--",
		"\\",
		"\\'",
		"$1",
		"\"quoted\"",
		"%s%n",
		"line\nbreak\ttab",
		"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
		"",
	};
	const size_t n = sizeof(values) / sizeof(values[0]);
	char schema[64], errstr[512];
	struct es_db *db = connect_fresh(schema, sizeof(schema));

	exec_ok(db, "CREATE TABLE notes (i int PRIMARY KEY, v text)");
	for (size_t i = 0; i < n; i++) {
		char index[16];
		const char *params[2] = {index, values[i]};

		snprintf(index, sizeof(index), "%zu", i);
		ck_assert_int_eq(es_db_exec(db, "INSERT INTO notes (i, v) VALUES ($1, $2)", 2,
					    params, errstr, sizeof(errstr)),
				 1);
	}
	for (size_t i = 0; i < n; i++) {
		const char *params[1] = {values[i]};
		PGresult *res = es_db_query(db, "SELECT i, v FROM notes WHERE v = $1", 1, params,
					    errstr, sizeof(errstr));

		ck_assert_msg(res, "%s", errstr);
		ck_assert_int_eq(PQntuples(res), 1);
		ck_assert_int_eq(strtol(es_db_get(res, 0, "i"), NULL, 10), (long)i);
		ck_assert_str_eq(es_db_get(res, 0, "v"), values[i]);
		PQclear(res);
	}
	ck_assert(table_exists(db, "notes"));
	ck_assert_int_eq(query_long(db, "SELECT count(*) FROM notes", 0, NULL), (long)n);

	/* NULL in params is SQL NULL, and es_db_get maps it back to NULL. */
	{
		const char *params[2] = {"100", NULL};
		PGresult *res;

		ck_assert_int_eq(es_db_exec(db, "INSERT INTO notes (i, v) VALUES ($1, $2)", 2,
					    params, errstr, sizeof(errstr)),
				 1);
		res = es_db_query(db, "SELECT v FROM notes WHERE i = $1", 1, params, errstr,
				  sizeof(errstr));
		ck_assert_ptr_nonnull(res);
		ck_assert_ptr_null(es_db_get(res, 0, "v"));
		PQclear(res);
	}
	es_db_free(db);
}
END_TEST

START_TEST(errors_report_sqlstate_and_expected_status)
{
	char schema[64], errstr[512];
	struct es_db *db = connect_fresh(schema, sizeof(schema));
	const char *params[1] = {"1"};
	json_t *rows;

	exec_ok(db, "CREATE TABLE t (id int PRIMARY KEY)");
	ck_assert_int_eq(
		es_db_exec(db, "INSERT INTO t VALUES ($1)", 1, params, errstr, sizeof(errstr)), 1);
	ck_assert_int_eq(
		es_db_exec(db, "INSERT INTO t VALUES ($1)", 1, params, errstr, sizeof(errstr)), -1);
	ck_assert_str_eq(db->sqlstate, "23505");
	ck_assert(es_db_error_is_unique_violation(db));
	ck_assert(!es_db_error_is_transient(db));
	ck_assert_msg(strstr(errstr, "SQLSTATE 23505"), "%s", errstr);
	/* The row's values (DETAIL) stay out of errstr, which goes to logs. */
	ck_assert_ptr_null(strstr(errstr, "Key (id)"));

	ck_assert_ptr_null(es_db_query(db, "SELEC 1", 0, NULL, errstr, sizeof(errstr)));
	ck_assert_str_eq(db->sqlstate, "42601");

	/* A success clears the last failure. */
	ck_assert_int_eq(es_db_exec(db, "UPDATE t SET id = id", 0, NULL, errstr, sizeof(errstr)),
			 1);
	ck_assert_str_eq(db->sqlstate, "");

	/* Rows given to es_db_exec, or a command given to es_db_query: the
	 * caller's bug, reported as such. */
	ck_assert_int_eq(es_db_exec(db, "SELECT 1", 0, NULL, errstr, sizeof(errstr)), -1);
	ck_assert_msg(strstr(errstr, "PGRES_TUPLES_OK"), "%s", errstr);
	ck_assert_ptr_null(
		es_db_query(db, "UPDATE t SET id = id", 0, NULL, errstr, sizeof(errstr)));
	ck_assert_msg(strstr(errstr, "PGRES_COMMAND_OK"), "%s", errstr);

	/* A statement that must change one row says what it found. */
	ck_assert_int_eq(es_db_exec_one(db, "UPDATE t SET id = id WHERE id = $1", 1, params, errstr,
					sizeof(errstr)),
			 0);
	ck_assert_int_eq(es_db_exec_one(db, "UPDATE t SET id = id WHERE id = 7", 0, NULL, errstr,
					sizeof(errstr)),
			 -1);
	ck_assert_msg(strstr(errstr, "UPDATE t SET ...: 0 rows where one was expected"), "%s",
		      errstr);
	ck_assert_str_eq(db->sqlstate, "");
	ck_assert_int_eq(
		es_db_exec_one(db, "INSERT INTO t VALUES ($1)", 1, params, errstr, sizeof(errstr)),
		-1);
	ck_assert_str_eq(db->sqlstate, "23505");

	/* So does one that must change a row per element of a batch. */
	rows = json_pack("[{s:i}, {s:i}]", "id", 1, "id", 7);
	ck_assert_ptr_nonnull(rows);
	ck_assert_int_eq(es_db_exec_rows_all(db,
					     ES_DB_PLAN_EACH_RUN "UPDATE t SET id = t.id"
								 " FROM json_to_recordset($1::json)"
								 " AS r(id int) WHERE t.id = r.id",
					     rows, errstr, sizeof(errstr)),
			 -1);
	ck_assert_msg(strstr(errstr, "UPDATE t SET ...: 1 rows where 2 were expected"), "%s",
		      errstr);
	ck_assert_int_eq(json_array_remove(rows, 1), 0);
	ck_assert_int_eq(
		es_db_exec_rows_all(db,
				    "UPDATE t SET id = t.id FROM json_to_recordset($1::json)"
				    " AS r(id int) WHERE t.id = r.id",
				    rows, errstr, sizeof(errstr)),
		0);
	json_decref(rows);
	es_db_free(db);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Migrations                                                               */
/* ------------------------------------------------------------------------ */

START_TEST(migrations_apply_once_in_name_order_and_are_recorded)
{
	char schema[64], dir[64], errstr[512], names[512];
	struct es_db *db = connect_fresh(schema, sizeof(schema));

	make_dir(dir, sizeof(dir));
	/* 002 reads what 001 wrote: proves the order and that several
	 * statements per file run. */
	write_file(dir, "002_copy.sql",
		   "CREATE TABLE b (v text);\nINSERT INTO b SELECT v || '!' FROM a;\n");
	write_file(dir, "001_create.sql",
		   "-- first\nCREATE TABLE a (v text);\nINSERT INTO a VALUES ('x');\n");
	/* Not NNN_name.sql: ignored. */
	write_file(dir, "notes.sql", "this is not SQL");
	write_file(dir, "1_short.sql", "this is not SQL");
	write_file(dir, "003_text.txt", "this is not SQL");
	write_file(dir, "README", "this is not SQL");

	/* The library's four and the directory's two. */
	ck_assert_int_eq(es_db_migrate(db, dir, errstr, sizeof(errstr)), 6);
	ck_assert_int_eq(query_long(db, "SELECT count(*) FROM b WHERE v = 'x!'", 0, NULL), 1);
	ck_assert(table_exists(db, "es_outbox"));
	ck_assert(table_exists(db, "es_inbox"));
	query_value(db,
		    "SELECT string_agg(name, ',' ORDER BY name) FROM es_migrations "
		    "WHERE applied_at IS NOT NULL",
		    0, NULL, names, sizeof(names));
	ck_assert_str_eq(names, "000_eventshop_outbox_inbox,001_create.sql,001_eventshop_retention,"
				"002_copy.sql,002_eventshop_outbox_parking,"
				"003_eventshop_outbox_no_trigger");

	ck_assert_int_eq(es_db_migrate(db, dir, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(query_long(db, "SELECT count(*) FROM b", 0, NULL), 1);

	/* A later release adds a file: only that one runs. */
	write_file(dir, "003_more.sql", "INSERT INTO b VALUES ('y');");
	ck_assert_int_eq(es_db_migrate(db, dir, errstr, sizeof(errstr)), 1);
	ck_assert_int_eq(query_long(db, "SELECT count(*) FROM b", 0, NULL), 2);

	/* Without a directory only the library's own, already applied. */
	ck_assert_int_eq(es_db_migrate(db, NULL, errstr, sizeof(errstr)), 0);
	remove_dir(dir);
	es_db_free(db);
}
END_TEST

START_TEST(migrating_a_missing_directory_fails)
{
	char schema[64], errstr[512];
	struct es_db *db = connect_fresh(schema, sizeof(schema));

	ck_assert_int_eq(es_db_migrate(db, "/nonexistent/migrations", errstr, sizeof(errstr)), -1);
	ck_assert_msg(strstr(errstr, "/nonexistent/migrations"), "%s", errstr);
	es_db_free(db);
}
END_TEST

/* true when the migration lock of schema is free (taken and released). */
static bool migration_lock_free(struct es_db *other, const char *schema)
{
	const char *params[1] = {schema};
	char value[16];

	query_value(other, "SELECT pg_try_advisory_lock(hashtext('es_migrate:' || $1))", 1, params,
		    value, sizeof(value));
	if (strcmp(value, "t"))
		return false;
	query_value(other, "SELECT pg_advisory_unlock(hashtext('es_migrate:' || $1))", 1, params,
		    value, sizeof(value));
	return true;
}

START_TEST(broken_migration_rolls_back_and_names_the_file)
{
	char schema[64], dir[64], errstr[512], other_schema[64];
	struct es_db *db = connect_fresh(schema, sizeof(schema));
	struct es_db *other = connect_fresh(other_schema, sizeof(other_schema));
	const char *params[1] = {"002_broken.sql"};

	make_dir(dir, sizeof(dir));
	write_file(dir, "001_ok.sql", "CREATE TABLE ok (id int);");
	write_file(dir, "002_broken.sql",
		   "CREATE TABLE half (id int);\nINSERT INTO half VALUES (1);\nSELEC oops;\n");
	write_file(dir, "003_after.sql", "CREATE TABLE after (id int);");

	ck_assert_int_eq(es_db_migrate(db, dir, errstr, sizeof(errstr)), -1);
	ck_assert_msg(strstr(errstr, "002_broken.sql"), "%s", errstr);
	ck_assert_msg(strstr(errstr, "line 3"), "%s", errstr);
	ck_assert_msg(strstr(errstr, "SQLSTATE 42601"), "%s", errstr);
	ck_assert(!es_db_error_is_transient(db));

	/* 001 stays applied; 002 left nothing behind; 003 never ran. */
	ck_assert(table_exists(db, "ok"));
	ck_assert(!table_exists(db, "half"));
	ck_assert(!table_exists(db, "after"));
	ck_assert_int_eq(
		query_long(db, "SELECT count(*) FROM es_migrations WHERE name = $1", 1, params), 0);
	ck_assert_int_eq(PQtransactionStatus(db->conn), PQTRANS_IDLE);
	/* The lock went with the failure: another instance is not stuck. */
	ck_assert(migration_lock_free(other, schema));

	/* The fixed file goes through on the next start. */
	write_file(dir, "002_broken.sql", "CREATE TABLE half (id int);");
	ck_assert_int_eq(es_db_migrate(db, dir, errstr, sizeof(errstr)), 2);
	ck_assert(table_exists(db, "half"));
	ck_assert(table_exists(db, "after"));
	ck_assert(migration_lock_free(other, schema));
	remove_dir(dir);
	es_db_free(other);
	es_db_free(db);
}
END_TEST

START_TEST(migration_ending_its_own_transaction_is_refused)
{
	char schema[64], dir[64], errstr[512];
	struct es_db *db = connect_fresh(schema, sizeof(schema));

	make_dir(dir, sizeof(dir));
	write_file(dir, "001_commits.sql", "CREATE TABLE c (id int); COMMIT;");
	ck_assert_int_eq(es_db_migrate(db, dir, errstr, sizeof(errstr)), -1);
	ck_assert_msg(strstr(errstr, "001_commits.sql") && strstr(errstr, "COMMIT"), "%s", errstr);
	ck_assert_int_eq(query_long(db,
				    "SELECT count(*) FROM es_migrations "
				    "WHERE name = '001_commits.sql'",
				    0, NULL),
			 0);
	remove_dir(dir);
	es_db_free(db);
}
END_TEST

struct migrate_thread {
	const char *schema;
	const char *dir;
	int applied;
	char errstr[512];
};

static void *migrate_thread_main(void *arg)
{
	struct migrate_thread *t = arg;
	struct es_db *db;

	/* No Check assertions in threads: results go back to the test. */
	t->applied = -1;
	db = es_db_connect(test_conninfo, t->schema, CONNECT_TIMEOUT_MS, t->errstr,
			   sizeof(t->errstr));
	if (!db)
		return NULL;
	t->applied = es_db_migrate(db, t->dir, t->errstr, sizeof(t->errstr));
	es_db_free(db);
	return NULL;
}

struct lock_waiters {
	struct es_db *db;
	long want;
};

static bool lock_waiters_reached(void *arg)
{
	struct lock_waiters *w = arg;

	return query_long(w->db,
			  "SELECT count(*) FROM pg_stat_activity "
			  "WHERE datname = current_database() "
			  "AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
			  0, NULL) >= w->want;
}

START_TEST(concurrent_migrations_both_succeed_and_apply_each_file_once)
{
	char schema[64], dir[64], holder_schema[64], names[512];
	struct es_db *holder = connect_fresh(holder_schema, sizeof(holder_schema));
	struct migrate_thread t[2];
	struct lock_waiters waiters = {.db = holder, .want = 2};
	pthread_t tid[2];
	const char *params[1];
	struct es_db *db;

	ck_assert_int_eq(es_test_unique_name(schema, sizeof(schema), "s"), 0);
	params[0] = schema;
	make_dir(dir, sizeof(dir));
	write_file(dir, "001_counter.sql",
		   "CREATE TABLE counter (n int);\n"
		   "INSERT INTO counter VALUES (1);\n");
	write_file(dir, "002_more.sql", "INSERT INTO counter VALUES (2);\n");

	/* Hold the migration lock so that both threads are provably waiting
	 * on it together before either may start. */
	query_value(holder, "SELECT pg_advisory_lock(hashtext('es_migrate:' || $1))", 1, params,
		    names, sizeof(names));
	for (int i = 0; i < 2; i++) {
		t[i] = (struct migrate_thread){.schema = schema, .dir = dir};
		ck_assert_int_eq(pthread_create(&tid[i], NULL, migrate_thread_main, &t[i]), 0);
	}
	ck_assert_msg(es_test_wait_until(lock_waiters_reached, &waiters, 20000),
		      "both migrations should be waiting on the lock");
	query_value(holder, "SELECT pg_advisory_unlock(hashtext('es_migrate:' || $1))", 1, params,
		    names, sizeof(names));
	for (int i = 0; i < 2; i++)
		pthread_join(tid[i], NULL);

	ck_assert_msg(t[0].applied >= 0, "thread 0: %s", t[0].errstr);
	ck_assert_msg(t[1].applied >= 0, "thread 1: %s", t[1].errstr);
	/* One did everything, the other found nothing left to do. */
	ck_assert_int_eq(t[0].applied + t[1].applied, 6);
	ck_assert_int_eq(t[0].applied * t[1].applied, 0);

	db = connect_schema(schema);
	query_value(db, "SELECT string_agg(n::text, ',' ORDER BY n) FROM counter", 0, NULL, names,
		    sizeof(names));
	ck_assert_str_eq(names, "1,2");
	ck_assert_int_eq(query_long(db, "SELECT count(*) FROM es_migrations", 0, NULL), 6);
	remove_dir(dir);
	es_db_free(db);
	es_db_free(holder);
}
END_TEST

static bool notified(void *arg)
{
	return es_db_wait_notify(arg, -1, 0) == 1;
}

START_TEST(a_notify_or_the_wake_descriptor_ends_the_wait)
{
	char schema[64], errstr[512], channel[96];
	struct es_db *db = connect_fresh(schema, sizeof(schema));
	struct es_db *listener = connect_schema(schema);
	int pipefd[2];

	ck_assert_int_eq(pipe(pipefd), 0);
	snprintf(channel, sizeof(channel), "es_outbox_%s", schema);
	ck_assert_msg(es_db_listen(listener, channel, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_int_eq(es_db_wait_notify(listener, pipefd[0], 0), 0);

	/* The outbox's channel, as es_outbox_retry and a standby instance's
	 * commit hook NOTIFY it. */
	query_value(db, "SELECT pg_notify('es_outbox_' || current_schema(), '')", 0, NULL, errstr,
		    sizeof(errstr));
	ck_assert_msg(es_test_wait_until(notified, listener, 5000), "no notification on %s",
		      channel);
	/* Consumed: the next wait sees nothing new. */
	ck_assert_int_eq(es_db_wait_notify(listener, pipefd[0], 0), 0);
	/* The other descriptor wakes it too, and stays readable until read. */
	ck_assert_int_eq(write(pipefd[1], "x", 1), 1);
	ck_assert_int_eq(es_db_wait_notify(listener, pipefd[0], 5000), 1);
	ck_assert_int_eq(es_db_wait_notify(listener, pipefd[0], 0), 1);
	close(pipefd[0]);
	close(pipefd[1]);
	es_db_free(listener);
	es_db_free(db);
}
END_TEST

static void count_commit(void *arg, struct es_db *db)
{
	ck_assert(!es_db_in_transaction(db));
	(*(int *)arg)++;
}

START_TEST(the_commit_hook_runs_once_after_a_commit_that_asked_for_it)
{
	char schema[64], errstr[512];
	struct es_db *db = connect_fresh(schema, sizeof(schema));
	int calls = 0;

	/* No hook: asking is a no-op. */
	es_db_after_commit(db);
	es_db_set_commit_hook(db, count_commit, &calls);

	/* A commit that did not ask: no call. */
	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), 0);
	exec_ok(db, "CREATE TABLE t (v int)");
	ck_assert_int_eq(es_db_commit(db, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(calls, 0);

	/* Asked, twice: one call, after the COMMIT. */
	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), 0);
	exec_ok(db, "INSERT INTO t VALUES (1)");
	es_db_after_commit(db);
	es_db_after_commit(db);
	ck_assert_int_eq(calls, 0);
	ck_assert_int_eq(es_db_commit(db, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(calls, 1);

	/* Asked, then rolled back: no call, now or at the next commit. */
	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), 0);
	exec_ok(db, "INSERT INTO t VALUES (2)");
	es_db_after_commit(db);
	es_db_rollback(db);
	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), 0);
	exec_ok(db, "INSERT INTO t VALUES (3)");
	ck_assert_int_eq(es_db_commit(db, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(calls, 1);

	/* Asked in a transaction whose COMMIT turns into a ROLLBACK: no call. */
	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), 0);
	es_db_after_commit(db);
	ck_assert_int_lt(es_db_exec(db, "INSERT INTO t VALUES ('not a number')", 0, NULL, errstr,
				    sizeof(errstr)),
			 0);
	ck_assert_int_ne(es_db_commit(db, errstr, sizeof(errstr)), 0);
	es_db_rollback(db);
	ck_assert_int_eq(calls, 1);

	/* Outside a transaction the statement has committed: at once. */
	es_db_after_commit(db);
	ck_assert_int_eq(calls, 2);
	es_db_free(db);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Transactions                                                             */
/* ------------------------------------------------------------------------ */

struct tx_case {
	const char *value;
	int calls;
	int fail_calls; /* calls that raise a serialization failure */
	bool domain_error; /* fn refuses for a reason of its own */
	bool swallow; /* fn ignores a failed statement and returns 0 */
};

static int tx_insert(struct es_db *db, void *arg, char *errstr, size_t errstr_size)
{
	struct tx_case *c = arg;
	const char *params[1] = {c->value};

	c->calls++;
	if (es_db_exec(db, "INSERT INTO items (v) VALUES ($1)", 1, params, errstr, errstr_size) < 0)
		return -1;
	if (c->calls <= c->fail_calls &&
	    es_db_exec(db, "DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$",
		       0, NULL, errstr, errstr_size) < 0)
		return -1;
	if (c->swallow) {
		char ignored[256];

		es_db_exec(db, "SELEC 1", 0, NULL, ignored, sizeof(ignored));
		return 0;
	}
	if (c->domain_error) {
		snprintf(errstr, errstr_size, "order total is negative");
		return -1;
	}
	return 0;
}

static long count_items(struct es_db *db, const char *value)
{
	const char *params[1] = {value};

	return query_long(db, "SELECT count(*) FROM items WHERE v = $1", 1, params);
}

START_TEST(tx_commits_when_fn_succeeds)
{
	char schema[64], errstr[512];
	struct es_db *db = connect_fresh(schema, sizeof(schema));
	struct tx_case c = {.value = "committed"};

	exec_ok(db, "CREATE TABLE items (v text)");
	ck_assert_msg(es_db_tx(db, tx_insert, &c, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_int_eq(c.calls, 1);
	ck_assert_int_eq(count_items(db, "committed"), 1);
	ck_assert_int_eq(PQtransactionStatus(db->conn), PQTRANS_IDLE);
	es_db_free(db);
}
END_TEST

START_TEST(tx_rolls_back_when_fn_refuses)
{
	char schema[64], errstr[512];
	struct es_db *db = connect_fresh(schema, sizeof(schema));
	struct tx_case c = {.value = "refused", .domain_error = true};

	exec_ok(db, "CREATE TABLE items (v text)");
	ck_assert_int_eq(es_db_tx(db, tx_insert, &c, errstr, sizeof(errstr)), -1);
	ck_assert_str_eq(errstr, "order total is negative");
	ck_assert_int_eq(c.calls, 1);
	ck_assert(!es_db_error_is_transient(db));
	ck_assert_int_eq(count_items(db, "refused"), 0);
	ck_assert_int_eq(PQtransactionStatus(db->conn), PQTRANS_IDLE);
	es_db_free(db);
}
END_TEST

START_TEST(tx_retries_serialization_failure_then_commits)
{
	char schema[64], errstr[512];
	struct es_db *db = connect_fresh(schema, sizeof(schema));
	struct tx_case c = {.value = "retried", .fail_calls = 2};

	exec_ok(db, "CREATE TABLE items (v text)");
	ck_assert_msg(es_db_tx(db, tx_insert, &c, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_int_eq(c.calls, 3);
	/* The failed attempts' inserts were rolled back. */
	ck_assert_int_eq(count_items(db, "retried"), 1);
	es_db_free(db);
}
END_TEST

START_TEST(tx_gives_up_after_five_serialization_failures)
{
	char schema[64], errstr[512];
	struct es_db *db = connect_fresh(schema, sizeof(schema));
	struct tx_case c = {.value = "hopeless", .fail_calls = 1000};

	exec_ok(db, "CREATE TABLE items (v text)");
	ck_assert_int_eq(es_db_tx(db, tx_insert, &c, errstr, sizeof(errstr)), -1);
	ck_assert_int_eq(c.calls, 5);
	ck_assert_str_eq(db->sqlstate, "40001");
	ck_assert(es_db_error_is_transient(db));
	ck_assert_int_eq(count_items(db, "hopeless"), 0);
	es_db_free(db);
}
END_TEST

START_TEST(tx_reports_commit_of_a_failed_transaction)
{
	char schema[64], errstr[512];
	struct es_db *db = connect_fresh(schema, sizeof(schema));
	struct tx_case c = {.value = "swallowed", .swallow = true};

	exec_ok(db, "CREATE TABLE items (v text)");
	ck_assert_int_eq(es_db_tx(db, tx_insert, &c, errstr, sizeof(errstr)), -1);
	ck_assert_msg(strstr(errstr, "rolled back"), "%s", errstr);
	ck_assert_int_eq(count_items(db, "swallowed"), 0);
	es_db_free(db);
}
END_TEST

START_TEST(begin_inside_a_transaction_is_refused)
{
	char schema[64], errstr[512];
	struct es_db *db = connect_fresh(schema, sizeof(schema));

	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), -1);
	ck_assert_msg(strstr(errstr, "already open"), "%s", errstr);
	ck_assert_int_eq(es_db_commit(db, errstr, sizeof(errstr)), 0);
	es_db_free(db);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Prepared statements and the pipelined BEGIN                              */
/* ------------------------------------------------------------------------ */

/* How many statements with this text are prepared on db's connection. */
static long prepared_count(struct es_db *db, const char *sql)
{
	const char *params[1] = {sql};

	return query_long(db, "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", 1,
			  params);
}

START_TEST(statements_are_prepared_once_per_connection)
{
	static const char sql[] = "SELECT $1::int * 2";
	char schema[64], value[32], arg[16];
	struct es_db *db = connect_fresh(schema, sizeof(schema));
	const char *params[1] = {arg};

	for (int i = 1; i <= 3; i++) {
		snprintf(arg, sizeof(arg), "%d", i * 10);
		query_value(db, sql, 1, params, value, sizeof(value));
		ck_assert_int_eq(strtol(value, NULL, 10), i * 20);
	}
	ck_assert_int_eq(prepared_count(db, sql), 1);
	/* Utility statements run unprepared. */
	exec_ok(db, "SET application_name = 'es_it'");
	ck_assert_int_eq(prepared_count(db, "SET application_name = 'es_it'"), 0);
	/* So does a statement that asks to be planned on every run. */
	for (int i = 1; i <= 6; i++) {
		snprintf(arg, sizeof(arg), "%d", i);
		query_value(db, ES_DB_PLAN_EACH_RUN "SELECT $1::int * 3", 1, params, value,
			    sizeof(value));
		ck_assert_int_eq(strtol(value, NULL, 10), i * 3);
	}
	ck_assert_int_eq(prepared_count(db, ES_DB_PLAN_EACH_RUN "SELECT $1::int * 3"), 0);
	ck_assert_int_eq(query_long(db,
				    "SELECT count(*) FROM pg_prepared_statements"
				    " WHERE starts_with(statement, $1)",
				    1, (const char *const[]){ES_DB_PLAN_EACH_RUN}),
			 0);
	es_db_free(db);
}
END_TEST

START_TEST(begin_goes_out_with_the_first_statement)
{
	char schema[64], other_schema[64], errstr[512];
	struct es_db *db = connect_fresh(schema, sizeof(schema));
	struct es_db *other = connect_fresh(other_schema, sizeof(other_schema));
	char sql[256];

	exec_ok(db, "CREATE TABLE items (v text)");
	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), 0);
	ck_assert(es_db_in_transaction(db));
	ck_assert_int_eq(PQtransactionStatus(db->conn), PQTRANS_IDLE); /* nothing sent yet */
	exec_ok(db, "INSERT INTO items VALUES ('pending')");
	ck_assert_int_eq(PQtransactionStatus(db->conn), PQTRANS_INTRANS);
	/* Inside the transaction: invisible to others until the commit. */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\".items", schema);
	ck_assert_int_eq(query_long(other, sql, 0, NULL), 0);
	ck_assert_int_eq(es_db_commit(db, errstr, sizeof(errstr)), 0);
	ck_assert(!es_db_in_transaction(db));
	ck_assert_int_eq(query_long(other, sql, 0, NULL), 1);

	/* A transaction without statements sends nothing, either way. */
	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(es_db_commit(db, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), 0);
	es_db_rollback(db);
	ck_assert(!es_db_in_transaction(db));
	ck_assert_int_eq(PQtransactionStatus(db->conn), PQTRANS_IDLE);

	/* Rolled back work is gone. */
	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), 0);
	exec_ok(db, "INSERT INTO items VALUES ('rolled back')");
	es_db_rollback(db);
	ck_assert_int_eq(query_long(other, sql, 0, NULL), 1);
	es_db_free(other);
	es_db_free(db);
}
END_TEST

START_TEST(a_failing_first_statement_reports_its_own_error)
{
	static const char bad[] = "SELECT v FROM no_such_table WHERE v = $1";
	char schema[64], errstr[512];
	struct es_db *db = connect_fresh(schema, sizeof(schema));
	const char *params[1] = {"x"};

	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), 0);
	ck_assert_ptr_null(es_db_query(db, bad, 1, params, errstr, sizeof(errstr)));
	ck_assert_str_eq(db->sqlstate, "42P01");
	ck_assert_msg(strstr(errstr, "no_such_table"), "%s", errstr);
	ck_assert(es_db_ok(db));
	ck_assert_int_eq(PQtransactionStatus(db->conn), PQTRANS_INERROR);
	ck_assert(es_db_in_transaction(db));
	es_db_rollback(db);
	ck_assert(!es_db_in_transaction(db));
	/* It was not kept as prepared; once the table exists it runs. */
	ck_assert_int_eq(prepared_count(db, bad), 0);
	exec_ok(db, "CREATE TABLE no_such_table (v text)");
	exec_ok(db, "INSERT INTO no_such_table VALUES ('x')");
	ck_assert_int_eq(
		query_long(db, "SELECT count(*) FROM no_such_table WHERE v = $1", 1, params), 1);
	es_db_free(db);
}
END_TEST

START_TEST(statements_deallocated_behind_our_back_are_prepared_again)
{
	static const char sql[] = "SELECT $1::int + 1";
	char schema[64], value[32], errstr[512];
	struct es_db *db = connect_fresh(schema, sizeof(schema));
	const char *params[1] = {"41"};

	query_value(db, sql, 1, params, value, sizeof(value));
	exec_ok(db, "DEALLOCATE ALL");
	/* Outside a transaction the statement is prepared again at once. */
	query_value(db, sql, 1, params, value, sizeof(value));
	ck_assert_str_eq(value, "42");

	/* Inside one the failure aborts it, and is worth a retry. */
	exec_ok(db, "DEALLOCATE ALL");
	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(query_long(db, "SELECT 7", 0, NULL), 7); /* BEGIN went out */
	ck_assert_ptr_null(es_db_query(db, sql, 1, params, errstr, sizeof(errstr)));
	ck_assert_str_eq(db->sqlstate, "26000");
	ck_assert(es_db_error_is_transient(db));
	es_db_rollback(db);
	query_value(db, sql, 1, params, value, sizeof(value));
	ck_assert_str_eq(value, "42");
	es_db_free(db);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Reconnect                                                                */
/* ------------------------------------------------------------------------ */

START_TEST(reconnect_after_backend_is_killed_restores_search_path)
{
	char schema[64], killer_schema[64], errstr[512], value[128], pid[16];
	struct es_db *db = connect_fresh(schema, sizeof(schema));
	struct es_db *killer = connect_fresh(killer_schema, sizeof(killer_schema));
	const char *params[1] = {pid};

	exec_ok(db, "CREATE TABLE marker (id int)");
	exec_ok(db, "INSERT INTO marker VALUES (7)");
	/* Prepared on the old connection; the new one must prepare it again. */
	ck_assert_int_eq(query_long(db, "SELECT id FROM marker", 0, NULL), 7);
	snprintf(pid, sizeof(pid), "%d", PQbackendPID(db->conn));
	/* The timeout makes pg_terminate_backend wait until the backend is
	 * gone, so the next statement cannot win the race. */
	query_value(killer, "SELECT pg_terminate_backend($1::int, 10000)", 1, params, value,
		    sizeof(value));
	ck_assert_str_eq(value, "t");

	ck_assert_ptr_null(es_db_query(db, "SELECT 1", 0, NULL, errstr, sizeof(errstr)));
	ck_assert_msg(es_db_error_is_transient(db), "sqlstate '%s': %s", db->sqlstate, errstr);
	ck_assert(!es_db_ok(db));
	/* A transaction on the dead connection fails the same way. */
	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), -1);
	ck_assert(es_db_error_is_transient(db));

	ck_assert_msg(es_db_reconnect(db, CONNECT_TIMEOUT_MS, errstr, sizeof(errstr)) == 0, "%s",
		      errstr);
	ck_assert(es_db_ok(db));
	ck_assert_str_eq(db->sqlstate, "");
	ck_assert_int_ne(PQbackendPID(db->conn), (int)strtol(pid, NULL, 10));
	query_value(db, "SELECT current_schema()", 0, NULL, value, sizeof(value));
	ck_assert_str_eq(value, schema);
	ck_assert_int_eq(query_long(db, "SELECT id FROM marker", 0, NULL), 7);
	es_db_free(killer);
	es_db_free(db);
}
END_TEST

static Suite *db_suite(void)
{
	Suite *s = suite_create("db (PostgreSQL)");
	TCase *conn = tcase_create("connect");
	TCase *mig = tcase_create("migrate");
	TCase *tx = tcase_create("tx");
	TCase *re = tcase_create("reconnect");
	TCase *st = tcase_create("statements");

	tcase_add_test(conn, connect_creates_schema_and_puts_it_first_in_search_path);
	tcase_add_test(conn, connect_quotes_schema_names_that_need_it);
	tcase_add_test(conn, parameters_with_sql_metacharacters_stay_data);
	tcase_add_test(conn, errors_report_sqlstate_and_expected_status);
	suite_add_tcase(s, conn);

	tcase_add_test(mig, migrations_apply_once_in_name_order_and_are_recorded);
	tcase_add_test(mig, migrating_a_missing_directory_fails);
	tcase_add_test(mig, broken_migration_rolls_back_and_names_the_file);
	tcase_add_test(mig, migration_ending_its_own_transaction_is_refused);
	tcase_add_test(mig, concurrent_migrations_both_succeed_and_apply_each_file_once);
	tcase_add_test(mig, a_notify_or_the_wake_descriptor_ends_the_wait);
	tcase_add_test(mig, the_commit_hook_runs_once_after_a_commit_that_asked_for_it);
	tcase_set_timeout(mig, 60);
	suite_add_tcase(s, mig);

	tcase_add_test(tx, tx_commits_when_fn_succeeds);
	tcase_add_test(tx, tx_rolls_back_when_fn_refuses);
	tcase_add_test(tx, tx_retries_serialization_failure_then_commits);
	tcase_add_test(tx, tx_gives_up_after_five_serialization_failures);
	tcase_add_test(tx, tx_reports_commit_of_a_failed_transaction);
	tcase_add_test(tx, begin_inside_a_transaction_is_refused);
	suite_add_tcase(s, tx);

	tcase_add_test(st, statements_are_prepared_once_per_connection);
	tcase_add_test(st, begin_goes_out_with_the_first_statement);
	tcase_add_test(st, a_failing_first_statement_reports_its_own_error);
	tcase_add_test(st, statements_deallocated_behind_our_back_are_prepared_again);
	suite_add_tcase(s, st);

	tcase_add_test(re, reconnect_after_backend_is_killed_restores_search_path);
	tcase_set_timeout(re, 60);
	suite_add_tcase(s, re);
	return s;
}

int main(void)
{
	if (!es_test_database_url())
		return ES_TEST_SKIP;
	es_log_init("it_db", ES_LOG_WARN);
	return es_test_run_with_db(db_suite(), &test_conninfo);
}
