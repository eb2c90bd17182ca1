/*
 * lookup: one order's payment as GET /payments/{orderId} shows it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payment.h"

/* The API's status: a refund outranks the charge it undid. */
static const char *status_of(const char *outcome, const char *refunded)
{
	if (refunded && !strcmp(refunded, "t"))
		return "REFUNDED";
	return !strcmp(outcome, "charged") ? "CHARGED" : "DECLINED";
}

/* A JSON string, or null for SQL NULL. */
static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

int payment_lookup(struct es_db *db, const char *order_id, json_t **out, char *errstr,
		   size_t errstr_size)
{
	/* A voided row records a cancellation before any charge: there is
	 * no payment to show. */
	static const char sql[] =
		"SELECT order_id, outcome, payment_id::text AS payment_id, amount_cents, "
		"currency, reason, refunded_at IS NOT NULL AS refunded "
		"FROM payments WHERE order_id = $1 AND outcome <> 'voided'";
	const char *outcome, *amount_s, *currency;
	long long amount;
	char *end = NULL;
	PGresult *res;
	int result = -1;

	*out = NULL;
	res = es_db_query(db, sql, 1, (const char *const[]){order_id}, errstr, errstr_size);
	if (!res)
		return -1;
	if (PQntuples(res) == 0) {
		result = 0;
		goto out;
	}
	outcome = es_db_get(res, 0, "outcome");
	amount_s = es_db_get(res, 0, "amount_cents");
	currency = es_db_get(res, 0, "currency");
	errno = 0;
	amount = amount_s ? strtoll(amount_s, &end, 10) : -1;
	if (!outcome || !currency || !amount_s || errno || *end || amount < 0) {
		snprintf(errstr, errstr_size, "payments row of order %s is incomplete", order_id);
		goto out;
	}
	*out = json_pack("{s:s, s:s, s:o, s:I, s:s, s:o}", "orderId", es_db_get(res, 0, "order_id"),
			 "status", status_of(outcome, es_db_get(res, 0, "refunded")), "paymentId",
			 string_or_null(es_db_get(res, 0, "payment_id")), "amountCents",
			 (json_int_t)amount, "currency", currency, "reason",
			 string_or_null(es_db_get(res, 0, "reason")));
	if (!*out) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	result = 1;
out:
	PQclear(res);
	return result;
}
