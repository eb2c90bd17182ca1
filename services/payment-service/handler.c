/*
 * handler: what payment-service does with each event of the orders topic.
 *
 * Every effect runs inside the inbox transaction (es_inbox_process), so the
 * payments row, the event it produces (es_outbox_put) and the inbox record
 * of the event reacted to commit together or not at all.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "es/daemon.h"
#include "es/events.h"
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

void payment_app_init(struct payment_app *app, struct es_db *db, const char *payments_topic,
		      long latency_ms)
{
	memset(app, 0, sizeof(*app));
	app->db = db;
	app->payments_topic = payments_topic;
	app->latency_ms = latency_ms;
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

/* The ids every log line about ev carries; trace must hold 33 bytes. */
static struct es_log_ctx log_ctx(const struct es_event *ev, char trace[33])
{
	struct es_log_ctx ctx = {ev->subject, ev->id, NULL};

	if (es_traceparent_trace_id(ev->traceparent, trace) == 0)
		ctx.trace_id = trace;
	return ctx;
}

/* What an effect answers when a statement failed: a lost connection or a
 * serialization failure will pass, anything else never will. */
static enum es_handler_result db_failure(struct es_db *db)
{
	return es_db_error_is_transient(db) ? ES_HANDLER_RETRY : ES_HANDLER_REJECT;
}

/* Makes an event caused by ev (stealing data) and puts it in the outbox. */
static enum es_handler_result produce(struct es_db *db, struct payment_app *app,
				      const struct es_event *ev, const char *type, json_t *data,
				      char *reason, size_t reason_size)
{
	struct es_event *out;
	int rc;

	out = es_event_new(PAYMENT_SERVICE, type, ev->subject, ev, NULL, data);
	if (!out) {
		snprintf(reason, reason_size, "out of memory making %s", type);
		return ES_HANDLER_RETRY;
	}
	rc = es_outbox_put(db, app->payments_topic, out, reason, reason_size);
	es_event_free(out);
	return rc ? db_failure(db) : ES_HANDLER_OK;
}

