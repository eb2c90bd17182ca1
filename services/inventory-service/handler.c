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

static enum es_handler_result reserved(struct es_effect *fx)
{
	struct effect *e = fx->state;
	const struct es_event *ev = fx->ev;
	const char *order_id = ev->subject;
	enum es_handler_result r;
	json_t *items;

	items = inventory_lines_reserved_json(e->lines, e->n);
	if (!items)
		return es_effect_out_of_memory(fx);
	es_uuid_new(e->reservation_id);
	if (inventory_reservation_insert(fx->db, order_id, e->reservation_id, items, fx->reason,
					 sizeof(fx->reason))) {
		json_decref(items);
		return es_effect_db_failed(fx);
	}
	r = produce(fx, ES_INVENTORY_RESERVED,
		    json_pack("{s:s, s:s, s:o}", "orderId", order_id, "reservationId",
			      e->reservation_id, "items", items));
	if (r == ES_HANDLER_OK)
		e->outcome = OUTCOME_RESERVED;
	return r;
}

static enum es_handler_result rejected(struct es_effect *fx)
{
	struct effect *e = fx->state;
	const struct es_event *ev = fx->ev;
	const char *order_id = ev->subject;
	enum es_handler_result r;
	json_t *items;

	items = inventory_lines_rejected_json(e->lines, e->n);
	if (!items)
		return es_effect_out_of_memory(fx);
	if (inventory_rejection_insert(fx->db, order_id, items, fx->reason, sizeof(fx->reason))) {
		json_decref(items);
		return es_effect_db_failed(fx);
	}
	r = produce(fx, ES_INVENTORY_REJECTED,
		    json_pack("{s:s, s:s, s:o}", "orderId", order_id, "reason", "OUT_OF_STOCK",
			      "items", items));
	if (r == ES_HANDLER_OK)
		e->outcome = OUTCOME_REJECTED;
	return r;
}

/* OrderPlaced: all lines or none, once per order, nothing once cancelled. */
static enum es_handler_result place(struct es_effect *fx)
{
	struct effect *e = fx->state;
	const struct es_event *ev = fx->ev;
	int taken;

	effect_start(e);
	switch (inventory_order_state(fx->db, ev->subject, fx->reason, sizeof(fx->reason))) {
	case INVENTORY_ORDER_ERROR:
		return es_effect_db_failed(fx);
	case INVENTORY_ORDER_DECIDED:
		e->note = "the order was reserved or rejected before: nothing to do";
		return ES_HANDLER_OK;
	case INVENTORY_ORDER_CANCELLED:
		e->note = "the order was cancelled before it was placed: nothing reserved";
		return ES_HANDLER_OK;
	case INVENTORY_ORDER_NEW:
		break;
	}
	taken = inventory_stock_reserve(fx->db, e->lines, e->n, fx->reason, sizeof(fx->reason));
	if (taken < 0)
		return es_effect_db_failed(fx);
	if (taken)
		return reserved(fx);
	return rejected(fx);
}

/* The status of the order's reservation, when a cancel or a confirm found
 * none RESERVED to act on: why nothing changed. */
enum found {
	FOUND_NONE = 0,
	FOUND_RELEASED,
	FOUND_COMMITTED,
};

static int reservation_found(struct es_db *db, const char *order_id, enum found *found,
			     char *reason, size_t reason_size)
{
	json_t *reservation;
	const char *status;
	int rc;

	*found = FOUND_NONE;
	rc = inventory_reservation_get(db, order_id, &reservation, reason, reason_size);
	if (rc <= 0)
		return rc;
	status = json_string_value(json_object_get(reservation, "status"));
	if (status && !strcmp(status, "RELEASED"))
		*found = FOUND_RELEASED;
	else if (status && !strcmp(status, "COMMITTED"))
		*found = FOUND_COMMITTED;
	json_decref(reservation);
	return 0;
}

/* Gives the released reservation's items back to stock and announces it. */
static enum es_handler_result give_back(struct es_effect *fx, json_t *items)
{
	struct effect *e = fx->state;
	const struct es_event *ev = fx->ev;
	struct inventory_line *lines = NULL;
	enum es_handler_result r;
	char why[256];
	size_t n;

