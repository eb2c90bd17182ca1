/*
 * Integration tests of `shopctl rebuild-analytics`, the shopctl binary run
 * as a subprocess the way a person runs it: with stand-ins for the
 * analytics-service binary, and, when this build has it, the real
 * analytics-service on a throwaway database and topics of its own.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "es/log.h"
#include "fixture.h"
#include "testkafka.h"
#include "testsupport.h"

static const char *bootstrap;

START_TEST(rebuild_analytics_runs_the_program_with_rebuild_and_passes_its_status)
{
	const char *echo[] = {"ANALYTICS_SERVICE_BIN=/bin/echo", NULL};
	const char *fail[] = {"ANALYTICS_SERVICE_BIN=/bin/false", NULL};
	const char *none[] = {"ANALYTICS_SERVICE_BIN=/nonexistent/analytics-service", NULL};
	struct run r;

	run_env(&r, echo, "rebuild-analytics", NULL);
	ck_assert_int_eq(r.status, 0);
	assert_has(r.out, "shopctl: running /bin/echo --rebuild\n--rebuild\n");
	run_release(&r);
	run_env(&r, fail, "rebuild-analytics", NULL);
	ck_assert_int_eq(r.status, 1);
	assert_has(r.err, "failed (exit status 1)");
	run_release(&r);
	run_env(&r, none, "rebuild-analytics", NULL);
	ck_assert_int_eq(r.status, 1);
	assert_has(r.err, "ANALYTICS_SERVICE_BIN=/nonexistent/analytics-service");
	run_release(&r);
	run(&r, "rebuild-analytics", "--now", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
}
END_TEST

#ifdef HAVE_ANALYTICS_SERVICE
/* The real analytics-service of this build tree, found next to shopctl,
 * on a throwaway database and topics of its own. */
START_TEST(rebuild_analytics_runs_the_real_rebuild)
{
	struct es_test_db tdb;
	char err[512], run_name[64], topics[4][96], group[96], env_buf[6][200];
	const char *names[] = {"orders", "payments", "inventory", "notifications"};
	const char *vars[] = {"TOPIC_ORDERS", "TOPIC_PAYMENTS", "TOPIC_INVENTORY",
			      "TOPIC_NOTIFICATIONS"};
	const char *env[9];
	struct run r;

	ck_assert_msg(es_test_db_create(&tdb, err, sizeof(err)) == 0, "%s", err);
	es_test_unique_name(run_name, sizeof(run_name), "it_shopctl_rebuild");
	for (int i = 0; i < 4; i++) {
		snprintf(topics[i], sizeof(topics[i]), "%s.%s", run_name, names[i]);
		ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, topics[i], 2), 0);
		snprintf(env_buf[i], sizeof(env_buf[i]), "%s=%s", vars[i], topics[i]);
		env[i] = env_buf[i];
	}
	snprintf(group, sizeof(group), "%s.analytics", run_name);
	snprintf(env_buf[4], sizeof(env_buf[4]), "CONSUMER_GROUP=%s", group);
	snprintf(env_buf[5], sizeof(env_buf[5]), "DATABASE_URL=%s", tdb.conninfo);
	env[4] = env_buf[4];
	env[5] = env_buf[5];
	env[6] = "ANALYTICS_SERVICE_BIN";
	env[7] = "LOG_LEVEL=warn";
	env[8] = NULL;

	run_env(&r, env, "rebuild-analytics", NULL);
	ck_assert_int_eq(r.status, 0);
	assert_has(r.out, "analytics-service --rebuild\n");
	assert_has(r.out, "offsets of 8 partitions reset to the beginning");
	assert_has(r.out, "shopctl: rebuild done");
	run_release(&r);
	ck_assert_int_eq(es_test_kafka_committed(bootstrap, group, topics[0], 1), 0);
	es_test_db_drop(&tdb);
}
END_TEST
#endif

int main(void)
{
	Suite *s = suite_create("tools.shopctl.rebuild");
	TCase *tc = tcase_create("rebuild");
	SRunner *sr;
	int failed;

	bootstrap = es_test_kafka_bootstrap();
	if (!bootstrap)
		return ES_TEST_SKIP;
	es_log_init("it-shopctl-rebuild", ES_LOG_WARN);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, rebuild_analytics_runs_the_program_with_rebuild_and_passes_its_status);
#ifdef HAVE_ANALYTICS_SERVICE
	tcase_add_test(tc, rebuild_analytics_runs_the_real_rebuild);
#endif
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
