/*
 * Integration tests of the shopctl binary, run as a subprocess the way a
 * person runs it: `dlq list/show/replay` and `watch` against the real
 * broker on topics of their own, `place` and `follow` against a fake
 * order-service served by this test (es_http), `rebuild-analytics` with
 * stand-ins and, when this build has it, the real analytics-service on a
 * throwaway database.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "es/db.h"
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
/* Valid UTF-8, so only the C1 character is escaped. */
#define DEAD_ERROR_C1                                  \
	"invalid CloudEvent: not valid JSON (\xc2\x9b" \
	"2J)"
#define DEAD_ERROR_C1_SHOWN "invalid CloudEvent: not valid JSON (\\xc2\\x9b2J)"

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

/* A shopctl started by job_start, running or done. */
struct job {
	pid_t pid;
	int out, err; /* its stdout and stderr: unlinked temporary files */
	const char *argv[32];
	int argc;
};

/*
 * Starts shopctl with the arguments (NULL-terminated) and env: "NAME=value"
 * entries set, "NAME" entries unset, on top of this process's environment.
 */
static void job_start_va(struct job *j, const char *const *env, va_list ap)
{
	char out_path[] = "/tmp/it_shopctl_out_XXXXXX", err_path[] = "/tmp/it_shopctl_err_XXXXXX";

	j->out = mkstemp(out_path);
	j->err = mkstemp(err_path);
	ck_assert(j->out >= 0 && j->err >= 0);
	unlink(out_path);
	unlink(err_path);
	j->argv[0] = SHOPCTL_BIN;
	j->argc = 1;
	while (j->argc < 31 && (j->argv[j->argc] = va_arg(ap, const char *)))
		j->argc++;
	j->argv[j->argc] = NULL;
	fflush(NULL);
	j->pid = fork();
	ck_assert_int_ge(j->pid, 0);
	if (j->pid == 0) {
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
		if (dup2(j->out, 1) < 0 || dup2(j->err, 2) < 0)
			_exit(126);
		execv(SHOPCTL_BIN, (char *const *)j->argv);
		_exit(127);
	}
}

static void job_start(struct job *j, const char *const *env, ...)
{
	va_list ap;

	va_start(ap, env);
	job_start_va(j, env, ap);
	va_end(ap);
}

/*
 * Waits for the job to exit, up to timeout_ms (then kills it and the test
 * fails, after showing its output), and collects its status and output.
 */
static void job_finish(struct job *j, struct run *r, int timeout_ms)
{
	struct timespec start, now, tick = {0, 10 * 1000000};
	bool timed_out = false;
	int status = 0;
	pid_t got;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while ((got = waitpid(j->pid, &status, WNOHANG)) == 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000 >
		    timeout_ms) {
			kill(j->pid, SIGKILL);
			got = waitpid(j->pid, &status, 0);
			timed_out = true;
			break;
		}
		nanosleep(&tick, NULL);
	}
	ck_assert_int_eq(got, j->pid);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	r->out = slurp(j->out);
	r->err = slurp(j->err);
	/* Shown when an assertion fails, so the output is in the log. */
	printf("$ shopctl");
	for (int i = 1; i < j->argc; i++)
		printf(" %s", j->argv[i]);
	printf("\n[exit %d]\n--- stdout\n%s--- stderr\n%s", r->status, r->out, r->err);
	fflush(stdout);
	ck_assert_msg(!timed_out, "shopctl did not exit within %d ms", timeout_ms);
}

