/*
 * api: GET /shipments/{orderId}, the fold and the stream it was folded
 * from, on a connection the server lends the request (es_http_db). The
 * state is computed from the stream on every read: there is no other
 * copy of it to fall out of step.
 */
#include <stdio.h>

#include "es/log.h"
#include "shipping.h"

static int get_shipment(struct es_http_request *req, void *arg)
{
	const char *order_id = es_http_param(req, "orderId");
	struct es_db *db;
	struct shipment s;
	json_t *events = NULL, *body;
	char errstr[512];

	(void)arg;
	if (!es_uuid_valid(order_id))
		return es_http_reply_problem(req, 400, NULL, NULL,
					     "the order id in the path is not a UUID", NULL);
	db = es_http_db(req, errstr, sizeof(errstr));
	if (!db || shipping_stream_load(db, order_id, &s, &events, errstr, sizeof(errstr))) {
		es_warn("GET /shipments/{orderId}: %s", errstr);
		if (!db || es_db_error_is_transient(db))
			return es_http_reply_problem(req, 503, NULL, NULL, "database unreachable",
						     NULL);
		return es_http_reply_problem(req, 500, NULL, NULL, NULL, NULL);
	}
	if (s.version == 0) {
		json_decref(events);
		return es_http_reply_problem(req, 404, NULL, NULL,
					     "no shipment is known for this order", NULL);
	}
	body = shipment_to_json(&s, order_id, events);
	json_decref(events);
	if (!body)
		return es_http_reply_problem(req, 500, NULL, NULL, NULL, NULL);
	return es_http_reply_json(req, 200, body);
}

int shipping_api_routes(struct es_http *http, char *errstr, size_t errstr_size)
{
	/* An operator's view, like GET /payments/{orderId}: shipping knows no
	 * customer to check a customer's token against (docs/auth.md). */
	return es_http_route_for(http, ES_HTTP_OPERATOR, "GET", "/shipments/{orderId}",
				 get_shipment, NULL, errstr, errstr_size);
}
