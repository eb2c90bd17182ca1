/*
 * api: GET /payments/{orderId}.
 *
 * Handlers run in libmicrohttpd's pool threads. A lookup is one short
 * SELECT, so they share one connection behind a mutex rather than open one
 * per request; it is opened on first use and again after it broke, with a
 * single attempt, so that a request never waits out the start-up retries.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/log.h"
#include "payment.h"

struct payment_api {
	pthread_mutex_t lock;
	char *conninfo; /* owned */
	char *schema; /* owned */
	struct es_db *db; /* guarded by lock; NULL until the first request */
};

struct payment_api *payment_api_new(const char *conninfo, const char *schema)
{
	struct payment_api *api = calloc(1, sizeof(*api));

	if (!api)
		return NULL;
	api->conninfo = strdup(conninfo);
	api->schema = strdup(schema);
	if (!api->conninfo || !api->schema || pthread_mutex_init(&api->lock, NULL)) {
		free(api->conninfo);
		free(api->schema);
		free(api);
		return NULL;
	}
	return api;
}

void payment_api_free(struct payment_api *api)
{
	if (!api)
		return;
	es_db_free(api->db);
	pthread_mutex_destroy(&api->lock);
	free(api->conninfo);
	free(api->schema);
	free(api);
}

/* With api->lock held: a usable connection, or -1 with errstr. */
static int api_connect(struct payment_api *api, char *errstr, size_t errstr_size)
{
	if (es_db_ok(api->db))
		return 0;
	if (api->db)
		return es_db_reconnect(api->db, 0, errstr, errstr_size);
	api->db = es_db_connect(api->conninfo, api->schema, 0, errstr, errstr_size);
	return api->db ? 0 : -1;
}

static int get_payment(struct es_http_request *req, void *arg)
{
	struct payment_api *api = arg;
	const char *order_id = es_http_param(req, "orderId");
	char errstr[512];
	json_t *body = NULL;
	bool lost = false;
	int found = -1;

	pthread_mutex_lock(&api->lock);
	if (api_connect(api, errstr, sizeof(errstr)) == 0) {
		found = payment_lookup(api->db, order_id, &body, errstr, sizeof(errstr));
		lost = found < 0 && es_db_error_is_transient(api->db);
	} else {
		lost = true;
	}
	pthread_mutex_unlock(&api->lock);

	if (found == 1)
		return es_http_reply_json(req, 200, body);
	if (found == 0)
		return es_http_reply_problem(req, 404, NULL, NULL,
					     "no payment is known for this order", NULL);
	es_warn("GET /payments/{orderId}: %s", errstr);
	if (lost)
		return es_http_reply_problem(req, 503, NULL, NULL, "database unreachable", NULL);
	return es_http_reply_problem(req, 500, NULL, NULL, NULL, NULL);
}

int payment_api_routes(struct payment_api *api, struct es_http *http, char *errstr,
		       size_t errstr_size)
{
	return es_http_route(http, "GET", "/payments/{orderId}", get_payment, api, errstr,
			     errstr_size);
}
