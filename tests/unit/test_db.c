/*
 * Unit tests for db.c: what needs no server. The integration tests in
 * tests/integration/it_db.c cover the rest against a real PostgreSQL.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "db_private.h"
#include "es/log.h"

static long long elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - start->tv_sec) * 1000 +
	       (now.tv_nsec - start->tv_nsec) / 1000000;
}

/*
 * Returns a TCP socket bound to a free port of 127.0.0.1 but not listening,
 * and its port: a connection to it is refused for as long as the socket
 * stays open, and no other process can take the port meanwhile.
 */
static int closed_port(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Reads everything written to f so far into buf. */
static void slurp(FILE *f, char *buf, size_t size)
{
	size_t n;

	fflush(f);
	rewind(f);
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
}

START_TEST(get_returns_null_for_null_result)
{
	ck_assert_ptr_null(es_db_get(NULL, 0, "id"));
}
END_TEST

START_TEST(get_looks_columns_up_by_name_and_maps_sql_null)
{
	PGresAttDesc attrs[2] = {
		{.name = "id", .format = 0, .typid = 25, .typlen = -1, .atttypmod = -1},
		{.name = "note", .format = 0, .typid = 25, .typlen = -1, .atttypmod = -1},
	};
	/* A result built on the client: the same object a server returns. */
	PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);

	ck_assert_ptr_nonnull(res);
	ck_assert_int_eq(PQsetResultAttrs(res, 2, attrs), 1);
	ck_assert_int_eq(PQsetvalue(res, 0, 0, "42", 2), 1);
	ck_assert_int_eq(PQsetvalue(res, 0, 1, NULL, -1), 1);
	ck_assert_int_eq(PQsetvalue(res, 1, 0, "43", 2), 1);
	ck_assert_int_eq(PQsetvalue(res, 1, 1, "", 0), 1);

	ck_assert_str_eq(es_db_get(res, 0, "id"), "42");
	ck_assert_str_eq(es_db_get(res, 1, "id"), "43");
	ck_assert_ptr_null(es_db_get(res, 0, "note"));
	ck_assert_str_eq(es_db_get(res, 1, "note"), "");
	ck_assert_ptr_null(es_db_get(res, 0, "missing"));
	ck_assert_ptr_null(es_db_get(res, 2, "id"));
	ck_assert_ptr_null(es_db_get(res, -1, "id"));
	ck_assert_ptr_null(es_db_get(res, 0, NULL));
	PQclear(res);
}
END_TEST

static bool transient(const char *sqlstate)
{
	struct es_db db = {.conn = NULL};

	snprintf(db.sqlstate, sizeof(db.sqlstate), "%s", sqlstate);
	return es_db_error_is_transient(&db);
}

START_TEST(transient_errors_are_connection_shutdown_serialization_and_deadlock)
{
	ck_assert(transient("40001"));
	ck_assert(transient("40P01"));
	ck_assert(transient("08000"));
	ck_assert(transient("08006"));
	ck_assert(transient("08001"));
	ck_assert(transient("57P01"));
	ck_assert(transient("57P02"));
	ck_assert(transient("57P03"));
}
END_TEST

START_TEST(permanent_errors_are_not_transient)
{
	ck_assert(!transient("23505"));
	ck_assert(!transient("23503"));
	ck_assert(!transient("42601"));
	ck_assert(!transient("42P01"));
	ck_assert(!transient("22P02"));
	ck_assert(!transient("25P02"));
	ck_assert(!transient("40002"));
	/* The database was dropped: retrying cannot bring it back. */
	ck_assert(!transient("57P04"));
}
END_TEST

START_TEST(lost_connection_without_sqlstate_is_transient)
{
	ck_assert(transient(""));
}
END_TEST

START_TEST(unique_violation_is_only_23505)
{
	struct es_db db = {.conn = NULL};

	snprintf(db.sqlstate, sizeof(db.sqlstate), "23505");
	ck_assert(es_db_error_is_unique_violation(&db));
	snprintf(db.sqlstate, sizeof(db.sqlstate), "23503");
	ck_assert(!es_db_error_is_unique_violation(&db));
	db.sqlstate[0] = '\0';
	ck_assert(!es_db_error_is_unique_violation(&db));
}
END_TEST

