/*
 * Unit tests for http, routing: the built-in /livez and /readyz, HEAD
 * served by the GET route, path and query parameters and headers reaching
 * the handler, literal segments before parameters, 404 and 405 problems,
 * a handler that does not reply, and the routes a server refuses.
 */
#include <stdio.h>
#include <string.h>

#include "http_fixture.h"

START_TEST(server_listens_on_an_ephemeral_port)
{
	ck_assert_uint_ne(es_http_port(http), 0);
}
END_TEST

START_TEST(livez_answers_ok)
{
	struct resp r;
	char type[64];
	json_t *j;

	get("/livez", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(header_get(&r, "Content-Type", type, sizeof(type)), "application/json");
	j = body_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
	json_decref(j);
	resp_free(&r);
}
END_TEST

START_TEST(head_is_served_by_the_get_route_without_body)
{
	struct resp r;

	roundtrip("HEAD /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, 0);
	resp_free(&r);
}
END_TEST

START_TEST(readyz_follows_the_readiness_callback)
{
	struct resp r;
	json_t *p;

	get("/readyz", &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);

	atomic_store(&ready, false);
	get("/readyz", &r);
	p = assert_problem(&r, 503);
	ck_assert_str_eq(json_string_value(json_object_get(p, "detail")), "database unreachable");
	json_decref(p);
	resp_free(&r);

	atomic_store(&ready, true);
	get("/readyz", &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
}
END_TEST

START_TEST(path_params_query_params_and_headers_reach_the_handler)
{
	struct resp r;
	json_t *j;

	roundtrip("GET /orders/o-42?status=PENDING%20X&verbose&status=second HTTP/1.1\r\n"
		  "Host: t\r\ntraceparent: 00-abc-def-01\r\nConnection: close\r\n\r\n",
		  &r);
	ck_assert_int_eq(r.status, 200);
	j = body_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "orderId")), "o-42");
	ck_assert_str_eq(json_string_value(json_object_get(j, "route")), "/orders/{orderId}");
	ck_assert_str_eq(json_string_value(json_object_get(j, "path")), "/orders/o-42");
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "PENDING X");
	ck_assert_str_eq(json_string_value(json_object_get(j, "verbose")), "");
	ck_assert_str_eq(json_string_value(json_object_get(j, "traceparent")), "00-abc-def-01");
	json_decref(j);
	resp_free(&r);
}
END_TEST

START_TEST(literal_segment_wins_over_parameter)
{
	struct resp r;
	json_t *j;

	get("/orders/search", &r);
	ck_assert_int_eq(r.status, 200);
	j = body_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "route")), "search");
	json_decref(j);
	resp_free(&r);
}
END_TEST

START_TEST(unknown_path_is_404_problem)
{
	static const char *const paths[] = {"/nope",	   "/",	      "/orders", "/orders/",
					    "/orders/a/b", "//livez", "/livez/"};
	struct resp r;
	json_t *p;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		get(paths[i], &r);
		ck_assert_msg(r.status == 404, "%s: %d", paths[i], r.status);
		p = assert_problem(&r, 404);
		ck_assert_str_eq(json_string_value(json_object_get(p, "title")), "Not Found");
		json_decref(p);
		resp_free(&r);
	}
}
END_TEST

START_TEST(wrong_method_is_405_problem_with_allow)
{
	struct resp r;
	char allow[64];
	json_t *p;

	roundtrip("DELETE /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
	p = assert_problem(&r, 405);
	ck_assert_str_eq(header_get(&r, "Allow", allow, sizeof(allow)), "POST, PUT");
	json_decref(p);
	resp_free(&r);

	roundtrip("POST /livez HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
		  "Connection: close\r\n\r\n{}",
		  &r);
	p = assert_problem(&r, 405);
	ck_assert_str_eq(header_get(&r, "Allow", allow, sizeof(allow)), "GET, HEAD");
	json_decref(p);
	resp_free(&r);

	roundtrip("BREW /orders/1/cancel HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
	p = assert_problem(&r, 405);
	ck_assert_str_eq(header_get(&r, "Allow", allow, sizeof(allow)), "POST");
	json_decref(p);
	resp_free(&r);
}
END_TEST
START_TEST(handler_without_reply_gives_500_problem)
{
	struct resp r;
	json_t *p;

	get("/broken", &r);
	p = assert_problem(&r, 500);
	json_decref(p);
	resp_free(&r);
}
END_TEST

static int nop(struct es_http_request *req, void *arg)
{
	return 0;
}

START_TEST(bad_routes_are_refused)
{
	static const char *const bad[] = {"orders",    "/orders/", "//x",      "/a/{}",
					  "/a/{b}{c}", "/a/x{id}", "/a/{b-c}", "/a/{id}/{id}"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(
			es_http_route(http, "GET", bad[i], nop, NULL, errstr, sizeof(errstr)) == -1,
			"%s accepted", bad[i]);
	ck_assert_int_eq(es_http_route(http, "get", "/x", nop, NULL, errstr, sizeof(errstr)), -1);
}
END_TEST

START_TEST(routes_cannot_be_added_while_serving_or_twice)
{
	struct es_http_conf conf;
	struct es_http *h;

	ck_assert_int_eq(es_http_route(http, "GET", "/late", nop, NULL, errstr, sizeof(errstr)),
			 -1);
	ck_assert_ptr_nonnull(strstr(errstr, "before"));

	es_http_conf_init(&conf);
	h = es_http_new(&conf, errstr, sizeof(errstr));
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(es_http_route(h, "GET", "/a/{x}", nop, NULL, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(es_http_route(h, "GET", "/a/{y}", nop, NULL, errstr, sizeof(errstr)), -1);
	ck_assert_int_eq(es_http_route(h, "GET", "/livez", nop, NULL, errstr, sizeof(errstr)), -1);
	ck_assert_int_eq(es_http_route(h, "POST", "/a/{y}", nop, NULL, errstr, sizeof(errstr)), 0);
	ck_assert_uint_eq(es_http_port(h), 0);
	es_http_free(h);
}
END_TEST

static void add_tests(TCase *tc)
{
	tcase_add_test(tc, server_listens_on_an_ephemeral_port);
	tcase_add_test(tc, livez_answers_ok);
	tcase_add_test(tc, head_is_served_by_the_get_route_without_body);
	tcase_add_test(tc, readyz_follows_the_readiness_callback);
	tcase_add_test(tc, path_params_query_params_and_headers_reach_the_handler);
	tcase_add_test(tc, literal_segment_wins_over_parameter);
	tcase_add_test(tc, unknown_path_is_404_problem);
	tcase_add_test(tc, wrong_method_is_405_problem_with_allow);
	tcase_add_test(tc, handler_without_reply_gives_500_problem);
	tcase_add_test(tc, bad_routes_are_refused);
	tcase_add_test(tc, routes_cannot_be_added_while_serving_or_twice);
}

int main(void)
{
	return http_fixture_run("http_routes", add_tests);
}
