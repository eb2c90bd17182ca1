/*
 * Integration tests of the inventory handler against a real PostgreSQL
 * (DATABASE_URL): each test migrates a schema of its own, seeds it, and
 * runs events through the dispatch path (es_dispatch_one), as the consumer
 * loop would. They check the stock, the per-order records, and the events
 * left in the outbox.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "es/catalog.h"
#include "es/events.h"
#include "es/http.h"
#include "es/log.h"
#include "fixture.h"
#include "testsupport.h"

static const char *conninfo;

static struct it_fixture f;

static void setup(void)
{
	it_fixture_setup(&f, conninfo, IT_CATALOG);
}

static void teardown(void)
{
	it_fixture_teardown(&f);
}

/* Handles ev, expecting result want. */
static void handle_expect(struct es_event *ev, enum es_handler_result want)
{
	struct es_dispatch d = {.consumer = INVENTORY_SERVICE,
				.db = f.db,
				.handlers = &inventory_handlers,
				.app = &f.inv};
	char reason[512] = "";
	enum es_handler_result r = es_dispatch_one(&d, ev, reason, sizeof(reason));

	ck_assert_msg(r == want, "%s: result %d, want %d (%s)", ev->type, r, want, reason);
}

static void handle_ok(struct es_event *ev)
{
	handle_expect(ev, ES_HANDLER_OK);
}

/* The events in the outbox for order_id, oldest first (up to max). */
static int outbox_events(const char *order_id, struct es_event **out, int max)
{
	const char *params[1] = {order_id};
	char errstr[512];
	PGresult *res;
	int n;

	res = es_db_query(f.db, "SELECT payload FROM es_outbox WHERE msg_key = $1 ORDER BY id", 1,
			  params, errstr, sizeof(errstr));
	ck_assert_msg(res, "%s", errstr);
	n = PQntuples(res);
	ck_assert_int_le(n, max);
	for (int i = 0; i < n; i++) {
		const char *payload = es_db_get(res, i, "payload");

		out[i] = es_event_parse(payload, strlen(payload), errstr, sizeof(errstr));
		ck_assert_msg(out[i], "%s", errstr);
		/* Every event we write satisfies the contract's shape. */
		ck_assert_msg(es_event_data_check(out[i], errstr, sizeof(errstr)) == 0, "%s",
			      errstr);
	}
	PQclear(res);
	return n;
}

static void free_events(struct es_event **evs, int n)
{
	for (int i = 0; i < n; i++)
		es_event_free(evs[i]);
}

static long long outbox_count(const char *order_id)
{
	return it_number(f.db, "SELECT count(*) FROM es_outbox WHERE msg_key = $1", order_id);
}

static json_t *item(const struct es_event *ev, size_t i)
{
	return json_array_get(json_object_get(ev->data, "items"), i);
}

static const char *item_str(const struct es_event *ev, size_t i, const char *field)
{
	return json_string_value(json_object_get(item(ev, i), field));
}

static long long item_int(const struct es_event *ev, size_t i, const char *field)
{
	return json_integer_value(json_object_get(item(ev, i), field));
}

/* true when the rendered metrics contain line. */
static bool metrics_have(const char *line)
{
	char *text = es_metrics_render(f.metrics, NULL);
	bool found;

	ck_assert_ptr_nonnull(text);
	found = strstr(text, line) != NULL;
	free(text);
	return found;
}

static const char *reservation_status(const char *order_id, char *buf, size_t size)
{
	char errstr[512];
	json_t *r;
	int found = inventory_reservation_get(f.db, order_id, &r, errstr, sizeof(errstr));

	ck_assert_msg(found >= 0, "%s", errstr);
	if (!found)
		return NULL;
	snprintf(buf, size, "%s", json_string_value(json_object_get(r, "status")));
	json_decref(r);
	return buf;
}

