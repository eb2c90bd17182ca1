/*
 * Integration tests for the analytics handler against a real PostgreSQL
 * (DATABASE_URL): hand-made saga events go through the dispatch path (es_dispatch_one), as
 * the consumer loop would deliver them, and GET /stats's body is checked.
 * Each test works in a schema of its own, migrated like the daemon's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "analytics.h"
#include "es/events.h"
#include "es/log.h"
#include "saga.h"
#include "testsupport.h"
#include "world.h"

static const char *test_conninfo;

/* A schema of the test's own, migrated like the daemon's. */
static struct es_db *fresh_schema(void)
{
	char schema[64];

	return it_schema_new(test_conninfo, "analytics", schema, sizeof(schema));
}

static enum es_handler_result deliver(struct analytics *app, const struct es_event *ev,
				      enum it_topic topic)
{
	struct es_dispatch d = {.consumer = ANALYTICS_SERVICE,
				.db = app->db,
				.handlers = &analytics_handlers,
				.app = app};
	char reason[512] = "";
	enum es_handler_result r = es_dispatch_one(&d, ev, reason, sizeof(reason));

	ck_assert_msg(r != ES_HANDLER_RETRY, "%s %s: RETRY: %s", ev->type, ev->id, reason);
	return r;
}

static void deliver_ok(struct analytics *app, const struct es_event *ev, enum it_topic topic)
{
	ck_assert_int_eq(deliver(app, ev, topic), ES_HANDLER_OK);
}

/* Topic by topic, each in the order its service wrote it. */
static void deliver_by_topic(struct analytics *app, const struct it_saga *s)
{
	for (int t = 0; t < IT_NTOPICS; t++) {
		for (size_t i = 0; i < s->n[t]; i++)
			deliver_ok(app, s->ev[t][i], t);
	}
}

/*
 * Another order a consumer of four topics may see: one event of each topic
 * in turn, notifications first, the other topics' events newest first.
 * Only the orders topic keeps its order, as its single partition per order
 * guarantees. When orders_reversed, it is reversed too (OrderConfirmed
 * before OrderPlaced), which Kafka never does but the read models survive.
 */
static void deliver_interleaved(struct analytics *app, const struct it_saga *s,
				bool orders_reversed)
{
	static const enum it_topic turn[] = {IT_SHIPMENTS, IT_NOTIFICATIONS, IT_INVENTORY,
					     IT_PAYMENTS, IT_ORDERS};
	size_t next[IT_NTOPICS] = {0};
	size_t done = 0;

	while (done < s->total) {
		for (size_t k = 0; k < sizeof(turn) / sizeof(turn[0]); k++) {
			enum it_topic t = turn[k];
			bool reversed = t != IT_ORDERS || orders_reversed;
			size_t i;

			if (next[t] == s->n[t])
				continue;
			i = reversed ? s->n[t] - 1 - next[t] : next[t];
			next[t]++;
			deliver_ok(app, s->ev[t][i], t);
			done++;
		}
	}
}

static json_t *expected(void)
{
	json_error_t jerr;
	json_t *want = json_loads(it_saga_expected_stats, 0, &jerr);

	ck_assert_msg(want, "it_saga_expected_stats: %s", jerr.text);
	return want;
}

