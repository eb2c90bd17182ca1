/*
 * handler: what shipping-service does with the events of the orders
 * topic, and the simulated carrier that moves shipments along.
 *
 * Every change is the same three moves: load the stream (and fold it),
 * decide (shipment.c), append what was decided (stream.c). The effects
 * run inside the batch's transaction (es/dispatch.h), so the appended
 * event, its outbox row and the inbox record of the event reacted to
 * commit together or not at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/clock.h"
#include "es/events.h"
#include "es/log.h"
#include "shipping.h"

/* How often the simulated carrier looks for due steps, and how many it
 * takes in one transaction. */
#define SWEEP_INTERVAL_MS 100
#define SWEEP_BATCH 64
/* How long a shipment that cannot move on is put off (see put_off). */
#define PUT_OFF_S "3600"

static const char *const outcome_labels[] = {
	[SHIPPING_OUTCOME_CREATED] = "created",
	[SHIPPING_OUTCOME_DISPATCHED] = "dispatched",
	[SHIPPING_OUTCOME_DELIVERED] = "delivered",
	[SHIPPING_OUTCOME_CANCELLED] = "cancelled",
};

void shipping_app_init(struct shipping_app *app, const char *shipments_topic, long delay_ms)
{
	memset(app, 0, sizeof(*app));
	app->shipments_topic = shipments_topic;
	app->delay_ms = delay_ms;
}

int shipping_metrics_register(struct shipping_app *app, struct es_metrics *reg, char *errstr,
			      size_t errstr_size)
{
	static const char *const labels[] = {"event", NULL};
	struct es_counter *c;

	c = es_counter_register(
		reg, "es_shipments_total",
		"Shipment events appended: created, dispatched, delivered, cancelled.", labels,
		errstr, errstr_size);
	if (!c)
		return -1;
	for (int o = SHIPPING_OUTCOME_CREATED; o <= SHIPPING_OUTCOME_CANCELLED; o++)
		es_counter_add(c, (const char *const[]){outcome_labels[o]}, 0);
	app->counter = c;
	return 0;
}

static enum shipping_outcome outcome_of(const char *type)
{
	if (!strcmp(type, ES_SHIPMENT_CREATED))
		return SHIPPING_OUTCOME_CREATED;
	if (!strcmp(type, ES_SHIPMENT_DISPATCHED))
		return SHIPPING_OUTCOME_DISPATCHED;
	if (!strcmp(type, ES_SHIPMENT_DELIVERED))
		return SHIPPING_OUTCOME_DELIVERED;
	return SHIPPING_OUTCOME_CANCELLED;
}

/* The decision's event, appended; or, when there is none, the reason why
 * in the log. */
static enum es_handler_result append_decided(struct es_effect *fx, struct shipment *s,
					     const char *type, json_t *data, const char *why)
{
	struct shipping_app *app = fx->app;
	enum es_handler_result r;

	if (!type) {
		es_log(ES_LOG_INFO, &fx->log, "%s: %s", fx->ev->type, why);
		return ES_HANDLER_OK;
	}
	r = shipping_stream_append(fx, s, fx->ev->subject, app->shipments_topic, app->delay_ms,
				   type, data, fx->ev);
	if (r != ES_HANDLER_OK)
		return r;
	fx->outcome = outcome_of(type);
	es_log(ES_LOG_INFO, &fx->log, "%s (version %d): %s", type, s->version, why);
	return ES_HANDLER_OK;
}

/* OrderConfirmed: the order gets its shipment, once. */
static enum es_handler_result on_order_confirmed(struct es_effect *fx)
{
	char shipment_id[ES_UUID_LEN + 1];
	struct shipment s;
	const char *type, *why;
	json_t *data;

	if (shipping_stream_load(fx->db, fx->ev->subject, &s, NULL, fx->reason, sizeof(fx->reason)))
		return es_effect_db_failed(fx);
	/* A fresh id is safe: a retry of this transaction folds the stream
	 * again and, if the first attempt committed, decides nothing. */
	es_uuid_new(shipment_id);
	type = shipment_decide_confirmed(&s, fx->ev->subject, shipment_id, &data, &why);
	return append_decided(fx, &s, type, data, why);
}

/* OrderCancelled: stops a shipment that has not left yet. */
static enum es_handler_result on_order_cancelled(struct es_effect *fx)
{
	struct shipment s;
	const char *type, *why;
	json_t *data;

	if (shipping_stream_load(fx->db, fx->ev->subject, &s, NULL, fx->reason, sizeof(fx->reason)))
		return es_effect_db_failed(fx);
	type = shipment_decide_cancelled(&s, fx->ev->subject, es_data_str(fx->ev, "reason"), &data,
					 &why);
	return append_decided(fx, &s, type, data, why);
}

static void committed(struct es_effect *fx)
{
	struct shipping_app *app = fx->app;

	if (fx->outcome != SHIPPING_OUTCOME_NONE && app->counter)
		es_counter_inc(app->counter, (const char *const[]){outcome_labels[fx->outcome]});
}

/* OrderPlaced needs nothing: only a confirmed order is shipped. */
static const struct es_dispatch_rule rules[] = {
	{ES_ORDER_CONFIRMED, on_order_confirmed},
	{ES_ORDER_CANCELLED, on_order_cancelled},
	{NULL, NULL},
};

const struct es_handlers shipping_handlers = {
	.rules = rules,
	.committed = committed,
};

/* ---------------------------------------------------------------- sweep */

struct sweep {
	struct shipping_app *app;
	int steps;
	enum shipping_outcome outcomes[SWEEP_BATCH];
};

