#include "invariants.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "es/catalog.h"
#include "es/envelope.h"
#include "es/events.h"
#include "testkafka.h"

/* One attempt's findings. Violations are kept as text and printed only
 * for the last attempt. */
struct check {
	const struct shop *shop;
	json_t *events; /* orderId -> {type -> {eventId -> data}} */
	json_t *orders; /* orderId -> GET /orders/{id} */
	json_t *problems; /* array of strings */
	struct invariants_report r;
};

static void violation(struct check *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_array_append_new(c->problems, json_string(buf));
}

/* Distinct events of type for order (by CloudEvent id). */
static json_t *events_of(struct check *c, const char *order_id, const char *type)
{
	return json_object_get(json_object_get(c->events, order_id), type);
}

static int count_of(struct check *c, const char *order_id, const char *type)
{
	return (int)json_object_size(events_of(c, order_id, type));
}

/* Reads a topic and files every parseable event by order, type and id:
 * a redelivered message (same id) is filed once. */
static int read_topic(struct check *c, const char *topic)
{
	bool complete;
	struct es_test_batch *b = es_test_kafka_read_all(c->shop->bootstrap, topic, 30000,
							 &complete);

	for (int i = 0; i < b->n; i++) {
		char err[256];
		struct es_event *ev = es_event_parse(b->msg[i]->payload, b->msg[i]->len, err,
						     sizeof(err));
		json_t *by_order, *by_type;

		if (!ev)
			continue; /* injected garbage: the consumers dead-letter it */
		by_order = json_object_get(c->events, ev->subject);
		if (!by_order) {
			by_order = json_object();
			json_object_set_new(c->events, ev->subject, by_order);
		}
		by_type = json_object_get(by_order, ev->type);
		if (!by_type) {
			by_type = json_object();
			json_object_set_new(by_order, ev->type, by_type);
		}
		json_object_set(by_type, ev->id, ev->data);
		es_event_free(ev);
	}
	es_test_kafka_batch_free(b);
	if (!complete)
		violation(c, "could not read all of topic %s in 30 s", topic);
	return complete ? 0 : -1;
}

static void fetch_orders(struct check *c)
{
	const char *order_id;
	json_t *types;
	char url[200];

	json_object_foreach(c->events, order_id, types)
	{
		json_t *o = NULL;

		if (!json_object_get(types, ES_ORDER_PLACED))
			continue;
		snprintf(url, sizeof(url), "http://127.0.0.1:%u/orders/%s",
			 c->shop->port[SHOP_ORDER][0], order_id);
		if (shop_http("GET", url, NULL, NULL, &o) != 200) {
			violation(c, "order %s: GET /orders/{id} failed", order_id);
			json_decref(o);
			continue;
		}
		json_object_set_new(c->orders, order_id, o);
	}
}

