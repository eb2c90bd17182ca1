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
#include <time.h>

#include <check.h>

#include "analytics.h"
#include "es/inbox.h"
#include "es/log.h"
#include "it_live.h"
#include "it_saga.h"
#include "rebuild.h"
#include "stats.h"
#include "testsupport.h"

/* After rdkafka.h (which es/kafka.h includes), as it requires. */
#include <librdkafka/rdkafka_mock.h>

#define PARTITIONS 3
/* A bound, not a speed: each join waits out the mock's rebalance delays. */
#define CONSUME_TIMEOUT_MS 60000

extern char **environ;

static const char *conninfo;

struct world {
	rd_kafka_t *host; /* the client that hosts the mock cluster */
	rd_kafka_mock_cluster_t *mc;
	const char *bootstrap;
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
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char errstr[512];

	memset(w, 0, sizeof(*w));
	/* This client only hosts the cluster; it never connects anywhere. */
	rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
	w->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	ck_assert_msg(w->host, "%s", errstr);
	w->mc = rd_kafka_mock_cluster_new(w->host, 1);
	ck_assert_ptr_nonnull(w->mc);
	w->bootstrap = rd_kafka_mock_cluster_bootstraps(w->mc);
	for (int t = 0; t < IT_NTOPICS; t++) {
		snprintf(w->topic[t], sizeof(w->topic[t]), "%s", it_topic_names[t]);
		ck_assert_int_eq(rd_kafka_mock_topic_create(w->mc, w->topic[t], PARTITIONS, 1), 0);
		w->topics[t] = w->topic[t];
	}
	snprintf(w->dlq, sizeof(w->dlq), "dlq.%s", ANALYTICS_SERVICE);
	ck_assert_int_eq(rd_kafka_mock_topic_create(w->mc, w->dlq, 1, 1), 0);
	snprintf(w->group, sizeof(w->group), "%s", ANALYTICS_SERVICE);

	ck_assert_int_eq(es_test_unique_name(w->schema, sizeof(w->schema), "analytics_mock"), 0);
	w->db = es_db_connect(conninfo, w->schema, 10000, errstr, sizeof(errstr));
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
	rd_kafka_mock_cluster_destroy(w->mc);
	rd_kafka_destroy(w->host);
}

static void produce_saga(struct world *w)
{
	char errstr[512];
	struct es_producer *p = es_producer_new(w->bootstrap, "it-analytics-mock", NULL, NULL,
						errstr, sizeof(errstr));

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
static struct es_consumer *consumer(struct world *w, struct analytics *app)
{
	struct es_consumer_config cfg = {
		.bootstrap = w->bootstrap,
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

/* Polls c until every saga event is in the inbox and the consumer has
 * joined its group, or fails the test at the deadline. */
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

/* A client of group that never joins it: it reads what the rebuild wrote. */
static rd_kafka_t *reader(const struct world *w)
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
static void assert_offsets_at_low_watermarks(const struct world *w)
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
static long long committed_sum(const struct world *w)
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

START_TEST(rebuild_on_the_mock_cluster_after_the_daemon_left_resets_to_the_low_watermarks)
{
	struct analytics_rebuild_report rep;
	struct world w;
	char errstr[512];
	json_t *before;

	world_init(&w);
	produce_saga(&w);
	{
		struct es_consumer *c = consumer(&w, &w.app);

		consume_all(&w, c);
		es_consumer_free(c); /* the daemon stops: leaves, committing */
	}
	/* Without the rebuild a restart would read nothing again. */
	ck_assert_int_eq(committed_sum(&w), (long long)w.saga.total);
	before = stats(w.db);
	assert_same(json_incref(before), json_loads(it_saga_expected_stats, 0, NULL));

	/* The group existed and is empty: the commit of a non-member would
	 * be refused here with UNKNOWN_MEMBER_ID; the member's goes through. */
	ck_assert_msg(analytics_rebuild(w.db, w.bootstrap, w.group, w.topics, stdout, &rep, errstr,
					sizeof(errstr)) == 0,
		      "%s", errstr);
	ck_assert_int_eq(rep.topics, IT_NTOPICS);
	ck_assert_int_eq(rep.partitions, IT_NTOPICS * PARTITIONS);
	ck_assert_int_eq(rep.replay_messages, (long long)w.saga.total);
	ck_assert_int_eq(rep.orders, 6);
	ck_assert_int_eq(rep.inbox, (long)w.saga.total);
	assert_offsets_at_low_watermarks(&w);
	ck_assert_int_eq(inbox_count(w.db), 0);

	/* The daemon starts again and replays: the same numbers. */
	{
		struct es_consumer *c = consumer(&w, &w.app);

		consume_all(&w, c);
		es_consumer_free(c);
	}
	assert_same(stats(w.db), before);
	world_release(&w);
}
END_TEST

START_TEST(rebuild_on_the_mock_cluster_refuses_while_the_daemon_is_in_the_group)
{
	struct analytics_rebuild_report rep;
	struct it_live live;
	struct world w;
	char errstr[512];
	json_t *before;

	world_init(&w);
	produce_saga(&w);
	it_live_init(&live, conninfo, w.schema);
	{
		struct es_consumer *c = consumer(&w, &live.app);

		consume_all(&w, c);
		it_live_start(&live, c);
	}
	before = stats(w.db);

	ck_assert_int_eq(analytics_rebuild(w.db, w.bootstrap, w.group, w.topics, stdout, &rep,
					   errstr, sizeof(errstr)),
			 -1);
	ck_assert_msg(strstr(errstr, "still running"), "%s", errstr);
	printf("refused as expected: %s\n", errstr);
	ck_assert_int_eq(inbox_count(w.db), (long)w.saga.total);
	assert_same(stats(w.db), json_incref(before));

	it_live_stop(&live);
	ck_assert_msg(analytics_rebuild(w.db, w.bootstrap, w.group, w.topics, NULL, &rep, errstr,
					sizeof(errstr)) == 0,
		      "%s", errstr);
	ck_assert_int_eq(inbox_count(w.db), 0);
	json_decref(before);
	world_release(&w);
}
END_TEST

/* Every KAFKA_* variable, so that nothing here reaches the real broker. */
static void forget_kafka_environment(void)
{
	char name[256];

	for (;;) {
		bool found = false;

		for (char **e = environ; e && *e && !found; e++) {
			const char *eq = strchr(*e, '=');

			if (strncmp(*e, "KAFKA_", 6) || !eq || (size_t)(eq - *e) >= sizeof(name))
				continue;
			snprintf(name, sizeof(name), "%.*s", (int)(eq - *e), *e);
			found = true;
		}
		if (!found || unsetenv(name))
			return;
	}
}

int main(void)
{
	Suite *s = suite_create("analytics rebuild (mock cluster + PostgreSQL)");
	TCase *tc = tcase_create("rebuild");

	if (!es_test_database_url())
		return ES_TEST_SKIP;
	es_log_init("it_analytics_rebuild_mock", ES_LOG_WARN);
	forget_kafka_environment();
	if (setenv("KAFKA_SESSION_TIMEOUT_MS", "6000", 1))
		return 1;
	tcase_add_test(
		tc, rebuild_on_the_mock_cluster_after_the_daemon_left_resets_to_the_low_watermarks);
	tcase_add_test(tc, rebuild_on_the_mock_cluster_refuses_while_the_daemon_is_in_the_group);
	tcase_set_timeout(tc, 240);
	suite_add_tcase(s, tc);
	return es_test_run_with_db(s, &conninfo);
}
