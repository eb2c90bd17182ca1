/*
 * HTTP abuse (harness.c), bodies too big: a Content-Length over the limit
 * is refused at once (413, before any body), a chunked body is counted and
 * one far over the limit cut off, broken chunk framing refused; exactly the
 * limit is accepted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "harness.h"

/* ------------------------------------------------------------------------ */
/* Bodies too big */

/* A Content-Length over the limit, headers only: a 413 at once, and the
 * connection closed after it. */
static void refused_from_the_headers(void)
{
	static const char *const lengths[] = {"65537", "70000", "1073741824",
					      "18446744073709551615", "99999999999999999999999"};
	char raw[512], what[160];
	struct conn c;
	struct resp r;
	long long t0;
	int rc;

	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		for (int expect100 = 0; expect100 < 2; expect100++) {
			json_t *p;

			/* Headers only: the answer must come before any body. */
			snprintf(raw, sizeof(raw),
				 "POST /orders HTTP/1.1\r\nHost: abuse\r\n"
				 "Content-Type: application/json\r\nContent-Length: %s\r\n%s\r\n",
				 lengths[i], expect100 ? "Expect: 100-continue\r\n" : "");
			ck_assert_int_eq(conn_open(&c), 0);
			conn_sends(&c, raw);
			t0 = shop_now_ms();
			rc = conn_read(&c, &r, 5000, false);
			snprintf(what, sizeof(what),
				 "Content-Length: %s%s, headers only (answer in %lld ms)",
				 lengths[i], expect100 ? " with Expect: 100-continue" : "",
				 shop_now_ms() - t0);
			note(what, rc, &r);
			/* libmicrohttpd itself refuses a length it cannot hold,
			 * with its own (empty, untyped) answer. */
			if (rc == ANS_OK && (r.status == 400 || r.status == 413) &&
			    strlen(lengths[i]) >= 20 &&
			    !header_get(&r, "Content-Type", what, sizeof(what))) {
				printf("abuse:   NOTE: this %d comes from libmicrohttpd's parser, "
				       "not a problem\n",
				       r.status);
				resp_free(&r);
				conn_close(&c);
				continue;
			}
			p = check_problem(what, rc, &r, 413, "about:blank");
			ck_assert_msg(strstr(json_string_value(json_object_get(p, "detail")),
					     "65536") != NULL,
				      "%s: %s", what, r.body);
			json_decref(p);
			resp_free(&r);
			/* And the connection is closed after it. */
			ck_assert_msg(conn_wait_closed(&c, 5000), "%s: connection left open", what);
			conn_close(&c);
		}
	}
}

/* The whole oversized body sent anyway, in one go. */
static void oversized_body_sent_whole(void)
{
	size_t len = LIMIT + 1;
	char *body = repeat("", " ", len, "");
	struct resp r;
	int rc;

	rc = post_order(body, len, NULL, &r);
	note("65537-byte body sent whole with its Content-Length", rc, &r);
	ck_assert_msg(rc == ANS_CLOSED || (rc == ANS_OK && r.status == 413), "%s %d", rc_name(rc),
		      r.status);
	if (rc == ANS_OK)
		json_decref(check_problem("65537-byte body", rc, &r, 413, NULL));
	resp_free(&r);
	free(body);
}

/* Exactly at the limit is accepted: a valid order padded with spaces. */
static void exactly_the_limit_is_accepted(void)
{
	char *body = malloc(LIMIT);
	char order_id[40];
	struct resp r;
	int rc;

	ck_assert_ptr_nonnull(body);
	memset(body, ' ', LIMIT);
	memcpy(body, VALID, strlen(VALID));
	rc = post_order(body, LIMIT, NULL, &r);
	expect_created("valid order padded to exactly 65536 bytes", rc, &r, order_id);
	free(body);
}

START_TEST(content_length_over_limit_is_413_at_once)
{
	refused_from_the_headers();
	oversized_body_sent_whole();
	exactly_the_limit_is_accepted();
	daemon_ok("Content-Length over the limit");
}
END_TEST

/* Sends a chunked POST /orders of total bytes (a valid order, then spaces)
 * in chunks of chunk bytes, then the last chunk. Returns 0, or -1 when the
 * server stopped taking data; *sent the body bytes sent. */
