/*
 * sync-inventory: inventory-service's stock rules behind an HTTP call. The
 * same all-or-none reservation (inventory_stock_reserve, in sku order, one
 * order at a time under its advisory lock), the same stock, reservations
 * and rejections tables, seeded from the same catalog.
 *
 *   POST /reservations                {orderId, items: [{sku, quantity}]}
 *        201 {orderId, reservationId, items}
 *        409 {orderId, reason: "OUT_OF_STOCK", items: [{sku, requested, available}]}
 *        A second call for one order answers its reservation (or 409).
 *   POST /reservations/{orderId}/release   {reason}
 *        200 {orderId, released: true|false}; an order not reserved yet is
 *        barred from being reserved later.
 *
 * Configuration: es/service.h's variables (HTTP_PORT default 8182,
 * DATABASE_SCHEMA default sync_inventory), CATALOG_FILE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/catalog.h"
#include "es/log.h"
#include "es/service.h"
#include "inventory.h"
#include "sync.h"

#define SYNC_INVENTORY "sync-inventory"
#define SYNC_INVENTORY_PORT 8182

/* One reservation request, through its transaction (which may run again
 * after a deadlock: each run starts from the lines as parsed). */
struct reserve {
	const char *order_id;
	struct inventory_line *lines; /* owned */
	size_t n;
	unsigned status; /* 201 or 409 */
	json_t *reply; /* owned */
};

static int reserve_tx(struct es_db *db, void *arg, char *errstr, size_t errstr_size)
{
	struct reserve *r = arg;
	char reservation_id[ES_UUID_LEN + 1];
	json_t *items;
	int taken;

	json_decref(r->reply);
	r->reply = NULL;
	if (inventory_order_lock(db, r->order_id, errstr, errstr_size))
		return -1;
	switch (inventory_order_state(db, r->order_id, errstr, errstr_size)) {
	case INVENTORY_ORDER_ERROR:
		return -1;
	case INVENTORY_ORDER_CANCELLED:
		r->status = 409;
		r->reply = json_pack("{s:s,s:s,s:[]}", "orderId", r->order_id, "reason",
				     "CANCELLED", "items");
		return 0;
	case INVENTORY_ORDER_DECIDED:
		/* A repeated call: answer what was decided. */
		taken = inventory_reservation_get(db, r->order_id, &r->reply, errstr, errstr_size);
		if (taken < 0)
			return -1;
		r->status = taken ? 201 : 409;
		if (!taken)
			r->reply = json_pack("{s:s,s:s,s:[]}", "orderId", r->order_id, "reason",
					     "OUT_OF_STOCK", "items");
		return 0;
	case INVENTORY_ORDER_NEW:
		break;
	}
	taken = inventory_stock_reserve(db, r->lines, r->n, errstr, errstr_size);
	if (taken < 0)
		return -1;
	if (!taken) {
		items = inventory_lines_rejected_json(r->lines, r->n);
		if (!items ||
		    inventory_rejection_insert(db, r->order_id, items, errstr, errstr_size)) {
			json_decref(items);
			return -1;
		}
		r->status = 409;
		r->reply = json_pack("{s:s,s:s,s:o}", "orderId", r->order_id, "reason",
				     "OUT_OF_STOCK", "items", items);
		return 0;
	}
	items = inventory_lines_reserved_json(r->lines, r->n);
	es_uuid_new(reservation_id);
	if (!items || inventory_reservation_insert(db, r->order_id, reservation_id, items, errstr,
						   errstr_size)) {
		json_decref(items);
		return -1;
	}
	r->status = 201;
	r->reply = json_pack("{s:s,s:s,s:o}", "orderId", r->order_id, "reservationId",
			     reservation_id, "items", items);
	return 0;
}

