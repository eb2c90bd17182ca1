/*
 * Integration tests of the producer and the consumer loop against the real
 * Kafka broker: headers, at-least-once offsets, retries, dead letters.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/envelope.h"
#include "es/kafka.h"
#include "es/log.h"
#include "es/metrics.h"
#include "testkafka.h"
#include "testsupport.h"

#define ORDER "5c1a2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

static const char *bootstrap;

struct recorder {
	int batches; /* handler calls */
	int calls;
	int ok;
	char types[16][32];
	int retries_left; /* RETRY this many times before OK */
	const char *reject_type; /* REJECT events of this type */
	int max_attempt;
	int stop_at_call; /* ask the loop to stop on this call */
	volatile sig_atomic_t stop;
};

/* es_batch_fn: records each event in order; a RETRY drops what the batch
 * recorded, as a rolled-back transaction would. */
static enum es_handler_result record(void *arg, struct es_batch_item *items, size_t n, char *reason,
				     size_t size)
{
	struct recorder *r = arg;
	int ok_before = r->ok;

	r->batches++;
	for (size_t i = 0; i < n; i++) {
		const struct es_event *ev = items[i].ev;

		r->calls++;
		if (r->stop_at_call && r->calls == r->stop_at_call)
			r->stop = 1;
		if (items[i].d.attempt > r->max_attempt)
			r->max_attempt = items[i].d.attempt;
		if (r->reject_type && !strcmp(ev->type, r->reject_type)) {
			items[i].result = ES_HANDLER_REJECT;
			snprintf(items[i].reason, sizeof(items[i].reason), "no rule for %s",
				 ev->type);
			continue;
		}
		if (r->retries_left > 0) {
			r->retries_left--;
			r->ok = ok_before;
			snprintf(reason, size, "database away (simulated)");
			return ES_HANDLER_RETRY;
		}
		if (r->ok < 16)
			snprintf(r->types[r->ok], sizeof(r->types[0]), "%s", ev->type);
		r->ok++;
	}
	return ES_HANDLER_OK;
}

static struct es_producer *producer(void)
{
	char err[256];
	struct es_producer *p = es_producer_new(bootstrap, "it-producer", NULL, NULL, err,
						sizeof(err));

	ck_assert_msg(p != NULL, "%s", err);
	return p;
}

static void send_event(struct es_producer *p, const char *topic, const char *type)
{
	char err[256];
	struct es_event *ev = es_event_new("order-service", type, ORDER, NULL, NULL,
					   json_pack("{s:s}", "orderId", ORDER));

	ck_assert_int_eq(es_producer_send(p, topic, ev, NULL, err, sizeof(err)), 0);
	es_event_free(ev);
}

static void send_raw(struct es_producer *p, const char *topic, const char *value)
{
	char err[256];

	ck_assert_int_eq(es_producer_send_raw(p, topic, ORDER, strlen(ORDER), value, strlen(value),
					      NULL, NULL, err, sizeof(err)),
			 0);
}

static struct es_consumer *consumer_wm(const char *topic, const char *group, const char *dlq,
				       struct recorder *r, const struct es_kafka_metrics *m,
				       int fetch_wait_ms)
{
	const char *topics[] = {topic, NULL};
	struct es_consumer_config cfg = {
		.bootstrap = bootstrap,
		.group_id = group,
		.topics = topics,
		.service = "it-service",
		.dlq_topic = dlq,
		.handler = record,
		.handler_arg = r,
		.retry_initial_ms = 20,
		.retry_max_ms = 100,
		.metrics = m,
		.fetch_wait_ms = fetch_wait_ms,
	};
	char err[256];
	struct es_consumer *c = es_consumer_new(&cfg, err, sizeof(err));

	ck_assert_msg(c != NULL, "%s", err);
	return c;
}

static struct es_consumer *consumer_m(const char *topic, const char *group, const char *dlq,
				      struct recorder *r, const struct es_kafka_metrics *m)
{
	return consumer_wm(topic, group, dlq, r, m, 0);
}

static struct es_consumer *consumer(const char *topic, const char *group, const char *dlq,
				    struct recorder *r)
{
	return consumer_m(topic, group, dlq, r, NULL);
}

