/*
 * HTTP abuse (harness.c), bodies: not JSON, truncated, not UTF-8, NUL
 * bytes, nested without end, numbers past any sense. Each is a 400 or
 * 422 problem (413 over the size limit), never a 5xx.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "harness.h"

/* A body: tmpl with its "%s" replaced by text (raw bytes, no escaping). */
static char *body_with(const char *tmpl, const char *text)
{
	const char *at = strstr(tmpl, "%s");
	size_t head, tl = strlen(text);
	char *b;

	ck_assert_ptr_nonnull(at);
	head = (size_t)(at - tmpl);
	b = malloc(strlen(tmpl) - 2 + tl + 1);
	ck_assert_ptr_nonnull(b);
	memcpy(b, tmpl, head);
	memcpy(b + head, text, tl);
	strcpy(b + head + tl, at + 2);
	return b;
}

/* ------------------------------------------------------------------------ */
/* Bodies that are not JSON */

START_TEST(malformed_json_is_400)
{
	static const char *const bodies[] = {
		"",
		" \r\n\t",
		"{",
		"}",
		"nope",
		"{\"customerId\":",
		"{'customerId':'c-1'}",
		"{\"customerId\" \"c-1\"}",
		"{\"customerId\":\"c-1\",}",
		"{customerId:\"c-1\"}",
		"[1,2,",
		"{\"a\":1,\"a\":2}",
		"null",
		"[]",
		"\"an order\"",
		"42",
		"{\"customerId\":\"c-1\"}}",
		VALID "xyz",
		VALID VALID,
		"\xef\xbb\xbf" VALID, /* a byte order mark */
		"{\"customerId\":\"c-1\n\"}", /* a raw newline inside a string */
		"{\"customerId\":\"\\x41\"}", /* not a JSON escape */
		"{\"customerId\":\"c-1\",\"customerEmail\":\"ada@example.com\",\"paymentToken\":"
		"\"tok_visa\",\"items\":[{\"sku\":\"mug-classic\",\"quantity\":2}",
		VALID_HEAD
		"\"items\":[{\"sku\":\"mug-classic\",\"quantity\":2}],\"customerId\":\"x\"}",
	};
	char what[256], label[160];

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct resp r;
		int rc = post_orders(bodies[i], &r);

		snprintf(what, sizeof(what), "malformed JSON %s",
			 printable(bodies[i], strlen(bodies[i]), label, sizeof(label)));
		expect_problem(what, rc, &r, 400, ES_PROBLEM("malformed-request"));
	}
	daemon_ok("malformed JSON");
}
END_TEST

