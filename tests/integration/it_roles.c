/*
 * Integration tests of the services' database roles against a real
 * PostgreSQL (DATABASE_URL, a superuser's): deploy/postgres/roles.sql, run
 * on a throwaway database, gives each service a role that owns its schema
 * and may do nothing anywhere else. The roles log in with the passwords
 * that tests/infra/postgres made (the URL's passfile), over TCP, where the
 * test cluster asks for them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "es/db.h"
#include "es/log.h"
#include "testsupport.h"

#define PERMISSION_DENIED "42501"

static const char *const roles[] = {
	"order_service", "payment_service",   "inventory_service",
	"email_service", "analytics_service", "shipping_service",
};
#define NROLES (sizeof(roles) / sizeof(roles[0]))

/* A database of the test's own, bootstrapped as a deployment's would be
 * (bootstrap, once before the tests). */
static const char *conninfo;

static void bootstrap(void)
{
	ck_assert_int_eq(es_test_service_schemas(conninfo, ""), 0);
}

/* Connects as role to its schema (which roles.sql made: the role could not
 * make it), failing the test if that does not work. */
static struct es_db *connect_as(const char *role)
{
	char *url = es_test_role_conninfo(conninfo, role);
	struct es_db *db;

	ck_assert_ptr_nonnull(url);
	db = es_test_connect(url, role);
	free(url);
	return db;
}

/* Runs sql as db's role and says whether it was refused for want of a
 * privilege (SQLSTATE 42501); any other outcome fails the test. */
static void assert_denied(struct es_db *db, const char *role, const char *sql)
{
	char errstr[512] = "";
	long rc = es_db_exec(db, sql, 0, NULL, errstr, sizeof(errstr));

	ck_assert_msg(rc < 0, "%s may run: %s", role, sql);
	ck_assert_msg(!strcmp(es_db_sqlstate(db), PERMISSION_DENIED), "%s, %s: %s (want %s)", role,
		      sql, errstr, PERMISSION_DENIED);
}

START_TEST(migrations_run_as_the_service_role_in_its_own_schema)
{
	for (size_t i = 0; i < NROLES; i++) {
		char errstr[512];
		struct es_db *db = connect_as(roles[i]);

		ck_assert_msg(es_db_migrate(db, NULL, errstr, sizeof(errstr)) >= 0, "%s: %s",
			      roles[i], errstr);
		ck_assert_int_eq(es_test_count(db,
					       "SELECT count(*) AS n FROM pg_catalog.pg_tables "
					       "WHERE tablename = 'es_outbox' AND tableowner = "
					       "current_user AND schemaname = current_user",
					       0, NULL),
				 1);
		es_db_free(db);
	}
}
END_TEST

START_TEST(payment_service_cannot_read_or_write_order_service_tables)
{
	char errstr[512];
	struct es_db *order = connect_as("order_service");
	struct es_db *payment = connect_as("payment_service");

	ck_assert_msg(es_db_migrate(order, NULL, errstr, sizeof(errstr)) >= 0, "%s", errstr);
	ck_assert_int_ge(es_db_exec(order,
				    "INSERT INTO es_outbox (topic, msg_key, event_id, event_type, "
				    "payload) VALUES ('orders', 'o-1', 'e-1', 'OrderPlaced', '{}')",
				    0, NULL, errstr, sizeof(errstr)),
			 0);
	assert_denied(payment, "payment_service", "SELECT * FROM order_service.es_outbox");
	assert_denied(payment, "payment_service",
		      "UPDATE order_service.es_outbox SET published_at = now()");
	assert_denied(payment, "payment_service", "DELETE FROM order_service.es_outbox");
	/* Not even a look at what the schema holds. */
	assert_denied(payment, "payment_service",
		      "SELECT 1 FROM order_service.es_outbox_unpublished");
	es_db_free(payment);
	es_db_free(order);
}
END_TEST

