/*
 * Unit tests for http, who may call a route: with conf.auth, a customer's
 * route needs a valid token, an operator's route an operator's token,
 * public routes and /livez need none; refusals are 401 problem+json with
 * WWW-Authenticate: Bearer, or 403; the handler sees the caller; /metrics
 * is an operator's route on a server that listens beyond 127.0.0.1; with
 * no conf.auth everything is open as before.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http_fixture.h"

static char key_file[64];
static struct es_auth *auth;
static struct es_metrics *own_reg; /* server_with's: one registry per server */

/* GET /whoami: the caller as the server saw it. */
static int whoami(struct es_http_request *req, void *arg)
{
	const struct es_caller *c = es_http_caller(req);

	return es_http_reply_json(
		req, 200,
		json_pack("{s:i,s:s}", "role", (int)c->role, "customerId", c->customer_id));
}

static struct es_http *server_with(const struct es_auth *a, const char *bind)
{
	struct es_http_conf conf;
	struct es_http *h;

	server_conf(&conf, 30);
	own_reg = es_metrics_new();
	ck_assert_ptr_nonnull(own_reg);
	conf.metrics = own_reg;
	conf.auth = a;
	conf.bind_addr = bind;
	h = es_http_new(&conf, errstr, sizeof(errstr));
	ck_assert_msg(h != NULL, "%s", errstr);
	ck_assert_int_eq(es_http_route(h, "GET", "/public", whoami, NULL, errstr, sizeof(errstr)),
			 0);
	ck_assert_int_eq(es_http_route_for(h, ES_HTTP_CUSTOMER, "GET", "/mine", whoami, NULL,
					   errstr, sizeof(errstr)),
			 0);
	ck_assert_int_eq(es_http_route_for(h, ES_HTTP_CUSTOMER, "POST", "/mine", whoami, NULL,
					   errstr, sizeof(errstr)),
			 0);
	ck_assert_int_eq(es_http_route_for(h, ES_HTTP_OPERATOR, "GET", "/ops", whoami, NULL, errstr,
					   sizeof(errstr)),
			 0);
	ck_assert_msg(es_http_start(h, errstr, sizeof(errstr)) == 0, "%s", errstr);
	return h;
}

static void server_free(struct es_http *h)
{
	es_http_free(h);
	es_metrics_free(own_reg);
	own_reg = NULL;
}

static char *token(enum es_auth_role role, const char *customer, long long ttl)
{
	char err[256];
	char *t = es_auth_issue(auth, role, customer, (long long)time(NULL), (long)ttl, err,
				sizeof(err));

	ck_assert_msg(t != NULL, "%s", err);
	return t;
}

/* GET path on h with the Authorization header value authz (NULL: none). */
static void ask(struct es_http *h, const char *method, const char *path, const char *authz,
		struct resp *r)
{
	char raw[2048];
	struct client c;

	snprintf(raw, sizeof(raw), "%s %s HTTP/1.1\r\nHost: t\r\n%s%s%sContent-Length: 0\r\n\r\n",
		 method, path, authz ? "Authorization: " : "", authz ? authz : "",
		 authz ? "\r\n" : "");
	client_open_port(&c, es_http_port(h));
	client_sends(&c, raw);
	client_read(&c, r, false);
	client_close(&c);
}

static void bearer(char *out, size_t size, const char *t)
{
	snprintf(out, size, "Bearer %s", t);
}

START_TEST(customer_route_needs_a_valid_token)
{
	struct es_http *h = server_with(auth, "127.0.0.1");
	char authz[1024], www[512];
	char *mine = token(ES_AUTH_CUSTOMER, "c-1", 60), *old = token(ES_AUTH_CUSTOMER, "c-1", -5);
	struct resp r;
	json_t *j;

	ask(h, "GET", "/mine", NULL, &r);
	json_decref(assert_problem(&r, 401));
	ck_assert_ptr_nonnull(header_get(&r, "WWW-Authenticate", www, sizeof(www)));
	ck_assert_ptr_nonnull(strstr(www, "Bearer"));
	resp_free(&r);

	bearer(authz, sizeof(authz), old);
	ask(h, "GET", "/mine", authz, &r);
	j = assert_problem(&r, 401);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(j, "detail")), "expired"));
	json_decref(j);
	ck_assert_ptr_nonnull(header_get(&r, "WWW-Authenticate", www, sizeof(www)));
	ck_assert_ptr_nonnull(strstr(www, "invalid_token"));
	resp_free(&r);

	/* Not a bearer token at all. */
	ask(h, "GET", "/mine", "Basic dXNlcjpwYXNz", &r);
	json_decref(assert_problem(&r, 401));
	resp_free(&r);

	/* A refused POST is answered before its body is read. */
	ask(h, "POST", "/mine", "Bearer x.y.z", &r);
	json_decref(assert_problem(&r, 401));
	resp_free(&r);

	bearer(authz, sizeof(authz), mine);
	ask(h, "GET", "/mine", authz, &r);
	ck_assert_int_eq(r.status, 200);
	j = body_json(&r);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "role")), ES_AUTH_CUSTOMER);
	ck_assert_str_eq(json_string_value(json_object_get(j, "customerId")), "c-1");
	json_decref(j);
	resp_free(&r);
	free(mine);
	free(old);
	server_free(h);
}
END_TEST

