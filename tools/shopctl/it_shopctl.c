/*
 * Integration tests of the shopctl binary, run as a subprocess the way a
 * person runs it: `dlq list/show/replay` against the real broker on topics
 * of its own, `place` and `follow` against a fake order-service served by
 * this test (es_http), `rebuild-analytics` with stand-ins and, when this
 * build has it, the real analytics-service on a throwaway database.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "es/http.h"
#include "es/kafka.h"
#include "es/log.h"
#include "testkafka.h"
#include "testsupport.h"

#ifndef SHOPCTL_BIN
#error "SHOPCTL_BIN (the path of the shopctl binary) must be defined"
#endif

#define ORDER "5c1a2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#define DEAD_VALUE                                                                           \
	"{\"specversion\":\"1.0\",\"id\":\"0b6f2c9e-51d4-4e8a-9c1f-3a7d2e6b8f40\",\"type\":" \
	"\"Bogus\"}"
#define BAD_UTF8_VALUE "\xff\xfe{not json\x01"

static const char *bootstrap;

/* ------------------------------------------------------ running shopctl */

struct run {
	int status; /* exit status, or -1 when it did not exit normally */
	char *out; /* stdout, NUL-terminated */
	char *err; /* stderr */
};

static char *slurp(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;

	ck_assert_ptr_nonnull(buf);
	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
	}
	buf[len] = '\0';
	close(fd);
	return buf;
}

/*
 * Runs shopctl with the arguments (NULL-terminated) and env: "NAME=value"
 * entries set, "NAME" entries unset, on top of this process's environment.
 */
