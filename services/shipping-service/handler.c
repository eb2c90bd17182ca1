/*
 * handler: what shipping-service does with the events of the orders
 * topic, and the simulated carrier that moves shipments along.
 *
 * Every change is the same three moves: load the stream (and fold it),
 * decide (shipment.c), append what was decided (stream.c). A batch loads
 * the streams of all its orders at once (load_streams; the sweep's
 * sweep_due) and writes what its effects appended at once
 * (write_appended). The effects run inside the batch's transaction
 * (es/dispatch.h), so the appended event, its outbox row and the inbox
 * record of the event reacted to commit together or not at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/clock.h"
#include "es/events.h"
#include "es/log.h"
#include "es/outbox.h"
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

void shipping_app_release(struct shipping_app *app)
{
	shipping_streams_release(&app->streams);
}

/*
 * before_effects: the streams of the batch's orders, read with one query
 * and folded. The effects decide from them and append to them in memory,
 * so that a second event of an order in the batch sees what the first
 * one appended.
 */
static int load_streams(struct es_db *db, void *arg, struct es_effect *const *fresh, size_t n,
			char *errstr, size_t errstr_size)
{
	struct shipping_app *app = arg;
	const char **ids = calloc(n ? n : 1, sizeof(*ids));
	int rc;

	shipping_streams_release(&app->streams);
	if (!ids) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		ids[i] = fresh[i]->ev->subject;
	rc = shipping_streams_load(db, &app->streams, ids, n, errstr, errstr_size);
	free(ids);
	return rc;
}

/* fx's order's stream, as load_streams read it and the batch's effects
 * before fx appended to it; NULL (RETRY or REJECT in *r) when it cannot
 * be used. */
static struct shipping_stream *stream_of(struct es_effect *fx, enum es_handler_result *r)
{
	struct shipping_app *app = fx->app;
	struct shipping_stream *stream = shipping_streams_find(&app->streams, fx->ev->subject);

	if (!stream) {
		snprintf(fx->reason, sizeof(fx->reason), "the stream of %s was not read",
			 fx->ev->subject);
		*r = ES_HANDLER_RETRY;
	} else if (stream->error[0]) {
		/* A stream this code did not write: retrying will not mend it. */
		snprintf(fx->reason, sizeof(fx->reason), "%s", stream->error);
		*r = ES_HANDLER_REJECT;
		stream = NULL;
	}
	return stream;
}

/* The decision's event, appended (its row kept in fx->state for
 * write_appended); or, when there is none, the reason why in the log. */
static enum es_handler_result append_decided(struct es_effect *fx, struct shipping_stream *stream,
					     const char *type, json_t *data, const char *why)
{
	struct shipping_app *app = fx->app;
	enum es_handler_result r;
	json_t *row;

	if (!type) {
		es_log(ES_LOG_INFO, &fx->log, "%s: %s", fx->ev->type, why);
		return ES_HANDLER_OK;
	}
	r = shipping_stream_append(fx, stream, app->shipments_topic, type, data, fx->ev, &row);
	if (r != ES_HANDLER_OK)
		return r;
	/* A run of the batch before this one may have left its own. */
	json_decref(fx->state);
	fx->state = row;
	fx->outcome = outcome_of(type);
	es_log(ES_LOG_INFO, &fx->log, "%s (version %d): %s", type, stream->s.version, why);
	return ES_HANDLER_OK;
}

/* OrderConfirmed: the order gets its shipment, once. */
static enum es_handler_result on_order_confirmed(struct es_effect *fx)
{
	char shipment_id[ES_UUID_LEN + 1];
	enum es_handler_result r;
	struct shipping_stream *stream = stream_of(fx, &r);
	const char *type, *why;
	json_t *data;

	if (!stream)
		return r;
	/* A fresh id is safe: a retry of this transaction folds the stream
	 * again and, if the first attempt committed, decides nothing. */
	es_uuid_new(shipment_id);
	type = shipment_decide_confirmed(&stream->s, fx->ev->subject, shipment_id, &data, &why);
	return append_decided(fx, stream, type, data, why);
}

/* OrderCancelled: stops a shipment that has not left yet. */
static enum es_handler_result on_order_cancelled(struct es_effect *fx)
{
	enum es_handler_result r;
	struct shipping_stream *stream = stream_of(fx, &r);
	const char *type, *why;
	json_t *data;

