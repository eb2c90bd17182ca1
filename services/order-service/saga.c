/*
 * The saga's decisions: confirm once payment and stock both succeeded,
 * cancel on the first failure or the deadline. Choreography: no one tells
 * payment or inventory what to do; they react to OrderConfirmed and
 * OrderCancelled by themselves (compensation).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "es/clock.h"
#include "es/dispatch.h"
#include "es/events.h"
#include "es/log.h"
#include "es/metrics.h"
#include "es/outbox.h"
#include "order.h"

#define SWEEP_INTERVAL_MS 500
/* Orders one sweep cancels at most; the SQL gets the same number as text. */
#define SWEEP_BATCH 50
#define SQL_NUMBER_(n) #n
#define SQL_NUMBER(n) SQL_NUMBER_(n)

enum saga_action order_saga_decide(const char *status, bool paid, bool reserved,
				   const char *event_type, const char **reason)
{
	*reason = NULL;
	/* A terminal order never changes again: late outcomes are only
	 * recorded (payment and inventory compensate by themselves). */
	if (strcmp(status, "PENDING"))
		return SAGA_NOTHING;
	if (!strcmp(event_type, ES_PAYMENT_PROCESSED))
		return reserved ? SAGA_CONFIRM : SAGA_REMEMBER;
	if (!strcmp(event_type, ES_INVENTORY_RESERVED))
		return paid ? SAGA_CONFIRM : SAGA_REMEMBER;
	if (!strcmp(event_type, ES_PAYMENT_FAILED)) {
		*reason = "PAYMENT_DECLINED";
		return SAGA_CANCEL;
	}
	if (!strcmp(event_type, ES_INVENTORY_REJECTED)) {
		*reason = "OUT_OF_STOCK";
		return SAGA_CANCEL;
	}
	return SAGA_NOTHING;
}

json_t *order_timeline_row(const struct es_event *ev)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "order_id", ev->subject, "event_id", ev->id,
			 "type", ev->type, "source", ev->source, "time", ev->time);
}

/* rows (order_timeline_row's, borrowed) into the timeline with one
 * statement. */
static int timeline_insert(struct es_db *db, const json_t *rows, char *errstr, size_t errstr_size)
{
	return es_db_exec_rows(db, ORDER_TIMELINE_INSERT_FROM("$1"), rows, 0, NULL, errstr,
			       errstr_size) < 0
		       ? -1
		       : 0;
}

int order_emit(struct es_db *db, struct es_effect *fx, const char *topic, const struct es_event *ev,
	       char *errstr, size_t errstr_size)
{
	json_t *row = order_timeline_row(ev);

	if (!row) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	if (!fx || !fx->outbox) {
		json_t *rows = json_pack("[o]", row);
		int rc = rows ? 0 : -1;

		if (!rows)
			snprintf(errstr, errstr_size, "out of memory");
		else
			rc = es_outbox_put(db, topic, ev, errstr, errstr_size) ||
			     timeline_insert(db, rows, errstr, errstr_size);
		json_decref(rows);
		return rc ? -1 : 0;
	}
	if (es_outbox_batch_add(fx->outbox, topic, ev, errstr, errstr_size)) {
		json_decref(row);
		return -1;
	}
	/* A run of the batch before this one may have left its own. */
	json_decref(fx->state);
	fx->state = row;
	return 0;
}

void order_saga_observe(struct order_app *app, const char *outcome, double seconds)
{
	es_histogram_observe(app->saga_seconds, (const char *[]){outcome}, seconds);
}

/* The words for OrderCancelled's detail. */
static void cancel_detail(const struct es_event *ev, char *buf, size_t size)
{
	json_t *items = json_object_get(ev->data, "items");
	size_t used = 0;

	if (!strcmp(ev->type, ES_PAYMENT_FAILED)) {
		snprintf(buf, size, "payment failed: %s", es_data_str(ev, "reason"));
		return;
	}
	used = (size_t)snprintf(buf, size, "not enough stock:");
	for (size_t i = 0; i < json_array_size(items) && used < size; i++) {
		json_t *it = json_array_get(items, i);

		used += (size_t)snprintf(buf + used, size - used,
					 "%s %s (requested %lld, available %lld)", i ? "," : "",
					 json_string_value(json_object_get(it, "sku")),
					 json_integer_value(json_object_get(it, "requested")),
					 json_integer_value(json_object_get(it, "available")));
	}
}