START_TEST(mixed_orders_give_the_contract_numbers)
{
	struct es_db *db = fresh_schema();
	struct analytics app = {.db = db};
	struct it_saga s;

	/* Nothing yet: zeros, and no latency rather than a made-up 0. */
	it_assert_same(it_stats(db), json_loads("{\"orders\":{\"placed\":0,\"confirmed\":0,"
						"\"cancelled\":0,\"pending\":0},\"revenueCents\":0,"
						"\"cancelReasons\":{},\"topProducts\":[],"
						"\"sagaLatencyMs\":{\"p50\":null,\"p95\":null,"
						"\"p99\":null},\"payments\":{\"processed\":0,"
						"\"failed\":0,\"refunded\":0},\"reservations\":{"
						"\"reserved\":0,\"rejected\":0,\"released\":0},"
						"\"emails\":{},\"shipments\":{"
						"\"created\":0,\"dispatched\":0,"
						"\"delivered\":0,\"cancelled\":0,"
						"\"deliveryMs\":{\"p50\":null,"
						"\"p95\":null,\"p99\":null}}}",
						0, NULL));
	it_saga_build(&s);
	deliver_by_topic(&app, &s);
	ck_assert(app.orders_changed);
	it_assert_same(it_stats(db), expected());
	ck_assert_int_eq(it_inbox_count(db), (long)s.total);
	it_saga_free(&s);
	es_db_free(db);
}
END_TEST

START_TEST(redelivered_events_change_nothing)
{
	struct es_db *db = fresh_schema();
	struct analytics app = {.db = db};
	struct it_saga s;

	it_saga_build(&s);
	deliver_by_topic(&app, &s);
	app.orders_changed = false;
	/* Kafka redelivers everything (a crash before the offsets were
	 * committed), in another order for good measure. */
	deliver_by_topic(&app, &s);
	deliver_interleaved(&app, &s, false);
	ck_assert_msg(!app.orders_changed, "a duplicate must not count as a change");
	it_assert_same(it_stats(db), expected());
	ck_assert_int_eq(it_inbox_count(db), (long)s.total);
	it_saga_free(&s);
	es_db_free(db);
}
END_TEST

START_TEST(another_cross_topic_order_gives_the_same_numbers)
{
	struct es_db *a = fresh_schema(), *b = fresh_schema();
	struct analytics app_a = {.db = a}, app_b = {.db = b};
	struct it_saga s;

	it_saga_build(&s);
	deliver_by_topic(&app_a, &s);
	deliver_interleaved(&app_b, &s, false);
	it_assert_same(it_stats(b), it_stats(a));
	it_assert_same(it_stats(b), expected());
	it_saga_free(&s);
	es_db_free(b);
	es_db_free(a);
}
END_TEST

START_TEST(terminal_before_placed_does_not_corrupt_the_counts)
{
	struct es_db *db = fresh_schema();
	struct analytics app = {.db = db};
	struct it_saga s;

	it_saga_build(&s);
	deliver_interleaved(&app, &s, true);
	it_assert_same(it_stats(db), expected());
	it_saga_free(&s);
	es_db_free(db);
}
END_TEST

START_TEST(terminal_status_never_changes)
{
	struct es_db *db = fresh_schema();
	struct analytics app = {.db = db};
	const struct es_event *confirmed = NULL, *cancelled = NULL;
	struct es_event *late;
	struct it_saga s;

	it_saga_build(&s);
	deliver_by_topic(&app, &s);
	for (size_t i = 0; i < s.n[IT_ORDERS]; i++) {
		const struct es_event *ev = s.ev[IT_ORDERS][i];

		if (!confirmed && !strcmp(ev->type, ES_ORDER_CONFIRMED))
			confirmed = ev;
		if (!cancelled && !strcmp(ev->type, ES_ORDER_CANCELLED))
			cancelled = ev;
	}
	ck_assert(confirmed && cancelled);

	/* A cancellation of a confirmed order (a new event id). */
	late = es_event_new("order-service", ES_ORDER_CANCELLED, confirmed->subject, confirmed,
			    NULL,
			    json_pack("{s:s, s:s, s:s}", "orderId", confirmed->subject, "reason",
				      "CUSTOMER_REQUEST", "detail", "too late"));
	ck_assert_ptr_nonnull(late);
	deliver_ok(&app, late, IT_ORDERS);
	es_event_free(late);

	/* And a confirmation of a cancelled one. */
	late = es_event_new(
		"order-service", ES_ORDER_CONFIRMED, cancelled->subject, cancelled, NULL,
		json_pack("{s:s, s:s, s:s, s:i, s:s}", "orderId", cancelled->subject, "paymentId",
			  "p", "reservationId", "r", "totalCents", 1, "currency", "EUR"));
	ck_assert_ptr_nonnull(late);
	deliver_ok(&app, late, IT_ORDERS);
	es_event_free(late);

	it_assert_same(it_stats(db), expected());
	it_saga_free(&s);
	es_db_free(db);
}
END_TEST