START_TEST(operator_route_refuses_a_customer)
{
	struct es_http *h = server_with(auth, "127.0.0.1");
	char *cust = token(ES_AUTH_CUSTOMER, "c-1", 60), *op = token(ES_AUTH_OPERATOR, NULL, 60);
	char authz[1024];
	struct resp r;
	json_t *j;

	bearer(authz, sizeof(authz), cust);
	ask(h, "GET", "/ops", authz, &r);
	json_decref(assert_problem(&r, 403));
	resp_free(&r);
	bearer(authz, sizeof(authz), op);
	ask(h, "GET", "/ops", authz, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	/* An operator may use a customer's route too. */
	ask(h, "GET", "/mine", authz, &r);
	ck_assert_int_eq(r.status, 200);
	j = body_json(&r);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "role")), ES_AUTH_OPERATOR);
	json_decref(j);
	resp_free(&r);
	free(cust);
	free(op);
	server_free(h);
}
END_TEST

START_TEST(public_routes_and_probes_need_no_token)
{
	struct es_http *h = server_with(auth, "127.0.0.1");
	struct resp r;
	json_t *j;

	ask(h, "GET", "/public", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	j = body_json(&r);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "role")), ES_AUTH_ANYONE);
	json_decref(j);
	resp_free(&r);
	ask(h, "GET", "/livez", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	ask(h, "GET", "/readyz", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	/* On 127.0.0.1, /metrics is for whoever can reach it. */
	ask(h, "GET", "/metrics", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	server_free(h);
}
END_TEST

START_TEST(metrics_beyond_loopback_is_for_operators)
{
	struct es_http *h = server_with(auth, "0.0.0.0");
	char *op = token(ES_AUTH_OPERATOR, NULL, 60);
	char authz[1024];
	struct resp r;

	ask(h, "GET", "/metrics", NULL, &r);
	json_decref(assert_problem(&r, 401));
	resp_free(&r);
	bearer(authz, sizeof(authz), op);
	ask(h, "GET", "/metrics", authz, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	free(op);
	server_free(h);
}
END_TEST

START_TEST(without_auth_every_route_is_open)
{
	struct es_http *h = server_with(NULL, "127.0.0.1");
	struct resp r;

	ask(h, "GET", "/ops", NULL, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	ask(h, "GET", "/mine", "Bearer not-even-a-token", &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	server_free(h);
}
END_TEST

static void add_tests(TCase *tc)
{
	tcase_add_test(tc, customer_route_needs_a_valid_token);
	tcase_add_test(tc, operator_route_refuses_a_customer);
	tcase_add_test(tc, public_routes_and_probes_need_no_token);
	tcase_add_test(tc, metrics_beyond_loopback_is_for_operators);
	tcase_add_test(tc, without_auth_every_route_is_open);
}

int main(void)
{
	char err[256];
	FILE *f;
	int rc;

	snprintf(key_file, sizeof(key_file), "/tmp/es-http-auth-XXXXXX");
	rc = mkstemp(key_file);
	if (rc < 0)
		return 1;
	close(rc);
	f = fopen(key_file, "w");
	if (!f)
		return 1;
	fputs("the test server's secret, more than thirty-two bytes", f);
	fclose(f);
	auth = es_auth_new("HS256", key_file, err, sizeof(err));
	if (!auth) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	rc = http_fixture_run("http_auth", add_tests);
	es_auth_free(auth);
	unlink(key_file);
	return rc;
}