START_TEST(truncated_json_is_400)
{
	const char *body = VALID;
	size_t len = strlen(body);
	char what[128], order_id[40];
	struct conn c;
	struct resp r;
	int rc;

	/* Every proper prefix of a valid order, sent with its own length. */
	for (size_t n = 0; n < len; n++) {
		rc = post_order(body, n, NULL, &r);
		snprintf(what, sizeof(what), "valid body truncated to %zu of %zu bytes", n, len);
		if (n % 16 == 0 || n == len - 1)
			note(what, rc, &r);
		json_decref(check_problem(what, rc, &r, 400, ES_PROBLEM("malformed-request")));
		resp_free(&r);
	}
	rc = post_orders(body, &r);
	expect_created("the same body whole", rc, &r, order_id);

	/* A Content-Length shorter than what follows: the server reads that
	 * much, answers, and closes (Connection: close). */
	{
		char raw[512];

		snprintf(
			raw, sizeof(raw),
			"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
			"Content-Length: 40\r\nConnection: close\r\n\r\n%s",
			body);
		rc = exchanges(raw, &r);
		expect_problem("Content-Length 40 with a 117-byte body following", rc, &r, 400,
			       ES_PROBLEM("malformed-request"));
	}

	/* A Content-Length longer than what is sent, then the client stops
	 * sending: the server waits for the rest (no answer before it) and
	 * must not take the half for a whole. */
	ck_assert_int_eq(conn_open(&c), 0);
	conn_sends(&c, "POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		       "Content-Length: 500\r\n\r\n");
	conn_sends(&c, body);
	shutdown(c.fd, SHUT_WR);
	rc = conn_read(&c, &r, 3000, false);
	note("Content-Length 500 with 117 bytes sent, then the client half-closes", rc, &r);
	ck_assert_msg(rc != ANS_OK || r.status == 400, "half a body answered %d", r.status);
	resp_free(&r);
	conn_close(&c);
	daemon_ok("truncated JSON");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Bytes that are not text */

START_TEST(invalid_utf8_is_400)
{
	static const char *const bad[] = {
		"\xff",
		"\xfe\xff",
		"\x80",
		"\xc0\xaf",
		"\xe0\x80\xaf",
		"\xed\xa0\x80",
		"\xf4\x90\x80\x80",
		"\xf8\x88\x80\x80\x80",
		"a\xe2\x82",
		"\xc3",
		"\\ud800",
		"\\udc00x",
		"\\ud800\\u0041",
	};
	static const char *const places[] = {
		"{\"customerId\":\"c-%s\",\"customerEmail\":\"ada@example.com\",\"paymentToken\":"
		"\"tok_visa\",\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}]}",
		"{\"customerId\":\"c-1\",\"customerEmail\":\"a%s@example.com\",\"paymentToken\":"
		"\"tok_visa\",\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}]}",
		"{\"customerId\":\"c-1\",\"customerEmail\":\"ada@example.com\",\"paymentToken\":"
		"\"tok_visa%s\",\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}]}",
		VALID_HEAD "\"items\":[{\"sku\":\"mug-classic%s\",\"quantity\":1}]}",
		VALID_HEAD "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1,\"x%s\":1}]}",
	};
	static const char *const field[] = {"customerId", "customerEmail", "paymentToken", "sku",
					    "an object key"};
	char what[256], label[64];
	struct resp r;
	int rc;

	for (size_t p = 0; p < sizeof(places) / sizeof(places[0]); p++) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char *body = body_with(places[p], bad[i]);

			rc = post_orders(body, &r);
			snprintf(what, sizeof(what), "invalid UTF-8 %s in %s",
				 printable(bad[i], strlen(bad[i]), label, sizeof(label)), field[p]);
			expect_problem(what, rc, &r, 400, ES_PROBLEM("malformed-request"));
			free(body);
		}
	}

	/* Outside the body. */
	rc = post_order(VALID, strlen(VALID), "Idempotency-Key: key-\xff\xfe\r\n", &r);
	expect_problem("invalid UTF-8 in Idempotency-Key", rc, &r, 400,
		       ES_PROBLEM("invalid-idempotency-key"));
	rc = get("/orders/%ff%fe%fd", &r);
	expect_problem("invalid UTF-8 (percent-encoded) as path id", rc, &r, 400,
		       ES_PROBLEM("invalid-order-id"));
	rc = get("/orders/\xff\xfe", &r);
	expect_problem("invalid UTF-8 (raw bytes) as path id", rc, &r, 400,
		       ES_PROBLEM("invalid-order-id"));
	rc = post("/orders/%ff%fe/cancel", NULL, NULL, "", 0, &r);
	expect_problem("invalid UTF-8 as cancel path id", rc, &r, 400,
		       ES_PROBLEM("invalid-order-id"));
	rc = get("/orders?status=%ff", &r);
	expect_problem("invalid UTF-8 as ?status=", rc, &r, 400, ES_PROBLEM("invalid-query"));
	rc = get("/orders?limit=%ff", &r);
	expect_problem("invalid UTF-8 as ?limit=", rc, &r, 400, ES_PROBLEM("invalid-query"));

	/* A customerId that is not UTF-8 cannot match any order (every stored
	 * one is UTF-8): an empty list, or a 400; the database refusing the
	 * bytes is no reason for a 5xx. */
	rc = get("/orders?customerId=%ff%fe", &r);
	note("invalid UTF-8 as ?customerId=", rc, &r);
	ck_assert_msg(rc == ANS_OK && (r.status == 200 || r.status == 400),
		      "GET /orders?customerId=%%ff%%fe: %s %d: %s", rc_name(rc), r.status,
		      r.body ? r.body : "");
	if (r.status == 200)
		ck_assert_str_eq(r.body, "{\"orders\":[]}");
	else
		json_decref(check_problem("?customerId=%ff%fe", rc, &r, 400, NULL));
	resp_free(&r);
	daemon_ok("invalid UTF-8");
}
END_TEST

