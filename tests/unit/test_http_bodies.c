/*
 * Unit tests for http, request bodies: JSON in and out, malformed JSON and
 * the wrong media type as problems, and the body size limit: 413 from the
 * Content-Length before any body is read, counted for chunked bodies, an
 * endless chunked body cut off, and exactly the limit accepted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "http_fixture.h"

START_TEST(json_post_is_echoed_with_location)
{
	static const char body[] = "{\"customerId\":\"c-1\",\"items\":[{\"sku\":\"mug-classic\"}]}";
	char raw[512];
	char location[64];
	struct resp r;
	json_t *sent, *got;

	snprintf(raw, sizeof(raw),
		 "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json; "
		 "charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
		 strlen(body), body);
	roundtrip(raw, &r);
	ck_assert_int_eq(r.status, 201);
	ck_assert_str_eq(header_get(&r, "Location", location, sizeof(location)), "/echo/1");
	sent = json_loads(body, 0, NULL);
	got = body_json(&r);
	ck_assert(json_equal(sent, got));
	json_decref(sent);
	json_decref(got);
	resp_free(&r);
}
END_TEST

START_TEST(malformed_json_gets_problem_with_errors_array)
{
	struct resp r;
	json_t *p, *e;

	roundtrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
		  "Content-Length: 5\r\nConnection: close\r\n\r\n{\"a\":",
		  &r);
	ck_assert_int_eq(r.status, 400);
	p = body_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(p, "type")),
			 "https://eventshop.example/problems/json");
	ck_assert_str_eq(json_string_value(json_object_get(p, "title")), "Malformed JSON");
	ck_assert_int_eq(json_integer_value(json_object_get(p, "status")), 400);
	e = json_array_get(json_object_get(p, "errors"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(e, "pointer")), "");
	ck_assert_ptr_nonnull(json_string_value(json_object_get(e, "detail")));
	json_decref(p);
	resp_free(&r);

	roundtrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
		  "Content-Length: 2\r\nConnection: close\r\n\r\n{}",
		  &r);
	p = assert_problem(&r, 415);
	json_decref(p);
	resp_free(&r);
}
END_TEST

/* Headers only: the server must answer without waiting for the body. */
static void assert_refused_up_front(const char *extra_headers)
{
	char raw[512];
	struct client c;
	struct resp r;
	json_t *p;

	snprintf(raw, sizeof(raw),
		 "POST /size HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
		 "Content-Length: %d\r\n%s\r\n",
		 LIMIT + 1, extra_headers);
	client_open(&c);
	client_sends(&c, raw);
	client_read(&c, &r, false);
	p = assert_problem(&r, 413);
	ck_assert_msg(strstr(json_string_value(json_object_get(p, "detail")), "65536") != NULL,
		      "%s", r.body);
	json_decref(p);
	resp_free(&r);
	client_close(&c);
}

START_TEST(content_length_over_limit_is_413_without_reading_body)
{
	assert_refused_up_front("");
	/* No "100 Continue" first: the client is told not to send at all. */
	assert_refused_up_front("Expect: 100-continue\r\n");
}
END_TEST

START_TEST(huge_content_length_is_413)
{
	struct resp r;

	roundtrip("POST /size HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999\r\n"
		  "Connection: close\r\n\r\n",
		  &r);
	/* libmicrohttpd may refuse a length it cannot represent itself. */
	ck_assert_msg(r.status == 413 || r.status == 400, "%d", r.status);
	resp_free(&r);
}
END_TEST

START_TEST(body_exactly_at_limit_is_accepted)
{
	char *raw = malloc(256 + LIMIT);
	int n;
	struct resp r;

	n = snprintf(raw, 256,
		     "POST /size HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
		     "Connection: close\r\n\r\n",
		     LIMIT);
	memset(raw + n, 'x', LIMIT);
	raw[n + LIMIT] = '\0';
	roundtrip(raw, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(posted_length(&r), LIMIT);
	resp_free(&r);
	free(raw);
}
END_TEST

/* Sends total bytes as chunks of chunk bytes, then the last chunk. */
static void send_chunked(struct client *c, size_t total, size_t chunk)
{
	char *data = malloc(chunk);
	char line[32];

	memset(data, 'y', chunk);
	client_sends(c, "POST /size HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
			"Connection: close\r\n\r\n");
	for (size_t sent = 0; sent < total; sent += chunk) {
		size_t n = total - sent < chunk ? total - sent : chunk;

		snprintf(line, sizeof(line), "%zx\r\n", n);
		client_sends(c, line);
		client_send(c, data, n);
		client_sends(c, "\r\n");
	}
	client_sends(c, "0\r\n\r\n");
	free(data);
}

START_TEST(chunked_body_over_limit_is_413)
{
	struct client c;
	struct resp r;
	json_t *p;

	client_open(&c);
	send_chunked(&c, LIMIT + 1, 1000);
	client_read(&c, &r, false);
	p = assert_problem(&r, 413);
	json_decref(p);
	resp_free(&r);
	client_close(&c);

	client_open(&c);
	send_chunked(&c, 3 * LIMIT, 7000);
	client_read(&c, &r, false);
	ck_assert_int_eq(r.status, 413);
	resp_free(&r);
	client_close(&c);
}
END_TEST

/* A client that never stops sending is not drained for ever. */
START_TEST(endless_chunked_body_is_cut_off)
{
	static const size_t give_up = (size_t)64 << 20;
	struct timeval tv = {.tv_sec = RESPONSE_TIMEOUT_MS / 1000};
	char frame[4096 + 16];
	struct client c;
	struct resp r;
	size_t sent = 0;
	int n;

	n = snprintf(frame, sizeof(frame), "%x\r\n", 4096);
	memset(frame + n, 'z', 4096);
	memcpy(frame + n + 4096, "\r\n", 2);
	n += 4096 + 2;

	client_open(&c);
	setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	client_sends(&c, "POST /size HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
	while (sent < give_up) {
		ssize_t k = send(c.fd, frame, (size_t)n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			ck_assert_msg(errno == EPIPE || errno == ECONNRESET, "send: %s",
				      strerror(errno));
			break;
		}
		sent += (size_t)k;
	}
	ck_assert_msg(sent < give_up, "the server kept reading");
	client_close(&c);

	get("/livez", &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
}
END_TEST

START_TEST(chunked_body_at_limit_is_accepted)
{
	struct client c;
	struct resp r;

	client_open(&c);
	send_chunked(&c, LIMIT, 1000);
	client_read(&c, &r, false);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(posted_length(&r), LIMIT);
	resp_free(&r);
	client_close(&c);
}
END_TEST

static void add_tests(TCase *tc)
{
	tcase_add_test(tc, json_post_is_echoed_with_location);
	tcase_add_test(tc, malformed_json_gets_problem_with_errors_array);
	tcase_add_test(tc, content_length_over_limit_is_413_without_reading_body);
	tcase_add_test(tc, huge_content_length_is_413);
	tcase_add_test(tc, body_exactly_at_limit_is_accepted);
	tcase_add_test(tc, chunked_body_over_limit_is_413);
	tcase_add_test(tc, endless_chunked_body_is_cut_off);
	tcase_add_test(tc, chunked_body_at_limit_is_accepted);
}

int main(void)
{
	return http_fixture_run("http_bodies", add_tests);
}