/* Invariants 1-3 and 5 for one order. */
static void check_order(struct check *c, const struct es_catalog *cat, const char *id, json_t *o,
			long *sold)
{
	const char *status = json_string_value(json_object_get(o, "status"));
	int processed = count_of(c, id, ES_PAYMENT_PROCESSED);
	int refunded = count_of(c, id, ES_PAYMENT_REFUNDED);
	int reserved = count_of(c, id, ES_INVENTORY_RESERVED);
	int released = count_of(c, id, ES_INVENTORY_RELEASED);
	int created = count_of(c, id, ES_SHIPMENT_CREATED);
	int dispatched = count_of(c, id, ES_SHIPMENT_DISPATCHED);
	int delivered = count_of(c, id, ES_SHIPMENT_DELIVERED);
	json_t *emails = events_of(c, id, ES_EMAIL_SENT);
	struct {
		const char *name;
		int want;
	} templates[] = {
		{"order-received", 1},
		{"order-confirmed", !strcmp(status, "CONFIRMED")},
		{"order-cancelled", !strcmp(status, "CANCELLED")},
		{"refund-issued", refunded > 0},
		{"order-shipped", !strcmp(status, "CONFIRMED")},
	};
	const char *eid;
	json_t *data;

	if (!strcmp(status, "PENDING")) {
		c->r.pending++;
		violation(c, "order %s is still PENDING (invariant 1)", id);
		return;
	}
	if (!strcmp(status, "CONFIRMED")) {
		c->r.confirmed++;
		if (processed != 1 || refunded || reserved != 1 || released)
			violation(
				c,
				"order %s CONFIRMED with %d PaymentProcessed, %d PaymentRefunded, "
				"%d InventoryReserved, %d InventoryReleased (invariant 2)",
				id, processed, refunded, reserved, released);
		if (created != 1 || dispatched != 1 || delivered != 1)
			violation(c,
				  "order %s CONFIRMED with %d ShipmentCreated, %d "
				  "ShipmentDispatched, %d ShipmentDelivered (invariant 8)",
				  id, created, dispatched, delivered);
		else
			c->r.shipped++;
		for (size_t i = 0; i < json_array_size(json_object_get(o, "items")); i++) {
			json_t *it = json_array_get(json_object_get(o, "items"), i);
			const char *sku = json_string_value(json_object_get(it, "sku"));
			const struct es_product *p = es_catalog_find(cat, sku);

			if (p)
				sold[p - cat->products] += (long)json_integer_value(
					json_object_get(it, "quantity"));
		}
	} else {
		c->r.cancelled++;
		if (processed > 1 || processed != refunded || reserved > 1 || reserved != released)
			violation(
				c,
				"order %s CANCELLED with %d PaymentProcessed / %d PaymentRefunded, "
				"%d InventoryReserved / %d InventoryReleased (invariant 3)",
				id, processed, refunded, reserved, released);
		if (dispatched)
			violation(c, "order %s CANCELLED with %d ShipmentDispatched (invariant 8)",
				  id, dispatched);
	}

	/* Invariant 5: each expected (order, template) once, no other. */
	for (size_t t = 0; t < sizeof(templates) / sizeof(templates[0]); t++) {
		int n = 0;
		char path[600];
		struct stat st;

		json_object_foreach(emails, eid, data)
		{
			n += !strcmp(json_string_value(json_object_get(data, "template")),
				     templates[t].name);
		}
		c->r.emails += n;
		if (n != templates[t].want)
			violation(c, "order %s: %d EmailSent for %s, expected %d (invariant 5)", id,
				  n, templates[t].name, templates[t].want);
		snprintf(path, sizeof(path), "%s/new/%s.%s.eml", c->shop->maildir, id,
			 templates[t].name);
		if (templates[t].want && stat(path, &st))
			violation(c, "order %s: no %s in the maildir (invariant 5)", id,
				  templates[t].name);
	}
}

static void check_stock(struct check *c, const struct es_catalog *cat, const long *sold)
{
	char url[160];
	json_t *stock = NULL, *list;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/stock", c->shop->port[SHOP_INVENTORY][0]);
	if (shop_http("GET", url, NULL, NULL, &stock) != 200) {
		violation(c, "GET /stock of inventory-service failed");
		json_decref(stock);
		return;
	}
	list = json_object_get(stock, "stock");
	for (size_t i = 0; i < cat->count; i++) {
		long want = cat->products[i].initial_stock - sold[i];
		long have = -1;

		for (size_t j = 0; j < json_array_size(list); j++) {
			json_t *e = json_array_get(list, j);

			if (!strcmp(json_string_value(json_object_get(e, "sku")),
				    cat->products[i].sku))
				have = (long)json_integer_value(json_object_get(e, "available"));
		}
		if (have != want || have < 0)
			violation(c,
				  "sku %s: stock %ld, expected %ld (initial %ld - %ld confirmed) "
				  "(invariant 4)",
				  cat->products[i].sku, have, want, cat->products[i].initial_stock,
				  sold[i]);
	}
	json_decref(stock);
}

