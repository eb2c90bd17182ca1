/*
 * sync-payment: payment-service's rules behind an HTTP call instead of a
 * topic. The same simulation (payment_decide, services/payment-service/
 * rules.c), the same payments table, the same simulated latency; but the
 * caller waits for it, one request at a time per HTTP thread.
 *
 *   POST /charges  {orderId, paymentToken, totalCents, currency}
 *                  200 {orderId, status: "CHARGED", paymentId, amountCents, currency}
 *                  402 {orderId, status: "DECLINED", reason, amountCents, currency}
 *                  A second charge of one order answers the first decision.
 *   POST /refunds  {orderId, reason}
 *                  200 {orderId, refunded: true|false}; an order not charged
 *                  yet is barred from being charged later (the caller may
 *                  have given up on a charge that is still on its way).
 *
 * Configuration: es/service.h's variables (HTTP_PORT default 8181,
 * DATABASE_SCHEMA default sync_payment), and PAYMENT_LATENCY_MS (0..60000,
 * default 0), slept in each charge's request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/clock.h"
#include "es/config.h"
#include "es/daemon.h"
#include "es/envelope.h"
#include "es/log.h"
#include "es/service.h"
#include "payment.h"
#include "sync.h"

#define SYNC_PAYMENT "sync-payment"
#define SYNC_PAYMENT_PORT 8181
#define LATENCY_MAX_MS 60000
#define LATENCY_SLICE_MS 100

static long latency_ms;

/* The "bank", in slices so that SIGTERM is answered promptly. */
static void bank_wait(void)
{
	for (long ms = latency_ms; ms > 0 && !es_stop; ms -= LATENCY_SLICE_MS)
		es_sleep_ms(ms < LATENCY_SLICE_MS ? ms : LATENCY_SLICE_MS);
}

static int bad_field(struct es_http_request *req, const char *pointer, const char *detail)
{
	json_t *errors = json_array();

	es_http_errors_add(errors, pointer, detail);
	return es_http_reply_problem(req, 422, SYNC_PROBLEM("invalid-request"), "Invalid request",
				     detail, errors);
}

/* The decision stored for the order, as the answer to a charge. */
static int reply_decision(struct es_http_request *req, struct es_db *db, const char *order_id)
{
	static const char sql[] = "SELECT outcome, payment_id::text AS payment_id, amount_cents, "
				  "currency, reason FROM payments WHERE order_id = $1";
	const char *outcome, *payment_id, *reason;
	json_int_t amount;
	char err[512];
	PGresult *res;
	int rc;

	res = es_db_query(db, sql, 1, (const char *const[]){order_id}, err, sizeof(err));
	if (!res)
		return sync_unavailable(req, "the payments database is unreachable");
	if (PQntuples(res) != 1) {
		PQclear(res);
		return sync_unavailable(req, "the charge's row vanished");
	}
	outcome = es_db_get(res, 0, "outcome");
	payment_id = es_db_get(res, 0, "payment_id");
	reason = es_db_get(res, 0, "reason");
	amount = strtoll(es_db_get(res, 0, "amount_cents") ? es_db_get(res, 0, "amount_cents")
							   : "0",
			 NULL, 10);
	if (!strcmp(outcome, "voided"))
		rc = es_http_reply_problem(req, 409, SYNC_PROBLEM("order-cancelled"), NULL,
					   "the order was cancelled before this charge", NULL);
	else if (!strcmp(outcome, "charged"))
		rc = es_http_reply_json(req, 200,
					json_pack("{s:s,s:s,s:s,s:I,s:s}", "orderId", order_id,
						  "status", "CHARGED", "paymentId", payment_id,
						  "amountCents", amount, "currency",
						  es_db_get(res, 0, "currency")));
	else
		rc = es_http_reply_json(req, 402,
					json_pack("{s:s,s:s,s:s,s:I,s:s?}", "orderId", order_id,
						  "status", "DECLINED", "reason",
						  reason ? reason : "CARD_DECLINED", "amountCents",
						  amount, "currency",
						  es_db_get(res, 0, "currency")));
	PQclear(res);
	return rc;
}

/* 0 when body is a charge this service can decide; otherwise it has
 * answered 422 and returns 1. */
static int charge_invalid(struct es_http_request *req, json_t *body)
{
	const char *order_id = json_string_value(json_object_get(body, "orderId"));
	const char *token = json_string_value(json_object_get(body, "paymentToken"));
	const char *currency = json_string_value(json_object_get(body, "currency"));
	json_t *total = json_object_get(body, "totalCents");

	if (!order_id || !es_uuid_valid(order_id))
		return bad_field(req, "/orderId", "must be a UUID"), 1;
	if (!token || strlen(token) > 64)
		return bad_field(req, "/paymentToken", "must be a string of at most 64 bytes"), 1;
	if (!json_is_integer(total) || json_integer_value(total) < 0)
		return bad_field(req, "/totalCents", "must be a whole number of cents, >= 0"), 1;
	if (!currency || strlen(currency) != 3)
		return bad_field(req, "/currency", "must be an ISO 4217 code"), 1;
	return 0;
}

