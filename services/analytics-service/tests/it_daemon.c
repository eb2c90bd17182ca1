/*
 * The real analytics-service binary against the real broker and database:
 * it becomes ready, counts a produced saga on GET /stats and /metrics,
 * stops on SIGTERM with status 0 within seconds, and after
 * `analytics-service --rebuild` a new start replays the topics to the same
 * numbers. Topics, consumer group, schema and port are the test's own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "es/kafka.h"
#include "es/log.h"
#include "saga.h"
#include "testkafka.h"
#include "testsupport.h"

#ifndef ANALYTICS_BIN
#error "ANALYTICS_BIN must name the analytics-service binary"
#endif

#define WAIT_MS 30000
#define STOP_MS 10000

static const char *test_conninfo;
static const char *bootstrap;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000}, NULL);
}

/* A port nobody listens on now (the kernel's choice of an ephemeral one). */
static unsigned short free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/*
 * GET path on 127.0.0.1:port. Returns the status (0 when nothing answered)
 * and the body in body (NUL-terminated, cut at size).
 */
static int http_get(unsigned short port, const char *path, char *body, size_t size)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char req[256], resp[65536];
	size_t got = 0;
	int fd, status = 0;
	const char *sep;

	body[0] = '\0';
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return 0;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return 0;
	}
	snprintf(req, sizeof(req),
		 "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		close(fd);
		return 0;
	}
	for (;;) {
		ssize_t n = read(fd, resp + got, sizeof(resp) - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == sizeof(resp) - 1)
			break;
	}
	close(fd);
	resp[got] = '\0';
	if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
		return 0;
	sep = strstr(resp, "\r\n\r\n");
	snprintf(body, size, "%s", sep ? sep + 4 : "");
	return status;
}

struct daemon_env {
	char schema[64], group[96], dlq[96], port[16];
	char topic[IT_NTOPICS][96];
	unsigned short http_port;
};

/* Runs ANALYTICS_BIN with arg (or none) in env; stdout to out_fd and
 * stderr to err_fd when they are >= 0. */
static pid_t spawn(const struct daemon_env *e, const char *arg, int out_fd, int err_fd)
{
	static const char *const topic_vars[IT_NTOPICS] = {"TOPIC_ORDERS", "TOPIC_PAYMENTS",
							   "TOPIC_INVENTORY", "TOPIC_NOTIFICATIONS",
							   "TOPIC_SHIPMENTS"};
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid > 0)
		return pid;
	/* The daemon must not outlive a test that failed half way. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	setenv("DATABASE_URL", test_conninfo, 1);
	setenv("DATABASE_SCHEMA", e->schema, 1);
	setenv("CONSUMER_GROUP", e->group, 1);
	setenv("TOPIC_DLQ", e->dlq, 1);
	setenv("HTTP_PORT", e->port, 1);
	setenv("LOG_LEVEL", "warn", 1);
	for (int t = 0; t < IT_NTOPICS; t++)
		setenv(topic_vars[t], e->topic[t], 1);
	if (out_fd >= 0)
		dup2(out_fd, STDOUT_FILENO);
	if (err_fd >= 0)
		dup2(err_fd, STDERR_FILENO);
	if (arg)
		execl(ANALYTICS_BIN, ANALYTICS_BIN, arg, (char *)NULL);
	else
		execl(ANALYTICS_BIN, ANALYTICS_BIN, (char *)NULL);
	_exit(127);
}

/* Waits up to ms for pid to exit; returns its wait status, or -1. */
static int wait_exit(pid_t pid, int ms)
{
	long long deadline = now_ms() + ms;
	int status;

	while (now_ms() < deadline) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return status;
		sleep_ms(10);
	}
	return -1;
}

static void assert_exited_zero(int status, const char *what)
{
	ck_assert_msg(status != -1, "%s: still running", what);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: wait status 0x%x", what,
		      status);
}

/* Polls GET path until it answers want_status with a body containing
 * want (NULL: any body), or fails at the deadline. */
static void wait_for(unsigned short port, const char *path, int want_status, const char *want,
		     char *body, size_t size)
{
	long long deadline = now_ms() + WAIT_MS;
	int status = 0;

	while (now_ms() < deadline) {
		status = http_get(port, path, body, size);
		if (status == want_status && (!want || strstr(body, want)))
			return;
		sleep_ms(50);
	}
	ck_abort_msg("GET %s: last answer %d %s", path, status, body);
}

/* Polls GET /stats until its body is the saga's expected numbers. */
static void wait_for_stats(unsigned short port)
{
	json_t *want = json_loads(it_saga_expected_stats, 0, NULL);
	long long deadline = now_ms() + WAIT_MS;
	char body[65536];
	bool same = false;

	ck_assert_ptr_nonnull(want);
	while (!same && now_ms() < deadline) {
		json_t *got;

		if (http_get(port, "/stats", body, sizeof(body)) == 200) {
			got = json_loads(body, 0, NULL);
			same = got && json_equal(got, want);
			json_decref(got);
		}
		if (!same)
			sleep_ms(50);
	}
	json_decref(want);
	ck_assert_msg(same, "GET /stats never gave the expected numbers; last: %s", body);
}

