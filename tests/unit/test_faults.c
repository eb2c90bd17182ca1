/*
 * Unit tests for faults: every switch off by default, ranges and names
 * checked, a counting switch taken down to off, the switches in /metrics,
 * and the admin server: off without ADMIN_PORT, never on the public port,
 * and its routes (list, set, clear; 404, 422 and 400 problems). The
 * refusal of non-local peers needs a second address: e2e.faults.admin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "es/auth.h"
#include "es/faults.h"
#include "http_fixture.h"

START_TEST(library_switches_are_off_by_default)
{
	for (int id = 0; id < ES_FAULT_BUILTIN_COUNT; id++) {
		ck_assert_int_eq(es_fault_value(id), 0);
		ck_assert(!es_fault_on(id));
	}
	ck_assert(!es_fault_take(ES_FAULT_FAIL_NEXT));
	ck_assert(!es_fault_on(ES_FAULTS_MAX + 3)); /* unknown: never on */
}
END_TEST

START_TEST(a_service_switch_has_a_name_a_range_and_an_off_value)
{
	int id = es_fault_define("latency_ms", "a test's latency", -1, 100, -1);

	ck_assert_int_ge(id, ES_FAULT_BUILTIN_COUNT);
	ck_assert_int_eq(es_fault_define("latency_ms", "again", -1, 100, -1), id);
	ck_assert_int_eq(es_fault_define("Latency", "upper case", 0, 1, 0), -1);
	ck_assert_int_eq(es_fault_define("", "empty", 0, 1, 0), -1);
	ck_assert_int_eq(es_fault_define("off_outside", "off out of range", 0, 1, 2), -1);
	ck_assert_int_eq(es_fault_value(id), -1);
	ck_assert(!es_fault_on(id));
	ck_assert_int_eq(es_fault_set("latency_ms", 101), -2);
	ck_assert_int_eq(es_fault_set("no_such_switch", 1), -1);
	ck_assert_int_eq(es_fault_set("latency_ms", 40), 0);
	ck_assert_int_eq(es_fault_value(id), 40);
	ck_assert(es_fault_on(id));
	es_fault_clear_all();
	ck_assert_int_eq(es_fault_value(id), -1);
}
END_TEST

START_TEST(fail_next_counts_down_to_off)
{
	ck_assert_int_eq(es_fault_set("fail_next", 2), 0);
	ck_assert(es_fault_take(ES_FAULT_FAIL_NEXT));
	ck_assert_int_eq(es_fault_value(ES_FAULT_FAIL_NEXT), 1);
	ck_assert(es_fault_take(ES_FAULT_FAIL_NEXT));
	ck_assert(!es_fault_take(ES_FAULT_FAIL_NEXT));
	ck_assert(!es_fault_on(ES_FAULT_FAIL_NEXT));
}
END_TEST

START_TEST(every_switch_is_in_metrics)
{
	struct es_metrics *m = es_metrics_new();
	char *text;
	size_t len;

	ck_assert_int_eq(es_faults_register_metrics(m, errstr, sizeof(errstr)), 0);
	text = es_metrics_render(m, &len);
	ck_assert_ptr_nonnull(strstr(text, "\nes_fault_pause 0\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nes_fault_fail_next 0\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nes_fault_crash_after_commit 0\n"));
	free(text);
	es_fault_set("pause", 1);
	text = es_metrics_render(m, &len);
	ck_assert_ptr_nonnull(strstr(text, "\nes_fault_pause 1\n"));
	free(text);
	es_fault_clear_all();
	es_metrics_free(m);
}
END_TEST

START_TEST(no_admin_server_without_admin_port)
{
	unsetenv("ADMIN_PORT");
	ck_assert_ptr_null(es_faults_admin_new(8080, NULL, errstr, sizeof(errstr)));
	ck_assert_str_eq(errstr, "");
	setenv("ADMIN_PORT", "80x", 1);
	ck_assert_ptr_null(es_faults_admin_new(8080, NULL, errstr, sizeof(errstr)));
	ck_assert_ptr_nonnull(strstr(errstr, "ADMIN_PORT"));
	setenv("ADMIN_PORT", "8080", 1);
	ck_assert_ptr_null(es_faults_admin_new(8080, NULL, errstr, sizeof(errstr)));
	ck_assert_ptr_nonnull(strstr(errstr, "is HTTP_PORT"));
	unsetenv("ADMIN_PORT");
}
END_TEST

/* One request to the admin server on port; the answer in r. */
static void admin_call(unsigned short port, const char *method, const char *path, const char *body,
		       struct resp *r)
{
	struct client c;
	char head[512];

	snprintf(head, sizeof(head),
		 "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
		 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		 method, path, body ? strlen(body) : 0);
	client_open_port(&c, port);
	client_sends(&c, head);
	if (body)
		client_sends(&c, body);
	client_read(&c, r, false);
	client_close(&c);
}

/* An RFC 9457 problem of this status (the switches' own problem types). */
static void expect_problem(const struct resp *r, int status)
{
	char type[64];

	ck_assert_int_eq(r->status, status);
	ck_assert_str_eq(header_get(r, "Content-Type", type, sizeof(type)),
			 "application/problem+json");
}