/* Asserts that the rendered registry holds the sample line `want`. */
static void assert_sample(struct es_metrics *reg, const char *want)
{
	char *text = es_metrics_render(reg, NULL);

	ck_assert_ptr_nonnull(text);
	ck_assert_msg(strstr(text, want) != NULL, "no \"%s\" in:\n%s", want, text);
	free(text);
}

/* Polls the consumer until cond holds or 30 s pass. */
static int poll_until(struct es_consumer *c, struct recorder *r, int want_ok, int want_calls)
{
	char err[256];

	for (int i = 0; i < 300 && !r->stop; i++) {
		ck_assert_int_eq(es_consumer_poll(c, 100, &r->stop, err, sizeof(err)), 0);
		if (r->ok >= want_ok && r->calls >= want_calls)
			return 0;
	}
	return -1;
}

static void unique(char *buf, size_t size, const char *prefix)
{
	ck_assert_int_eq(es_test_unique_name(buf, size, prefix), 0);
}

START_TEST(producer_writes_key_value_and_contract_headers)
{
	char topic[64], hdr[128], err[256];
	struct es_producer *p = producer();
	struct es_event *ev, *back;
	struct es_test_batch *msgs;

	unique(topic, sizeof(topic), "it_headers");
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, topic, 3), 0);
	ev = es_event_new("order-service", "OrderPlaced", ORDER, NULL, NULL,
			  json_pack("{s:s}", "orderId", ORDER));
	ck_assert_int_eq(es_producer_send(p, topic, ev, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(es_producer_flush(p, 10000), 0);
	ck_assert_uint_eq(es_producer_delivered(p), 1);

	msgs = es_test_kafka_read(bootstrap, topic, 1, 20000);
	ck_assert_int_eq(msgs->n, 1);
	ck_assert_int_eq(msgs->msg[0]->key_len, strlen(ORDER));
	ck_assert(!memcmp(msgs->msg[0]->key, ORDER, strlen(ORDER)));
	ck_assert_str_eq(es_test_kafka_header(msgs->msg[0], "content-type", hdr, sizeof(hdr)),
			 "application/cloudevents+json; charset=UTF-8");
	ck_assert_str_eq(es_test_kafka_header(msgs->msg[0], "ce_specversion", hdr, sizeof(hdr)),
			 "1.0");
	ck_assert_str_eq(es_test_kafka_header(msgs->msg[0], "ce_id", hdr, sizeof(hdr)), ev->id);
	ck_assert_str_eq(es_test_kafka_header(msgs->msg[0], "ce_type", hdr, sizeof(hdr)),
			 "OrderPlaced");
	ck_assert_str_eq(es_test_kafka_header(msgs->msg[0], "ce_source", hdr, sizeof(hdr)),
			 "/eventshop/order-service");
	back = es_event_parse(msgs->msg[0]->payload, msgs->msg[0]->len, err, sizeof(err));
	ck_assert_msg(back != NULL, "%s", err);
	ck_assert_str_eq(back->id, ev->id);
	es_event_free(back);
	es_event_free(ev);
	es_test_kafka_batch_free(msgs);
	es_producer_free(p);
}
END_TEST

START_TEST(consumer_commits_only_what_it_handled)
{
	char topic[64], group[64], dlq[80];
	struct es_producer *p = producer();
	struct recorder r = {0};
	struct es_consumer *c;

	unique(topic, sizeof(topic), "it_commit");
	unique(group, sizeof(group), "it_group");
	snprintf(dlq, sizeof(dlq), "dlq.%s", topic);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, topic, 1), 0);
	send_event(p, topic, "OrderPlaced");
	send_event(p, topic, "OrderConfirmed");
	ck_assert_int_eq(es_producer_flush(p, 10000), 0);

	c = consumer(topic, group, dlq, &r);
	ck_assert_int_eq(poll_until(c, &r, 2, 2), 0);
	ck_assert_str_eq(r.types[0], "OrderPlaced");
	ck_assert_str_eq(r.types[1], "OrderConfirmed");
	es_consumer_free(c); /* commits the stored offsets on close */
	/* Offset + 1 of the last handled message: the next to read. */
	ck_assert_int_eq(es_test_kafka_committed(bootstrap, group, topic, 0), 2);

	/* A restarted member of the group starts after them. */
	send_event(p, topic, "OrderCancelled");
	ck_assert_int_eq(es_producer_flush(p, 10000), 0);
	memset(&r, 0, sizeof(r));
	c = consumer(topic, group, dlq, &r);
	ck_assert_int_eq(poll_until(c, &r, 1, 1), 0);
	ck_assert_int_eq(r.ok, 1);
	ck_assert_str_eq(r.types[0], "OrderCancelled");
	es_consumer_free(c);
	es_producer_free(p);
}
END_TEST

