#include "saga.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "es/events.h"

const char *const it_topic_names[IT_NTOPICS] = {"orders", "payments", "inventory", "notifications",
						"shipments"};

/*
 * Confirmed quantities: sticker-pack 10, hoodie-eda 3, mug-classic 3,
 * socks 2, keychain 1, tshirt-kafka 1; the top five cut the tie at 1 by
 * sku. Revenue 5097 + 19296 + 6890. Latencies 100 200 300 (confirmed),
 * 400 500 (cancelled): percentile_disc gives 300, 500, 500.
 */
const char it_saga_expected_stats[] =
	"{\"orders\":{\"placed\":6,\"confirmed\":3,\"cancelled\":2,\"pending\":1},"
	"\"revenueCents\":31283,"
	"\"cancelReasons\":{\"OUT_OF_STOCK\":1,\"PAYMENT_DECLINED\":1},"
	"\"topProducts\":[{\"sku\":\"sticker-pack\",\"quantity\":10},"
	"{\"sku\":\"hoodie-eda\",\"quantity\":3},{\"sku\":\"mug-classic\",\"quantity\":3},"
	"{\"sku\":\"socks\",\"quantity\":2},{\"sku\":\"keychain\",\"quantity\":1}],"
	"\"sagaLatencyMs\":{\"p50\":300,\"p95\":500,\"p99\":500},"
	"\"payments\":{\"processed\":5,\"failed\":1,\"refunded\":1},"
	"\"reservations\":{\"reserved\":4,\"rejected\":1,\"released\":1},"
	"\"emails\":{\"order-cancelled\":2,\"order-confirmed\":3,\"order-received\":6,"
	"\"order-shipped\":3,\"refund-issued\":1},"
	"\"shipments\":{\"created\":3,\"dispatched\":3,\"delivered\":3,\"cancelled\":0,"
	"\"deliveryMs\":{\"p50\":4200,\"p95\":4300,\"p99\":4300}}}";

enum outcome { CONFIRMED, DECLINED, OUT_OF_STOCK, PENDING };

struct line {
	const char *sku;
	int quantity;
	int unit_cents;
};

struct order {
	enum outcome outcome;
	int latency_ms;
	struct line lines[4]; /* ends with sku NULL */
};

static const struct order orders[] = {
	{CONFIRMED, 100, {{"mug-classic", 2, 1299}, {"tshirt-kafka", 1, 2499}}},
	{CONFIRMED, 200, {{"mug-classic", 1, 1299}, {"hoodie-eda", 3, 5999}}},
	{CONFIRMED, 300, {{"sticker-pack", 10, 499}, {"keychain", 1, 300}, {"socks", 2, 800}}},
	{DECLINED, 400, {{"poster-limited", 1, 1999}}},
	{OUT_OF_STOCK, 500, {{"poster-limited", 10, 1999}}},
	{PENDING, 0, {{"tshirt-kafka", 4, 2499}}},
};

/* 2026-03-01T10:00:00.000Z; order i is placed i seconds later. */
#define T0_MS 1772359200000LL

struct builder {
	struct it_saga *s;
	char order_id[ES_UUID_LEN + 1];
	const struct es_event *placed; /* the cause of what follows */
};

static void add(struct builder *b, enum it_topic topic, const char *service, const char *type,
		long long at_ms, json_t *data)
{
	struct es_event *ev;
	char when[ES_TIME_LEN + 1], reason[256];

	ck_assert_ptr_nonnull(data);
	json_object_set_new(data, "orderId", json_string(b->order_id));
	ev = es_event_new(service, type, b->order_id, b->placed, NULL, data);
	ck_assert_ptr_nonnull(ev);
	es_time_format(at_ms, when);
	free(ev->time);
	ev->time = strdup(when);
	ck_assert_msg(es_event_data_check(ev, reason, sizeof(reason)) == 0, "%s", reason);
	ck_assert_uint_lt(b->s->n[topic], IT_SAGA_MAX);
	b->s->ev[topic][b->s->n[topic]++] = ev;
	b->s->total++;
	if (!b->placed)
		b->placed = ev;
}

static void email(struct builder *b, const char *template, long long at_ms)
{
	add(b, IT_NOTIFICATIONS, "email-service", ES_EMAIL_SENT, at_ms,
	    json_pack("{s:s, s:s, s:s}", "template", template, "to", "ada@example.com", "messageId",
		      "<m@example.com>"));
}

/* A confirmed order's shipment: created at once, dispatched a second
 * later (with its mail), delivered delivery_ms after the confirmation. */
static void shipped(struct builder *b, long long confirmed_ms, long long delivery_ms)
{
	const char *sid = "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";

	add(b, IT_SHIPMENTS, "shipping-service", ES_SHIPMENT_CREATED, confirmed_ms + 20,
	    json_pack("{s:s, s:s, s:s}", "shipmentId", sid, "carrier", "DHL", "trackingNumber",
		      "ES0123456789AB"));
	add(b, IT_SHIPMENTS, "shipping-service", ES_SHIPMENT_DISPATCHED, confirmed_ms + 1000,
	    json_pack("{s:s, s:s, s:s}", "shipmentId", sid, "carrier", "DHL", "trackingNumber",
		      "ES0123456789AB"));
	email(b, "order-shipped", confirmed_ms + 1005);
	add(b, IT_SHIPMENTS, "shipping-service", ES_SHIPMENT_DELIVERED, confirmed_ms + delivery_ms,
	    json_pack("{s:s, s:s}", "shipmentId", sid, "trackingNumber", "ES0123456789AB"));
}

