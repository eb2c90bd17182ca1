#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/events.h"
#include "es/inbox.h"
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
 * One event's effect. es_db_tx may run an effect more than once (after a
 * serialization failure or deadlock), so each run starts by clearing what
 * it reports; the handler reads it only after the transaction committed.
 */
struct effect {
	struct inventory *inv;
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

/* A database failure inside an effect. A unique violation can only be a
 * race that the next attempt sees decided, so it is worth a retry too. */
static enum es_handler_result db_failure(struct es_db *db)
{
	if (es_db_error_is_transient(db) || es_db_error_is_unique_violation(db))
		return ES_HANDLER_RETRY;
	return ES_HANDLER_REJECT;
}

static enum es_handler_result out_of_memory(char *reason, size_t reason_size)
{
	snprintf(reason, reason_size, "out of memory");
	return ES_HANDLER_RETRY;
}

/* Writes the event of type with data (stolen) reacting to cause into the
 * outbox, in the transaction in hand. */
static enum es_handler_result produce(struct effect *e, struct es_db *db,
				      const struct es_event *cause, const char *type, json_t *data,
				      char *reason, size_t reason_size)
{
	struct es_event *ev;
	int rc;

	ev = es_event_new(INVENTORY_SERVICE, type, cause->subject, cause, NULL, data);
	if (!ev)
		return out_of_memory(reason, reason_size);
	rc = es_outbox_put(db, e->inv->topic, ev, reason, reason_size);
	es_event_free(ev);
	return rc ? db_failure(db) : ES_HANDLER_OK;
}

static enum es_handler_result reserved(struct effect *e, struct es_db *db,
				       const struct es_event *ev, char *reason, size_t reason_size)
{
	const char *order_id = ev->subject;
	enum es_handler_result r;
	json_t *items;

	items = inventory_lines_reserved_json(e->lines, e->n);
	if (!items)
		return out_of_memory(reason, reason_size);
	es_uuid_new(e->reservation_id);
	if (inventory_reservation_insert(db, order_id, e->reservation_id, items, reason,
					 reason_size)) {
		json_decref(items);
		return db_failure(db);
	}
	r = produce(e, db, ev, ES_INVENTORY_RESERVED,
		    json_pack("{s:s, s:s, s:o}", "orderId", order_id, "reservationId",
			      e->reservation_id, "items", items),
		    reason, reason_size);
	if (r == ES_HANDLER_OK)
		e->outcome = OUTCOME_RESERVED;
	return r;
}

static enum es_handler_result rejected(struct effect *e, struct es_db *db,
				       const struct es_event *ev, char *reason, size_t reason_size)
{
	const char *order_id = ev->subject;
	enum es_handler_result r;
	json_t *items;

	items = inventory_lines_rejected_json(e->lines, e->n);
	if (!items)
		return out_of_memory(reason, reason_size);
	if (inventory_rejection_insert(db, order_id, items, reason, reason_size)) {
		json_decref(items);
		return db_failure(db);
	}
	r = produce(e, db, ev, ES_INVENTORY_REJECTED,
		    json_pack("{s:s, s:s, s:o}", "orderId", order_id, "reason", "OUT_OF_STOCK",
			      "items", items),
		    reason, reason_size);
	if (r == ES_HANDLER_OK)
		e->outcome = OUTCOME_REJECTED;
	return r;
}

/* OrderPlaced: all lines or none, once per order, nothing once cancelled. */
static enum es_handler_result place(struct es_db *db, const struct es_event *ev, void *arg,
				    char *reason, size_t reason_size)
{
	struct effect *e = arg;
	int taken;

	effect_start(e);
	if (inventory_order_lock(db, ev->subject, reason, reason_size))
		return db_failure(db);
	switch (inventory_order_state(db, ev->subject, reason, reason_size)) {
	case INVENTORY_ORDER_ERROR:
		return db_failure(db);
	case INVENTORY_ORDER_DECIDED:
		e->note = "the order was reserved or rejected before: nothing to do";
		return ES_HANDLER_OK;
	case INVENTORY_ORDER_CANCELLED:
		e->note = "the order was cancelled before it was placed: nothing reserved";
		return ES_HANDLER_OK;
	case INVENTORY_ORDER_NEW:
		break;
	}
	taken = inventory_stock_reserve(db, e->lines, e->n, reason, reason_size);
	if (taken < 0)
		return db_failure(db);
	if (taken)
		return reserved(e, db, ev, reason, reason_size);
	return rejected(e, db, ev, reason, reason_size);
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
static enum es_handler_result give_back(struct effect *e, struct es_db *db,
					const struct es_event *ev, json_t *items, char *reason,
					size_t reason_size)
{
	struct inventory_line *lines = NULL;
	enum es_handler_result r;
	char why[256];
	size_t n;

	if (inventory_lines_parse(items, &lines, &n, why, sizeof(why))) {
		snprintf(reason, reason_size, "reservation %s of order %s: %s", e->reservation_id,
			 ev->subject, why);
		return ES_HANDLER_REJECT;
	}
	if (inventory_stock_release(db, lines, n, reason, reason_size)) {
		free(lines);
		return db_failure(db);
	}
	free(lines);
	r = produce(e, db, ev, ES_INVENTORY_RELEASED,
		    json_pack("{s:s, s:s, s:O}", "orderId", ev->subject, "reservationId",
			      e->reservation_id, "items", items),
		    reason, reason_size);
	if (r == ES_HANDLER_OK)
		e->outcome = OUTCOME_RELEASED;
	return r;
}

/* OrderCancelled: release a RESERVED reservation once; remember the
 * cancellation in any case, for an OrderPlaced that comes later. */
static enum es_handler_result cancel(struct es_db *db, const struct es_event *ev, void *arg,
				     char *reason, size_t reason_size)
{
	struct effect *e = arg;
	enum es_handler_result r;
	enum found found;
	json_t *items;
	int released;

	effect_start(e);
	if (inventory_order_lock(db, ev->subject, reason, reason_size) ||
	    inventory_cancellation_insert(db, ev->subject, es_data_str(ev, "reason"), reason,
					  reason_size))
		return db_failure(db);
	released = inventory_reservation_release(db, ev->subject, e->reservation_id, &items, reason,
						 reason_size);
	if (released < 0)
		return db_failure(db);
	if (!released) {
		if (reservation_found(db, ev->subject, &found, reason, reason_size))
			return db_failure(db);
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
	r = give_back(e, db, ev, items, reason, reason_size);
	json_decref(items);
	return r;
}

/* OrderConfirmed: the reserved stock is sold for good. */
static enum es_handler_result confirm(struct es_db *db, const struct es_event *ev, void *arg,
				      char *reason, size_t reason_size)
{
	struct effect *e = arg;
	enum found found;
	int committed;

	effect_start(e);
	if (inventory_order_lock(db, ev->subject, reason, reason_size))
		return db_failure(db);
	committed = inventory_reservation_commit(db, ev->subject, e->reservation_id, reason,
						 reason_size);
	if (committed < 0)
		return db_failure(db);
	if (committed) {
		e->outcome = OUTCOME_COMMITTED;
		return ES_HANDLER_OK;
	}
	if (reservation_found(db, ev->subject, &found, reason, reason_size))
		return db_failure(db);
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
static void report(struct inventory *inv, const struct es_event *ev, const struct effect *e)
{
	static const char *const names[] = {
		[OUTCOME_RESERVED] = "reserved",
		[OUTCOME_REJECTED] = "rejected",
		[OUTCOME_RELEASED] = "released",
		[OUTCOME_COMMITTED] = "committed",
	};
	struct es_log_ctx ctx = {ev->subject, ev->id, NULL};
	char trace_id[33];

	if (es_traceparent_trace_id(ev->traceparent, trace_id) == 0)
		ctx.trace_id = trace_id;
	if (e->outcome == OUTCOME_NONE) {
		es_log(e->warn ? ES_LOG_WARN : ES_LOG_INFO, &ctx, "%s: %s", ev->type,
		       e->note ? e->note : "nothing to do");
		return;
	}
	es_log(ES_LOG_INFO, &ctx, "%s: stock %s (reservation %s)", ev->type, names[e->outcome],
	       e->reservation_id[0] ? e->reservation_id : "none");
	if (e->outcome != OUTCOME_COMMITTED)
		es_counter_inc(inv->reservations, (const char *[]){names[e->outcome]});
}

enum es_handler_result inventory_handle(struct inventory *inv, struct es_db *db,
					const struct es_event *ev, char *reason, size_t reason_size)
{
	struct effect e = {.inv = inv};
	enum es_handler_result r;
	es_effect_fn *fn;
	bool duplicate;
	char why[256];

	if (!es_event_type_known(ev->type)) {
		snprintf(reason, reason_size, "unknown event type %s", ev->type);
		return ES_HANDLER_REJECT;
	}
	if (!strcmp(ev->type, ES_ORDER_PLACED))
		fn = place;
	else if (!strcmp(ev->type, ES_ORDER_CANCELLED))
		fn = cancel;
	else if (!strcmp(ev->type, ES_ORDER_CONFIRMED))
		fn = confirm;
	else
		return ES_HANDLER_OK; /* another aggregate's event: not ours to act on */
	if (es_event_data_check(ev, reason, reason_size))
		return ES_HANDLER_REJECT;
	if (fn == place && inventory_lines_parse(json_object_get(ev->data, "items"), &e.lines, &e.n,
						 why, sizeof(why))) {
		snprintf(reason, reason_size, "OrderPlaced data: %s", why);
		return ES_HANDLER_REJECT;
	}
	r = es_inbox_process(db, INVENTORY_SERVICE, ev, fn, &e, &duplicate, reason, reason_size);
	if (r == ES_HANDLER_OK && !duplicate)
		report(inv, ev, &e);
	free(e.lines);
	return r;
}