/* OrderCancelled for order_id (cause may be NULL; traceparent is the
 * order's), in the outbox and the timeline (order_emit; fx may be NULL). */
static int emit_cancelled(struct order_app *app, struct es_db *db, struct es_effect *fx,
			  const char *order_id, const char *reason, const char *detail,
			  const struct es_event *cause, const char *traceparent, char *errstr,
			  size_t errstr_size)
{
	struct es_event *ev = es_event_new(ORDER_SERVICE, ES_ORDER_CANCELLED, order_id, cause,
					   traceparent,
					   json_pack("{s:s,s:s,s:s}", "orderId", order_id, "reason",
						     reason, "detail", detail));
	int rc;

	if (!ev) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	rc = order_emit(db, fx, app->svc->topics.orders, ev, errstr, errstr_size);
	es_event_free(ev);
	if (rc == 0)
		es_info("order %s cancelled: %s (%s)", order_id, reason, detail);
	return rc;
}

int order_cancel_in_tx(struct order_app *app, struct es_db *db, const char *order_id,
		       const char *reason, const char *detail, double *saga_seconds, char *errstr,
		       size_t errstr_size)
{
	const char *params[3] = {order_id, reason, detail};
	PGresult *res;
	int result = -1;

	res = es_db_query(db,
			  "UPDATE orders SET status = 'CANCELLED', cancel_reason = $2,"
			  " cancel_detail = $3, updated_at = now()"
			  " WHERE order_id = $1 AND status = 'PENDING'"
			  " RETURNING traceparent,"
			  " extract(epoch FROM now() - created_at)::float8 AS age",
			  3, params, errstr, errstr_size);
	if (!res)
		return -1;
	if (PQntuples(res) == 0) {
		PQclear(res);
		return 0;
	}
	*saga_seconds = strtod(es_db_get(res, 0, "age"), NULL);
	if (emit_cancelled(app, db, NULL, order_id, reason, detail, NULL,
			   es_db_get(res, 0, "traceparent"), errstr, errstr_size) == 0)
		result = 1;
	PQclear(res);
	return result;
}

/* What one event did (fx->outcome), for the metric observed after the
 * commit; fx->value is then the saga's duration in seconds. */
enum outcome {
	OUTCOME_NONE = 0,
	OUTCOME_CONFIRMED,
	OUTCOME_CANCELLED,
};

/*
 * The orders a batch's events are about, locked and read in one query
 * before the effects (load_orders). The effects change them here only, and
 * only once they succeeded; before the commit, the orders that changed are
 * written back with one statement (write_batch).
 */
struct saga_order {
	const char *order_id; /* these point into the query's result */
	const char *status; /* or a literal, once changed */
	const char *total_cents;
	const char *currency;
	const char *traceparent;
	char *payment_id; /* owned; NULL while unknown */
	char *reservation_id; /* owned; NULL while unknown */
	const char *cancel_reason; /* a literal; NULL unless cancelled here */
	char *cancel_detail; /* owned; likewise */
	bool changed; /* by an effect of this run of the batch */
	double age; /* seconds since the order was placed */
};

struct saga_batch {
	PGresult *res;
	struct saga_order *orders;
	size_t n;
};

void order_saga_batch_clear(struct order_app *app)
{
	struct saga_batch *b = app->batch;

	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++) {
		free(b->orders[i].payment_id);
		free(b->orders[i].reservation_id);
		free(b->orders[i].cancel_detail);
	}
	free(b->orders);
	PQclear(b->res);
	free(b);
	app->batch = NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static struct saga_order *find_order(struct order_app *app, const char *order_id)
{
	for (size_t i = 0; app->batch && i < app->batch->n; i++) {
		if (!strcasecmp(app->batch->orders[i].order_id, order_id))
			return &app->batch->orders[i];
	}
	return NULL;
}

/*
 * before_effects: locks and reads the batch's orders in one query, in
 * order_id order (so that two transactions locking several orders cannot
 * deadlock), then records the batch's events in their orders' timelines in
 * one statement. An event about an order we do not know gets no timeline
 * row; its effect rejects it.
 */