START_TEST(statements_without_connection_fail_as_transient)
{
	struct es_db db = {.conn = NULL, .sqlstate = "23505"};
	const char *params[1] = {"x"};
	char errstr[256] = "";

	ck_assert(!es_db_ok(&db));
	ck_assert(!es_db_ok(NULL));
	ck_assert_ptr_null(es_db_query(&db, "SELECT $1", 1, params, errstr, sizeof(errstr)));
	ck_assert_str_eq(errstr, "not connected");
	ck_assert_str_eq(db.sqlstate, "");
	ck_assert(es_db_error_is_transient(&db));

	errstr[0] = '\0';
	ck_assert_int_eq(es_db_exec(&db, "SELECT $1", 1, params, errstr, sizeof(errstr)), -1);
	ck_assert_str_eq(errstr, "not connected");
	ck_assert_int_eq(es_db_begin(&db, errstr, sizeof(errstr)), -1);
	ck_assert_int_eq(es_db_migrate(&db, NULL, errstr, sizeof(errstr)), -1);
	es_db_rollback(&db);
}
END_TEST

START_TEST(closed_port_fails_within_timeout_without_leaking_password)
{
	FILE *log = tmpfile();
	char errstr[512] = "";
	char conninfo[256];
	char logged[16384];
	char port_text[16];
	struct timespec start;
	struct es_db *db;
	long long took;
	int port;
	int fd = closed_port(&port);

	ck_assert_ptr_nonnull(log);
	es_log_init("test_db", ES_LOG_DEBUG);
	es_log_set_fd(fileno(log));
	snprintf(conninfo, sizeof(conninfo),
		 "host=127.0.0.1 port=%d user=nobody password=s3cret-pw dbname=nowhere", port);
	snprintf(port_text, sizeof(port_text), "%d", port);

	clock_gettime(CLOCK_MONOTONIC, &start);
	db = es_db_connect(conninfo, "orders", 700, errstr, sizeof(errstr));
	took = elapsed_ms(&start);
	es_log_set_fd(2);
	close(fd);

	ck_assert_ptr_null(db);
	/* Retried with backoff (100 + 200 + 400 ms) up to the deadline, and
	 * not much longer. */
	ck_assert_int_ge(took, 600);
	ck_assert_int_lt(took, 700 + 1500);
	ck_assert_msg(strstr(errstr, "could not connect to PostgreSQL"), "errstr: %s", errstr);
	ck_assert_msg(strstr(errstr, "attempts in"), "errstr: %s", errstr);
	ck_assert_msg(strstr(errstr, "127.0.0.1") && strstr(errstr, port_text), "errstr: %s",
		      errstr);
	ck_assert_msg(strstr(errstr, "refused"), "errstr: %s", errstr);
	ck_assert_ptr_null(strstr(errstr, "s3cret"));

	slurp(log, logged, sizeof(logged));
	fclose(log);
	ck_assert_msg(strstr(logged, "connection attempt 1 failed"), "log: %s", logged);
	ck_assert_ptr_null(strstr(logged, "s3cret"));
	ck_assert_ptr_null(strstr(logged, "password"));
}
END_TEST

START_TEST(connect_with_zero_timeout_makes_one_attempt)
{
	char errstr[512] = "";
	char conninfo[128];
	struct timespec start;
	struct es_db *db;
	int port;
	int fd = closed_port(&port);

	es_log_init("test_db", ES_LOG_ERROR);
	snprintf(conninfo, sizeof(conninfo), "postgresql://nobody@127.0.0.1:%d/nowhere", port);
	clock_gettime(CLOCK_MONOTONIC, &start);
	db = es_db_connect(conninfo, "orders", 0, errstr, sizeof(errstr));
	close(fd);

	ck_assert_ptr_null(db);
	ck_assert_int_lt(elapsed_ms(&start), 1000);
	ck_assert_msg(strstr(errstr, "(1 attempt in"), "errstr: %s", errstr);
}
END_TEST

