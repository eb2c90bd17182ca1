/*
 * Tests of `shopctl place` and `shopctl follow`, the shopctl binary run as
 * a subprocess the way a person runs it, against a fake order-service
 * that this test serves (es_http on 127.0.0.1): no broker, no database.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "es/http.h"
#include "es/log.h"
#include "fixture.h"

#define FAKE_CONFIRMED "11111111-2222-4333-8444-555555555555"
#define FAKE_PENDING "22222222-3333-4444-8555-666666666666"
#define FAKE_FLAKY "33333333-4444-4555-8666-777777777777"

static struct fake {
	struct es_http *http;
	pthread_mutex_t lock;
	char url[64];
	char body[4096]; /* the last POST /orders */
	char key[300]; /* its Idempotency-Key */
	int gets_confirmed, gets_flaky;
} fake;

static json_t *entry(const char *id, const char *type, const char *source, const char *time)
{
	return json_pack("{s:s,s:s,s:s,s:s}", "id", id, "type", type, "source", source, "time",
			 time);
}

static json_t *order_doc(const char *id, const char *status, const char *reason, int entries)
{
	json_t *timeline = json_array();
	static const char *const rows[][3] = {
		{"OrderPlaced", "/eventshop/order-service", "2026-11-22T04:15:10.123Z"},
		{"PaymentProcessed", "/eventshop/payment-service", "2026-11-22T04:15:10.223Z"},
		{"InventoryRejected", "/eventshop/inventory-service", "2026-11-22T04:15:10.323Z"},
		{"OrderCancelled", "/eventshop/order-service", "2026-11-22T04:15:10.423Z"},
	};

	for (int i = 0; i < entries; i++) {
		char eid[40];

		snprintf(eid, sizeof(eid), "aaaaaaaa-0000-4000-8000-%012d", i);
		json_array_append_new(timeline, entry(eid, rows[i][0], rows[i][1], rows[i][2]));
	}
	return json_pack("{s:s,s:s,s:o,s:o}", "orderId", id, "status", status, "cancelReason",
			 reason ? json_string(reason) : json_null(), "timeline", timeline);
}

static int fake_post(struct es_http_request *req, void *arg)
{
	const char *key = es_http_header(req, "Idempotency-Key");
	json_t *body = json_loads(es_http_body(req, NULL), 0, NULL);
	const char *sku = json_string_value(
		json_object_get(json_array_get(json_object_get(body, "items"), 0), "sku"));
	json_t *errors;
	int rc;

	pthread_mutex_lock(&fake.lock);
	snprintf(fake.body, sizeof(fake.body), "%s", es_http_body(req, NULL));
	snprintf(fake.key, sizeof(fake.key), "%s", key ? key : "");
	pthread_mutex_unlock(&fake.lock);
	if (!es_http_content_type_is(req, "application/json")) {
		rc = es_http_reply_problem(req, 415, NULL, NULL, "want JSON", NULL);
	} else if (sku && !strcmp(sku, "nope")) {
		errors = json_array();
		es_http_errors_add(errors, "/items/0/sku", "unknown sku");
		rc = es_http_reply_problem(req, 422, "urn:x", "Invalid order", "1 field is invalid",
					   errors);
	} else {
		es_http_add_header(req, "Location", "/orders/" FAKE_CONFIRMED);
		rc = es_http_reply_json(req, 202,
					json_pack("{s:s,s:s,s:i,s:s}", "orderId", FAKE_CONFIRMED,
						  "status", "PENDING", "totalCents", 4095,
						  "currency", "EUR"));
	}
	json_decref(body);
	return rc;
}

/* FAKE_CONFIRMED grows one entry per GET and ends CANCELLED (a timeline
 * that repeats the old entries each time); FAKE_PENDING never ends;
 * FAKE_FLAKY answers 503 once. */
static int fake_get(struct es_http_request *req, void *arg)
{
	const char *id = es_http_param(req, "orderId");
	int n;

	if (!strcmp(id, FAKE_CONFIRMED)) {
		pthread_mutex_lock(&fake.lock);
		n = ++fake.gets_confirmed;
		pthread_mutex_unlock(&fake.lock);
		if (n >= 4)
			return es_http_reply_json(req, 200,
						  order_doc(id, "CANCELLED", "OUT_OF_STOCK", 4));
		return es_http_reply_json(req, 200, order_doc(id, "PENDING", NULL, n));
	}
	if (!strcmp(id, FAKE_PENDING))
		return es_http_reply_json(req, 200, order_doc(id, "PENDING", NULL, 1));
	if (!strcmp(id, FAKE_FLAKY)) {
		pthread_mutex_lock(&fake.lock);
		n = ++fake.gets_flaky;
		pthread_mutex_unlock(&fake.lock);
		if (n == 1)
			return es_http_reply_problem(req, 503, NULL, NULL, "database away", NULL);
		return es_http_reply_json(req, 200, order_doc(id, "CONFIRMED", NULL, 2));
	}
	return es_http_reply_problem(req, 404, NULL, NULL, "no such order", NULL);
}

