/*
 * Integration tests of order-service's saga step (order_saga_handlers)
 * against a real PostgreSQL and, for the dead letters, the real broker.
 * Each test places an order through the front door (POST /orders, the
 * order app's own route) on a schema of its own, then feeds it the
 * outcomes payment-service and inventory-service send back, through the
 * dispatch path the consumer loop uses. They check the order's status,
 * what the saga wrote to its outbox (OrderConfirmed, or the OrderCancelled
 * that makes payment and inventory compensate), its timeline and its
 * inbox: the contract's saga rules, whatever the order of arrival, each
 * event applied once however often it comes, and what cannot be applied
 * dead-lettered without taking its neighbours with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "es/events.h"
#include "es/kafka.h"
#include "es/log.h"
#include "fixture.h"
#include "testkafka.h"
#include "testsupport.h"

/* Two lines: 2 x 1299 + 3 x 499 cents. */
#define ITEMS "[{\"sku\":\"mug-classic\",\"quantity\":2},{\"sku\":\"sticker-pack\",\"quantity\":3}]"
#define ITEMS_TOTAL 4095
/* What OrderCancelled says when inventory_rejected's lines are short. */
#define ITEMS_SHORT                                                  \
	"not enough stock: mug-classic (requested 2, available 1), " \
	"sticker-pack (requested 3, available 2)"
#define CONSUME_TIMEOUT_MS 60000

static const char *conninfo;
static struct shop s;

static void setup(void)
{
	shop_open(&s, conninfo);
}

static void teardown(void)
{
	shop_close(&s);
}

/* The order's status. */
static const char *status(const char *order_id)
{
	static char buf[32];

	return shop_order(&s, order_id, "status", buf, sizeof(buf));
}

/* An OrderPlaced of an order the shop never took. */
static struct es_event *stranger(void)
{
	char order_id[ES_UUID_LEN + 1];
	struct es_event *ev;

	es_uuid_new(order_id);
	ev = es_event_new("order-service", ES_ORDER_PLACED, order_id, NULL, SHOP_TRACEPARENT,
			  json_pack("{s:s, s:s, s:s, s:[{s:s, s:i, s:i}], s:i, s:s, s:s}",
				    "orderId", order_id, "customerId", "c-9", "customerEmail",
				    "eve@example.com", "items", "sku", "mug-classic", "quantity", 1,
				    "unitPriceCents", 1299, "totalCents", 1299, "currency", "EUR",
				    "paymentToken", "tok_visa"));
	ck_assert_ptr_nonnull(ev);
	return ev;
}

/* ev has its one row in its order's timeline, as it was published. */
static void assert_in_timeline(const struct es_event *ev)
{
	const char *params[5] = {ev->id, ev->subject, ev->type, ev->source, ev->time};

	ck_assert_int_eq(es_test_count(s.db,
				       "SELECT count(*) AS n FROM timeline WHERE event_id = $1"
				       " AND order_id = $2 AND type = $3 AND source = $4"
				       " AND time = $5::timestamptz",
				       5, params),
			 1);
}

/* ------------------------------------------------------------ confirm */

/* How payment's and inventory's successes arrive: one batch each or both
 * in one, payment's first or inventory's. */
static const struct {
	bool stock_first;
	bool one_batch;
} arrivals[] = {{false, false}, {true, false}, {false, true}, {true, true}};

/* Delivers first then second, in one batch or two; between two batches
 * the order waits, remembering the first. */
static void deliver_both(const struct es_event *first, const struct es_event *second,
			 bool one_batch)
{
	const struct es_event *batch[2] = {first, second};
	const char *field = !strcmp(first->type, ES_PAYMENT_PROCESSED) ? "paymentId"
								       : "reservationId";
	const char *column = !strcmp(field, "paymentId") ? "payment_id" : "reservation_id";
	enum es_handler_result res[2];
	struct es_event *out[4];
	char buf[64];

	if (one_batch) {
		shop_deliver_batch(&s, batch, 2, res);
		ck_assert_int_eq(res[0], ES_HANDLER_OK);
		ck_assert_int_eq(res[1], ES_HANDLER_OK);
		return;
	}
	shop_deliver_ok(&s, first);
	ck_assert_str_eq(status(first->subject), "PENDING");
	ck_assert_str_eq(shop_order(&s, first->subject, column, buf, sizeof(buf)),
			 es_data_str(first, field));
	ck_assert_int_eq(shop_outbox(&s, first->subject, out, 4), 0);
	shop_deliver_ok(&s, second);
}

