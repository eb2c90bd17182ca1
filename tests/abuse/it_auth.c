/*
 * HTTP abuse (harness.c), who may do what: order-service with tokens asked
 * for (AUTH_JWT_KEY_FILE), every order route with no token, an expired
 * one, a forged one, "alg": "none", another customer's and the right one.
 * A customer places orders only as themself, lists only their own, and
 * another customer's order is not there for them (404, not 403); an
 * operator sees every order; the catalog and the probes stay open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "es/auth.h"
#include "harness.h"

#define SECRET "the abuse suite's secret, more than thirty-two bytes"

static char key_file[64];
static struct es_auth *auth;

/* Authorization header lines ("Authorization: Bearer ...\r\n"), by name. */
static char *alice, *bob, *operator_, *expired, *forged, *none;

static char *header_for(const char *token)
{
	char *h;

	ck_assert_int_gt(asprintf(&h, "Authorization: Bearer %s\r\n", token), 0);
	return h;
}

static char *issue(const struct es_auth *a, enum es_auth_role role, const char *who, long long ttl)
{
	char err[256];
	char *t = es_auth_issue(a, role, who, (long long)time(NULL), (long)ttl, err, sizeof(err));
	char *h;

	ck_assert_msg(t != NULL, "%s", err);
	h = header_for(t);
	free(t);
	return h;
}

static void make_tokens(void)
{
	struct es_auth *other;
	char err[256], other_file[64] = "/tmp/es-abuse-other-XXXXXX";
	int fd = mkstemp(other_file);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_gt(write(fd, "someone else's secret, also thirty-two bytes long", 50), 0);
	close(fd);
	other = es_auth_new("HS256", other_file, err, sizeof(err));
	ck_assert_msg(other != NULL, "%s", err);
	alice = issue(auth, ES_AUTH_CUSTOMER, "c-alice", 300);
	bob = issue(auth, ES_AUTH_CUSTOMER, "c-bob", 300);
	operator_ = issue(auth, ES_AUTH_OPERATOR, NULL, 300);
	expired = issue(auth, ES_AUTH_CUSTOMER, "c-alice", -60);
	forged = issue(other, ES_AUTH_OPERATOR, NULL, 300);
	/* {"alg":"none"}.{"sub":"c-alice","role":"operator","exp":4102444800}. */
	none = header_for(
		"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
		"eyJzdWIiOiJjLWFsaWNlIiwicm9sZSI6Im9wZXJhdG9yIiwiZXhwIjo0MTAyNDQ0ODAwfQ.");
	es_auth_free(other);
	unlink(other_file);
}

/* A request with extra header lines (NULL: none) on path. */
static int ask(const char *method, const char *path, const char *extra, struct resp *r)
{
	char raw[4096];

	snprintf(
		raw, sizeof(raw),
		"%s %s HTTP/1.1\r\nHost: abuse\r\n%sContent-Length: 0\r\nConnection: close\r\n\r\n",
		method, path, extra ? extra : "");
	return exchanges(raw, r);
}

static const char *alice_order(const char *who)
{
	static char body[512];

	snprintf(body, sizeof(body),
		 "{\"customerId\":\"%s\",\"customerEmail\":\"%s@example.com\","
		 "\"paymentToken\":\"tok_visa\",\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}"
		 "]}",
		 who, who);
	return body;
}

/* 401 problem with a Bearer challenge. */
static void expect_401(const char *what, int rc, struct resp *r)
{
	char www[512];
	json_t *p = check_problem(what, rc, r, 401, NULL);

	ck_assert_msg(header_get(r, "WWW-Authenticate", www, sizeof(www)) && strstr(www, "Bearer"),
		      "%s: no WWW-Authenticate: Bearer", what);
	json_decref(p);
	resp_free(r);
}

START_TEST(every_order_route_refuses_bad_tokens)
{
	static const char *const routes[][2] = {
		{"POST", "/orders"},
		{"GET", "/orders"},
		{"GET", "/orders/00000000-0000-4000-8000-000000000000"},
		{"POST", "/orders/00000000-0000-4000-8000-000000000000/cancel"},
	};
	const char *bad[] = {NULL, expired, forged, none};
	const char *names[] = {"no token", "an expired token", "a forged token", "alg none"};
	char what[200];

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		for (size_t b = 0; b < 4; b++) {
			struct resp r;
			int rc = !strcmp(routes[i][1], "/orders") && !strcmp(routes[i][0], "POST")
					 ? post_order(alice_order("c-alice"),
						      strlen(alice_order("c-alice")), bad[b], &r)
					 : ask(routes[i][0], routes[i][1], bad[b], &r);

			snprintf(what, sizeof(what), "%s %s with %s", routes[i][0], routes[i][1],
				 names[b]);
			note(what, rc, &r);
			expect_401(what, rc, &r);
		}
	}
	daemon_ok("bad tokens");
}
END_TEST

