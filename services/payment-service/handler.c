/*
 * handler: what payment-service does with the events of the orders topic.
 *
 * Every effect runs inside the batch's transaction (es/dispatch.h), so the
 * payments row, the event it produces (es_effect_emit, through the outbox)
 * and the inbox record of the event reacted to commit together or not at
 * all.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* OrderPlaced: decide, record the decision, announce it. */
enum es_handler_result payment_on_order_placed(struct es_effect *fx)
{
	static const char sql[] =
		"INSERT INTO payments (order_id, outcome, payment_id, amount_cents, currency, "
		"reason, placed_event_id) VALUES ($1, $2, $3::uuid, $4::bigint, $5, $6, $7) "
		"ON CONFLICT (order_id) DO NOTHING";
	struct payment_app *app = fx->app;
	const struct es_event *ev = fx->ev;
	const char *currency = es_data_str(ev, "currency");
	long long amount = es_data_int(ev, "totalCents");
	/* The payment_decline_percent switch turns some approvals down. */
	enum payment_verdict verdict =
		payment_fault_declines(ev->subject, es_fault_value(app->fault_decline))
			? PAYMENT_CARD_DECLINED
			: payment_decide(es_data_str(ev, "paymentToken"), amount);
	const char *why = payment_verdict_reason(verdict);
	bool charged = verdict == PAYMENT_APPROVED;
	char payment_id[ES_UUID_LEN + 1], amount_s[24];
	enum es_handler_result r;
	json_t *data;
	long n;

	snprintf(amount_s, sizeof(amount_s), "%lld", amount);
	/* A fresh id is safe: it is stored with the decision, and a retry
	 * of this transaction makes a new one that replaces nothing. */
	es_uuid_new(payment_id);
	n = es_db_exec(fx->db, sql, 7,
		       (const char *const[]){ev->subject, charged ? "charged" : "declined",
					     charged ? payment_id : NULL, amount_s, currency, why,
					     ev->id},
		       fx->reason, sizeof(fx->reason));
	if (n < 0)
		return es_effect_db_failed(fx);
	if (n == 0) {
		/* Decided before (another OrderPlaced for this order) or
		 * cancelled before it was placed: charge nothing, say nothing. */
		es_log(ES_LOG_INFO, &fx->log,
		       "OrderPlaced for an order already decided or cancelled: nothing to charge");
		return ES_HANDLER_OK;
	}
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
	fx->outcome = charged ? PAYMENT_OUTCOME_CHARGED : PAYMENT_OUTCOME_DECLINED;
	if (charged)
		es_log(ES_LOG_INFO, &fx->log, "charged %lld %s: payment %s", amount, currency,
		       payment_id);
	else
		es_log(ES_LOG_INFO, &fx->log, "declined %lld %s: %s", amount, currency, why);
	return ES_HANDLER_OK;
}

/* Refunds the order's charge when there is one not yet refunded; the
 * conditional UPDATE is what makes the refund happen once. */
static enum es_handler_result refund(struct es_effect *fx)
{
	static const char sql[] =
		"UPDATE payments SET refunded_at = now() "
		"WHERE order_id = $1 AND outcome = 'charged' AND refunded_at IS NULL "
		"RETURNING payment_id::text AS payment_id, amount_cents, currency";
	struct payment_app *app = fx->app;
	const char *order_id = fx->ev->subject;
	const char *payment_id, *amount_s, *currency;
	enum es_handler_result r = ES_HANDLER_OK;
	long long amount;
	json_t *data;
	PGresult *res;
	char *end = NULL;

	res = es_db_query(fx->db, sql, 1, (const char *const[]){order_id}, fx->reason,
			  sizeof(fx->reason));
	if (!res)
		return es_effect_db_failed(fx);
	if (PQntuples(res) == 0) {
		es_log(ES_LOG_INFO, &fx->log, "OrderCancelled: no charge left to refund");
		goto out;
	}
	payment_id = es_db_get(res, 0, "payment_id");
	amount_s = es_db_get(res, 0, "amount_cents");
	currency = es_db_get(res, 0, "currency");
	errno = 0;
	amount = amount_s ? strtoll(amount_s, &end, 10) : -1;
	if (!payment_id || !currency || !amount_s || errno || *end || amount < 0) {
		snprintf(fx->reason, sizeof(fx->reason), "payments row of order %s is incomplete",
			 order_id);
		r = ES_HANDLER_REJECT;
		goto out;
	}
	data = json_pack("{s:s, s:s, s:I, s:s}", "orderId", order_id, "paymentId", payment_id,
			 "amountCents", (json_int_t)amount, "currency", currency);
	r = es_effect_emit(fx, PAYMENT_SERVICE, app->payments_topic, ES_PAYMENT_REFUNDED, data);
	if (r != ES_HANDLER_OK)
		goto out;
	fx->outcome = PAYMENT_OUTCOME_REFUNDED;
	es_log(ES_LOG_INFO, &fx->log, "refunded %lld %s: payment %s", amount, currency, payment_id);
out:
	PQclear(res);
	return r;
}

/* OrderCancelled: bar a charge not yet made, or refund the one made. */
enum es_handler_result payment_on_order_cancelled(struct es_effect *fx)
{
	static const char void_sql[] =
		"INSERT INTO payments (order_id, outcome, cancelled_at, cancel_reason) "
		"VALUES ($1, 'voided', now(), $2) ON CONFLICT (order_id) DO NOTHING";
	static const char mark_sql[] =
		"UPDATE payments SET cancelled_at = now(), cancel_reason = $2 "
		"WHERE order_id = $1 AND cancelled_at IS NULL";
	const char *params[2] = {fx->ev->subject, es_data_str(fx->ev, "reason")};
	long n;

	/* Not placed yet (events of one order may come out of order when an
	 * outbox row was delayed): the voided row bars any later charge. */
	n = es_db_exec(fx->db, void_sql, 2, params, fx->reason, sizeof(fx->reason));
	if (n < 0)
		return es_effect_db_failed(fx);
	if (n == 1) {
		es_log(ES_LOG_INFO, &fx->log,
		       "OrderCancelled before any charge: the order will not be charged");
		return ES_HANDLER_OK;
	}
	if (es_db_exec(fx->db, mark_sql, 2, params, fx->reason, sizeof(fx->reason)) < 0)
		return es_effect_db_failed(fx);
	return refund(fx);
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
	{ES_ORDER_PLACED, payment_on_order_placed},
	{ES_ORDER_CANCELLED, payment_on_order_cancelled},
	{NULL, NULL},
};

const struct es_handlers payment_handlers = {
	.rules = rules,
	.prepare = prepare,
	.begin = begin,
	.committed = committed,
};