static void run_env(struct run *r, const char *const *env, ...)
{
	struct job j;
	va_list ap;

	va_start(ap, env);
	job_start_va(&j, env, ap);
	va_end(ap);
	job_finish(&j, r, 120000);
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

/* -------------------------------------------------------------- watch */

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

struct job_text {
	struct job *job;
	const char *needle;
};

/* For es_test_wait_until: the job's stderr so far holds the needle. */
static bool job_said(void *arg)
{
	struct job_text *jt = arg;
	char buf[8192];
	ssize_t n = pread(jt->job->err, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, jt->needle) != NULL;
}

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

/* A parked outbox row is listed with its reason and the row waiting behind
 * it; retry puts it back for the relay, once. */
START_TEST(outbox_lists_and_retries_a_parked_row)
{
	struct es_test_db tdb;
	struct es_db *db;
	char err[512], env_buf[2][300];
	const char *env[3] = {env_buf[0], env_buf[1], NULL};
	struct run r;

	ck_assert_msg(es_test_db_create(&tdb, err, sizeof(err)) == 0, "%s", err);
	db = es_db_connect(tdb.conninfo, "payment_service", 10000, err, sizeof(err));
	ck_assert_msg(db, "%s", err);
	ck_assert_msg(es_db_migrate(db, NULL, err, sizeof(err)) >= 0, "%s", err);
	ck_assert_msg(es_db_exec(db,
				 "INSERT INTO es_outbox (topic, msg_key, event_id, event_type, "
				 "payload, attempts, parked_at, park_reason) VALUES "
				 "('payments', 'k1', 'e1', 'PaymentProcessed', '{}', 1, now(), "
				 "'Broker: Message size too large (MSG_SIZE_TOO_LARGE)'), "
				 "('payments', 'k1', 'e2', 'PaymentRefunded', '{}', 0, NULL, NULL)",
				 0, NULL, err, sizeof(err)) == 2,
		      "%s", err);
	snprintf(env_buf[0], sizeof(env_buf[0]), "DATABASE_URL=%s", tdb.conninfo);
	snprintf(env_buf[1], sizeof(env_buf[1]), "DATABASE_SCHEMA");

	run_env(&r, env, "outbox", "list", "payment-service", NULL);
	ck_assert_int_eq(r.status, 0);
	assert_has(r.out, "id=1  topic=payments  key=k1  type=PaymentProcessed  attempts=1");
	assert_has(r.out, "waiting=1  reason=Broker: Message size too large (MSG_SIZE_TOO_LARGE)");
	assert_has(r.err, "shopctl: 1 parked row\n");
	run_release(&r);

	run_env(&r, env, "outbox", "retry", "payment-service", "1", NULL);
	ck_assert_int_eq(r.status, 0);
	assert_has(r.out, "row 1 put back");
	run_release(&r);
	ck_assert_int_eq(
		es_test_count(db,
			      "SELECT count(*) AS n FROM es_outbox WHERE parked_at IS NULL "
			      "AND attempts = 0",
			      0, NULL),
		2);
	run_env(&r, env, "outbox", "retry", "payment-service", "1", NULL);
	ck_assert_int_eq(r.status, 1);
	assert_has(r.err, "no parked row 1");
	run_release(&r);
	run_env(&r, env, "outbox", "retry", "payment-service", "x", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
	es_db_free(db);
	es_test_db_drop(&tdb);
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
	TCase *watch = tcase_create("watch");
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

	tcase_set_timeout(watch, 120);
	tcase_add_test(watch, watch_prints_every_topic_in_event_time_order);
	tcase_add_test(watch, watch_filters_one_order_and_reads_the_daemons_topic_variables);
	tcase_add_test(watch, watch_escapes_what_events_carry_and_colours_only_when_asked);
	tcase_add_test(watch, watch_skips_a_missing_topic_with_a_notice);
	tcase_add_test(watch, watch_orders_new_events_within_its_window_and_stops_at_count);
	tcase_add_test(watch, watch_prints_what_it_holds_on_sigterm);
	tcase_add_test(watch, watch_refuses_a_bad_command_line_and_says_when_kafka_is_away);
	suite_add_tcase(s, watch);

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
	/* Databases, like the real rebuild. */
	tcase_add_test(rebuild, outbox_lists_and_retries_a_parked_row);
	suite_add_tcase(s, rebuild);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
