/*
 * Integration tests of `shopctl watch`, the shopctl binary run as a
 * subprocess the way a person runs it, against the real broker on the
 * shop's topics made for the test alone: every topic in event-time order,
 * one order, dead letters, escaping and colour, new events within the
 * reordering window, SIGTERM, and what it refuses.
 */
#include <check.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "es/kafka.h"
#include "es/log.h"
#include "fixture.h"
#include "testkafka.h"
#include "testsupport.h"

static const char *bootstrap;

#define ORDER_B "6d2b3c4e-5f60-4b7c-8d9e-0f1a2b3c4d5e"
#define WATCH_DAY "2030-01-02T03:04:05"
#define ID(n) "a" #n "000000-0000-4000-8000-00000000000" #n
#define TZ_UTC "TZ=UTC"

/* The shop's topics, of this test only. */
struct wtopics {
	char run[64];
	char orders[96], payments[96], inventory[96], notifications[96], dlq[96];
	char list[512]; /* for --topics */
};

static void make_wtopics(struct wtopics *t)
{
	ck_assert_int_eq(es_test_unique_name(t->run, sizeof(t->run), "it_shopctl_watch"), 0);
	snprintf(t->orders, sizeof(t->orders), "%s.orders", t->run);
	snprintf(t->payments, sizeof(t->payments), "%s.payments", t->run);
	snprintf(t->inventory, sizeof(t->inventory), "%s.inventory", t->run);
	snprintf(t->notifications, sizeof(t->notifications), "%s.notifications", t->run);
	snprintf(t->dlq, sizeof(t->dlq), "%s.dlq.payment-service", t->run);
	snprintf(t->list, sizeof(t->list), "%s,%s,%s,%s,%s", t->orders, t->payments, t->inventory,
		 t->notifications, t->dlq);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, t->orders, 3), 0);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, t->payments, 2), 0);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, t->inventory, 2), 0);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, t->notifications, 1), 0);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, t->dlq, 1), 0);
}

static struct es_producer *wproducer(void)
{
	char err[256];
	struct es_producer *p = es_producer_new(bootstrap, "it-shopctl", NULL, NULL, err,
						sizeof(err));

	ck_assert_msg(p != NULL, "%s", err);
	return p;
}

/* Produces a CloudEvent (cause may be NULL) keyed by its order, with the
 * headers the daemons set, and waits until the broker has it, so that
 * what is produced first comes first on its topic. */
static void wsend(struct es_producer *p, const char *topic, const char *type, const char *order,
		  const char *id, const char *cause, const char *time)
{
	json_t *ev = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o}", "specversion", "1.0", "id", id,
			       "source", "/eventshop/it", "type", type, "subject", order, "time",
			       time, "data", json_object());
	uint64_t before = es_producer_delivered(p);
	rd_kafka_headers_t *h = rd_kafka_headers_new(2);
	char err[256], *value;

	if (cause)
		json_object_set_new(ev, "causationid", json_string(cause));
	value = json_dumps(ev, JSON_COMPACT);
	ck_assert_ptr_nonnull(value);
	rd_kafka_header_add(h, "ce_id", -1, id, -1);
	rd_kafka_header_add(h, "ce_type", -1, type, -1);
	ck_assert_int_eq(es_producer_send_raw(p, topic, order, strlen(order), value, strlen(value),
					      h, NULL, err, sizeof(err)),
			 0);
	ck_assert_int_eq(es_producer_flush(p, 10000), 0);
	ck_assert_int_eq(es_producer_delivered(p), before + 1);
	free(value);
	json_decref(ev);
}

/*
 * The saga of ORDER and one OrderPlaced of ORDER_B, produced later events
 * first (InventoryReserved before its OrderPlaced, on another topic), and
 * a dead letter of ORDER's OrderPlaced, dead-lettered last.
 */
