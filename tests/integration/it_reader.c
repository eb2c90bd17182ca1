/*
 * integration.reader: es_reader_follow_topics against the real broker.
 * Several topics are followed at once, each partition from its tail (never
 * before the first offset retained), a topic that does not exist is
 * skipped and named, and what is produced afterwards follows.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/clock.h"
#include "es/kafka.h"
#include "es/log.h"
#include "es/reader.h"
#include "testkafka.h"
#include "testsupport.h"

#define DEADLINE_MS 20000

static const char *bootstrap;

static void produce(const char *topic, int n)
{
	char err[256], value[32];
	struct es_producer *p = es_producer_new(bootstrap, "it-reader", NULL, NULL, err,
						sizeof(err));

	ck_assert_msg(p != NULL, "%s", err);
	for (int i = 0; i < n; i++) {
		snprintf(value, sizeof(value), "m%d", i);
		ck_assert_int_eq(es_producer_send_raw(p, topic, "k", 1, value, strlen(value), NULL,
						      NULL, err, sizeof(err)),
				 0);
	}
	ck_assert_int_eq(es_producer_flush(p, 10000), 0);
	es_producer_free(p);
}

/* Polls until want messages came (fails at the deadline); writes
 * "topic@offset" of each, in order per topic, into seen. */
static void read_n(rd_kafka_t *rk, int want, char seen[][160])
{
	long long deadline = es_monotonic_ms() + DEADLINE_MS;
	int got = 0;

	while (got < want) {
		rd_kafka_message_t *m;

		ck_assert_msg(es_monotonic_ms() < deadline, "%d of %d messages", got, want);
		m = rd_kafka_consumer_poll(rk, 100);
		if (!m)
			continue;
		if (!m->err)
			snprintf(seen[got++], 160, "%s@%lld", rd_kafka_topic_name(m->rkt),
				 (long long)m->offset);
		rd_kafka_message_destroy(m);
	}
}

/* Nothing more arrives for a while. */
static void read_none(rd_kafka_t *rk)
{
	long long until = es_monotonic_ms() + 1500;

	while (es_monotonic_ms() < until) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

		if (m) {
			ck_assert_msg(m->err, "an unexpected message at %s@%lld",
				      rd_kafka_topic_name(m->rkt), (long long)m->offset);
			rd_kafka_message_destroy(m);
		}
	}
}

static bool has(char seen[][160], int n, const char *topic, int offset)
{
	char want[160];

	snprintf(want, sizeof(want), "%s@%d", topic, offset);
	for (int i = 0; i < n; i++) {
		if (!strcmp(seen[i], want))
			return true;
	}
	return false;
}

START_TEST(follows_several_topics_from_their_tail)
{
	char a[96], b[96], missing[96], skipped[256], err[256], seen[8][160];
	const char *topics[] = {a, b, missing, NULL};
	rd_kafka_t *rk;

	es_test_unique_name(a, sizeof(a), "it-reader-a");
	es_test_unique_name(b, sizeof(b), "it-reader-b");
	es_test_unique_name(missing, sizeof(missing), "it-reader-missing");
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, a, 1), 0);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, b, 1), 0);
	produce(a, 5);
	produce(b, 1);
	rk = es_reader_new(bootstrap, "it-reader", err, sizeof(err));
	ck_assert_msg(rk != NULL, "%s", err);

	/* Two partitions; the missing topic named. */
	ck_assert_int_eq(
		es_reader_follow_topics(rk, topics, 3, skipped, sizeof(skipped), err, sizeof(err)),
		2);
	ck_assert_str_eq(skipped, missing);
	/* The last 3 of a, all of b (it holds fewer than 3), nothing older. */
	read_n(rk, 4, seen);
	ck_assert(has(seen, 4, a, 2) && has(seen, 4, a, 3) && has(seen, 4, a, 4));
	ck_assert(has(seen, 4, b, 0));
	read_none(rk);
	/* What comes next follows. */
	produce(a, 1);
	read_n(rk, 1, seen);
	ck_assert(has(seen, 1, a, 5));
	es_reader_free(rk);
}
END_TEST

START_TEST(tail_zero_is_from_now_on)
{
	char a[96], err[256], seen[2][160];
	const char *topics[] = {a, NULL};
	rd_kafka_t *rk;

	es_test_unique_name(a, sizeof(a), "it-reader-now");
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, a, 1), 0);
	produce(a, 2);
	rk = es_reader_new(bootstrap, "it-reader", err, sizeof(err));
	ck_assert_msg(rk != NULL, "%s", err);
	ck_assert_int_eq(es_reader_follow_topics(rk, topics, 0, NULL, 0, err, sizeof(err)), 1);
	read_none(rk);
	produce(a, 1);
	read_n(rk, 1, seen);
	ck_assert(has(seen, 1, a, 2));
	es_reader_free(rk);
}
END_TEST

START_TEST(no_topic_exists)
{
	char missing[96], skipped[256], err[256];
	const char *topics[] = {missing, NULL};
	rd_kafka_t *rk;

	es_test_unique_name(missing, sizeof(missing), "it-reader-none");
	rk = es_reader_new(bootstrap, "it-reader", err, sizeof(err));
	ck_assert_msg(rk != NULL, "%s", err);
	ck_assert_int_eq(
		es_reader_follow_topics(rk, topics, 5, skipped, sizeof(skipped), err, sizeof(err)),
		0);
	ck_assert_str_eq(skipped, missing);
	/* es_reader_follow, one topic, says so. */
	ck_assert_int_eq(es_reader_follow(rk, missing, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "does not exist"));
	es_reader_free(rk);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reader");
	TCase *tc = tcase_create("broker");
	SRunner *sr;
	int failed;

	bootstrap = es_test_kafka_bootstrap();
	if (!bootstrap)
		return ES_TEST_SKIP;
	es_log_init("it-reader", ES_LOG_WARN);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, follows_several_topics_from_their_tail);
	tcase_add_test(tc, tail_zero_is_from_now_on);
	tcase_add_test(tc, no_topic_exists);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