START_TEST(retry_repeats_the_same_message_in_order)
{
	char topic[64], group[64], dlq[80];
	struct es_producer *p = producer();
	struct recorder r = {.retries_left = 3};
	struct es_consumer *c;

	unique(topic, sizeof(topic), "it_retry");
	unique(group, sizeof(group), "it_group");
	snprintf(dlq, sizeof(dlq), "dlq.%s", topic);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, topic, 1), 0);
	send_event(p, topic, "OrderPlaced");
	send_event(p, topic, "OrderConfirmed");
	ck_assert_int_eq(es_producer_flush(p, 10000), 0);

	c = consumer(topic, group, dlq, &r);
	ck_assert_int_eq(poll_until(c, &r, 2, 5), 0);
	ck_assert_int_eq(r.calls, 5); /* 3 retries + 2 successes */
	ck_assert_int_eq(r.max_attempt, 4);
	ck_assert_str_eq(r.types[0], "OrderPlaced");
	ck_assert_str_eq(r.types[1], "OrderConfirmed");
	es_consumer_free(c);
	ck_assert_int_eq(es_test_kafka_committed(bootstrap, group, topic, 0), 2);
	es_producer_free(p);
}
END_TEST

START_TEST(stop_during_retry_leaves_message_for_redelivery)
{
	char topic[64], group[64], dlq[80];
	struct es_producer *p = producer();
	struct recorder r = {.retries_left = 1000, .stop_at_call = 3};
	struct es_consumer *c;

	unique(topic, sizeof(topic), "it_stop");
	unique(group, sizeof(group), "it_group");
	snprintf(dlq, sizeof(dlq), "dlq.%s", topic);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, topic, 1), 0);
	send_event(p, topic, "OrderPlaced");
	ck_assert_int_eq(es_producer_flush(p, 10000), 0);

	/* The third failed attempt asks for shutdown (as SIGTERM would):
	 * the retry loop must give up at once, the offset unstored. */
	c = consumer(topic, group, dlq, &r);
	poll_until(c, &r, 1, 1);
	ck_assert_int_eq(r.calls, 3);
	ck_assert_int_eq(r.ok, 0);
	es_consumer_free(c);
	ck_assert_int_lt(es_test_kafka_committed(bootstrap, group, topic, 0), 0);

	memset(&r, 0, sizeof(r));
	c = consumer(topic, group, dlq, &r);
	ck_assert_int_eq(poll_until(c, &r, 1, 1), 0);
	ck_assert_str_eq(r.types[0], "OrderPlaced");
	es_consumer_free(c);
	es_producer_free(p);
}
END_TEST