START_TEST(no_service_role_creates_anything_outside_its_own_schema)
{
	char sql[256], errstr[512];

	for (size_t i = 0; i < NROLES; i++) {
		struct es_db *db = connect_as(roles[i]);
		const char *other = roles[(i + 1) % NROLES];

		assert_denied(db, roles[i], "CREATE TABLE public.intruder (x int)");
		assert_denied(db, roles[i],
			      "CREATE FUNCTION public.intruder() RETURNS int "
			      "LANGUAGE sql AS 'SELECT 1'");
		assert_denied(db, roles[i], "CREATE SCHEMA intruder");
		assert_denied(db, roles[i], "CREATE TEMPORARY TABLE intruder (x int)");
		snprintf(sql, sizeof(sql), "CREATE TABLE %s.intruder (x int)", other);
		assert_denied(db, roles[i], sql);
		snprintf(sql, sizeof(sql), "CREATE VIEW %s.intruder AS SELECT 1", other);
		assert_denied(db, roles[i], sql);
		assert_denied(db, roles[i], "CREATE ROLE intruder");
		assert_denied(db, roles[i], "CREATE DATABASE intruder");
		/* Its own schema is its own. */
		ck_assert_msg(es_db_exec(db, "CREATE TABLE mine (x int)", 0, NULL, errstr,
					 sizeof(errstr)) >= 0,
			      "%s: %s", roles[i], errstr);
		es_db_free(db);
	}
}
END_TEST

/* The superuser's connection (shopctl's, an operator's) to a service's
 * schema takes on the schema's role: what it creates belongs to the
 * service, and it may do no more than the service. */
START_TEST(an_administrator_in_a_service_schema_acts_as_its_role)
{
	char errstr[512];
	struct es_db *db = es_test_connect(conninfo, "inventory_service");

	ck_assert_msg(es_db_exec(db, "CREATE TABLE made_by_the_administrator (x int)", 0, NULL,
				 errstr, sizeof(errstr)) >= 0,
		      "%s", errstr);
	ck_assert_int_eq(es_test_count(db,
				       "SELECT count(*) AS n FROM pg_catalog.pg_tables WHERE "
				       "tablename = 'made_by_the_administrator' AND "
				       "tableowner = 'inventory_service' AND current_user = "
				       "'inventory_service'",
				       0, NULL),
			 1);
	assert_denied(db, "the administrator as inventory_service",
		      "SELECT * FROM order_service.es_outbox");
	es_db_free(db);
}
END_TEST

/* A wrong password is refused with a message that holds neither it nor the
 * right one; the daemon logs that message as it is. */
START_TEST(a_refused_password_is_not_in_the_error)
{
	static const char wrong[] = "not-the-password-of-payment-service";
	char *url = es_test_role_conninfo(conninfo, "payment_service");
	size_t len = strlen(url) + sizeof(wrong) + 16;
	char *with_password = malloc(len);
	char errstr[1024] = "";
	struct es_db *db;

	ck_assert_ptr_nonnull(with_password);
	snprintf(with_password, len, "%s password='%s'", url, wrong);
	db = es_db_connect(with_password, "payment_service", 0, errstr, sizeof(errstr));
	ck_assert_ptr_null(db);
	ck_assert_msg(strstr(errstr, "password authentication failed"), "%s", errstr);
	ck_assert_msg(!strstr(errstr, wrong), "the password in the error: %s", errstr);
	ck_assert_msg(!strstr(errstr, "passfile"), "the passfile in the error: %s", errstr);
	free(with_password);
	free(url);
}
END_TEST

static Suite *roles_suite(void)
{
	Suite *s = suite_create("roles");
	TCase *tc = tcase_create("roles");

	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, bootstrap, NULL);
	tcase_add_test(tc, migrations_run_as_the_service_role_in_its_own_schema);
	tcase_add_test(tc, payment_service_cannot_read_or_write_order_service_tables);
	tcase_add_test(tc, no_service_role_creates_anything_outside_its_own_schema);
	tcase_add_test(tc, an_administrator_in_a_service_schema_acts_as_its_role);
	tcase_add_test(tc, a_refused_password_is_not_in_the_error);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (!es_test_database_url())
		return ES_TEST_SKIP;
	es_log_init("it_roles", ES_LOG_WARN);
	return es_test_run_with_db(roles_suite(), &conninfo);
}
