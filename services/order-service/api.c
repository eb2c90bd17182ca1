/*
 * The REST front door. Handlers run in libmicrohttpd's worker threads, each
 * request on a connection the server lends it (es_http_db), so requests
 * are served in parallel without sharing a connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/events.h"
#include "es/log.h"
#include "es/outbox.h"
#include "order.h"

#define LIST_DEFAULT_LIMIT 20
#define LIST_MAX_LIMIT 100
#define IDEMPOTENCY_KEY_MAX 255
#define TIME_SQL(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

static int unavailable(struct es_http_request *req, const char *why)
{
	es_warn("%s %s: %s", es_http_method(req), es_http_path(req), why);
	es_http_add_header(req, "Retry-After", "1");
	return es_http_reply_problem(req, 503, ES_PROBLEM("unavailable"), "Service Unavailable",
				     "the order database is unreachable; retry shortly", NULL);
}

static int bad_order_id(struct es_http_request *req)
{
	json_t *errors = json_array();

	es_http_errors_add(errors, "/orderId", "must be a UUID");
	return es_http_reply_problem(req, 400, ES_PROBLEM("invalid-order-id"), "Invalid order id",
				     "the order id in the path is not a UUID", errors);
}

/* ------------------------------------------------------------- products */

/* The customer a request is restricted to: the caller's own id for a
 * customer's token, NULL for an operator (or when auth is off). Another
 * customer's order is answered as no order at all (404, not 403), so that
 * a token does not even confirm that an order id exists. */
static const char *owner(const struct es_http_request *req)
{
	const struct es_caller *caller = es_http_caller(req);

	return caller->role == ES_AUTH_CUSTOMER ? caller->customer_id : NULL;
}

static int get_products(struct es_http_request *req, void *arg)
{
	char err[512];
	struct es_db *db = es_http_db(req, err, sizeof(err));
	json_t *list;
	PGresult *res;

	if (!db)
		return unavailable(req, err);
	res = es_db_query(db, "SELECT sku, name, price_cents, currency FROM products ORDER BY sku",
			  0, NULL, err, sizeof(err));
	if (!res)
		return unavailable(req, err);
	list = json_array();
	for (int i = 0; i < PQntuples(res); i++) {
		json_array_append_new(
			list,
			json_pack("{s:s,s:s,s:I,s:s}", "sku", es_db_get(res, i, "sku"), "name",
				  es_db_get(res, i, "name"), "priceCents",
				  (json_int_t)strtoll(es_db_get(res, i, "price_cents"), NULL, 10),
				  "currency", es_db_get(res, i, "currency")));
	}
	PQclear(res);
	return es_http_reply_json(req, 200, list);
}

/* ---------------------------------------------------------- POST /orders */

struct create {
	struct order_app *app;
	const struct order_request *order;
	const char *key; /* Idempotency-Key or NULL */
	const char *traceparent; /* the request's, or NULL */
	/* The answer. */
	unsigned status;
	char *body; /* JSON text (owned) */
	char order_id[ES_UUID_LEN + 1];
};

/* The order's lines as one JSON parameter for order_items. */
static char *lines_json(const struct order_request *o)
{
	json_t *lines = json_array();
	char *text;

	for (size_t i = 0; lines && i < o->nlines; i++) {
		if (json_array_append_new(lines,
					  json_pack("{s:i, s:s, s:i, s:I}", "line", (int)i, "sku",
						    o->lines[i].sku, "quantity",
						    o->lines[i].quantity, "unit_price_cents",
						    (json_int_t)o->lines[i].unit_price_cents))) {
			json_decref(lines);
			lines = NULL;
		}
	}
	text = lines ? json_dumps(lines, JSON_COMPACT) : NULL;
	json_decref(lines);
	return text;
}

/*
 * The whole of a POST in one statement, committed on its own: one round
 * trip. $1-$8 the order, $9 its lines, $10 the Idempotency-Key (NULL when
 * none), $11 the request it came with and $12 the reply, $13 OrderPlaced's
 * outbox row, $14 its timeline row.
 *
 * With a key: its transaction-scoped advisory lock marks it in flight, so
 * that a concurrent retry with the same key cannot take it (locked is
 * false: 409); the key is stored first, ON CONFLICT DO NOTHING, and the
 * order, its lines, the outbox row and the timeline row are written only
 * when it was new (a conflict is judged against committed rows, whatever
 * the statement's snapshot). created is false for a key already used: its
 * reply is read next (stored_reply).
 */