START_TEST(customers_see_and_change_only_their_own_orders)
{
	char order_id[40], path[128], what[160];
	struct resp r;
	json_t *list;
	int rc;

	/* Alice orders as herself; not as Bob. */
	rc = post_order(alice_order("c-alice"), strlen(alice_order("c-alice")), alice, &r);
	expect_created("POST /orders, Alice as herself", rc, &r, order_id);
	rc = post_order(alice_order("c-bob"), strlen(alice_order("c-bob")), alice, &r);
	expect_problem("POST /orders, Alice's token with Bob's customerId", rc, &r, 403,
		       ES_PROBLEM("customer-mismatch"));

	/* Bob cannot see, list or cancel it: for him it does not exist. */
	snprintf(path, sizeof(path), "/orders/%s", order_id);
	rc = ask("GET", path, bob, &r);
	expect_problem("GET Alice's order with Bob's token", rc, &r, 404,
		       ES_PROBLEM("order-not-found"));
	snprintf(path, sizeof(path), "/orders/%s/cancel", order_id);
	rc = ask("POST", path, bob, &r);
	expect_problem("cancel Alice's order with Bob's token", rc, &r, 404,
		       ES_PROBLEM("order-not-found"));
	rc = ask("GET", "/orders?customerId=c-alice", bob, &r);
	note("GET /orders?customerId=c-alice with Bob's token", rc, &r);
	ck_assert_int_eq(r.status, 200);
	list = json_loads(r.body, 0, NULL);
	ck_assert_int_eq(json_array_size(json_object_get(list, "orders")), 0);
	json_decref(list);
	resp_free(&r);

	/* Alice lists hers (and only hers), reads it; an operator sees it. */
	rc = ask("GET", "/orders", alice, &r);
	note("GET /orders with Alice's token", rc, &r);
	ck_assert_int_eq(r.status, 200);
	list = json_loads(r.body, 0, NULL);
	ck_assert_int_ge(json_array_size(json_object_get(list, "orders")), 1);
	for (size_t i = 0; i < json_array_size(json_object_get(list, "orders")); i++)
		ck_assert_str_eq(
			json_string_value(json_object_get(
				json_array_get(json_object_get(list, "orders"), i), "customerId")),
			"c-alice");
	json_decref(list);
	resp_free(&r);
	snprintf(path, sizeof(path), "/orders/%s", order_id);
	rc = ask("GET", path, alice, &r);
	note("GET her order with Alice's token", rc, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	rc = ask("GET", path, operator_, &r);
	note("GET Alice's order with an operator's token", rc, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	rc = ask("GET", "/orders?customerId=c-alice", operator_, &r);
	snprintf(what, sizeof(what), "GET /orders?customerId=c-alice with an operator's token");
	note(what, rc, &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);

	/* Alice cancels her own (202, or 409 once the saga has ended it). */
	snprintf(path, sizeof(path), "/orders/%s/cancel", order_id);
	rc = ask("POST", path, alice, &r);
	note("cancel her order with Alice's token", rc, &r);
	ck_assert_msg(r.status == 202 || r.status == 409, "cancel: %d", r.status);
	resp_free(&r);
	daemon_ok("customers' own orders");
}
END_TEST

START_TEST(catalog_and_probes_stay_open)
{
	static const char *const open_paths[] = {"/products", "/livez", "/readyz", "/metrics"};

	for (size_t i = 0; i < sizeof(open_paths) / sizeof(open_paths[0]); i++) {
		struct resp r;
		int rc = get(open_paths[i], &r);

		note(open_paths[i], rc, &r);
		ck_assert_msg(rc == ANS_OK && (r.status == 200 || (i == 2 && r.status == 503)),
			      "GET %s without a token: %d", open_paths[i], r.status);
		resp_free(&r);
	}
}
END_TEST

static void add_tests(TCase *tc)
{
	tcase_add_unchecked_fixture(tc, make_tokens, NULL);
	tcase_add_test(tc, every_order_route_refuses_bad_tokens);
	tcase_add_test(tc, customers_see_and_change_only_their_own_orders);
	tcase_add_test(tc, catalog_and_probes_stay_open);
}

int main(void)
{
	char err[256];
	int fd, rc;

	snprintf(key_file, sizeof(key_file), "/tmp/es-abuse-key-XXXXXX");
	fd = mkstemp(key_file);
	if (fd < 0 || write(fd, SECRET, strlen(SECRET)) != (ssize_t)strlen(SECRET))
		return 1;
	close(fd);
	auth = es_auth_new("HS256", key_file, err, sizeof(err));
	if (!auth) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	/* order-service, started by abuse_main, inherits it. */
	setenv("AUTH_JWT_KEY_FILE", key_file, 1);
	rc = abuse_main("abuse.http.auth", add_tests);
	es_auth_free(auth);
	free(alice);
	free(bob);
	free(operator_);
	free(expired);
	free(forged);
	free(none);
	unlink(key_file);
	return rc;
}
