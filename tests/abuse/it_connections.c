/*
 * HTTP abuse (harness.c), connections: requests cut off half-way, one
 * client holding as many connections as it can and many clients past the
 * connection limit, and slow clients, cut off at the idle timeout or the
 * request deadline, while everyone else is served.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

/* ------------------------------------------------------------------------ */
/* Slow and many clients */

struct slow {
	long long closed_after_ms; /* since its last byte; -1: still open */
	bool send_failed;
	atomic_bool stop;
	int sent;
};

/* Waits for the server to close c, noting when (since the client's last
 * byte, at last), then offers it one more byte, now far too late. */
static void wait_closed(struct slow *s, struct conn *c, long long last)
{
	if (conn_wait_closed(c, (CONN_TIMEOUT_S + 30) * 1000))
		s->closed_after_ms = shop_now_ms() - last;
	s->send_failed = conn_send(c, "u", 1) != 0 || conn_wait_closed(c, 100);
	conn_close(c);
}

/* The start of a request, then nothing: cut at the request deadline, well
 * before the idle timeout would close it. */
static void *stalled_client(void *arg)
{
	struct slow *s = arg;
	static const char part[] = "GET /livez HTTP/1.1\r\nHost: ab";
	struct conn c;

	s->closed_after_ms = -1;
	if (conn_open(&c))
		return NULL;
	for (size_t i = 0; i < sizeof(part) - 1; i++) {
		conn_send(&c, part + i, 1);
		s->sent++;
		sleep_ms(20);
	}
	wait_closed(s, &c, shop_now_ms());
	return NULL;
}

/* A kept-alive connection, one request answered, then nothing: closed at
 * the idle timeout. */
static void *idle_client(void *arg)
{
	struct slow *s = arg;
	struct conn c;
	struct resp r;

	s->closed_after_ms = -1;
	if (conn_open(&c))
		return NULL;
	conn_sends(&c, "GET /livez HTTP/1.1\r\nHost: abuse\r\n\r\n");
	if (conn_read(&c, &r, ANSWER_MS, false) == ANS_OK && r.status == 200)
		s->sent = 1;
	resp_free(&r);
	wait_closed(s, &c, shop_now_ms());
	return NULL;
}

/* Sends a header one byte every 2 s (within the idle timeout) until the
 * server closes the connection or the test says stop. */
static void *trickling_client(void *arg)
{
	struct slow *s = arg;
	struct conn c;
	long long start = shop_now_ms();
	static const char head[] = "GET /livez HTTP/1.1\r\nHost: abuse\r\nX-Slow: ";

	s->closed_after_ms = -1;
	if (conn_open(&c))
		return NULL;
	conn_sends(&c, head);
	while (!atomic_load(&s->stop)) {
		struct pollfd pfd = {.fd = c.fd, .events = POLLIN};

		if (conn_send(&c, "a", 1) ||
		    (poll(&pfd, 1, 2000) == 1 && recv(c.fd, (char[64]){0}, 64, 0) <= 0)) {
			s->closed_after_ms = shop_now_ms() - start;
			break;
		}
		s->sent++;
	}
	conn_close(&c);
	return NULL;
}