static int load_orders(struct es_db *db, void *arg, struct es_effect *const *fresh, size_t n,
		       char *errstr, size_t errstr_size)
{
	struct order_app *app = arg;
	json_t *ids = json_array(), *rows = json_array();
	char *ids_text = NULL;
	struct saga_batch *b;
	int rc = -1;

	order_saga_batch_clear(app);
	b = calloc(1, sizeof(*b));
	for (size_t i = 0; ids && i < n; i++)
		json_array_append_new(ids, json_string(fresh[i]->ev->subject));
	ids_text = ids ? json_dumps(ids, JSON_COMPACT) : NULL;
	if (!b || !ids_text || !rows) {
		snprintf(errstr, errstr_size, "out of memory");
		free(b);
		goto out;
	}
	app->batch = b;
	b->res = es_db_query(
		db,
		ES_DB_PLAN_EACH_RUN
		"SELECT order_id::text AS order_id, status, payment_id, reservation_id,"
		" total_cents, currency, traceparent,"
		" extract(epoch FROM now() - created_at)::float8 AS age"
		" FROM orders WHERE order_id = ANY"
		" (ARRAY(SELECT i::uuid FROM json_array_elements_text($1::json) AS i))"
		" ORDER BY order_id FOR UPDATE",
		1, (const char *const[]){ids_text}, errstr, errstr_size);
	if (!b->res)
		goto out;
	b->orders = calloc((size_t)PQntuples(b->res) + 1, sizeof(*b->orders));
	if (!b->orders) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	for (int r = 0; r < PQntuples(b->res); r++) {
		struct saga_order *o = &b->orders[b->n++];

		o->order_id = es_db_get(b->res, r, "order_id");
		o->status = es_db_get(b->res, r, "status");
		o->total_cents = es_db_get(b->res, r, "total_cents");
		o->currency = es_db_get(b->res, r, "currency");
		o->traceparent = es_db_get(b->res, r, "traceparent");
		o->payment_id = dup_or_null(es_db_get(b->res, r, "payment_id"));
		o->reservation_id = dup_or_null(es_db_get(b->res, r, "reservation_id"));
		o->age = strtod(es_db_get(b->res, r, "age"), NULL);
	}
	for (size_t i = 0; i < n; i++) {
		if (find_order(app, fresh[i]->ev->subject))
			json_array_append_new(rows, order_timeline_row(fresh[i]->ev));
	}
	rc = timeline_insert(db, rows, errstr, errstr_size);
out:
	json_decref(ids);
	json_decref(rows);
	free(ids_text);
	return rc;
}

/* OrderConfirmed for the order, whose payment and reservation are known
 * now. */
static int confirm(struct order_app *app, struct es_effect *fx, const struct saga_order *order,
		   const char *payment_id, const char *reservation_id)
{
	const char *order_id = fx->ev->subject;
	struct es_event *out;
	int rc;

	out = es_event_new(ORDER_SERVICE, ES_ORDER_CONFIRMED, order_id, fx->ev, NULL,
			   json_pack("{s:s,s:s,s:s,s:I,s:s}", "orderId", order_id, "paymentId",
				     payment_id, "reservationId", reservation_id, "totalCents",
				     (json_int_t)strtoll(order->total_cents, NULL, 10), "currency",
				     order->currency));
	if (!out) {
		snprintf(fx->reason, sizeof(fx->reason), "out of memory");
		return -1;
	}
	rc = order_emit(fx->db, fx, app->svc->topics.orders, out, fx->reason, sizeof(fx->reason));
	es_event_free(out);
	if (rc == 0)
		es_info("order %s confirmed", order_id);
	return rc;
}

/* Replaces *field with value (owned), freeing what it held. */
static void replace(char **field, char *value)
{
	free(*field);
	*field = value;
}

/*
 * A payment or stock outcome: the saga's next step for its order, which
 * load_orders locked and read with the rest of the batch's. The step
 * changes the batch's copy of the order, and only once everything else it
 * does succeeded (a step that fails leaves the copy as it was); write_batch
 * stores the changed orders.
 */
