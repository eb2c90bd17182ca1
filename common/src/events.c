#include "es/events.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

enum kind {
	STR, /* non-empty string */
	INT0, /* integer >= 0 */
	INT1, /* integer >= 1 */
	QTY, /* integer 1..100, an order line's quantity */
	CUR, /* ISO 4217 code: three capital letters */
	UUID, /* a UUID string */
	ENUM, /* one of `values` */
	ITEMS, /* non-empty array of objects with the `item` fields */
};

struct field {
	const char *name;
	enum kind kind;
	const char *const *values; /* ENUM */
	const struct field *item; /* ITEMS: fields of each element, ends with name NULL */
};

struct shape {
	const char *type;
	const struct field *fields; /* ends with name NULL */
};

static const char *const cancel_reasons[] = {"PAYMENT_DECLINED", "OUT_OF_STOCK", "CUSTOMER_REQUEST",
					     "TIMEOUT", NULL};
static const char *const payment_reasons[] = {"CARD_DECLINED", "INSUFFICIENT_FUNDS",
					      "LIMIT_EXCEEDED", NULL};
static const char *const inventory_reasons[] = {"OUT_OF_STOCK", NULL};
static const char *const templates[] = {"order-received", "order-confirmed", "order-cancelled",
					"refund-issued",  "order-shipped",   NULL};
static const char *const carriers[] = {"DHL", "UPS", "DPD", NULL};

/* Table rows: a plain field, an enum field, an items array, the end. */
// clang-format off
#define F(n, k) {.name = n, .kind = k}
#define E(n, v) {.name = n, .kind = ENUM, .values = v}
#define I(n, it) {.name = n, .kind = ITEMS, .item = it}
#define END {.name = NULL}
// clang-format on

static const struct field placed_item[] = {
	F("sku", STR),
	F("quantity", QTY),
	F("unitPriceCents", INT0),
	END,
};
static const struct field sku_quantity[] = {
	F("sku", STR),
	F("quantity", INT1),
	END,
};
static const struct field rejected_item[] = {
	F("sku", STR),
	F("requested", INT1),
	F("available", INT0),
	END,
};

static const struct field order_placed[] = {
	F("orderId", UUID),	 F("customerId", STR),
	F("customerEmail", STR), I("items", placed_item),
	F("totalCents", INT0),	 F("currency", CUR),
	F("paymentToken", STR),	 END,
};
static const struct field order_confirmed[] = {
	F("orderId", UUID),    F("paymentId", STR), F("reservationId", STR),
	F("totalCents", INT0), F("currency", CUR),  END,
};
static const struct field order_cancelled[] = {
	F("orderId", UUID),
	E("reason", cancel_reasons),
	F("detail", STR),
	END,
};
static const struct field payment_processed[] = {
	F("orderId", UUID), F("paymentId", STR), F("amountCents", INT0), F("currency", CUR), END,
};
static const struct field payment_failed[] = {
	F("orderId", UUID),
	E("reason", payment_reasons),
	F("amountCents", INT0),
	F("currency", CUR),
	END,
};
static const struct field inventory_reserved[] = {
	F("orderId", UUID),
	F("reservationId", STR),
	I("items", sku_quantity),
	END,
};
static const struct field inventory_rejected[] = {
	F("orderId", UUID),
	E("reason", inventory_reasons),
	I("items", rejected_item),
	END,
};
static const struct field email_sent[] = {
	F("orderId", UUID), E("template", templates), F("to", STR), F("messageId", STR), END,
};

static const struct field shipment_created[] = {
	F("orderId", UUID),
	F("shipmentId", UUID),
	E("carrier", carriers),
	F("trackingNumber", STR),
	END,
};
static const struct field shipment_delivered[] = {
	F("orderId", UUID),
	F("shipmentId", UUID),
	F("trackingNumber", STR),
	END,
};
static const struct field shipment_cancelled[] = {
	F("orderId", UUID),
	F("shipmentId", UUID),
	E("reason", cancel_reasons),
	END,
};