START_TEST(reserve_takes_stock_and_writes_one_reserved_event)
{
	struct es_event *placed, *out[4];
	char order[ES_UUID_LEN + 1], status[32], errstr[512];
	json_t *view;
	int n;

	it_order_id(order);
	placed = it_placed(order, "[{\"sku\":\"poster-limited\",\"quantity\":1},"
				  "{\"sku\":\"mug-classic\",\"quantity\":2}]");
	handle_ok(placed);

	ck_assert_int_eq(it_stock(f.db, "mug-classic"), 8);
	ck_assert_int_eq(it_stock(f.db, "poster-limited"), 4);
	ck_assert_int_eq(it_stock(f.db, "tshirt-kafka"), 1000);

	n = outbox_events(order, out, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(out[0]->type, ES_INVENTORY_RESERVED);
	ck_assert_str_eq(out[0]->source, "/eventshop/inventory-service");
	ck_assert_str_eq(out[0]->causationid, placed->id);
	ck_assert_str_eq(out[0]->correlationid, order);
	ck_assert_str_eq(out[0]->traceparent, placed->traceparent);
	ck_assert(es_uuid_valid(es_data_str(out[0], "reservationId")));
	/* Lines in sku order. */
	ck_assert_str_eq(item_str(out[0], 0, "sku"), "mug-classic");
	ck_assert_int_eq(item_int(out[0], 0, "quantity"), 2);
	ck_assert_str_eq(item_str(out[0], 1, "sku"), "poster-limited");
	ck_assert_int_eq(item_int(out[0], 1, "quantity"), 1);
	ck_assert_int_eq(
		it_number(f.db, "SELECT count(*) FROM es_outbox WHERE topic = $1", IT_TOPIC), 1);

	ck_assert_str_eq(reservation_status(order, status, sizeof(status)), "RESERVED");
	ck_assert_int_eq(inventory_reservation_get(f.db, order, &view, errstr, sizeof(errstr)), 1);
	ck_assert_str_eq(json_string_value(json_object_get(view, "reservationId")),
			 es_data_str(out[0], "reservationId"));
	ck_assert(
		json_equal(json_object_get(view, "items"), json_object_get(out[0]->data, "items")));
	json_decref(view);
	ck_assert(metrics_have("es_inventory_reservations_total{outcome=\"reserved\"} 1"));
	ck_assert(metrics_have("es_inventory_reservations_total{outcome=\"rejected\"} 0"));
	free_events(out, n);
	es_event_free(placed);
}
END_TEST

START_TEST(over_stock_order_is_rejected_and_takes_nothing)
{
	struct es_event *placed, *out[4];
	char order[ES_UUID_LEN + 1], status[32];
	int n;

	/* mug-classic sorts first and fits, so it is taken before the poster
	 * comes up short: the rejection must give it back. */
	it_order_id(order);
	placed = it_placed(order, "[{\"sku\":\"poster-limited\",\"quantity\":6},"
				  "{\"sku\":\"mug-classic\",\"quantity\":3}]");
	handle_ok(placed);

	ck_assert_int_eq(it_stock(f.db, "mug-classic"), 10);
	ck_assert_int_eq(it_stock(f.db, "poster-limited"), 5);
	ck_assert_ptr_null(reservation_status(order, status, sizeof(status)));
	ck_assert_int_eq(
		it_number(f.db, "SELECT count(*) FROM rejections WHERE order_id = $1", order), 1);

	n = outbox_events(order, out, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(out[0]->type, ES_INVENTORY_REJECTED);
	ck_assert_str_eq(out[0]->causationid, placed->id);
	ck_assert_str_eq(es_data_str(out[0], "reason"), "OUT_OF_STOCK");
	ck_assert_uint_eq(json_array_size(json_object_get(out[0]->data, "items")), 2);
	ck_assert_str_eq(item_str(out[0], 0, "sku"), "mug-classic");
	ck_assert_int_eq(item_int(out[0], 0, "requested"), 3);
	ck_assert_int_eq(item_int(out[0], 0, "available"), 10);
	ck_assert_str_eq(item_str(out[0], 1, "sku"), "poster-limited");
	ck_assert_int_eq(item_int(out[0], 1, "requested"), 6);
	ck_assert_int_eq(item_int(out[0], 1, "available"), 5);
	ck_assert(metrics_have("es_inventory_reservations_total{outcome=\"rejected\"} 1"));
	ck_assert(metrics_have("es_inventory_reservations_total{outcome=\"reserved\"} 0"));
	free_events(out, n);
	es_event_free(placed);
}
END_TEST

START_TEST(unknown_sku_is_rejected_with_available_zero)
{
	struct es_event *placed, *out[4];
	char order[ES_UUID_LEN + 1];
	int n;

	it_order_id(order);
	placed = it_placed(order, "[{\"sku\":\"zz-unknown\",\"quantity\":1},"
				  "{\"sku\":\"mug-classic\",\"quantity\":1},"
				  "{\"sku\":\"mug-classic\",\"quantity\":1}]");
	handle_ok(placed);
	ck_assert_int_eq(it_stock(f.db, "mug-classic"), 10);
	n = outbox_events(order, out, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(out[0]->type, ES_INVENTORY_REJECTED);
	/* The repeated mug-classic lines are one line of 2. */
	ck_assert_uint_eq(json_array_size(json_object_get(out[0]->data, "items")), 2);
	ck_assert_str_eq(item_str(out[0], 0, "sku"), "mug-classic");
	ck_assert_int_eq(item_int(out[0], 0, "requested"), 2);
	ck_assert_int_eq(item_int(out[0], 0, "available"), 10);
	ck_assert_str_eq(item_str(out[0], 1, "sku"), "zz-unknown");
	ck_assert_int_eq(item_int(out[0], 1, "available"), 0);
	ck_assert_int_eq(it_number(f.db, "SELECT count(*) FROM stock WHERE sku = $1", "zz-unknown"),
			 0);
	free_events(out, n);
	es_event_free(placed);
}
END_TEST

START_TEST(same_event_twice_reserves_once)
{
	char order[ES_UUID_LEN + 1];
	struct es_event *placed, *again;

	it_order_id(order);
	placed = it_placed(order, "[{\"sku\":\"mug-classic\",\"quantity\":3}]");
	handle_ok(placed);
	handle_ok(placed); /* redelivered by Kafka: the same id */
	ck_assert_int_eq(it_stock(f.db, "mug-classic"), 7);
	ck_assert_int_eq(outbox_count(order), 1);

	/* Another OrderPlaced for the same order (a new event id): the order
	 * was decided, so nothing more is reserved or announced. */
	again = it_placed(order, "[{\"sku\":\"mug-classic\",\"quantity\":3}]");
	handle_ok(again);
	ck_assert_int_eq(it_stock(f.db, "mug-classic"), 7);
	ck_assert_int_eq(outbox_count(order), 1);
	ck_assert_int_eq(
		it_number(f.db, "SELECT count(*) FROM reservations WHERE order_id = $1", order), 1);
	ck_assert_int_eq(it_number(f.db, "SELECT count(*) FROM es_inbox WHERE consumer = $1",
				   INVENTORY_SERVICE),
			 2);
	ck_assert(metrics_have("es_inventory_reservations_total{outcome=\"reserved\"} 1"));
	es_event_free(placed);
	es_event_free(again);
}
END_TEST

START_TEST(rejected_order_is_not_decided_again)
{
	char order[ES_UUID_LEN + 1];
	struct es_event *placed, *again;

	it_order_id(order);
	placed = it_placed(order, "[{\"sku\":\"poster-limited\",\"quantity\":6}]");
	handle_ok(placed);
	/* Even with the stock there now, the order stays rejected. */
	again = it_placed(order, "[{\"sku\":\"poster-limited\",\"quantity\":1}]");
	handle_ok(again);
	ck_assert_int_eq(it_stock(f.db, "poster-limited"), 5);
	ck_assert_int_eq(outbox_count(order), 1);
	es_event_free(placed);
	es_event_free(again);
}
END_TEST

START_TEST(cancel_releases_once)
{
	struct es_event *placed, *cancelled, *again, *out[4];
	char order[ES_UUID_LEN + 1], status[32];
	int n;

	it_order_id(order);
	placed = it_placed(order, "[{\"sku\":\"mug-classic\",\"quantity\":4},"
				  "{\"sku\":\"poster-limited\",\"quantity\":5}]");
	handle_ok(placed);
	ck_assert_int_eq(it_stock(f.db, "poster-limited"), 0);

	cancelled = it_cancelled(order, "PAYMENT_DECLINED");
	handle_ok(cancelled);
	handle_ok(cancelled); /* redelivered */
	again = it_cancelled(order, "TIMEOUT"); /* another cancel of the same order */
	handle_ok(again);

	ck_assert_int_eq(it_stock(f.db, "mug-classic"), 10);
	ck_assert_int_eq(it_stock(f.db, "poster-limited"), 5);
	ck_assert_str_eq(reservation_status(order, status, sizeof(status)), "RELEASED");

	n = outbox_events(order, out, 4);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(out[0]->type, ES_INVENTORY_RESERVED);
	ck_assert_str_eq(out[1]->type, ES_INVENTORY_RELEASED);
	ck_assert_str_eq(out[1]->causationid, cancelled->id);
	ck_assert_str_eq(es_data_str(out[1], "reservationId"),
			 es_data_str(out[0], "reservationId"));
	ck_assert(json_equal(json_object_get(out[1]->data, "items"),
			     json_object_get(out[0]->data, "items")));
	ck_assert(metrics_have("es_inventory_reservations_total{outcome=\"released\"} 1"));
	free_events(out, n);
	es_event_free(placed);
	es_event_free(cancelled);
	es_event_free(again);
}
END_TEST

/* Runs one SQL statement with at most one parameter. */
static void run_sql(const char *sql, const char *param)
{
	char errstr[512];

	ck_assert_msg(es_db_exec(f.db, sql, param ? 1 : 0,
				 param ? (const char *const[]){param} : NULL, errstr,
				 sizeof(errstr)) >= 0,
		      "%s: %s", sql, errstr);
}

START_TEST(one_batch_applies_its_events_in_order)
{
	char a[ES_UUID_LEN + 1], b[ES_UUID_LEN + 1], c[ES_UUID_LEN + 1], d[ES_UUID_LEN + 1],
		x[ES_UUID_LEN + 1], status[32], reason[512] = "";
	struct es_dispatch dispatch = {.consumer = INVENTORY_SERVICE,
				       .db = f.db,
				       .handlers = &inventory_handlers,
				       .app = &f.inv};
	struct es_event *evs[9], *out[4], *late;
	struct es_batch_item items[9];
	int n;

	it_order_id(a);
	it_order_id(b);
	it_order_id(c);
	it_order_id(d);
	it_order_id(x);
	/* x holds a reservation whose items cannot be given back: its cancel
	 * is the poison in the middle of the batch. */
	run_sql("INSERT INTO reservations (order_id, reservation_id, items, status)"
		" VALUES ($1, gen_random_uuid(), '[]', 'RESERVED')",
		x);
	/* poster-limited 5, mug-classic 10. */
	evs[0] = it_placed(a, "[{\"sku\":\"poster-limited\",\"quantity\":3}]");
	evs[1] = it_placed(b, "[{\"sku\":\"poster-limited\",\"quantity\":3},"
			      "{\"sku\":\"mug-classic\",\"quantity\":1}]");
	evs[2] = it_cancelled(x, "TIMEOUT");
	evs[3] = it_cancelled(a, "CUSTOMER_REQUEST");
	evs[4] = it_placed(c, "[{\"sku\":\"poster-limited\",\"quantity\":4},"
			      "{\"sku\":\"mug-classic\",\"quantity\":2}]");
	evs[5] = it_confirmed(c, "00000000-0000-4000-8000-000000000000");
	evs[6] = it_cancelled(d, "TIMEOUT");
	evs[7] = it_placed(d, "[{\"sku\":\"mug-classic\",\"quantity\":1}]");
	evs[8] = evs[0]; /* delivered twice in one batch */
	memset(items, 0, sizeof(items));
	for (int i = 0; i < 9; i++)
		items[i].ev = evs[i];
	ck_assert_msg(es_dispatch_batch(&dispatch, items, 9, reason, sizeof(reason)) ==
			      ES_HANDLER_OK,
		      "%s", reason);
	for (int i = 0; i < 9; i++) {
		if (i != 2)
			ck_assert_msg(items[i].result == ES_HANDLER_OK, "item %d: %s", i,
				      items[i].reason);
	}
	ck_assert_int_eq(items[2].result, ES_HANDLER_REJECT);
	ck_assert_msg(strstr(items[2].reason, x), "%s", items[2].reason);
	ck_assert_ptr_null(f.inv.batch.orders); /* released once written */

	/* a took 3 posters and gave them back; b saw 2 left and was
	 * rejected; c then found all 5 and took 4. */
	ck_assert_int_eq(it_stock(f.db, "poster-limited"), 1);
	ck_assert_int_eq(it_stock(f.db, "mug-classic"), 8);
	ck_assert_str_eq(reservation_status(a, status, sizeof(status)), "RELEASED");
	ck_assert_str_eq(reservation_status(c, status, sizeof(status)), "COMMITTED");
	ck_assert_str_eq(reservation_status(x, status, sizeof(status)), "RESERVED");
	ck_assert_ptr_null(reservation_status(b, status, sizeof(status)));
	ck_assert_ptr_null(reservation_status(d, status, sizeof(status)));
	ck_assert_int_eq(it_number(f.db,
				   "SELECT count(*) FROM rejections WHERE order_id = $1 AND items ="
				   " '[{\"sku\":\"mug-classic\",\"requested\":1,\"available\":10},"
				   "{\"sku\":\"poster-limited\",\"requested\":3,\"available\":2}]'",
				   b),
			 1);
	ck_assert_int_eq(it_number(f.db, "SELECT count(*) FROM rejections", NULL), 1);
	ck_assert_int_eq(it_number(f.db,
				   "SELECT count(*) FROM cancellations WHERE order_id = $1"
				   " AND reason = 'CUSTOMER_REQUEST'",
				   a),
			 1);
	ck_assert_int_eq(
		it_number(f.db, "SELECT count(*) FROM cancellations WHERE order_id = $1", d), 1);
	/* The poison's cancellation and inbox claim went with it. */
	ck_assert_int_eq(it_number(f.db, "SELECT count(*) FROM cancellations", NULL), 2);
	ck_assert_int_eq(
		it_number(f.db, "SELECT count(*) FROM es_inbox WHERE event_id = $1", evs[2]->id),
		0);

	n = outbox_events(a, out, 4);
	ck_assert_int_eq(n, 2);
	ck_assert_str_eq(out[0]->type, ES_INVENTORY_RESERVED);
	ck_assert_str_eq(out[1]->type, ES_INVENTORY_RELEASED);
	ck_assert_str_eq(es_data_str(out[1], "reservationId"),
			 es_data_str(out[0], "reservationId"));
	free_events(out, n);
	n = outbox_events(c, out, 4);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(out[0]->type, ES_INVENTORY_RESERVED);
	free_events(out, n);
	ck_assert_int_eq(outbox_count(b), 1);
	ck_assert_int_eq(outbox_count(d), 0);
	ck_assert_int_eq(outbox_count(x), 0);
	ck_assert(metrics_have("es_inventory_reservations_total{outcome=\"reserved\"} 2"));
	ck_assert(metrics_have("es_inventory_reservations_total{outcome=\"rejected\"} 1"));
	ck_assert(metrics_have("es_inventory_reservations_total{outcome=\"released\"} 1"));

	/* A later batch reads what this one wrote: c is sold, its stock
	 * stays taken. */
	late = it_cancelled(c, "CUSTOMER_REQUEST");
	handle_ok(late);
	ck_assert_int_eq(it_stock(f.db, "poster-limited"), 1);
	ck_assert_int_eq(outbox_count(c), 1);
	es_event_free(late);
	for (int i = 0; i < 8; i++)
		es_event_free(evs[i]);
}
END_TEST

START_TEST(stock_given_back_to_a_removed_sku_is_not_lost)
{
	char order[ES_UUID_LEN + 1];
	struct es_event *placed, *cancelled;

	it_order_id(order);
	placed = it_placed(order, "[{\"sku\":\"mug-classic\",\"quantity\":4}]");
	handle_ok(placed);
	run_sql("DELETE FROM stock WHERE sku = $1", "mug-classic");
	cancelled = it_cancelled(order, "TIMEOUT");
	handle_ok(cancelled);
	ck_assert_int_eq(it_stock(f.db, "mug-classic"), 4);
	ck_assert_int_eq(outbox_count(order), 2);
	es_event_free(placed);
	es_event_free(cancelled);
}
END_TEST

START_TEST(cancel_before_place_reserves_nothing_later)
{
	char order[ES_UUID_LEN + 1], status[32];
	struct es_event *placed, *cancelled;

	it_order_id(order);
	cancelled = it_cancelled(order, "TIMEOUT");
	handle_ok(cancelled);
	ck_assert_int_eq(outbox_count(order), 0);

	placed = it_placed(order, "[{\"sku\":\"mug-classic\",\"quantity\":1}]");
	handle_ok(placed);
	ck_assert_int_eq(it_stock(f.db, "mug-classic"), 10);
	ck_assert_ptr_null(reservation_status(order, status, sizeof(status)));
	ck_assert_int_eq(outbox_count(order), 0);
	ck_assert(metrics_have("es_inventory_reservations_total{outcome=\"reserved\"} 0"));
	es_event_free(placed);
	es_event_free(cancelled);
}
END_TEST

START_TEST(confirm_marks_committed_and_keeps_stock_taken)
{
	char order[ES_UUID_LEN + 1], status[32];
	struct es_event *placed, *confirmed, *cancelled, *out[4];
	int n;

	it_order_id(order);
	placed = it_placed(order, "[{\"sku\":\"poster-limited\",\"quantity\":2}]");
	handle_ok(placed);
	n = outbox_events(order, out, 4);
	ck_assert_int_eq(n, 1);
	confirmed = it_confirmed(order, es_data_str(out[0], "reservationId"));
	handle_ok(confirmed);
	handle_ok(confirmed);
	ck_assert_str_eq(reservation_status(order, status, sizeof(status)), "COMMITTED");
	ck_assert_int_eq(it_stock(f.db, "poster-limited"), 3);

	/* A cancel after the confirmation (the contract never sends one)
	 * gives nothing back: the stock is sold. */
	cancelled = it_cancelled(order, "CUSTOMER_REQUEST");
	handle_ok(cancelled);
	ck_assert_str_eq(reservation_status(order, status, sizeof(status)), "COMMITTED");
	ck_assert_int_eq(it_stock(f.db, "poster-limited"), 3);
	ck_assert_int_eq(outbox_count(order), 1);
	free_events(out, n);
	es_event_free(placed);
	es_event_free(confirmed);
	es_event_free(cancelled);
}
END_TEST

START_TEST(confirm_of_released_reservation_changes_nothing)
{
	char order[ES_UUID_LEN + 1], status[32];
	struct es_event *placed, *confirmed, *cancelled;

	it_order_id(order);
	placed = it_placed(order, "[{\"sku\":\"mug-classic\",\"quantity\":2}]");
	handle_ok(placed);
	cancelled = it_cancelled(order, "TIMEOUT");
	handle_ok(cancelled);
	confirmed = it_confirmed(order, "00000000-0000-4000-8000-000000000000");
	handle_ok(confirmed);
	ck_assert_str_eq(reservation_status(order, status, sizeof(status)), "RELEASED");
	ck_assert_int_eq(it_stock(f.db, "mug-classic"), 10);
	ck_assert_int_eq(outbox_count(order), 2);
	es_event_free(placed);
	es_event_free(confirmed);
	es_event_free(cancelled);
}
END_TEST

START_TEST(unknown_types_and_bad_data_are_rejected_other_events_ignored)
{
	char order[ES_UUID_LEN + 1];
	struct es_event *ev;

	it_order_id(order);
	ev = es_event_new("order-service", "OrderTeleported", order, NULL, NULL,
			  json_pack("{s:s}", "orderId", order));
	handle_expect(ev, ES_HANDLER_REJECT);
	es_event_free(ev);

	ev = es_event_new("order-service", ES_ORDER_PLACED, order, NULL, NULL,
			  json_pack("{s:s}", "orderId", order));
	handle_expect(ev, ES_HANDLER_REJECT);
	es_event_free(ev);

	ev = es_event_new("order-service", ES_ORDER_CANCELLED, order, NULL, NULL,
			  json_pack("{s:s, s:s}", "orderId", order, "reason", "BORED"));
	handle_expect(ev, ES_HANDLER_REJECT);
	es_event_free(ev);

	ev = es_event_new("payment-service", ES_PAYMENT_PROCESSED, order, NULL, NULL,
			  json_pack("{s:s, s:s, s:i, s:s}", "orderId", order, "paymentId", "p",
				    "amountCents", 1, "currency", "EUR"));
	handle_ok(ev);
	es_event_free(ev);

	ck_assert_int_eq(outbox_count(order), 0);
	ck_assert_int_eq(it_number(f.db, "SELECT count(*) FROM es_inbox WHERE consumer = $1",
				   INVENTORY_SERVICE),
			 0);
}
END_TEST

START_TEST(seed_never_resets_stock)
{
	char order[ES_UUID_LEN + 1], errstr[512];
	struct es_event *placed;
	struct es_catalog cat;

	it_order_id(order);
	placed = it_placed(order, "[{\"sku\":\"mug-classic\",\"quantity\":4}]");
	handle_ok(placed);

	/* A restart seeds again: the sold stock stays sold. */
	ck_assert_int_eq(es_catalog_parse(&cat, IT_CATALOG, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(inventory_stock_seed(f.db, &cat, errstr, sizeof(errstr)), 0);
	es_catalog_release(&cat);
	ck_assert_int_eq(it_stock(f.db, "mug-classic"), 6);

	/* The built-in catalog adds what is missing, with the contract's stock. */
	unsetenv("CATALOG_FILE");
	ck_assert_int_eq(es_catalog_load(&cat, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(inventory_stock_seed(f.db, &cat, errstr, sizeof(errstr)), 2);
	es_catalog_release(&cat);
	ck_assert_int_eq(it_stock(f.db, "mug-classic"), 6);
	ck_assert_int_eq(it_stock(f.db, "hoodie-eda"), 500);
	ck_assert_int_eq(it_stock(f.db, "sticker-pack"), 1000000);
	ck_assert_int_eq(it_stock(f.db, "poster-limited"), 5);
	es_event_free(placed);
}
END_TEST

/* GET path from the server on port; returns the status, body in body. */
static int http_get(unsigned short port, const char *path, char *body, size_t size)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	char req[256], resp[16384];
	size_t len = 0;
	int fd, status = 0;
	const char *start;
	ssize_t r;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	snprintf(req, sizeof(req),
		 "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", path);
	ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (len + 1 < sizeof(resp) && (r = read(fd, resp + len, sizeof(resp) - 1 - len)) > 0)
		len += (size_t)r;
	resp[len] = '\0';
	close(fd);
	ck_assert_int_eq(sscanf(resp, "HTTP/1.1 %d", &status), 1);
	start = strstr(resp, "\r\n\r\n");
	snprintf(body, size, "%s", start ? start + 4 : "");
	return status;
}

START_TEST(http_serves_stock_and_reservations)
{
	struct es_dbpool *pool = es_dbpool_new(conninfo, f.schema, 2);
	char order[ES_UUID_LEN + 1], body[8192], path[128], errstr[512];
	struct es_http_conf conf;
	struct es_event *placed;
	struct es_http *http;
	unsigned short port;
	json_t *j, *want;

	it_order_id(order);
	placed = it_placed(order, "[{\"sku\":\"tshirt-kafka\",\"quantity\":7}]");
	handle_ok(placed);

	ck_assert_ptr_nonnull(pool);
	es_http_conf_init(&conf);
	conf.bind_addr = "127.0.0.1";
	conf.db_pool = pool;
	http = es_http_new(&conf, errstr, sizeof(errstr));
	ck_assert_msg(http, "%s", errstr);
	ck_assert_int_eq(inventory_routes(http, errstr, sizeof(errstr)), 0);
	ck_assert_msg(es_http_start(http, errstr, sizeof(errstr)) == 0, "%s", errstr);
	port = es_http_port(http);

	ck_assert_int_eq(http_get(port, "/stock", body, sizeof(body)), 200);
	j = json_loads(body, 0, NULL);
	ck_assert_msg(j, "%s", body);
	want = json_loads("{\"stock\":[{\"sku\":\"mug-classic\",\"available\":10},"
			  "{\"sku\":\"poster-limited\",\"available\":5},"
			  "{\"sku\":\"tshirt-kafka\",\"available\":993}]}",
			  0, NULL);
	ck_assert_msg(json_equal(j, want), "%s", body);
	json_decref(want);
	json_decref(j);

	snprintf(path, sizeof(path), "/reservations/%s", order);
	ck_assert_int_eq(http_get(port, path, body, sizeof(body)), 200);
	j = json_loads(body, 0, NULL);
	ck_assert_msg(j, "%s", body);
	ck_assert_str_eq(json_string_value(json_object_get(j, "orderId")), order);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "RESERVED");
	ck_assert(es_uuid_valid(json_string_value(json_object_get(j, "reservationId"))));
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_array_get(json_object_get(j, "items"), 0), "quantity")),
			 7);
	json_decref(j);

	ck_assert_int_eq(http_get(port, "/reservations/no-such-order", body, sizeof(body)), 404);
	ck_assert_msg(strstr(body, "\"status\": 404") || strstr(body, "\"status\":404"), "%s",
		      body);

	es_http_free(http);
	es_dbpool_free(pool);
	es_event_free(placed);
}
END_TEST

static Suite *handler_suite(void)
{
	Suite *s = suite_create("inventory.handler");
	TCase *tc = tcase_create("handler");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, reserve_takes_stock_and_writes_one_reserved_event);
	tcase_add_test(tc, over_stock_order_is_rejected_and_takes_nothing);
	tcase_add_test(tc, unknown_sku_is_rejected_with_available_zero);
	tcase_add_test(tc, same_event_twice_reserves_once);
	tcase_add_test(tc, rejected_order_is_not_decided_again);
	tcase_add_test(tc, cancel_releases_once);
	tcase_add_test(tc, one_batch_applies_its_events_in_order);
	tcase_add_test(tc, stock_given_back_to_a_removed_sku_is_not_lost);
	tcase_add_test(tc, cancel_before_place_reserves_nothing_later);
	tcase_add_test(tc, confirm_marks_committed_and_keeps_stock_taken);
	tcase_add_test(tc, confirm_of_released_reservation_changes_nothing);
	tcase_add_test(tc, unknown_types_and_bad_data_are_rejected_other_events_ignored);
	tcase_add_test(tc, seed_never_resets_stock);
	tcase_add_test(tc, http_serves_stock_and_reservations);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (!es_test_database_url())
		return ES_TEST_SKIP;
	es_log_init("it_inventory_handler", ES_LOG_WARN);
	return es_test_run_with_db(handler_suite(), &conninfo);
}
