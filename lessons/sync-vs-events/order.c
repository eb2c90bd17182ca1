/*
 * sync-order: the front door of the synchronous twin (see sync.h). Inside
 * POST /orders it calls payment, then inventory, then email, each over
 * HTTP, each waited for, and answers only after the last one: the seed
 * lesson's first sequence diagram.
 *
 *   POST /orders        the event shop's body, validated by the same code
 *                       (order_request_parse, services/order-service/
 *                       validate.c) against the same catalog
 *        201 {orderId, status: "CONFIRMED", totalCents, currency, paymentId,
 *             reservationId}
 *        201 {orderId, status: "CANCELLED", cancelReason: "PAYMENT_DECLINED"
 *             | "OUT_OF_STOCK", totalCents, currency}
 *        503 problem: a service of the chain did not answer (or failed); what
 *             the steps before it did was undone (refund, release), and
 *             the order is stored as FAILED
 *        400, 415, 422 as the event shop's front door
 *   GET /orders/{orderId}  {orderId, status, cancelReason, detail,
 *                           totalCents, currency, createdAt, updatedAt}
 *
 * The order row is written PENDING before the first call and updated after
 * the last, so a crash in between leaves a PENDING order with possibly a
 * charge and a reservation that nobody will ever undo: a synchronous chain
 * needs its own recovery for that, which this twin (like many real ones)
 * does not have.
 *
 * Configuration: es/service.h's variables (HTTP_PORT default 8180,
 * DATABASE_SCHEMA default sync_order), CATALOG_FILE, and
 *   PAYMENT_URL     http://127.0.0.1:8181   sync-payment
 *   INVENTORY_URL   http://127.0.0.1:8182   sync-inventory
 *   EMAIL_URL       http://127.0.0.1:8183   sync-email
 *   CALL_TIMEOUT_MS 10000                    each call's limit
 *
 * The blocks marked "chain step: email" are what the email step costs
 * this front door; adding one more service to the chain (shipping, say)
 * costs as much again, here (scripts/compare counts them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/catalog.h"
#include "es/config.h"
#include "es/log.h"
#include "es/service.h"
#include "order.h"
#include "sync.h"

#define SYNC_ORDER "sync-order"
#define SYNC_ORDER_PORT 8180
#define TIME_SQL(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

extern const struct es_migration sync_order_migrations[];
extern const size_t sync_order_migrations_count;

struct front {
	struct es_catalog catalog;
	const char *payment_url; /* the environment's */
	const char *inventory_url;
	/* chain step: email { */
	const char *email_url;
	/* } */
	long timeout_ms;
};

/* One checkout, from the validated request to the answer. */
struct checkout {
	const struct front *front;
	const struct order_request *order;
	char id[ES_UUID_LEN + 1];
	char payment_id[ES_UUID_LEN + 1];
	char reservation_id[ES_UUID_LEN + 1];
	bool charged, reserved;
	char why[512]; /* what broke the chain */
};

static int store_pending(struct es_db *db, const struct checkout *c, char *err, size_t size)
{
	const struct order_request *o = c->order;
	json_t *items = json_array();
	char total[24], *items_s;
	int rc;

	for (size_t i = 0; i < o->nlines; i++)
		json_array_append_new(items,
				      json_pack("{s:s,s:i,s:I}", "sku", o->lines[i].sku, "quantity",
						o->lines[i].quantity, "unitPriceCents",
						(json_int_t)o->lines[i].unit_price_cents));
	items_s = json_dumps(items, JSON_COMPACT);
	json_decref(items);
	snprintf(total, sizeof(total), "%ld", o->total_cents);
	rc = es_db_exec_one(db,
			    "INSERT INTO orders (order_id, customer_id, customer_email, "
			    "payment_token, items, total_cents, currency) "
			    "VALUES ($1, $2, $3, $4, $5::jsonb, $6::bigint, $7)",
			    7,
			    (const char *const[]){c->id, o->customer_id, o->customer_email,
						  o->payment_token, items_s, total,
						  c->front->catalog.currency},
			    err, size);
	free(items_s);
	return rc;
}

