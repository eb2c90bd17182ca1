/*
 * Integration test of `shopctl outbox list/retry`, the shopctl binary run
 * as a subprocess the way a person runs it, on a throwaway database of the
 * real PostgreSQL.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "es/db.h"
#include "es/log.h"
#include "fixture.h"
#include "testsupport.h"

/* A parked outbox row is listed with its reason and the row waiting behind
 * it; retry puts it back for the relay, once. */
START_TEST(outbox_lists_and_retries_a_parked_row)
{
	struct es_test_db tdb;
	struct es_db *db;
	char err[512], env_buf[2][300];
	const char *env[3] = {env_buf[0], env_buf[1], NULL};
	struct run r;

	ck_assert_msg(es_test_db_create(&tdb, err, sizeof(err)) == 0, "%s", err);
	db = es_db_connect(tdb.conninfo, "payment_service", 10000, err, sizeof(err));
	ck_assert_msg(db, "%s", err);
	ck_assert_msg(es_db_migrate(db, NULL, err, sizeof(err)) >= 0, "%s", err);
	ck_assert_msg(es_db_exec(db,
				 "INSERT INTO es_outbox (topic, msg_key, event_id, event_type, "
				 "payload, attempts, parked_at, park_reason) VALUES "
				 "('payments', 'k1', 'e1', 'PaymentProcessed', '{}', 1, now(), "
				 "'Broker: Message size too large (MSG_SIZE_TOO_LARGE)'), "
				 "('payments', 'k1', 'e2', 'PaymentRefunded', '{}', 0, NULL, NULL)",
				 0, NULL, err, sizeof(err)) == 2,
		      "%s", err);
	snprintf(env_buf[0], sizeof(env_buf[0]), "DATABASE_URL=%s", tdb.conninfo);
	snprintf(env_buf[1], sizeof(env_buf[1]), "DATABASE_SCHEMA");

	run_env(&r, env, "outbox", "list", "payment-service", NULL);
	ck_assert_int_eq(r.status, 0);
	assert_has(r.out, "id=1  topic=payments  key=k1  type=PaymentProcessed  attempts=1");
	assert_has(r.out, "waiting=1  reason=Broker: Message size too large (MSG_SIZE_TOO_LARGE)");
	assert_has(r.err, "shopctl: 1 parked row\n");
	run_release(&r);

	run_env(&r, env, "outbox", "retry", "payment-service", "1", NULL);
	ck_assert_int_eq(r.status, 0);
	assert_has(r.out, "row 1 put back");
	run_release(&r);
	ck_assert_int_eq(
		es_test_count(db,
			      "SELECT count(*) AS n FROM es_outbox WHERE parked_at IS NULL "
			      "AND attempts = 0",
			      0, NULL),
		2);
	run_env(&r, env, "outbox", "retry", "payment-service", "1", NULL);
	ck_assert_int_eq(r.status, 1);
	assert_has(r.err, "no parked row 1");
	run_release(&r);
	run_env(&r, env, "outbox", "retry", "payment-service", "x", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
	es_db_free(db);
	es_test_db_drop(&tdb);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tools.shopctl.outbox");
	TCase *tc = tcase_create("outbox");
	SRunner *sr;
	int failed;

	if (!es_test_database_url())
		return ES_TEST_SKIP;
	es_log_init("it-shopctl-outbox", ES_LOG_WARN);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, outbox_lists_and_retries_a_parked_row);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
