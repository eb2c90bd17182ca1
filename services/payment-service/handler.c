/*
 * handler: what payment-service does with the events of the orders topic.
 *
 * Every effect runs inside the batch's transaction (es/dispatch.h), so the
 * payments row, the event it produces (es_effect_emit, through the outbox)
 * and the inbox record of the event reacted to commit together or not at
 * all. The effects work on the batch's copy of its orders' rows: one
 * statement locks the orders and one reads their rows before the effects,
 * and one INSERT and one UPDATE write them back before the commit, however
 * many events the batch holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/clock.h"
#include "es/dispatch.h"
#include "es/events.h"
#include "es/faults.h"
#include "es/log.h"
#include "es/outbox.h"
#include "payment.h"

/* The simulated latency is slept in slices this long, so that SIGTERM is
 * answered promptly even with PAYMENT_LATENCY_MS at its 60 s maximum. */
#define LATENCY_SLICE_MS 100

static const char *const outcome_labels[] = {
	[PAYMENT_OUTCOME_CHARGED] = "charged",
	[PAYMENT_OUTCOME_DECLINED] = "declined",
	[PAYMENT_OUTCOME_REFUNDED] = "refunded",
};

void payment_app_init(struct payment_app *app, const char *payments_topic, long latency_ms)
{
	memset(app, 0, sizeof(*app));
	app->payments_topic = payments_topic;
	app->latency_ms = latency_ms;
	app->fault_latency = es_fault_define("payment_latency_ms",
					     "ms the simulated bank takes per batch of charges, "
					     "instead of PAYMENT_LATENCY_MS (-1: off)",
					     -1, 60000, -1);
	app->fault_decline = es_fault_define("payment_decline_percent",
					     "% of orders whose charge is declined whatever "
					     "the token (CARD_DECLINED)",
					     0, 100, 0);
}

int payment_metrics_register(struct payment_app *app, struct es_metrics *reg, char *errstr,
			     size_t errstr_size)
{
	static const char *const labels[] = {"outcome", NULL};
	struct es_counter *c;

	c = es_counter_register(reg, "es_payments_total",
				"Payment outcomes: orders charged, declined and refunded.", labels,
				errstr, errstr_size);
	if (!c)
		return -1;
	/* Children exist from the start, so that a dashboard's rate() sees
	 * the first charge as an increase from 0 rather than a new series. */
	for (int o = PAYMENT_OUTCOME_CHARGED; o <= PAYMENT_OUTCOME_REFUNDED; o++)
		es_counter_add(c, (const char *const[]){outcome_labels[o]}, 0);
	app->counter = c;
	return 0;
}

/*
 * The payments rows of a batch's orders, as its effects see them: read
 * under the orders' locks before the effects (load), changed by them only
 * once everything else they do has succeeded, and written back before the
 * commit with one statement per kind (write). A JSON object per order, its
 * keys the columns json_to_recordset reads back:
 *   order_id, outcome (absent: no row yet), payment_id, amount_cents,
 *   currency, reason, placed_event_id, cancelled, cancel_reason, refunded;
 *   insert (the row is new in this batch), cancel_now and refund_now (an
 *   existing row cancelled or refunded by this batch).
 */
void payment_app_release(struct payment_app *app)
{
	json_decref(app->batch);
	app->batch = NULL;
}

/* The batch's row of order_id; every order of the batch has one. */
static json_t *row_of(struct es_effect *fx)
{
	struct payment_app *app = fx->app;

	return json_object_get(app->batch, fx->ev->subject);
}