// clang-format off
static const char create_order_sql[] =
	"WITH gate AS (SELECT $10::text IS NULL"
	" OR pg_try_advisory_xact_lock(hashtext('idempotency:' || $10)) AS locked),"
	" k AS (INSERT INTO idempotency_keys (key, request_md5, order_id, response_status,"
	" response_body) SELECT $10, md5($11), $1, 202, $12 FROM gate"
	" WHERE gate.locked AND $10 IS NOT NULL ON CONFLICT (key) DO NOTHING RETURNING key),"
	" o AS (INSERT INTO orders (order_id, customer_id, customer_email,"
	" total_cents, currency, payment_token, traceparent, deadline)"
	" SELECT $1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8::bigint / 1000.0)"
	" FROM gate WHERE gate.locked AND ($10 IS NULL OR EXISTS (SELECT FROM k))"
	" RETURNING order_id),"
	" i AS (INSERT INTO order_items (order_id, line, sku, quantity, unit_price_cents)"
	" SELECT o.order_id, l.line, l.sku, l.quantity, l.unit_price_cents"
	" FROM o, json_to_recordset($9::json)"
	" AS l(line int, sku text, quantity int, unit_price_cents bigint)),"
	" ob AS (" ES_OUTBOX_INSERT_FROM("(SELECT $13::text FROM o)") "),"
	" t AS (" ORDER_TIMELINE_INSERT_FROM("(SELECT $14::text FROM o)") ")"
	" SELECT (SELECT locked FROM gate) AS locked, EXISTS (SELECT FROM o) AS created";
// clang-format on

/* The reply stored with a key already used: a replay, or 422 for another
 * body. 0, or -1 on error. */
static int stored_reply(struct create *c, struct es_db *db, char *errstr, size_t errstr_size)
{
	PGresult *res = es_db_query(
		db,
		"SELECT request_md5 = md5($2) AS same, order_id, response_status,"
		" response_body FROM idempotency_keys WHERE key = $1",
		2, (const char *const[]){c->key, c->order->canonical}, errstr, errstr_size);

	if (!res)
		return -1;
	free(c->body);
	c->body = NULL;
	if (PQntuples(res) != 1) {
		c->status = 409; /* gone since: a retry creates it anew */
	} else if (strcmp(es_db_get(res, 0, "same"), "t")) {
		c->status = 422;
	} else {
		c->status = (unsigned)strtoul(es_db_get(res, 0, "response_status"), NULL, 10);
		c->body = strdup(es_db_get(res, 0, "response_body"));
		snprintf(c->order_id, sizeof(c->order_id), "%s", es_db_get(res, 0, "order_id"));
	}
	PQclear(res);
	return 0;
}

/* Runs create_order_sql for placed (OrderPlaced) and sets c->status: 202
 * (created), 409 (key in flight) or what stored_reply says. 0, or -1 on
 * error. */
static int insert_order(struct create *c, struct es_db *db, const struct es_event *placed,
			char *errstr, size_t errstr_size)
{
	const struct order_request *o = c->order;
	char total[24], timeout[24];
	char *lines = lines_json(o);
	struct es_outbox_batch *outbox = es_outbox_batch_new();
	json_t *timeline = json_pack("[o]", order_timeline_row(placed));
	char *outbox_rows = NULL, *timeline_rows = NULL;
	PGresult *res = NULL;
	int rc = -1;

	if (outbox &&
	    es_outbox_batch_add(outbox, c->app->svc->topics.orders, placed, errstr, errstr_size))
		goto out;
	if (outbox)
		outbox_rows = es_outbox_batch_rows(outbox);
	if (timeline)
		timeline_rows = json_dumps(timeline, JSON_COMPACT);
	if (!lines || !outbox_rows || !timeline_rows) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	snprintf(total, sizeof(total), "%ld", o->total_cents);
	snprintf(timeout, sizeof(timeout), "%ld", c->app->saga_timeout_ms);
	res = es_db_query(db, create_order_sql, 14,
			  (const char *const[]){c->order_id, o->customer_id, o->customer_email,
						total, c->app->catalog.currency, o->payment_token,
						placed->traceparent, timeout, lines, c->key,
						o->canonical, c->body, outbox_rows, timeline_rows},
			  errstr, errstr_size);
	if (!res)
		goto out;
	if (!strcmp(es_db_get(res, 0, "created"), "t")) {
		c->status = 202;
		es_outbox_batch_stored(db, outbox);
		rc = 0;
	} else if (strcmp(es_db_get(res, 0, "locked"), "t")) {
		c->status = 409;
		rc = 0;
	} else {
		rc = stored_reply(c, db, errstr, errstr_size);
	}
out:
	PQclear(res);
	free(lines);
	free(outbox_rows);
	free(timeline_rows);
	json_decref(timeline);
	es_outbox_batch_free(outbox);
	return rc;
}