/* A checked fixture: runs in the forked test, where the server's threads
 * live. */
static void fake_start(void)
{
	struct es_http_conf conf;
	char err[256];

	memset(&fake, 0, sizeof(fake));
	pthread_mutex_init(&fake.lock, NULL);
	es_http_conf_init(&conf);
	conf.bind_addr = "127.0.0.1";
	conf.threads = 2;
	fake.http = es_http_new(&conf, err, sizeof(err));
	ck_assert_msg(fake.http != NULL, "%s", err);
	ck_assert_int_eq(
		es_http_route(fake.http, "POST", "/orders", fake_post, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(es_http_route(fake.http, "GET", "/orders/{orderId}", fake_get, NULL, err,
				       sizeof(err)),
			 0);
	ck_assert_msg(es_http_start(fake.http, err, sizeof(err)) == 0, "%s", err);
	snprintf(fake.url, sizeof(fake.url), "http://127.0.0.1:%u/", es_http_port(fake.http));
}

static void fake_stop(void)
{
	es_http_free(fake.http);
	pthread_mutex_destroy(&fake.lock);
}

START_TEST(place_posts_the_order_and_prints_its_id_and_the_answer)
{
	struct run r;
	json_t *body;
	json_t *items;

	run(&r, "place", "--url", fake.url, "--sku", "mug-classic:2", "--sku", "sticker-pack",
	    "--token", "tok_declined", "--email", "ada@example.com", "--customer", "c-7", "--key",
	    "retry-1", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert(!strncmp(r.out, FAKE_CONFIRMED "\n{", strlen(FAKE_CONFIRMED) + 2));
	assert_has(r.out, "\"status\":\"PENDING\"");
	ck_assert_str_eq(fake.key, "retry-1");
	body = json_loads(fake.body, 0, NULL);
	ck_assert_ptr_nonnull(body);
	ck_assert_str_eq(json_string_value(json_object_get(body, "customerId")), "c-7");
	ck_assert_str_eq(json_string_value(json_object_get(body, "customerEmail")),
			 "ada@example.com");
	ck_assert_str_eq(json_string_value(json_object_get(body, "paymentToken")), "tok_declined");
	items = json_object_get(body, "items");
	ck_assert_int_eq(json_array_size(items), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 0), "sku")),
			 "mug-classic");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(items, 0), "quantity")),
			 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 1), "sku")),
			 "sticker-pack");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(items, 1), "quantity")),
			 1);
	json_decref(body);
	run_release(&r);

	/* ORDER_SERVICE_URL instead of --url; the defaults; no key. */
	{
		char env_url[96];
		const char *env[] = {env_url, NULL};

		snprintf(env_url, sizeof(env_url), "ORDER_SERVICE_URL=%s", fake.url);
		run_env(&r, env, "place", "--sku", "hoodie-eda", NULL);
		ck_assert_int_eq(r.status, 0);
		ck_assert_str_eq(fake.key, "");
		body = json_loads(fake.body, 0, NULL);
		ck_assert_str_eq(json_string_value(json_object_get(body, "paymentToken")),
				 "tok_visa");
		json_decref(body);
		run_release(&r);
	}
}
END_TEST

