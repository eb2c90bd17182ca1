/*
 * HTTP abuse (harness.c), SQL metacharacters, quotes, escapes and format
 * strings in every string a client controls: stored and found verbatim
 * where any text is allowed, 4xx problems elsewhere, never a 5xx or a slow
 * answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ------------------------------------------------------------------------ */
/* SQL in every string a client controls */

/* customerId values: SQL, quotes, escapes, format strings, Unicode. */
static const char *const sql_texts[] = {
	"'; DROP TABLE orders; --",
	"Robert'); DROP TABLE order_items;--",
	"' OR '1'='1",
	"\" OR \"\"=\"",
	"1; SELECT pg_sleep(10); --",
	"'||(SELECT pg_sleep(10))||'",
	"$1 $2 $$ $tag$x$tag$",
	"\\'; \\\\ \\x27 \\0",
	"%s%n%x%p%%_",
	"E'\\x27' /* comment */ -- tail",
	"c\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x9b\x92 \xe2\x80\xa8",
	"`backticks`; [brackets]; {braces}",
	"\t\b\f\x01\x1f",
};

static char *order_json(const char *cid, const char *email, const char *token, const char *sku)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:[{s:s,s:i}]}", "customerId", cid, "customerEmail",
			      email, "paymentToken", token, "items", "sku", sku, "quantity", 1);
	char *s;

	ck_assert_ptr_nonnull(o);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* Percent-encodes every byte but unreserved ones. */
static void url_encode(const char *s, char *out, size_t size)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && o + 4 < size; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p))
			out[o++] = (char)*p;
		else
			o += (size_t)snprintf(out + o, size - o, "%%%02X", *p);
	}
	out[o] = '\0';
}

/* customerId takes any text: 202, stored and found verbatim. The first
 * order's id goes to first_id. */
static void customer_ids_are_stored_verbatim(char *first_id, size_t first_id_size)
{
	char what[1200], label[160], order_id[40], path[1024], enc[900];
	struct resp r;
	long long t0;
	int rc;

	for (size_t i = 0; i < sizeof(sql_texts) / sizeof(sql_texts[0]); i++) {
		char *body = order_json(sql_texts[i], "ada@example.com", "tok_visa", "mug-classic");
		json_t *o, *list;

		t0 = shop_now_ms();
		rc = post_orders(body, &r);
		snprintf(what, sizeof(what), "customerId %s",
			 printable(sql_texts[i], strlen(sql_texts[i]), label, sizeof(label)));
		expect_created(what, rc, &r, order_id);
		ck_assert_msg(shop_now_ms() - t0 < 5000, "%s: took %lld ms", what,
			      shop_now_ms() - t0);
		if (!first_id[0])
			snprintf(first_id, first_id_size, "%s", order_id);
		o = get_order(order_id);
		ck_assert_msg(
			!strcmp(json_string_value(json_object_get(o, "customerId")), sql_texts[i]),
			"%s: stored as %s", what,
			json_string_value(json_object_get(o, "customerId")));
		json_decref(o);
		/* The same text as a query parameter finds that order, only it. */
		url_encode(sql_texts[i], enc, sizeof(enc));
		snprintf(path, sizeof(path), "/orders?customerId=%s&limit=100", enc);
		t0 = shop_now_ms();
		rc = get(path, &r);
		ck_assert_msg(rc == ANS_OK && r.status == 200, "GET %s: %s %d", path, rc_name(rc),
			      r.status);
		ck_assert_msg(shop_now_ms() - t0 < 5000, "GET %s: took %lld ms", path,
			      shop_now_ms() - t0);
		list = json_object_get(o = json_loadb(r.body, r.body_len, 0, NULL), "orders");
		ck_assert_msg(json_array_size(list) == 1 &&
				      !strcmp(json_string_value(json_object_get(
						      json_array_get(list, 0), "orderId")),
					      order_id),
			      "GET %s: %s", path, r.body);
		json_decref(o);
		resp_free(&r);
		free(body);
	}
	printf("abuse: %zu SQL/quote/escape customerIds -> 202 each, GET /orders/{id} and "
	       "?customerId= return them verbatim, only them\n",
	       sizeof(sql_texts) / sizeof(sql_texts[0]));
}

