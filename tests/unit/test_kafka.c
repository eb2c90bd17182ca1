/*
 * Unit tests for kafka: the backoff schedule, the metric families, and the
 * producer and consumer loop under injected broker faults.
 *
 * The faults use librdkafka's mock cluster, an in-process Kafka protocol
 * server whose requests can be made to fail on demand, which a real broker
 * cannot be scripted to do. Everything else about Kafka is tested against
 * the real broker in tests/integration/it_kafka.c.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "es/envelope.h"
#include "es/consumer.h"
#include "es/kafka.h"

/* After rdkafka.h (which es/kafka.h includes), as it requires. */
#include <librdkafka/rdkafka_mock.h>

/* Kafka protocol ApiKey of Produce requests (rdkafka_protocol.h, which
 * Debian does not install). */
#define API_PRODUCE 0
#include "es/log.h"
#include "es/metrics.h"

#define ORDER "7d1e4c2a-9b3f-4e6d-8a5c-1f2e3d4c5b6a"

START_TEST(backoff_doubles_with_equal_jitter_and_is_capped)
{
	for (int round = 0; round < 200; round++) {
		int d2 = es_backoff_ms(2, 100, 5000);
		int d3 = es_backoff_ms(3, 100, 5000);
		int d10 = es_backoff_ms(10, 100, 5000);
		int d99 = es_backoff_ms(99, 100, 5000);

		ck_assert_int_ge(d2, 50);
		ck_assert_int_le(d2, 100);
		ck_assert_int_ge(d3, 100);
		ck_assert_int_le(d3, 200);
		ck_assert_int_ge(d10, 2500);
		ck_assert_int_le(d10, 5000);
		ck_assert_int_ge(d99, 2500);
		ck_assert_int_le(d99, 5000);
	}
}
END_TEST

/* Eight delays of the widest jitter, as one number per delay. */
static void draw_delays(int out[8])
{
	for (int i = 0; i < 8; i++)
		out[i] = es_backoff_ms(10, 100, 5000);
}

/* Two processes (a fork copies the generator's state) must not draw the
 * same delays: daemons retrying one dead database would hit it in step. */
START_TEST(backoff_jitter_differs_between_processes)
{
	int mine[8], theirs[8] = {0}, fds[2];
	pid_t pid;

	draw_delays(mine);
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int d[8];

		draw_delays(d);
		_exit(write(fds[1], d, sizeof(d)) == (ssize_t)sizeof(d) ? 0 : 1);
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], theirs, sizeof(theirs)), (ssize_t)sizeof(theirs));
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	draw_delays(mine);
	ck_assert_msg(memcmp(mine, theirs, sizeof(mine)) != 0,
		      "parent and child drew the same eight delays");
}
END_TEST

