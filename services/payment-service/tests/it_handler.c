/*
 * Integration tests of payment-service's handler against a real PostgreSQL
 * (DATABASE_URL): each test gets a schema of its own with the service's
 * migrations, calls the handler the way the consumer loop would, and reads
 * what it left in the payments table, the inbox and the outbox. They prove
 * one charge per order (redeliveries, repeated OrderPlaced events), one
 * refund per order, no charge after a cancellation, and the same when an
 * OrderPlaced and an OrderCancelled of one order race on two connections.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "es/db.h"
#include "es/events.h"
#include "es/inbox.h"
#include "es/log.h"
#include "es/metrics.h"
#include "payment.h"
#include "testsupport.h"

#define TOPIC "payments"
#define ORDER "0b6f2c9e-51d4-4e8a-9c1f-3a7d2e6b8f40"

static const char *test_conninfo;

/* ------------------------------------------------------------------------ */
/* Fixture and helpers                                                      */
/* ------------------------------------------------------------------------ */

static struct es_db *connect_schema(const char *schema)
{
	return es_test_connect(test_conninfo, schema);
}

/* A new schema with the library's and the service's migrations. */
static struct es_db *connect_migrated(char *schema, size_t size)
{
	char errstr[512];
	struct es_db *db;

	ck_assert_int_eq(es_test_unique_name(schema, size, "pay"), 0);
	db = connect_schema(schema);
	ck_assert_msg(es_db_migrate_list(db, payment_migrations, payment_migrations_count, errstr,
					 sizeof(errstr)) >= 0,
		      "%s", errstr);
	return db;
}

static struct es_event *order_placed(const char *order_id, const char *token, long long total)
{
	struct es_event *ev;

	ev = es_event_new("order-service", ES_ORDER_PLACED, order_id, NULL, NULL,
			  json_pack("{s:s, s:s, s:s, s:[{s:s, s:i, s:I}], s:I, s:s, s:s}",
				    "orderId", order_id, "customerId", "cust-1", "customerEmail",
				    "ada@example.com", "items", "sku", "mug-classic", "quantity", 1,
				    "unitPriceCents", (json_int_t)total, "totalCents",
				    (json_int_t)total, "currency", "EUR", "paymentToken", token));
	ck_assert_ptr_nonnull(ev);
	return ev;
}

/* An OrderCancelled continuing cause's saga (or a new one when NULL). */
static struct es_event *order_cancelled(const char *order_id, const struct es_event *cause)
{
	struct es_event *ev;

	ev = es_event_new("order-service", ES_ORDER_CANCELLED, order_id, cause, NULL,
			  json_pack("{s:s, s:s, s:s}", "orderId", order_id, "reason",
				    "CUSTOMER_REQUEST", "detail", "changed my mind"));
	ck_assert_ptr_nonnull(ev);
	return ev;
}

/* The dispatch path of payment-service on db, with app prepared to
 * produce to TOPIC and to simulate latency_ms of bank per batch. */
static struct es_dispatch dispatch_on(struct es_db *db, struct payment_app *app, long latency_ms)
{
	payment_app_init(app, TOPIC, latency_ms);
	return (struct es_dispatch){
		.consumer = PAYMENT_SERVICE, .db = db, .handlers = &payment_handlers, .app = app};
}

/* Runs ev through the dispatch path as a batch of one, as the consumer
 * loop would; the result must be want. */
static void handle_expect(struct es_dispatch *d, const struct es_event *ev,
			  enum es_handler_result want)
{
	char reason[512] = "";
	enum es_handler_result r = es_dispatch_one(d, ev, reason, sizeof(reason));

	ck_assert_msg(r == want, "%s %s: result %d, expected %d (%s)", ev->type, ev->id, r, want,
		      reason);
}

static long count_rows(struct es_db *db, const char *sql, const char *param)
{
	char errstr[512];
	PGresult *res;
	long n;

	res = es_db_query(db, sql, param ? 1 : 0, (const char *const[]){param}, errstr,
			  sizeof(errstr));
	ck_assert_msg(res, "%s", errstr);
	n = strtol(es_db_get(res, 0, "n"), NULL, 10);
	PQclear(res);
	return n;
}

/* Outbox rows of one type (all orders). */
static long outbox_count(struct es_db *db, const char *type)
{
	return count_rows(db, "SELECT count(*) AS n FROM es_outbox WHERE event_type = $1", type);
}

static long outbox_total(struct es_db *db)
{
	return count_rows(db, "SELECT count(*) AS n FROM es_outbox", NULL);
}