enum es_handler_result payment_on_order_placed(struct es_db *db, const struct es_event *ev,
					       void *arg, char *reason, size_t reason_size)
{
	static const char sql[] =
		"INSERT INTO payments (order_id, outcome, payment_id, amount_cents, currency, "
		"reason, placed_event_id) VALUES ($1, $2, $3::uuid, $4::bigint, $5, $6, $7) "
		"ON CONFLICT (order_id) DO NOTHING";
	struct payment_app *app = arg;
	const char *currency = es_data_str(ev, "currency");
	long long amount = es_data_int(ev, "totalCents");
	enum payment_verdict verdict = payment_decide(es_data_str(ev, "paymentToken"), amount);
	const char *why = payment_verdict_reason(verdict);
	bool charged = verdict == PAYMENT_APPROVED;
	char payment_id[ES_UUID_LEN + 1], amount_s[24], trace[33];
	struct es_log_ctx ctx = log_ctx(ev, trace);
	enum es_handler_result r;
	json_t *data;
	long n;

	app->outcome = PAYMENT_OUTCOME_NONE;
	snprintf(amount_s, sizeof(amount_s), "%lld", amount);
	/* A fresh id is safe: it is stored with the decision, and a retry
	 * of this transaction makes a new one that replaces nothing. */
	es_uuid_new(payment_id);
	n = es_db_exec(db, sql, 7,
		       (const char *const[]){ev->subject, charged ? "charged" : "declined",
					     charged ? payment_id : NULL, amount_s, currency, why,
					     ev->id},
		       reason, reason_size);
	if (n < 0)
		return db_failure(db);
	if (n == 0) {
		/* Decided before (another OrderPlaced for this order) or
		 * cancelled before it was placed: charge nothing, say nothing. */
		es_log(ES_LOG_INFO, &ctx,
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
	r = produce(db, app, ev, charged ? ES_PAYMENT_PROCESSED : ES_PAYMENT_FAILED, data, reason,
		    reason_size);
	if (r != ES_HANDLER_OK)
		return r;
	app->outcome = charged ? PAYMENT_OUTCOME_CHARGED : PAYMENT_OUTCOME_DECLINED;
	if (charged)
		es_log(ES_LOG_INFO, &ctx, "charged %lld %s: payment %s", amount, currency,
		       payment_id);
	else
		es_log(ES_LOG_INFO, &ctx, "declined %lld %s: %s", amount, currency, why);
	return ES_HANDLER_OK;
}

/* Refunds the order's charge when there is one not yet refunded; the
 * conditional UPDATE is what makes the refund happen once. */
static enum es_handler_result refund(struct es_db *db, struct payment_app *app,
				     const struct es_event *ev, const struct es_log_ctx *ctx,
				     char *reason, size_t reason_size)
{
	static const char sql[] =
		"UPDATE payments SET refunded_at = now() "
		"WHERE order_id = $1 AND outcome = 'charged' AND refunded_at IS NULL "
		"RETURNING payment_id::text AS payment_id, amount_cents, currency";
	const char *payment_id, *amount_s, *currency;
	enum es_handler_result r = ES_HANDLER_OK;
	long long amount;
	json_t *data;
	PGresult *res;
	char *end = NULL;

	res = es_db_query(db, sql, 1, (const char *const[]){ev->subject}, reason, reason_size);
	if (!res)
		return db_failure(db);
	if (PQntuples(res) == 0) {
		es_log(ES_LOG_INFO, ctx, "OrderCancelled: no charge left to refund");
		goto out;
	}
	payment_id = es_db_get(res, 0, "payment_id");
	amount_s = es_db_get(res, 0, "amount_cents");
	currency = es_db_get(res, 0, "currency");
	errno = 0;
	amount = amount_s ? strtoll(amount_s, &end, 10) : -1;
	if (!payment_id || !currency || !amount_s || errno || *end || amount < 0) {
		snprintf(reason, reason_size, "payments row of order %s is incomplete",
			 ev->subject);
		r = ES_HANDLER_REJECT;
		goto out;
	}
	data = json_pack("{s:s, s:s, s:I, s:s}", "orderId", ev->subject, "paymentId", payment_id,
			 "amountCents", (json_int_t)amount, "currency", currency);
	r = produce(db, app, ev, ES_PAYMENT_REFUNDED, data, reason, reason_size);
	if (r != ES_HANDLER_OK)
		goto out;
	app->outcome = PAYMENT_OUTCOME_REFUNDED;
	es_log(ES_LOG_INFO, ctx, "refunded %lld %s: payment %s", amount, currency, payment_id);
out:
	PQclear(res);
	return r;
}

enum es_handler_result payment_on_order_cancelled(struct es_db *db, const struct es_event *ev,
						  void *arg, char *reason, size_t reason_size)
{
	static const char void_sql[] =
		"INSERT INTO payments (order_id, outcome, cancelled_at, cancel_reason) "
		"VALUES ($1, 'voided', now(), $2) ON CONFLICT (order_id) DO NOTHING";
	static const char mark_sql[] =
		"UPDATE payments SET cancelled_at = now(), cancel_reason = $2 "
		"WHERE order_id = $1 AND cancelled_at IS NULL";
	struct payment_app *app = arg;
	const char *params[2] = {ev->subject, es_data_str(ev, "reason")};
	char trace[33];
	struct es_log_ctx ctx = log_ctx(ev, trace);
	long n;

	app->outcome = PAYMENT_OUTCOME_NONE;
	/* Not placed yet (events of one order may come out of order when an
	 * outbox row was delayed): the voided row bars any later charge. */
	n = es_db_exec(db, void_sql, 2, params, reason, reason_size);
	if (n < 0)
		return db_failure(db);
	if (n == 1) {
		es_log(ES_LOG_INFO, &ctx,
		       "OrderCancelled before any charge: the order will not be charged");
		return ES_HANDLER_OK;
	}
	if (es_db_exec(db, mark_sql, 2, params, reason, reason_size) < 0)
		return db_failure(db);
	return refund(db, app, ev, &ctx, reason, reason_size);
}

/* Sleeps ms in slices; returns -1 when asked to stop meanwhile. */
static int simulate_latency(long ms)
{
	while (ms > 0 && !es_stop) {
		long slice = ms < LATENCY_SLICE_MS ? ms : LATENCY_SLICE_MS;
		struct timespec ts = {slice / 1000, (slice % 1000) * 1000000L};

		nanosleep(&ts, NULL);
		ms -= slice;
	}
	return es_stop ? -1 : 0;
}

enum es_handler_result payment_handle(void *arg, const struct es_event *ev,
				      const struct es_delivery *d, char *reason, size_t reason_size)
{
	struct payment_app *app = arg;
	es_effect_fn *effect;
	enum es_handler_result r;

	if (!es_event_type_known(ev->type)) {
		snprintf(reason, reason_size, "unknown event type '%s'", ev->type);
		return ES_HANDLER_REJECT;
	}
	if (!strcmp(ev->type, ES_ORDER_PLACED))
		effect = payment_on_order_placed;
	else if (!strcmp(ev->type, ES_ORDER_CANCELLED))
		effect = payment_on_order_cancelled;
	else
		return ES_HANDLER_OK; /* OrderConfirmed: the charge stands */
	if (es_event_data_check(ev, reason, reason_size))
		return ES_HANDLER_REJECT;
	/* Before the transaction, so that a slow "bank" holds no locks and no
	 * connection in a transaction. RETRY on a stop: the offset stays
	 * unstored and the event comes back after the restart. */
	if (effect == payment_on_order_placed && simulate_latency(app->latency_ms)) {
		snprintf(reason, reason_size, "stopping during the simulated payment latency");
		return ES_HANDLER_RETRY;
	}
	app->outcome = PAYMENT_OUTCOME_NONE;
	r = es_inbox_process(app->db, PAYMENT_SERVICE, ev, effect, app, NULL, reason, reason_size);
	/* A duplicate leaves outcome NONE: the effect did not run. */
	if (r == ES_HANDLER_OK && app->outcome != PAYMENT_OUTCOME_NONE)
		es_counter_inc(app->counter, (const char *const[]){outcome_labels[app->outcome]});
	return r;
}