static const struct shape shapes[] = {
	{ES_ORDER_PLACED, order_placed},
	{ES_ORDER_CONFIRMED, order_confirmed},
	{ES_ORDER_CANCELLED, order_cancelled},
	{ES_PAYMENT_PROCESSED, payment_processed},
	{ES_PAYMENT_FAILED, payment_failed},
	{ES_PAYMENT_REFUNDED, payment_processed},
	{ES_INVENTORY_RESERVED, inventory_reserved},
	{ES_INVENTORY_REJECTED, inventory_rejected},
	{ES_INVENTORY_RELEASED, inventory_reserved},
	{ES_EMAIL_SENT, email_sent},
	{ES_SHIPMENT_CREATED, shipment_created},
	{ES_SHIPMENT_DISPATCHED, shipment_created},
	{ES_SHIPMENT_DELIVERED, shipment_delivered},
	{ES_SHIPMENT_CANCELLED, shipment_cancelled},
};

static const struct shape *shape_of(const char *type)
{
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		if (!strcmp(shapes[i].type, type))
			return &shapes[i];
	}
	return NULL;
}

bool es_event_type_known(const char *type)
{
	return type && shape_of(type);
}

static bool one_of(const char *s, const char *const *values)
{
	for (size_t i = 0; values[i]; i++) {
		if (!strcmp(s, values[i]))
			return true;
	}
	return false;
}

/* Checks the fields of obj; path is the JSON pointer of obj ("" or
 * "/items/3"). Returns 0 or -1 with errstr filled. */
static int check_fields(const char *type, json_t *obj, const char *path, const struct field *f,
			char *errstr, size_t errstr_size)
{
	for (; f->name; f++) {
		json_t *v = json_object_get(obj, f->name);
		const char *want = NULL;

		switch (f->kind) {
		case STR:
			if (!json_is_string(v) || !json_string_length(v))
				want = "a non-empty string";
			break;
		case INT0:
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				want = "an integer >= 0";
			break;
		case INT1:
			if (!json_is_integer(v) || json_integer_value(v) < 1)
				want = "an integer >= 1";
			break;
		case QTY:
			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > 100)
				want = "an integer from 1 to 100";
			break;
		case CUR: {
			const char *c = json_string_value(v);

			if (!c || strlen(c) != 3 || !isupper((unsigned char)c[0]) ||
			    !isupper((unsigned char)c[1]) || !isupper((unsigned char)c[2]))
				want = "a currency code of three capital letters";
			break;
		}
		case UUID:
			if (!json_is_string(v) || !es_uuid_valid(json_string_value(v)))
				want = "a UUID";
			break;
		case ENUM:
			if (!json_is_string(v) || !one_of(json_string_value(v), f->values))
				want = "one of the contract's values";
			break;
		case ITEMS:
			if (!json_is_array(v) || json_array_size(v) == 0) {
				want = "a non-empty array";
				break;
			}
			for (size_t i = 0; i < json_array_size(v); i++) {
				json_t *item = json_array_get(v, i);
				char sub[128];

				snprintf(sub, sizeof(sub), "%s/%s/%zu", path, f->name, i);
				if (!json_is_object(item)) {
					snprintf(errstr, errstr_size,
						 "%s data: %s must be an object", type, sub);
					return -1;
				}
				if (check_fields(type, item, sub, f->item, errstr, errstr_size))
					return -1;
			}
			break;
		}
		if (want) {
			snprintf(errstr, errstr_size, "%s data: %s/%s must be %s", type, path,
				 f->name, want);
			return -1;
		}
	}
	return 0;
}

int es_event_data_check(const struct es_event *ev, char *errstr, size_t errstr_size)
{
	const struct shape *shape = shape_of(ev->type);
	const char *order_id;

	if (!shape) {
		snprintf(errstr, errstr_size, "unknown event type %s", ev->type);
		return -1;
	}
	if (check_fields(ev->type, ev->data, "", shape->fields, errstr, errstr_size))
		return -1;
	order_id = json_string_value(json_object_get(ev->data, "orderId"));
	if (strcmp(order_id, ev->subject)) {
		snprintf(errstr, errstr_size, "%s data: /orderId differs from the event's subject",
			 ev->type);
		return -1;
	}
	return 0;
}

const char *es_data_str(const struct es_event *ev, const char *field)
{
	return json_string_value(json_object_get(ev->data, field));
}

long long es_data_int(const struct es_event *ev, const char *field)
{
	json_t *v = json_object_get(ev->data, field);

	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}