static int store_end(struct es_db *db, const struct checkout *c, const char *status,
		     const char *reason, const char *detail, char *err, size_t size)
{
	return es_db_exec_one(
		db,
		"UPDATE orders SET status = $2, cancel_reason = $3, detail = $4, "
		"payment_id = $5::uuid, reservation_id = $6::uuid, updated_at = now() "
		"WHERE order_id = $1",
		6,
		(const char *const[]){c->id, status, reason, detail,
				      c->charged ? c->payment_id : NULL,
				      c->reserved ? c->reservation_id : NULL},
		err, size);
}

/* A call of the chain; a service's own refusal (402, 409) is an answer,
 * anything else but want is the chain breaking. Returns the status, or -1
 * with c->why filled. */
static long call(struct checkout *c, const char *service, const char *url, const char *path,
		 json_t *body, long want, json_t **reply)
{
	char err[256];
	long status = sync_post(url, path, body, c->front->timeout_ms, reply, err, sizeof(err));

	json_decref(body);
	if (status < 0)
		snprintf(c->why, sizeof(c->why), "%s did not answer: %s", service, err);
	else if (status != want && status != 402 && status != 409)
		snprintf(c->why, sizeof(c->why), "%s answered HTTP %ld", service, status);
	else
		return status;
	json_decref(*reply);
	*reply = NULL;
	return -1;
}

/* Copies a UUID field of reply into out; false when there is none. */
static bool take_id(json_t *reply, const char *field, char out[ES_UUID_LEN + 1])
{
	const char *s = json_string_value(json_object_get(reply, field));

	if (!s || !es_uuid_valid(s))
		return false;
	snprintf(out, ES_UUID_LEN + 1, "%s", s);
	return true;
}

/* Compensation: undoes what the steps before a failure did. A call that
 * timed out may have done its work anyway, so both are asked whatever
 * their answer was. A failed compensation can only be logged: nobody will
 * try it again. */
static void undo(struct checkout *c, bool release, const char *reason)
{
	char err[256];
	json_t *reply = NULL;
	char path[128];

	if (release) {
		snprintf(path, sizeof(path), "/reservations/%s/release", c->id);
		if (sync_post(c->front->inventory_url, path, json_pack("{s:s}", "reason", reason),
			      c->front->timeout_ms, &reply, err, sizeof(err)) != 200)
			es_error("order %s: the reservation could not be released: %s", c->id, err);
		json_decref(reply);
		reply = NULL;
		c->reserved = false;
	}
	if (sync_post(c->front->payment_url, "/refunds",
		      json_pack("{s:s,s:s}", "orderId", c->id, "reason", reason),
		      c->front->timeout_ms, &reply, err, sizeof(err)) != 200)
		es_error("order %s: the charge could not be refunded: %s", c->id, err);
	json_decref(reply);
	c->charged = false;
}

/* The chain. Returns "CONFIRMED", or "CANCELLED" with *reason set, or
 * NULL when it broke (c->why says where; what it did is undone). */