static json_t *placed_data(const struct create *c)
{
	const struct order_request *o = c->order;
	json_t *items = json_array();

	for (size_t i = 0; i < o->nlines; i++)
		json_array_append_new(items,
				      json_pack("{s:s,s:i,s:I}", "sku", o->lines[i].sku, "quantity",
						o->lines[i].quantity, "unitPriceCents",
						(json_int_t)o->lines[i].unit_price_cents));
	return json_pack("{s:s,s:s,s:s,s:o,s:I,s:s,s:s}", "orderId", c->order_id, "customerId",
			 o->customer_id, "customerEmail", o->customer_email, "items", items,
			 "totalCents", (json_int_t)o->total_cents, "currency",
			 c->app->catalog.currency, "paymentToken", o->payment_token);
}

/* Creates the order, or answers a retry with its key: one statement
 * outside any transaction (create_order_sql), a second only for a key
 * already used. 0 with c->status set, or -1 on error. */
static int create_order(struct create *c, struct es_db *db, char *errstr, size_t errstr_size)
{
	struct es_event *ev;
	json_t *reply;
	int rc;

	es_uuid_new(c->order_id);
	/* es_event_new keeps a valid traceparent and makes one otherwise; the
	 * order stores the event's, so that later events carry the same. */
	ev = es_event_new(ORDER_SERVICE, ES_ORDER_PLACED, c->order_id, NULL, c->traceparent,
			  placed_data(c));
	if (!ev) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	/* The reply first: a retry with the same key gets it back. */
	reply = json_pack("{s:s,s:s,s:I,s:s}", "orderId", c->order_id, "status", "PENDING",
			  "totalCents", (json_int_t)c->order->total_cents, "currency",
			  c->app->catalog.currency);
	c->body = reply ? json_dumps(reply, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(reply);
	if (!c->body) {
		es_event_free(ev);
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	rc = insert_order(c, db, ev, errstr, errstr_size);
	es_event_free(ev);
	return rc;
}

static bool key_valid(const char *key)
{
	size_t len = strlen(key);

	if (len == 0 || len > IDEMPOTENCY_KEY_MAX)
		return false;
	for (const char *p = key; *p; p++) {
		if (*p < 0x21 || *p > 0x7e)
			return false;
	}
	return true;
}

static int reply_created(struct es_http_request *req, struct create *c)
{
	char location[64];
	json_error_t jerr;

	snprintf(location, sizeof(location), "/orders/%s", c->order_id);
	es_http_add_header(req, "Location", location);
	return es_http_reply_json(req, c->status, json_loads(c->body, 0, &jerr));
}

static int post_order(struct es_http_request *req, void *arg)
{
	struct order_app *app = arg;
	struct order_request order;
	struct create c = {.app = app, .order = &order};
	char detail[512], err[512];
	size_t len;
	const char *body = es_http_body(req, &len);
	json_t *errors;
	unsigned status;
	struct es_db *db;
	int rc;

	if (!es_http_content_type_is(req, "application/json"))
		return es_http_reply_problem(req, 415, ES_PROBLEM("unsupported-media-type"), NULL,
					     "send the order as Content-Type: application/json",
					     NULL);
	c.key = es_http_header(req, "Idempotency-Key");
	if (c.key && !key_valid(c.key))
		return es_http_reply_problem(req, 400, ES_PROBLEM("invalid-idempotency-key"), NULL,
					     "Idempotency-Key must be 1 to 255 visible ASCII "
					     "characters",
					     NULL);
	status = order_request_parse(&order, body, len, &app->catalog, &errors, detail,
				     sizeof(detail));
	if (status)
		return es_http_reply_problem(req, status,
					     status == 400 ? ES_PROBLEM("malformed-request")
							   : ES_PROBLEM("invalid-order"),
					     status == 400 ? "Malformed request" : "Invalid order",
					     detail, errors);
	if (owner(req) && strcmp(order.customer_id, owner(req))) {
		order_request_release(&order);
		return es_http_reply_problem(req, 403, ES_PROBLEM("customer-mismatch"), NULL,
					     "customerId must be the customer the token names",
					     NULL);
	}
	c.traceparent = es_http_header(req, "traceparent");
	db = es_http_db(req, err, sizeof(err));
	if (!db) {
		order_request_release(&order);
		return unavailable(req, err);
	}
	if (create_order(&c, db, err, sizeof(err))) {
		order_request_release(&order);
		free(c.body);
		return unavailable(req, err);
	}
	order_request_release(&order);
	if (c.status == 409)
		rc = es_http_reply_problem(req, 409, ES_PROBLEM("idempotency-key-in-flight"), NULL,
					   "a request with this Idempotency-Key is still being "
					   "processed; retry shortly",
					   NULL);
	else if (c.status == 422)
		rc = es_http_reply_problem(req, 422, ES_PROBLEM("idempotency-key-reused"), NULL,
					   "this Idempotency-Key was used with a different body",
					   NULL);
	else
		rc = reply_created(req, &c);
	free(c.body);
	return rc;
}

/* ------------------------------------------------------- GET /orders/... */

static json_t *items_json(struct es_db *db, const char *order_id, char *err, size_t size)
{
	const char *params[1] = {order_id};
	PGresult *res = es_db_query(db,
				    "SELECT sku, quantity, unit_price_cents FROM order_items"
				    " WHERE order_id = $1 ORDER BY line",
				    1, params, err, size);
	json_t *items;

	if (!res)
		return NULL;
	items = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(
			items,
			json_pack("{s:s,s:I,s:I}", "sku", es_db_get(res, i, "sku"), "quantity",
				  (json_int_t)strtoll(es_db_get(res, i, "quantity"), NULL, 10),
				  "unitPriceCents",
				  (json_int_t)strtoll(es_db_get(res, i, "unit_price_cents"), NULL,
						      10)));
	PQclear(res);
	return items;
}

static json_t *timeline_json(struct es_db *db, const char *order_id, char *err, size_t size)
{
	const char *params[1] = {order_id};
	PGresult *res = es_db_query(
		db,
		"SELECT event_id, type, source, " TIME_SQL(
			"time") " AS t"
				" FROM timeline WHERE order_id = $1 ORDER BY time, seq",
		1, params, err, size);
	json_t *list;

	if (!res)
		return NULL;
	list = json_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s}", "id",
						      es_db_get(res, i, "event_id"), "type",
						      es_db_get(res, i, "type"), "source",
						      es_db_get(res, i, "source"), "time",
						      es_db_get(res, i, "t")));
	PQclear(res);
	return list;
}

