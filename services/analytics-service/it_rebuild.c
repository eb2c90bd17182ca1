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
#include <time.h>

#include <check.h>

#include "analytics.h"
#include "es/inbox.h"
#include "es/log.h"
#include "it_live.h"
#include "it_saga.h"
#include "rebuild.h"
#include "stats.h"
#include "testkafka.h"
#include "testsupport.h"

#define PARTITIONS 3
#define CONSUME_TIMEOUT_MS 60000

static const char *test_conninfo;
static const char *bootstrap;

struct world {
	char topic[IT_NTOPICS][96];
	const char *topics[IT_NTOPICS + 1]; /* NULL-terminated */
	char dlq[96];
	char group[96];
	char schema[64];
	struct es_db *db;
	struct analytics app;
	struct it_saga saga;
};

static void world_init(struct world *w)
{
	char errstr[512];

	memset(w, 0, sizeof(*w));
	for (int t = 0; t < IT_NTOPICS; t++) {
		char prefix[64];

		snprintf(prefix, sizeof(prefix), "it_analytics_%s", it_topic_names[t]);
		ck_assert_int_eq(es_test_unique_name(w->topic[t], sizeof(w->topic[t]), prefix), 0);
		ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, w->topic[t], PARTITIONS), 0);
		w->topics[t] = w->topic[t];
	}
	ck_assert_int_eq(es_test_unique_name(w->dlq, sizeof(w->dlq), "it_analytics_dlq"), 0);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, w->dlq, 1), 0);
	ck_assert_int_eq(es_test_unique_name(w->group, sizeof(w->group), "it_analytics_group"), 0);

	ck_assert_int_eq(es_test_unique_name(w->schema, sizeof(w->schema), "analytics"), 0);
	w->db = es_db_connect(test_conninfo, w->schema, 10000, errstr, sizeof(errstr));
	ck_assert_msg(w->db, "%s", errstr);
	ck_assert_msg(es_db_migrate_list(w->db, analytics_migrations, analytics_migrations_count,
					 errstr, sizeof(errstr)) >= 0,
		      "%s", errstr);
	w->app.db = w->db;
	it_saga_build(&w->saga);
}

static void world_release(struct world *w)
{
	it_saga_free(&w->saga);
	es_db_free(w->db);
}

/* Produces every saga event to its topic, keyed by order id. */
static void produce_saga(struct world *w)
{
	char errstr[512];
	struct es_producer *p = es_producer_new(bootstrap, "it-analytics", NULL, NULL, errstr,
						sizeof(errstr));

	ck_assert_msg(p, "%s", errstr);
	for (int t = 0; t < IT_NTOPICS; t++) {
		for (size_t i = 0; i < w->saga.n[t]; i++)
			ck_assert_msg(es_producer_send(p, w->topic[t], w->saga.ev[t][i], NULL,
						       errstr, sizeof(errstr)) == 0,
				      "%s", errstr);
	}
	ck_assert_int_eq(es_producer_flush(p, 30000), 0);
	ck_assert_uint_eq(es_producer_delivered(p), w->saga.total);
	es_producer_free(p);
}

/* analytics-service's consumer; its handler writes through app. */
static struct es_consumer *consumer_for(struct world *w, struct analytics *app)
{
	struct es_consumer_config cfg = {
		.bootstrap = bootstrap,
		.group_id = w->group,
		.topics = w->topics,
		.service = ANALYTICS_SERVICE,
		.dlq_topic = w->dlq,
		.handler = analytics_handle,
		.handler_arg = app,
		.retry_initial_ms = 20,
		.retry_max_ms = 200,
	};
	char errstr[512];
	struct es_consumer *c = es_consumer_new(&cfg, errstr, sizeof(errstr));

	ck_assert_msg(c, "%s", errstr);
	return c;
}

static struct es_consumer *consumer(struct world *w)
{
	return consumer_for(w, &w->app);
}