START_TEST(unknown_types_and_bad_data_are_rejected_and_change_nothing)
{
	struct es_db *db = fresh_schema();
	struct analytics app = {.db = db};
	struct es_event *ev;
	struct it_saga s;

	it_saga_build(&s);
	deliver_by_topic(&app, &s);

	ev = es_event_new("order-service", "OrderShipped", s.ev[IT_ORDERS][0]->subject, NULL, NULL,
			  json_pack("{s:s}", "orderId", s.ev[IT_ORDERS][0]->subject));
	ck_assert_int_eq(deliver(&app, ev, IT_ORDERS), ES_HANDLER_REJECT);
	es_event_free(ev);

	/* A PaymentProcessed without its amount. */
	ev = es_event_new("payment-service", ES_PAYMENT_PROCESSED, s.ev[IT_ORDERS][0]->subject,
			  NULL, NULL,
			  json_pack("{s:s, s:s, s:s}", "orderId", s.ev[IT_ORDERS][0]->subject,
				    "paymentId", "p", "currency", "EUR"));
	ck_assert_int_eq(deliver(&app, ev, IT_PAYMENTS), ES_HANDLER_REJECT);
	es_event_free(ev);

	it_assert_same(it_stats(db), expected());
	ck_assert_int_eq(it_inbox_count(db), (long)s.total);
	it_saga_free(&s);
	es_db_free(db);
}
END_TEST

/* Every row of the read models, in one JSON document to compare. */
static json_t *read_models(struct es_db *db)
{
	char errstr[512];
	json_error_t jerr;
	PGresult *res;
	json_t *doc;

	res = es_db_query(
		db,
		"SELECT json_build_object("
		"'orders', (SELECT json_agg(json_build_object('id', order_id, 'status', status,"
		" 'total', total_cents, 'currency', currency, 'reason', cancel_reason,"
		" 'placed', placed_at, 'ended', terminal_at) ORDER BY order_id)"
		" FROM analytics_orders),"
		"'items', (SELECT json_agg(i ORDER BY order_id, sku) FROM analytics_order_items i),"
		"'deliveries', (SELECT json_agg(d ORDER BY order_id) FROM analytics_deliveries d),"
		"'counts', (SELECT json_agg(c ORDER BY family, name) FROM analytics_counts c)"
		")::text AS models",
		0, NULL, errstr, sizeof(errstr));
	ck_assert_msg(res, "%s", errstr);
	doc = json_loads(es_db_get(res, 0, "models"), 0, &jerr);
	PQclear(res);
	ck_assert_msg(doc, "%s", jerr.text);
	return doc;
}

/* One value of the read models, as text into buf. */
static const char *one_value(struct es_db *db, const char *sql, const char *order, char *buf,
			     size_t size)
{
	char errstr[512];
	PGresult *res = es_db_query(db, sql, 1, (const char *[]){order}, errstr, sizeof(errstr));

	ck_assert_msg(res, "%s", errstr);
	ck_assert_int_eq(PQntuples(res), 1);
	snprintf(buf, size, "%s", es_db_get(res, 0, "v"));
	PQclear(res);
	return buf;
}

/*
 * The consumer hands over whole batches, and analytics writes a batch's
 * events with one statement per kind of write. Within one batch come two
 * events of one order, both ways round (OrderConfirmed before OrderPlaced
 * when the orders topic is reversed), a second OrderPlaced with other
 * lines, a terminal event for an order already terminal, a second
 * ShipmentDelivered, an event delivered twice and one that is rejected:
 * the rows must be those of the same events one at a time, and the batch
 * delivered again must change nothing.
 */
