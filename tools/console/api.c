/*
 * api: the page itself, the order proxy and the status panel.
 *
 * Same origin: the page talks only to the console, which passes
 * GET /api/products and POST /api/orders on to order-service (libcurl,
 * through shopctl's little client). That keeps order-service free of CORS
 * and lets the page's Content-Security-Policy say "self" for everything.
 *
 * The page's files are compiled in (es_embed_text): the console needs no
 * files at run time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "console.h"
#include "es/auth.h"
#include "es/log.h"
#include "httpc.h"

extern const char console_page_html[];
extern const char console_page_js[];
extern const char console_page_css[];

/* Everything the page needs comes from the console; nothing it shows is
 * markup (it inserts event text with textContent), and this makes sure
 * that an injected script could not run even if it were. */
#define CSP                                                                         \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " \
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static int reply_file(struct es_http_request *req, const char *type, const char *text)
{
	es_http_add_header(req, "Content-Security-Policy", CSP);
	es_http_add_header(req, "X-Content-Type-Options", "nosniff");
	es_http_add_header(req, "Cache-Control", "no-cache");
	return es_http_reply_body(req, 200, type, text, strlen(text));
}

static int handle_page(struct es_http_request *req, void *arg)
{
	(void)arg;
	return reply_file(req, "text/html; charset=utf-8", console_page_html);
}

static int handle_js(struct es_http_request *req, void *arg)
{
	(void)arg;
	return reply_file(req, "text/javascript; charset=utf-8", console_page_js);
}

static int handle_css(struct es_http_request *req, void *arg)
{
	(void)arg;
	return reply_file(req, "text/css; charset=utf-8", console_page_css);
}

int console_reply_as(struct es_http_request *req, struct shopctl_http_reply *reply)
{
	int rc = es_http_reply_body(req, (unsigned int)reply->status,
				    reply->status >= 400 ? "application/problem+json"
							 : "application/json",
				    reply->body, reply->len);

	shopctl_http_reply_release(reply);
	return rc;
}

/* Passes order-service's answer on as it is (a problem stays a problem). */
static int pass_on(struct es_http_request *req, const char *method, const char *url,
		   const char *const *headers, const char *body)
{
	struct shopctl_http_reply reply;
	char errstr[512];

	if (shopctl_http(method, url, headers, body, &reply, errstr, sizeof(errstr))) {
		es_warn("order-service: %s", errstr);
		return es_http_reply_problem(req, 502, NULL, NULL,
					     "order-service did not answer the console.", NULL);
	}
	return console_reply_as(req, &reply);
}

static int handle_products(struct es_http_request *req, void *arg)
{
	struct console *c = arg;
	char url[512];

	snprintf(url, sizeof(url), "%s/products", c->order_url);
	return pass_on(req, "GET", url, NULL, NULL);
}

/* The Authorization line for the customerId of the order in body, or ""
 * when the shop asks for no token or the body names no customer (then
 * order-service says what is wrong). Returns 0, or -1 with errstr filled. */
static int customer_token(const char *body, size_t len, char *out, size_t out_size, char *errstr,
			  size_t errstr_size)
{
	json_t *order = json_loadb(body, len, 0, NULL);
	const char *customer = json_string_value(json_object_get(order, "customerId"));
	int rc = 0;

	out[0] = '\0';
	if (customer && *customer && strlen(customer) <= ES_AUTH_SUBJECT_MAX)
		rc = es_auth_header_from_env(ES_AUTH_CUSTOMER, customer, CONSOLE_TOKEN_TTL_S, out,
					     out_size, errstr, errstr_size);
	json_decref(order);
	return rc;
}

static int handle_orders(struct es_http_request *req, void *arg)
{
	struct console *c = arg;
	const char *key = es_http_header(req, "Idempotency-Key");
	const char *headers[4] = {"Content-Type: application/json", NULL, NULL, NULL};
	char url[512], idem[256], auth[ES_AUTH_HEADER_MAX], err[512];
	size_t len, nh = 1;
	const char *body = es_http_body(req, &len);

	if (!es_http_content_type_is(req, "application/json"))
		return es_http_reply_problem(req, 415, NULL, NULL,
					     "The order must be application/json.", NULL);
	/* The console signs the order as the customer the body names: only
	 * its own page may ask, never another site's page in the learner's
	 * browser, nor one reaching it through a rebound name (admin.h). */
	if (!console_origin_allowed(es_http_header(req, "Origin"), es_http_header(req, "Host"),
				    c->bind)) {
		es_warn("storefront: refused an order whose Origin is not the console's page");
		return es_http_reply_problem(req, 403, ES_PROBLEM("forbidden"), NULL,
					     "only the console's own page places orders here (its "
					     "Origin must be the console, by a local name); from a "
					     "terminal, POST to order-service",
					     NULL);
	}
	if (strlen(body) != len)
		return es_http_reply_problem(req, 400, NULL, NULL, "The body contains a NUL byte.",
					     NULL);
	if (key && strlen(key) < 200) {
		snprintf(idem, sizeof(idem), "Idempotency-Key: %s", key);
		headers[nh++] = idem;
	}
	/* The storefront places orders as the customer its form names: when
	 * the shop asks for tokens, the console (which holds the shop's key,
	 * like shopctl) signs that customer's token for the order. */
	if (customer_token(body, len, auth, sizeof(auth), err, sizeof(err)))
		return es_http_reply_problem(req, 500, NULL, NULL, err, NULL);
	if (auth[0])
		headers[nh++] = auth;
	snprintf(url, sizeof(url), "%s/orders", c->order_url);
	return pass_on(req, "POST", url, headers, body);
}