/* before_effects: locks the batch's orders, then reads their rows. */
static int load_rows(struct es_db *db, void *arg, struct es_effect *const *fresh, size_t n,
		     char *errstr, size_t errstr_size)
{
	static const char sql[] = ES_DB_PLAN_EACH_RUN
		"SELECT order_id, outcome, payment_id::text AS payment_id, amount_cents,"
		" currency, cancelled_at IS NOT NULL AS cancelled,"
		" refunded_at IS NOT NULL AS refunded FROM payments WHERE order_id = ANY"
		" (ARRAY(SELECT json_array_elements_text($1::json)))";
	struct payment_app *app = arg;
	json_t *ids = json_array();
	char *text = NULL;
	PGresult *res = NULL;
	int rc = -1;

	payment_app_release(app);
	app->batch = json_object();
	for (size_t i = 0; ids && app->batch && i < n; i++) {
		const char *id = fresh[i]->ev->subject;

		if (!json_object_get(app->batch, id) &&
		    (json_array_append_new(ids, json_string(id)) ||
		     json_object_set_new(app->batch, id, json_pack("{s:s}", "order_id", id))))
			goto oom;
	}
	if (!ids || !app->batch || !(text = json_dumps(ids, JSON_COMPACT)))
		goto oom;
	if (es_dispatch_lock_orders(db, PAYMENT_LOCK_SPACE, fresh, n, errstr, errstr_size))
		goto out;
	res = es_db_query(db, sql, 1, (const char *const[]){text}, errstr, errstr_size);
	if (!res)
		goto out;
	for (int r = 0; r < PQntuples(res); r++) {
		json_t *row = json_object_get(app->batch, es_db_get(res, r, "order_id"));
		const char *pid = es_db_get(res, r, "payment_id");
		const char *amount = es_db_get(res, r, "amount_cents");
		const char *currency = es_db_get(res, r, "currency");

		if (!row)
			continue;
		if (json_object_set_new(row, "outcome",
					json_string(es_db_get(res, r, "outcome"))) ||
		    (pid && json_object_set_new(row, "payment_id", json_string(pid))) ||
		    (amount && json_object_set_new(row, "amount_cents",
						   json_integer(strtoll(amount, NULL, 10)))) ||
		    (currency && json_object_set_new(row, "currency", json_string(currency))) ||
		    json_object_set_new(
			    row, "cancelled",
			    json_boolean(!strcmp(es_db_get(res, r, "cancelled"), "t"))) ||
		    json_object_set_new(row, "refunded",
					json_boolean(!strcmp(es_db_get(res, r, "refunded"), "t"))))
			goto oom;
	}
	rc = 0;
	goto out;
oom:
	snprintf(errstr, errstr_size, "out of memory");
out:
	PQclear(res);
	free(text);
	json_decref(ids);
	return rc;
}

/* before_commit: the new rows with one INSERT, the changed ones with one
 * UPDATE. */
static int write_back(struct es_db *db, void *arg, struct es_effect *const *applied, size_t n,
		      char *errstr, size_t errstr_size)
{
	struct payment_app *app = arg;
	json_t *inserts = json_array(), *updates = json_array(), *row;
	const char *id;
	long got;
	int rc = -1;

	(void)applied;
	(void)n;
	if (!inserts || !updates) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	json_object_foreach(app->batch, id, row)
	{
		json_t *to = json_is_true(json_object_get(row, "insert")) ? inserts
			     : json_is_true(json_object_get(row, "cancel_now")) ||
					     json_is_true(json_object_get(row, "refund_now"))
				     ? updates
				     : NULL;

		if (to && json_array_append(to, row)) {
			snprintf(errstr, errstr_size, "out of memory");
			goto out;
		}
	}
	/* No ON CONFLICT: under the orders' locks no other transaction can
	 * have made the row meanwhile; if one did without the lock, the
	 * unique violation retries the batch, which then reads it. */
	got = es_db_exec_rows(
		db,
		"INSERT INTO payments (order_id, outcome, payment_id, amount_cents, currency,"
		" reason, placed_event_id, cancelled_at, cancel_reason, refunded_at)"
		" SELECT r.order_id, r.outcome, r.payment_id::uuid, r.amount_cents, r.currency,"
		" r.reason, r.placed_event_id, CASE WHEN r.cancelled THEN now() END,"
		" r.cancel_reason, CASE WHEN r.refunded THEN now() END"
		" FROM json_to_recordset($1::json) AS r(order_id text, outcome text,"
		" payment_id text, amount_cents bigint, currency text, reason text,"
		" placed_event_id text, cancelled boolean, cancel_reason text, refunded boolean)",
		inserts, 0, NULL, errstr, errstr_size);
	if (got < 0)
		goto out;
	/* The ANY lets the planner probe the key (see es_db_exec_rows). */
	if (es_db_exec_rows_all(
		    db,
		    ES_DB_PLAN_EACH_RUN
		    "UPDATE payments p SET"
		    " cancelled_at = CASE WHEN r.cancel_now THEN now() ELSE p.cancelled_at END,"
		    " cancel_reason = CASE WHEN r.cancel_now THEN r.cancel_reason"
		    " ELSE p.cancel_reason END,"
		    " refunded_at = CASE WHEN r.refund_now THEN now() ELSE p.refunded_at END"
		    " FROM json_to_recordset($1::json) AS r(order_id text, cancel_now boolean,"
		    " cancel_reason text, refund_now boolean)"
		    " WHERE p.order_id = r.order_id AND p.order_id = ANY (ARRAY("
		    "SELECT k.order_id FROM json_to_recordset($1::json) AS k(order_id text)))",
		    updates, errstr, errstr_size))
		goto out;
	rc = 0;
out:
	json_decref(inserts);
	json_decref(updates);
	payment_app_release(app);
	return rc;
}