static void produce_saga(const struct wtopics *t)
{
	struct es_producer *p = wproducer();
	rd_kafka_headers_t *h = rd_kafka_headers_new(8);
	char err[256];

	wsend(p, t->orders, "OrderConfirmed", ORDER, ID(5), ID(3), WATCH_DAY ".400Z");
	wsend(p, t->inventory, "InventoryReserved", ORDER, ID(3), ID(1), WATCH_DAY ".200Z");
	/* The same instant written with an offset: 04:04 at +01:00. */
	wsend(p, t->payments, "PaymentProcessed", ORDER, ID(4), ID(1),
	      "2030-01-02T04:04:05.300+01:00");
	wsend(p, t->orders, "OrderPlaced", ORDER, ID(1), NULL, WATCH_DAY ".100Z");
	wsend(p, t->orders, "OrderPlaced", ORDER_B, ID(2), NULL, WATCH_DAY ".150Z");

	rd_kafka_header_add(h, "ce_type", -1, "OrderPlaced", -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_ERROR, -1, "no rule for Bogus\nsecond line", -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_TOPIC, -1, t->orders, -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_PARTITION, -1, "2", -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_OFFSET, -1, "41", -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_ATTEMPTS, -1, "3", -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_SERVICE, -1, "payment-service", -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_TIME, -1, WATCH_DAY ".500Z", -1);
	ck_assert_int_eq(es_producer_send_raw(p, t->dlq, ORDER, strlen(ORDER), DEAD_VALUE,
					      strlen(DEAD_VALUE), h, NULL, err, sizeof(err)),
			 0);
	ck_assert_int_eq(es_producer_flush(p, 10000), 0);
	es_producer_free(p);
}

/* Line n (from 0) of text, copied into buf; "" past the end. */
static const char *line_of(const char *text, int n, char *buf, size_t size)
{
	const char *p = text, *nl;

	for (; n > 0 && p; n--) {
		nl = strchr(p, '\n');
		p = nl ? nl + 1 : NULL;
	}
	if (!p || !*p) {
		snprintf(buf, size, "%s", "");
		return buf;
	}
	nl = strchr(p, '\n');
	snprintf(buf, size, "%.*s", (int)(nl ? nl - p : (ptrdiff_t)strlen(p)), p);
	return buf;
}

/* Asserts that line n of text is the event at hh:mm:ss.mmm on topic,
 * with these columns. */
static void assert_event_line(const char *text, int n, const char *time, const char *topic,
			      const char *type, const char *order, const char *id,
			      const char *cause)
{
	char line[1024], want[256];

	line_of(text, n, line, sizeof(line));
	snprintf(want, sizeof(want), "%s  %s/", time, topic);
	ck_assert_msg(!strncmp(line, want, strlen(want)), "line %d is \"%s\", want \"%s...\"", n,
		      line, want);
	snprintf(want, sizeof(want), " %-17s  order %.8s  id %.8s  cause %.8s", type, order, id,
		 cause);
	ck_assert_msg(strstr(line, want), "line %d is \"%s\", want \"...%s\"", n, line, want);
}

