/*
 * handler: what inventory-service does with the events of the orders topic.
 *
 * Every effect runs inside the batch's transaction (es/dispatch.h), so the
 * stock and reservation rows, the event it produces (through the outbox)
 * and the inbox record of the event reacted to commit together or not at
 * all. The effects decide on the batch's copy of its orders and stock
 * (batch.c): before them, one statement locks the orders, one reads what
 * is known of them and one locks and reads the stock of their skus; before
 * the commit, one statement per kind of row writes what they changed,
 * however many events the batch holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/dispatch.h"
#include "es/events.h"
#include "es/log.h"
#include "es/outbox.h"
#include "inventory.h"

enum outcome {
	OUTCOME_NONE = 0, /* nothing changed (see the note) */
	OUTCOME_RESERVED,
	OUTCOME_REJECTED,
	OUTCOME_RELEASED,
	OUTCOME_COMMITTED,
};

/*
 * What one event's effect works with and reports (fx->state). Its
 * transaction may run more than once (a deadlock, a neighbour in the batch
 * that rejected), so each run starts by clearing what it reports; report()
 * reads it only after the commit.
 */
struct effect {
	struct inventory_line *lines; /* OrderPlaced: parsed before the transaction */
	size_t n;
	enum outcome outcome;
	const char *note; /* why nothing changed, for the log */
	bool warn; /* the note deserves a warning: the saga went off its path */
	char reservation_id[ES_UUID_LEN + 1];
};

static void effect_start(struct effect *e)
{
	e->outcome = OUTCOME_NONE;
	e->note = NULL;
	e->warn = false;
	e->reservation_id[0] = '\0';
}

/* Puts the event of type with data (stolen) reacting to fx->ev in the
 * outbox, in the transaction in hand. */
static enum es_handler_result produce(struct es_effect *fx, const char *type, json_t *data)
{
	const struct inventory *inv = fx->app;

	return es_effect_emit(fx, INVENTORY_SERVICE, inv->topic, type, data);
}

/* The batch's copy of the event's order; the load hook added every one. */
static json_t *order_of(struct es_effect *fx)
{
	struct inventory *inv = fx->app;
	json_t *order = inventory_batch_order(&inv->batch, fx->ev->subject);

	if (!order)
		snprintf(fx->reason, sizeof(fx->reason), "order %s was not read for the batch",
			 fx->ev->subject);
	return order;
}

static const char *status_of(json_t *order)
{
	return json_string_value(json_object_get(order, "status"));
}

/* Takes (sign -1) or gives back (sign 1) the lines' quantities, in the
 * batch's stock. 0, or -1 when out of memory. */
static int stock_add_lines(struct inventory_batch *b, const struct inventory_line *lines, size_t n,
			   int sign)
{
	for (size_t i = 0; i < n; i++) {
		if (inventory_batch_stock_add(b, lines[i].sku, sign * lines[i].quantity))
			return -1;
	}
	return 0;
}

static enum es_handler_result reserved(struct es_effect *fx, json_t *order)
{
	struct inventory *inv = fx->app;
	struct effect *e = fx->state;
	enum es_handler_result r;
	json_t *items;

	items = inventory_lines_reserved_json(e->lines, e->n);
	if (!items)
		return es_effect_out_of_memory(fx);
	es_uuid_new(e->reservation_id);
	r = produce(fx, ES_INVENTORY_RESERVED,
		    json_pack("{s:s, s:s, s:O}", "orderId", fx->ev->subject, "reservationId",
			      e->reservation_id, "items", items));
	if (r == ES_HANDLER_OK &&
	    (stock_add_lines(&inv->batch, e->lines, e->n, -1) ||
	     inventory_batch_reserve(&inv->batch, order, e->reservation_id, items)))
		r = es_effect_out_of_memory(fx);
	json_decref(items);
	if (r == ES_HANDLER_OK)
		e->outcome = OUTCOME_RESERVED;
	return r;
}

static enum es_handler_result rejected(struct es_effect *fx, json_t *order)
{
	struct inventory *inv = fx->app;
	struct effect *e = fx->state;
	enum es_handler_result r;
	json_t *items;

	items = inventory_lines_rejected_json(e->lines, e->n);
	if (!items)
		return es_effect_out_of_memory(fx);
	r = produce(fx, ES_INVENTORY_REJECTED,
		    json_pack("{s:s, s:s, s:O}", "orderId", fx->ev->subject, "reason",
			      "OUT_OF_STOCK", "items", items));
	if (r == ES_HANDLER_OK && inventory_batch_reject(&inv->batch, order, items))
		r = es_effect_out_of_memory(fx);
	json_decref(items);
	if (r == ES_HANDLER_OK)
		e->outcome = OUTCOME_REJECTED;
	return r;
}

/* OrderPlaced: all lines or none, once per order, nothing once cancelled.
 * The stock it sees is the batch's: what earlier events of the batch took
 * or gave back counts. */
static enum es_handler_result place(struct es_effect *fx)
{
	struct inventory *inv = fx->app;
	struct effect *e = fx->state;
	json_t *order = order_of(fx);
	bool enough = true;