	if (!stream)
		return r;
	type = shipment_decide_cancelled(&stream->s, fx->ev->subject, es_data_str(fx->ev, "reason"),
					 &data, &why);
	return append_decided(fx, stream, type, data, why);
}

/*
 * before_commit: the events the applied effects appended, with their due
 * steps, in one statement (shipping_stream_write). Only an effect that
 * appended has an outcome (reset before each run of the batch), so a row
 * left in fx->state by a run that was rolled back is not written. A writer
 * that appended to one of these streams since load_streams read it makes
 * the statement fail on (order_id, version): the batch is retried, and
 * reads the longer stream.
 */
static int write_appended(struct es_db *db, void *arg, struct es_effect *const *applied, size_t n,
			  char *errstr, size_t errstr_size)
{
	struct shipping_app *app = arg;
	json_t *rows = json_array();
	int rc = -1;

	if (!rows) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (applied[i]->outcome != SHIPPING_OUTCOME_NONE && applied[i]->state)
			json_array_append(rows, applied[i]->state);
	}
	rc = shipping_stream_write(db, rows, app->delay_ms, errstr, errstr_size);
out:
	json_decref(rows);
	shipping_streams_release(&app->streams);
	return rc;
}

static void committed(struct es_effect *fx)
{
	struct shipping_app *app = fx->app;

	if (fx->outcome != SHIPPING_OUTCOME_NONE && app->counter)
		es_counter_inc(app->counter, (const char *const[]){outcome_labels[fx->outcome]});
}

static void release(struct es_effect *fx)
{
	json_decref(fx->state);
	fx->state = NULL;
}

/* OrderPlaced needs nothing: only a confirmed order is shipped. */
static const struct es_dispatch_rule rules[] = {
	{ES_ORDER_CONFIRMED, on_order_confirmed},
	{ES_ORDER_CANCELLED, on_order_cancelled},
	{NULL, NULL},
};

const struct es_handlers shipping_handlers = {
	.rules = rules,
	.before_effects = load_streams,
	.before_commit = write_appended,
	.committed = committed,
	.release = release,
};

/* ---------------------------------------------------------------- sweep */

