/*
 * Unit tests for http, metrics: requests counted by method, route pattern
 * (never the raw path) and status, unknown methods as OTHER.
 */
#include <string.h>

#include "http_fixture.h"

START_TEST(metrics_count_requests_by_route_pattern)
{
	struct resp r;
	char type[128];

	get("/livez", &r);
	resp_free(&r);
	get("/orders/a", &r);
	resp_free(&r);
	get("/orders/b", &r);
	resp_free(&r);
	get("/nope", &r);
	resp_free(&r);
	roundtrip("POST /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
	resp_free(&r);

	get("/metrics", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(header_get(&r, "Content-Type", type, sizeof(type)),
			 "text/plain; version=0.0.4; charset=utf-8");
	ck_assert_ptr_nonnull(strstr(r.body, "# TYPE es_http_requests_total counter\n"));
	ck_assert_ptr_nonnull(strstr(r.body,
				     "es_http_requests_total{method=\"GET\",route=\"/livez\","
				     "status=\"200\"} 1\n"));
	ck_assert_ptr_nonnull(
		strstr(r.body, "es_http_requests_total{method=\"GET\",route=\"/orders/{orderId}\","
			       "status=\"200\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(r.body,
				     "es_http_requests_total{method=\"GET\",route=\"unmatched\","
				     "status=\"404\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(r.body,
				     "es_http_requests_total{method=\"POST\",route=\"/livez\","
				     "status=\"405\"} 1\n"));
	ck_assert_ptr_nonnull(
		strstr(r.body, "# TYPE es_http_request_duration_seconds histogram\n"));
	ck_assert_ptr_nonnull(strstr(r.body,
				     "es_http_request_duration_seconds_bucket{method=\"GET\","
				     "route=\"/orders/{orderId}\",le=\"+Inf\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(r.body,
				     "es_http_request_duration_seconds_count{method=\"GET\","
				     "route=\"/orders/{orderId}\"} 2\n"));
	/* Raw paths never become labels. */
	ck_assert_ptr_null(strstr(r.body, "/orders/a"));
	ck_assert_ptr_null(strstr(r.body, "/nope"));
	resp_free(&r);
}
END_TEST

START_TEST(unknown_methods_are_counted_as_other)
{
	struct resp r;

	roundtrip("FROBNICATE /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 405);
	resp_free(&r);
	get("/metrics", &r);
	ck_assert_ptr_nonnull(strstr(r.body,
				     "es_http_requests_total{method=\"OTHER\",route=\"/livez\","
				     "status=\"405\"} 1\n"));
	ck_assert_ptr_null(strstr(r.body, "FROBNICATE"));
	resp_free(&r);
}
END_TEST

static void add_tests(TCase *tc)
{
	tcase_add_test(tc, metrics_count_requests_by_route_pattern);
	tcase_add_test(tc, unknown_methods_are_counted_as_other);
}

int main(void)
{
	return http_fixture_run("http_metrics", add_tests);
}