/* OrderPlaced: decide, record the decision, announce it. */
static enum es_handler_result place(struct es_effect *fx)
{
	struct payment_app *app = fx->app;
	const struct es_event *ev = fx->ev;
	json_t *row = row_of(fx);
	const char *currency = es_data_str(ev, "currency");
	long long amount = es_data_int(ev, "totalCents");
	enum payment_verdict verdict;
	const char *why;
	bool charged;
	char payment_id[ES_UUID_LEN + 1];
	enum es_handler_result r;
	json_t *data;

	if (!row) {
		snprintf(fx->reason, sizeof(fx->reason), "order %s was not read for the batch",
			 ev->subject);
		return ES_HANDLER_RETRY;
	}
	if (json_object_get(row, "outcome")) {
		/* Decided before (another OrderPlaced for this order) or
		 * cancelled before it was placed: charge nothing, say nothing. */
		es_log(ES_LOG_INFO, &fx->log,
		       "OrderPlaced for an order already decided or cancelled: nothing to charge");
		return ES_HANDLER_OK;
	}
	/* The payment_decline_percent switch turns some approvals down. */
	verdict = payment_fault_declines(ev->subject, es_fault_value(app->fault_decline))
			  ? PAYMENT_CARD_DECLINED
			  : payment_decide(es_data_str(ev, "paymentToken"), amount);
	why = payment_verdict_reason(verdict);
	charged = verdict == PAYMENT_APPROVED;
	/* A fresh id is safe: it is stored with the decision, and a retry
	 * of this transaction makes a new one that replaces nothing. */
	es_uuid_new(payment_id);
	if (charged)
		data = json_pack("{s:s, s:s, s:I, s:s}", "orderId", ev->subject, "paymentId",
				 payment_id, "amountCents", (json_int_t)amount, "currency",
				 currency);
	else
		data = json_pack("{s:s, s:s, s:I, s:s}", "orderId", ev->subject, "reason", why,
				 "amountCents", (json_int_t)amount, "currency", currency);
	r = es_effect_emit(fx, PAYMENT_SERVICE, app->payments_topic,
			   charged ? ES_PAYMENT_PROCESSED : ES_PAYMENT_FAILED, data);
	if (r != ES_HANDLER_OK)
		return r;
	if (json_object_update_new(row,
				   json_pack("{s:s, s:s?, s:I, s:s, s:s?, s:s, s:b}", "outcome",
					     charged ? "charged" : "declined", "payment_id",
					     charged ? payment_id : NULL, "amount_cents",
					     (json_int_t)amount, "currency", currency, "reason",
					     why, "placed_event_id", ev->id, "insert", 1)))
		return es_effect_out_of_memory(fx);
	fx->outcome = charged ? PAYMENT_OUTCOME_CHARGED : PAYMENT_OUTCOME_DECLINED;
	if (charged)
		es_log(ES_LOG_INFO, &fx->log, "charged %lld %s: payment %s", amount, currency,
		       payment_id);
	else
		es_log(ES_LOG_INFO, &fx->log, "declined %lld %s: %s", amount, currency, why);
	return ES_HANDLER_OK;
}

/* OrderCancelled: bar a charge not yet made, or refund the one made. */
static enum es_handler_result cancel(struct es_effect *fx)
{
	struct payment_app *app = fx->app;
	const char *order_id = fx->ev->subject;
	const char *reason = es_data_str(fx->ev, "reason");
	json_t *row = row_of(fx), *data;
	const char *outcome, *payment_id, *currency;
	bool refund, mark;
	enum es_handler_result r;