static long inbox_count(struct es_db *db)
{
	char errstr[512];
	long n = es_inbox_count(db, ANALYTICS_SERVICE, errstr, sizeof(errstr));

	ck_assert_msg(n >= 0, "%s", errstr);
	return n;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls c until every saga event is in the inbox (and the consumer has
 * joined its group), or fails the test at the deadline. */
static void consume_all(struct world *w, struct es_consumer *c)
{
	volatile sig_atomic_t stop = 0;
	long long deadline = now_ms() + CONSUME_TIMEOUT_MS;
	char errstr[512];
	long n = 0;

	while (now_ms() < deadline) {
		ck_assert_msg(es_consumer_poll(c, 100, &stop, errstr, sizeof(errstr)) == 0, "%s",
			      errstr);
		n = inbox_count(w->db);
		if (n == (long)w->saga.total && es_consumer_joined(c))
			return;
		ck_assert_int_le(n, (long)w->saga.total);
	}
	ck_abort_msg("consumed %ld of %zu events in %d ms", n, w->saga.total, CONSUME_TIMEOUT_MS);
}

/* The group's committed offsets over all partitions of topic. */
static long long committed_sum(const struct world *w, int t)
{
	long long sum = 0;

	for (int p = 0; p < PARTITIONS; p++) {
		long long off = es_test_kafka_committed(bootstrap, w->group, w->topic[t], p);

		if (off >= 0)
			sum += off;
	}
	return sum;
}

static json_t *stats(struct es_db *db)
{
	char errstr[512];
	json_t *body = analytics_stats_build(db, errstr, sizeof(errstr));

	ck_assert_msg(body, "stats: %s", errstr);
	return body;
}

static void assert_same(json_t *got, json_t *want)
{
	char *g = json_dumps(got, JSON_SORT_KEYS), *wa = json_dumps(want, JSON_SORT_KEYS);

	ck_assert_msg(json_equal(got, want), "got  %s\nwant %s", g, wa);
	free(g);
	free(wa);
	json_decref(got);
	json_decref(want);
}

START_TEST(rebuild_replays_the_topics_to_the_same_numbers)
{
	struct analytics_rebuild_report rep;
	struct world w;
	char errstr[512];
	json_t *before, *emptied;

	world_init(&w);
	produce_saga(&w);
	{
		struct es_consumer *c = consumer(&w);

		consume_all(&w, c);
		es_consumer_free(c); /* leaves the group, committing its offsets */
	}
	/* The first run committed its offsets: a plain restart would read
	 * nothing again. */
	for (int t = 0; t < IT_NTOPICS; t++)
		ck_assert_int_eq(committed_sum(&w, t), (long long)w.saga.n[t]);
	before = stats(w.db);
	assert_same(json_incref(before), json_loads(it_saga_expected_stats, 0, NULL));

	ck_assert_msg(analytics_rebuild(w.db, bootstrap, w.group, w.topics, stdout, &rep, errstr,
					sizeof(errstr)) == 0,
		      "%s", errstr);
	ck_assert_int_eq(rep.topics, IT_NTOPICS);
	ck_assert_int_eq(rep.missing_topics, 0);
	ck_assert_int_eq(rep.partitions, IT_NTOPICS * PARTITIONS);
	ck_assert_int_eq(rep.replay_messages, (long long)w.saga.total);
	ck_assert_int_eq(rep.orders, 6);
	ck_assert_int_eq(rep.inbox, (long)w.saga.total);
	/* Offsets at the beginning, read models and inbox empty. */
	for (int t = 0; t < IT_NTOPICS; t++) {
		for (int p = 0; p < PARTITIONS; p++)
			ck_assert_int_eq(es_test_kafka_committed(bootstrap, w.group, w.topic[t], p),
					 0);
	}
	ck_assert_int_eq(inbox_count(w.db), 0);
	emptied = stats(w.db);
	ck_assert_int_eq(
		json_integer_value(json_object_get(json_object_get(emptied, "orders"), "placed")),
		0);
	json_decref(emptied);

	/* The next start replays everything from the committed offsets. */
	{
		struct es_consumer *c = consumer(&w);

		consume_all(&w, c);
		es_consumer_free(c);
	}
	assert_same(stats(w.db), before);
	for (int t = 0; t < IT_NTOPICS; t++)
		ck_assert_int_eq(committed_sum(&w, t), (long long)w.saga.n[t]);
	world_release(&w);
}
END_TEST

START_TEST(rebuild_refuses_while_the_group_has_a_live_member)
{
	struct analytics_rebuild_report rep;
	struct it_live live;
	struct world w;
	char errstr[512];
	json_t *before;

	world_init(&w);
	produce_saga(&w);
	it_live_init(&live, test_conninfo, w.schema);
	{
		struct es_consumer *c = consumer_for(&w, &live.app);

		consume_all(&w, c);
		it_live_start(&live, c); /* polled from now on, as by the daemon */
	}
	before = stats(w.db);

	/* The daemon is still running: the rebuild joins the group, is given
	 * only part of the partitions and leaves; nothing may be deleted. */
	ck_assert_int_eq(analytics_rebuild(w.db, bootstrap, w.group, w.topics, stdout, &rep, errstr,
					   sizeof(errstr)),
			 -1);
	ck_assert_msg(strstr(errstr, "still running"), "%s", errstr);
	printf("refused as expected: %s\n", errstr);
	ck_assert_int_eq(inbox_count(w.db), (long)w.saga.total);
	assert_same(stats(w.db), json_incref(before));

	it_live_stop(&live);
	/* Stopped, the same rebuild goes through. */
	ck_assert_msg(analytics_rebuild(w.db, bootstrap, w.group, w.topics, NULL, &rep, errstr,
					sizeof(errstr)) == 0,
		      "%s", errstr);
	ck_assert_int_eq(inbox_count(w.db), 0);
	json_decref(before);
	world_release(&w);
}
END_TEST

START_TEST(rebuild_of_topics_never_created_only_empties_the_read_models)
{
	struct analytics_rebuild_report rep;
	struct world w;
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
			struct es_delivery d = {.topic = topics[t], .attempt = 1};

			ck_assert_int_eq(analytics_handle(&w.app, w.saga.ev[t][i], &d, errstr,
							  sizeof(errstr)),
					 ES_HANDLER_OK);
		}
	}
	ck_assert_msg(analytics_rebuild(w.db, bootstrap, w.group, topics, stdout, &rep, errstr,
					sizeof(errstr)) == 0,
		      "%s", errstr);
	ck_assert_int_eq(rep.missing_topics, IT_NTOPICS);
	ck_assert_int_eq(rep.partitions, 0);
	ck_assert_int_eq(rep.inbox, (long)w.saga.total);
	ck_assert_int_eq(inbox_count(w.db), 0);
	world_release(&w);
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