/*
 * A shipment whose stream does not fold, or whose next event this code
 * refuses, will not move on by itself however often it is swept: its step
 * is put off an hour, loudly, so that it does not hold up the shipments
 * due after it (an operator mends the stream; the row then comes due).
 */
static int put_off(struct es_db *db, const struct es_log_ctx *log, const char *why, char *errstr,
		   size_t errstr_size)
{
	es_log(ES_LOG_ERROR, log, "shipment sweep: %s; its next step is put off %s s", why,
	       PUT_OFF_S);
	return es_db_exec(
		       db,
		       "UPDATE shipment_due SET due_at = now() + $2::bigint * interval '1 second' "
		       "WHERE order_id = $1",
		       2, (const char *const[]){log->order_id, PUT_OFF_S}, errstr, errstr_size) < 0
		       ? -1
		       : 0;
}

/*
 * The next step of one shipment, in the sweep's transaction. The step is
 * decided from the stream: a to-do row left over from a step already
 * taken decides nothing and is dropped. The new event's cause is the
 * stream's last event, so `shopctl watch` shows the chain.
 */
static int step_one(struct sweep *sw, struct es_db *db, const char *order_id, char *errstr,
		    size_t errstr_size)
{
	struct es_effect fx = {.db = db, .app = sw->app, .log = {.order_id = order_id}};
	struct es_event *cause = NULL;
	json_t *events = NULL, *data;
	const char *type, *why;
	struct shipment s;
	char *last = NULL;
	int result = -1;

	if (shipping_stream_load(db, order_id, &s, &events, errstr, errstr_size))
		goto failed;
	type = shipment_decide_progress(&s, order_id, &data, &why);
	if (!type) {
		es_log(ES_LOG_INFO, &fx.log, "shipment sweep: %s", why);
		result = es_db_exec(db, "DELETE FROM shipment_due WHERE order_id = $1", 1,
				    (const char *const[]){order_id}, errstr, errstr_size) < 0
				 ? -1
				 : 0;
		goto out;
	}
	last = json_dumps(json_array_get(events, json_array_size(events) - 1), JSON_COMPACT);
	cause = last ? es_event_parse(last, strlen(last), errstr, errstr_size) : NULL;
	if (!cause) {
		json_decref(data);
		snprintf(errstr, errstr_size, "shipment %s: its last event does not parse",
			 order_id);
		goto failed;
	}
	if (shipping_stream_append(&fx, &s, order_id, sw->app->shipments_topic, sw->app->delay_ms,
				   type, data, cause) != ES_HANDLER_OK) {
		snprintf(errstr, errstr_size, "%s", fx.reason);
		goto failed;
	}
	sw->outcomes[sw->steps++] = outcome_of(type);
	es_log(ES_LOG_INFO, &fx.log, "%s (version %d): %s", type, s.version, why);
	result = 0;
	goto out;
failed:
	/* A statement that failed aborted the transaction: the sweep is
	 * retried. Anything else is this shipment's own problem. */
	if (es_db_sqlstate(db)[0] == '\0' && es_db_ok(db)) {
		char why_s[512];

		snprintf(why_s, sizeof(why_s), "%s", errstr);
		result = put_off(db, &fx.log, why_s, errstr, errstr_size);
	}
out:
	es_event_free(cause);
	free(last);
	json_decref(events);
	return result;
}

static int sweep_tx(struct es_db *db, void *arg, char *errstr, size_t errstr_size)
{
	struct sweep *sw = arg;
	char limit[16];
	PGresult *res;
	int result = 0;

	sw->steps = 0;
	/* SKIP LOCKED: a second instance sweeping at the same moment takes
	 * other shipments instead of waiting for these. */
	snprintf(limit, sizeof(limit), "%d", SWEEP_BATCH);
	res = es_db_query(db,
			  "SELECT order_id FROM shipment_due WHERE due_at <= now() "
			  "ORDER BY due_at LIMIT $1::integer FOR UPDATE SKIP LOCKED",
			  1, (const char *const[]){limit}, errstr, errstr_size);
	if (!res)
		return -1;
	for (int i = 0; i < PQntuples(res) && !result; i++)
		result = step_one(sw, db, es_db_get(res, i, "order_id"), errstr, errstr_size);
	PQclear(res);
	return result;
}

int shipping_sweep_once(struct shipping_app *app, struct es_db *db, char *errstr,
			size_t errstr_size)
{
	struct sweep sw = {.app = app};

	if (es_db_tx(db, sweep_tx, &sw, errstr, errstr_size))
		return -1;
	/* Counted after the commit only: a rolled-back sweep took no step. */
	for (int i = 0; i < sw.steps; i++) {
		if (app->counter)
			es_counter_inc(app->counter,
				       (const char *const[]){outcome_labels[sw.outcomes[i]]});
	}
	return sw.steps;
}

int shipping_sweep(struct es_service *svc, void *arg, char *errstr, size_t errstr_size)
{
	struct shipping_app *app = arg;
	char why[512];

	(void)errstr;
	(void)errstr_size;
	if (es_monotonic_ms() - app->last_sweep_ms < SWEEP_INTERVAL_MS || !es_db_ok(svc->db))
		return 0;
	app->last_sweep_ms = es_monotonic_ms();
	/* A failed sweep is tried again at the next tick; it never stops the
	 * daemon. */
	if (shipping_sweep_once(app, svc->db, why, sizeof(why)) < 0)
		es_warn("shipment sweep: %s", why);
	return 0;
}