static void check_analytics(struct check *c)
{
	char url[160];
	json_t *stats = NULL, *orders;
	long placed, confirmed, cancelled;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/stats", c->shop->port[SHOP_ANALYTICS][0]);
	if (shop_http("GET", url, NULL, NULL, &stats) != 200) {
		violation(c, "GET /stats of analytics-service failed");
		json_decref(stats);
		return;
	}
	orders = json_object_get(stats, "orders");
	placed = (long)json_integer_value(json_object_get(orders, "placed"));
	confirmed = (long)json_integer_value(json_object_get(orders, "confirmed"));
	cancelled = (long)json_integer_value(json_object_get(orders, "cancelled"));
	if (placed != c->r.orders || confirmed != c->r.confirmed || cancelled != c->r.cancelled)
		violation(c,
			  "analytics counts placed %ld, confirmed %ld, cancelled %ld; the order "
			  "service has %d, %d, %d (invariant 6)",
			  placed, confirmed, cancelled, c->r.orders, c->r.confirmed,
			  c->r.cancelled);
	json_decref(stats);
}

static void count_dead_letters(struct check *c)
{
	for (int s = 0; s < SHOP_NSERVICES; s++) {
		char topic[160];
		bool complete;
		struct es_test_batch *b;

		snprintf(topic, sizeof(topic), "%s.dlq.%s", c->shop->run, shop_names[s]);
		b = es_test_kafka_read_all(c->shop->bootstrap, topic, 10000, &complete);
		c->r.dead_letters += b->n;
		es_test_kafka_batch_free(b);
	}
}

static void attempt(struct check *c, struct es_catalog *cat, char (*accepted)[37], size_t n)
{
	const char *topics[] = {c->shop->topic_orders, c->shop->topic_payments,
				c->shop->topic_inventory, c->shop->topic_notifications,
				c->shop->topic_shipments};
	long *sold = calloc(cat->count, sizeof(long)); /* confirmed quantity per product */
	const char *id;
	json_t *o;

	memset(&c->r, 0, sizeof(c->r));
	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
		read_topic(c, topics[i]);
	fetch_orders(c);
	for (size_t i = 0; i < n; i++) {
		if (!json_object_get(c->orders, accepted[i]))
			violation(c, "order %s got a 202 but is unknown (invariant 1)",
				  accepted[i]);
	}
	json_object_foreach(c->orders, id, o)
	{
		c->r.orders++;
		check_order(c, cat, id, o, sold);
	}
	check_stock(c, cat, sold);
	check_analytics(c);
	free(sold);
}

int shop_check_invariants(const struct shop *shop, char (*accepted)[37], size_t n, int timeout_ms,
			  struct invariants_report *report)
{
	long long deadline = shop_now_ms() + timeout_ms;
	struct check c = {.shop = shop};
	struct es_catalog cat;
	char err[256];

	if (es_catalog_load(&cat, err, sizeof(err))) {
		fprintf(stderr, "invariants: %s\n", err);
		return 1;
	}
	for (;;) {
		c.events = json_object();
		c.orders = json_object();
		c.problems = json_array();
		attempt(&c, &cat, accepted, n);
		if (json_array_size(c.problems) == 0 || shop_now_ms() > deadline)
			break;
		json_decref(c.events);
		json_decref(c.orders);
		json_decref(c.problems);
		nanosleep(&(struct timespec){0, 500 * 1000000L}, NULL);
	}
	count_dead_letters(&c);
	c.r.violations = (int)json_array_size(c.problems);
	for (size_t i = 0; i < json_array_size(c.problems); i++)
		fprintf(stderr, "VIOLATION: %s\n",
			json_string_value(json_array_get(c.problems, i)));
	fprintf(stderr,
		"invariants: %d orders (%d confirmed, %d of them delivered, %d cancelled, %d "
		"pending), %d emails, %d dead letters, %d violation(s)\n",
		c.r.orders, c.r.confirmed, c.r.shipped, c.r.cancelled, c.r.pending, c.r.emails,
		c.r.dead_letters, c.r.violations);
	if (report)
		*report = c.r;
	json_decref(c.events);
	json_decref(c.orders);
	json_decref(c.problems);
	es_catalog_release(&cat);
	return c.r.violations;
}