static void build_order(struct it_saga *s, const struct order *o, long long placed_ms)
{
	struct builder b = {.s = s};
	long long end_ms = placed_ms + o->latency_ms;
	json_t *items = json_array(), *reserved = json_array();
	long long total = 0;

	es_uuid_new(b.order_id);
	for (const struct line *l = o->lines; l->sku; l++) {
		json_array_append_new(items,
				      json_pack("{s:s, s:i, s:i}", "sku", l->sku, "quantity",
						l->quantity, "unitPriceCents", l->unit_cents));
		json_array_append_new(
			reserved, json_pack("{s:s, s:i}", "sku", l->sku, "quantity", l->quantity));
		total += (long long)l->quantity * l->unit_cents;
	}
	add(&b, IT_ORDERS, "order-service", ES_ORDER_PLACED, placed_ms,
	    json_pack("{s:s, s:s, s:o, s:I, s:s, s:s}", "customerId", "c-1", "customerEmail",
		      "ada@example.com", "items", items, "totalCents", (json_int_t)total,
		      "currency", "EUR", "paymentToken", "tok_visa"));
	email(&b, "order-received", placed_ms + 5);

	if (o->outcome != DECLINED)
		add(&b, IT_PAYMENTS, "payment-service", ES_PAYMENT_PROCESSED, placed_ms + 10,
		    json_pack("{s:s, s:I, s:s}", "paymentId", "pay-1", "amountCents",
			      (json_int_t)total, "currency", "EUR"));
	else
		add(&b, IT_PAYMENTS, "payment-service", ES_PAYMENT_FAILED, placed_ms + 10,
		    json_pack("{s:s, s:I, s:s}", "reason", "CARD_DECLINED", "amountCents",
			      (json_int_t)total, "currency", "EUR"));

	switch (o->outcome) {
	case CONFIRMED:
		add(&b, IT_INVENTORY, "inventory-service", ES_INVENTORY_RESERVED, placed_ms + 20,
		    json_pack("{s:s, s:O}", "reservationId", "res-1", "items", reserved));
		add(&b, IT_ORDERS, "order-service", ES_ORDER_CONFIRMED, end_ms,
		    json_pack("{s:s, s:s, s:I, s:s}", "paymentId", "pay-1", "reservationId",
			      "res-1", "totalCents", (json_int_t)total, "currency", "EUR"));
		email(&b, "order-confirmed", end_ms + 5);
		shipped(&b, end_ms, 4000 + o->latency_ms);
		break;
	case DECLINED:
		add(&b, IT_INVENTORY, "inventory-service", ES_INVENTORY_RESERVED, placed_ms + 20,
		    json_pack("{s:s, s:O}", "reservationId", "res-1", "items", reserved));
		add(&b, IT_ORDERS, "order-service", ES_ORDER_CANCELLED, end_ms,
		    json_pack("{s:s, s:s}", "reason", "PAYMENT_DECLINED", "detail", "declined"));
		add(&b, IT_INVENTORY, "inventory-service", ES_INVENTORY_RELEASED, end_ms + 10,
		    json_pack("{s:s, s:O}", "reservationId", "res-1", "items", reserved));
		email(&b, "order-cancelled", end_ms + 5);
		break;
	case OUT_OF_STOCK:
		add(&b, IT_INVENTORY, "inventory-service", ES_INVENTORY_REJECTED, placed_ms + 20,
		    json_pack("{s:s, s:[{s:s, s:i, s:i}]}", "reason", "OUT_OF_STOCK", "items",
			      "sku", o->lines[0].sku, "requested", o->lines[0].quantity,
			      "available", 5));
		add(&b, IT_ORDERS, "order-service", ES_ORDER_CANCELLED, end_ms,
		    json_pack("{s:s, s:s}", "reason", "OUT_OF_STOCK", "detail", "no stock"));
		add(&b, IT_PAYMENTS, "payment-service", ES_PAYMENT_REFUNDED, end_ms + 10,
		    json_pack("{s:s, s:I, s:s}", "paymentId", "pay-1", "amountCents",
			      (json_int_t)total, "currency", "EUR"));
		email(&b, "order-cancelled", end_ms + 5);
		email(&b, "refund-issued", end_ms + 15);
		break;
	case PENDING:
		break;
	}
	json_decref(reserved);
}

void it_saga_build(struct it_saga *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < sizeof(orders) / sizeof(orders[0]); i++)
		build_order(s, &orders[i], T0_MS + (long long)i * 1000);
}

void it_saga_free(struct it_saga *s)
{
	for (int t = 0; t < IT_NTOPICS; t++) {
		for (size_t i = 0; i < s->n[t]; i++)
			es_event_free(s->ev[t][i]);
	}
	memset(s, 0, sizeof(*s));
}