START_TEST(slow_clients_are_cut_off_and_others_served)
{
	struct slow stalled = {0}, idle = {0}, trickle = {0};
	pthread_t t1, t2, t3;
	long long start = shop_now_ms(), worst = 0;
	int served = 0, orders = 0;
	char what[200];

	ck_assert_int_eq(pthread_create(&t1, NULL, stalled_client, &stalled), 0);
	ck_assert_int_eq(pthread_create(&t2, NULL, idle_client, &idle), 0);
	ck_assert_int_eq(pthread_create(&t3, NULL, trickling_client, &trickle), 0);
	/* Meanwhile everyone else is served as usual. */
	while (shop_now_ms() - start < (CONN_TIMEOUT_S + 8) * 1000) {
		struct resp r;
		long long t0 = shop_now_ms();
		int rc = get("/livez", &r);

		ck_assert_msg(rc == ANS_OK && r.status == 200,
			      "GET /livez while slow clients hang on: %s %d", rc_name(rc),
			      r.status);
		resp_free(&r);
		if (shop_now_ms() - t0 > worst)
			worst = shop_now_ms() - t0;
		served++;
		if (served % 10 == 0) {
			rc = post_orders(VALID, &r);
			ck_assert_msg(rc == ANS_OK && r.status == 202, "POST /orders meanwhile: %d",
				      r.status);
			resp_free(&r);
			orders++;
		}
		sleep_ms(500);
	}
	atomic_store(&trickle.stop, true);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	pthread_join(t3, NULL);
	snprintf(what, sizeof(what),
		 "meanwhile: %d GET /livez all 200 (slowest %lld ms), %d POST /orders all 202",
		 served, worst, orders);
	printf("abuse: %s\n", what);

	printf("abuse: client stalling after %d bytes of a request -> closed %lld ms after its "
	       "last byte (request deadline %d s)\n",
	       stalled.sent, stalled.closed_after_ms, REQUEST_TIMEOUT_S);
	ck_assert_msg(stalled.closed_after_ms >= (REQUEST_TIMEOUT_S - 2) * 1000 &&
			      stalled.closed_after_ms <= (REQUEST_TIMEOUT_S + 5) * 1000,
		      "stalled client: closed after %lld ms, want about %d s",
		      stalled.closed_after_ms, REQUEST_TIMEOUT_S);
	ck_assert_msg(stalled.send_failed, "stalled client: the late byte was taken");

	printf("abuse: kept-alive client idle after one answer -> closed %lld ms after its last "
	       "byte (idle timeout %d s)\n",
	       idle.closed_after_ms, CONN_TIMEOUT_S);
	ck_assert_msg(idle.sent == 1, "idle client: its one request was not answered");
	ck_assert_msg(idle.closed_after_ms >= (CONN_TIMEOUT_S - 2) * 1000 &&
			      idle.closed_after_ms <= (CONN_TIMEOUT_S + 15) * 1000,
		      "idle client: closed after %lld ms, want about %d s", idle.closed_after_ms,
		      CONN_TIMEOUT_S);
	ck_assert_msg(idle.send_failed, "idle client: the late byte was taken");

	/* Never idle, never done: the request deadline cuts it. */
	printf("abuse: client trickling a header byte every 2 s -> %s %lld ms (%d bytes)\n",
	       trickle.closed_after_ms >= 0 ? "closed by the server after" : "still open after",
	       trickle.closed_after_ms >= 0 ? trickle.closed_after_ms : shop_now_ms() - start,
	       trickle.sent);
	ck_assert_msg(
		trickle.closed_after_ms >= (REQUEST_TIMEOUT_S - 1) * 1000 &&
			trickle.closed_after_ms <= (REQUEST_TIMEOUT_S + 5) * 1000,
		"trickling client: closed after %lld ms, want about the %d s request deadline",
		trickle.closed_after_ms, REQUEST_TIMEOUT_S);
	daemon_ok("slow clients");
}
END_TEST

/* Opens n connections from source (NULL: 127.0.0.1), each sending half a
 * request; *kept: how many the server still holds open after a moment. */
static int *open_crowd(int n, const char *source, int *kept)
{
	int *fds = malloc(sizeof(int) * (size_t)n);

	ck_assert_ptr_nonnull(fds);
	for (int i = 0; i < n; i++) {
		struct conn c;

		fds[i] = -1;
		if (conn_open_from(&c, source))
			continue;
		conn_sends(&c, "POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Le");
		fds[i] = c.fd;
	}
	*kept = 0;
	for (int i = 0; i < n; i++) {
		struct pollfd pfd = {.fd = fds[i], .events = POLLIN};

		/* A refused connection is closed at once; give the server a
		 * moment with the first one only. */
		if (fds[i] >= 0 && poll(&pfd, 1, i ? 0 : 500) == 0)
			(*kept)++;
	}
	return fds;
}

static void close_crowd(int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
	}
	free(fds);
}

/* GET /livez, POST /orders and GET /products from 127.0.0.1: each must
 * be answered, and within a second. */
static void others_are_served(const char *while_what)
{
	static const char *const what[] = {"GET /livez", "POST /orders", "GET /products"};
	char order_id[40];
	long long took[3] = {0};
	struct resp r;

	for (int i = 0; i < 3; i++) {
		long long t0 = shop_now_ms();
		int rc = i == 0	  ? get("/livez", &r)
			 : i == 1 ? post_orders(VALID, &r)
				  : get("/products", &r);

		took[i] = shop_now_ms() - t0;
		if (i == 1) {
			expect_created(what[i], rc, &r, order_id);
		} else {
			ck_assert_msg(rc == ANS_OK && r.status == 200, "%s %s: %s %d", what[i],
				      while_what, rc_name(rc), r.status);
			resp_free(&r);
		}
		ck_assert_msg(took[i] < 1000, "%s %s took %lld ms", what[i], while_what, took[i]);
	}
	printf("abuse: %s: GET /livez %lld ms, POST /orders %lld ms, GET /products %lld ms\n",
	       while_what, took[0], took[1], took[2]);
}

