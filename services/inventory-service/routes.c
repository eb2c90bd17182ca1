/* The HTTP routes; each request borrows a connection from an es_dbpool
 * (one attempt when a new one is needed: a request waits for no database,
 * it answers 503). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/dbpool.h"
#include "es/log.h"
#include "inventory.h"

#define WEB_IDLE_CONNECTIONS 4

struct inventory_web {
	struct es_dbpool *pool;
};

struct inventory_web *inventory_web_new(const char *conninfo, const char *schema)
{
	struct inventory_web *web = calloc(1, sizeof(*web));

	if (!web)
		return NULL;
	web->pool = es_dbpool_new(conninfo, schema, WEB_IDLE_CONNECTIONS);
	if (!web->pool) {
		free(web);
		return NULL;
	}
	return web;
}

void inventory_web_free(struct inventory_web *web)
{
	if (!web)
		return;
	es_dbpool_free(web->pool);
	free(web);
}

static int unavailable(struct es_http_request *req, const char *why)
{
	es_warn("%s %s: database unavailable: %s", es_http_method(req), es_http_path(req), why);
	return es_http_reply_problem(req, 503, NULL, NULL, "the database is unavailable", NULL);
}

static int get_stock(struct es_http_request *req, void *arg)
{
	struct inventory_web *web = arg;
	json_t *stock = NULL;
	char errstr[512] = "";
	struct es_db *db;

	db = es_dbpool_get(web->pool, errstr, sizeof(errstr));
	if (db)
		stock = inventory_stock_list(db, errstr, sizeof(errstr));
	es_dbpool_put(web->pool, db);
	if (!stock)
		return unavailable(req, errstr);
	return es_http_reply_json(req, 200, stock);
}

static int get_reservation(struct es_http_request *req, void *arg)
{
	struct inventory_web *web = arg;
	const char *order_id = es_http_param(req, "orderId");
	json_t *reservation = NULL;
	char errstr[512] = "";
	struct es_db *db;
	int found = -1;

	db = es_dbpool_get(web->pool, errstr, sizeof(errstr));
	if (db)
		found = inventory_reservation_get(db, order_id, &reservation, errstr,
						  sizeof(errstr));
	es_dbpool_put(web->pool, db);
	if (found < 0)
		return unavailable(req, errstr);
	if (!found) /* the id is untrusted input: not echoed back */
		return es_http_reply_problem(req, 404, NULL, NULL, "no reservation for this order",
					     NULL);
	return es_http_reply_json(req, 200, reservation);
}

int inventory_web_routes(struct inventory_web *web, struct es_http *http, char *errstr,
			 size_t errstr_size)
{
	if (es_http_route(http, "GET", "/stock", get_stock, web, errstr, errstr_size) ||
	    es_http_route(http, "GET", "/reservations/{orderId}", get_reservation, web, errstr,
			  errstr_size))
		return -1;
	return 0;
}