static int post_charge(struct es_http_request *req, void *arg)
{
	static const char sql[] =
		"INSERT INTO payments (order_id, outcome, payment_id, amount_cents, currency, "
		"reason) VALUES ($1, $2, $3::uuid, $4::bigint, $5, $6) "
		"ON CONFLICT (order_id) DO NOTHING";
	json_t *body = sync_body(req);
	const char *order_id, *why;
	char payment_id[ES_UUID_LEN + 1], amount_s[24], err[512];
	enum payment_verdict verdict;
	long long amount;
	struct es_db *db;
	int rc = 0;

	if (!body || charge_invalid(req, body))
		goto out;
	order_id = json_string_value(json_object_get(body, "orderId"));
	amount = json_integer_value(json_object_get(body, "totalCents"));
	bank_wait();
	verdict = payment_decide(json_string_value(json_object_get(body, "paymentToken")), amount);
	why = payment_verdict_reason(verdict);
	es_uuid_new(payment_id);
	snprintf(amount_s, sizeof(amount_s), "%lld", amount);
	db = es_http_db(req, err, sizeof(err));
	if (!db ||
	    es_db_exec(db, sql, 6,
		       (const char *const[]){
			       order_id, verdict == PAYMENT_APPROVED ? "charged" : "declined",
			       verdict == PAYMENT_APPROVED ? payment_id : NULL, amount_s,
			       json_string_value(json_object_get(body, "currency")), why},
		       err, sizeof(err)) < 0)
		rc = sync_unavailable(req, "the payments database is unreachable");
	else
		rc = reply_decision(req, db, order_id);
out:
	json_decref(body);
	return rc;
}

static int post_refund(struct es_http_request *req, void *arg)
{
	static const char refund_sql[] =
		"UPDATE payments SET cancelled_at = coalesce(cancelled_at, now()), "
		"cancel_reason = coalesce(cancel_reason, $2), refunded_at = now() "
		"WHERE order_id = $1 AND outcome = 'charged' AND refunded_at IS NULL";
	static const char void_sql[] =
		"INSERT INTO payments (order_id, outcome, cancelled_at, cancel_reason) "
		"VALUES ($1, 'voided', now(), $2) ON CONFLICT (order_id) DO NOTHING";
	json_t *body = sync_body(req);
	const char *order_id, *reason;
	char err[512];
	struct es_db *db;
	long n = -1;
	int rc;

	if (!body)
		return 0;
	order_id = json_string_value(json_object_get(body, "orderId"));
	reason = json_string_value(json_object_get(body, "reason"));
	if (!order_id || !es_uuid_valid(order_id)) {
		rc = bad_field(req, "/orderId", "must be a UUID");
		goto out;
	}
	if (!reason)
		reason = "CANCELLED";
	db = es_http_db(req, err, sizeof(err));
	if (db)
		n = es_db_exec(db, refund_sql, 2, (const char *const[]){order_id, reason}, err,
			       sizeof(err));
	if (n == 0)
		/* Never charged (or refunded before): bar a charge still on its way. */
		if (es_db_exec(db, void_sql, 2, (const char *const[]){order_id, reason}, err,
			       sizeof(err)) < 0)
			n = -1;
	if (n < 0)
		rc = sync_unavailable(req, "the payments database is unreachable");
	else
		rc = es_http_reply_json(
			req, 200, json_pack("{s:s,s:b}", "orderId", order_id, "refunded", n > 0));
	if (n > 0)
		es_info("order %s: refunded (%s)", order_id, reason);
out:
	json_decref(body);
	return rc;
}

int main(void)
{
	const struct es_service_spec spec = {
		.name = SYNC_PAYMENT,
		.http_port = SYNC_PAYMENT_PORT,
		.migrations = payment_migrations,
		.nmigrations = payment_migrations_count,
		.http_only = true,
	};
	struct es_service svc;
	char errstr[512];
	int rc = 1;

	es_log_init(spec.name, ES_LOG_INFO);
	if (es_config_long("PAYMENT_LATENCY_MS", 0, 0, LATENCY_MAX_MS, &latency_ms, errstr,
			   sizeof(errstr)) ||
	    es_service_init(&svc, &spec, errstr, sizeof(errstr))) {
		es_error("cannot start: %s", errstr);
		return 1;
	}
	if (latency_ms)
		es_info("simulating %ld ms of payment latency per charge", latency_ms);
	if (es_http_route(svc.http, "POST", "/charges", post_charge, NULL, errstr,
			  sizeof(errstr)) ||
	    es_http_route(svc.http, "POST", "/refunds", post_refund, NULL, errstr,
			  sizeof(errstr)) ||
	    es_service_start(&svc, errstr, sizeof(errstr)))
		es_error("stopping: %s", errstr);
	else
		rc = es_service_serve(&svc);
	es_service_release(&svc);
	return rc;
}