static long switch_value(const struct resp *r, const char *name)
{
	json_t *j = body_json(r), *s;
	long v = -999;
	size_t i;

	json_array_foreach(json_object_get(j, "faults"), i, s)
	{
		if (!strcmp(json_string_value(json_object_get(s, "name")), name))
			v = (long)json_integer_value(json_object_get(s, "value"));
	}
	json_decref(j);
	return v;
}

START_TEST(admin_server_lists_sets_and_clears)
{
	struct es_http *admin;
	unsigned short port;
	struct resp r;
	json_t *j;

	setenv("ADMIN_PORT", "0", 1);
	admin = es_faults_admin_new(es_http_port(http), NULL, errstr, sizeof(errstr));
	unsetenv("ADMIN_PORT");
	ck_assert_ptr_nonnull(admin);
	ck_assert_int_eq(es_http_start(admin, errstr, sizeof(errstr)), 0);
	port = es_http_port(admin);

	admin_call(port, "GET", "/faults", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(switch_value(&r, "pause"), 0);
	resp_free(&r);

	admin_call(port, "PUT", "/faults/fail_next", "{\"value\": 5}", &r);
	ck_assert_int_eq(r.status, 200);
	j = body_json(&r);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "value")), 5);
	json_decref(j);
	resp_free(&r);
	ck_assert_int_eq(es_fault_value(ES_FAULT_FAIL_NEXT), 5);

	admin_call(port, "PUT", "/faults/pause", "{\"value\": 2}", &r);
	expect_problem(&r, 422);
	resp_free(&r);
	admin_call(port, "PUT", "/faults/no_such", "{\"value\": 1}", &r);
	expect_problem(&r, 404);
	resp_free(&r);
	admin_call(port, "PUT", "/faults/pause", "{\"value\": \"on\"}", &r);
	expect_problem(&r, 400);
	resp_free(&r);
	ck_assert_int_eq(es_fault_value(ES_FAULT_PAUSE), 0);

	admin_call(port, "DELETE", "/faults/fail_next", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	ck_assert_int_eq(es_fault_value(ES_FAULT_FAIL_NEXT), 0);

	es_fault_set("pause", 1);
	admin_call(port, "DELETE", "/faults", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(switch_value(&r, "pause"), 0);
	resp_free(&r);
	es_http_free(admin);
}
END_TEST

START_TEST(with_tokens_the_switches_are_an_operators)
{
	char key_file[] = "/tmp/es-faults-key-XXXXXX", err[256], hdr[ES_AUTH_HEADER_MAX];
	static const char secret[] = "the faults test's secret, over thirty-two bytes";
	struct es_http *admin;
	struct es_auth *auth;
	struct client c;
	struct resp r;
	char raw[ES_AUTH_HEADER_MAX + 200];
	int fd = mkstemp(key_file);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, secret, strlen(secret)), (ssize_t)strlen(secret));
	close(fd);
	auth = es_auth_new("HS256", key_file, err, sizeof(err));
	ck_assert_msg(auth != NULL, "%s", err);
	setenv("ADMIN_PORT", "0", 1);
	admin = es_faults_admin_new(es_http_port(http), auth, errstr, sizeof(errstr));
	unsetenv("ADMIN_PORT");
	ck_assert_ptr_nonnull(admin);
	ck_assert_int_eq(es_http_start(admin, errstr, sizeof(errstr)), 0);
	/* No token: 401, and nothing changes. */
	admin_call(es_http_port(admin), "PUT", "/faults/pause", "{\"value\": 1}", &r);
	expect_problem(&r, 401);
	resp_free(&r);
	ck_assert_int_eq(es_fault_value(ES_FAULT_PAUSE), 0);
	/* An operator's token lists them. */
	setenv("AUTH_JWT_KEY_FILE", key_file, 1);
	ck_assert_int_eq(es_auth_header_from_env(ES_AUTH_OPERATOR, NULL, 60, hdr, sizeof(hdr), err,
						 sizeof(err)),
			 0);
	unsetenv("AUTH_JWT_KEY_FILE");
	snprintf(raw, sizeof(raw),
		 "GET /faults HTTP/1.1\r\nHost: t\r\n%s\r\nConnection: close\r\n\r\n", hdr);
	client_open_port(&c, es_http_port(admin));
	client_sends(&c, raw);
	client_read(&c, &r, false);
	client_close(&c);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	es_http_free(admin);
	es_auth_free(auth);
	unlink(key_file);
}
END_TEST

START_TEST(the_public_server_has_no_faults_route)
{
	struct resp r;

	get("/faults", &r);
	json_decref(assert_problem(&r, 404));
	resp_free(&r);
}
END_TEST

static void add_tests(TCase *tc)
{
	tcase_add_test(tc, library_switches_are_off_by_default);
	tcase_add_test(tc, a_service_switch_has_a_name_a_range_and_an_off_value);
	tcase_add_test(tc, fail_next_counts_down_to_off);
	tcase_add_test(tc, every_switch_is_in_metrics);
	tcase_add_test(tc, no_admin_server_without_admin_port);
	tcase_add_test(tc, admin_server_lists_sets_and_clears);
	tcase_add_test(tc, with_tokens_the_switches_are_an_operators);
	tcase_add_test(tc, the_public_server_has_no_faults_route);
}

int main(void)
{
	return http_fixture_run("faults", add_tests);
}
