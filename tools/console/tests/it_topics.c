/*
 * integration.tools.console.topics: a topic created after the console
 * started is followed without a restart (the console looks for new
 * topics every few seconds): its first message reaches an open page's
 * event stream. Runs the eventshop-console binary against the real
 * broker, as a learner's demo does.
 */
#include <check.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "es/clock.h"
#include "es/kafka.h"
#include "testkafka.h"
#include "testsupport.h"

#define MARK "a-message-of-a-topic-made-after-the-console"

static const char *bootstrap;
static char run[48], log_path[128];

/* The port the console announced in its log, 0 until it did. */
static unsigned port_from_log(void)
{
	const char *what = "serving HTTP on port ";
	char line[2048];
	unsigned port = 0;
	FILE *f = fopen(log_path, "r");

	while (f && fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, what);

		if (p)
			port = (unsigned)strtoul(p + strlen(what), NULL, 10);
	}
	if (f)
		fclose(f);
	return port;
}

static pid_t start_console(void)
{
	char name[160];
	pid_t pid;

	setenv("KAFKA_BOOTSTRAP_SERVERS", bootstrap, 1);
	snprintf(name, sizeof(name), "%s.orders", run);
	setenv("TOPIC_ORDERS", name, 1);
	snprintf(name, sizeof(name), "%s.payments", run);
	setenv("TOPIC_PAYMENTS", name, 1); /* made after the start */
	snprintf(name, sizeof(name), "%s.inventory", run);
	setenv("TOPIC_INVENTORY", name, 1);
	snprintf(name, sizeof(name), "%s.notifications", run);
	setenv("TOPIC_NOTIFICATIONS", name, 1);
	snprintf(name, sizeof(name), "%s.shipments", run);
	setenv("TOPIC_SHIPMENTS", name, 1);
	snprintf(name, sizeof(name), "%s.dlq.order-service", run);
	setenv("CONSOLE_DLQ_TOPICS", name, 1);
	/* Nothing to probe: a port nobody serves. */
	setenv("CONSOLE_SERVICES", "order-service=http://127.0.0.1:9", 1);
	setenv("CONSOLE_GROUPS", run, 1);
	setenv("CONSOLE_ADMIN", "none", 1);
	setenv("CONSOLE_PORT", "0", 1);
	pid = fork();
	if (pid == 0) {
		FILE *f = freopen(log_path, "w", stderr);

		if (!f)
			_exit(126);
		execl(CONSOLE_BIN, CONSOLE_BIN, (char *)NULL);
		_exit(127);
	}
	return pid;
}

struct watch {
	char tail[256]; /* the end of what came, for a mark split across reads */
	bool seen;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
	struct watch *w = arg;
	size_t len = size * n, keep = strlen(w->tail);
	char *buf = malloc(keep + len + 1);

	if (!buf)
		return 0;
	memcpy(buf, w->tail, keep);
	memcpy(buf + keep, ptr, len);
	buf[keep + len] = '\0';
	w->seen = w->seen || strstr(buf, MARK) != NULL;
	snprintf(w->tail, sizeof(w->tail), "%s", keep + len > 200 ? buf + keep + len - 200 : buf);
	free(buf);
	return w->seen ? 0 : len; /* 0: enough, the transfer stops */
}

START_TEST(topic_made_after_the_start_is_followed)
{
	char topic[160], err[256], url[64];
	long long deadline;
	unsigned port = 0;
	struct watch w = {"", false};
	struct es_producer *p;
	pid_t pid;
	CURL *curl;
	int status;

	snprintf(topic, sizeof(topic), "%s.orders", run);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, topic, 2), 0);
	pid = start_console();
	ck_assert_int_gt(pid, 0);
	deadline = es_monotonic_ms() + 60000;
	while (!port && es_monotonic_ms() < deadline) {
		ck_assert_msg(waitpid(pid, &status, WNOHANG) == 0, "the console exited; see %s",
			      log_path);
		port = port_from_log();
		es_sleep_ms(50);
	}
	ck_assert_msg(port, "the console did not serve within 60 s; see %s", log_path);

	/* After the start: a topic of the shop that did not exist. */
	snprintf(topic, sizeof(topic), "%s.payments", run);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, topic, 3), 0);
	p = es_producer_new(bootstrap, "it-console-topics", NULL, NULL, err, sizeof(err));
	ck_assert_msg(p != NULL, "%s", err);
	ck_assert_int_eq(es_producer_send_raw(p, topic, "k", 1, MARK, strlen(MARK), NULL, NULL, err,
					      sizeof(err)),
			 0);
	ck_assert_int_eq(es_producer_flush(p, 10000), 0);
	es_producer_free(p);

	/* An open page sees it: the stream, read until the mark or 40 s. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/events", port);
	curl = curl_easy_init();
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 40000L);
	curl_easy_perform(curl);
	curl_easy_cleanup(curl);
	ck_assert_msg(w.seen, "the message of the new topic did not reach the stream in 40 s");
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the console did not exit 0 on SIGTERM; see %s", log_path);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tools.console.topics");
	TCase *tc = tcase_create("topics");
	SRunner *sr;
	int failed;

	bootstrap = es_test_kafka_bootstrap();
	if (!bootstrap)
		return ES_TEST_SKIP;
	es_test_unique_name(run, sizeof(run), "console");
	snprintf(log_path, sizeof(log_path), "/tmp/%s.console.log", run);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, topic_made_after_the_start_is_followed);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	if (!failed)
		unlink(log_path);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
