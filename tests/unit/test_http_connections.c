/*
 * Unit tests for http, connections: pipelined requests on one connection,
 * a request arriving a byte at a time, odd but framed requests, garbage
 * that must not stop the server, the idle connection timeout, the request
 * deadline that cuts off a client that is never idle but never done, and
 * the limit on one address's connections.
 */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http_fixture.h"

START_TEST(keep_alive_connection_serves_requests_in_turn)
{
	struct client c;
	struct resp r;
	json_t *j;

	client_open(&c);
	/* Pipelined: both requests are on the wire before any answer. */
	client_sends(&c, "POST /size HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
			 "GET /orders/o-7 HTTP/1.1\r\nHost: t\r\n\r\n");
	client_read(&c, &r, false);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(posted_length(&r), 3);
	resp_free(&r);
	client_read(&c, &r, false);
	ck_assert_int_eq(r.status, 200);
	j = body_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "orderId")), "o-7");
	json_decref(j);
	resp_free(&r);
	client_close(&c);
}
END_TEST

START_TEST(request_arriving_byte_by_byte_is_served)
{
	static const char raw[] = "POST /orders/o-9/cancel HTTP/1.1\r\nHost: t\r\n"
				  "Content-Length: 0\r\nConnection: close\r\n\r\n";
	struct client c;
	struct resp r;

	client_open(&c);
	for (size_t i = 0; i < strlen(raw); i++)
		client_send(&c, raw + i, 1);
	client_read(&c, &r, false);
	ck_assert_int_eq(r.status, 202);
	resp_free(&r);
	client_close(&c);
}
END_TEST

/* Requests that are whole and ask for the connection to close: each must
 * get a well-formed answer (from us, or from libmicrohttpd's parser). */