struct sweep {
	struct shipping_app *app;
	struct es_outbox_batch *outbox; /* the sweep's events */
	json_t *rows; /* the sweep's appends (shipping_stream_append) */
	json_t *idle; /* orders whose to-do row decides nothing */
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

/* The stream's last event, the cause of the next one (so that `shopctl
 * watch` shows the chain); NULL when it does not parse. */
static struct es_event *last_event(const struct shipping_stream *stream, char *errstr,
				   size_t errstr_size)
{
	char *text = json_dumps(json_array_get(stream->events, json_array_size(stream->events) - 1),
				JSON_COMPACT);
	struct es_event *ev = text ? es_event_parse(text, strlen(text), errstr, errstr_size) : NULL;

	free(text);
	return ev;
}

/*
 * The next step of one shipment, in the sweep's transaction, appended in
 * memory (sweep_tx writes them all). The step is decided from the stream:
 * a to-do row left over from a step already taken decides nothing and is
 * dropped.
 */
static int step_one(struct sweep *sw, struct es_db *db, struct shipping_stream *stream,
		    char *errstr, size_t errstr_size)
{
	struct es_effect fx = {.db = db,
			       .app = sw->app,
			       .outbox = sw->outbox,
			       .log = {.order_id = stream->order_id}};
	struct es_event *cause;
	const char *type, *why;
	json_t *data, *row;
	enum es_handler_result r;

	if (stream->error[0])
		return put_off(db, &fx.log, stream->error, errstr, errstr_size);
	type = shipment_decide_progress(&stream->s, stream->order_id, &data, &why);
	if (!type) {
		es_log(ES_LOG_INFO, &fx.log, "shipment sweep: %s", why);
		return json_array_append_new(sw->idle, json_string(stream->order_id)) ? -1 : 0;
	}
	cause = last_event(stream, fx.reason, sizeof(fx.reason));
	if (!cause) {
		json_decref(data);
		snprintf(fx.reason, sizeof(fx.reason), "shipment %s: its last event does not parse",
			 stream->order_id);
		return put_off(db, &fx.log, fx.reason, errstr, errstr_size);
	}
	r = shipping_stream_append(&fx, stream, sw->app->shipments_topic, type, data, cause, &row);
	es_event_free(cause);
	if (r == ES_HANDLER_REJECT)
		return put_off(db, &fx.log, fx.reason, errstr, errstr_size);
	if (r != ES_HANDLER_OK || json_array_append_new(sw->rows, row)) {
		snprintf(errstr, errstr_size, "%s",
			 r != ES_HANDLER_OK ? fx.reason : "out of memory");
		return -1;
	}
	sw->outcomes[sw->steps++] = outcome_of(type);
	es_log(ES_LOG_INFO, &fx.log, "%s (version %d): %s", type, stream->s.version, why);
	return 0;
}

/* The due shipments' streams in one query, their steps in memory, then
 * what they appended (events, due steps, outbox rows) and the idle rows'
 * deletion, a statement each. */
static int sweep_due(struct sweep *sw, struct es_db *db, PGresult *due, char *errstr,
		     size_t errstr_size)
{
	const char **ids = calloc((size_t)PQntuples(due) + 1, sizeof(*ids));
	struct shipping_streams st = {0};
	char *idle = NULL;
	int result = -1;

	if (!ids) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	for (int i = 0; i < PQntuples(due); i++)
		ids[i] = es_db_get(due, i, "order_id");
	if (shipping_streams_load(db, &st, ids, (size_t)PQntuples(due), errstr, errstr_size))
		goto out;
	for (size_t i = 0; i < st.n; i++) {
		if (step_one(sw, db, &st.v[i], errstr, errstr_size))
			goto out;
	}
	if (shipping_stream_write(db, sw->rows, sw->app->delay_ms, errstr, errstr_size) ||
	    es_outbox_batch_insert(db, sw->outbox, errstr, errstr_size) < 0)
		goto out;
	if (json_array_size(sw->idle)) {
		idle = json_dumps(sw->idle, JSON_COMPACT);
		if (!idle || es_db_exec(db,
					ES_DB_PLAN_EACH_RUN
					"DELETE FROM shipment_due WHERE order_id ="
					" ANY (ARRAY(SELECT json_array_elements_text($1::json)))",
					1, (const char *const[]){idle}, errstr, errstr_size) < 0) {
			if (!idle)
				snprintf(errstr, errstr_size, "out of memory");
			goto out;
		}
	}
	result = 0;
out:
	free(idle);
	shipping_streams_release(&st);
	free(ids);
	return result;
}

static int sweep_tx(struct es_db *db, void *arg, char *errstr, size_t errstr_size)
{
	struct sweep *sw = arg;
	char limit[16];
	PGresult *res;
	int result;

	/* es_db_tx may run us again (a deadlock): from scratch. */
	sw->steps = 0;
	es_outbox_batch_truncate(sw->outbox, 0);
	json_array_clear(sw->rows);
	json_array_clear(sw->idle);
	/* SKIP LOCKED: a second instance sweeping at the same moment takes
	 * other shipments instead of waiting for these. */
	snprintf(limit, sizeof(limit), "%d", SWEEP_BATCH);
	res = es_db_query(db,
			  "SELECT order_id FROM shipment_due WHERE due_at <= now() "
			  "ORDER BY due_at LIMIT $1::integer FOR UPDATE SKIP LOCKED",
			  1, (const char *const[]){limit}, errstr, errstr_size);
	if (!res)
		return -1;
	result = PQntuples(res) ? sweep_due(sw, db, res, errstr, errstr_size) : 0;
	PQclear(res);
	return result;
}

int shipping_sweep_once(struct shipping_app *app, struct es_db *db, char *errstr,
			size_t errstr_size)
{
	struct sweep sw = {.app = app,
			   .outbox = es_outbox_batch_new(),
			   .rows = json_array(),
			   .idle = json_array()};
	int rc = -1;

	if (!sw.outbox || !sw.rows || !sw.idle)
		snprintf(errstr, errstr_size, "out of memory");
	else
		rc = es_db_tx(db, sweep_tx, &sw, errstr, errstr_size);
	es_outbox_batch_free(sw.outbox);
	json_decref(sw.rows);
	json_decref(sw.idle);
	if (rc)
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