static void stop(pid_t pid)
{
	long long t0 = now_ms();

	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	assert_exited_zero(wait_exit(pid, STOP_MS), "after SIGTERM");
	printf("stopped %lld ms after SIGTERM\n", now_ms() - t0);
}

START_TEST(daemon_serves_stats_stops_on_sigterm_and_rebuilds)
{
	struct daemon_env e;
	struct it_saga saga;
	struct es_producer *p;
	char errstr[512], body[65536], out_path[] = "/tmp/it_analytics_rebuildXXXXXX";
	int out_fd;
	pid_t pid;

	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(es_test_unique_name(e.schema, sizeof(e.schema), "analytics"), 0);
	ck_assert_int_eq(es_test_unique_name(e.group, sizeof(e.group), "it_analytics_d"), 0);
	ck_assert_int_eq(es_test_unique_name(e.dlq, sizeof(e.dlq), "it_analytics_ddlq"), 0);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, e.dlq, 1), 0);
	for (int t = 0; t < IT_NTOPICS; t++) {
		ck_assert_int_eq(
			es_test_unique_name(e.topic[t], sizeof(e.topic[t]), "it_analytics_d"), 0);
		ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, e.topic[t], 1), 0);
	}
	e.http_port = free_port();
	snprintf(e.port, sizeof(e.port), "%u", e.http_port);

	it_saga_build(&saga);
	p = es_producer_new(bootstrap, "it-analytics", NULL, NULL, errstr, sizeof(errstr));
	ck_assert_msg(p, "%s", errstr);
	for (int t = 0; t < IT_NTOPICS; t++) {
		for (size_t i = 0; i < saga.n[t]; i++)
			ck_assert_int_eq(es_producer_send(p, e.topic[t], saga.ev[t][i], NULL,
							  errstr, sizeof(errstr)),
					 0);
	}
	ck_assert_int_eq(es_producer_flush(p, 30000), 0);
	es_producer_free(p);

	pid = spawn(&e, NULL, -1, -1);
	wait_for(e.http_port, "/readyz", 200, "\"ok\"", body, sizeof(body));
	wait_for_stats(e.http_port);
	wait_for(e.http_port, "/metrics", 200, "es_analytics_orders{status=\"confirmed\"} 3\n",
		 body, sizeof(body));
	wait_for(e.http_port, "/livez", 200, NULL, body, sizeof(body));
	stop(pid);

	/* --rebuild while it is stopped, then a start replays everything. */
	out_fd = mkstemp(out_path);
	ck_assert_int_ge(out_fd, 0);
	unlink(out_path);
	pid = spawn(&e, "--rebuild", out_fd, -1);
	assert_exited_zero(wait_exit(pid, WAIT_MS), "--rebuild");
	ck_assert_int_eq(lseek(out_fd, 0, SEEK_SET), 0);
	{
		ssize_t n = read(out_fd, body, sizeof(body) - 1);

		ck_assert_int_gt(n, 0);
		body[n] = '\0';
	}
	close(out_fd);
	printf("%s", body);
	ck_assert_msg(strstr(body, "offsets of 5 partitions reset"), "%s", body);
	ck_assert_msg(strstr(body, "48 inbox rows"), "%s", body);

	pid = spawn(&e, NULL, -1, -1);
	wait_for_stats(e.http_port);
	stop(pid);
	it_saga_free(&saga);
}
END_TEST

START_TEST(help_exits_zero_and_bad_arguments_two)
{
	struct daemon_env e;
	int devnull = open("/dev/null", O_WRONLY);

	memset(&e, 0, sizeof(e));
	assert_exited_zero(wait_exit(spawn(&e, "--help", devnull, devnull), WAIT_MS), "--help");
	{
		int status = wait_exit(spawn(&e, "--frobnicate", devnull, devnull), WAIT_MS);

		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2);
	}
	close(devnull);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("analytics-service binary (Kafka + PostgreSQL)");
	TCase *tc = tcase_create("daemon");

	if (!es_test_database_url())
		return ES_TEST_SKIP;
	bootstrap = es_test_kafka_bootstrap();
	if (!bootstrap)
		return ES_TEST_SKIP;
	es_log_init("it_analytics_daemon", ES_LOG_WARN);

	tcase_add_test(tc, daemon_serves_stats_stops_on_sigterm_and_rebuilds);
	tcase_add_test(tc, help_exits_zero_and_bad_arguments_two);
	tcase_set_timeout(tc, 240);
	suite_add_tcase(s, tc);
	return es_test_run_with_db(s, &test_conninfo);
}