START_TEST(kafka_metrics_register_once_per_registry)
{
	struct es_metrics *reg = es_metrics_new();
	struct es_kafka_metrics m, again;
	char err[256], *text;

	ck_assert_int_eq(es_kafka_metrics_register(reg, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(es_kafka_metrics_register(reg, &again, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "already registered"));
	es_counter_inc(m.consumed, (const char *[]){"orders", "OrderPlaced"});
	es_histogram_observe(m.handler_seconds, NULL, 0.002);
	es_histogram_observe(m.batch_size, NULL, 3);
	text = es_metrics_render(reg, NULL);
	ck_assert_ptr_nonnull(strstr(
		text, "es_events_consumed_total{topic=\"orders\",type=\"OrderPlaced\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "# TYPE es_handler_duration_seconds histogram\n"));
	ck_assert_ptr_nonnull(strstr(text, "es_handler_duration_seconds_count 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "es_consumer_batch_size_bucket{le=\"2\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(text, "es_consumer_batch_size_bucket{le=\"4\"} 1\n"));
	free(text);
	es_metrics_free(reg);
}
END_TEST

/* librdkafka's statistics report (trimmed to what es_kafka_stats_lag
 * reads): this instance consumes orders [0] (lag 7) and [1] (lag not
 * known yet), not [2]; "-1" is librdkafka's own unassigned queue. */
START_TEST(consumer_lag_from_statistics)
{
	static const char stats[] =
		"{\"name\":\"c#consumer-1\",\"topics\":{\"orders\":{\"partitions\":{"
		"\"0\":{\"partition\":0,\"desired\":true,\"consumer_lag\":7},"
		"\"1\":{\"partition\":1,\"desired\":true,\"consumer_lag\":-1},"
		"\"2\":{\"partition\":2,\"desired\":false,\"consumer_lag\":-1},"
		"\"-1\":{\"partition\":-1,\"desired\":false,\"consumer_lag\":-1}}}}}";
	struct es_metrics *reg = es_metrics_new();
	struct es_kafka_metrics m;
	char err[256], *text;

	ck_assert_int_eq(es_kafka_metrics_register(reg, &m, err, sizeof(err)), 0);
	ck_assert_int_eq(es_kafka_stats_lag(&m, stats, strlen(stats)), 2);
	text = es_metrics_render(reg, NULL);
	ck_assert_ptr_nonnull(
		strstr(text, "es_consumer_lag{topic=\"orders\",partition=\"0\"} 7\n"));
	ck_assert_ptr_nonnull(
		strstr(text, "es_consumer_lag{topic=\"orders\",partition=\"2\"} 0\n"));
	ck_assert_ptr_null(strstr(text, "partition=\"1\""));
	ck_assert_ptr_null(strstr(text, "partition=\"-1\""));
	free(text);
	ck_assert_int_eq(es_kafka_stats_lag(&m, "not json", 8), -1);
	ck_assert_int_eq(es_kafka_stats_lag(&m, "{\"topics\":[]}", 13), -1);
	es_metrics_free(reg);
}
END_TEST

/* ------------------------------------------------- mock-cluster faults */

/* A one-broker mock cluster, owned by a client of its own. */
struct mock {
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	const char *bootstrap;
};

static void mock_start(struct mock *m, const char *const *topics)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];

	/* This client only hosts the cluster; it never connects anywhere. */
	rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
	m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	ck_assert_msg(m->rk != NULL, "%s", err);
	m->mc = rd_kafka_mock_cluster_new(m->rk, 1);
	ck_assert_ptr_nonnull(m->mc);
	m->bootstrap = rd_kafka_mock_cluster_bootstraps(m->mc);
	for (int i = 0; topics[i]; i++)
		ck_assert_int_eq(rd_kafka_mock_topic_create(m->mc, topics[i], 1, 1), 0);
}

static void mock_stop(struct mock *m)
{
	rd_kafka_mock_cluster_destroy(m->mc);
	rd_kafka_destroy(m->rk);
}

struct outcome {
	int reports;
	rd_kafka_resp_err_t err;
};

static void record_delivery(void *arg, void *opaque, rd_kafka_resp_err_t err,
			    const rd_kafka_message_t *rkm)
{
	struct outcome *o = opaque;

	o->reports++;
	o->err = err;
}

static struct es_event *order_event(const char *type)
{
	return es_event_new("order-service", type, ORDER, NULL, NULL,
			    json_pack("{s:s}", "orderId", ORDER));
}

START_TEST(producer_rides_out_transient_produce_errors)
{
	static const char *const topics[] = {"orders", NULL};
	struct mock m;
	struct es_producer *p;
	struct es_event *ev = order_event("OrderPlaced");
	struct outcome o = {0};
	char err[256];

	mock_start(&m, topics);
	p = es_producer_new(m.bootstrap, "unit-producer", record_delivery, NULL, err, sizeof(err));
	ck_assert_msg(p != NULL, "%s", err);
	/* Leadership moving and a broker briefly short of replicas: the
	 * idempotent producer retries both without duplicating. */
	rd_kafka_mock_push_request_errors(
		m.mc, API_PRODUCE, 3, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
		RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
	ck_assert_int_eq(es_producer_send(p, "orders", ev, &o, err, sizeof(err)), 0);
	ck_assert_int_eq(es_producer_flush(p, 20000), 0);
	ck_assert_int_eq(o.reports, 1);
	ck_assert_int_eq(o.err, RD_KAFKA_RESP_ERR_NO_ERROR);
	ck_assert_uint_eq(es_producer_delivered(p), 1);
	ck_assert_uint_eq(es_producer_failed(p), 0);
	es_producer_free(p);
	es_event_free(ev);
	mock_stop(&m);
}
END_TEST

START_TEST(producer_reports_a_permanent_error_per_message)
{
	static const char *const topics[] = {"orders", NULL};
	struct mock m;
	struct es_producer *p;
	struct es_event *ev = order_event("OrderPlaced");
	struct outcome o = {0};
	char err[256];

	mock_start(&m, topics);
	p = es_producer_new(m.bootstrap, "unit-producer", record_delivery, NULL, err, sizeof(err));
	ck_assert_msg(p != NULL, "%s", err);
	rd_kafka_mock_push_request_errors(m.mc, API_PRODUCE, 1,
					  RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
	ck_assert_int_eq(es_producer_send(p, "orders", ev, &o, err, sizeof(err)), 0);
	ck_assert_int_eq(es_producer_flush(p, 20000), 0);
	ck_assert_int_eq(o.reports, 1);
	ck_assert_int_eq(o.err, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
	ck_assert_uint_eq(es_producer_failed(p), 1);
	/* The producer is still usable for the next message. */
	ck_assert_int_eq(es_producer_send(p, "orders", ev, &o, err, sizeof(err)), 0);
	ck_assert_int_eq(es_producer_flush(p, 20000), 0);
	ck_assert_int_eq(o.reports, 2);
	ck_assert_int_eq(o.err, RD_KAFKA_RESP_ERR_NO_ERROR);
	es_producer_free(p);
	es_event_free(ev);
	mock_stop(&m);
}
END_TEST

struct rejecter {
	int calls;
};

static enum es_handler_result reject_all(void *arg, struct es_batch_item *items, size_t n,
					 char *reason, size_t size)
{
	struct rejecter *r = arg;

	for (size_t i = 0; i < n; i++) {
		r->calls++;
		items[i].result = ES_HANDLER_REJECT;
		snprintf(items[i].reason, sizeof(items[i].reason), "unknown type %s",
			 items[i].ev->type);
	}
	return ES_HANDLER_OK;
}

/* The committed offset of group on topic[0], or -1001 when none. */
static long long committed(const char *bootstrap, const char *group, const char *topic)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	char err[256];
	rd_kafka_t *rk;
	long long off = -1001;

	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
	rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	ck_assert_msg(rk != NULL, "%s", err);
	rd_kafka_topic_partition_list_add(l, topic, 0);
	if (rd_kafka_committed(rk, l, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
		off = l->elems[0].offset;
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_destroy(rk);
	return off;
}

START_TEST(offset_waits_until_the_dead_letter_is_delivered)
{
	static const char *const topics[] = {"payments", "dlq.unit", NULL};
	const char *subscribe[] = {"payments", NULL};
	struct mock m;
	struct es_producer *p;
	struct es_event *ev = order_event("PaymentProcessed");
	struct rejecter r = {0};
	struct es_consumer *c;
	char err[256];
	long long off;

	mock_start(&m, topics);
	p = es_producer_new(m.bootstrap, "unit-producer", NULL, NULL, err, sizeof(err));
	ck_assert_msg(p != NULL, "%s", err);
	ck_assert_int_eq(es_producer_send(p, "payments", ev, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(es_producer_flush(p, 20000), 0);

	c = es_consumer_new(&(struct es_consumer_config){.bootstrap = m.bootstrap,
							 .group_id = "unit",
							 .topics = subscribe,
							 .service = "unit",
							 .dlq_topic = "dlq.unit",
							 .handler = reject_all,
							 .handler_arg = &r,
							 .retry_initial_ms = 10,
							 .retry_max_ms = 50},
			    err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	/* The first two dead letters fail for good; the third goes through.
	 * Only then may the offset move past the rejected message. */
	rd_kafka_mock_push_request_errors(m.mc, API_PRODUCE, 2,
					  RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
					  RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
	for (int i = 0; i < 300 && r.calls == 0; i++)
		ck_assert_int_eq(es_consumer_poll(c, 100, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(r.calls, 1);
	es_consumer_free(c);

	off = committed(m.bootstrap, "unit", "payments");
	ck_assert_int_eq(off, 1);
	{
		/* Exactly one dead letter reached the topic. */
		rd_kafka_conf_t *conf = rd_kafka_conf_new();
		rd_kafka_t *rk;
		int64_t lo, hi;

		rd_kafka_conf_set(conf, "bootstrap.servers", m.bootstrap, err, sizeof(err));
		rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
		ck_assert_int_eq(
			rd_kafka_query_watermark_offsets(rk, "dlq.unit", 0, &lo, &hi, 10000), 0);
		ck_assert_int_eq(hi - lo, 1);
		rd_kafka_destroy(rk);
	}
	es_producer_free(p);
	es_event_free(ev);
	mock_stop(&m);
}
END_TEST

/* The consumer's value of librdkafka property `name` must be want. */
/* A consumer of "payments" in group unit-session (instance_id may be NULL)
 * that rejects everything; fails the test if it cannot be made. */
static struct es_consumer *unit_consumer_waiting(const char *bootstrap, const char *instance_id,
						 int fetch_wait_ms, struct rejecter *r)
{
	static const char *const subscribe[] = {"payments", NULL};
	struct es_consumer *c;
	char err[256];

	c = es_consumer_new(&(struct es_consumer_config){.bootstrap = bootstrap,
							 .group_id = "unit-session",
							 .instance_id = instance_id,
							 .topics = subscribe,
							 .service = "unit",
							 .dlq_topic = "dlq.unit",
							 .handler = reject_all,
							 .handler_arg = r,
							 .fetch_wait_ms = fetch_wait_ms},
			    err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	return c;
}

static struct es_consumer *unit_consumer(const char *bootstrap, const char *instance_id,
					 struct rejecter *r)
{
	return unit_consumer_waiting(bootstrap, instance_id, 0, r);
}

/* The property `name` of a consumer with the fetch wait given is `want`. */
static void assert_waiting_consumer_conf(const char *bootstrap, int fetch_wait_ms, const char *name,
					 const char *want)
{
	struct rejecter r = {0};
	struct es_consumer *c = unit_consumer_waiting(bootstrap, NULL, fetch_wait_ms, &r);
	char got[32];
	size_t size = sizeof(got);

	ck_assert_int_eq(rd_kafka_conf_get(rd_kafka_conf(es_consumer_handle(c)), name, got, &size),
			 RD_KAFKA_CONF_OK);
	ck_assert_msg(!strcmp(got, want), "fetch wait %d ms: %s is %s, want %s", fetch_wait_ms,
		      name, got, want);
	es_consumer_free(c);
}

static void assert_consumer_conf(const char *bootstrap, const char *name, const char *want)
{
	assert_waiting_consumer_conf(bootstrap, 0, name, want);
}

/* A killed daemon's partitions stall for the session timeout: ours is
 * shorter than librdkafka's 45 s (see ES_CONSUMER_SESSION_TIMEOUT_MS), and
 * KAFKA_SESSION_TIMEOUT_MS still decides when it is set. */
START_TEST(consumer_session_timeout_is_ours_unless_configured)
{
	static const char *const topics[] = {"payments", "dlq.unit", NULL};
	struct mock m;

	mock_start(&m, topics);
	unsetenv("KAFKA_SESSION_TIMEOUT_MS");
	assert_consumer_conf(m.bootstrap, "session.timeout.ms", ES_CONSUMER_SESSION_TIMEOUT_MS);
	setenv("KAFKA_SESSION_TIMEOUT_MS", "7000", 1);
	assert_consumer_conf(m.bootstrap, "session.timeout.ms", "7000");
	unsetenv("KAFKA_SESSION_TIMEOUT_MS");
	mock_stop(&m);
}
END_TEST

/* deploy/topics.txt asks for 3 replicas, 2 in sync; what each cluster
 * size gets (shopctl create-topics, the tests' topics). */
START_TEST(replication_is_trimmed_to_the_cluster)
{
	static const struct {
		int brokers, replicas, min_insync, want_rf, want_isr;
	} cases[] = {
		{1, 3, 2, 1, 1}, {2, 3, 2, 2, 1}, {3, 3, 2, 3, 2}, {5, 3, 2, 3, 2},
		{3, 3, 3, 3, 2}, {3, 1, 1, 1, 1}, {0, 3, 2, 3, 2}, {3, 0, 0, 1, 1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rf = -1, isr = -1;

		es_kafka_replication(cases[i].brokers, cases[i].replicas, cases[i].min_insync, &rf,
				     &isr);
		ck_assert_msg(rf == cases[i].want_rf && isr == cases[i].want_isr,
			      "%d brokers, %d/%d asked: got %d/%d, want %d/%d", cases[i].brokers,
			      cases[i].replicas, cases[i].min_insync, rf, isr, cases[i].want_rf,
			      cases[i].want_isr);
	}
}
END_TEST

/* A static member (es_service_instance_id) asks for its id; a dynamic one
 * leaves group.instance.id unset. */
START_TEST(consumer_is_a_static_member_when_given_an_instance_id)
{
	static const char *const topics[] = {"payments", "dlq.unit", NULL};
	struct mock m;
	struct rejecter r = {0};
	const char *ids[] = {"unit.host.8089", NULL};

	mock_start(&m, topics);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct es_consumer *c = unit_consumer(m.bootstrap, ids[i], &r);
		char got[64] = "";
		size_t size = sizeof(got);
		rd_kafka_conf_res_t res;

		res = rd_kafka_conf_get(rd_kafka_conf(es_consumer_handle(c)), "group.instance.id",
					got, &size);
		if (ids[i])
			ck_assert_str_eq(got, ids[i]);
		else
			ck_assert_msg(res != RD_KAFKA_CONF_OK || !got[0],
				      "dynamic member has id %s", got);
		es_consumer_free(c);
	}
	mock_stop(&m);
}
END_TEST

/* A consumer that falls behind holds what it fetched ahead: ours is small
 * (see ES_CONSUMER_PREFETCH_KBYTES), unless configured. */
START_TEST(consumer_prefetch_is_bounded_unless_configured)
{
	static const char *const topics[] = {"payments", "dlq.unit", NULL};
	struct mock m;

	mock_start(&m, topics);
	unsetenv("KAFKA_QUEUED_MAX_MESSAGES_KBYTES");
	assert_consumer_conf(m.bootstrap, "queued.max.messages.kbytes",
			     ES_CONSUMER_PREFETCH_KBYTES);
	setenv("KAFKA_QUEUED_MAX_MESSAGES_KBYTES", "1024", 1);
	assert_consumer_conf(m.bootstrap, "queued.max.messages.kbytes", "1024");
	unsetenv("KAFKA_QUEUED_MAX_MESSAGES_KBYTES");
	mock_stop(&m);
}
END_TEST

/* A consumer that is behind holds whole fetch responses: ours are small
 * (see ES_CONSUMER_FETCH_MAX_BYTES), unless configured, and never below
 * the largest message the consumer accepts. */
START_TEST(consumer_fetch_is_bounded_unless_configured)
{
	static const char *const topics[] = {"payments", "dlq.unit", NULL};
	struct mock m;

	mock_start(&m, topics);
	unsetenv("KAFKA_FETCH_MAX_BYTES");
	unsetenv("KAFKA_MESSAGE_MAX_BYTES");
	assert_consumer_conf(m.bootstrap, "fetch.max.bytes", ES_CONSUMER_FETCH_MAX_BYTES);
	setenv("KAFKA_FETCH_MAX_BYTES", "2097152", 1);
	assert_consumer_conf(m.bootstrap, "fetch.max.bytes", "2097152");
	unsetenv("KAFKA_FETCH_MAX_BYTES");
	setenv("KAFKA_MESSAGE_MAX_BYTES", "3000000", 1);
	{
		struct rejecter r = {0};
		struct es_consumer *c = unit_consumer(m.bootstrap, NULL, &r);
		char got[32];
		size_t size = sizeof(got);

		ck_assert_int_eq(rd_kafka_conf_get(rd_kafka_conf(es_consumer_handle(c)),
						   "fetch.max.bytes", got, &size),
				 RD_KAFKA_CONF_OK);
		ck_assert_int_ge(strtol(got, NULL, 10), 3000000);
		es_consumer_free(c);
	}
	unsetenv("KAFKA_MESSAGE_MAX_BYTES");
	mock_stop(&m);
}
END_TEST

/* A consumer a saga waits on has each event as soon as the broker does
 * (librdkafka's fetch.min.bytes of 1); one with a fetch wait lets the
 * broker gather a whole fetch for up to that long (see
 * ES_CONSUMER_FETCH_WAIT_MIN_BYTES), unless KAFKA_* say otherwise. */
START_TEST(consumer_with_a_fetch_wait_lets_the_broker_gather_a_batch)
{
	static const char *const topics[] = {"payments", "dlq.unit", NULL};
	struct mock m;

	mock_start(&m, topics);
	unsetenv("KAFKA_FETCH_MIN_BYTES");
	unsetenv("KAFKA_FETCH_WAIT_MAX_MS");
	assert_waiting_consumer_conf(m.bootstrap, 0, "fetch.min.bytes", "1");
	assert_waiting_consumer_conf(m.bootstrap, 100, "fetch.min.bytes",
				     ES_CONSUMER_FETCH_WAIT_MIN_BYTES);
	assert_waiting_consumer_conf(m.bootstrap, 100, "fetch.wait.max.ms", "100");
	setenv("KAFKA_FETCH_MIN_BYTES", "4096", 1);
	setenv("KAFKA_FETCH_WAIT_MAX_MS", "250", 1);
	assert_waiting_consumer_conf(m.bootstrap, 100, "fetch.min.bytes", "4096");
	assert_waiting_consumer_conf(m.bootstrap, 100, "fetch.wait.max.ms", "250");
	unsetenv("KAFKA_FETCH_MIN_BYTES");
	unsetenv("KAFKA_FETCH_WAIT_MAX_MS");
	mock_stop(&m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kafka");
	TCase *tc = tcase_create("core");
	TCase *faults = tcase_create("faults");
	SRunner *sr;
	int failed;

	es_log_init("unit-kafka", ES_LOG_ERROR);
	if (getenv("ES_TEST_VERBOSE"))
		es_log_init("unit-kafka", ES_LOG_DEBUG);
	tcase_add_test(tc, backoff_doubles_with_equal_jitter_and_is_capped);
	tcase_add_test(tc, backoff_jitter_differs_between_processes);
	tcase_add_test(tc, kafka_metrics_register_once_per_registry);
	tcase_add_test(tc, consumer_lag_from_statistics);
	tcase_add_test(tc, replication_is_trimmed_to_the_cluster);
	suite_add_tcase(s, tc);
	tcase_set_timeout(faults, 120);
	tcase_add_test(faults, producer_rides_out_transient_produce_errors);
	tcase_add_test(faults, producer_reports_a_permanent_error_per_message);
	tcase_add_test(faults, offset_waits_until_the_dead_letter_is_delivered);
	tcase_add_test(faults, consumer_session_timeout_is_ours_unless_configured);
	tcase_add_test(faults, consumer_prefetch_is_bounded_unless_configured);
	tcase_add_test(faults, consumer_fetch_is_bounded_unless_configured);
	tcase_add_test(faults, consumer_with_a_fetch_wait_lets_the_broker_gather_a_batch);
	tcase_add_test(faults, consumer_is_a_static_member_when_given_an_instance_id);
	suite_add_tcase(s, faults);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