static void run_env(struct run *r, const char *const *env, ...)
{
	char out_path[] = "/tmp/it_shopctl_out_XXXXXX", err_path[] = "/tmp/it_shopctl_err_XXXXXX";
	const char *argv[32] = {SHOPCTL_BIN};
	int out = mkstemp(out_path), err = mkstemp(err_path), argc = 1, status;
	va_list ap;
	pid_t pid;

	ck_assert(out >= 0 && err >= 0);
	unlink(out_path);
	unlink(err_path);
	va_start(ap, env);
	while (argc < 31 && (argv[argc] = va_arg(ap, const char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		for (size_t i = 0; env && env[i]; i++) {
			const char *eq = strchr(env[i], '=');

			if (eq) {
				char name[128];

				snprintf(name, sizeof(name), "%.*s", (int)(eq - env[i]), env[i]);
				setenv(name, eq + 1, 1);
			} else {
				unsetenv(env[i]);
			}
		}
		if (dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(126);
		execv(SHOPCTL_BIN, (char *const *)argv);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	r->out = slurp(out);
	r->err = slurp(err);
	/* Shown when an assertion fails, so the output is in the log. */
	printf("$ shopctl");
	for (int i = 1; i < argc; i++)
		printf(" %s", argv[i]);
	printf("\n[exit %d]\n--- stdout\n%s--- stderr\n%s", r->status, r->out, r->err);
}

#define run(r, ...) run_env(r, NULL, __VA_ARGS__)

static void run_release(struct run *r)
{
	free(r->out);
	free(r->err);
}

static int count(const char *haystack, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

#define assert_has(text, needle) \
	ck_assert_msg(strstr((text), (needle)) != NULL, "missing \"%s\" in:\n%s", (needle), (text))

/* ------------------------------------------------------- dead letters */

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
 * with its ce_* headers, @1 bytes that are not even UTF-8. */
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
	rd_kafka_header_add(h, ES_DLQ_HDR_ERROR, -1, "invalid CloudEvent: not valid JSON", -1);
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
		 "%s[0]@1  original=%s[0]@7  attempts=?  time=?  error=invalid CloudEvent: not "
		 "valid JSON\n",
		 t.dlq, t.orig);
	assert_has(r.out, want);
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

/* ------------------------------------------- a fake order-service */

#define FAKE_CONFIRMED "11111111-2222-4333-8444-555555555555"
#define FAKE_PENDING "22222222-3333-4444-8555-666666666666"
#define FAKE_FLAKY "33333333-4444-4555-8666-777777777777"

static struct fake {
	struct es_http *http;
	pthread_mutex_t lock;
	char url[64];
	char body[4096]; /* the last POST /orders */
	char key[300]; /* its Idempotency-Key */
	int gets_confirmed, gets_flaky;
} fake;

static json_t *entry(const char *id, const char *type, const char *source, const char *time)
{
	return json_pack("{s:s,s:s,s:s,s:s}", "id", id, "type", type, "source", source, "time",
			 time);
}

static json_t *order_doc(const char *id, const char *status, const char *reason, int entries)
{
	json_t *timeline = json_array();
	static const char *const rows[][3] = {
		{"OrderPlaced", "/eventshop/order-service", "2026-11-22T04:15:10.123Z"},
		{"PaymentProcessed", "/eventshop/payment-service", "2026-11-22T04:15:10.223Z"},
		{"InventoryRejected", "/eventshop/inventory-service", "2026-11-22T04:15:10.323Z"},
		{"OrderCancelled", "/eventshop/order-service", "2026-11-22T04:15:10.423Z"},
	};

	for (int i = 0; i < entries; i++) {
		char eid[40];

		snprintf(eid, sizeof(eid), "aaaaaaaa-0000-4000-8000-%012d", i);
		json_array_append_new(timeline, entry(eid, rows[i][0], rows[i][1], rows[i][2]));
	}
	return json_pack("{s:s,s:s,s:o,s:o}", "orderId", id, "status", status, "cancelReason",
			 reason ? json_string(reason) : json_null(), "timeline", timeline);
}

static int fake_post(struct es_http_request *req, void *arg)
{
	const char *key = es_http_header(req, "Idempotency-Key");
	json_t *body = json_loads(es_http_body(req, NULL), 0, NULL);
	const char *sku = json_string_value(
		json_object_get(json_array_get(json_object_get(body, "items"), 0), "sku"));
	json_t *errors;
	int rc;

	pthread_mutex_lock(&fake.lock);
	snprintf(fake.body, sizeof(fake.body), "%s", es_http_body(req, NULL));
	snprintf(fake.key, sizeof(fake.key), "%s", key ? key : "");
	pthread_mutex_unlock(&fake.lock);
	if (!es_http_content_type_is(req, "application/json")) {
		rc = es_http_reply_problem(req, 415, NULL, NULL, "want JSON", NULL);
	} else if (sku && !strcmp(sku, "nope")) {
		errors = json_array();
		es_http_errors_add(errors, "/items/0/sku", "unknown sku");
		rc = es_http_reply_problem(req, 422, "urn:x", "Invalid order", "1 field is invalid",
					   errors);
	} else {
		es_http_add_header(req, "Location", "/orders/" FAKE_CONFIRMED);
		rc = es_http_reply_json(req, 202,
					json_pack("{s:s,s:s,s:i,s:s}", "orderId", FAKE_CONFIRMED,
						  "status", "PENDING", "totalCents", 4095,
						  "currency", "EUR"));
	}
	json_decref(body);
	return rc;
}

/* FAKE_CONFIRMED grows one entry per GET and ends CANCELLED (a timeline
 * that repeats the old entries each time); FAKE_PENDING never ends;
 * FAKE_FLAKY answers 503 once. */
static int fake_get(struct es_http_request *req, void *arg)
{
	const char *id = es_http_param(req, "orderId");
	int n;

	if (!strcmp(id, FAKE_CONFIRMED)) {
		pthread_mutex_lock(&fake.lock);
		n = ++fake.gets_confirmed;
		pthread_mutex_unlock(&fake.lock);
		if (n >= 4)
			return es_http_reply_json(req, 200,
						  order_doc(id, "CANCELLED", "OUT_OF_STOCK", 4));
		return es_http_reply_json(req, 200, order_doc(id, "PENDING", NULL, n));
	}
	if (!strcmp(id, FAKE_PENDING))
		return es_http_reply_json(req, 200, order_doc(id, "PENDING", NULL, 1));
	if (!strcmp(id, FAKE_FLAKY)) {
		pthread_mutex_lock(&fake.lock);
		n = ++fake.gets_flaky;
		pthread_mutex_unlock(&fake.lock);
		if (n == 1)
			return es_http_reply_problem(req, 503, NULL, NULL, "database away", NULL);
		return es_http_reply_json(req, 200, order_doc(id, "CONFIRMED", NULL, 2));
	}
	return es_http_reply_problem(req, 404, NULL, NULL, "no such order", NULL);
}

/* A checked fixture: runs in the forked test, where the server's threads
 * live. */
static void fake_start(void)
{
	struct es_http_conf conf;
	char err[256];

	memset(&fake, 0, sizeof(fake));
	pthread_mutex_init(&fake.lock, NULL);
	es_http_conf_init(&conf);
	conf.bind_addr = "127.0.0.1";
	conf.threads = 2;
	fake.http = es_http_new(&conf, err, sizeof(err));
	ck_assert_msg(fake.http != NULL, "%s", err);
	ck_assert_int_eq(
		es_http_route(fake.http, "POST", "/orders", fake_post, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(es_http_route(fake.http, "GET", "/orders/{orderId}", fake_get, NULL, err,
				       sizeof(err)),
			 0);
	ck_assert_msg(es_http_start(fake.http, err, sizeof(err)) == 0, "%s", err);
	snprintf(fake.url, sizeof(fake.url), "http://127.0.0.1:%u/", es_http_port(fake.http));
}

static void fake_stop(void)
{
	es_http_free(fake.http);
	pthread_mutex_destroy(&fake.lock);
}

START_TEST(place_posts_the_order_and_prints_its_id_and_the_answer)
{
	struct run r;
	json_t *body;
	json_t *items;

	run(&r, "place", "--url", fake.url, "--sku", "mug-classic:2", "--sku", "sticker-pack",
	    "--token", "tok_declined", "--email", "ada@example.com", "--customer", "c-7", "--key",
	    "retry-1", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert(!strncmp(r.out, FAKE_CONFIRMED "\n{", strlen(FAKE_CONFIRMED) + 2));
	assert_has(r.out, "\"status\":\"PENDING\"");
	ck_assert_str_eq(fake.key, "retry-1");
	body = json_loads(fake.body, 0, NULL);
	ck_assert_ptr_nonnull(body);
	ck_assert_str_eq(json_string_value(json_object_get(body, "customerId")), "c-7");
	ck_assert_str_eq(json_string_value(json_object_get(body, "customerEmail")),
			 "ada@example.com");
	ck_assert_str_eq(json_string_value(json_object_get(body, "paymentToken")), "tok_declined");
	items = json_object_get(body, "items");
	ck_assert_int_eq(json_array_size(items), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 0), "sku")),
			 "mug-classic");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(items, 0), "quantity")),
			 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 1), "sku")),
			 "sticker-pack");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(items, 1), "quantity")),
			 1);
	json_decref(body);
	run_release(&r);

	/* ORDER_SERVICE_URL instead of --url; the defaults; no key. */
	{
		char env_url[96];
		const char *env[] = {env_url, NULL};

		snprintf(env_url, sizeof(env_url), "ORDER_SERVICE_URL=%s", fake.url);
		run_env(&r, env, "place", "--sku", "hoodie-eda", NULL);
		ck_assert_int_eq(r.status, 0);
		ck_assert_str_eq(fake.key, "");
		body = json_loads(fake.body, 0, NULL);
		ck_assert_str_eq(json_string_value(json_object_get(body, "paymentToken")),
				 "tok_visa");
		json_decref(body);
		run_release(&r);
	}
}
END_TEST