START_TEST(both_successes_confirm_the_order_once_whatever_came_first)
{
	struct es_event *placed = shop_place(&s, ITEMS, "tok_visa");
	struct es_event *paid = payment_processed(placed);
	struct es_event *reserved = inventory_reserved(placed);
	const struct es_event *second = arrivals[_i].stock_first ? paid : reserved;
	struct es_event *out[4];
	const char *id = placed->subject;
	int n;

	deliver_both(arrivals[_i].stock_first ? reserved : paid, second, arrivals[_i].one_batch);
	ck_assert_str_eq(status(id), "CONFIRMED");
	n = shop_outbox(&s, id, out, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(out[0]->type, ES_ORDER_CONFIRMED);
	assert_caused_by(out[0], second);
	ck_assert_str_eq(es_data_str(out[0], "paymentId"), es_data_str(paid, "paymentId"));
	ck_assert_str_eq(es_data_str(out[0], "reservationId"),
			 es_data_str(reserved, "reservationId"));
	ck_assert_int_eq(es_data_int(out[0], "totalCents"), ITEMS_TOTAL);
	ck_assert_str_eq(es_data_str(out[0], "currency"), "EUR");
	/* OrderPlaced, both outcomes, OrderConfirmed. */
	ck_assert_int_eq(shop_timeline(&s, id, NULL), 4);
	ck_assert_int_eq(shop_timeline(&s, id, ES_ORDER_CONFIRMED), 1);
	ck_assert_int_eq(shop_inbox(&s), 2);
	ck_assert(
		shop_metrics_have(&s, "es_saga_duration_seconds_count{outcome=\"confirmed\"} 1\n"));
	shop_events_free(out, n);
	es_event_free(reserved);
	es_event_free(paid);
	es_event_free(placed);
}
END_TEST

/* The saga reads the batch's orders once, before the effects: what an
 * effect decides must count for the events after it in the same batch. */
START_TEST(a_confirmed_order_ignores_what_follows_in_its_batch)
{
	struct es_event *placed = shop_place(&s, ITEMS, "tok_visa");
	struct es_event *paid = payment_processed(placed);
	struct es_event *reserved = inventory_reserved(placed);
	struct es_event *declined = payment_failed(placed, "CARD_DECLINED");
	struct es_event *paid_again = payment_processed(placed);
	const struct es_event *batch[] = {paid, reserved, declined, paid_again};
	enum es_handler_result res[4];
	struct es_event *out[4];
	char buf[64];
	int n;

	shop_deliver_batch(&s, batch, 4, res);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(res[i], ES_HANDLER_OK);
	ck_assert_str_eq(status(placed->subject), "CONFIRMED");
	ck_assert_str_eq(shop_order(&s, placed->subject, "payment_id", buf, sizeof(buf)),
			 es_data_str(paid, "paymentId"));
	n = shop_outbox(&s, placed->subject, out, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(out[0]->type, ES_ORDER_CONFIRMED);
	assert_caused_by(out[0], reserved);
	assert_in_timeline(out[0]);
	/* All four are recorded all the same. */
	ck_assert_int_eq(shop_timeline(&s, placed->subject, NULL), 6);
	shop_events_free(out, n);
	es_event_free(paid_again);
	es_event_free(declined);
	es_event_free(reserved);
	es_event_free(paid);
	es_event_free(placed);
}
END_TEST

START_TEST(the_front_door_shows_the_confirmed_order_and_its_timeline)
{
	struct es_event *placed = shop_place(&s, ITEMS, "tok_visa");
	struct es_event *paid = payment_processed(placed);
	struct es_event *reserved = inventory_reserved(placed);
	static const char *const want[] = {ES_ORDER_PLACED, ES_PAYMENT_PROCESSED,
					   ES_INVENTORY_RESERVED, ES_ORDER_CONFIRMED};
	char path[128];
	json_t *order, *timeline;

	shop_deliver_ok(&s, paid);
	shop_deliver_ok(&s, reserved);
	snprintf(path, sizeof(path), "/orders/%s", placed->subject);
	ck_assert_int_eq(shop_http(&s, "GET", path, NULL, &order), 200);
	ck_assert_ptr_nonnull(order);
	ck_assert_str_eq(json_string_value(json_object_get(order, "status")), "CONFIRMED");
	ck_assert(json_is_null(json_object_get(order, "cancelReason")));
	timeline = json_object_get(order, "timeline");
	ck_assert_uint_eq(json_array_size(timeline), 4);
	for (size_t i = 0; i < 4; i++)
		ck_assert_str_eq(
			json_string_value(json_object_get(json_array_get(timeline, i), "type")),
			want[i]);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(timeline, 1), "id")),
			 paid->id);
	json_decref(order);
	es_event_free(reserved);
	es_event_free(paid);
	es_event_free(placed);
}
END_TEST

