/*
 * emit_events: prints the events of three sagas, one CloudEvent per line,
 * exactly as libeventshop builds and serializes them (es_event_new,
 * es_event_serialize), so that tests/contract/validate.py can check what
 * the C code produces against schemas/:
 *
 *   build/tests/contract_emit_events | tests/contract/validate.py --events -
 *
 * The sagas cover every event type but ShipmentCancelled (which only an
 * order cancelled after its confirmation would cause, and the contract
 * ends an order once): confirmed, then shipped and delivered; cancelled
 * after a declined card (the reservation released); cancelled for lack of
 * stock (the charge refunded). Ids and times are new on every run. Exits 1 when
 * the library rejects one of its own events (es_event_parse,
 * es_event_data_check).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/envelope.h"
#include "es/events.h"

static int failures;

/* Makes, prints and returns (caller frees) one event; data is stolen. */
static struct es_event *emit(const char *service, const char *type, const char *order_id,
			     const struct es_event *cause, const char *traceparent, json_t *data)
{
	struct es_event *ev = es_event_new(service, type, order_id, cause, traceparent, data);
	struct es_event *back;
	char err[256] = "";
	char *text;

	if (!ev || !(text = es_event_serialize(ev))) {
		fprintf(stderr, "emit_events: out of memory\n");
		exit(2);
	}
	back = es_event_parse(text, strlen(text), err, sizeof(err));
	if (!back || es_event_data_check(back, err, sizeof(err))) {
		fprintf(stderr, "emit_events: the library rejects its own %s: %s\n", type, err);
		failures++;
	}
	es_event_free(back);
	puts(text);
	free(text);
	return ev;
}

static void email(const char *order_id, const struct es_event *cause, const char *template,
		  const char *to)
{
	char message_id[128];

	snprintf(message_id, sizeof(message_id), "<%s.%s@eventshop>", template, order_id);
	es_event_free(emit("email-service", "EmailSent", order_id, cause, NULL,
			   json_pack("{s:s, s:s, s:s, s:s}", "orderId", order_id, "template",
				     template, "to", to, "messageId", message_id)));
}

static json_t *payment(const char *order_id, const char *payment_id, int cents)
{
	return json_pack("{s:s, s:s, s:i, s:s}", "orderId", order_id, "paymentId", payment_id,
			 "amountCents", cents, "currency", "EUR");
}

/* The shipment of a confirmed order: created, dispatched (with its mail),
 * delivered, each caused by the one before. */
static void shipped(const char *order_id, const struct es_event *confirmed)
{
	const char *sid = "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", *track = "ES0123456789AB";
	struct es_event *created, *dispatched;

	created = emit("shipping-service", "ShipmentCreated", order_id, confirmed, NULL,
		       json_pack("{s:s, s:s, s:s, s:s}", "orderId", order_id, "shipmentId", sid,
				 "carrier", "DHL", "trackingNumber", track));
	dispatched = emit("shipping-service", "ShipmentDispatched", order_id, created, NULL,
			  json_pack("{s:s, s:s, s:s, s:s}", "orderId", order_id, "shipmentId", sid,
				    "carrier", "DHL", "trackingNumber", track));
	email(order_id, dispatched, "order-shipped", "ada@example.com");
	es_event_free(emit("shipping-service", "ShipmentDelivered", order_id, dispatched, NULL,
			   json_pack("{s:s, s:s, s:s}", "orderId", order_id, "shipmentId", sid,
				     "trackingNumber", track)));
	es_event_free(dispatched);
	es_event_free(created);
}

/* Confirmed: 2 mugs and a sticker pack, paid with tok_visa. */
static void saga_confirmed(void)
{
	const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	struct es_event *placed, *reserved, *paid, *confirmed;
	char o[ES_UUID_LEN + 1];

	es_uuid_new(o);
	placed = emit("order-service", "OrderPlaced", o, NULL, tp,
		      json_pack("{s:s, s:s, s:s, s:[{s:s, s:i, s:i}, {s:s, s:i, s:i}], s:i, s:s, "
				"s:s}",
				"orderId", o, "customerId", "cust-42", "customerEmail",
				"ada@example.com", "items", "sku", "mug-classic", "quantity", 2,
				"unitPriceCents", 1299, "sku", "sticker-pack", "quantity", 1,
				"unitPriceCents", 499, "totalCents", 3097, "currency", "EUR",
				"paymentToken", "tok_visa"));
	reserved = emit("inventory-service", "InventoryReserved", o, placed, NULL,
			json_pack("{s:s, s:s, s:[{s:s, s:i}, {s:s, s:i}]}", "orderId", o,
				  "reservationId", "res-1", "items", "sku", "mug-classic",
				  "quantity", 2, "sku", "sticker-pack", "quantity", 1));
	paid = emit("payment-service", "PaymentProcessed", o, placed, NULL,
		    payment(o, "pay-1", 3097));
	email(o, placed, "order-received", "ada@example.com");
	confirmed = emit("order-service", "OrderConfirmed", o, paid, NULL,
			 json_pack("{s:s, s:s, s:s, s:i, s:s}", "orderId", o, "paymentId", "pay-1",
				   "reservationId", "res-1", "totalCents", 3097, "currency",
				   "EUR"));
	email(o, confirmed, "order-confirmed", "ada@example.com");
	shipped(o, confirmed);
	es_event_free(confirmed);
	es_event_free(paid);
	es_event_free(reserved);
	es_event_free(placed);
}