START_TEST(connect_rejects_malformed_conninfo_at_once)
{
	char errstr[512] = "";
	struct timespec start;

	clock_gettime(CLOCK_MONOTONIC, &start);
	ck_assert_ptr_null(es_db_connect("host=127.0.0.1 nosuchoption=1", "orders", 5000, errstr,
					 sizeof(errstr)));
	ck_assert_int_lt(elapsed_ms(&start), 1000);
	ck_assert_msg(strstr(errstr, "invalid PostgreSQL connection string"), "errstr: %s", errstr);
	ck_assert_msg(strstr(errstr, "nosuchoption"), "errstr: %s", errstr);
}
END_TEST

/* libpq quotes what it could not read of a conninfo: a password must not
 * come through into the error (which the daemon logs). */
START_TEST(malformed_conninfo_error_does_not_quote_the_password)
{
	static const char *const bad[] = {
		"postgresql://shop:s3cr%zzet-pw@127.0.0.1/shop",
		"postgresql://shop@127.0.0.1/shop?password=s3cr%zzet-pw",
		"postgresql://shop@127.0.0.1/shop?password=s3cr%zzet pw",
	};
	char errstr[512];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errstr[0] = '\0';
		ck_assert_ptr_null(es_db_connect(bad[i], "orders", 0, errstr, sizeof(errstr)));
		ck_assert_msg(strstr(errstr, "invalid PostgreSQL connection string"), "errstr: %s",
			      errstr);
		ck_assert_msg(!strstr(errstr, "zzet"), "the password in: %s", errstr);
	}
	/* The name of the option at fault stays. */
	ck_assert_ptr_null(es_db_connect("postgresql://shop@127.0.0.1/shop?nosuchoption=1",
					 "orders", 0, errstr, sizeof(errstr)));
	ck_assert_msg(strstr(errstr, "\"nosuchoption\""), "errstr: %s", errstr);
}
END_TEST

START_TEST(connect_rejects_missing_or_overlong_schema)
{
	/* 54 bytes: one more than fits in the outbox channel name. */
	const char *overlong = "s23456789012345678901234567890123456789012345678901234";
	char errstr[256] = "";

	ck_assert_ptr_null(es_db_connect("host=127.0.0.1", NULL, 0, errstr, sizeof(errstr)));
	ck_assert_msg(strstr(errstr, "schema"), "errstr: %s", errstr);
	ck_assert_ptr_null(es_db_connect("host=127.0.0.1", "", 0, errstr, sizeof(errstr)));
	ck_assert_int_eq(strlen(overlong), 54);
	ck_assert_ptr_null(es_db_connect("host=127.0.0.1", overlong, 0, errstr, sizeof(errstr)));
	ck_assert_ptr_null(es_db_connect(NULL, "orders", 0, errstr, sizeof(errstr)));
}
END_TEST

static Suite *db_suite(void)
{
	Suite *s = suite_create("db");
	TCase *get = tcase_create("get");
	TCase *errors = tcase_create("errors");
	TCase *connect = tcase_create("connect");

	tcase_add_test(get, get_returns_null_for_null_result);
	tcase_add_test(get, get_looks_columns_up_by_name_and_maps_sql_null);
	suite_add_tcase(s, get);

	tcase_add_test(errors, transient_errors_are_connection_shutdown_serialization_and_deadlock);
	tcase_add_test(errors, permanent_errors_are_not_transient);
	tcase_add_test(errors, lost_connection_without_sqlstate_is_transient);
	tcase_add_test(errors, unique_violation_is_only_23505);
	tcase_add_test(errors, statements_without_connection_fail_as_transient);
	suite_add_tcase(s, errors);

	tcase_add_test(connect, closed_port_fails_within_timeout_without_leaking_password);
	tcase_add_test(connect, connect_with_zero_timeout_makes_one_attempt);
	tcase_add_test(connect, connect_rejects_malformed_conninfo_at_once);
	tcase_add_test(connect, malformed_conninfo_error_does_not_quote_the_password);
	tcase_add_test(connect, connect_rejects_missing_or_overlong_schema);
	/* Valgrind slows the retry loop's bookkeeping, not its deadline. */
	tcase_set_timeout(connect, 30);
	suite_add_tcase(s, connect);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(db_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
