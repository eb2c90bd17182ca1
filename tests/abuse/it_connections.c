/*
 * HTTP abuse (harness.c), connections: requests cut off half-way, hundreds
 * of connections at once (past the connection limit), and slow clients,
 * cut off at the connection timeout while everyone else is served.
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

/* Sends the start of a request, then nothing: the next byte would come
 * later than the connection timeout. */
static void *stalled_client(void *arg)
{
	struct slow *s = arg;
	static const char part[] = "GET /livez HTTP/1.1\r\nHost: ab";
	struct conn c;
	long long last;

	s->closed_after_ms = -1;
	if (conn_open(&c))
		return NULL;
	for (size_t i = 0; i < sizeof(part) - 1; i++) {
		conn_send(&c, part + i, 1);
		s->sent++;
		sleep_ms(20);
	}
	last = shop_now_ms();
	if (conn_wait_closed(&c, (CONN_TIMEOUT_S + 30) * 1000))
		s->closed_after_ms = shop_now_ms() - last;
	/* The next byte, now far too late. */
	s->send_failed = conn_send(&c, "u", 1) != 0 || conn_wait_closed(&c, 100);
	conn_close(&c);
	return NULL;
}

/* Sends a header one byte every 2 s (within the idle timeout), for ever. */
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
	struct slow stalled = {0}, trickle = {0};
	pthread_t t1, t2;
	long long start = shop_now_ms(), worst = 0;
	int served = 0, orders = 0;
	char what[200];

	ck_assert_int_eq(pthread_create(&t1, NULL, stalled_client, &stalled), 0);
	ck_assert_int_eq(pthread_create(&t2, NULL, trickling_client, &trickle), 0);
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
	snprintf(what, sizeof(what),
		 "meanwhile: %d GET /livez all 200 (slowest %lld ms), %d POST /orders all 202",
		 served, worst, orders);
	printf("abuse: %s\n", what);
	snprintf(what, sizeof(what),
		 "client stalling after %d header bytes (next byte later than the %d s timeout)",
		 stalled.sent, CONN_TIMEOUT_S);
	if (stalled.closed_after_ms >= 0)
		printf("abuse: %s -> closed by the server %lld ms after its last byte\n", what,
		       stalled.closed_after_ms);
	else
		printf("abuse: %s -> still open after %d s\n", what, CONN_TIMEOUT_S + 30);
	ck_assert_msg(stalled.closed_after_ms >= (CONN_TIMEOUT_S - 2) * 1000 &&
			      stalled.closed_after_ms <= (CONN_TIMEOUT_S + 15) * 1000,
		      "stalled client: closed after %lld ms, want about %d s",
		      stalled.closed_after_ms, CONN_TIMEOUT_S);
	ck_assert_msg(stalled.send_failed, "stalled client: the late byte was taken");
	/* Not a requirement: libmicrohttpd's timeout is an idle timeout. */
	if (trickle.closed_after_ms >= 0)
		printf("abuse: client trickling a header byte every 2 s -> closed by the server "
		       "after %lld ms (%d bytes)\n",
		       trickle.closed_after_ms, trickle.sent);
	else
		printf("abuse: client trickling a header byte every 2 s -> still connected after "
		       "%d bytes / %lld ms (the idle timeout never fires; not a failure)\n",
		       trickle.sent, shop_now_ms() - start);
	daemon_ok("slow clients");
}
END_TEST

/* Opens n connections; with_partial sends half a request on every other. */
static int *open_many(int n, bool with_partial, int *opened)
{
	int *fds = malloc(sizeof(int) * (size_t)n);

	ck_assert_ptr_nonnull(fds);
	*opened = 0;
	for (int i = 0; i < n; i++) {
		struct conn c;

		fds[i] = -1;
		if (conn_open(&c))
			continue;
		if (with_partial && i % 2)
			conn_sends(&c, "POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Le");
		fds[i] = c.fd;
		(*opened)++;
	}
	return fds;
}

static void close_many(int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
	}
	free(fds);
}

START_TEST(many_connections_at_once)
{
	char what[200], order_id[40];
	struct resp r;
	int opened, rc, *fds;
	int ok = 0, refused = 0;

	/* 500 idle connections (half of them with half a request). */
	fds = open_many(500, true, &opened);
	ck_assert_int_eq(opened, 500);
	sleep_ms(500);
	for (int attempt = 0; attempt < 20; attempt++) {
		rc = get("/livez", &r);
		if (rc == ANS_OK && r.status == 200) {
			resp_free(&r);
			ok++;
			break;
		}
		resp_free(&r);
		refused++;
		sleep_ms(250);
	}
	snprintf(what, sizeof(what),
		 "500 idle connections open, then GET /livez -> 200 after %d refused attempt(s)",
		 refused);
	printf("abuse: %s\n", what);
	ck_assert_msg(ok, "GET /livez never answered with 500 idle connections open");
	rc = post_orders(VALID, &r);
	expect_created("POST /orders with 500 idle connections open", rc, &r, order_id);
	rc = get("/products", &r);
	note("GET /products with 500 idle connections open", rc, &r);
	ck_assert_msg(rc == ANS_OK && r.status == 200, "GET /products: %d", r.status);
	resp_free(&r);
	close_many(fds, 500);
	daemon_ok("500 idle connections");

	/* Past the connection limit (1024): refused cleanly, then served
	 * again once the crowd has gone. */
	fds = open_many(ES_HTTP_DEFAULT_CONNECTION_LIMIT + 176, false, &opened);
	sleep_ms(1000);
	ok = refused = 0;
	{
		char outcomes[256] = "";
		size_t used = 0;

		for (int attempt = 0; attempt < 5; attempt++) {
			long long t0 = shop_now_ms();

			rc = get("/livez", &r);
			if (rc == ANS_OK && r.status == 200)
				ok++;
			else
				refused++;
			used += (size_t)snprintf(outcomes + used, sizeof(outcomes) - used,
						 "%s%s in %lld ms", attempt ? "; " : "",
						 rc == ANS_OK ? "200" : rc_name(rc),
						 shop_now_ms() - t0);
			resp_free(&r);
		}
		printf("abuse: %d connections opened (limit %d), then 5 x GET /livez -> %d "
		       "answered 200, %d not (%s)\n",
		       opened, ES_HTTP_DEFAULT_CONNECTION_LIMIT, ok, refused, outcomes);
	}
	close_many(fds, ES_HTTP_DEFAULT_CONNECTION_LIMIT + 176);
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
	tcase_add_test(tc, many_connections_at_once);
	tcase_add_test(tc, slow_clients_are_cut_off_and_others_served);
}

int main(void)
{
	return abuse_main("abuse.http.connections", add_tests);
}
