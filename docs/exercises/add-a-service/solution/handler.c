/*
 * handler: what loyalty-service does with events (the exercise's reference
 * solution; docs/exercises/add-a-service.md).
 *
 *   OrderPlaced      remember whose order it is
 *   OrderConfirmed   the customer earns one point per whole euro, once
 *   PaymentRefunded  the points the order earned are taken back, once
 *
 * Each effect runs in the batch's transaction with the inbox record of its
 * event, so a redelivery is skipped before it gets here; the conditional
 * UPDATEs make a second OrderConfirmed or PaymentRefunded of one order
 * (another event id) change nothing either.
 */
#include <stdio.h>
#include <stdlib.h>

#include "es/events.h"
#include "es/log.h"
#include "loyalty.h"

/* OrderPlaced: the customer of the order, for the events that follow. */
static enum es_handler_result on_order_placed(struct es_effect *fx)
{
	if (es_db_exec(fx->db,
		       "INSERT INTO loyalty_orders (order_id, customer_id) VALUES ($1, $2) "
		       "ON CONFLICT (order_id) DO NOTHING",
		       2, (const char *const[]){fx->ev->subject, es_data_str(fx->ev, "customerId")},
		       fx->reason, sizeof(fx->reason)) < 0)
		return es_effect_db_failed(fx);
	return ES_HANDLER_OK;
}

/* Adds delta (negative for a refund) to the points of customer. */
static enum es_handler_result add_points(struct es_effect *fx, const char *customer,
					 long long delta)
{
	char delta_s[24];

	snprintf(delta_s, sizeof(delta_s), "%lld", delta);
	if (es_db_exec(fx->db,
		       "INSERT INTO loyalty_points AS p (customer_id, points) "
		       "VALUES ($1, GREATEST(0, $2::bigint)) ON CONFLICT (customer_id) "
		       "DO UPDATE SET points = GREATEST(0, p.points + $2::bigint)",
		       2, (const char *const[]){customer, delta_s}, fx->reason,
		       sizeof(fx->reason)) < 0)
		return es_effect_db_failed(fx);
	es_log(ES_LOG_INFO, &fx->log, "customer %s: %+lld points", customer, delta);
	return ES_HANDLER_OK;
}

/* OrderConfirmed: one point per whole euro of the total, once per order. */
static enum es_handler_result on_order_confirmed(struct es_effect *fx)
{
	long long points = es_data_int(fx->ev, "totalCents") / 100;
	enum es_handler_result r = ES_HANDLER_OK;
	char points_s[24];
	PGresult *res;

	snprintf(points_s, sizeof(points_s), "%lld", points);
	res = es_db_query(fx->db,
			  "UPDATE loyalty_orders SET earned = $2::bigint "
			  "WHERE order_id = $1 AND earned IS NULL RETURNING customer_id",
			  2, (const char *const[]){fx->ev->subject, points_s}, fx->reason,
			  sizeof(fx->reason));
	if (!res)
		return es_effect_db_failed(fx);
	if (PQntuples(res) == 1)
		r = add_points(fx, es_db_get(res, 0, "customer_id"), points);
	else
		es_log(ES_LOG_INFO, &fx->log, "OrderConfirmed: order unknown or already counted");
	PQclear(res);
	return r;
}

/* PaymentRefunded: the order's points taken back, once. */
static enum es_handler_result on_payment_refunded(struct es_effect *fx)
{
	enum es_handler_result r = ES_HANDLER_OK;
	PGresult *res;

	res = es_db_query(fx->db,
			  "UPDATE loyalty_orders SET refunded = true WHERE order_id = $1 "
			  "AND earned IS NOT NULL AND NOT refunded RETURNING customer_id, earned",
			  1, (const char *const[]){fx->ev->subject}, fx->reason,
			  sizeof(fx->reason));
	if (!res)
		return es_effect_db_failed(fx);
	if (PQntuples(res) == 1)
		r = add_points(fx, es_db_get(res, 0, "customer_id"),
			       -strtoll(es_db_get(res, 0, "earned"), NULL, 10));
	PQclear(res);
	return r;
}

static const struct es_dispatch_rule rules[] = {
	{ES_ORDER_PLACED, on_order_placed},
	{ES_ORDER_CONFIRMED, on_order_confirmed},
	{ES_PAYMENT_REFUNDED, on_payment_refunded},
	{NULL, NULL},
};

const struct es_handlers loyalty_handlers = {
	.rules = rules,
};

int loyalty_lookup(struct es_db *db, const char *key, json_t **out, char *errstr,
		   size_t errstr_size)
{
	PGresult *res;
	int found;

	*out = NULL;
	res = es_db_query(db, "SELECT points FROM loyalty_points WHERE customer_id = $1", 1,
			  (const char *const[]){key}, errstr, errstr_size);
	if (!res)
		return -1;
	found = PQntuples(res) == 1;
	if (found)
		*out = json_pack("{s:s, s:I}", "customerId", key, "points",
				 (json_int_t)strtoll(es_db_get(res, 0, "points"), NULL, 10));
	PQclear(res);
	if (found && !*out) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	return found;
}