START_TEST(place_prints_the_problem_of_a_refused_order)
{
	struct run r;

	run(&r, "place", "--url", fake.url, "--sku", "nope:1", NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	assert_has(r.err, "shopctl: HTTP 422 Invalid order: 1 field is invalid\n");
	assert_has(r.err, "  /items/0/sku: unknown sku\n");
	run_release(&r);
}
END_TEST

START_TEST(place_refuses_a_bad_command_line_and_says_when_nobody_answers)
{
	struct run r;

	run(&r, "place", "--url", fake.url, NULL);
	ck_assert_int_eq(r.status, 2);
	assert_has(r.err, "--sku");
	run_release(&r);
	run(&r, "place", "--url", fake.url, "--sku", "mug-classic:two", NULL);
	ck_assert_int_eq(r.status, 2);
	assert_has(r.err, "not a whole number");
	run_release(&r);
	run(&r, "place", "--url", fake.url, "--sku", ":3", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
	run(&r, "place", "--url", fake.url, "--sku", "mug-classic", "--colour", "red", NULL);
	ck_assert_int_eq(r.status, 2);
	assert_has(r.err, "unknown option --colour");
	run_release(&r);
	run(&r, "place", "--url", "ftp://example.com", "--sku", "mug-classic", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
	run(&r, "place", "--sku", "mug-classic", "--url", NULL);
	ck_assert_int_eq(r.status, 2);
	assert_has(r.err, "needs a value");
	run_release(&r);
	/* Port 1: nothing listens there. */
	run(&r, "place", "--url", "http://127.0.0.1:1", "--sku", "mug-classic", NULL);
	ck_assert_int_eq(r.status, 1);
	assert_has(r.err, "is order-service running?");
	run_release(&r);
}
END_TEST

START_TEST(follow_prints_each_entry_once_then_the_final_status)
{
	struct run r;
	const char *placed, *paid, *rejected, *cancelled;
	char line[128];

	run(&r, "follow", FAKE_CONFIRMED, "--url", fake.url, "--timeout", "30", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(count(r.out, "OrderPlaced"), 1);
	ck_assert_int_eq(count(r.out, "PaymentProcessed"), 1);
	ck_assert_int_eq(count(r.out, "InventoryRejected"), 1);
	ck_assert_int_eq(count(r.out, "OrderCancelled"), 1);
	snprintf(line, sizeof(line), "%s  %-18s  %s\n", "2026-11-22T04:15:10.123Z", "OrderPlaced",
		 "/eventshop/order-service");
	placed = strstr(r.out, line);
	paid = strstr(r.out, "PaymentProcessed");
	rejected = strstr(r.out, "InventoryRejected");
	cancelled = strstr(r.out, "OrderCancelled");
	ck_assert_ptr_nonnull(placed);
	ck_assert(placed < paid && paid < rejected && rejected < cancelled);
	assert_has(r.out, "status: CANCELLED, cancelReason: OUT_OF_STOCK\n");
	ck_assert_int_eq(count(r.out, "\n"), 5);
	/* Four polls at 200 ms, not a busy loop and not one per second. */
	ck_assert_int_eq(fake.gets_confirmed, 4);
	run_release(&r);
}
END_TEST

START_TEST(follow_times_out_on_an_order_that_stays_pending)
{
	struct timespec t0, t1;
	struct run r;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	run(&r, "follow", "--timeout", "1", "--url", fake.url, FAKE_PENDING, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_int_eq(r.status, 1);
	ck_assert_int_eq(count(r.out, "OrderPlaced"), 1);
	assert_has(r.err, "timed out after 1 s: order " FAKE_PENDING " is still PENDING");
	ck_assert_msg(ms >= 900 && ms < 5000, "took %lld ms", ms);
	run_release(&r);
}
END_TEST

START_TEST(follow_rides_out_a_503_and_stops_on_404)
{
	struct run r;

	run(&r, "follow", FAKE_FLAKY, "--url", fake.url, NULL);
	ck_assert_int_eq(r.status, 0);
	assert_has(r.err, "HTTP 503");
	assert_has(r.out, "status: CONFIRMED\n");
	run_release(&r);

	run(&r, "follow", "99999999-3333-4444-8555-666666666666", "--url", fake.url, NULL);
	ck_assert_int_eq(r.status, 1);
	assert_has(r.err, "not found (HTTP 404");
	run_release(&r);
}
END_TEST

START_TEST(follow_refuses_a_bad_command_line)
{
	struct run r;

	run(&r, "follow", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
	run(&r, "follow", "../../etc/passwd", NULL);
	ck_assert_int_eq(r.status, 2);
	assert_has(r.err, "is not a UUID");
	run_release(&r);
	run(&r, "follow", FAKE_PENDING, "--timeout", "soon", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
	run(&r, "follow", FAKE_PENDING, FAKE_FLAKY, NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
	run(&r, "follow", "--help", NULL);
	ck_assert_int_eq(r.status, 0);
	assert_has(r.out, "usage: shopctl follow");
	run_release(&r);
}
END_TEST

/* ---------------------------------------------------- rebuild-analytics */

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
	Suite *s = suite_create("tools.shopctl");
	TCase *kafka = tcase_create("dlq");
	TCase *http = tcase_create("http");
	TCase *rebuild = tcase_create("rebuild");
	SRunner *sr;
	int failed;

	bootstrap = es_test_kafka_bootstrap();
	if (!bootstrap)
		return ES_TEST_SKIP;
	es_log_init("it-shopctl", ES_LOG_WARN);
	tcase_set_timeout(kafka, 120);
	tcase_add_test(kafka, dlq_list_prints_one_line_per_dead_letter);
	tcase_add_test(kafka, dlq_list_refuses_ambiguous_topic_dlq_and_reports_missing_topics);
	tcase_add_test(kafka, dlq_show_prints_every_header_and_escapes_what_is_not_utf8);
	tcase_add_test(kafka, dlq_show_says_what_is_not_there);
	tcase_add_test(kafka, dlq_replay_sends_key_value_and_headers_without_the_dlq_ones);
	tcase_add_test(kafka, dlq_replay_goes_to_the_original_topic_by_default);
	tcase_add_test(kafka, dlq_replay_refuses_a_topic_that_does_not_exist);
	suite_add_tcase(s, kafka);

	tcase_set_timeout(http, 60);
	tcase_add_checked_fixture(http, fake_start, fake_stop);
	tcase_add_test(http, place_posts_the_order_and_prints_its_id_and_the_answer);
	tcase_add_test(http, place_prints_the_problem_of_a_refused_order);
	tcase_add_test(http, place_refuses_a_bad_command_line_and_says_when_nobody_answers);
	tcase_add_test(http, follow_prints_each_entry_once_then_the_final_status);
	tcase_add_test(http, follow_times_out_on_an_order_that_stays_pending);
	tcase_add_test(http, follow_rides_out_a_503_and_stops_on_404);
	tcase_add_test(http, follow_refuses_a_bad_command_line);
	suite_add_tcase(s, http);

	tcase_set_timeout(rebuild, 120);
	tcase_add_test(rebuild,
		       rebuild_analytics_runs_the_program_with_rebuild_and_passes_its_status);
#ifdef HAVE_ANALYTICS_SERVICE
	tcase_add_test(rebuild, rebuild_analytics_runs_the_real_rebuild);
#endif
	suite_add_tcase(s, rebuild);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