START_TEST(malformed_and_rejected_messages_go_to_dlq_and_next_is_processed)
{
	char topic[64], group[64], dlq[80], hdr[512];
	struct es_producer *p = producer();
	struct recorder r = {.reject_type = "Bogus"};
	struct es_consumer *c;
	struct es_test_batch *msgs;
	struct es_metrics *reg = es_metrics_new();
	struct es_kafka_metrics m;
	char line[256], err[256];

	ck_assert_int_eq(es_kafka_metrics_register(reg, &m, err, sizeof(err)), 0);
	unique(topic, sizeof(topic), "it_dlq");
	unique(group, sizeof(group), "it_group");
	snprintf(dlq, sizeof(dlq), "dlq.%s", topic);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, topic, 1), 0);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, dlq, 1), 0);
	send_raw(p, topic, "{not json");
	send_event(p, topic, "Bogus");
	send_event(p, topic, "OrderPlaced");
	ck_assert_int_eq(es_producer_flush(p, 10000), 0);

	c = consumer_m(topic, group, dlq, &r, &m);
	ck_assert_int_eq(poll_until(c, &r, 1, 2), 0);
	ck_assert_str_eq(r.types[0], "OrderPlaced");
	es_consumer_free(c);
	ck_assert_int_eq(es_test_kafka_committed(bootstrap, group, topic, 0), 3);

	snprintf(line, sizeof(line),
		 "es_events_dead_lettered_total{topic=\"%s\",reason=\"invalid\"} 1", topic);
	assert_sample(reg, line);
	snprintf(line, sizeof(line),
		 "es_events_dead_lettered_total{topic=\"%s\",reason=\"rejected\"} 1", topic);
	assert_sample(reg, line);
	snprintf(line, sizeof(line),
		 "es_events_consumed_total{topic=\"%s\",type=\"OrderPlaced\"} 1", topic);
	assert_sample(reg, line);
	snprintf(line, sizeof(line),
		 "es_events_handled_total{topic=\"%s\",type=\"OrderPlaced\",result=\"ok\"} 1",
		 topic);
	assert_sample(reg, line);
	snprintf(line, sizeof(line),
		 "es_events_handled_total{topic=\"%s\",type=\"Bogus\",result=\"rejected\"} 1",
		 topic);
	assert_sample(reg, line);
	es_metrics_free(reg);

	msgs = es_test_kafka_read(bootstrap, dlq, 2, 20000);
	ck_assert_int_eq(msgs->n, 2);
	ck_assert_int_eq(msgs->msg[0]->len, strlen("{not json"));
	ck_assert(!memcmp(msgs->msg[0]->payload, "{not json", msgs->msg[0]->len));
	ck_assert(!memcmp(msgs->msg[0]->key, ORDER, strlen(ORDER)));
	ck_assert_ptr_nonnull(
		strstr(es_test_kafka_header(msgs->msg[0], ES_DLQ_HDR_ERROR, hdr, sizeof(hdr)),
		       "invalid CloudEvent: not valid JSON"));
	ck_assert_str_eq(es_test_kafka_header(msgs->msg[0], ES_DLQ_HDR_TOPIC, hdr, sizeof(hdr)),
			 topic);
	ck_assert_str_eq(es_test_kafka_header(msgs->msg[0], ES_DLQ_HDR_PARTITION, hdr, sizeof(hdr)),
			 "0");
	ck_assert_str_eq(es_test_kafka_header(msgs->msg[0], ES_DLQ_HDR_OFFSET, hdr, sizeof(hdr)),
			 "0");
	ck_assert_str_eq(es_test_kafka_header(msgs->msg[0], ES_DLQ_HDR_ATTEMPTS, hdr, sizeof(hdr)),
			 "1");
	ck_assert_str_eq(es_test_kafka_header(msgs->msg[0], ES_DLQ_HDR_SERVICE, hdr, sizeof(hdr)),
			 "it-service");
	ck_assert_str_eq(es_test_kafka_header(msgs->msg[1], ES_DLQ_HDR_ERROR, hdr, sizeof(hdr)),
			 "no rule for Bogus");
	ck_assert_str_eq(es_test_kafka_header(msgs->msg[1], ES_DLQ_HDR_OFFSET, hdr, sizeof(hdr)),
			 "1");
	/* The original headers travel with the dead letter. */
	ck_assert_str_eq(es_test_kafka_header(msgs->msg[1], "ce_type", hdr, sizeof(hdr)), "Bogus");
	es_test_kafka_batch_free(msgs);
	es_producer_free(p);
}
END_TEST