static int send_chunked(struct conn *c, size_t total, size_t chunk, size_t *sent)
{
	char *data = malloc(chunk);
	char line[32];
	int rc = 0;

	ck_assert_ptr_nonnull(data);
	memset(data, ' ', chunk);
	*sent = 0;
	if (conn_sends(c,
		       "POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")) {
		free(data);
		return -1;
	}
	while (*sent < total) {
		size_t n = total - *sent < chunk ? total - *sent : chunk;
		const char *p = data;

		/* The order itself goes first, in the first chunks. */
		if (*sent < strlen(VALID)) {
			n = n < strlen(VALID) - *sent ? n : strlen(VALID) - *sent;
			p = VALID + *sent;
		}
		snprintf(line, sizeof(line), "%zx\r\n", n);
		if (conn_sends(c, line) || conn_send(c, p, n) || conn_sends(c, "\r\n")) {
			rc = -1;
			break;
		}
		*sent += n;
	}
	if (!rc && conn_sends(c, "0\r\n\r\n"))
		rc = -1;
	free(data);
	return rc;
}

/* A valid order in 10-byte chunks is a valid order. */
static void valid_order_in_chunks(void)
{
	char order_id[40];
	struct conn c;
	struct resp r;
	size_t sent;
	int rc;

	ck_assert_int_eq(conn_open(&c), 0);
	ck_assert_int_eq(send_chunked(&c, strlen(VALID), 10, &sent), 0);
	rc = conn_read(&c, &r, ANSWER_MS, false);
	expect_created("valid order in 10-byte chunks", rc, &r, order_id);
	conn_close(&c);
}

/* Over the limit, but not far: read to the end, then 413. */
static void chunked_a_little_over_the_limit(void)
{
	static const size_t totals[] = {LIMIT + 1, 3 * LIMIT, 900 * 1024};
	char what[160];
	struct conn c;
	struct resp r;
	size_t sent;
	int rc;

	for (size_t i = 0; i < sizeof(totals) / sizeof(totals[0]); i++) {
		ck_assert_int_eq(conn_open(&c), 0);
		rc = send_chunked(&c, totals[i], 7000, &sent);
		ck_assert_msg(rc == 0, "chunked %zu bytes: cut after %zu", totals[i], sent);
		rc = conn_read(&c, &r, ANSWER_MS, false);
		snprintf(what, sizeof(what), "chunked body of %zu bytes", totals[i]);
		expect_problem(what, rc, &r, 413, "about:blank");
		conn_close(&c);
		daemon_ok(what);
	}
}

/* Far over: cut off (a 413 may come first), never read to the end. */
static void chunked_far_over_the_limit(void)
{
	char what[160];
	struct conn c;
	struct resp r;
	size_t sent;
	int rc;

	ck_assert_int_eq(conn_open(&c), 0);
	rc = send_chunked(&c, (size_t)64 << 20, 16384, &sent);
	snprintf(what, sizeof(what), "chunked body of 64 MiB (server stopped reading after %zu)",
		 sent);
	ck_assert_msg(rc == -1 && sent < ((size_t)8 << 20),
		      "the server read %zu bytes of an endless body", sent);
	rc = conn_read(&c, &r, 3000, false);
	note(what, rc, &r);
	ck_assert_msg(rc != ANS_OK || r.status == 413, "%s: %d", what, r.status);
	resp_free(&r);
	conn_close(&c);
	daemon_ok("chunked body far over the limit");
}

/* Broken chunk framing. */
static void broken_chunk_framing(void)
{
	static const char *const raws[] = {
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Transfer-Encoding: chunked\r\nConnection: "
		"close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
		"ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
		"7fffffffffffffff\r\n{}\r\n0\r\n\r\n",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
		"-1\r\n{}\r\n0\r\n\r\n",
	};
	char what[160];
	struct resp r;
	int rc;

	for (size_t i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
		struct conn k;
		char label[200];

		ck_assert_int_eq(conn_open(&k), 0);
		conn_sends(&k, raws[i]);
		shutdown(k.fd, SHUT_WR);
		rc = conn_read(&k, &r, 5000, false);
		snprintf(what, sizeof(what), "broken chunk framing %s",
			 printable(strstr(raws[i], "\r\n\r\n") + 4,
				   strnlen(strstr(raws[i], "\r\n\r\n") + 4, 24), label,
				   sizeof(label)));
		note(what, rc, &r);
		ck_assert_msg(rc != ANS_OK || (r.status >= 400 && r.status < 500), "%s: %d", what,
			      r.status);
		resp_free(&r);
		conn_close(&k);
		daemon_ok(what);
	}
}

START_TEST(chunked_bodies)
{
	valid_order_in_chunks();
	chunked_a_little_over_the_limit();
	chunked_far_over_the_limit();
	broken_chunk_framing();
}
END_TEST

static void add_tests(TCase *tc)
{
	tcase_add_test(tc, content_length_over_limit_is_413_at_once);
	tcase_add_test(tc, chunked_bodies);
}

int main(void)
{
	return abuse_main("abuse.http.oversize", add_tests);
}
