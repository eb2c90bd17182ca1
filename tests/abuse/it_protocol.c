/*
 * HTTP abuse (harness.c), the protocol: unknown methods and paths, wrong
 * media types, bytes that are not HTTP or too big for the parser, and
 * pipelined requests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "harness.h"

/* ------------------------------------------------------------------------ */
/* Methods, paths, media types */

START_TEST(unknown_methods_and_paths_are_404_or_405)
{
	static const struct {
		const char *raw_start; /* request line */
		int status;
	} cases[] = {
		{"GET /nope HTTP/1.1", 404},
		{"GET / HTTP/1.1", 404},
		{"GET /orders/ HTTP/1.1", 404},
		{"GET //orders HTTP/1.1", 404},
		{"GET /orders/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s HTTP/1.1", 404},
		{"GET /ORDERS HTTP/1.1", 404},
		{"GET /products/../orders HTTP/1.1", 404},
		{"GET * HTTP/1.1", 404},
		{"GET http://abuse/livez HTTP/1.1", 404},
		{"DELETE /orders HTTP/1.1", 405},
		{"PUT /orders HTTP/1.1", 405},
		{"PATCH /orders HTTP/1.1", 405},
		{"DELETE /orders/00000000-0000-4000-8000-000000000000 HTTP/1.1", 405},
		{"GET /orders/00000000-0000-4000-8000-000000000000/cancel HTTP/1.1", 405},
		{"POST /products HTTP/1.1", 405},
		{"POST /livez HTTP/1.1", 405},
		{"PUT /readyz HTTP/1.1", 405},
		{"DELETE /metrics HTTP/1.1", 405},
		{"OPTIONS /orders HTTP/1.1", 405},
		{"TRACE /orders HTTP/1.1", 405},
		{"CONNECT /orders HTTP/1.1", 405},
		{"BREW /orders HTTP/1.1", 405},
		{"get /livez HTTP/1.1", 405},
		{"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX /orders HTTP/1.1",
		 405},
	};
	char raw[512], allow[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct resp r;
		int rc;
		json_t *p;

		snprintf(raw, sizeof(raw),
			 "%s\r\nHost: abuse\r\nContent-Length: 0\r\n"
			 "Connection: close\r\n\r\n",
			 cases[i].raw_start);
		rc = exchanges(raw, &r);
		note(cases[i].raw_start, rc, &r);
		p = check_problem(cases[i].raw_start, rc, &r, cases[i].status, "about:blank");
		if (cases[i].status == 405)
			ck_assert_msg(header_get(&r, "Allow", allow, sizeof(allow)) && allow[0],
				      "%s: 405 without Allow", cases[i].raw_start);
		json_decref(p);
		resp_free(&r);
	}
	daemon_ok("unknown methods and paths");
}
END_TEST

START_TEST(wrong_media_types_are_415)
{
	static const char *const types[] = {
		NULL,
		"text/plain",
		"application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x",
		"application/jsonx",
		"application/json-patch+json",
		"json",
		"",
		"application/problem+json",
		"'; DROP TABLE orders; --",
	};
	char what[200], order_id[40];
	struct resp r;
	int rc;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		rc = post("/orders", types[i], NULL, VALID, strlen(VALID), &r);
		snprintf(what, sizeof(what), "Content-Type %s", types[i] ? types[i] : "(none)");
		expect_problem(what, rc, &r, 415, ES_PROBLEM("unsupported-media-type"));
	}
	rc = post("/orders", "Application/JSON; charset=utf-8", NULL, VALID, strlen(VALID), &r);
	expect_created("Content-Type Application/JSON; charset=utf-8", rc, &r, order_id);
	daemon_ok("media types");
}
END_TEST

/* Malformed requests, each on a connection of its own. */
static void bytes_that_are_not_http(void)
{
	static const char *const raws[] = {
		"\r\n\r\n",
		"NOT-HTTP\r\n\r\n",
		"GET\r\n\r\n",
		"GET /livez\r\n\r\n",
		"GET /livez HTTP/9.9\r\nHost: abuse\r\n\r\n",
		"GET /livez HTTP/1.1\r\n\r\n",
		"GET /livez HTTP/1.1\r\nHost: abuse\r\nNo colon here\r\n\r\n",
		"GET /livez HTTP/1.1\r\nHost: abuse\r\n\x01\x02\xff: \xfe\r\n\r\n",
		"GET /livez HTTP/1.1\r\nHost: abuse\r\n folded: header\r\n\r\n",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Content-Length: -5\r\n\r\n",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Content-Length: 5\r\nContent-Length: 7\r\n\r\n{}",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Content-Length: 0x10\r\n\r\n",
	};
	char what[200], label[160];

	for (size_t i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
		struct conn c;
		struct resp r;
		char type[128] = "";
		int rc;

		ck_assert_int_eq(conn_open(&c), 0);
		conn_sends(&c, raws[i]);
		shutdown(c.fd, SHUT_WR);
		rc = conn_read(&c, &r, 5000, false);
		snprintf(what, sizeof(what), "garbage %s",
			 printable(raws[i], strlen(raws[i]), label, sizeof(label)));
		if (rc == ANS_OK)
			header_get(&r, "Content-Type", type, sizeof(type));
		note(what, rc, &r);
		ck_assert_msg(rc != ANS_OK || r.status / 100 == 4 || r.status == 505 ||
				      r.status == 200 || r.status == 415,
			      "%s: %d", what, r.status);
		if (rc == ANS_OK && r.status / 100 == 4 && strcmp(type, "application/problem+json"))
			printf("abuse:   NOTE: this %d comes from libmicrohttpd's parser, "
			       "Content-Type \"%s\", not a problem\n",
			       r.status, type);
		resp_free(&r);
		conn_close(&c);
		daemon_ok(what);
	}
}