static enum es_handler_result saga_step(struct es_effect *fx)
{
	struct order_app *app = fx->app;
	const struct es_event *ev = fx->ev;
	struct saga_order *order = find_order(app, ev->subject);
	bool paid = !strcmp(ev->type, ES_PAYMENT_PROCESSED);
	bool reserved = !strcmp(ev->type, ES_INVENTORY_RESERVED);
	const char *cancel_reason;
	char detail[512], *payment_id = NULL, *reservation_id = NULL, *copy = NULL;

	if (!order) {
		snprintf(fx->reason, sizeof(fx->reason), "%s for unknown order %s", ev->type,
			 ev->subject);
		return ES_HANDLER_REJECT;
	}
	switch (order_saga_decide(order->status, order->payment_id != NULL,
				  order->reservation_id != NULL, ev->type, &cancel_reason)) {
	case SAGA_NOTHING:
		return ES_HANDLER_OK;
	case SAGA_REMEMBER:
		copy = strdup(es_data_str(ev, paid ? "paymentId" : "reservationId"));
		if (!copy)
			goto oom;
		replace(paid ? &order->payment_id : &order->reservation_id, copy);
		break;
	case SAGA_CONFIRM:
		payment_id = strdup(paid ? es_data_str(ev, "paymentId") : order->payment_id);
		reservation_id = strdup(reserved ? es_data_str(ev, "reservationId")
						 : order->reservation_id);
		if (!payment_id || !reservation_id)
			goto oom;
		if (confirm(app, fx, order, payment_id, reservation_id)) {
			free(payment_id);
			free(reservation_id);
			return es_effect_db_failed(fx);
		}
		replace(&order->payment_id, payment_id);
		replace(&order->reservation_id, reservation_id);
		order->status = "CONFIRMED";
		fx->outcome = OUTCOME_CONFIRMED;
		fx->value = order->age;
		break;
	case SAGA_CANCEL:
		cancel_detail(ev, detail, sizeof(detail));
		copy = strdup(detail);
		if (!copy)
			goto oom;
		if (emit_cancelled(app, fx->db, fx, ev->subject, cancel_reason, detail, ev,
				   order->traceparent, fx->reason, sizeof(fx->reason))) {
			free(copy);
			return es_effect_db_failed(fx);
		}
		replace(&order->cancel_detail, copy);
		order->cancel_reason = cancel_reason;
		order->status = "CANCELLED";
		fx->outcome = OUTCOME_CANCELLED;
		fx->value = order->age;
		break;
	}
	order->changed = true;
	return ES_HANDLER_OK;
oom:
	free(payment_id);
	free(reservation_id);
	snprintf(fx->reason, sizeof(fx->reason), "out of memory");
	return ES_HANDLER_RETRY;
}

/*
 * before_commit: the orders the applied effects changed, with one
 * statement, then the timeline rows of the events they emitted (order_emit
 * kept each in fx->state), with another. An effect emits only when it
 * confirms or cancels; a run of the batch that was rolled back may have
 * left a row in fx->state, which its outcome, reset before each run, tells
 * apart.
 */
static int write_batch(struct es_db *db, void *arg, struct es_effect *const *applied, size_t n,
		       char *errstr, size_t errstr_size)
{
	struct order_app *app = arg;
	struct saga_batch *b = app->batch;
	json_t *orders = json_array(), *rows = json_array();
	int rc = -1;

	if (!orders || !rows) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	for (size_t i = 0; b && i < b->n; i++) {
		const struct saga_order *o = &b->orders[i];

		if (o->changed &&
		    json_array_append_new(orders, json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?}",
							    "order_id", o->order_id, "status",
							    o->status, "payment_id", o->payment_id,
							    "reservation_id", o->reservation_id,
							    "cancel_reason", o->cancel_reason,
							    "cancel_detail", o->cancel_detail))) {
			snprintf(errstr, errstr_size, "out of memory");
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (applied[i]->outcome != OUTCOME_NONE && applied[i]->state)
			json_array_append(rows, applied[i]->state);
	}
	/* The ANY lets the planner probe the key (see es_db_exec_rows). */
	if (es_db_exec_rows(
		    db,
		    ES_DB_PLAN_EACH_RUN
		    "UPDATE orders o SET status = r.status, payment_id = r.payment_id,"
		    " reservation_id = r.reservation_id, cancel_reason = r.cancel_reason,"
		    " cancel_detail = r.cancel_detail, updated_at = now()"
		    " FROM json_to_recordset($1::json) AS r(order_id uuid, status text,"
		    " payment_id text, reservation_id text, cancel_reason text,"
		    " cancel_detail text)"
		    " WHERE o.order_id = r.order_id AND o.order_id = ANY (ARRAY("
		    "SELECT k.order_id FROM json_to_recordset($1::json) AS k(order_id uuid)))",
		    orders, 0, NULL, errstr, errstr_size) < 0)
		goto out;
	rc = timeline_insert(db, rows, errstr, errstr_size);