/* In each string of the body, as a JSON escape and as a raw byte; raw
 * bytes between tokens, after a valid body, and as the whole body. */
static void nul_in_the_body(void)
{
	static const char *const places[] = {
		"{\"customerId\":\"c-%s1\",\"customerEmail\":\"ada@example.com\",\"paymentToken\":"
		"\"tok_visa\",\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}]}",
		"{\"customerId\":\"c-1\",\"customerEmail\":\"ada%s@example.com\",\"paymentToken\":"
		"\"tok_visa\",\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}]}",
		"{\"customerId\":\"c-1\",\"customerEmail\":\"ada@example.com\",\"paymentToken\":"
		"\"tok_visa%s\",\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}]}",
		VALID_HEAD "\"items\":[{\"sku\":\"mug-classic%s\",\"quantity\":1}]}",
		VALID_HEAD "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1,\"x%s\":1}]}",
	};
	static const char *const field[] = {"customerId", "customerEmail", "paymentToken", "sku",
					    "an object key"};
	char what[256];
	struct resp r;
	int rc;

	for (size_t p = 0; p < sizeof(places) / sizeof(places[0]); p++) {
		/* As a JSON escape. */
		char *body = body_with(places[p], "\\u0000");

		rc = post_orders(body, &r);
		snprintf(what, sizeof(what), "\\u0000 in %s", field[p]);
		expect_problem(what, rc, &r, 400, ES_PROBLEM("malformed-request"));
		free(body);

		/* As a raw byte: the body's length is given, so it travels. */
		body = body_with(places[p], "\x01");
		{
			size_t len = strlen(body);

			*strchr(body, '\x01') = '\0';
			rc = post_order(body, len, NULL, &r);
		}
		snprintf(what, sizeof(what), "raw NUL byte in %s", field[p]);
		expect_problem(what, rc, &r, 400, ES_PROBLEM("malformed-request"));
		free(body);
	}
	{
		static const char between[] = "{\"customerId\":\0\"c-1\"}";
		static const char after[] = VALID "\0";
		static const char only[] = "\0\0\0\0";

		rc = post_order(between, sizeof(between) - 1, NULL, &r);
		expect_problem("raw NUL byte between tokens", rc, &r, 400,
			       ES_PROBLEM("malformed-request"));
		rc = post_order(after, sizeof(after) - 1, NULL, &r);
		expect_problem("raw NUL byte after a valid body", rc, &r, 400,
			       ES_PROBLEM("malformed-request"));
		rc = post_order(only, sizeof(only) - 1, NULL, &r);
		expect_problem("a body of four NUL bytes", rc, &r, 400,
			       ES_PROBLEM("malformed-request"));
	}
}