START_TEST(many_connections_at_once)
{
	enum { GREEDY = 1500, ADDRESSES = 10 };
	int kept, *fds[ADDRESSES];
	char while_what[160], source[16];

	/* One client, 127.0.0.2, opens as many connections as it can, each
	 * with half a request: it may hold CLIENT_CONNECTIONS of them. */
	fds[0] = open_crowd(GREEDY, "127.0.0.2", &kept);
	printf("abuse: 127.0.0.2 opened %d connections with half a request each; the server "
	       "kept %d (the per-client limit is %d)\n",
	       GREEDY, kept, CLIENT_CONNECTIONS);
	ck_assert_int_le(kept, CLIENT_CONNECTIONS);
	snprintf(while_what, sizeof(while_what), "while 127.0.0.2 holds %d connections", kept);
	others_are_served(while_what);
	close_crowd(fds[0], GREEDY);
	daemon_ok("one greedy client");

	/* Ten clients together open more than the server's 1024 connections:
	 * past the limit libmicrohttpd stops accepting (the rest wait in the
	 * kernel's queue). Once the crowd has gone, everyone is served again. */
	for (int a = 0; a < ADDRESSES; a++) {
		snprintf(source, sizeof(source), "127.0.0.%d", a + 2);
		fds[a] = open_crowd(CLIENT_CONNECTIONS, source, &kept);
	}
	printf("abuse: %d clients opened %d connections each (the server's limit is %d)\n",
	       ADDRESSES, CLIENT_CONNECTIONS, ES_HTTP_DEFAULT_CONNECTION_LIMIT);
	for (int a = 0; a < ADDRESSES; a++)
		close_crowd(fds[a], CLIENT_CONNECTIONS);
	{
		long long t0 = shop_now_ms();
		bool back = false;
		struct resp r;

		/* The server first works through the closed connections queued
		 * for it; then it answers as before. */
		while (!back && shop_now_ms() - t0 < ANSWER_MS) {
			back = get("/livez", &r) == ANS_OK && r.status == 200;
			resp_free(&r);
		}
		ck_assert_msg(back, "GET /livez: no answer %d ms after the crowd left", ANSWER_MS);
		printf("abuse: after the crowd left, GET /livez answered again after %lld ms\n",
		       shop_now_ms() - t0);
	}
	others_are_served("after a crowd over the connection limit left");
	daemon_ok("connections over the limit");
}
END_TEST

START_TEST(partial_requests_are_dropped)
{
	static const char *const partial[] = {
		"G",
		"GET /livez HTT",
		"GET /livez HTTP/1.1\r\nHost: abuse\r\n",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Content-Length: 117\r\n\r\n{\"customerId\":\"c-",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Transfer-Encoding: chunked\r\n\r\n75\r\n{\"custo",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Transfer-Encoding: chunked\r\n\r\n10\r\n{\"customerId\":\"\r\n",
	};
	char what[200], label[160];

	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
		for (int how = 0; how < 3; how++) {
			struct conn c;
			struct resp r;
			int rc = ANS_CLOSED;

			ck_assert_int_eq(conn_open(&c), 0);
			conn_sends(&c, partial[i]);
			snprintf(what, sizeof(what), "partial request %s, then %s",
				 printable(partial[i], strlen(partial[i]), label, sizeof(label)),
				 how == 0   ? "close"
				 : how == 1 ? "reset"
					    : "half-close");
			if (how == 0) {
				conn_close(&c);
			} else if (how == 1) {
				conn_reset(&c);
			} else {
				shutdown(c.fd, SHUT_WR);
				rc = conn_read(&c, &r, 2000, false);
				ck_assert_msg(rc != ANS_OK || (r.status >= 400 && r.status < 500),
					      "%s: %d", what, r.status);
				resp_free(&r);
				conn_close(&c);
			}
			if (how == 2)
				printf("abuse: %s -> %s%s\n", what, rc_name(rc),
				       rc == ANS_TIMEOUT ? " (waits for the rest)" : "");
			daemon_ok(what);
		}
	}
	printf("abuse: partial requests closed or reset mid-way -> daemon alive, /livez 200\n");
}
END_TEST

static void add_tests(TCase *tc)
{
	tcase_add_test(tc, partial_requests_are_dropped);
	tcase_add_test(tc, slow_clients_are_cut_off_and_others_served);
	tcase_add_test(tc, many_connections_at_once);
}

int main(void)
{
	return abuse_main("abuse.http.connections", add_tests);
}