START_TEST(place_prints_the_problem_of_a_refused_order)
{
	struct run r;

	run(&r, "place", "--url", fake.url, "--sku", "nope:1", NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	assert_has(r.err, "shopctl: HTTP 422 Invalid order: 1 field is invalid\n");
	assert_has(r.err, "  /items/0/sku: unknown sku\n");
	run_release(&r);
}
END_TEST

START_TEST(place_refuses_a_bad_command_line_and_says_when_nobody_answers)
{
	struct run r;

	run(&r, "place", "--url", fake.url, NULL);
	ck_assert_int_eq(r.status, 2);
	assert_has(r.err, "--sku");
	run_release(&r);
	run(&r, "place", "--url", fake.url, "--sku", "mug-classic:two", NULL);
	ck_assert_int_eq(r.status, 2);
	assert_has(r.err, "not a whole number");
	run_release(&r);
	run(&r, "place", "--url", fake.url, "--sku", ":3", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
	run(&r, "place", "--url", fake.url, "--sku", "mug-classic", "--colour", "red", NULL);
	ck_assert_int_eq(r.status, 2);
	assert_has(r.err, "unknown option --colour");
	run_release(&r);
	run(&r, "place", "--url", "ftp://example.com", "--sku", "mug-classic", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
	run(&r, "place", "--sku", "mug-classic", "--url", NULL);
	ck_assert_int_eq(r.status, 2);
	assert_has(r.err, "needs a value");
	run_release(&r);
	/* Port 1: nothing listens there. */
	run(&r, "place", "--url", "http://127.0.0.1:1", "--sku", "mug-classic", NULL);
	ck_assert_int_eq(r.status, 1);
	assert_has(r.err, "is order-service running?");
	run_release(&r);
}
END_TEST

START_TEST(follow_prints_each_entry_once_then_the_final_status)
{
	struct run r;
	const char *placed, *paid, *rejected, *cancelled;
	char line[128];

	run(&r, "follow", FAKE_CONFIRMED, "--url", fake.url, "--timeout", "30", NULL);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(count(r.out, "OrderPlaced"), 1);
	ck_assert_int_eq(count(r.out, "PaymentProcessed"), 1);
	ck_assert_int_eq(count(r.out, "InventoryRejected"), 1);
	ck_assert_int_eq(count(r.out, "OrderCancelled"), 1);
	snprintf(line, sizeof(line), "%s  %-18s  %s\n", "2026-11-22T04:15:10.123Z", "OrderPlaced",
		 "/eventshop/order-service");
	placed = strstr(r.out, line);
	paid = strstr(r.out, "PaymentProcessed");
	rejected = strstr(r.out, "InventoryRejected");
	cancelled = strstr(r.out, "OrderCancelled");
	ck_assert_ptr_nonnull(placed);
	ck_assert(placed < paid && paid < rejected && rejected < cancelled);
	assert_has(r.out, "status: CANCELLED, cancelReason: OUT_OF_STOCK\n");
	ck_assert_int_eq(count(r.out, "\n"), 5);
	/* Four polls at 200 ms, not a busy loop and not one per second. */
	ck_assert_int_eq(fake.gets_confirmed, 4);
	run_release(&r);
}
END_TEST

START_TEST(follow_times_out_on_an_order_that_stays_pending)
{
	struct timespec t0, t1;
	struct run r;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	run(&r, "follow", "--timeout", "1", "--url", fake.url, FAKE_PENDING, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000LL + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	ck_assert_int_eq(r.status, 1);
	ck_assert_int_eq(count(r.out, "OrderPlaced"), 1);
	assert_has(r.err, "timed out after 1 s: order " FAKE_PENDING " is still PENDING");
	ck_assert_msg(ms >= 900 && ms < 5000, "took %lld ms", ms);
	run_release(&r);
}
END_TEST

START_TEST(follow_rides_out_a_503_and_stops_on_404)
{
	struct run r;

	run(&r, "follow", FAKE_FLAKY, "--url", fake.url, NULL);
	ck_assert_int_eq(r.status, 0);
	assert_has(r.err, "HTTP 503");
	assert_has(r.out, "status: CONFIRMED\n");
	run_release(&r);

	run(&r, "follow", "99999999-3333-4444-8555-666666666666", "--url", fake.url, NULL);
	ck_assert_int_eq(r.status, 1);
	assert_has(r.err, "not found (HTTP 404");
	run_release(&r);
}
END_TEST

START_TEST(follow_refuses_a_bad_command_line)
{
	struct run r;

	run(&r, "follow", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
	run(&r, "follow", "../../etc/passwd", NULL);
	ck_assert_int_eq(r.status, 2);
	assert_has(r.err, "is not a UUID");
	run_release(&r);
	run(&r, "follow", FAKE_PENDING, "--timeout", "soon", NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
	run(&r, "follow", FAKE_PENDING, FAKE_FLAKY, NULL);
	ck_assert_int_eq(r.status, 2);
	run_release(&r);
	run(&r, "follow", "--help", NULL);
	ck_assert_int_eq(r.status, 0);
	assert_has(r.out, "usage: shopctl follow");
	run_release(&r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tools.shopctl.place_follow");
	TCase *tc = tcase_create("http");
	SRunner *sr;
	int failed;

	es_log_init("test-shopctl-place-follow", ES_LOG_WARN);
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, fake_start, fake_stop);
	tcase_add_test(tc, place_posts_the_order_and_prints_its_id_and_the_answer);
	tcase_add_test(tc, place_prints_the_problem_of_a_refused_order);
	tcase_add_test(tc, place_refuses_a_bad_command_line_and_says_when_nobody_answers);
	tcase_add_test(tc, follow_prints_each_entry_once_then_the_final_status);
	tcase_add_test(tc, follow_times_out_on_an_order_that_stays_pending);
	tcase_add_test(tc, follow_rides_out_a_503_and_stops_on_404);
	tcase_add_test(tc, follow_refuses_a_bad_command_line);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