/* ------------------------------------------------------------- cancel */

/* A failure and the other service's answer, in the order they arrive
 * (PaymentFailed's reason, when it comes), and the order's cancel reason
 * and detail. */
static const struct {
	const char *first, *second;
	const char *payment_reason; /* PaymentFailed's, when one comes */
	const char *reason, *detail;
} failures[] = {
	{ES_PAYMENT_FAILED, ES_INVENTORY_RESERVED, "CARD_DECLINED", "PAYMENT_DECLINED",
	 "payment failed: CARD_DECLINED"},
	{ES_INVENTORY_RESERVED, ES_PAYMENT_FAILED, "INSUFFICIENT_FUNDS", "PAYMENT_DECLINED",
	 "payment failed: INSUFFICIENT_FUNDS"},
	{ES_INVENTORY_REJECTED, ES_PAYMENT_PROCESSED, NULL, "OUT_OF_STOCK", ITEMS_SHORT},
	{ES_PAYMENT_PROCESSED, ES_INVENTORY_REJECTED, NULL, "OUT_OF_STOCK", ITEMS_SHORT},
};

/* The outcome of type for placed, as its service would send it. */
static struct es_event *answer(const char *type, const struct es_event *placed,
			       const char *payment_reason)
{
	if (!strcmp(type, ES_PAYMENT_PROCESSED))
		return payment_processed(placed);
	if (!strcmp(type, ES_PAYMENT_FAILED))
		return payment_failed(placed, payment_reason);
	if (!strcmp(type, ES_INVENTORY_RESERVED))
		return inventory_reserved(placed);
	return inventory_rejected(placed);
}