START_TEST(odd_but_framed_requests_get_an_answer)
{
	static const struct {
		const char *raw;
		int status;
	} cases[] = {
		{"GET /orders/%00%ff HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 404},
		{"GET /orders/%ff%fe HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 500},
		{"GET /orders/x?%zz=%&&==&a=%G0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
		 200},
		{"GET * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 404},
		{"GET http://x/livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 404},
		{"GET /a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t HTTP/1.1\r\nHost: t\r\n"
		 "Connection: close\r\n\r\n",
		 404},
		{"GET /livez HTTP/1.0\r\n\r\n", 200}, /* closes by default */
	};
	struct resp r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		roundtrip(cases[i].raw, &r);
		ck_assert_msg(r.status == cases[i].status, "case %zu: %d", i, r.status);
		resp_free(&r);
	}
}
END_TEST

/* Unframed or malformed bytes: the server may answer, close or wait for
 * more, but must keep serving everyone else. */
START_TEST(garbage_requests_do_not_stop_the_server)
{
	static const char *const garbage[] = {
		"\r\n\r\n",
		"NOT-HTTP\r\n\r\n",
		"GET\r\n\r\n",
		"GET /livez HTTP/9.9\r\n\r\n",
		"GET /livez HTTP/1.1\r\nNo colon here\r\n\r\n",
		"GET /livez HTTP/1.1\r\nHost: t\r\n\x01\x02\xff: \xfe\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		("POST /size HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "ffffffffffffffffff\r\nabc\r\n"),
		"POST /size HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nshort",
	};
	enum { N = sizeof(garbage) / sizeof(garbage[0]) };
	struct client c[N];
	struct resp r;

	for (size_t i = 0; i < N; i++) {
		client_open(&c[i]);
		client_sends(&c[i], garbage[i]);
		shutdown(c[i].fd, SHUT_WR); /* no more is coming */
	}
	get("/livez", &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	for (size_t i = 0; i < N; i++)
		client_close(&c[i]);
	get("/livez", &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
}
END_TEST

START_TEST(idle_connection_is_closed_after_timeout)
{
	struct es_metrics *own = reg;
	struct es_http *short_lived;
	struct client c;
	int64_t start, deadline;

	/* A second server needs its own registry for its metrics. */
	reg = es_metrics_new();
	short_lived = server_new(1);
	client_open_port(&c, es_http_port(short_lived));
	client_sends(&c, "GET /livez HTTP/1.1\r\n"); /* and then nothing */
	start = now_ms();
	deadline = start + RESPONSE_TIMEOUT_MS;
	while (client_fill(&c, deadline))
		;
	ck_assert_int_ge(now_ms() - start, 900);
	client_close(&c);
	es_http_free(short_lived);
	es_metrics_free(reg);
	reg = own;
}
END_TEST

/* A server like the test's, with its own registry (one registry serves one
 * server), changed by the test; and the way back to the test's own. */
static struct es_metrics *saved_reg;

static struct es_http *variant(unsigned int idle_s, unsigned int request_s,
			       unsigned int client_limit)
{
	struct es_http_conf conf;

	saved_reg = reg;
	reg = es_metrics_new();
	ck_assert_ptr_nonnull(reg);
	server_conf(&conf, idle_s);
	conf.request_timeout = request_s;
	conf.client_connection_limit = client_limit;
	return server_start(&conf);
}

static void variant_free(struct es_http *h)
{
	es_http_free(h);
	es_metrics_free(reg);
	reg = saved_reg;
}

static void pause_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* The sample of a metric without labels in reg's text, or -1. */
static double sample(const char *name)
{
	char *text = es_metrics_render(reg, NULL);
	char key[128];
	const char *at;
	double v = -1;

	ck_assert_ptr_nonnull(text);
	snprintf(key, sizeof(key), "\n%s ", name);
	at = strstr(text, key);
	if (at)
		v = strtod(at + strlen(key), NULL);
	free(text);
	return v;
}

START_TEST(trickling_request_is_cut_at_the_deadline)
{
	struct es_http *h = variant(30, 1, 0);
	struct client c, other;
	struct resp r;
	int64_t start = now_ms(), closed = -1;

	/* A header a byte at a time, every 100 ms: never idle for the 30 s
	 * timeout, never complete. */
	client_open_port(&c, es_http_port(h));
	client_sends(&c, "GET /livez HTTP/1.1\r\nHost: t\r\nX-Slow: ");
	while (closed < 0 && now_ms() - start < RESPONSE_TIMEOUT_MS) {
		struct pollfd pfd = {.fd = c.fd, .events = POLLIN};
		char got[64];

		if (send(c.fd, "a", 1, MSG_NOSIGNAL) != 1) {
			closed = now_ms() - start;
		} else if (poll(&pfd, 1, 100) == 1) {
			ck_assert_msg(recv(c.fd, got, sizeof(got), 0) <= 0,
				      "the slow request got an answer");
			closed = now_ms() - start;
		}
	}
	ck_assert_msg(closed >= 900, "cut after %lld ms: before the 1 s deadline, or never",
		      (long long)closed);
	client_close(&c);
	ck_assert_double_eq(sample("es_http_request_timeouts_total"), 1);
	/* Everyone else is served as before. */
	client_open_port(&other, es_http_port(h));
	client_sends(&other, "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n");
	client_read(&other, &r, false);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	client_close(&other);
	variant_free(h);
}
END_TEST

START_TEST(kept_alive_connection_has_a_deadline_per_request)
{
	struct es_http *h = variant(30, 1, 0);
	struct client c;
	struct resp r;

	client_open_port(&c, es_http_port(h));
	for (int i = 0; i < 3; i++) {
		/* Idle between requests for longer than one request may take:
		 * the idle time is not the request's. */
		if (i)
			pause_ms(1300);
		client_sends(&c, "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n");
		client_read(&c, &r, false);
		ck_assert_int_eq(r.status, 200);
		resp_free(&r);
	}
	client_close(&c);
	/* No sample at all: the counter was never incremented. */
	ck_assert_double_eq(sample("es_http_request_timeouts_total"), -1);
	variant_free(h);
}
END_TEST

START_TEST(one_address_cannot_take_every_connection)
{
	enum { LIMIT_PER_CLIENT = 4, CROWD = 12 };
	struct es_http *h = variant(30, 10, LIMIT_PER_CLIENT);
	struct client crowd[CROWD], other;
	struct resp r;
	int refused = 0;

	/* One client (127.0.0.2) opens more connections than it may hold;
	 * each sends half a request and waits. */
	for (int i = 0; i < CROWD; i++) {
		client_open_from(&crowd[i], es_http_port(h), "127.0.0.2");
		send(crowd[i].fd, "GET /livez HTTP/1.1\r\n", 21, MSG_NOSIGNAL);
	}
	/* Those over its limit are closed at once... */
	for (int i = 0; i < CROWD; i++) {
		struct pollfd pfd = {.fd = crowd[i].fd, .events = POLLIN};

		if (poll(&pfd, 1, i < LIMIT_PER_CLIENT ? 0 : 2000) == 1 &&
		    recv(crowd[i].fd, (char[16]){0}, 16, MSG_DONTWAIT) <= 0)
			refused++;
	}
	ck_assert_int_eq(refused, CROWD - LIMIT_PER_CLIENT);
	/* ... and another client (127.0.0.1) is served. */
	client_open_port(&other, es_http_port(h));
	client_sends(&other, "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n");
	client_read(&other, &r, false);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	client_close(&other);
	for (int i = 0; i < CROWD; i++)
		client_close(&crowd[i]);
	variant_free(h);
}
END_TEST

static void add_tests(TCase *tc)
{
	tcase_add_test(tc, keep_alive_connection_serves_requests_in_turn);
	tcase_add_test(tc, request_arriving_byte_by_byte_is_served);
	tcase_add_test(tc, odd_but_framed_requests_get_an_answer);
	tcase_add_test(tc, garbage_requests_do_not_stop_the_server);
	tcase_add_test(tc, idle_connection_is_closed_after_timeout);
	tcase_add_test(tc, trickling_request_is_cut_at_the_deadline);
	tcase_add_test(tc, kept_alive_connection_has_a_deadline_per_request);
	tcase_add_test(tc, one_address_cannot_take_every_connection);
}

int main(void)
{
	return http_fixture_run("http_connections", add_tests);
}