START_TEST(watch_prints_every_topic_in_event_time_order)
{
	const char *env[] = {TZ_UTC, NULL};
	struct wtopics t;
	struct run r;
	char line[1024], want[300];

	make_wtopics(&t);
	produce_saga(&t);

	run_env(&r, env, "watch", "--from-beginning", "-e", "--topics", t.list, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(count(r.out, "\n"), 7);
	ck_assert_str_eq(line_of(r.out, 0, line, sizeof(line)), "--- 2030-01-02 ---");
	assert_event_line(r.out, 1, "03:04:05.100", t.orders, "OrderPlaced", ORDER, ID(1), "-");
	assert_event_line(r.out, 2, "03:04:05.150", t.orders, "OrderPlaced", ORDER_B, ID(2), "-");
	assert_event_line(r.out, 3, "03:04:05.200", t.inventory, "InventoryReserved", ORDER, ID(3),
			  ID(1));
	assert_event_line(r.out, 4, "03:04:05.300", t.payments, "PaymentProcessed", ORDER, ID(4),
			  ID(1));
	assert_event_line(r.out, 5, "03:04:05.400", t.orders, "OrderConfirmed", ORDER, ID(5),
			  ID(3));
	/* Where each one is: the second message of its partition for the
	 * OrderPlaced of ORDER, which came after its OrderConfirmed. */
	ck_assert_ptr_nonnull(strstr(line_of(r.out, 1, line, sizeof(line)), "@1 "));
	ck_assert_ptr_nonnull(strstr(line_of(r.out, 5, line, sizeof(line)), "@0 "));
	/* The dead letter: when it was set aside, why, and whence. */
	line_of(r.out, 6, line, sizeof(line));
	snprintf(want, sizeof(want), "03:04:05.500  %s/0@0 DEAD LETTER OrderPlaced  order 5c1a2b3d",
		 t.dlq);
	ck_assert_msg(!strncmp(line, want, strlen(want)), "dead letter line: %s", line);
	snprintf(want, sizeof(want),
		 "  reason: no rule for Bogus\\nsecond line  (from %s/2@41 by payment-service "
		 "after 3 attempts)",
		 t.orders);
	assert_has(line, want);
	/* After the long test topic name, a normal line is narrow. */
	ck_assert_int_lt(strlen(strstr(line_of(r.out, 3, line, sizeof(line)), " Inventory")), 70);
	ck_assert_ptr_null(strchr(r.out, '\033'));
	run_release(&r);

	/* Reading moved nothing: a second run sees the same. */
	run_env(&r, env, "watch", "--from-beginning", "--exit", "--topics", t.list, "--count", "2",
		NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(count(r.out, "\n"), 3);
	assert_event_line(r.out, 2, "03:04:05.150", t.orders, "OrderPlaced", ORDER_B, ID(2), "-");
	run_release(&r);

	/* From the end (the default), -e has nothing to print. */
	run_env(&r, env, "watch", "-e", "--topics", t.list, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_str_eq(r.out, "");
	run_release(&r);
}
END_TEST

START_TEST(watch_filters_one_order_and_reads_the_daemons_topic_variables)
{
	char env_buf[4][160];
	const char *env[] = {TZ_UTC, env_buf[0], env_buf[1], env_buf[2], env_buf[3], NULL};
	struct wtopics t;
	struct run r;

	make_wtopics(&t);
	produce_saga(&t);

	run_env(&r, env, "watch", "--from-beginning", "-e", "--topics", t.list, "--order", ORDER,
		NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(count(r.out, "\n"), 6);
	ck_assert_int_eq(count(r.out, "order 5c1a2b3d"), 5);
	ck_assert_int_eq(count(r.out, "6d2b3c4e"), 0);
	run_release(&r);

	/* The 8 characters a line shows are enough. */
	run_env(&r, env, "watch", "--from-beginning", "-e", "--topics", t.list, "--order",
		"6d2b3c4e", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(count(r.out, "\n"), 2);
	assert_event_line(r.out, 1, "03:04:05.150", t.orders, "OrderPlaced", ORDER_B, ID(2), "-");
	run_release(&r);

	/* Without --topics: the topics the daemons read (TOPIC_*), and the
	 * default dead-letter topics, which need not exist. */
	snprintf(env_buf[0], sizeof(env_buf[0]), "TOPIC_ORDERS=%s", t.orders);
	snprintf(env_buf[1], sizeof(env_buf[1]), "TOPIC_PAYMENTS=%s", t.payments);
	snprintf(env_buf[2], sizeof(env_buf[2]), "TOPIC_INVENTORY=%s", t.inventory);
	snprintf(env_buf[3], sizeof(env_buf[3]), "TOPIC_NOTIFICATIONS=%s", t.notifications);
	run_env(&r, env, "watch", "--from-beginning", "-e", "--order", ORDER, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(count(r.out, "\n"), 5);
	assert_event_line(r.out, 1, "03:04:05.100", t.orders, "OrderPlaced", ORDER, ID(1), "-");
	assert_event_line(r.out, 4, "03:04:05.400", t.orders, "OrderConfirmed", ORDER, ID(5),
			  ID(3));
	run_release(&r);
}
END_TEST

START_TEST(watch_escapes_what_events_carry_and_colours_only_when_asked)
{
	const char *env[] = {TZ_UTC, NULL};
	const char *no_color[] = {TZ_UTC, "NO_COLOR=1", NULL};
	struct es_producer *p;
	struct wtopics t;
	struct run r;
	char err[256];

	make_wtopics(&t);
	p = wproducer();
	/* A type that would clear the screen, a subject that rings the bell
	 * and holds a C1 control character (CSI on some terminals). */
	wsend(p, t.orders, "Evil\033[2J", "x\a\xc2\x9by", ID(6), NULL, WATCH_DAY ".600Z");
	wsend(p, t.payments, "PaymentFailed", ORDER, ID(7), ID(6), WATCH_DAY ".700Z");
	ck_assert_int_eq(es_producer_send_raw(
				 p, t.notifications, "k-bad", 5, BAD_UTF8_VALUE "\033[31m",
				 strlen(BAD_UTF8_VALUE "\033[31m"), NULL, NULL, err, sizeof(err)),
			 0);
	ck_assert_int_eq(es_producer_flush(p, 10000), 0);
	es_producer_free(p);

	run_env(&r, env, "watch", "--from-beginning", "-e", "--topics", t.list, NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_null(strchr(r.out, '\033'));
	ck_assert_ptr_null(strchr(r.out, '\a'));
	ck_assert_ptr_null(strstr(r.out, "\xc2\x9b"));
	assert_has(r.out, "Evil\\x1b[2J");
	assert_has(r.out, "order x\\x07\\xc2\\x9by");
	/* Not a CloudEvent: shown as such, at its Kafka timestamp (today, so
	 * before the events of 2030). */
	assert_has(r.out, "NOT AN EVENT");
	assert_has(r.out, "order k-bad");
	assert_has(r.out, "value not JSON");
	ck_assert_int_eq(count(r.out, "\n"), 4);
	ck_assert_ptr_nonnull(strstr(r.out, "NOT AN EVENT"));
	ck_assert(strstr(r.out, "NOT AN EVENT") < strstr(r.out, "--- 2030-01-02 ---"));
	run_release(&r);

	/* NO_COLOR is for auto; --color (always) colours anyway, and still
	 * escapes. */
	run_env(&r, no_color, "watch", "--from-beginning", "-e", "--topics", t.list, "--color=auto",
		NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_null(strchr(r.out, '\033'));
	run_release(&r);
	run_env(&r, no_color, "watch", "--from-beginning", "-e", "--topics", t.list, "--color",
		NULL);
	ck_assert_int_eq(r.status, 0);
	assert_has(r.out, "\033[31m");
	assert_has(r.out, "\033[0m");
	assert_has(r.out, "Evil\\x1b[2J");
	ck_assert_ptr_null(strstr(r.out, "\033[2J"));
	run_release(&r);
	run_env(&r, env, "watch", "--from-beginning", "-e", "--topics", t.list, "--color=never",
		NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_null(strchr(r.out, '\033'));
	run_release(&r);
}
END_TEST

START_TEST(watch_skips_a_missing_topic_with_a_notice)
{
	const char *env[] = {TZ_UTC, NULL};
	char missing[96], list[300], want[200];
	struct wtopics t;
	struct run r;

	make_wtopics(&t);
	produce_saga(&t);
	es_test_unique_name(missing, sizeof(missing), "it_shopctl_missing");

	snprintf(list, sizeof(list), "%s,%s", missing, t.orders);
	run_env(&r, env, "watch", "--from-beginning", "-e", "--topics", list, NULL);
	ck_assert_int_eq(r.status, 0);
	snprintf(want, sizeof(want), "topic %s does not exist (yet): skipped\n", missing);
	assert_has(r.err, want);
	ck_assert_int_eq(count(r.err, "skipped"), 1);
	ck_assert_int_eq(count(r.out, "\n"), 4);
	run_release(&r);

	run_env(&r, env, "watch", "-e", "--topics", missing, NULL);
	ck_assert_int_eq(r.status, 1);
	snprintf(want, sizeof(want), "none of the 1 topic exists on Kafka at %s", bootstrap);
	assert_has(r.err, want);
	run_release(&r);
}
END_TEST

START_TEST(watch_orders_new_events_within_its_window_and_stops_at_count)
{
	const char *env[] = {TZ_UTC, NULL};
	struct job j;
	struct job_text started = {&j, "Ctrl-C stops"};
	struct es_producer *p;
	struct wtopics t;
	struct run r;

	make_wtopics(&t);
	job_start(&j, env, "watch", "--topics", t.list, "--count", "3", "--window", "3000", NULL);
	if (!es_test_wait_until(job_said, &started, 20000)) {
		job_finish(&j, &r, 1);
		ck_abort_msg("watch did not start");
	}
	/* The reaction first, on other topics: it must wait for its cause. */
	p = wproducer();
	wsend(p, t.inventory, "InventoryReserved", ORDER, ID(3), ID(1), WATCH_DAY ".200Z");
	wsend(p, t.payments, "PaymentProcessed", ORDER, ID(4), ID(1), WATCH_DAY ".300Z");
	wsend(p, t.orders, "OrderPlaced", ORDER, ID(1), NULL, WATCH_DAY ".100Z");
	es_producer_free(p);
	job_finish(&j, &r, 30000);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(count(r.out, "\n"), 4);
	assert_event_line(r.out, 1, "03:04:05.100", t.orders, "OrderPlaced", ORDER, ID(1), "-");
	assert_event_line(r.out, 2, "03:04:05.200", t.inventory, "InventoryReserved", ORDER, ID(3),
			  ID(1));
	assert_event_line(r.out, 3, "03:04:05.300", t.payments, "PaymentProcessed", ORDER, ID(4),
			  ID(1));
	run_release(&r);
}
END_TEST

START_TEST(watch_prints_what_it_holds_on_sigterm)
{
	const char *env[] = {TZ_UTC, NULL};
	struct job j;
	struct job_text caught_up = {&j, "history read (6 events)"};
	struct wtopics t;
	struct run r;

	make_wtopics(&t);
	produce_saga(&t);
	/* A window of a minute: everything is still held at the signal. */
	job_start(&j, env, "watch", "--topics", t.list, "--from-beginning", "--window", "60000",
		  NULL);
	if (!es_test_wait_until(job_said, &caught_up, 20000)) {
		job_finish(&j, &r, 1);
		ck_abort_msg("watch did not read the history");
	}
	kill(j.pid, SIGTERM);
	job_finish(&j, &r, 10000);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(count(r.out, "\n"), 7);
	assert_event_line(r.out, 1, "03:04:05.100", t.orders, "OrderPlaced", ORDER, ID(1), "-");
	assert_event_line(r.out, 5, "03:04:05.400", t.orders, "OrderConfirmed", ORDER, ID(5),
			  ID(3));
	run_release(&r);
}
END_TEST

START_TEST(watch_refuses_a_bad_command_line_and_says_when_kafka_is_away)
{
	/* Each exits 2 without trying Kafka; says: part of its message. */
	static const struct {
		const char *args[2];
		const char *says;
	} bad[] = {
		{{"--window", "-1"}, "--window \"-1\""},
		{{"--count", "0"}, NULL},
		{{"--color=sometimes", NULL}, NULL},
		{{"--topics", "orders,,payments"}, "is not a topic name"},
		{{"--topics", "bad\033name"}, NULL},
		{{"orders", NULL}, NULL},
		{{"--bogus", NULL}, "unknown option --bogus"},
		{{"--order", NULL}, "needs a value"},
	};
	const char *away[] = {"KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1", NULL};
	struct run r;

	run(&r, "watch", "--help", NULL);
	ck_assert_int_eq(r.status, 0);
	assert_has(r.out, "usage: shopctl watch");
	assert_has(r.out, "OrderPlaced");
	run_release(&r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		run(&r, "watch", bad[i].args[0], bad[i].args[1], NULL);
		ck_assert_msg(r.status == 2, "watch %s %s: status %d", bad[i].args[0],
			      bad[i].args[1] ? bad[i].args[1] : "", r.status);
		if (bad[i].says)
			assert_has(r.err, bad[i].says);
		run_release(&r);
	}

	/* Nobody listens on port 1: a message naming it, after the timeout. */
	run_env(&r, away, "watch", "-e", NULL);
	ck_assert_int_eq(r.status, 1);
	assert_has(r.err, "shopctl: watch: Kafka at 127.0.0.1:1: ");
	ck_assert_str_eq(r.out, "");
	run_release(&r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tools.shopctl.watch");
	TCase *tc = tcase_create("watch");
	SRunner *sr;
	int failed;

	bootstrap = es_test_kafka_bootstrap();
	if (!bootstrap)
		return ES_TEST_SKIP;
	es_log_init("it-shopctl-watch", ES_LOG_WARN);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, watch_prints_every_topic_in_event_time_order);
	tcase_add_test(tc, watch_filters_one_order_and_reads_the_daemons_topic_variables);
	tcase_add_test(tc, watch_escapes_what_events_carry_and_colours_only_when_asked);
	tcase_add_test(tc, watch_skips_a_missing_topic_with_a_notice);
	tcase_add_test(tc, watch_orders_new_events_within_its_window_and_stops_at_count);
	tcase_add_test(tc, watch_prints_what_it_holds_on_sigterm);
	tcase_add_test(tc, watch_refuses_a_bad_command_line_and_says_when_kafka_is_away);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
