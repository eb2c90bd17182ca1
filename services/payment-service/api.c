/*
 * api: GET /payments/{orderId}.
 *
 * Handlers run in libmicrohttpd's pool threads; each request borrows a
 * connection from an es_dbpool (one attempt when a new one is needed, so a
 * request never waits out the start-up retries).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/dbpool.h"
#include "es/log.h"
#include "payment.h"

#define API_IDLE_CONNECTIONS 4

struct payment_api {
	struct es_dbpool *pool;
};

struct payment_api *payment_api_new(const char *conninfo, const char *schema)
{
	struct payment_api *api = calloc(1, sizeof(*api));

	if (!api)
		return NULL;
	api->pool = es_dbpool_new(conninfo, schema, API_IDLE_CONNECTIONS);
	if (!api->pool) {
		free(api);
		return NULL;
	}
	return api;
}

void payment_api_free(struct payment_api *api)
{
	if (!api)
		return;
	es_dbpool_free(api->pool);
	free(api);
}

static int get_payment(struct es_http_request *req, void *arg)
{
	struct payment_api *api = arg;
	const char *order_id = es_http_param(req, "orderId");
	char errstr[512];
	json_t *body = NULL;
	bool lost = false;
	int found = -1;
	struct es_db *db = es_dbpool_get(api->pool, errstr, sizeof(errstr));

	if (db) {
		found = payment_lookup(db, order_id, &body, errstr, sizeof(errstr));
		lost = found < 0 && es_db_error_is_transient(db);
		es_dbpool_put(api->pool, db);
	} else {
		lost = true;
	}

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
