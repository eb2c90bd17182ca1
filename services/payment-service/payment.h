/*
 * payment-service: charges an order's payment token when the order is
 * placed, and refunds the charge when the order is cancelled.
 *
 *   orders topic                         payments topic (through the outbox)
 *   OrderPlaced     -> simulate charge -> PaymentProcessed | PaymentFailed
 *   OrderCancelled  -> refund a charge -> PaymentRefunded (when charged)
 *   OrderConfirmed  -> nothing to do
 *
 * One charge per order, whatever the redeliveries (the inbox) or repeated
 * OrderPlaced events with new ids (the payments table's primary key on
 * order_id). One refund per order (payments.refunded_at). A cancellation
 * seen before the order's OrderPlaced is recorded, so the order is never
 * charged afterwards. A batch locks its orders, reads their rows once, and
 * writes what its events changed with one statement per kind (handler.c),
 * so two instances handling one order (a rebalance) take turns.
 */
#ifndef PAYMENT_H
#define PAYMENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "es/db.h"
#include "es/envelope.h"
#include "es/http.h"
#include "es/dispatch.h"
#include "es/kafka.h"
#include "es/metrics.h"

#define PAYMENT_SERVICE "payment-service"

/* Embedded migrations (generated from migrations/ at build time). */
extern const struct es_migration payment_migrations[];
extern const size_t payment_migrations_count;

/* ------------------------------------------------------------------ rules */

/* The largest order total, in cents, that may be charged. */
#define PAYMENT_LIMIT_CENTS 500000LL

/* The simulation's answer for one charge attempt. */
enum payment_verdict {
	PAYMENT_APPROVED = 0,
	PAYMENT_CARD_DECLINED,
	PAYMENT_INSUFFICIENT_FUNDS,
	PAYMENT_LIMIT_EXCEEDED,
};

/*
 * The contract's deterministic payment simulation, in its precedence:
 * a total above PAYMENT_LIMIT_CENTS is LIMIT_EXCEEDED whatever the token;
 * then tok_visa, tok_mastercard and any token starting with "tok_ok" are
 * approved; tok_declined is CARD_DECLINED; tok_insufficient_funds is
 * INSUFFICIENT_FUNDS; anything else (NULL included) is CARD_DECLINED.
 */
enum payment_verdict payment_decide(const char *token, long long total_cents);

/*
 * The payment_decline_percent fault switch (es/faults.h): true when this
 * order falls into the given percentage (0..100) of orders to decline
 * whatever their token. Decided by a hash of the order id, so that a
 * redelivered OrderPlaced gets the same answer.
 */
bool payment_fault_declines(const char *order_id, long percent);

/* The PaymentFailed reason of a verdict ("CARD_DECLINED", ...), or NULL
 * for PAYMENT_APPROVED. */
const char *payment_verdict_reason(enum payment_verdict v);

/* ---------------------------------------------------------------- handler */

/* What a committed effect did, for the es_payments_total counter. */
enum payment_outcome {
	PAYMENT_OUTCOME_NONE = 0, /* nothing new (voided, decided before) */
	PAYMENT_OUTCOME_CHARGED,
	PAYMENT_OUTCOME_DECLINED,
	PAYMENT_OUTCOME_REFUNDED,
};

/*
 * The consumer's state. payments_topic is where produced events go (not
 * owned, must outlive the app). counter may be NULL (no metrics).
 * latency_ms is waited once per batch holding an OrderPlaced, outside any
 * transaction.
 */
struct payment_app {
	const char *payments_topic;
	long latency_ms;
	int fault_latency; /* payment_latency_ms switch: replaces latency_ms when >= 0 */
	int fault_decline; /* payment_decline_percent switch */
	struct es_counter *counter;
	size_t charges; /* OrderPlaced events in the batch being prepared */
	json_t *batch; /* the batch's payments rows, by order (handler.c) */
};

/* The lock space of payment-service's order locks (es_db_lock_keys). */
#define PAYMENT_LOCK_SPACE "payment-service:order"

/* Fills app and defines payment-service's fault switches,
 * payment_latency_ms (-1: off, PAYMENT_LATENCY_MS applies) and
 * payment_decline_percent (0: off); counter starts NULL (see
 * payment_metrics_register). */
void payment_app_init(struct payment_app *app, const char *payments_topic, long latency_ms);

/*
 * Registers es_payments_total{outcome} (charged, declined, refunded) in
 * reg, with every child at 0, and points app->counter at it. Returns 0, or
 * -1 with errstr filled.
 */
int payment_metrics_register(struct payment_app *app, struct es_metrics *reg, char *errstr,
			     size_t errstr_size);

/*
 * What payment-service does with events (es/dispatch.h; the app is a
 * struct payment_app): OrderPlaced decides and records the charge and
 * puts PaymentProcessed or PaymentFailed in the outbox; OrderCancelled
 * bars a later charge or refunds the one made (PaymentRefunded). Other
 * known types need nothing.
 */
extern const struct es_handlers payment_handlers;

/* Frees what app holds of the batch in hand (nothing once a batch has
 * committed). */
void payment_app_release(struct payment_app *app);

/* ------------------------------------------------------------------ query */

/*
 * The payment of order_id as GET /payments/{orderId} shows it:
 *   {orderId, status: "CHARGED"|"DECLINED"|"REFUNDED", paymentId|null,
 *    amountCents, currency, reason|null}
 * Returns 1 with *out set (a new reference the caller owns), 0 when the
 * order was never charged nor declined (unknown, or cancelled before its
 * OrderPlaced), or -1 with errstr filled.
 */
int payment_lookup(struct es_db *db, const char *order_id, json_t **out, char *errstr,
		   size_t errstr_size);

/* -------------------------------------------------------------------- api */

/* Adds GET /payments/{orderId} to http, whose requests reach the database
 * through es_http_db. Returns 0, or -1 with errstr filled. */
int payment_api_routes(struct es_http *http, char *errstr, size_t errstr_size);

#endif