#define ORDER_COLUMNS                                                                          \
	"order_id, customer_id, customer_email, status, cancel_reason, total_cents, currency," \
	" " TIME_SQL("created_at") " AS created, " TIME_SQL("updated_at") " AS updated"

/* One order as the API shows it, from a row of ORDER_COLUMNS. */
static json_t *order_json(struct es_db *db, PGresult *res, int row, bool timeline, char *err,
			  size_t size)
{
	const char *id = es_db_get(res, row, "order_id");
	const char *reason = es_db_get(res, row, "cancel_reason");
	json_t *items = items_json(db, id, err, size);
	json_t *o;

	if (!items)
		return NULL;
	o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:I,s:s,s:s,s:s}", "orderId", id, "customerId",
		      es_db_get(res, row, "customer_id"), "customerEmail",
		      es_db_get(res, row, "customer_email"), "status",
		      es_db_get(res, row, "status"), "cancelReason",
		      reason ? json_string(reason) : json_null(), "items", items, "totalCents",
		      (json_int_t)strtoll(es_db_get(res, row, "total_cents"), NULL, 10), "currency",
		      es_db_get(res, row, "currency"), "createdAt", es_db_get(res, row, "created"),
		      "updatedAt", es_db_get(res, row, "updated"));
	if (o && timeline) {
		json_t *t = timeline_json(db, id, err, size);

		if (!t) {
			json_decref(o);
			return NULL;
		}
		json_object_set_new(o, "timeline", t);
	}
	return o;
}

