/*
 * Integration tests of the rebuild (rebuild.c) on the development broker's
 * engine: librdkafka's mock cluster (rdkafka_mock.h), which
 * tools/devbroker runs for the demo, in this process. It is NOT Apache
 * Kafka; it_rebuild.c runs the same tests on the real broker. The database
 * is the real PostgreSQL of the integration fixture.
 *
 * What matters here: the mock refuses an offset commit from a client that
 * is not a member of the group once the group has existed (the real broker
 * takes it while the group is empty), and it waits session.timeout.ms - 1 s
 * of the member that left before it assigns partitions again. The rebuild
 * joins the group as a member, so it must work here too, after the daemon
 * was in the group and left, and must still refuse while it is there.
 *
 * The es clients read every KAFKA_* variable as a librdkafka property, and
 * ctest runs this binary with the real broker's KAFKA_BOOTSTRAP_SERVERS:
 * main() removes them all, then sets KAFKA_SESSION_TIMEOUT_MS=6000 as the
 * demo does for its daemons (the mock's waits are then 5 s, not 9 s).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "analytics.h"
#include "es/log.h"
#include "live.h"
#include "rebuild.h"
#include "saga.h"
#include "testkafka.h"
#include "testsupport.h"
#include "world.h"

#define PARTITIONS 3

static const char *conninfo;

/* The test's cluster: world_init starts it, world_release stops it. */
static struct es_test_kafka_mock mock;

static void world_init(struct it_world *w)
{
	ck_assert_int_eq(es_test_kafka_mock_init(&mock, 1), 0);
	it_world_init(w, mock.bootstrap, conninfo, "analytics_mock");
	for (int t = 0; t < IT_NTOPICS; t++) {
		snprintf(w->topic[t], sizeof(w->topic[t]), "%s", it_topic_names[t]);
		ck_assert_int_eq(rd_kafka_mock_topic_create(mock.mc, w->topic[t], PARTITIONS, 1),
				 0);
	}
	snprintf(w->dlq, sizeof(w->dlq), "dlq.%s", ANALYTICS_SERVICE);
	ck_assert_int_eq(rd_kafka_mock_topic_create(mock.mc, w->dlq, 1, 1), 0);
	snprintf(w->group, sizeof(w->group), "%s", ANALYTICS_SERVICE);
}

static void world_release(struct it_world *w)
{
	it_world_release(w);
	es_test_kafka_mock_release(&mock);
}

/* A client of group that never joins it: it reads what the rebuild wrote. */
static rd_kafka_t *reader(const struct it_world *w)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[512];
	rd_kafka_t *rk;

	ck_assert_int_eq(
		rd_kafka_conf_set(conf, "bootstrap.servers", w->bootstrap, errstr, sizeof(errstr)),
		RD_KAFKA_CONF_OK);
	ck_assert_int_eq(rd_kafka_conf_set(conf, "group.id", w->group, errstr, sizeof(errstr)),
			 RD_KAFKA_CONF_OK);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	ck_assert_msg(rk, "%s", errstr);
	return rk;
}

/* Asserts that the group's committed offset of every partition is the
 * partition's low watermark. */
static void assert_offsets_at_low_watermarks(const struct it_world *w)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
	rd_kafka_t *rk = reader(w);

	for (int t = 0; t < IT_NTOPICS; t++) {
		for (int p = 0; p < PARTITIONS; p++)
			rd_kafka_topic_partition_list_add(l, w->topic[t], p);
	}
	ck_assert_int_eq(rd_kafka_committed(rk, l, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
	for (int i = 0; i < l->cnt; i++) {
		int64_t low = -1, high = -1;

		ck_assert_int_eq(rd_kafka_query_watermark_offsets(rk, l->elems[i].topic,
								  l->elems[i].partition, &low,
								  &high, 10000),
				 RD_KAFKA_RESP_ERR_NO_ERROR);
		ck_assert_msg(l->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
				      l->elems[i].offset == low,
			      "%s [%d]: committed %lld (%s), low watermark %lld", l->elems[i].topic,
			      (int)l->elems[i].partition, (long long)l->elems[i].offset,
			      rd_kafka_err2str(l->elems[i].err), (long long)low);
	}
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_destroy(rk);
}

/* The sum of the group's committed offsets over all partitions. */
static long long committed_sum(const struct it_world *w)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
	rd_kafka_t *rk = reader(w);
	long long sum = 0;

	for (int t = 0; t < IT_NTOPICS; t++) {
		for (int p = 0; p < PARTITIONS; p++)
			rd_kafka_topic_partition_list_add(l, w->topic[t], p);
	}
	ck_assert_int_eq(rd_kafka_committed(rk, l, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
	for (int i = 0; i < l->cnt; i++) {
		if (l->elems[i].offset >= 0)
			sum += l->elems[i].offset;
	}
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_destroy(rk);
	return sum;
}

START_TEST(rebuild_on_the_mock_cluster_after_the_daemon_left_resets_to_the_low_watermarks)
{
	struct analytics_rebuild_report rep;
	struct it_world w;
	char errstr[512];
	json_t *before;

	world_init(&w);
	it_world_produce_saga(&w);
	it_world_run_consumer(&w);
	/* The daemon left, committing: a plain restart would read nothing again. */
	ck_assert_int_eq(committed_sum(&w), (long long)w.saga.total);
	before = it_stats(w.db);
	it_assert_same(json_incref(before), json_loads(it_saga_expected_stats, 0, NULL));

	/* The group existed and is empty: the commit of a non-member would
	 * be refused here with UNKNOWN_MEMBER_ID; the member's goes through. */
	ck_assert_msg(analytics_rebuild(w.db, w.bootstrap, w.group, w.topics, stdout, NULL, &rep,
					errstr, sizeof(errstr)) == 0,
		      "%s", errstr);
	ck_assert_int_eq(rep.topics, IT_NTOPICS);
	ck_assert_int_eq(rep.partitions, IT_NTOPICS * PARTITIONS);
	ck_assert_int_eq(rep.replay_messages, (long long)w.saga.total);
	ck_assert_int_eq(rep.orders, 6);
	ck_assert_int_eq(rep.inbox, (long)w.saga.total);
	assert_offsets_at_low_watermarks(&w);
	ck_assert_int_eq(it_inbox_count(w.db), 0);

	/* The daemon starts again and replays: the same numbers. */
	it_world_run_consumer(&w);
	it_assert_same(it_stats(w.db), before);
	world_release(&w);
}
END_TEST

START_TEST(rebuild_on_the_mock_cluster_refuses_while_the_daemon_is_in_the_group)
{
	struct it_world w;

	world_init(&w);
	it_live_assert_blocks_rebuild(&w, conninfo);
	world_release(&w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("analytics rebuild (mock cluster + PostgreSQL)");
	TCase *tc = tcase_create("rebuild");

	if (!es_test_database_url())
		return ES_TEST_SKIP;
	es_log_init("it_analytics_rebuild_mock", ES_LOG_WARN);
	es_test_kafka_forget_environment();
	if (setenv("KAFKA_SESSION_TIMEOUT_MS", "6000", 1))
		return 1;
	tcase_add_test(
		tc, rebuild_on_the_mock_cluster_after_the_daemon_left_resets_to_the_low_watermarks);
	tcase_add_test(tc, rebuild_on_the_mock_cluster_refuses_while_the_daemon_is_in_the_group);
	tcase_set_timeout(tc, 240);
	suite_add_tcase(s, tc);
	return es_test_run_with_db(s, &conninfo);
}
