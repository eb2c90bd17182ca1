/*
 * api: GET /payments/{orderId}, on a connection the server lends the
 * request (es_http_db).
 */
#include <stdio.h>

#include "es/log.h"
#include "payment.h"

static int get_payment(struct es_http_request *req, void *arg)
{
	const char *order_id = es_http_param(req, "orderId");
	char errstr[512];
	json_t *body = NULL;
	bool lost = true;
	int found = -1;
	struct es_db *db = es_http_db(req, errstr, sizeof(errstr));

	if (db) {
		found = payment_lookup(db, order_id, &body, errstr, sizeof(errstr));
		lost = found < 0 && es_db_error_is_transient(db);
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

int payment_api_routes(struct es_http *http, char *errstr, size_t errstr_size)
{
	return es_http_route_for(http, ES_HTTP_OPERATOR, "GET", "/payments/{orderId}", get_payment,
				 NULL, errstr, errstr_size);
}