	if (!row) {
		snprintf(fx->reason, sizeof(fx->reason), "order %s was not read for the batch",
			 order_id);
		return ES_HANDLER_RETRY;
	}
	outcome = json_string_value(json_object_get(row, "outcome"));
	if (!outcome) {
		/* Not placed yet (events of one order may come out of order when
		 * an outbox row was delayed): the voided row bars any later
		 * charge. */
		if (json_object_update_new(row, json_pack("{s:s, s:b, s:s?, s:b}", "outcome",
							  "voided", "cancelled", 1, "cancel_reason",
							  reason, "insert", 1)))
			return es_effect_out_of_memory(fx);
		es_log(ES_LOG_INFO, &fx->log,
		       "OrderCancelled before any charge: the order will not be charged");
		return ES_HANDLER_OK;
	}
	mark = !json_is_true(json_object_get(row, "cancelled"));
	refund = !strcmp(outcome, "charged") && !json_is_true(json_object_get(row, "refunded"));
	if (refund) {
		payment_id = json_string_value(json_object_get(row, "payment_id"));
		currency = json_string_value(json_object_get(row, "currency"));
		if (!payment_id || !currency ||
		    !json_is_integer(json_object_get(row, "amount_cents"))) {
			snprintf(fx->reason, sizeof(fx->reason),
				 "payments row of order %s is incomplete", order_id);
			return ES_HANDLER_REJECT;
		}
		data = json_pack("{s:s, s:s, s:O, s:s}", "orderId", order_id, "paymentId",
				 payment_id, "amountCents", json_object_get(row, "amount_cents"),
				 "currency", currency);
		r = es_effect_emit(fx, PAYMENT_SERVICE, app->payments_topic, ES_PAYMENT_REFUNDED,
				   data);
		if (r != ES_HANDLER_OK)
			return r;
	}
	/* A row new in this batch is inserted as it is now; an existing one is
	 * updated where this batch changed it. */
	if ((mark && (json_object_set_new(row, "cancelled", json_true()) ||
		      json_object_set_new(row, "cancel_reason",
					  reason ? json_string(reason) : json_null()) ||
		      json_object_set_new(row, "cancel_now", json_true()))) ||
	    (refund && (json_object_set_new(row, "refunded", json_true()) ||
			json_object_set_new(row, "refund_now", json_true()))))
		return es_effect_out_of_memory(fx);
	if (refund) {
		fx->outcome = PAYMENT_OUTCOME_REFUNDED;
		es_log(ES_LOG_INFO, &fx->log, "refunded %lld %s: payment %s",
		       (long long)json_integer_value(json_object_get(row, "amount_cents")),
		       json_string_value(json_object_get(row, "currency")),
		       json_string_value(json_object_get(row, "payment_id")));
	} else {
		es_log(ES_LOG_INFO, &fx->log, "OrderCancelled: no charge left to refund");
	}
	return ES_HANDLER_OK;
}

/* Counts the charges a batch will ask the bank for. */
static enum es_handler_result prepare(struct es_effect *fx)
{
	struct payment_app *app = fx->app;

	if (!strcmp(fx->ev->type, ES_ORDER_PLACED))
		app->charges++;
	return ES_HANDLER_OK;
}

/*
 * The simulated bank, before the transaction, so that a slow "bank" holds
 * no locks and no connection in a transaction. A batch's charges go to the
 * bank together, as a client of a real payment API would send them, so a
 * batch waits the latency once. RETRY on a stop: the offsets stay unstored
 * and the events come back after the restart.
 */
static enum es_handler_result begin(void *arg, size_t n, volatile sig_atomic_t *stop, char *reason,
				    size_t reason_size)
{
	struct payment_app *app = arg;
	long sw = es_fault_value(app->fault_latency);
	long ms = app->charges ? (sw >= 0 ? sw : app->latency_ms) : 0;

	app->charges = 0;
	while (ms > 0 && !(stop && *stop)) {
		long slice = ms < LATENCY_SLICE_MS ? ms : LATENCY_SLICE_MS;

		es_sleep_ms(slice);
		ms -= slice;
	}
	if (stop && *stop) {
		snprintf(reason, reason_size, "stopping during the simulated payment latency");
		return ES_HANDLER_RETRY;
	}
	return ES_HANDLER_OK;
}

static void committed(struct es_effect *fx)
{
	struct payment_app *app = fx->app;

	if (fx->outcome != PAYMENT_OUTCOME_NONE && app->counter)
		es_counter_inc(app->counter, (const char *const[]){outcome_labels[fx->outcome]});
}

/* OrderConfirmed needs nothing: the charge stands. */
static const struct es_dispatch_rule rules[] = {
	{ES_ORDER_PLACED, place},
	{ES_ORDER_CANCELLED, cancel},
	{NULL, NULL},
};

const struct es_handlers payment_handlers = {
	.rules = rules,
	.prepare = prepare,
	.begin = begin,
	.before_effects = load_rows,
	.before_commit = write_back,
	.committed = committed,
};