static const char *chain(struct checkout *c, const char **reason)
{
	const struct front *f = c->front;
	const struct order_request *o = c->order;
	json_t *reply = NULL, *items = json_array();
	long status;

	/* 1. payment */
	status = call(c, "sync-payment", f->payment_url, "/charges",
		      json_pack("{s:s,s:s,s:I,s:s}", "orderId", c->id, "paymentToken",
				o->payment_token, "totalCents", (json_int_t)o->total_cents,
				"currency", f->catalog.currency),
		      200, &reply);
	c->charged = status == 200 && take_id(reply, "paymentId", c->payment_id);
	json_decref(reply);
	if (status == 402) {
		*reason = "PAYMENT_DECLINED";
		json_decref(items);
		return "CANCELLED";
	}
	if (!c->charged) {
		json_decref(items);
		undo(c, false, "FAILED");
		return NULL;
	}
	/* 2. inventory */
	for (size_t i = 0; i < o->nlines; i++)
		json_array_append_new(items, json_pack("{s:s,s:i}", "sku", o->lines[i].sku,
						       "quantity", o->lines[i].quantity));
	status = call(c, "sync-inventory", f->inventory_url, "/reservations",
		      json_pack("{s:s,s:o}", "orderId", c->id, "items", items), 201, &reply);
	c->reserved = status == 201 && take_id(reply, "reservationId", c->reservation_id);
	json_decref(reply);
	if (status == 409) {
		undo(c, false, "OUT_OF_STOCK");
		*reason = "OUT_OF_STOCK";
		return "CANCELLED";
	}
	if (!c->reserved) {
		undo(c, true, "FAILED");
		return NULL;
	}
	/* chain step: email { */
	status = call(c, "sync-email", f->email_url, "/emails",
		      json_pack("{s:s,s:s,s:s,s:I,s:s}", "orderId", c->id, "template",
				"order-confirmed", "to", o->customer_email, "totalCents",
				(json_int_t)o->total_cents, "currency", f->catalog.currency),
		      200, &reply);
	json_decref(reply);
	if (status != 200) {
		if (status > 0)
			snprintf(c->why, sizeof(c->why), "sync-email answered HTTP %ld", status);
		undo(c, true, "FAILED");
		return NULL;
	}
	/* } */
	return "CONFIRMED";
}

static int post_order(struct es_http_request *req, void *arg)
{
	const struct front *f = arg;
	struct order_request order;
	struct checkout c = {.front = f, .order = &order};
	char detail[512], err[512], location[64];
	size_t len;
	const char *body = es_http_body(req, &len), *status, *reason = NULL;
	struct es_db *db;
	json_t *errors;
	unsigned bad;
	int rc;

	if (!es_http_content_type_is(req, "application/json"))
		return es_http_reply_problem(req, 415, SYNC_PROBLEM("unsupported-media-type"), NULL,
					     "send the order as Content-Type: "
					     "application/json",
					     NULL);
	bad = order_request_parse(&order, body, len, &f->catalog, &errors, detail, sizeof(detail));
	if (bad)
		return es_http_reply_problem(req, bad,
					     bad == 400 ? SYNC_PROBLEM("malformed-request")
							: SYNC_PROBLEM("invalid-order"),
					     bad == 400 ? "Malformed request" : "Invalid order",
					     detail, errors);
	es_uuid_new(c.id);
	db = es_http_db(req, err, sizeof(err));
	if (!db || store_pending(db, &c, err, sizeof(err))) {
		order_request_release(&order);
		return sync_unavailable(req, "the order database is unreachable");
	}
	status = chain(&c, &reason);
	order_request_release(&order);
	/* The connection may have gone while we waited on the chain. */
	db = es_db_ok(db) ? db : es_http_db(req, err, sizeof(err));
	if (!db || store_end(db, &c, status ? status : "FAILED", reason, status ? NULL : c.why, err,
			     sizeof(err)))
		return sync_unavailable(req, "the order database is unreachable");
	if (!status) {
		es_warn("order %s failed: %s", c.id, c.why);
		es_http_add_header(req, "Retry-After", "1");
		return es_http_reply_problem(req, 503, SYNC_PROBLEM("chain-broken"),
					     "Service Unavailable", c.why, NULL);
	}
	snprintf(location, sizeof(location), "/orders/%s", c.id);
	es_http_add_header(req, "Location", location);
	rc = es_http_reply_json(req, 201,
				json_pack("{s:s,s:s,s:s?,s:I,s:s,s:s?,s:s?}", "orderId", c.id,
					  "status", status, "cancelReason", reason, "totalCents",
					  (json_int_t)order.total_cents, "currency",
					  f->catalog.currency, "paymentId",
					  c.charged ? c.payment_id : NULL, "reservationId",
					  c.reserved ? c.reservation_id : NULL));
	return rc;
}