START_TEST(one_batch_gives_the_rows_of_one_event_at_a_time)
{
	enum { EXTRA = 6 };
	struct es_batch_item items[IT_NTOPICS * IT_SAGA_MAX + EXTRA];

	for (int reversed = 0; reversed < 2; reversed++) {
		struct es_db *one = fresh_schema(), *batch = fresh_schema();
		struct analytics app_one = {.db = one}, app_batch = {.db = batch};
		struct es_dispatch d = {.consumer = ANALYTICS_SERVICE,
					.db = batch,
					.handlers = &analytics_handlers,
					.app = &app_batch};
		const struct es_event *delivered = NULL;
		struct es_event *extra[EXTRA - 1];
		const char *order;
		char reason[512], buf[64];
		size_t n = 0, bad;
		struct it_saga s;

		it_saga_build(&s);
		order = s.ev[IT_ORDERS][0]->subject; /* CONFIRMED */
		for (int t = 0; t < IT_NTOPICS; t++) {
			for (size_t i = 0; i < s.n[t]; i++) {
				size_t k = t == IT_ORDERS && reversed ? s.n[t] - 1 - i : i;

				items[n++] = (struct es_batch_item){.ev = s.ev[t][k]};
				if (!delivered && !strcmp(s.ev[t][k]->type, ES_SHIPMENT_DELIVERED))
					delivered = s.ev[t][k];
			}
		}
		extra[0] = es_event_new(
			"order-service", ES_ORDER_PLACED, order, NULL, NULL,
			json_pack("{s:s, s:s, s:s, s:[{s:s, s:i, s:i}, {s:s, s:i, s:i}], s:i, "
				  "s:s, s:s}",
				  "orderId", order, "customerId", "c-1", "customerEmail",
				  "ada@example.com", "items", "sku", "mug-classic", "quantity", 5,
				  "unitPriceCents", 1299, "sku", "socks", "quantity", 1,
				  "unitPriceCents", 800, "totalCents", 7295, "currency", "EUR",
				  "paymentToken", "tok_visa"));
		extra[1] = es_event_new("order-service", ES_ORDER_CANCELLED, order, NULL, NULL,
					json_pack("{s:s, s:s, s:s}", "orderId", order, "reason",
						  "CUSTOMER_REQUEST", "detail", "too late"));
		extra[2] = es_event_new(
			"shipping-service", ES_SHIPMENT_DELIVERED, delivered->subject, NULL, NULL,
			json_pack("{s:s, s:s, s:s}", "orderId", delivered->subject, "shipmentId",
				  "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "trackingNumber",
				  "ES0123456789AB"));
		/* A PaymentProcessed without its amount: rejected. */
		extra[3] = es_event_new("payment-service", ES_PAYMENT_PROCESSED, order, NULL, NULL,
					json_pack("{s:s, s:s, s:s}", "orderId", order, "paymentId",
						  "p", "currency", "EUR"));
		extra[4] = es_event_new("payment-service", ES_PAYMENT_REFUNDED, order, NULL, NULL,
					json_pack("{s:s, s:s, s:i, s:s}", "orderId", order,
						  "paymentId", "p", "amountCents", 1, "currency",
						  "EUR"));
		for (int i = 0; i < EXTRA - 1; i++) {
			ck_assert_ptr_nonnull(extra[i]);
			items[n++] = (struct es_batch_item){.ev = extra[i]};
		}
		bad = n - 2;
		items[n++] = (struct es_batch_item){.ev = extra[4]}; /* twice in the batch */

		for (size_t i = 0; i < n; i++) {
			enum es_handler_result r = deliver(&app_one, items[i].ev, IT_ORDERS);

			ck_assert_int_eq(r, i == bad ? ES_HANDLER_REJECT : ES_HANDLER_OK);
		}
		for (int round = 0; round < 2; round++) {
			ck_assert_int_eq(es_dispatch_batch(&d, items, n, reason, sizeof(reason)),
					 ES_HANDLER_OK);
			for (size_t i = 0; i < n; i++)
				ck_assert_msg(items[i].result == (i == bad ? ES_HANDLER_REJECT
									   : ES_HANDLER_OK),
					      "%zu %s: %s", i, items[i].ev->type, items[i].reason);
			it_assert_same(read_models(batch), read_models(one));
			ck_assert_int_eq(it_inbox_count(batch), (long)s.total + EXTRA - 2);
		}
		/* What one at a time gives, to be sure the comparison means it:
		 * the later OrderPlaced's total, the first one's line of a sku,
		 * the first terminal status. */
		ck_assert_str_eq(one_value(batch,
					   "SELECT total_cents || ' ' || status AS v"
					   " FROM analytics_orders WHERE order_id = $1",
					   order, buf, sizeof(buf)),
				 "7295 CONFIRMED");
		ck_assert_str_eq(one_value(batch,
					   "SELECT string_agg(sku || ' ' || quantity, ', '"
					   " ORDER BY sku) AS v FROM analytics_order_items"
					   " WHERE order_id = $1",
					   order, buf, sizeof(buf)),
				 "mug-classic 2, socks 1, tshirt-kafka 1");
		for (int i = 0; i < EXTRA - 1; i++)
			es_event_free(extra[i]);
		it_saga_free(&s);
		es_db_free(batch);
		es_db_free(one);
	}
}
END_TEST

