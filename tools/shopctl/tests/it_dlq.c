/*
 * Integration tests of `shopctl dlq list/show/replay`, the shopctl binary
 * run as a subprocess the way a person runs it, against the real broker on
 * topics of their own: dead letters as the consumer loop writes them, one
 * of them bytes that are not even UTF-8.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/kafka.h"
#include "es/log.h"
#include "fixture.h"
#include "testkafka.h"
#include "testsupport.h"

/* Valid UTF-8, so only the C1 character is escaped. */
#define DEAD_ERROR_C1                                  \
	"invalid CloudEvent: not valid JSON (\xc2\x9b" \
	"2J)"
#define DEAD_ERROR_C1_SHOWN "invalid CloudEvent: not valid JSON (\\xc2\\x9b2J)"

static const char *bootstrap;

struct topics {
	char run[64];
	char orig[96]; /* where the dead letters came from */
	char dlq[96];
	char target[96]; /* where --to sends them */
};

static void make_topics(struct topics *t)
{
	ck_assert_int_eq(es_test_unique_name(t->run, sizeof(t->run), "it_shopctl"), 0);
	snprintf(t->orig, sizeof(t->orig), "%s.orders", t->run);
	snprintf(t->dlq, sizeof(t->dlq), "%s.dlq.payment-service", t->run);
	snprintf(t->target, sizeof(t->target), "%s.replayed", t->run);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, t->orig, 3), 0);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, t->dlq, 1), 0);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, t->target, 2), 0);
}

/* Two dead letters as the consumer loop writes them: @0 a valid event
 * with its ce_* headers, @1 bytes that are not even UTF-8, and an error
 * that quotes a C1 control character (U+009B, CSI on some terminals). */
static void produce_dead_letters(const struct topics *t)
{
	char err[256];
	struct es_producer *p = es_producer_new(bootstrap, "it-shopctl", NULL, NULL, err,
						sizeof(err));
	rd_kafka_headers_t *h;

	ck_assert_msg(p != NULL, "%s", err);
	h = rd_kafka_headers_new(12);
	rd_kafka_header_add(h, "content-type", -1, "application/cloudevents+json; charset=UTF-8",
			    -1);
	rd_kafka_header_add(h, "ce_id", -1, "0b6f2c9e-51d4-4e8a-9c1f-3a7d2e6b8f40", -1);
	rd_kafka_header_add(h, "ce_type", -1, "Bogus", -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_ERROR, -1, "no rule for Bogus\nsecond line", -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_TOPIC, -1, t->orig, -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_PARTITION, -1, "2", -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_OFFSET, -1, "41", -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_ATTEMPTS, -1, "3", -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_SERVICE, -1, "payment-service", -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_TIME, -1, "2026-11-22T04:15:10.123Z", -1);
	ck_assert_int_eq(es_producer_send_raw(p, t->dlq, ORDER, strlen(ORDER), DEAD_VALUE,
					      strlen(DEAD_VALUE), h, NULL, err, sizeof(err)),
			 0);
	h = rd_kafka_headers_new(4);
	rd_kafka_header_add(h, ES_DLQ_HDR_ERROR, -1, DEAD_ERROR_C1, -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_TOPIC, -1, t->orig, -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_PARTITION, -1, "0", -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_OFFSET, -1, "7", -1);
	ck_assert_int_eq(es_producer_send_raw(p, t->dlq, "k\x80", 2, BAD_UTF8_VALUE,
					      strlen(BAD_UTF8_VALUE), h, NULL, err, sizeof(err)),
			 0);
	ck_assert_int_eq(es_producer_flush(p, 10000), 0);
	ck_assert_int_eq(es_producer_delivered(p), 2);
	es_producer_free(p);
}