START_TEST(the_first_failure_cancels_and_the_compensation_that_follows_changes_nothing)
{
	struct es_event *placed = shop_place(&s, ITEMS, "tok_visa");
	struct es_event *first = answer(failures[_i].first, placed, failures[_i].payment_reason);
	struct es_event *second = answer(failures[_i].second, placed, failures[_i].payment_reason);
	bool first_failed = !strcmp(first->type, ES_PAYMENT_FAILED) ||
			    !strcmp(first->type, ES_INVENTORY_REJECTED);
	struct es_event *success = first_failed ? second : first, *compensation, *out[4];
	const char *id = placed->subject;
	char buf[256];
	int n;

	shop_deliver_ok(&s, first);
	shop_deliver_ok(&s, second);
	ck_assert_str_eq(status(id), "CANCELLED");
	ck_assert_str_eq(shop_order(&s, id, "cancel_reason", buf, sizeof(buf)),
			 failures[_i].reason);
	ck_assert_str_eq(shop_order(&s, id, "cancel_detail", buf, sizeof(buf)),
			 failures[_i].detail);

	/* One OrderCancelled, caused by the failure: the request that payment
	 * and inventory compensate what they did. */
	n = shop_outbox(&s, id, out, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(out[0]->type, ES_ORDER_CANCELLED);
	assert_caused_by(out[0], first_failed ? first : second);
	ck_assert_str_eq(es_data_str(out[0], "reason"), failures[_i].reason);
	ck_assert_str_eq(es_data_str(out[0], "detail"), failures[_i].detail);
	ck_assert(
		shop_metrics_have(&s, "es_saga_duration_seconds_count{outcome=\"cancelled\"} 1\n"));

	/* Their compensation comes back: recorded, and nothing changes. */
	compensation = !strcmp(success->type, ES_PAYMENT_PROCESSED)
			       ? payment_refunded(out[0], success)
			       : inventory_released(out[0], success);
	shop_deliver_ok(&s, compensation);
	ck_assert_str_eq(status(id), "CANCELLED");
	ck_assert_int_eq(shop_timeline(&s, id, compensation->type), 1);
	ck_assert_int_eq(shop_timeline(&s, id, NULL), 5);
	shop_events_free(out, n);
	n = shop_outbox(&s, id, out, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(shop_inbox(&s), 3);
	shop_events_free(out, n);
	es_event_free(compensation);
	es_event_free(second);
	es_event_free(first);
	es_event_free(placed);
}
END_TEST

START_TEST(two_failures_cancel_once_with_the_first_reason)
{
	struct es_event *placed = shop_place(&s, ITEMS, "tok_visa");
	struct es_event *rejected = inventory_rejected(placed);
	struct es_event *declined = payment_failed(placed, "CARD_DECLINED");
	const struct es_event *batch[] = {rejected, declined};
	enum es_handler_result res[2];
	struct es_event *out[4];
	char buf[64];
	int n;

	shop_deliver_batch(&s, batch, 2, res);
	ck_assert_int_eq(res[0], ES_HANDLER_OK);
	ck_assert_int_eq(res[1], ES_HANDLER_OK);
	ck_assert_str_eq(status(placed->subject), "CANCELLED");
	ck_assert_str_eq(shop_order(&s, placed->subject, "cancel_reason", buf, sizeof(buf)),
			 "OUT_OF_STOCK");
	n = shop_outbox(&s, placed->subject, out, 4);
	ck_assert_int_eq(n, 1);
	assert_caused_by(out[0], rejected);
	ck_assert_int_eq(shop_timeline(&s, placed->subject, NULL), 4);
	shop_events_free(out, n);
	es_event_free(declined);
	es_event_free(rejected);
	es_event_free(placed);
}
END_TEST

START_TEST(a_customer_cancel_is_final_whatever_comes_after)
{
	struct es_event *placed = shop_place(&s, ITEMS, "tok_visa");
	struct es_event *paid = payment_processed(placed);
	struct es_event *reserved = inventory_reserved(placed);
	struct es_event *refund, *release, *out[4];
	const char *id = placed->subject;
	char path[128];
	json_t *body;
	int n;

	snprintf(path, sizeof(path), "/orders/%s/cancel", id);
	ck_assert_int_eq(shop_http(&s, "POST", path, NULL, &body), 202);
	json_decref(body);
	/* Both successes come late: recorded, and the order stays cancelled. */
	shop_deliver_ok(&s, paid);
	shop_deliver_ok(&s, reserved);
	ck_assert_str_eq(status(id), "CANCELLED");
	n = shop_outbox(&s, id, out, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(out[0]->type, ES_ORDER_CANCELLED);
	ck_assert_str_eq(es_data_str(out[0], "reason"), "CUSTOMER_REQUEST");
	/* No event caused it; the saga's ids and trace go on. */
	ck_assert_ptr_null(out[0]->causationid);
	ck_assert_str_eq(out[0]->correlationid, id);
	ck_assert_str_eq(out[0]->traceparent, SHOP_TRACEPARENT);

	refund = payment_refunded(out[0], paid);
	release = inventory_released(out[0], reserved);
	shop_deliver_ok(&s, refund);
	shop_deliver_ok(&s, release);
	ck_assert_str_eq(status(id), "CANCELLED");
	ck_assert_int_eq(shop_timeline(&s, id, NULL), 6);
	shop_events_free(out, n);
	ck_assert_int_eq(shop_outbox(&s, id, out, 4), 1);
	shop_events_free(out, 1);
	ck_assert_int_eq(shop_http(&s, "POST", path, NULL, &body), 409);
	json_decref(body);
	es_event_free(release);
	es_event_free(refund);
	es_event_free(reserved);
	es_event_free(paid);
	es_event_free(placed);
}
END_TEST

/* --------------------------------------------------- once, and only once */

START_TEST(a_redelivery_in_the_same_batch_is_applied_once)
{
	struct es_event *placed = shop_place(&s, ITEMS, "tok_visa");
	struct es_event *paid = payment_processed(placed);
	struct es_event *reserved = inventory_reserved(placed);
	const struct es_event *batch[] = {paid, paid, reserved, reserved};
	enum es_handler_result res[4];
	struct es_event *out[4];
	int n;

	shop_deliver_batch(&s, batch, 4, res);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(res[i], ES_HANDLER_OK);
	ck_assert_str_eq(status(placed->subject), "CONFIRMED");
	n = shop_outbox(&s, placed->subject, out, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(out[0]->type, ES_ORDER_CONFIRMED);
	ck_assert_int_eq(shop_inbox(&s), 2);
	ck_assert_int_eq(shop_timeline(&s, placed->subject, NULL), 4);
	ck_assert(
		shop_metrics_have(&s, "es_saga_duration_seconds_count{outcome=\"confirmed\"} 1\n"));
	shop_events_free(out, n);
	es_event_free(reserved);
	es_event_free(paid);
	es_event_free(placed);
}
END_TEST

START_TEST(a_redelivery_in_a_later_batch_is_not_applied_again)
{
	struct es_event *placed = shop_place(&s, ITEMS, "tok_visa");
	struct es_event *paid = payment_processed(placed);
	struct es_event *reserved = inventory_reserved(placed);
	const char *id = placed->subject;
	char before[64], after[64];
	struct es_event *out[4];
	int n;

	/* While the order waits: the effect would write updated_at again. */
	shop_deliver_ok(&s, paid);
	shop_order(&s, id, "updated_at", before, sizeof(before));
	shop_deliver_ok(&s, paid);
	ck_assert_str_eq(shop_order(&s, id, "updated_at", after, sizeof(after)), before);
	ck_assert_int_eq(shop_inbox(&s), 1);

	/* Once it is confirmed: one OrderConfirmed however often. */
	shop_deliver_ok(&s, reserved);
	shop_deliver_ok(&s, reserved);
	shop_deliver_ok(&s, paid);
	ck_assert_str_eq(status(id), "CONFIRMED");
	n = shop_outbox(&s, id, out, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(shop_inbox(&s), 2);
	ck_assert_int_eq(shop_timeline(&s, id, NULL), 4);
	ck_assert(
		shop_metrics_have(&s, "es_saga_duration_seconds_count{outcome=\"confirmed\"} 1\n"));
	shop_events_free(out, n);
	es_event_free(reserved);
	es_event_free(paid);
	es_event_free(placed);
}
END_TEST

/* ---------------------------------------------------- what cannot apply */

/* ev must be rejected with a reason that mentions in_reason. */
static void expect_reject(struct es_event *ev, const char *in_reason)
{
	char reason[512] = "";

	ck_assert_int_eq(shop_deliver(&s, ev, reason, sizeof(reason)), ES_HANDLER_REJECT);
	ck_assert_msg(strstr(reason, in_reason), "reason \"%s\" should mention \"%s\"", reason,
		      in_reason);
	es_event_free(ev);
}

START_TEST(what_the_saga_cannot_apply_is_rejected_and_leaves_nothing)
{
	struct es_event *placed = shop_place(&s, ITEMS, "tok_visa");
	struct es_event *ghost = stranger(), *ev;
	struct es_event *out[4];

	/* An outcome for an order this shop never took. */
	expect_reject(payment_processed(ghost), "unknown order");
	/* Not of the contract's shape, or not of the contract at all. */
	ev = payment_failed(placed, "CARD_DECLINED");
	json_object_set_new(ev->data, "reason", json_string("BORED"));
	expect_reject(ev, "reason");
	ev = inventory_reserved(placed);
	json_object_set_new(ev->data, "orderId", json_string(ghost->subject));
	expect_reject(ev, "orderId");
	ev = payment_processed(placed);
	free(ev->type);
	ev->type = strdup("PaymentTeleported");
	expect_reject(ev, "PaymentTeleported");

	/* Rejected events leave no trace: a corrected one may come later. */
	ck_assert_str_eq(status(placed->subject), "PENDING");
	ck_assert_int_eq(shop_inbox(&s), 0);
	ck_assert_int_eq(shop_outbox(&s, placed->subject, out, 4), 0);
	ck_assert_int_eq(shop_timeline(&s, placed->subject, NULL), 1);
	ck_assert_int_eq(shop_timeline(&s, ghost->subject, NULL), 0);
	es_event_free(ghost);
	es_event_free(placed);
}
END_TEST

START_TEST(a_rejected_event_does_not_take_its_batch_with_it)
{
	struct es_event *placed = shop_place(&s, ITEMS, "tok_visa");
	struct es_event *ghost = stranger();
	struct es_event *paid = payment_processed(placed);
	struct es_event *lost = payment_processed(ghost);
	struct es_event *reserved = inventory_reserved(placed);
	const struct es_event *batch[] = {paid, lost, reserved};
	enum es_handler_result res[3];
	struct es_event *out[4];
	int n;

	shop_deliver_batch(&s, batch, 3, res);
	ck_assert_int_eq(res[0], ES_HANDLER_OK);
	ck_assert_int_eq(res[1], ES_HANDLER_REJECT);
	ck_assert_int_eq(res[2], ES_HANDLER_OK);
	ck_assert_str_eq(status(placed->subject), "CONFIRMED");
	n = shop_outbox(&s, placed->subject, out, 4);
	ck_assert_int_eq(n, 1);
	assert_caused_by(out[0], reserved);
	/* The rejected event's claim went with it. */
	ck_assert_int_eq(shop_inbox(&s), 2);
	shop_events_free(out, n);
	es_event_free(reserved);
	es_event_free(lost);
	es_event_free(paid);
	es_event_free(ghost);
	es_event_free(placed);
}
END_TEST

/* A neighbour's REJECT runs the batch again, a SAVEPOINT around each
 * event: the events the others emitted are in the timeline once each,
 * as published, and the rejected one's order has no row. */
START_TEST(a_rerun_after_a_reject_records_each_emitted_event_once)
{
	struct es_event *placed = shop_place(&s, ITEMS, "tok_visa");
	struct es_event *other = shop_place(&s, ITEMS, "tok_visa");
	struct es_event *ghost = stranger();
	struct es_event *paid = payment_processed(placed);
	struct es_event *declined = payment_failed(other, "CARD_DECLINED");
	struct es_event *lost = payment_processed(ghost);
	struct es_event *reserved = inventory_reserved(placed);
	const struct es_event *batch[] = {paid, declined, lost, reserved};
	enum es_handler_result res[4];
	struct es_event *out[4];
	int n;

	shop_deliver_batch(&s, batch, 4, res);
	ck_assert_int_eq(res[0], ES_HANDLER_OK);
	ck_assert_int_eq(res[1], ES_HANDLER_OK);
	ck_assert_int_eq(res[2], ES_HANDLER_REJECT);
	ck_assert_int_eq(res[3], ES_HANDLER_OK);
	ck_assert_str_eq(status(placed->subject), "CONFIRMED");
	ck_assert_str_eq(status(other->subject), "CANCELLED");
	n = shop_outbox(&s, placed->subject, out, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(out[0]->type, ES_ORDER_CONFIRMED);
	assert_in_timeline(out[0]);
	shop_events_free(out, n);
	n = shop_outbox(&s, other->subject, out, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(out[0]->type, ES_ORDER_CANCELLED);
	assert_in_timeline(out[0]);
	shop_events_free(out, n);
	ck_assert_int_eq(shop_timeline(&s, placed->subject, NULL), 4);
	ck_assert_int_eq(shop_timeline(&s, other->subject, NULL), 3);
	ck_assert_int_eq(shop_timeline(&s, ghost->subject, NULL), 0);
	es_event_free(reserved);
	es_event_free(lost);
	es_event_free(declined);
	es_event_free(paid);
	es_event_free(ghost);
	es_event_free(other);
	es_event_free(placed);
}
END_TEST

/* ------------------------------------------- the consumer loop on Kafka */

struct consuming {
	struct es_consumer *c;
	const char *order_id;
};

/* One poll; true once the order is confirmed and the consumer joined. */
static bool confirmed(void *arg)
{
	struct consuming *w = arg;
	volatile sig_atomic_t stop = 0;
	char errstr[512];

	ck_assert_msg(es_consumer_poll(w->c, 100, &stop, errstr, sizeof(errstr)) == 0, "%s",
		      errstr);
	return !strcmp(status(w->order_id), "CONFIRMED") && es_consumer_joined(w->c);
}

/* The dead letter on b whose dlq.error mentions needle; its error in buf. */
static const rd_kafka_message_t *dead_letter(const struct es_test_batch *b, const char *needle,
					     char *buf, size_t size)
{
	for (int i = 0; i < b->n; i++) {
		if (es_test_kafka_header(b->msg[i], ES_DLQ_HDR_ERROR, buf, size) &&
		    strstr(buf, needle))
			return b->msg[i];
	}
	ck_abort_msg("no dead letter says \"%s\"", needle);
	return NULL;
}

/* Topics, group and dead-letter topic of this test alone; the saga's
 * consumer on them, as the daemon runs it. */
struct kafka_world {
	char run[64], payments[96], inventory[96], dlq[96], group[96];
	const char *topics[3];
};

static struct es_consumer *saga_consumer(struct kafka_world *k, const char *bootstrap)
{
	char errstr[512];
	struct es_consumer *c;

	ck_assert_int_eq(es_test_unique_name(k->run, sizeof(k->run), "it_order_saga"), 0);
	snprintf(k->payments, sizeof(k->payments), "%s.payments", k->run);
	snprintf(k->inventory, sizeof(k->inventory), "%s.inventory", k->run);
	snprintf(k->dlq, sizeof(k->dlq), "%s.dlq.order-service", k->run);
	snprintf(k->group, sizeof(k->group), "%s.order-service", k->run);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, k->payments, 1), 0);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, k->inventory, 1), 0);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, k->dlq, 1), 0);
	k->topics[0] = k->payments;
	k->topics[1] = k->inventory;
	k->topics[2] = NULL;
	c = es_consumer_new(&(struct es_consumer_config){.bootstrap = bootstrap,
							 .group_id = k->group,
							 .topics = k->topics,
							 .service = ORDER_SERVICE,
							 .dlq_topic = k->dlq,
							 .handler = es_dispatch_batch,
							 .handler_arg = &s.dispatch,
							 .retry_initial_ms = 20,
							 .retry_max_ms = 200},
			    errstr, sizeof(errstr));
	ck_assert_msg(c, "%s", errstr);
	return c;
}

START_TEST(the_consumer_loop_dead_letters_what_the_saga_cannot_apply)
{
	static const char garbage[] = "{\"specversion\":\"1.0\", not json";
	const char *bootstrap = es_test_kafka_bootstrap();
	struct es_event *placed = shop_place(&s, ITEMS, "tok_visa");
	struct es_event *ghost = stranger();
	struct es_event *paid = payment_processed(placed), *lost = payment_processed(ghost);
	struct es_event *reserved = inventory_reserved(placed);
	struct kafka_world k;
	struct consuming w = {.order_id = placed->subject};
	struct es_producer *p;
	struct es_test_batch *dead;
	const rd_kafka_message_t *m;
	char errstr[512], buf[512];

	ck_assert_ptr_nonnull(bootstrap);
	w.c = saga_consumer(&k, bootstrap);
	p = es_producer_new(bootstrap, "it-order-saga", NULL, NULL, errstr, sizeof(errstr));
	ck_assert_msg(p, "%s", errstr);
	ck_assert_int_eq(es_producer_send(p, k.payments, paid, NULL, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(es_producer_send_raw(p, k.payments, placed->subject,
					      strlen(placed->subject), garbage, strlen(garbage),
					      NULL, NULL, errstr, sizeof(errstr)),
			 0);
	ck_assert_int_eq(es_producer_send(p, k.payments, lost, NULL, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(es_producer_send(p, k.inventory, reserved, NULL, errstr, sizeof(errstr)),
			 0);
	ck_assert_int_eq(es_producer_flush(p, 30000), 0);
	es_producer_free(p);

	ck_assert_msg(es_test_wait_until(confirmed, &w, CONSUME_TIMEOUT_MS),
		      "order %s not confirmed within %d ms", placed->subject, CONSUME_TIMEOUT_MS);
	es_consumer_free(w.c);
	ck_assert_int_eq(shop_inbox(&s), 2);

	dead = es_test_kafka_read(bootstrap, k.dlq, 2, 20000);
	ck_assert_int_eq(dead->n, 2);
	m = dead_letter(dead, "invalid CloudEvent", buf, sizeof(buf));
	ck_assert_uint_eq(m->len, strlen(garbage));
	ck_assert(!memcmp(m->payload, garbage, m->len));
	m = dead_letter(dead, "unknown order", buf, sizeof(buf));
	ck_assert_str_eq(es_test_kafka_header(m, "ce_id", buf, sizeof(buf)), lost->id);
	ck_assert_str_eq(es_test_kafka_header(m, ES_DLQ_HDR_TOPIC, buf, sizeof(buf)), k.payments);
	ck_assert_str_eq(es_test_kafka_header(m, ES_DLQ_HDR_SERVICE, buf, sizeof(buf)),
			 ORDER_SERVICE);
	es_test_kafka_batch_free(dead);
	es_event_free(reserved);
	es_event_free(lost);
	es_event_free(paid);
	es_event_free(ghost);
	es_event_free(placed);
}
END_TEST

static Suite *saga_suite(void)
{
	Suite *su = suite_create("order.saga");
	TCase *confirm = tcase_create("confirm");
	TCase *cancel = tcase_create("cancel");
	TCase *once = tcase_create("once");
	TCase *reject = tcase_create("reject");

	tcase_add_checked_fixture(confirm, setup, teardown);
	tcase_add_loop_test(confirm, both_successes_confirm_the_order_once_whatever_came_first, 0,
			    (int)(sizeof(arrivals) / sizeof(arrivals[0])));
	tcase_add_test(confirm, a_confirmed_order_ignores_what_follows_in_its_batch);
	tcase_add_test(confirm, the_front_door_shows_the_confirmed_order_and_its_timeline);
	suite_add_tcase(su, confirm);

	tcase_add_checked_fixture(cancel, setup, teardown);
	tcase_add_loop_test(
		cancel, the_first_failure_cancels_and_the_compensation_that_follows_changes_nothing,
		0, (int)(sizeof(failures) / sizeof(failures[0])));
	tcase_add_test(cancel, two_failures_cancel_once_with_the_first_reason);
	tcase_add_test(cancel, a_customer_cancel_is_final_whatever_comes_after);
	suite_add_tcase(su, cancel);

	tcase_add_checked_fixture(once, setup, teardown);
	tcase_add_test(once, a_redelivery_in_the_same_batch_is_applied_once);
	tcase_add_test(once, a_redelivery_in_a_later_batch_is_not_applied_again);
	suite_add_tcase(su, once);

	tcase_add_checked_fixture(reject, setup, teardown);
	tcase_set_timeout(reject, 120);
	tcase_add_test(reject, what_the_saga_cannot_apply_is_rejected_and_leaves_nothing);
	tcase_add_test(reject, a_rejected_event_does_not_take_its_batch_with_it);
	tcase_add_test(reject, a_rerun_after_a_reject_records_each_emitted_event_once);
	tcase_add_test(reject, the_consumer_loop_dead_letters_what_the_saga_cannot_apply);
	suite_add_tcase(su, reject);
	return su;
}

int main(void)
{
	if (!es_test_database_url() || !es_test_kafka_bootstrap())
		return ES_TEST_SKIP;
	es_log_init("it_order_saga", ES_LOG_WARN);
	return es_test_run_with_db(saga_suite(), &conninfo);
}