/* In the path: libmicrohttpd decodes %00, and the id is cut there. */
static void nul_in_the_path_and_query(void)
{
	struct resp r;
	int rc;

	rc = get("/orders/%00", &r);
	note("%00 as path id", rc, &r);
	json_decref(check_problem("%00 as path id", rc, &r, r.status == 404 ? 404 : 400, NULL));
	resp_free(&r);
	/* The path is a C string: "UUID%00x" reaches the handler as "UUID",
	 * so an unknown id's 404 is as good as the 400 of a malformed one. */
	rc = get("/orders/00000000-0000-4000-8000-000000000000%00x", &r);
	note("UUID%00x as path id", rc, &r);
	json_decref(check_problem("UUID%00x as path id", rc, &r, r.status == 404 ? 404 : 400,
				  r.status == 404 ? ES_PROBLEM("order-not-found")
						  : ES_PROBLEM("invalid-order-id")));
	if (r.status == 404)
		printf("abuse:   NOTE: the id is cut at the NUL and looked up as a UUID\n");
	resp_free(&r);
	rc = get("/orders?customerId=%00&limit=1", &r);
	note("%00 as ?customerId=", rc, &r);
	ck_assert_msg(rc == ANS_OK && r.status == 200, "?customerId=%%00: %d", r.status);
	resp_free(&r);
}

/* A NUL byte in a header: refused by the HTTP parser, or the value
 * ends there ("k" is a valid key). Either way no 5xx. */
static void nul_in_a_header(void)
{
	static const char raw[] =
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Idempotency-Key: k\0ey\r\nContent-Length: 117\r\nConnection: "
		"close\r\n\r\n" VALID;
	char order_id[40];
	struct resp r;
	int rc;

	rc = exchange(raw, sizeof(raw) - 1, &r, ANSWER_MS);
	note("raw NUL byte inside the Idempotency-Key header", rc, &r);
	ck_assert_msg(rc != ANS_OK || r.status == 202 || r.status == 400, "NUL in a header: %d %s",
		      r.status, r.body);
	if (rc == ANS_OK && r.status == 202) {
		char *id = strstr(r.body, "\"orderId\":\"");

		ck_assert_ptr_nonnull(id);
		snprintf(order_id, 37, "%s", id + strlen("\"orderId\":\""));
	}
	resp_free(&r);
}

START_TEST(nul_bytes_are_400)
{
	nul_in_the_body();
	nul_in_the_path_and_query();
	nul_in_a_header();
	daemon_ok("NUL bytes");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Structures and numbers past any sense */

START_TEST(deep_nesting_is_400_or_413)
{
	struct {
		const char *what;
		char *body;
		int status;
		const char *type;
	} cases[] = {
		{"60000 '[' (under the body limit)", repeat("", "[", 60000, ""), 400,
		 ES_PROBLEM("malformed-request")},
		{"60000 '[' closed again", NULL, 400, ES_PROBLEM("malformed-request")},
		{"10000 nested {\"a\": objects", repeat("", "{\"a\":", 10000, "1"), 400,
		 ES_PROBLEM("malformed-request")},
		{"items nested 30000 arrays deep", repeat(VALID_HEAD "\"items\":", "[", 30000, ""),
		 400, ES_PROBLEM("malformed-request")},
		{"items[0] nested 2000 arrays deep, well-formed", NULL, 400,
		 ES_PROBLEM("malformed-request")},
		{"100000 '[' (over the body limit)", repeat("", "[", 100000, ""), 413,
		 "about:blank"},
	};
	char *open = repeat("", "[", 30000, "");
	char *closed = repeat(open, "]", 30000, "");
	char *inner_open = repeat(VALID_HEAD "\"items\":[", "[", 2000, "");
	char *inner = repeat(inner_open, "]", 2000, "]}");

	cases[1].body = closed;
	cases[4].body = inner;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct resp r;
		int rc = post_orders(cases[i].body, &r);

		note(cases[i].what, rc, &r);
		json_t *p = check_problem(cases[i].what, rc, &r, cases[i].status, cases[i].type);

		if (i == 4)
			ck_assert_msg(has_pointer(p, "/items/0"), "%s: %s", cases[i].what, r.body);
		json_decref(p);
		resp_free(&r);
		free(cases[i].body);
		daemon_ok(cases[i].what);
	}
	free(open);
	free(inner_open);
}
END_TEST