/* GET /api/status: the live panel's figures. */
static int handle_status(struct es_http_request *req, void *arg)
{
	struct console *c = arg;
	json_t *out = json_object(), *services = json_array(), *topics = json_array();
	json_t *groups = json_array();
	size_t frames, bytes;

	pthread_mutex_lock(&c->status_lock);
	for (size_t i = 0; i < c->nservices; i++) {
		const struct console_service *s = &c->services[i];

		json_array_append_new(services, json_pack("{s:s, s:b, s:s}", "name", s->name,
							  "ready", s->ready, "detail", s->detail));
	}
	for (size_t i = 0; i < c->ntopics; i++) {
		const struct console_topic *t = &c->topics[i];
		json_t *j = json_pack("{s:s, s:b, s:f}", "topic", t->name, "dlq", t->dlq,
				      "eventsPerSecond", t->rate);

		if (j && t->dlq) {
			json_object_set_new(j, "messages",
					    t->retained < 0 ? json_null()
							    : json_integer(t->retained));
			if (t->last_reason)
				json_object_set(j, "lastReason", t->last_reason);
		}
		json_array_append_new(topics, j);
	}
	for (size_t i = 0; i < c->ngroups; i++) {
		const struct console_group *g = &c->groups[i];
		json_t *lag = json_object();

		for (size_t k = 0; g->known && k < c->ntopics; k++) {
			if (g->lag[k] >= 0)
				json_object_set_new(lag, c->topics[k].name,
						    json_integer(g->lag[k]));
		}
		json_array_append_new(groups, json_pack("{s:s, s:b, s:o}", "group", g->name,
							"known", g->known, "lag", lag));
	}
	pthread_mutex_unlock(&c->status_lock);
	console_ring_usage(c->ring, &frames, &bytes);
	json_object_set_new(out, "groups", groups);
	json_object_set_new(out, "services", services);
	json_object_set_new(out, "topics", topics);
	json_object_set_new(out, "pages", json_integer((json_int_t)console_clients_count(c)));
	json_object_set_new(
		out, "held",
		json_pack("{s:I, s:I}", "events", (json_int_t)frames, "bytes", (json_int_t)bytes));
	return es_http_reply_json(req, 200, out);
}

void console_probe_services(struct console *c)
{
	for (size_t i = 0; i < c->nservices; i++) {
		struct console_service *s = &c->services[i];
		struct shopctl_http_reply reply;
		char url[300], errstr[512], detail[256];
		bool ready = false;

		snprintf(url, sizeof(url), "%s/readyz", s->url);
		if (shopctl_http("GET", url, NULL, NULL, &reply, errstr, sizeof(errstr))) {
			snprintf(detail, sizeof(detail), "no answer");
		} else {
			const char *d = json_string_value(json_object_get(reply.json, "detail"));

			ready = reply.status == 200;
			if (ready)
				snprintf(detail, sizeof(detail), "ready");
			else
				snprintf(detail, sizeof(detail), "%ld %s", reply.status,
					 d ? d : "not ready");
			shopctl_http_reply_release(&reply);
		}
		pthread_mutex_lock(&c->status_lock);
		s->ready = ready;
		snprintf(s->detail, sizeof(s->detail), "%s", detail);
		pthread_mutex_unlock(&c->status_lock);
	}
}

int console_api_routes(struct console *c, char *errstr, size_t errstr_size)
{
	struct es_http *h = c->http;

	if (es_http_route(h, "GET", "/", handle_page, c, errstr, errstr_size) ||
	    es_http_route(h, "GET", "/console.js", handle_js, c, errstr, errstr_size) ||
	    es_http_route(h, "GET", "/console.css", handle_css, c, errstr, errstr_size) ||
	    es_http_route(h, "GET", "/api/products", handle_products, c, errstr, errstr_size) ||
	    es_http_route(h, "POST", "/api/orders", handle_orders, c, errstr, errstr_size) ||
	    es_http_route(h, "GET", "/api/status", handle_status, c, errstr, errstr_size))
		return -1;
	return 0;
}