/* customerEmail: quotes are legal in an address, the rest is 422. */
static void customer_emails(void)
{
	static const char *const ok[] = {"o'brien@example.com", "x'or'1'='1@example.com",
					 "'--@example.com", "a$1$$%_*+=?^`{|}~#&!/@example.com"};
	static const char *const bad[] = {
		"'; DROP TABLE orders; --@example.com",
		"a\"@example.com",
		"a;b@example.com",
		"a@example.com'); DROP TABLE orders;--",
		"a@b.co\r\nBcc: victim@example.com",
		"a\\@example.com",
	};
	char what[1200], label[160], order_id[40];
	struct resp r;
	int rc;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char *body = order_json("c-email", ok[i], "tok_visa", "mug-classic");
		json_t *o;

		rc = post_orders(body, &r);
		snprintf(what, sizeof(what), "customerEmail %s", ok[i]);
		expect_created(what, rc, &r, order_id);
		o = get_order(order_id);
		ck_assert_str_eq(json_string_value(json_object_get(o, "customerEmail")), ok[i]);
		json_decref(o);
		free(body);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *body = order_json("c-email", bad[i], "tok_visa", "mug-classic");
		json_t *p;

		rc = post_orders(body, &r);
		snprintf(what, sizeof(what), "customerEmail %s",
			 printable(bad[i], strlen(bad[i]), label, sizeof(label)));
		note(what, rc, &r);
		p = check_problem(what, rc, &r, 422, ES_PROBLEM("invalid-order"));
		ck_assert(has_pointer(p, "/customerEmail"));
		json_decref(p);
		resp_free(&r);
		free(body);
	}
}

/* paymentToken and sku: closed vocabularies, so 422. */
static void payment_tokens_and_skus(void)
{
	char what[1200], label[160];
	struct resp r;
	int rc;

	for (size_t i = 0; i < sizeof(sql_texts) / sizeof(sql_texts[0]); i++) {
		char *token, *body;
		json_t *p;

		ck_assert_int_gt(asprintf(&token, "tok_visa%s", sql_texts[i]), 0);
		body = order_json("c-token", "ada@example.com", token, "mug-classic");
		rc = post_orders(body, &r);
		snprintf(what, sizeof(what), "paymentToken %s",
			 printable(token, strlen(token), label, sizeof(label)));
		note(what, rc, &r);
		p = check_problem(what, rc, &r, 422, ES_PROBLEM("invalid-order"));
		ck_assert(has_pointer(p, "/paymentToken"));
		json_decref(p);
		resp_free(&r);
		free(body);
		free(token);

		ck_assert_int_gt(asprintf(&token, "mug-classic%s", sql_texts[i]), 0);
		body = order_json("c-sku", "ada@example.com", "tok_visa", token);
		rc = post_orders(body, &r);
		snprintf(what, sizeof(what), "sku %s",
			 printable(token, strlen(token), label, sizeof(label)));
		note(what, rc, &r);
		p = check_problem(what, rc, &r, 422, ES_PROBLEM("invalid-order"));
		ck_assert(has_pointer(p, "/items/0/sku"));
		json_decref(p);
		resp_free(&r);
		free(body);
		free(token);
	}
}

/* Idempotency-Key: visible ASCII is a key like any other. traceparent is
 * replaced when it is not one; the order goes through. */
static void idempotency_key_and_traceparent(void)
{
	static const char *const keys[] = {
		"';DROP/**/TABLE/**/idempotency_keys;--",
		"'OR'1'='1",
		"%s%n%x\\'\"$1",
	};
	static const char *const bad_keys[] = {
		"'; DROP TABLE idempotency_keys; --", /* spaces */
		"key\x7f",
	};
	char what[1200], label[160], order_id[40];
	struct resp r;
	int rc;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char hdr[400], again_id[40];
		char *body = order_json("c-key", "ada@example.com", "tok_visa", "mug-classic");

		snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s\r\n", keys[i]);
		rc = post_order(body, strlen(body), hdr, &r);
		snprintf(what, sizeof(what), "Idempotency-Key %s", keys[i]);
		expect_created(what, rc, &r, order_id);
		rc = post_order(body, strlen(body), hdr, &r);
		snprintf(what, sizeof(what), "Idempotency-Key %s, same body again", keys[i]);
		expect_created(what, rc, &r, again_id);
		ck_assert_str_eq(again_id, order_id);
		free(body);
		body = order_json("c-key-2", "ada@example.com", "tok_visa", "mug-classic");
		rc = post_order(body, strlen(body), hdr, &r);
		snprintf(what, sizeof(what), "Idempotency-Key %s, another body", keys[i]);
		expect_problem(what, rc, &r, 422, ES_PROBLEM("idempotency-key-reused"));
		free(body);
	}
	for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
		char hdr[400];

		snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s\r\n", bad_keys[i]);
		rc = post_order(VALID, strlen(VALID), hdr, &r);
		snprintf(what, sizeof(what), "Idempotency-Key %s",
			 printable(bad_keys[i], strlen(bad_keys[i]), label, sizeof(label)));
		expect_problem(what, rc, &r, 400, ES_PROBLEM("invalid-idempotency-key"));
	}
	{
		char hdr[400];
		char *key = repeat("", "'", 256, "");

		snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s\r\n", key);
		rc = post_order(VALID, strlen(VALID), hdr, &r);
		expect_problem("Idempotency-Key of 256 quotes", rc, &r, 400,
			       ES_PROBLEM("invalid-idempotency-key"));
		free(key);
	}

	rc = post_order(VALID, strlen(VALID), "traceparent: 00-'; DROP TABLE outbox; --\r\n", &r);
	expect_created("traceparent '; DROP TABLE outbox; --", rc, &r, order_id);
}