/* Quantities: a 400 for a number that is no integer or none jansson can
 * hold, a 422 for an integer the order does not allow, and the largest
 * one allowed accepted. */
static void quantities(void)
{
	static const struct {
		const char *quantity;
		int status;
	} cases[] = {
		{"1e400", 400},
		{"-1e400", 400},
		{"1e-400", 400},
		{"99999999999999999999999", 400},
		{"-99999999999999999999999", 400},
		{"9223372036854775808", 400},
		{"9223372036854775807", 422},
		{"-9223372036854775808", 422},
		{"4294967297", 422}, /* 2^32 + 1: would be 1 as an int */
		{"2147483649", 422},
		{"0", 422},
		{"-1", 422},
		{"101", 422},
		{"1.0", 400},
		{"1e2", 400},
		{"0x10", 400},
		{"NaN", 400},
		{"Infinity", 400},
		{"01", 400},
		{"100", 202},
	};
	char what[128], order_id[40];
	struct resp r;
	int rc;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *body = body_with(VALID_HEAD
				       "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":%s}]}",
				       cases[i].quantity);

		rc = post_orders(body, &r);
		snprintf(what, sizeof(what), "quantity %s", cases[i].quantity);
		if (cases[i].status == 202) {
			json_t *o;

			expect_created(what, rc, &r, order_id);
			o = get_order(order_id);
			ck_assert_int_eq(json_integer_value(json_object_get(o, "totalCents")),
					 100 * 1299);
			json_decref(o);
		} else {
			json_t *p;

			note(what, rc, &r);
			p = check_problem(what, rc, &r, cases[i].status,
					  cases[i].status == 400 ? ES_PROBLEM("malformed-request")
								 : ES_PROBLEM("invalid-order"));
			if (cases[i].status == 422)
				ck_assert_msg(has_pointer(p, "/items/0/quantity"), "%s: %s", what,
					      r.body);
			json_decref(p);
			resp_free(&r);
		}
		free(body);
	}
}

/* A number of 5000 digits, and numbers where a string belongs. */
static void numbers_past_any_integer(void)
{
	struct resp r;
	int rc;

	{
		char *digits = repeat("", "9", 5000, "");
		char *body = body_with(VALID_HEAD
				       "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":%s}]}",
				       digits);

		rc = post_orders(body, &r);
		expect_problem("quantity of 5000 nines", rc, &r, 400,
			       ES_PROBLEM("malformed-request"));
		free(body);
		free(digits);
	}
	rc = post_orders("{\"customerId\":1e400,\"customerEmail\":\"ada@example.com\","
			 "\"paymentToken\":\"tok_visa\",\"items\":[{\"sku\":\"mug-classic\","
			 "\"quantity\":1}]}",
			 &r);
	expect_problem("customerId 1e400", rc, &r, 400, ES_PROBLEM("malformed-request"));
	rc = post_orders("{\"customerId\":123456789012345678901234567890,\"customerEmail\":"
			 "\"ada@example.com\",\"paymentToken\":\"tok_visa\",\"items\":[{\"sku\":"
			 "\"mug-classic\",\"quantity\":1}]}",
			 &r);
	expect_problem("customerId 123456789012345678901234567890", rc, &r, 400,
		       ES_PROBLEM("malformed-request"));
}

START_TEST(huge_numbers_are_400_or_422)
{
	quantities();
	numbers_past_any_integer();
	daemon_ok("huge numbers");
}
END_TEST

static void add_tests(TCase *tc)
{
	tcase_add_test(tc, malformed_json_is_400);
	tcase_add_test(tc, truncated_json_is_400);
	tcase_add_test(tc, invalid_utf8_is_400);
	tcase_add_test(tc, nul_bytes_are_400);
	tcase_add_test(tc, deep_nesting_is_400_or_413);
	tcase_add_test(tc, huge_numbers_are_400_or_422);
}

int main(void)
{
	return abuse_main("abuse.http.bodies", add_tests);
}