out:
	json_decref(orders);
	json_decref(rows);
	return rc;
}

static void committed(struct es_effect *fx)
{
	if (fx->outcome != OUTCOME_NONE)
		order_saga_observe(fx->app,
				   fx->outcome == OUTCOME_CONFIRMED ? "confirmed" : "cancelled",
				   fx->value);
}

/* The outcomes of payment and inventory; every other known type (the
 * notifications, or our own events read back) needs nothing. */
static const struct es_dispatch_rule rules[] = {
	{ES_PAYMENT_PROCESSED, saga_step},
	{ES_PAYMENT_FAILED, saga_step},
	{ES_PAYMENT_REFUNDED, saga_step},
	{ES_INVENTORY_RESERVED, saga_step},
	{ES_INVENTORY_REJECTED, saga_step},
	{ES_INVENTORY_RELEASED, saga_step},
	{NULL, NULL},
};

static void release(struct es_effect *fx)
{
	json_decref(fx->state);
	fx->state = NULL;
}

const struct es_handlers order_saga_handlers = {
	.rules = rules,
	.before_effects = load_orders,
	.before_commit = write_batch,
	.committed = committed,
	.release = release,
};

/* ------------------------------------------------------------- timeout */

struct sweep {
	struct order_app *app;
	int cancelled;
	double seconds[SWEEP_BATCH];
};

static int sweep_tx(struct es_db *db, void *arg, char *errstr, size_t errstr_size)
{
	struct sweep *s = arg;
	char detail[128];
	PGresult *res;
	int result = -1;

	s->cancelled = 0;
	/* SKIP LOCKED: an order a handler or a request holds right now is
	 * left to them; the next sweep sees it again if still pending. */
	res = es_db_query(
		db,
		"SELECT order_id FROM orders WHERE status = 'PENDING' AND deadline < now()"
		" ORDER BY deadline LIMIT " SQL_NUMBER(SWEEP_BATCH) " FOR UPDATE SKIP LOCKED",
		0, NULL, errstr, errstr_size);
	if (!res)
		return -1;
	snprintf(detail, sizeof(detail), "no payment and stock outcome within %ld ms",
		 s->app->saga_timeout_ms);
	for (int i = 0; i < PQntuples(res); i++) {
		int rc = order_cancel_in_tx(s->app, db, es_db_get(res, i, "order_id"), "TIMEOUT",
					    detail, &s->seconds[s->cancelled], errstr, errstr_size);

		if (rc < 0)
			goto out;
		s->cancelled += rc;
	}
	result = 0;
out:
	PQclear(res);
	return result;
}

int order_saga_sweep(struct es_service *svc, void *arg, char *errstr, size_t errstr_size)
{
	struct order_app *app = arg;
	struct sweep s = {app, 0, {0}};
	char why[512];

	if (es_monotonic_ms() - app->last_sweep_ms < SWEEP_INTERVAL_MS || !es_db_ok(svc->db))
		return 0;
	app->last_sweep_ms = es_monotonic_ms();
	/* A failed sweep is retried at the next one; it never stops the
	 * daemon. */
	if (es_db_tx(svc->db, sweep_tx, &s, why, sizeof(why))) {
		es_warn("saga timeout sweep: %s", why);
		return 0;
	}
	for (int i = 0; i < s.cancelled; i++)
		order_saga_observe(app, "cancelled", s.seconds[i]);
	return 0;
}