static int get_order(struct es_http_request *req, void *arg)
{
	static const char sql[] =
		"SELECT order_id::text AS order_id, status, cancel_reason, detail, total_cents, "
		"currency, " TIME_SQL("created_at") " AS created_at, " TIME_SQL(
			"updated_at") " AS updated_at FROM orders WHERE order_id = $1::uuid";
	const char *id = es_http_param(req, "orderId");
	struct es_db *db;
	char err[512];
	PGresult *res;
	int rc;

	if (!es_uuid_valid(id))
		return es_http_reply_problem(req, 400, SYNC_PROBLEM("invalid-order-id"), NULL,
					     "the order id in the path is not a UUID", NULL);
	db = es_http_db(req, err, sizeof(err));
	res = db ? es_db_query(db, sql, 1, (const char *const[]){id}, err, sizeof(err)) : NULL;
	if (!res)
		return sync_unavailable(req, "the order database is unreachable");
	if (PQntuples(res) == 0)
		rc = es_http_reply_problem(req, 404, SYNC_PROBLEM("order-not-found"), NULL,
					   "no order with this id", NULL);
	else
		rc = es_http_reply_json(
			req, 200,
			json_pack("{s:s,s:s,s:s?,s:s?,s:I,s:s,s:s,s:s}", "orderId",
				  es_db_get(res, 0, "order_id"), "status",
				  es_db_get(res, 0, "status"), "cancelReason",
				  es_db_get(res, 0, "cancel_reason"), "detail",
				  es_db_get(res, 0, "detail"), "totalCents",
				  (json_int_t)strtoll(es_db_get(res, 0, "total_cents"), NULL, 10),
				  "currency", es_db_get(res, 0, "currency"), "createdAt",
				  es_db_get(res, 0, "created_at"), "updatedAt",
				  es_db_get(res, 0, "updated_at")));
	PQclear(res);
	return rc;
}

static int front_init(struct front *f, char *errstr, size_t errstr_size)
{
	f->payment_url = es_config_str("PAYMENT_URL", "http://127.0.0.1:8181");
	f->inventory_url = es_config_str("INVENTORY_URL", "http://127.0.0.1:8182");
	/* chain step: email { */
	f->email_url = es_config_str("EMAIL_URL", "http://127.0.0.1:8183");
	/* } */
	if (es_config_long("CALL_TIMEOUT_MS", 10000, 1, 600000, &f->timeout_ms, errstr,
			   errstr_size))
		return -1;
	return es_catalog_load(&f->catalog, errstr, errstr_size);
}

int main(void)
{
	const struct es_service_spec spec = {
		.name = SYNC_ORDER,
		.http_port = SYNC_ORDER_PORT,
		.migrations = sync_order_migrations,
		.nmigrations = sync_order_migrations_count,
		.http_only = true,
	};
	struct es_service svc;
	struct front f = {0};
	char errstr[512];
	int rc = 1;

	es_log_init(spec.name, ES_LOG_INFO);
	if (front_init(&f, errstr, sizeof(errstr)) ||
	    es_service_init(&svc, &spec, errstr, sizeof(errstr))) {
		es_error("cannot start: %s", errstr);
		es_catalog_release(&f.catalog);
		return 1;
	}
	es_info("the chain: payment %s, inventory %s, email %s", f.payment_url, f.inventory_url,
		f.email_url);
	if (sync_call_init()) {
		es_error("stopping: libcurl could not start");
	} else if (es_http_route(svc.http, "POST", "/orders", post_order, &f, errstr,
				 sizeof(errstr)) ||
		   es_http_route(svc.http, "GET", "/orders/{orderId}", get_order, &f, errstr,
				 sizeof(errstr)) ||
		   es_service_start(&svc, errstr, sizeof(errstr))) {
		es_error("stopping: %s", errstr);
	} else {
		rc = es_service_serve(&svc);
	}
	es_service_release(&svc);
	sync_call_release();
	es_catalog_release(&f.catalog);
	return rc;
}