	effect_start(e);
	if (!order)
		return ES_HANDLER_RETRY;
	if (status_of(order) || json_is_true(json_object_get(order, "rejected"))) {
		e->note = "the order was reserved or rejected before: nothing to do";
		return ES_HANDLER_OK;
	}
	if (json_is_true(json_object_get(order, "cancelled"))) {
		e->note = "the order was cancelled before it was placed: nothing reserved";
		return ES_HANDLER_OK;
	}
	for (size_t i = 0; i < e->n; i++) {
		e->lines[i].available = inventory_batch_available(&inv->batch, e->lines[i].sku);
		enough &= e->lines[i].available >= e->lines[i].quantity;
	}
	return enough ? reserved(fx, order) : rejected(fx, order);
}

/* Gives the order's RESERVED reservation back to stock, remembers the
 * cancellation, and announces the release. */
static enum es_handler_result release(struct es_effect *fx, json_t *order, const char *reason)
{
	struct inventory *inv = fx->app;
	struct effect *e = fx->state;
	json_t *items = json_object_get(order, "items");
	const char *rid = json_string_value(json_object_get(order, "reservation_id"));
	struct inventory_line *lines = NULL;
	enum es_handler_result r;
	char why[256];
	size_t n;

	snprintf(e->reservation_id, sizeof(e->reservation_id), "%s", rid ? rid : "");
	if (inventory_lines_parse(items, &lines, &n, why, sizeof(why))) {
		snprintf(fx->reason, sizeof(fx->reason), "reservation %s of order %s: %s",
			 e->reservation_id, fx->ev->subject, why);
		return ES_HANDLER_REJECT;
	}
	r = produce(fx, ES_INVENTORY_RELEASED,
		    json_pack("{s:s, s:s, s:O}", "orderId", fx->ev->subject, "reservationId",
			      e->reservation_id, "items", items));
	if (r == ES_HANDLER_OK && (inventory_batch_cancel(&inv->batch, order, reason) ||
				   stock_add_lines(&inv->batch, lines, n, 1) ||
				   inventory_batch_set_status(&inv->batch, order, "RELEASED")))
		r = es_effect_out_of_memory(fx);
	free(lines);
	if (r == ES_HANDLER_OK)
		e->outcome = OUTCOME_RELEASED;
	return r;
}

/* OrderCancelled: release a RESERVED reservation once; remember the
 * cancellation in any case, for an OrderPlaced that comes later. */
static enum es_handler_result cancel(struct es_effect *fx)
{
	struct inventory *inv = fx->app;
	struct effect *e = fx->state;
	const char *reason = es_data_str(fx->ev, "reason");
	json_t *order = order_of(fx);
	const char *status;

	effect_start(e);
	if (!order)
		return ES_HANDLER_RETRY;
	status = status_of(order);
	if (status && !strcmp(status, "RESERVED"))
		return release(fx, order, reason);
	if (inventory_batch_cancel(&inv->batch, order, reason))
		return es_effect_out_of_memory(fx);
	if (!status) {
		e->note = "no reservation yet: remembered, a later OrderPlaced reserves nothing";
	} else if (!strcmp(status, "RELEASED")) {
		e->note = "the reservation was released before: nothing to do";
	} else {
		/* A confirmed order is terminal: the contract never cancels
		 * it, so this is an anomaly to look at. */
		e->note = "the order was confirmed: its stock stays taken";
		e->warn = true;
	}
	return ES_HANDLER_OK;
}

/* OrderConfirmed: the reserved stock is sold for good. */
static enum es_handler_result confirm(struct es_effect *fx)
{
	struct inventory *inv = fx->app;
	struct effect *e = fx->state;
	json_t *order = order_of(fx);
	const char *status;

	effect_start(e);
	if (!order)
		return ES_HANDLER_RETRY;
	status = status_of(order);
	if (status && !strcmp(status, "RESERVED")) {
		snprintf(e->reservation_id, sizeof(e->reservation_id), "%s",
			 json_string_value(json_object_get(order, "reservation_id")));
		if (inventory_batch_set_status(&inv->batch, order, "COMMITTED"))
			return es_effect_out_of_memory(fx);
		e->outcome = OUTCOME_COMMITTED;
	} else if (status && !strcmp(status, "COMMITTED")) {
		e->note = "the reservation was committed before: nothing to do";
	} else {
		e->note = status ? "OrderConfirmed for a released reservation: nothing done"
				 : "OrderConfirmed without a reservation: nothing done";
		e->warn = true;
	}
	return ES_HANDLER_OK;
}

/* The skus whose stock an event may change: OrderPlaced's lines, and the
 * items of the RESERVED reservation an OrderCancelled would release.
 * 0, or -1 when out of memory. */
static int want_skus(struct inventory_batch *b, const struct es_effect *fx)
{
	const struct effect *e = fx->state;
	json_t *order, *item;
	const char *status;
	size_t i;

	for (i = 0; i < e->n; i++) {
		if (inventory_batch_want_sku(b, e->lines[i].sku))
			return -1;
	}
	if (strcmp(fx->ev->type, ES_ORDER_CANCELLED))
		return 0;
	order = inventory_batch_order(b, fx->ev->subject);
	status = status_of(order);
	if (!status || strcmp(status, "RESERVED"))
		return 0;
	json_array_foreach(json_object_get(order, "items"), i, item)
	{
		const char *sku = json_string_value(json_object_get(item, "sku"));

		if (sku && inventory_batch_want_sku(b, sku))
			return -1;
	}
	return 0;
}