START_TEST(two_members_of_a_group_share_partitions)
{
	char topic[64], group[64], dlq[80];
	struct es_producer *p = producer();
	struct recorder r1 = {0}, r2 = {0};
	struct es_consumer *c1, *c2;
	volatile sig_atomic_t stop = 0;
	char err[256];
	const int total = 60;

	unique(topic, sizeof(topic), "it_group");
	unique(group, sizeof(group), "it_group");
	snprintf(dlq, sizeof(dlq), "dlq.%s", topic);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, topic, 4), 0);
	c1 = consumer(topic, group, dlq, &r1);
	c2 = consumer(topic, group, dlq, &r2);
	/* Let both join before producing, so both get partitions. */
	for (int i = 0; i < 100; i++) {
		rd_kafka_topic_partition_list_t *a1 = NULL, *a2 = NULL;
		int both;

		es_consumer_poll(c1, 50, &stop, err, sizeof(err));
		es_consumer_poll(c2, 50, &stop, err, sizeof(err));
		rd_kafka_assignment(es_consumer_handle(c1), &a1);
		rd_kafka_assignment(es_consumer_handle(c2), &a2);
		both = a1 && a2 && a1->cnt > 0 && a2->cnt > 0 && a1->cnt + a2->cnt == 4;
		rd_kafka_topic_partition_list_destroy(a1);
		rd_kafka_topic_partition_list_destroy(a2);
		if (both)
			break;
	}
	for (int i = 0; i < total; i++) {
		char key[32];
		struct es_event *ev;

		snprintf(key, sizeof(key), "order-%d", i);
		ev = es_event_new("order-service", "OrderPlaced", key, NULL, NULL, json_object());
		ck_assert_int_eq(es_producer_send(p, topic, ev, NULL, err, sizeof(err)), 0);
		es_event_free(ev);
	}
	ck_assert_int_eq(es_producer_flush(p, 10000), 0);
	for (int i = 0; i < 600 && r1.ok + r2.ok < total; i++) {
		es_consumer_poll(c1, 25, &stop, err, sizeof(err));
		es_consumer_poll(c2, 25, &stop, err, sizeof(err));
	}
	ck_assert_int_eq(r1.ok + r2.ok, total);
	ck_assert_int_gt(r1.ok, 0);
	ck_assert_int_gt(r2.ok, 0);
	es_consumer_free(c1);
	es_consumer_free(c2);
	es_producer_free(p);
}
END_TEST

/* A consumer with a fetch wait gets the events that reach the broker
 * within the wait in one fetch, so in one batch. Ten events, one every
 * poll of up to 100 ms: a consumer without a wait has each at its next
 * poll, a batch per event; with a wait of 2 s they come in one batch, or
 * two when a wait ends among them. */
START_TEST(a_fetch_wait_gathers_the_events_of_the_wait_into_one_batch)
{
	char topic[64], group[64], dlq[80], err[256];
	struct es_producer *p = producer();
	struct recorder r = {0};
	struct es_consumer *c;
	int before;

	unique(topic, sizeof(topic), "it_wait");
	unique(group, sizeof(group), "it_group");
	snprintf(dlq, sizeof(dlq), "dlq.%s", topic);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, topic, 1), 0);
	c = consumer_wm(topic, group, dlq, &r, NULL, 2000);
	/* One event first: the consumer has joined and is fetching. */
	send_event(p, topic, "OrderPlaced");
	ck_assert_int_eq(es_producer_flush(p, 10000), 0);
	ck_assert_int_eq(poll_until(c, &r, 1, 1), 0);
	before = r.batches;
	for (int i = 0; i < 10; i++) {
		send_event(p, topic, "OrderConfirmed");
		ck_assert_int_eq(es_producer_flush(p, 10000), 0);
		ck_assert_int_eq(es_consumer_poll(c, 100, &r.stop, err, sizeof(err)), 0);
	}
	ck_assert_int_eq(poll_until(c, &r, 11, 11), 0);
	ck_assert_msg(r.batches - before <= 2, "10 events came in %d batches", r.batches - before);
	es_consumer_free(c);
	es_producer_free(p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kafka");
	TCase *tc = tcase_create("broker");
	SRunner *sr;
	int failed;

	bootstrap = es_test_kafka_bootstrap();
	if (!bootstrap)
		return ES_TEST_SKIP;
	es_log_init("it-kafka", ES_LOG_WARN);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, producer_writes_key_value_and_contract_headers);
	tcase_add_test(tc, consumer_commits_only_what_it_handled);
	tcase_add_test(tc, retry_repeats_the_same_message_in_order);
	tcase_add_test(tc, stop_during_retry_leaves_message_for_redelivery);
	tcase_add_test(tc, malformed_and_rejected_messages_go_to_dlq_and_next_is_processed);
	tcase_add_test(tc, two_members_of_a_group_share_partitions);
	tcase_add_test(tc, a_fetch_wait_gathers_the_events_of_the_wait_into_one_batch);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
