/* The HTTP routes, on a connection the server lends each request
 * (es_http_db: one attempt when a new one is needed, so a request waits
 * for no database, it answers 503). */
#include <stdio.h>

#include "es/log.h"
#include "inventory.h"

static int unavailable(struct es_http_request *req, const char *why)
{
	es_warn("%s %s: database unavailable: %s", es_http_method(req), es_http_path(req), why);
	return es_http_reply_problem(req, 503, NULL, NULL, "the database is unavailable", NULL);
}

static int get_stock(struct es_http_request *req, void *arg)
{
	char errstr[512] = "";
	struct es_db *db = es_http_db(req, errstr, sizeof(errstr));
	json_t *stock = db ? inventory_stock_list(db, errstr, sizeof(errstr)) : NULL;

	if (!stock)
		return unavailable(req, errstr);
	return es_http_reply_json(req, 200, stock);
}

static int get_reservation(struct es_http_request *req, void *arg)
{
	const char *order_id = es_http_param(req, "orderId");
	json_t *reservation = NULL;
	char errstr[512] = "";
	struct es_db *db = es_http_db(req, errstr, sizeof(errstr));
	int found = -1;

	if (db)
		found = inventory_reservation_get(db, order_id, &reservation, errstr,
						  sizeof(errstr));
	if (found < 0)
		return unavailable(req, errstr);
	if (!found) /* the id is untrusted input: not echoed back */
		return es_http_reply_problem(req, 404, NULL, NULL, "no reservation for this order",
					     NULL);
	return es_http_reply_json(req, 200, reservation);
}

int inventory_routes(struct es_http *http, char *errstr, size_t errstr_size)
{
	if (es_http_route_for(http, ES_HTTP_OPERATOR, "GET", "/stock", get_stock, NULL, errstr,
			      errstr_size) ||
	    es_http_route_for(http, ES_HTTP_OPERATOR, "GET", "/reservations/{orderId}",
			      get_reservation, NULL, errstr, errstr_size))
		return -1;
	return 0;
}