/* Path ids: refused as such (400) or unknown (404). */
static void path_ids(void)
{
	static const char *const ids[] = {
		"'%20OR%20'1'='1",
		"1';DROP%20TABLE%20orders;--",
		"00000000-0000-4000-8000-000000000000'--",
		"00000000-0000-4000-8000-00000000000'",
		"%27%3B%20DROP%20TABLE%20orders%3B%20--",
		"$1",
	};
	char what[1200], path[1024];
	struct resp r;
	int rc;

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		snprintf(path, sizeof(path), "/orders/%s", ids[i]);
		rc = get(path, &r);
		snprintf(what, sizeof(what), "GET %s", path);
		expect_problem(what, rc, &r, 400, ES_PROBLEM("invalid-order-id"));
		snprintf(path, sizeof(path), "/orders/%s/cancel", ids[i]);
		rc = post(path, NULL, NULL, "", 0, &r);
		snprintf(what, sizeof(what), "POST %s", path);
		expect_problem(what, rc, &r, 400, ES_PROBLEM("invalid-order-id"));
	}
	rc = get("/orders/00000000-0000-4000-8000-000000000000", &r);
	expect_problem("GET an unknown (valid) order id", rc, &r, 404,
		       ES_PROBLEM("order-not-found"));
	rc = post("/orders/00000000-0000-4000-8000-000000000000/cancel", NULL, NULL, "", 0, &r);
	expect_problem("POST cancel of an unknown (valid) order id", rc, &r, 404,
		       ES_PROBLEM("order-not-found"));
}

/* Query parameters: a status or limit that is none is refused (400); a
 * customerId of SQL matches no order (an empty list). */
static void query_parameters(void)
{
	static const char *const queries[] = {
		"status=PENDING'%20OR%20'1'='1",
		"status=%27%3B%20DROP%20TABLE%20orders%3B--",
		"limit=1;DROP%20TABLE%20orders",
		"limit=1%20OR%201=1",
		"limit=-1",
		"limit=0",
		"limit=101",
		"limit=99999999999999999999999",
		"limit=",
		"limit=1e2",
	};
	char what[1200], path[1024];
	struct resp r;
	int rc;

	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		snprintf(path, sizeof(path), "/orders?%s", queries[i]);
		rc = get(path, &r);
		snprintf(what, sizeof(what), "GET %s", path);
		expect_problem(what, rc, &r, 400, ES_PROBLEM("invalid-query"));
	}
	static const char *const empty[] = {
		"customerId=zz'%20OR%20'1'='1",
		"customerId=x'%20OR%201=1%20--",
		"customerId='%20OR%20''='",
		"customerId=%25",
		"customerId=_",
		"customerId=*",
	};
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		snprintf(path, sizeof(path), "/orders?%s", empty[i]);
		rc = get(path, &r);
		snprintf(what, sizeof(what), "GET %s", path);
		note(what, rc, &r);
		ck_assert_msg(rc == ANS_OK && r.status == 200 && !strcmp(r.body, "{\"orders\":[]}"),
			      "%s: %d %s", what, r.status, r.body);
		resp_free(&r);
	}
}

START_TEST(sql_metacharacters_are_refused_or_stored_verbatim)
{
	char first_id[40] = "";
	struct resp r;
	int rc;

	customer_ids_are_stored_verbatim(first_id, sizeof(first_id));
	customer_emails();
	payment_tokens_and_skus();
	idempotency_key_and_traceparent();
	path_ids();
	query_parameters();

	/* Everything is still there. */
	rc = get("/products", &r);
	note("GET /products after all of it", rc, &r);
	ck_assert_msg(rc == ANS_OK && r.status == 200, "GET /products: %d", r.status);
	{
		json_t *p = json_loadb(r.body, r.body_len, 0, NULL);

		ck_assert_int_eq(json_array_size(p), 5);
		json_decref(p);
	}
	resp_free(&r);
	json_decref(get_order(first_id));
	daemon_ok("SQL metacharacters");
}
END_TEST

static void add_tests(TCase *tc)
{
	tcase_add_test(tc, sql_metacharacters_are_refused_or_stored_verbatim);
}

int main(void)
{
	return abuse_main("abuse.http.sql", add_tests);
}