static long charges(struct es_db *db, const char *order_id)
{
	return count_rows(db,
			  "SELECT count(*) AS n FROM payments "
			  "WHERE order_id = $1 AND outcome = 'charged'",
			  order_id);
}

static long inbox_count(struct es_db *db)
{
	char errstr[512];
	long n = es_inbox_count(db, PAYMENT_SERVICE, errstr, sizeof(errstr));

	ck_assert_msg(n >= 0, "%s", errstr);
	return n;
}

/* The one outbox event of type (parsed; caller frees), checked to be on
 * TOPIC, keyed by its order and a valid contract event. */
static struct es_event *outbox_event(struct es_db *db, const char *type)
{
	char errstr[512];
	struct es_event *ev;
	PGresult *res;
	const char *payload;

	res = es_db_query(db,
			  "SELECT topic, msg_key, payload FROM es_outbox WHERE event_type = $1 "
			  "ORDER BY id",
			  1, (const char *const[]){type}, errstr, sizeof(errstr));
	ck_assert_msg(res, "%s", errstr);
	ck_assert_int_eq(PQntuples(res), 1);
	ck_assert_str_eq(es_db_get(res, 0, "topic"), TOPIC);
	payload = es_db_get(res, 0, "payload");
	ev = es_event_parse(payload, strlen(payload), errstr, sizeof(errstr));
	ck_assert_msg(ev, "outbox payload: %s", errstr);
	ck_assert_str_eq(es_db_get(res, 0, "msg_key"), ev->subject);
	PQclear(res);
	ck_assert_msg(es_event_data_check(ev, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_str_eq(ev->source, "/eventshop/payment-service");
	return ev;
}

/* ev continues cause's saga. */
static void assert_caused_by(const struct es_event *ev, const struct es_event *cause)
{
	ck_assert_str_eq(ev->causationid, cause->id);
	ck_assert_str_eq(ev->correlationid, cause->correlationid);
	ck_assert_str_eq(ev->traceparent, cause->traceparent);
}

/* What GET /payments/{orderId} would show; NULL when it would be 404. */
static json_t *lookup(struct es_db *db, const char *order_id)
{
	char errstr[512];
	json_t *out;
	int rc = payment_lookup(db, order_id, &out, errstr, sizeof(errstr));

	ck_assert_msg(rc >= 0, "%s", errstr);
	ck_assert(rc == 1 ? out != NULL : out == NULL);
	return out;
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static long long jint(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
	return json_integer_value(v);
}

/* ------------------------------------------------------------------------ */
/* Charging                                                                 */
/* ------------------------------------------------------------------------ */

START_TEST(processed_order_produces_one_payment_processed)
{
	char schema[64];
	struct es_db *db = connect_migrated(schema, sizeof(schema));
	struct es_event *placed = order_placed(ORDER, "tok_visa", 3798);
	struct payment_app app;
	struct es_dispatch dispatch;
	struct es_event *out;
	json_t *p;

	dispatch = dispatch_on(db, &app, 0);
	handle_expect(&dispatch, placed, ES_HANDLER_OK);

	ck_assert_int_eq(outbox_total(db), 1);
	out = outbox_event(db, ES_PAYMENT_PROCESSED);
	ck_assert_str_eq(out->subject, ORDER);
	ck_assert_str_eq(es_data_str(out, "orderId"), ORDER);
	ck_assert(es_uuid_valid(es_data_str(out, "paymentId")));
	ck_assert_int_eq(es_data_int(out, "amountCents"), 3798);
	ck_assert_str_eq(es_data_str(out, "currency"), "EUR");
	assert_caused_by(out, placed);
	ck_assert_int_eq(charges(db, ORDER), 1);
	ck_assert_int_eq(inbox_count(db), 1);

	p = lookup(db, ORDER);
	ck_assert_str_eq(jstr(p, "orderId"), ORDER);
	ck_assert_str_eq(jstr(p, "status"), "CHARGED");
	ck_assert_str_eq(jstr(p, "paymentId"), es_data_str(out, "paymentId"));
	ck_assert_int_eq(jint(p, "amountCents"), 3798);
	ck_assert_str_eq(jstr(p, "currency"), "EUR");
	ck_assert(json_is_null(json_object_get(p, "reason")));
	json_decref(p);

	es_event_free(out);
	es_event_free(placed);
	es_db_free(db);
}
END_TEST

START_TEST(same_event_twice_charges_once)
{
	char schema[64];
	struct es_db *db = connect_migrated(schema, sizeof(schema));
	struct es_event *placed = order_placed(ORDER, "tok_mastercard", 1299);
	struct payment_app app;
	struct es_dispatch dispatch;

	dispatch = dispatch_on(db, &app, 0);
	handle_expect(&dispatch, placed, ES_HANDLER_OK);
	handle_expect(&dispatch, placed, ES_HANDLER_OK);
	/* The redelivery was recognised by the inbox: no effect ran. */
	ck_assert_int_eq(charges(db, ORDER), 1);
	ck_assert_int_eq(outbox_count(db, ES_PAYMENT_PROCESSED), 1);
	ck_assert_int_eq(outbox_total(db), 1);
	ck_assert_int_eq(inbox_count(db), 1);
	es_event_free(placed);
	es_db_free(db);
}
END_TEST

START_TEST(second_order_placed_with_a_new_id_charges_nothing)
{
	char schema[64];
	struct es_db *db = connect_migrated(schema, sizeof(schema));
	struct es_event *first = order_placed(ORDER, "tok_visa", 1299);
	/* Same order, new event id, even another token and total: the
	 * order's first decision stands. */
	struct es_event *again = order_placed(ORDER, "tok_declined", 2599);
	struct payment_app app;
	struct es_dispatch dispatch;
	struct es_event *out;
	json_t *p;

	dispatch = dispatch_on(db, &app, 0);
	handle_expect(&dispatch, first, ES_HANDLER_OK);
	handle_expect(&dispatch, again, ES_HANDLER_OK);
	ck_assert_int_eq(inbox_count(db), 2);
	ck_assert_int_eq(charges(db, ORDER), 1);
	ck_assert_int_eq(outbox_total(db), 1);
	out = outbox_event(db, ES_PAYMENT_PROCESSED);
	assert_caused_by(out, first);
	p = lookup(db, ORDER);
	ck_assert_str_eq(jstr(p, "status"), "CHARGED");
	ck_assert_str_eq(jstr(p, "paymentId"), es_data_str(out, "paymentId"));
	ck_assert_int_eq(jint(p, "amountCents"), 1299);
	json_decref(p);
	es_event_free(out);
	es_event_free(again);
	es_event_free(first);
	es_db_free(db);
}
END_TEST

/* One declined order per row: token, total, the PaymentFailed reason. */
static const struct {
	const char *token;
	long long total;
	const char *reason;
} declines[] = {
	{"tok_declined", 1299, "CARD_DECLINED"},
	{"tok_insufficient_funds", 1299, "INSUFFICIENT_FUNDS"},
	{"tok_unheard_of", 1299, "CARD_DECLINED"},
	{"tok_visa", 500001, "LIMIT_EXCEEDED"},
};

START_TEST(declined_token_produces_payment_failed)
{
	char schema[64];
	struct es_db *db = connect_migrated(schema, sizeof(schema));
	struct es_event *placed = order_placed(ORDER, declines[_i].token, declines[_i].total);
	struct payment_app app;
	struct es_dispatch dispatch;
	struct es_event *out;
	json_t *p;

	dispatch = dispatch_on(db, &app, 0);
	handle_expect(&dispatch, placed, ES_HANDLER_OK);
	ck_assert_int_eq(outbox_total(db), 1);
	out = outbox_event(db, ES_PAYMENT_FAILED);
	ck_assert_str_eq(es_data_str(out, "orderId"), ORDER);
	ck_assert_str_eq(es_data_str(out, "reason"), declines[_i].reason);
	ck_assert_int_eq(es_data_int(out, "amountCents"), declines[_i].total);
	ck_assert_str_eq(es_data_str(out, "currency"), "EUR");
	ck_assert_ptr_null(json_object_get(out->data, "paymentId"));
	assert_caused_by(out, placed);
	ck_assert_int_eq(charges(db, ORDER), 0);

	p = lookup(db, ORDER);
	ck_assert_str_eq(jstr(p, "status"), "DECLINED");
	ck_assert(json_is_null(json_object_get(p, "paymentId")));
	ck_assert_str_eq(jstr(p, "reason"), declines[_i].reason);
	ck_assert_int_eq(jint(p, "amountCents"), declines[_i].total);
	json_decref(p);
	es_event_free(out);
	es_event_free(placed);
	es_db_free(db);
}
END_TEST

START_TEST(orders_are_charged_independently)
{
	char schema[64], other[ES_UUID_LEN + 1];
	struct es_db *db = connect_migrated(schema, sizeof(schema));
	struct es_event *a, *b;
	struct payment_app app;
	struct es_dispatch dispatch;

	es_uuid_new(other);
	a = order_placed(ORDER, "tok_visa", 1299);
	b = order_placed(other, "tok_ok_second", 499);
	dispatch = dispatch_on(db, &app, 0);
	handle_expect(&dispatch, a, ES_HANDLER_OK);
	handle_expect(&dispatch, b, ES_HANDLER_OK);
	ck_assert_int_eq(charges(db, ORDER), 1);
	ck_assert_int_eq(charges(db, other), 1);
	ck_assert_int_eq(outbox_count(db, ES_PAYMENT_PROCESSED), 2);
	es_event_free(b);
	es_event_free(a);
	es_db_free(db);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Refunds and cancellations                                                */
/* ------------------------------------------------------------------------ */

START_TEST(order_cancelled_after_a_charge_refunds_it_once)
{
	char schema[64];
	struct es_db *db = connect_migrated(schema, sizeof(schema));
	struct es_event *placed = order_placed(ORDER, "tok_visa", 5999);
	struct es_event *cancelled = order_cancelled(ORDER, placed);
	struct es_event *cancelled_again = order_cancelled(ORDER, placed);
	struct es_event *charge, *refund;
	struct payment_app app;
	struct es_dispatch dispatch;
	json_t *p;

	dispatch = dispatch_on(db, &app, 0);
	handle_expect(&dispatch, placed, ES_HANDLER_OK);
	handle_expect(&dispatch, cancelled, ES_HANDLER_OK);

	charge = outbox_event(db, ES_PAYMENT_PROCESSED);
	refund = outbox_event(db, ES_PAYMENT_REFUNDED);
	ck_assert_str_eq(es_data_str(refund, "orderId"), ORDER);
	ck_assert_str_eq(es_data_str(refund, "paymentId"), es_data_str(charge, "paymentId"));
	ck_assert_int_eq(es_data_int(refund, "amountCents"), 5999);
	ck_assert_str_eq(es_data_str(refund, "currency"), "EUR");
	assert_caused_by(refund, cancelled);

	/* The same OrderCancelled redelivered, then another one. */
	handle_expect(&dispatch, cancelled, ES_HANDLER_OK);
	handle_expect(&dispatch, cancelled_again, ES_HANDLER_OK);
	ck_assert_int_eq(outbox_count(db, ES_PAYMENT_REFUNDED), 1);
	ck_assert_int_eq(outbox_total(db), 2);
	/* And a late OrderPlaced charges nothing anew. */
	handle_expect(&dispatch, placed, ES_HANDLER_OK);
	ck_assert_int_eq(outbox_total(db), 2);

	p = lookup(db, ORDER);
	ck_assert_str_eq(jstr(p, "status"), "REFUNDED");
	ck_assert_str_eq(jstr(p, "paymentId"), es_data_str(charge, "paymentId"));
	json_decref(p);
	es_event_free(refund);
	es_event_free(charge);
	es_event_free(cancelled_again);
	es_event_free(cancelled);
	es_event_free(placed);
	es_db_free(db);
}
END_TEST

/* A row's columns as text ("" for NULL), for one order. */
static void row_text(struct es_db *db, const char *order_id, char *out, size_t size)
{
	char errstr[512];
	PGresult *res;

	res = es_db_query(db,
			  "SELECT outcome || ' cancelled=' || (cancelled_at IS NOT NULL)::text"
			  " || ' refunded=' || (refunded_at IS NOT NULL)::text"
			  " || ' reason=' || coalesce(cancel_reason, '-') AS t"
			  " FROM payments WHERE order_id = $1",
			  1, (const char *const[]){order_id}, errstr, sizeof(errstr));
	ck_assert_msg(res, "%s", errstr);
	snprintf(out, size, "%s", PQntuples(res) ? es_db_get(res, 0, "t") : "");
	PQclear(res);
}

/*
 * One batch reads its orders' rows once and writes them back once, and
 * its events still act in order: an order charged and cancelled in the
 * same batch is refunded, one cancelled before its OrderPlaced is never
 * charged, and a decline is left alone.
 */
START_TEST(one_batch_applies_its_events_in_order)
{
	static const char *const a = "1d0c2f7a-6b1e-4c3a-9f8e-2a4b6c8d0e1f";
	static const char *const b = "2e1d3a8b-7c2f-4d4b-8a9f-3b5c7d9e1f2a";
	static const char *const c = "3f2e4b9c-8d3a-4e5c-9b0a-4c6d8e0f2a3b";
	char schema[64], text[128];
	struct es_db *db = connect_migrated(schema, sizeof(schema));
	struct es_event *placed_a = order_placed(a, "tok_visa", 2500);
	struct es_event *placed_b = order_placed(b, "tok_declined", 1800);
	struct es_event *cancelled_a = order_cancelled(a, placed_a);
	struct es_event *cancelled_c = order_cancelled(c, NULL);
	struct es_event *placed_c = order_placed(c, "tok_visa", 900);
	struct es_event *again_a = order_cancelled(a, placed_a);
	struct es_batch_item items[5] = {
		{.ev = placed_a},    {.ev = placed_b}, {.ev = cancelled_a},
		{.ev = cancelled_c}, {.ev = placed_c},
	};
	struct es_event *charge, *refund;
	struct payment_app app;
	struct es_dispatch dispatch;
	char reason[512] = "";

	dispatch = dispatch_on(db, &app, 0);
	ck_assert_msg(es_dispatch_batch(&dispatch, items, 5, reason, sizeof(reason)) ==
			      ES_HANDLER_OK,
		      "%s", reason);
	for (int i = 0; i < 5; i++)
		ck_assert_msg(items[i].result == ES_HANDLER_OK, "item %d: %s", i, items[i].reason);
	ck_assert_ptr_null(app.batch); /* released once written */

	row_text(db, a, text, sizeof(text));
	ck_assert_str_eq(text, "charged cancelled=true refunded=true reason=CUSTOMER_REQUEST");
	row_text(db, b, text, sizeof(text));
	ck_assert_str_eq(text, "declined cancelled=false refunded=false reason=-");
	row_text(db, c, text, sizeof(text));
	ck_assert_str_eq(text, "voided cancelled=true refunded=false reason=CUSTOMER_REQUEST");
	ck_assert_int_eq(outbox_count(db, ES_PAYMENT_FAILED), 1);
	charge = outbox_event(db, ES_PAYMENT_PROCESSED);
	refund = outbox_event(db, ES_PAYMENT_REFUNDED);
	ck_assert_str_eq(es_data_str(charge, "orderId"), a);
	ck_assert_str_eq(es_data_str(refund, "paymentId"), es_data_str(charge, "paymentId"));
	ck_assert_int_eq(es_data_int(refund, "amountCents"), 2500);
	assert_caused_by(refund, cancelled_a);
	ck_assert_int_eq(outbox_total(db), 3);

	/* A later batch finds what this one wrote: no second refund. */
	handle_expect(&dispatch, again_a, ES_HANDLER_OK);
	ck_assert_int_eq(outbox_total(db), 3);
	es_event_free(refund);
	es_event_free(charge);
	es_event_free(again_a);
	es_event_free(placed_c);
	es_event_free(cancelled_c);
	es_event_free(cancelled_a);
	es_event_free(placed_b);
	es_event_free(placed_a);
	es_db_free(db);
}
END_TEST

START_TEST(order_cancelled_before_order_placed_charges_nothing)
{
	char schema[64];
	struct es_db *db = connect_migrated(schema, sizeof(schema));
	struct es_event *cancelled = order_cancelled(ORDER, NULL);
	struct es_event *placed = order_placed(ORDER, "tok_visa", 1299);
	struct es_event *cancelled_again = order_cancelled(ORDER, NULL);
	struct payment_app app;
	struct es_dispatch dispatch;

	dispatch = dispatch_on(db, &app, 0);
	handle_expect(&dispatch, cancelled, ES_HANDLER_OK);
	handle_expect(&dispatch, placed, ES_HANDLER_OK);
	handle_expect(&dispatch, cancelled_again, ES_HANDLER_OK);
	ck_assert_int_eq(charges(db, ORDER), 0);
	ck_assert_int_eq(outbox_total(db), 0);
	ck_assert_int_eq(inbox_count(db), 3);
	/* There is no payment to show. */
	ck_assert_ptr_null(lookup(db, ORDER));
	es_event_free(cancelled_again);
	es_event_free(placed);
	es_event_free(cancelled);
	es_db_free(db);
}
END_TEST

START_TEST(order_cancelled_after_a_decline_refunds_nothing)
{
	char schema[64];
	struct es_db *db = connect_migrated(schema, sizeof(schema));
	struct es_event *placed = order_placed(ORDER, "tok_declined", 1299);
	struct es_event *cancelled = order_cancelled(ORDER, placed);
	struct payment_app app;
	struct es_dispatch dispatch;
	json_t *p;

	dispatch = dispatch_on(db, &app, 0);
	handle_expect(&dispatch, placed, ES_HANDLER_OK);
	handle_expect(&dispatch, cancelled, ES_HANDLER_OK);
	ck_assert_int_eq(outbox_count(db, ES_PAYMENT_FAILED), 1);
	ck_assert_int_eq(outbox_total(db), 1);
	p = lookup(db, ORDER);
	ck_assert_str_eq(jstr(p, "status"), "DECLINED");
	json_decref(p);
	es_event_free(cancelled);
	es_event_free(placed);
	es_db_free(db);
}
END_TEST

START_TEST(unknown_order_is_not_found)
{
	char schema[64];
	struct es_db *db = connect_migrated(schema, sizeof(schema));

	ck_assert_ptr_null(lookup(db, ORDER));
	ck_assert_ptr_null(lookup(db, "x'); DROP TABLE payments; --"));
	ck_assert_ptr_null(lookup(db, ORDER));
	es_db_free(db);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* What is not processed                                                    */
/* ------------------------------------------------------------------------ */

/* The handler's answer and reason for ev (which it must not apply). */
static void expect_reject(struct es_db *db, struct es_event *ev, const char *in_reason)
{
	struct payment_app app;
	struct es_dispatch dispatch;
	char reason[512] = "";

	dispatch = dispatch_on(db, &app, 0);
	ck_assert_int_eq(es_dispatch_one(&dispatch, ev, reason, sizeof(reason)), ES_HANDLER_REJECT);
	ck_assert_msg(strstr(reason, in_reason), "reason '%s' should mention '%s'", reason,
		      in_reason);
	es_event_free(ev);
}

START_TEST(malformed_data_is_rejected_with_a_reason)
{
	char schema[64];
	struct es_db *db = connect_migrated(schema, sizeof(schema));
	struct es_event *ev;

	ev = order_placed(ORDER, "tok_visa", 1299);
	json_object_del(ev->data, "paymentToken");
	expect_reject(db, ev, "paymentToken");

	ev = order_placed(ORDER, "tok_visa", 1299);
	json_object_set_new(ev->data, "totalCents", json_integer(-1));
	expect_reject(db, ev, "totalCents");

	ev = order_placed(ORDER, "tok_visa", 1299);
	json_object_set_new(ev->data, "orderId", json_string("another-order"));
	expect_reject(db, ev, "orderId");

	ev = order_cancelled(ORDER, NULL);
	json_object_set_new(ev->data, "reason", json_string("BORED"));
	expect_reject(db, ev, "reason");

	ev = es_event_new("order-service", "OrderShipped", ORDER, NULL, NULL,
			  json_pack("{s:s}", "orderId", ORDER));
	expect_reject(db, ev, "OrderShipped");

	/* Rejected events leave nothing behind, not even an inbox row: a
	 * fixed producer may send them again. */
	ck_assert_int_eq(inbox_count(db), 0);
	ck_assert_int_eq(outbox_total(db), 0);
	ck_assert_int_eq(count_rows(db, "SELECT count(*) AS n FROM payments", NULL), 0);
	es_db_free(db);
}
END_TEST

START_TEST(order_confirmed_changes_nothing)
{
	char schema[64];
	struct es_db *db = connect_migrated(schema, sizeof(schema));
	struct es_event *placed = order_placed(ORDER, "tok_visa", 1299);
	struct es_event *confirmed;
	struct payment_app app;
	struct es_dispatch dispatch;

	dispatch = dispatch_on(db, &app, 0);
	handle_expect(&dispatch, placed, ES_HANDLER_OK);
	confirmed = es_event_new("order-service", ES_ORDER_CONFIRMED, ORDER, placed, NULL,
				 json_pack("{s:s, s:s, s:s, s:i, s:s}", "orderId", ORDER,
					   "paymentId", "p", "reservationId", "r", "totalCents",
					   1299, "currency", "EUR"));
	handle_expect(&dispatch, confirmed, ES_HANDLER_OK);
	ck_assert_int_eq(outbox_total(db), 1);
	ck_assert_int_eq(inbox_count(db), 1);
	es_event_free(confirmed);
	es_event_free(placed);
	es_db_free(db);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Metrics and latency                                                      */
/* ------------------------------------------------------------------------ */

static bool rendered(struct es_metrics *reg, const char *line)
{
	char *text = es_metrics_render(reg, NULL);
	bool found = text && strstr(text, line);

	free(text);
	return found;
}

START_TEST(outcomes_are_counted_once_each)
{
	char schema[64], other[ES_UUID_LEN + 1], errstr[512];
	struct es_db *db = connect_migrated(schema, sizeof(schema));
	struct es_metrics *reg = es_metrics_new();
	struct es_event *placed, *declined, *cancelled;
	struct payment_app app;
	struct es_dispatch dispatch;

	es_uuid_new(other);
	placed = order_placed(ORDER, "tok_visa", 1299);
	declined = order_placed(other, "tok_declined", 1299);
	cancelled = order_cancelled(ORDER, placed);
	dispatch = dispatch_on(db, &app, 0);
	ck_assert_msg(payment_metrics_register(&app, reg, errstr, sizeof(errstr)) == 0, "%s",
		      errstr);
	for (int i = 0; i < 2; i++) {
		handle_expect(&dispatch, placed, ES_HANDLER_OK);
		handle_expect(&dispatch, declined, ES_HANDLER_OK);
		handle_expect(&dispatch, cancelled, ES_HANDLER_OK);
	}
	ck_assert(rendered(reg, "es_payments_total{outcome=\"charged\"} 1\n"));
	ck_assert(rendered(reg, "es_payments_total{outcome=\"declined\"} 1\n"));
	ck_assert(rendered(reg, "es_payments_total{outcome=\"refunded\"} 1\n"));
	es_event_free(cancelled);
	es_event_free(declined);
	es_event_free(placed);
	es_metrics_free(reg);
	es_db_free(db);
}
END_TEST

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

START_TEST(latency_is_simulated_before_an_order_placed_only)
{
	char schema[64];
	struct es_db *db = connect_migrated(schema, sizeof(schema));
	struct es_event *placed = order_placed(ORDER, "tok_visa", 1299);
	struct es_event *confirmed;
	struct payment_app app;
	struct es_dispatch dispatch;
	long long t0;

	dispatch = dispatch_on(db, &app, 250);
	t0 = now_ms();
	handle_expect(&dispatch, placed, ES_HANDLER_OK);
	ck_assert_int_ge(now_ms() - t0, 250);
	ck_assert_int_eq(charges(db, ORDER), 1);

	confirmed = es_event_new("order-service", ES_ORDER_CONFIRMED, ORDER, placed, NULL,
				 json_pack("{s:s, s:s, s:s, s:i, s:s}", "orderId", ORDER,
					   "paymentId", "p", "reservationId", "r", "totalCents",
					   1299, "currency", "EUR"));
	t0 = now_ms();
	handle_expect(&dispatch, confirmed, ES_HANDLER_OK);
	ck_assert_int_lt(now_ms() - t0, 250);
	es_event_free(confirmed);
	es_event_free(placed);
	es_db_free(db);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* An OrderPlaced and an OrderCancelled of one order on two connections     */
/* (two instances during a rebalance)                                       */
/* ------------------------------------------------------------------------ */

struct racer {
	struct payment_app app;
	struct es_handlers handlers;
	struct es_dispatch dispatch;
	const struct es_event *ev;
	enum es_handler_result result;
	char reason[512];
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;

	r->result = es_dispatch_one(&r->dispatch, r->ev, r->reason, sizeof(r->reason));
	return NULL;
}

/* Where the first racer stops: its batch written, its transaction (and
 * the order's lock) still open, until the test lets it commit. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool holding, go;
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false};

static int write_then_hold(struct es_db *db, void *app, struct es_effect *const *applied, size_t n,
			   char *reason, size_t reason_size)
{
	int rc = payment_handlers.before_commit(db, app, applied, n, reason, reason_size);

	pthread_mutex_lock(&gate.mu);
	gate.holding = true;
	pthread_cond_broadcast(&gate.cv);
	while (!gate.go)
		pthread_cond_wait(&gate.cv, &gate.mu);
	pthread_mutex_unlock(&gate.mu);
	return rc;
}

static bool first_holds(void *arg)
{
	bool holding;

	(void)arg;
	pthread_mutex_lock(&gate.mu);
	holding = gate.holding;
	pthread_mutex_unlock(&gate.mu);
	return holding;
}

static void racer_init(struct racer *r, struct es_db *db, const struct es_event *ev, bool hold)
{
	payment_app_init(&r->app, TOPIC, 0);
	r->handlers = payment_handlers;
	if (hold)
		r->handlers.before_commit = write_then_hold;
	r->ev = ev;
	r->dispatch = (struct es_dispatch){
		.consumer = PAYMENT_SERVICE, .db = db, .handlers = &r->handlers, .app = &r->app};
}

/*
 * Connection A applies first in a batch whose transaction it holds open
 * once written; connection B handles second meanwhile, and must wait for
 * A's lock of the order. Then A commits and B finishes. Returns the
 * schema's connection for checks.
 */
static struct es_db *race(const struct es_event *first, const struct es_event *second,
			  struct es_db **a_out)
{
	char schema[64];
	struct es_db *a = connect_migrated(schema, sizeof(schema));
	struct es_db *b = connect_schema(schema);
	struct es_db *observer = connect_schema(schema);
	struct es_test_lock_wait blocked = {.observer = observer, .pid = es_db_backend_pid(b)};
	struct racer ra, rb;
	pthread_t ta, tb;

	gate.holding = gate.go = false;
	racer_init(&ra, a, first, true);
	racer_init(&rb, b, second, false);
	ck_assert_int_eq(pthread_create(&ta, NULL, racer_main, &ra), 0);
	ck_assert_msg(es_test_wait_until(first_holds, NULL, 10000),
		      "the first event's batch should reach its commit");
	ck_assert_int_eq(pthread_create(&tb, NULL, racer_main, &rb), 0);
	ck_assert_msg(es_test_wait_until(es_test_waits_on_lock, &blocked, 10000),
		      "the second event should wait for the first one's transaction");
	pthread_mutex_lock(&gate.mu);
	gate.go = true;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mu);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	ck_assert_msg(ra.result == ES_HANDLER_OK, "%s", ra.reason);
	ck_assert_msg(rb.result == ES_HANDLER_OK, "%s", rb.reason);
	payment_app_release(&ra.app);
	payment_app_release(&rb.app);
	es_db_free(b);
	*a_out = a;
	return observer;
}

START_TEST(cancel_racing_an_uncommitted_charge_refunds_it)
{
	struct es_event *placed = order_placed(ORDER, "tok_visa", 1299);
	struct es_event *cancelled = order_cancelled(ORDER, placed);
	struct es_db *a, *db = race(placed, cancelled, &a);

	ck_assert_int_eq(charges(db, ORDER), 1);
	ck_assert_int_eq(outbox_count(db, ES_PAYMENT_PROCESSED), 1);
	ck_assert_int_eq(outbox_count(db, ES_PAYMENT_REFUNDED), 1);
	es_db_free(a);
	es_db_free(db);
	es_event_free(cancelled);
	es_event_free(placed);
}
END_TEST

START_TEST(charge_racing_an_uncommitted_cancel_charges_nothing)
{
	struct es_event *cancelled = order_cancelled(ORDER, NULL);
	struct es_event *placed = order_placed(ORDER, "tok_visa", 1299);
	struct es_db *a, *db = race(cancelled, placed, &a);

	ck_assert_int_eq(charges(db, ORDER), 0);
	ck_assert_int_eq(outbox_total(db), 0);
	es_db_free(a);
	es_db_free(db);
	es_event_free(placed);
	es_event_free(cancelled);
}
END_TEST

static Suite *handler_suite(void)
{
	Suite *s = suite_create("payment handler (PostgreSQL)");
	TCase *charge = tcase_create("charge");
	TCase *refund = tcase_create("refund");
	TCase *other = tcase_create("other");
	TCase *racing = tcase_create("race");

	tcase_add_test(charge, processed_order_produces_one_payment_processed);
	tcase_add_test(charge, same_event_twice_charges_once);
	tcase_add_test(charge, second_order_placed_with_a_new_id_charges_nothing);
	tcase_add_loop_test(charge, declined_token_produces_payment_failed, 0,
			    (int)(sizeof(declines) / sizeof(declines[0])));
	tcase_add_test(charge, orders_are_charged_independently);
	suite_add_tcase(s, charge);

	tcase_add_test(refund, order_cancelled_after_a_charge_refunds_it_once);
	tcase_add_test(refund, order_cancelled_before_order_placed_charges_nothing);
	tcase_add_test(refund, one_batch_applies_its_events_in_order);
	tcase_add_test(refund, order_cancelled_after_a_decline_refunds_nothing);
	tcase_add_test(refund, unknown_order_is_not_found);
	suite_add_tcase(s, refund);

	tcase_add_test(other, malformed_data_is_rejected_with_a_reason);
	tcase_add_test(other, order_confirmed_changes_nothing);
	tcase_add_test(other, outcomes_are_counted_once_each);
	tcase_add_test(other, latency_is_simulated_before_an_order_placed_only);
	suite_add_tcase(s, other);

	tcase_add_test(racing, cancel_racing_an_uncommitted_charge_refunds_it);
	tcase_add_test(racing, charge_racing_an_uncommitted_cancel_charges_nothing);
	tcase_set_timeout(racing, 60);
	suite_add_tcase(s, racing);
	return s;
}

int main(void)
{
	if (!es_test_database_url())
		return ES_TEST_SKIP;
	es_log_init("it_payment_handler", ES_LOG_WARN);
	return es_test_run_with_db(handler_suite(), &test_conninfo);
}