/* Too big for the parser's buffers: header and URL. */
static void too_big_for_the_parser(void)
{
	char *big_header = repeat("GET /livez HTTP/1.1\r\nHost: abuse\r\nX-Big: ", "a", 200000,
				  "\r\nConnection: close\r\n\r\n");
	char *big_url = repeat("GET /orders/", "a", 200000,
			       " HTTP/1.1\r\nHost: abuse\r\nConnection: close\r\n\r\n");
	char *many_headers = repeat("GET /livez HTTP/1.1\r\nHost: abuse\r\n", "X-A: b\r\n", 20000,
				    "Connection: close\r\n\r\n");
	char *big_query = repeat("GET /orders?", "customerId=x&", 20000,
				 " HTTP/1.1\r\nHost: abuse\r\nConnection: close\r\n\r\n");
	const struct {
		const char *what;
		char *raw;
	} big[] = {
		{"a 200 KB header", big_header},
		{"a 200 KB URL", big_url},
		{"20000 headers", many_headers},
		{"20000 query parameters", big_query},
	};
	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
		struct resp r;
		char type[128] = "";
		int rc = exchanges(big[i].raw, &r);

		if (rc == ANS_OK)
			header_get(&r, "Content-Type", type, sizeof(type));
		note(big[i].what, rc, &r);
		ck_assert_msg(rc != ANS_OK || r.status / 100 == 4, "%s: %d", big[i].what, r.status);
		if (rc == ANS_OK && strcmp(type, "application/problem+json"))
			printf("abuse:   NOTE: this %d comes from libmicrohttpd's parser, "
			       "Content-Type \"%s\", not a problem\n",
			       r.status, type);
		resp_free(&r);
		free(big[i].raw);
		daemon_ok(big[i].what);
	}
}

/* Bytes that are not HTTP: libmicrohttpd's parser answers (its own
 * bodies, not problems) or closes. The daemon must carry on. */
START_TEST(protocol_garbage_is_refused)
{
	bytes_that_are_not_http();
	too_big_for_the_parser();
}
END_TEST

START_TEST(pipelined_requests_are_answered_in_turn)
{
	char raw[2048];
	struct conn c;
	struct resp r;
	int rc;

	/* A bad order, a good one and a 404 on one connection. */
	snprintf(raw, sizeof(raw),
		 "POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		 "Content-Length: 5\r\n\r\n{\"a\":"
		 "POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\n\r\n%s"
		 "GET /nope HTTP/1.1\r\nHost: abuse\r\nConnection: close\r\n\r\n",
		 strlen(VALID), VALID);
	ck_assert_int_eq(conn_open(&c), 0);
	ck_assert_int_eq(conn_sends(&c, raw), 0);
	rc = conn_read(&c, &r, ANSWER_MS, false);
	expect_problem("pipelined #1: truncated body", rc, &r, 400,
		       ES_PROBLEM("malformed-request"));
	rc = conn_read(&c, &r, ANSWER_MS, false);
	note("pipelined #2: valid order", rc, &r);
	ck_assert_msg(rc == ANS_OK && r.status == 202, "pipelined #2: %s %d", rc_name(rc),
		      r.status);
	resp_free(&r);
	rc = conn_read(&c, &r, ANSWER_MS, false);
	expect_problem("pipelined #3: GET /nope", rc, &r, 404, "about:blank");
	conn_close(&c);
	daemon_ok("pipelining");
}
END_TEST

static void add_tests(TCase *tc)
{
	tcase_add_test(tc, unknown_methods_and_paths_are_404_or_405);
	tcase_add_test(tc, wrong_media_types_are_415);
	tcase_add_test(tc, protocol_garbage_is_refused);
	tcase_add_test(tc, pipelined_requests_are_answered_in_turn);
}

int main(void)
{
	return abuse_main("abuse.http.protocol", add_tests);
}