/*
 * before_effects: locks the batch's orders (es_dispatch_lock_orders, so
 * that one order's events apply one batch at a time whatever instance
 * consumes them), reads what is known of them, then locks and reads the
 * stock of every sku the batch may change.
 */
static int load(struct es_db *db, void *app, struct es_effect *const *fresh, size_t n, char *errstr,
		size_t errstr_size)
{
	struct inventory_batch *b = &((struct inventory *)app)->batch;

	if (inventory_batch_start(b, errstr, errstr_size))
		return -1;
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (inventory_batch_add_order(b, fresh[i]->ev->subject))
			goto oom;
	}
	if (es_dispatch_lock_orders(db, INVENTORY_LOCK_SPACE, fresh, n, errstr, errstr_size) ||
	    inventory_batch_read_orders(db, b, errstr, errstr_size))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (want_skus(b, fresh[i]))
			goto oom;
	}
	return inventory_batch_read_stock(db, b, errstr, errstr_size);
oom:
	snprintf(errstr, errstr_size, "out of memory");
	return -1;
}

/* before_commit: what the effects changed, one statement per kind. */
static int write_back(struct es_db *db, void *app, struct es_effect *const *applied, size_t n,
		      char *errstr, size_t errstr_size)
{
	(void)applied;
	(void)n;
	return inventory_batch_write(db, &((struct inventory *)app)->batch, errstr, errstr_size);
}

int inventory_init(struct inventory *inv, const char *topic, struct es_metrics *metrics,
		   char *errstr, size_t errstr_size)
{
	static const char *const labels[] = {"outcome", NULL};
	static const char *const outcomes[] = {"reserved", "rejected", "released"};

	inv->topic = topic;
	memset(&inv->batch, 0, sizeof(inv->batch));
	inv->reservations = es_counter_register(
		metrics, "es_inventory_reservations_total",
		"Orders whose stock was reserved, rejected (out of stock) or released.", labels,
		errstr, errstr_size);
	if (!inv->reservations)
		return -1;
	/* Every outcome shows from the start, at 0, so rates work at once. */
	for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
		es_counter_add(inv->reservations, (const char *[]){outcomes[i]}, 0);
	return 0;
}

void inventory_release(struct inventory *inv)
{
	inventory_batch_release(&inv->batch);
}

/* Logs and counts what a committed effect did. */
static void report(struct es_effect *fx)
{
	static const char *const names[] = {
		[OUTCOME_RESERVED] = "reserved",
		[OUTCOME_REJECTED] = "rejected",
		[OUTCOME_RELEASED] = "released",
		[OUTCOME_COMMITTED] = "committed",
	};
	const struct inventory *inv = fx->app;
	const struct effect *e = fx->state;

	if (e->outcome == OUTCOME_NONE) {
		es_log(e->warn ? ES_LOG_WARN : ES_LOG_INFO, &fx->log, "%s: %s", fx->ev->type,
		       e->note ? e->note : "nothing to do");
		return;
	}
	es_log(ES_LOG_INFO, &fx->log, "%s: stock %s (reservation %s)", fx->ev->type,
	       names[e->outcome], e->reservation_id[0] ? e->reservation_id : "none");
	if (e->outcome != OUTCOME_COMMITTED)
		es_counter_inc(inv->reservations, (const char *[]){names[e->outcome]});
}

/* Outside the transaction: the effect's state, and OrderPlaced's lines
 * parsed (an order whose lines make no sense can never be reserved). */
static enum es_handler_result prepare(struct es_effect *fx)
{
	struct effect *e = calloc(1, sizeof(*e));
	char why[256];

	if (!e)
		return es_effect_out_of_memory(fx);
	fx->state = e;
	if (strcmp(fx->ev->type, ES_ORDER_PLACED))
		return ES_HANDLER_OK;
	if (inventory_lines_parse(json_object_get(fx->ev->data, "items"), &e->lines, &e->n, why,
				  sizeof(why))) {
		snprintf(fx->reason, sizeof(fx->reason), "OrderPlaced data: %s", why);
		return ES_HANDLER_REJECT;
	}
	return ES_HANDLER_OK;
}

static void effect_release(struct es_effect *fx)
{
	struct effect *e = fx->state;

	free(e->lines);
	free(e);
}

/* Other services' events are not ours to act on. */
static const struct es_dispatch_rule rules[] = {
	{ES_ORDER_PLACED, place},
	{ES_ORDER_CANCELLED, cancel},
	{ES_ORDER_CONFIRMED, confirm},
	{NULL, NULL},
};

const struct es_handlers inventory_handlers = {
	.rules = rules,
	.prepare = prepare,
	.before_effects = load,
	.before_commit = write_back,
	.committed = report,
	.release = effect_release,
};
