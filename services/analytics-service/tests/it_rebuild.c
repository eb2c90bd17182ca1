/*
 * Integration tests for the rebuild (rebuild.c) against the real broker
 * and database: the read models computed from the topics, thrown away,
 * and computed again from the beginning of the topics give the same
 * numbers; and a rebuild refuses to run while the consumer group is alive.
 * Every test uses topics, a consumer group and a schema of its own.
 * it_rebuild_mock.c runs the same rebuild on the development broker's
 * engine, librdkafka's mock cluster.
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

static const char *test_conninfo;
static const char *bootstrap;

static void world_init(struct it_world *w)
{
	it_world_init(w, bootstrap, test_conninfo, "analytics");
	for (int t = 0; t < IT_NTOPICS; t++) {
		char prefix[64];

		snprintf(prefix, sizeof(prefix), "it_analytics_%s", it_topic_names[t]);
		ck_assert_int_eq(es_test_unique_name(w->topic[t], sizeof(w->topic[t]), prefix), 0);
		ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, w->topic[t], PARTITIONS), 0);
	}
	ck_assert_int_eq(es_test_unique_name(w->dlq, sizeof(w->dlq), "it_analytics_dlq"), 0);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, w->dlq, 1), 0);
	ck_assert_int_eq(es_test_unique_name(w->group, sizeof(w->group), "it_analytics_group"), 0);
}

/* The group's committed offsets over all partitions of topic. */
static long long committed_sum(const struct it_world *w, int t)
{
	long long sum = 0;

	for (int p = 0; p < PARTITIONS; p++) {
		long long off = es_test_kafka_committed(bootstrap, w->group, w->topic[t], p);

		if (off >= 0)
			sum += off;
	}
	return sum;
}

START_TEST(rebuild_replays_the_topics_to_the_same_numbers)
{
	struct analytics_rebuild_report rep;
	struct it_world w;
	char errstr[512];
	json_t *before, *emptied;

	world_init(&w);
	it_world_produce_saga(&w);
	it_world_run_consumer(&w);
	/* The first run committed its offsets: a plain restart would read
	 * nothing again. */
	for (int t = 0; t < IT_NTOPICS; t++)
		ck_assert_int_eq(committed_sum(&w, t), (long long)w.saga.n[t]);
	before = it_stats(w.db);
	it_assert_same(json_incref(before), json_loads(it_saga_expected_stats, 0, NULL));

	ck_assert_msg(analytics_rebuild(w.db, bootstrap, w.group, w.topics, stdout, NULL, &rep,
					errstr, sizeof(errstr)) == 0,
		      "%s", errstr);
	ck_assert_int_eq(rep.topics, IT_NTOPICS);
	ck_assert_int_eq(rep.missing_topics, 0);
	ck_assert_int_eq(rep.partitions, IT_NTOPICS * PARTITIONS);
	ck_assert_int_eq(rep.replay_messages, (long long)w.saga.total);
	ck_assert_int_eq(rep.orders, 6);
	ck_assert_int_eq(rep.deliveries, 3);
	ck_assert_int_eq(rep.inbox, (long)w.saga.total);
	/* Offsets at the beginning, read models and inbox empty. */
	for (int t = 0; t < IT_NTOPICS; t++) {
		for (int p = 0; p < PARTITIONS; p++)
			ck_assert_int_eq(es_test_kafka_committed(bootstrap, w.group, w.topic[t], p),
					 0);
	}
	ck_assert_int_eq(it_inbox_count(w.db), 0);
	emptied = it_stats(w.db);
	ck_assert_int_eq(
		json_integer_value(json_object_get(json_object_get(emptied, "orders"), "placed")),
		0);
	json_decref(emptied);

	/* The next start replays everything from the committed offsets. */
	it_world_run_consumer(&w);
	it_assert_same(it_stats(w.db), before);
	for (int t = 0; t < IT_NTOPICS; t++)
		ck_assert_int_eq(committed_sum(&w, t), (long long)w.saga.n[t]);
	it_world_release(&w);
}
END_TEST

START_TEST(rebuild_refuses_while_the_group_has_a_live_member)
{
	struct it_world w;

	world_init(&w);
	it_live_assert_blocks_rebuild(&w, test_conninfo);
	it_world_release(&w);
}
END_TEST

START_TEST(rebuild_of_topics_never_created_only_empties_the_read_models)
{
	struct analytics_rebuild_report rep;
	struct it_world w;
	char errstr[512];
	char missing[IT_NTOPICS][96];
	const char *topics[IT_NTOPICS + 1] = {NULL};

	world_init(&w);
	for (int t = 0; t < IT_NTOPICS; t++) {
		ck_assert_int_eq(es_test_unique_name(missing[t], sizeof(missing[t]), "it_nowhere"),
				 0);
		topics[t] = missing[t];
	}
	/* Events handled directly, as if they came from those topics. */
	for (int t = 0; t < IT_NTOPICS; t++) {
		for (size_t i = 0; i < w.saga.n[t]; i++) {
			struct es_dispatch d = {.consumer = ANALYTICS_SERVICE,
						.db = w.app.db,
						.handlers = &analytics_handlers,
						.app = &w.app};

			ck_assert_int_eq(
				es_dispatch_one(&d, w.saga.ev[t][i], errstr, sizeof(errstr)),
				ES_HANDLER_OK);
		}
	}
	ck_assert_msg(analytics_rebuild(w.db, bootstrap, w.group, topics, stdout, NULL, &rep,
					errstr, sizeof(errstr)) == 0,
		      "%s", errstr);
	ck_assert_int_eq(rep.missing_topics, IT_NTOPICS);
	ck_assert_int_eq(rep.partitions, 0);
	ck_assert_int_eq(rep.inbox, (long)w.saga.total);
	ck_assert_int_eq(it_inbox_count(w.db), 0);
	it_world_release(&w);
}
END_TEST

static Suite *rebuild_suite(void)
{
	Suite *s = suite_create("analytics rebuild (Kafka + PostgreSQL)");
	TCase *tc = tcase_create("rebuild");

	tcase_add_test(tc, rebuild_replays_the_topics_to_the_same_numbers);
	tcase_add_test(tc, rebuild_refuses_while_the_group_has_a_live_member);
	tcase_add_test(tc, rebuild_of_topics_never_created_only_empties_the_read_models);
	tcase_set_timeout(tc, 240);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (!es_test_database_url())
		return ES_TEST_SKIP;
	bootstrap = es_test_kafka_bootstrap();
	if (!bootstrap)
		return ES_TEST_SKIP;
	es_log_init("it_analytics_rebuild", ES_LOG_WARN);
	return es_test_run_with_db(rebuild_suite(), &test_conninfo);
}
