#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/log.h"
#include "inventory.h"

struct inventory_web {
	pthread_mutex_t lock; /* guards db: the pool's threads take turns */
	struct es_db *db; /* NULL until the first request */
	char *conninfo;
	char *schema;
};

struct inventory_web *inventory_web_new(const char *conninfo, const char *schema)
{
	struct inventory_web *web = calloc(1, sizeof(*web));

	if (!web)
		return NULL;
	web->conninfo = strdup(conninfo);
	web->schema = strdup(schema);
	if (!web->conninfo || !web->schema || pthread_mutex_init(&web->lock, NULL)) {
		free(web->conninfo);
		free(web->schema);
		free(web);
		return NULL;
	}
	return web;
}

void inventory_web_free(struct inventory_web *web)
{
	if (!web)
		return;
	es_db_free(web->db);
	pthread_mutex_destroy(&web->lock);
	free(web->conninfo);
	free(web->schema);
	free(web);
}

/* The connection, opened or reopened when needed; call with the lock held.
 * One attempt only: a request waits for no database, it answers 503. */
static struct es_db *web_db(struct inventory_web *web, char *errstr, size_t errstr_size)
{
	if (!web->db) {
		web->db = es_db_connect(web->conninfo, web->schema, 0, errstr, errstr_size);
		return web->db;
	}
	if (!es_db_ok(web->db) && es_db_reconnect(web->db, 0, errstr, errstr_size))
		return NULL;
	return web->db;
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

	pthread_mutex_lock(&web->lock);
	db = web_db(web, errstr, sizeof(errstr));
	if (db)
		stock = inventory_stock_list(db, errstr, sizeof(errstr));
	pthread_mutex_unlock(&web->lock);
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

	pthread_mutex_lock(&web->lock);
	db = web_db(web, errstr, sizeof(errstr));
	if (db)
		found = inventory_reservation_get(db, order_id, &reservation, errstr,
						  sizeof(errstr));
	pthread_mutex_unlock(&web->lock);
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