START_TEST(dlq_list_prints_one_line_per_dead_letter)
{
	struct topics t;
	struct run r;
	char want[300], env_dlq[160];
	const char *env[] = {env_dlq, NULL};

	make_topics(&t);
	produce_dead_letters(&t);

	/* By service, with TOPIC_DLQ naming its topic as for the daemon. */
	snprintf(env_dlq, sizeof(env_dlq), "TOPIC_DLQ=%s", t.dlq);
	run_env(&r, env, "dlq", "list", "payment-service", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(count(r.out, "\n"), 2);
	snprintf(want, sizeof(want),
		 "%s[0]@0  original=%s[2]@41  attempts=3  time=2026-11-22T04:15:10.123Z  "
		 "error=no rule for Bogus\\nsecond line\n",
		 t.dlq, t.orig);
	assert_has(r.out, want);
	snprintf(want, sizeof(want),
		 "%s[0]@1  original=%s[0]@7  attempts=?  time=?  error=" DEAD_ERROR_C1_SHOWN "\n",
		 t.dlq, t.orig);
	assert_has(r.out, want);
	ck_assert_ptr_null(strstr(r.out, "\xc2\x9b"));
	snprintf(want, sizeof(want), "%s: 2 dead letters", t.dlq);
	assert_has(r.err, want);
	run_release(&r);

	/* By topic; an empty topic is no error. */
	run(&r, "dlq", "list", "--topic", t.dlq, "--topic", t.target, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(count(r.out, "\n"), 2);
	snprintf(want, sizeof(want), "%s: 0 dead letters", t.target);
	assert_has(r.err, want);
	run_release(&r);

	/* Reading twice gives the same: nothing was committed or consumed. */
	run(&r, "dlq", "list", "--topic", t.dlq, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(count(r.out, "\n"), 2);
	run_release(&r);
}
END_TEST

START_TEST(dlq_list_refuses_ambiguous_topic_dlq_and_reports_missing_topics)
{
	const char *env[] = {"TOPIC_DLQ=some.dlq", NULL};
	char missing[96], want[160];
	struct run r;

	run_env(&r, env, "dlq", "list", NULL);
	ck_assert_int_eq(r.status, 2);
	assert_has(r.err, "TOPIC_DLQ is set");
	ck_assert_str_eq(r.out, "");
	run_release(&r);

	es_test_unique_name(missing, sizeof(missing), "it_shopctl_missing");
	run(&r, "dlq", "list", "--topic", missing, NULL);
	ck_assert_int_eq(r.status, 1);
	snprintf(want, sizeof(want), "topic %s does not exist", missing);
	assert_has(r.err, want);
	run_release(&r);

	run(&r, "dlq", "list", "--bogus", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
	run(&r, "dlq", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
	run(&r, "dlq", "purge", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
}
END_TEST

START_TEST(dlq_show_prints_every_header_and_escapes_what_is_not_utf8)
{
	struct topics t;
	struct run r;
	char want[200];

	make_topics(&t);
	produce_dead_letters(&t);

	run(&r, "dlq", "show", t.dlq, "0", "0", NULL);
	ck_assert_int_eq(r.status, 0);
	snprintf(want, sizeof(want), "topic      %s\npartition  0\noffset     0\n", t.dlq);
	assert_has(r.out, want);
	assert_has(r.out, "key        " ORDER "\n");
	assert_has(r.out, "headers    10\n");
	assert_has(r.out, "  ce_type: Bogus\n");
	assert_has(r.out, "  dlq.error: no rule for Bogus\\nsecond line\n");
	snprintf(want, sizeof(want), "  dlq.original.topic: %s\n", t.orig);
	assert_has(r.out, want);
	assert_has(r.out, "  dlq.attempts: 3\n");
	snprintf(want, sizeof(want), "value      %zu bytes\n%s\n", strlen(DEAD_VALUE), DEAD_VALUE);
	assert_has(r.out, want);
	run_release(&r);

	run(&r, "dlq", "show", t.dlq, "0", "1", NULL);
	ck_assert_int_eq(r.status, 0);
	assert_has(r.out, "key        k\\x80  (not valid UTF-8: escaped)\n");
	assert_has(r.out, "\\xff\\xfe{not json\\x01  (not valid UTF-8: escaped)\n");
	assert_has(r.out, "  dlq.error: " DEAD_ERROR_C1_SHOWN "\n");
	ck_assert_ptr_null(strstr(r.out, "\xc2\x9b"));
	run_release(&r);
}
END_TEST

START_TEST(dlq_show_says_what_is_not_there)
{
	struct topics t;
	struct run r;
	char want[200], missing[96];

	make_topics(&t);
	produce_dead_letters(&t);

	run(&r, "dlq", "show", t.dlq, "0", "2", NULL);
	ck_assert_int_eq(r.status, 1);
	snprintf(want, sizeof(want), "no message at offset 2 of %s [0]: it holds offsets 0 to 1",
		 t.dlq);
	assert_has(r.err, want);
	run_release(&r);

	run(&r, "dlq", "show", t.dlq, "1", "0", NULL);
	ck_assert_int_eq(r.status, 1);
	assert_has(r.err, "has no partition 1");
	run_release(&r);

	es_test_unique_name(missing, sizeof(missing), "it_shopctl_missing");
	run(&r, "dlq", "show", missing, "0", "0", NULL);
	ck_assert_int_eq(r.status, 1);
	assert_has(r.err, "does not exist");
	run_release(&r);

	run(&r, "dlq", "show", t.dlq, "0", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
	run(&r, "dlq", "show", t.dlq, "zero", "0", NULL);
	ck_assert_int_eq(r.status, 2);
	assert_has(r.err, "PARTITION \"zero\"");
	run_release(&r);
	run(&r, "dlq", "show", t.dlq, "0", "-3", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
}
END_TEST

/* The one message on topic, with the header checks every replay needs. */
static struct es_test_batch *read_replayed(const char *topic, const char *from)
{
	struct es_test_batch *b = es_test_kafka_read(bootstrap, topic, 1, 20000);
	rd_kafka_headers_t *hdrs;
	const char *name;
	const void *value;
	size_t size;
	char buf[256];

	ck_assert_int_eq(b->n, 1);
	ck_assert_int_eq(b->msg[0]->key_len, strlen(ORDER));
	ck_assert(!memcmp(b->msg[0]->key, ORDER, strlen(ORDER)));
	ck_assert_int_eq(b->msg[0]->len, strlen(DEAD_VALUE));
	ck_assert(!memcmp(b->msg[0]->payload, DEAD_VALUE, strlen(DEAD_VALUE)));
	ck_assert_int_eq(rd_kafka_message_headers(b->msg[0], &hdrs), 0);
	/* The original headers, in their order, then where it was. */
	ck_assert_int_eq(rd_kafka_header_cnt(hdrs), 4);
	ck_assert_int_eq(rd_kafka_header_get_all(hdrs, 0, &name, &value, &size), 0);
	ck_assert_str_eq(name, "content-type");
	ck_assert_int_eq(rd_kafka_header_get_all(hdrs, 1, &name, &value, &size), 0);
	ck_assert_str_eq(name, "ce_id");
	ck_assert_int_eq(rd_kafka_header_get_all(hdrs, 2, &name, &value, &size), 0);
	ck_assert_str_eq(name, "ce_type");
	ck_assert_str_eq(es_test_kafka_header(b->msg[0], "ce_type", buf, sizeof(buf)), "Bogus");
	for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &value, &size); i++)
		ck_assert_msg(strncmp(name, "dlq.", 4) || !strcmp(name, "dlq.replayed.from"),
			      "header %s was not removed", name);
	ck_assert_str_eq(es_test_kafka_header(b->msg[0], "dlq.replayed.from", buf, sizeof(buf)),
			 from);
	return b;
}

START_TEST(dlq_replay_sends_key_value_and_headers_without_the_dlq_ones)
{
	struct es_test_batch *b;
	struct topics t;
	struct run r;
	char want[300], from[160];

	make_topics(&t);
	produce_dead_letters(&t);

	run(&r, "dlq", "replay", t.dlq, "0", "0", "--to", t.target, NULL);
	ck_assert_int_eq(r.status, 0);
	snprintf(want, sizeof(want), "replayed %s[0]@0 to %s[", t.dlq, t.target);
	assert_has(r.out, want);
	run_release(&r);

	snprintf(from, sizeof(from), "%s[0]@0", t.dlq);
	b = read_replayed(t.target, from);
	es_test_kafka_batch_free(b);

	/* Replaying did not take the dead letter away. */
	run(&r, "dlq", "list", "--topic", t.dlq, NULL);
	ck_assert_int_eq(count(r.out, "\n"), 2);
	run_release(&r);
}
END_TEST

START_TEST(dlq_replay_goes_to_the_original_topic_by_default)
{
	struct es_test_batch *b;
	struct topics t;
	struct run r;
	char want[300], from[160];

	make_topics(&t);
	produce_dead_letters(&t);

	run(&r, "dlq", "replay", t.dlq, "0", "0", NULL);
	ck_assert_int_eq(r.status, 0);
	snprintf(want, sizeof(want), "replayed %s[0]@0 to %s[", t.dlq, t.orig);
	assert_has(r.out, want);
	run_release(&r);

	snprintf(from, sizeof(from), "%s[0]@0", t.dlq);
	b = read_replayed(t.orig, from);
	es_test_kafka_batch_free(b);
}
END_TEST

START_TEST(dlq_replay_refuses_a_topic_that_does_not_exist)
{
	struct topics t;
	struct run r;
	char missing[96], want[160];
	int partitions;
	rd_kafka_t *rk;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];

	make_topics(&t);
	produce_dead_letters(&t);
	es_test_unique_name(missing, sizeof(missing), "it_shopctl_missing");

	/* Options may come first, as getopt allows. */
	run(&r, "dlq", "replay", "--to", missing, t.dlq, "0", "0", NULL);
	ck_assert_int_eq(r.status, 1);
	snprintf(want, sizeof(want), "topic %s does not exist", missing);
	assert_has(r.err, want);
	ck_assert_str_eq(r.out, "");
	run_release(&r);

	/* ... and did not create it by producing to it. */
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
	rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", err, sizeof(err));
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	ck_assert_ptr_nonnull(rk);
	rkt = rd_kafka_topic_new(rk, missing, NULL);
	ck_assert_int_eq(rd_kafka_metadata(rk, 0, rkt, &md, 10000), 0);
	partitions = md->topics[0].err ? 0 : md->topics[0].partition_cnt;
	ck_assert_int_eq(partitions, 0);
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);

	run(&r, "dlq", "replay", t.dlq, "0", "0", "--to", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
	run(&r, "dlq", "replay", t.dlq, "0", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tools.shopctl.dlq");
	TCase *tc = tcase_create("dlq");
	SRunner *sr;
	int failed;

	bootstrap = es_test_kafka_bootstrap();
	if (!bootstrap)
		return ES_TEST_SKIP;
	es_log_init("it-shopctl-dlq", ES_LOG_WARN);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, dlq_list_prints_one_line_per_dead_letter);
	tcase_add_test(tc, dlq_list_refuses_ambiguous_topic_dlq_and_reports_missing_topics);
	tcase_add_test(tc, dlq_show_prints_every_header_and_escapes_what_is_not_utf8);
	tcase_add_test(tc, dlq_show_says_what_is_not_there);
	tcase_add_test(tc, dlq_replay_sends_key_value_and_headers_without_the_dlq_ones);
	tcase_add_test(tc, dlq_replay_goes_to_the_original_topic_by_default);
	tcase_add_test(tc, dlq_replay_refuses_a_topic_that_does_not_exist);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