static int get_order(struct es_http_request *req, void *arg)
{
	const char *id = es_http_param(req, "orderId");
	const char *params[2] = {id, owner(req)};
	char err[512];
	struct es_db *db;
	PGresult *res;
	json_t *o;

	if (!es_uuid_valid(id))
		return bad_order_id(req);
	db = es_http_db(req, err, sizeof(err));
	if (!db)
		return unavailable(req, err);
	res = es_db_query(db,
			  "SELECT " ORDER_COLUMNS " FROM orders WHERE order_id = $1"
			  " AND ($2::text IS NULL OR customer_id = $2)",
			  2, params, err, sizeof(err));
	if (!res)
		return unavailable(req, err);
	if (PQntuples(res) == 0) {
		PQclear(res);
		return es_http_reply_problem(req, 404, ES_PROBLEM("order-not-found"), NULL,
					     "no order has this id", NULL);
	}
	o = order_json(db, res, 0, true, err, sizeof(err));
	PQclear(res);
	if (!o)
		return unavailable(req, err);
	return es_http_reply_json(req, 200, o);
}

static int list_orders(struct es_http_request *req, void *arg)
{
	const char *customer = es_http_query(req, "customerId");
	const char *status = es_http_query(req, "status");
	const char *limit_s = es_http_query(req, "limit");
	char limit[16], err[512];
	const char *params[3] = {customer && *customer ? customer : NULL,
				 status && *status ? status : NULL, limit};
	json_t *list;
	struct es_db *db;
	PGresult *res;
	long n = LIST_DEFAULT_LIMIT;

	if (params[0]) {
		/* The database refuses bytes that are not UTF-8; so do we, as
		 * the client's error it is (json_string checks the encoding). */
		json_t *text = json_string(params[0]);

		if (!text)
			return es_http_reply_problem(req, 400, ES_PROBLEM("invalid-query"), NULL,
						     "customerId must be UTF-8 text", NULL);
		json_decref(text);
	}
	if (params[1] && strcmp(status, "PENDING") && strcmp(status, "CONFIRMED") &&
	    strcmp(status, "CANCELLED"))
		return es_http_reply_problem(req, 400, ES_PROBLEM("invalid-query"), NULL,
					     "status must be PENDING, CONFIRMED or CANCELLED",
					     NULL);
	if (limit_s) {
		char *end;

		n = strtol(limit_s, &end, 10);
		if (!*limit_s || *end || n < 1 || n > LIST_MAX_LIMIT)
			return es_http_reply_problem(req, 400, ES_PROBLEM("invalid-query"), NULL,
						     "limit must be a whole number from 1 to 100",
						     NULL);
	}
	snprintf(limit, sizeof(limit), "%ld", n);
	if (owner(req)) {
		/* A customer sees only their own orders: a filter naming
		 * another customer finds none. */
		if (params[0] && strcmp(params[0], owner(req)))
			return es_http_reply_json(req, 200, json_pack("{s:[]}", "orders"));
		params[0] = owner(req);
	}
	db = es_http_db(req, err, sizeof(err));
	if (!db)
		return unavailable(req, err);
	res = es_db_query(db,
			  "SELECT " ORDER_COLUMNS " FROM orders"
			  " WHERE ($1::text IS NULL OR customer_id = $1)"
			  " AND ($2::text IS NULL OR status = $2)"
			  " ORDER BY created_at DESC, order_id LIMIT $3::int",
			  3, params, err, sizeof(err));
	if (!res)
		return unavailable(req, err);
	list = json_array();
	for (int i = 0; i < PQntuples(res); i++) {
		json_t *o = order_json(db, res, i, false, err, sizeof(err));

		if (!o) {
			json_decref(list);
			PQclear(res);
			return unavailable(req, err);
		}
		json_array_append_new(list, o);
	}
	PQclear(res);
	return es_http_reply_json(req, 200, json_pack("{s:o}", "orders", list));
}