	if (inventory_lines_parse(items, &lines, &n, why, sizeof(why))) {
		snprintf(fx->reason, sizeof(fx->reason), "reservation %s of order %s: %s",
			 e->reservation_id, ev->subject, why);
		return ES_HANDLER_REJECT;
	}
	if (inventory_stock_give_back(fx->db, lines, n, fx->reason, sizeof(fx->reason))) {
		free(lines);
		return es_effect_db_failed(fx);
	}
	free(lines);
	r = produce(fx, ES_INVENTORY_RELEASED,
		    json_pack("{s:s, s:s, s:O}", "orderId", ev->subject, "reservationId",
			      e->reservation_id, "items", items));
	if (r == ES_HANDLER_OK)
		e->outcome = OUTCOME_RELEASED;
	return r;
}

/* OrderCancelled: release a RESERVED reservation once; remember the
 * cancellation in any case, for an OrderPlaced that comes later. */
static enum es_handler_result cancel(struct es_effect *fx)
{
	struct effect *e = fx->state;
	const struct es_event *ev = fx->ev;
	enum es_handler_result r;
	enum found found;
	json_t *items;
	int released;

	effect_start(e);
	if (inventory_cancellation_insert(fx->db, ev->subject, es_data_str(ev, "reason"),
					  fx->reason, sizeof(fx->reason)))
		return es_effect_db_failed(fx);
	released = inventory_reservation_give_back(fx->db, ev->subject, e->reservation_id, &items,
						   fx->reason, sizeof(fx->reason));
	if (released < 0)
		return es_effect_db_failed(fx);
	if (!released) {
		if (reservation_found(fx->db, ev->subject, &found, fx->reason, sizeof(fx->reason)))
			return es_effect_db_failed(fx);
		if (found == FOUND_RELEASED) {
			e->note = "the reservation was released before: nothing to do";
		} else if (found == FOUND_COMMITTED) {
			/* A confirmed order is terminal: the contract never
			 * cancels it, so this is an anomaly to look at. */
			e->note = "the order was confirmed: its stock stays taken";
			e->warn = true;
		} else {
			e->note = "no reservation yet: remembered, a later OrderPlaced "
				  "reserves nothing";
		}
		return ES_HANDLER_OK;
	}
	r = give_back(fx, items);
	json_decref(items);
	return r;
}

/* OrderConfirmed: the reserved stock is sold for good. */
static enum es_handler_result confirm(struct es_effect *fx)
{
	struct effect *e = fx->state;
	const struct es_event *ev = fx->ev;
	enum found found;
	int committed;

	effect_start(e);
	committed = inventory_reservation_commit(fx->db, ev->subject, e->reservation_id, fx->reason,
						 sizeof(fx->reason));
	if (committed < 0)
		return es_effect_db_failed(fx);
	if (committed) {
		e->outcome = OUTCOME_COMMITTED;
		return ES_HANDLER_OK;
	}
	if (reservation_found(fx->db, ev->subject, &found, fx->reason, sizeof(fx->reason)))
		return es_effect_db_failed(fx);
	if (found == FOUND_COMMITTED) {
		e->note = "the reservation was committed before: nothing to do";
	} else if (found == FOUND_RELEASED) {
		e->note = "OrderConfirmed for a released reservation: nothing done";
		e->warn = true;
	} else {
		e->note = "OrderConfirmed without a reservation: nothing done";
		e->warn = true;
	}
	return ES_HANDLER_OK;
}

int inventory_init(struct inventory *inv, const char *topic, struct es_metrics *metrics,
		   char *errstr, size_t errstr_size)
{
	static const char *const labels[] = {"outcome", NULL};
	static const char *const outcomes[] = {"reserved", "rejected", "released"};

	inv->topic = topic;
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

static void release(struct es_effect *fx)
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
	.before_effects = inventory_orders_lock,
	.committed = report,
	.release = release,
};