START_TEST(orders_gauge_follows_the_read_model)
{
	struct es_db *db = fresh_schema();
	struct es_metrics *reg = es_metrics_new();
	static const char *const labels[] = {"status", NULL};
	struct analytics app = {.db = db};
	char errstr[512], *text;
	struct it_saga s;

	app.orders_gauge = es_gauge_register(reg, "es_analytics_orders", "Orders.", labels, errstr,
					     sizeof(errstr));
	ck_assert_msg(app.orders_gauge, "%s", errstr);
	it_saga_build(&s);
	deliver_by_topic(&app, &s);
	ck_assert_int_eq(analytics_refresh_gauge(&app, errstr, sizeof(errstr)), 0);
	ck_assert(!app.orders_changed);
	text = es_metrics_render(reg, NULL);
	ck_assert_msg(strstr(text, "es_analytics_orders{status=\"confirmed\"} 3\n"), "%s", text);
	ck_assert_msg(strstr(text, "es_analytics_orders{status=\"cancelled\"} 2\n"), "%s", text);
	ck_assert_msg(strstr(text, "es_analytics_orders{status=\"pending\"} 1\n"), "%s", text);
	free(text);
	it_saga_free(&s);
	es_metrics_free(reg);
	es_db_free(db);
}
END_TEST

static Suite *handler_suite(void)
{
	Suite *s = suite_create("analytics handler (PostgreSQL)");
	TCase *tc = tcase_create("handler");

	tcase_add_test(tc, mixed_orders_give_the_contract_numbers);
	tcase_add_test(tc, redelivered_events_change_nothing);
	tcase_add_test(tc, another_cross_topic_order_gives_the_same_numbers);
	tcase_add_test(tc, terminal_before_placed_does_not_corrupt_the_counts);
	tcase_add_test(tc, terminal_status_never_changes);
	tcase_add_test(tc, unknown_types_and_bad_data_are_rejected_and_change_nothing);
	tcase_add_test(tc, orders_gauge_follows_the_read_model);
	tcase_add_test(tc, one_batch_gives_the_rows_of_one_event_at_a_time);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (!es_test_database_url())
		return ES_TEST_SKIP;
	es_log_init("it_analytics_handler", ES_LOG_ERROR);
	return es_test_run_with_db(handler_suite(), &test_conninfo);
}