/* Cancelled: the card is declined; the reservation is released. */
static void saga_declined(void)
{
	struct es_event *placed, *failed, *reserved, *cancelled;
	char o[ES_UUID_LEN + 1];

	es_uuid_new(o);
	placed = emit("order-service", "OrderPlaced", o, NULL, NULL,
		      json_pack("{s:s, s:s, s:s, s:[{s:s, s:i, s:i}], s:i, s:s, s:s}", "orderId", o,
				"customerId", "cust-7", "customerEmail", "grace@example.com",
				"items", "sku", "hoodie-eda", "quantity", 1, "unitPriceCents", 5999,
				"totalCents", 5999, "currency", "EUR", "paymentToken",
				"tok_declined"));
	failed = emit("payment-service", "PaymentFailed", o, placed, NULL,
		      json_pack("{s:s, s:s, s:i, s:s}", "orderId", o, "reason", "CARD_DECLINED",
				"amountCents", 5999, "currency", "EUR"));
	reserved = emit("inventory-service", "InventoryReserved", o, placed, NULL,
			json_pack("{s:s, s:s, s:[{s:s, s:i}]}", "orderId", o, "reservationId",
				  "res-2", "items", "sku", "hoodie-eda", "quantity", 1));
	cancelled = emit("order-service", "OrderCancelled", o, failed, NULL,
			 json_pack("{s:s, s:s, s:s}", "orderId", o, "reason", "PAYMENT_DECLINED",
				   "detail", "payment failed: CARD_DECLINED"));
	es_event_free(emit("inventory-service", "InventoryReleased", o, cancelled, NULL,
			   json_pack("{s:s, s:s, s:[{s:s, s:i}]}", "orderId", o, "reservationId",
				     "res-2", "items", "sku", "hoodie-eda", "quantity", 1)));
	email(o, cancelled, "order-cancelled", "grace@example.com");
	es_event_free(cancelled);
	es_event_free(reserved);
	es_event_free(failed);
	es_event_free(placed);
}

/* Cancelled: 6 posters, 5 in stock; the charge is refunded. */
static void saga_out_of_stock(void)
{
	struct es_event *placed, *rejected, *paid, *cancelled, *refunded;
	char o[ES_UUID_LEN + 1];

	es_uuid_new(o);
	placed = emit("order-service", "OrderPlaced", o, NULL, NULL,
		      json_pack("{s:s, s:s, s:s, s:[{s:s, s:i, s:i}], s:i, s:s, s:s}", "orderId", o,
				"customerId", "cust-42", "customerEmail", "ada@example.com",
				"items", "sku", "poster-limited", "quantity", 6, "unitPriceCents",
				1999, "totalCents", 11994, "currency", "EUR", "paymentToken",
				"tok_ok_1"));
	rejected = emit("inventory-service", "InventoryRejected", o, placed, NULL,
			json_pack("{s:s, s:s, s:[{s:s, s:i, s:i}]}", "orderId", o, "reason",
				  "OUT_OF_STOCK", "items", "sku", "poster-limited", "requested", 6,
				  "available", 5));
	paid = emit("payment-service", "PaymentProcessed", o, placed, NULL,
		    payment(o, "pay-3", 11994));
	cancelled = emit("order-service", "OrderCancelled", o, rejected, NULL,
			 json_pack("{s:s, s:s, s:s}", "orderId", o, "reason", "OUT_OF_STOCK",
				   "detail", "out of stock: poster-limited"));
	refunded = emit("payment-service", "PaymentRefunded", o, cancelled, NULL,
			payment(o, "pay-3", 11994));
	email(o, refunded, "refund-issued", "ada@example.com");
	es_event_free(refunded);
	es_event_free(cancelled);
	es_event_free(paid);
	es_event_free(rejected);
	es_event_free(placed);
}

int main(void)
{
	saga_confirmed();
	saga_declined();
	saga_out_of_stock();
	if (fflush(stdout)) {
		perror("emit_events: stdout");
		return 2;
	}
	return failures ? 1 : 0;
}