static int post_reservation(struct es_http_request *req, void *arg)
{
	json_t *body = sync_body(req), *errors;
	struct reserve r = {0};
	char why[256], err[512];
	struct es_db *db;
	int rc = 0;

	if (!body)
		return 0;
	r.order_id = json_string_value(json_object_get(body, "orderId"));
	if (!r.order_id || !es_uuid_valid(r.order_id) ||
	    inventory_lines_parse(json_object_get(body, "items"), &r.lines, &r.n, why,
				  sizeof(why))) {
		errors = json_array();
		es_http_errors_add(errors, r.order_id ? "/items" : "/orderId",
				   r.order_id ? why : "must be a UUID");
		rc = es_http_reply_problem(req, 422, SYNC_PROBLEM("invalid-request"),
					   "Invalid request", NULL, errors);
		goto out;
	}
	db = es_http_db(req, err, sizeof(err));
	if (!db || es_db_tx(db, reserve_tx, &r, err, sizeof(err))) {
		rc = sync_unavailable(req, "the inventory database is unreachable");
		goto out;
	}
	rc = es_http_reply_json(req, r.status, r.reply);
	r.reply = NULL; /* stolen */
out:
	json_decref(r.reply);
	free(r.lines);
	json_decref(body);
	return rc;
}

struct release {
	const char *order_id;
	const char *reason;
	bool released;
};

static int release_tx(struct es_db *db, void *arg, char *errstr, size_t errstr_size)
{
	struct release *r = arg;
	char reservation_id[ES_UUID_LEN + 1];
	struct inventory_line *lines = NULL;
	json_t *items = NULL;
	size_t n;
	int rc;

	r->released = false;
	if (inventory_order_lock(db, r->order_id, errstr, errstr_size) ||
	    inventory_cancellation_insert(db, r->order_id, r->reason, errstr, errstr_size))
		return -1;
	rc = inventory_reservation_give_back(db, r->order_id, reservation_id, &items, errstr,
					     errstr_size);
	if (rc <= 0)
		return rc;
	rc = inventory_lines_parse(items, &lines, &n, errstr, errstr_size) ||
	     inventory_stock_give_back(db, lines, n, errstr, errstr_size);
	free(lines);
	json_decref(items);
	if (rc)
		return -1;
	r->released = true;
	return 0;
}

static int post_release(struct es_http_request *req, void *arg)
{
	json_t *body = sync_body(req);
	struct release r = {.order_id = es_http_param(req, "orderId")};
	char err[512];
	struct es_db *db;
	int rc;

	if (!body)
		return 0;
	r.reason = json_string_value(json_object_get(body, "reason"));
	if (!r.reason)
		r.reason = "CANCELLED";
	if (!es_uuid_valid(r.order_id)) {
		rc = es_http_reply_problem(req, 400, SYNC_PROBLEM("invalid-order-id"), NULL,
					   "the order id in the path is not a UUID", NULL);
		goto out;
	}
	db = es_http_db(req, err, sizeof(err));
	if (!db || es_db_tx(db, release_tx, &r, err, sizeof(err)))
		rc = sync_unavailable(req, "the inventory database is unreachable");
	else
		rc = es_http_reply_json(
			req, 200,
			json_pack("{s:s,s:b}", "orderId", r.order_id, "released", r.released));
	if (r.released)
		es_info("order %s: reservation released (%s)", r.order_id, r.reason);
out:
	json_decref(body);
	return rc;
}

static int seed(struct es_service *svc, char *errstr, size_t errstr_size)
{
	struct es_catalog cat;
	int added;

	if (es_catalog_load(&cat, errstr, errstr_size))
		return -1;
	added = inventory_stock_seed(svc->db, &cat, errstr, errstr_size);
	es_catalog_release(&cat);
	return added < 0 ? -1 : 0;
}

int main(void)
{
	const struct es_service_spec spec = {
		.name = SYNC_INVENTORY,
		.http_port = SYNC_INVENTORY_PORT,
		.migrations = inventory_migrations,
		.nmigrations = inventory_migrations_count,
		.http_only = true,
	};
	struct es_service svc;
	char errstr[512];
	int rc = 1;

	es_log_init(spec.name, ES_LOG_INFO);
	if (es_service_init(&svc, &spec, errstr, sizeof(errstr))) {
		es_error("cannot start: %s", errstr);
		return 1;
	}
	if (seed(&svc, errstr, sizeof(errstr)) ||
	    es_http_route(svc.http, "POST", "/reservations", post_reservation, NULL, errstr,
			  sizeof(errstr)) ||
	    es_http_route(svc.http, "POST", "/reservations/{orderId}/release", post_release, NULL,
			  errstr, sizeof(errstr)) ||
	    es_service_start(&svc, errstr, sizeof(errstr)))
		es_error("stopping: %s", errstr);
	else
		rc = es_service_serve(&svc);
	es_service_release(&svc);
	return rc;
}