/* --------------------------------------------------- POST .../cancel */

struct cancel {
	struct order_app *app;
	const char *order_id;
	const char *owner; /* owner(req): the order must be this customer's */
	int cancelled; /* 1 cancelled, 0 not pending */
	double seconds;
	char status[16]; /* the current status when not cancelled; "" if unknown */
};

static int cancel_tx(struct es_db *db, void *arg, char *errstr, size_t errstr_size)
{
	struct cancel *c = arg;
	const char *params[1] = {c->order_id};
	PGresult *res;

	c->status[0] = '\0';
	c->cancelled = 0;
	if (c->owner) {
		const char *mine[2] = {c->order_id, c->owner};

		/* Another customer's order is not there for this caller. */
		res = es_db_query(db,
				  "SELECT 1 FROM orders WHERE order_id = $1 AND customer_id = $2",
				  2, mine, errstr, errstr_size);
		if (!res)
			return -1;
		if (PQntuples(res) == 0) {
			PQclear(res);
			return 0;
		}
		PQclear(res);
	}
	c->cancelled = order_cancel_in_tx(c->app, db, c->order_id, "CUSTOMER_REQUEST",
					  "cancelled at the customer's request", &c->seconds,
					  errstr, errstr_size);
	if (c->cancelled != 0)
		return c->cancelled < 0 ? -1 : 0;
	res = es_db_query(db, "SELECT status FROM orders WHERE order_id = $1", 1, params, errstr,
			  errstr_size);
	if (!res)
		return -1;
	if (PQntuples(res))
		snprintf(c->status, sizeof(c->status), "%s", es_db_get(res, 0, "status"));
	PQclear(res);
	return 0;
}

static int cancel_order(struct es_http_request *req, void *arg)
{
	struct order_app *app = arg;
	struct cancel c = {
		.app = app, .order_id = es_http_param(req, "orderId"), .owner = owner(req)};
	char err[512], detail[128];
	struct es_db *db;

	if (!es_uuid_valid(c.order_id))
		return bad_order_id(req);
	db = es_http_db(req, err, sizeof(err));
	if (!db)
		return unavailable(req, err);
	if (es_db_tx(db, cancel_tx, &c, err, sizeof(err)))
		return unavailable(req, err);
	if (c.cancelled) {
		order_saga_observe(app, "cancelled", c.seconds);
		return es_http_reply_json(req, 202,
					  json_pack("{s:s,s:s,s:s}", "orderId", c.order_id,
						    "status", "CANCELLED", "cancelReason",
						    "CUSTOMER_REQUEST"));
	}
	if (!c.status[0])
		return es_http_reply_problem(req, 404, ES_PROBLEM("order-not-found"), NULL,
					     "no order has this id", NULL);
	snprintf(detail, sizeof(detail), "the order is already %s and can no longer change",
		 c.status);
	return es_http_reply_problem(req, 409, ES_PROBLEM("order-not-pending"), NULL, detail, NULL);
}

int order_api_routes(struct order_app *app, struct es_http *http, char *errstr, size_t errstr_size)
{
	/* The catalog is for everyone; orders for their customer (and the
	 * shop's operators) when tokens are asked for (es/auth.h). */
	if (es_http_route(http, "GET", "/products", get_products, app, errstr, errstr_size) ||
	    es_http_route_for(http, ES_HTTP_CUSTOMER, "POST", "/orders", post_order, app, errstr,
			      errstr_size) ||
	    es_http_route_for(http, ES_HTTP_CUSTOMER, "GET", "/orders", list_orders, app, errstr,
			      errstr_size) ||
	    es_http_route_for(http, ES_HTTP_CUSTOMER, "GET", "/orders/{orderId}", get_order, app,
			      errstr, errstr_size) ||
	    es_http_route_for(http, ES_HTTP_CUSTOMER, "POST", "/orders/{orderId}/cancel",
			      cancel_order, app, errstr, errstr_size))
		return -1;
	return 0;
}
