/*
 * fixture: what order-service's integration tests stand on: the order app
 * on a schema of its own (migrated, the catalog seeded, as the daemon sets
 * it up), its front door served on a free port of 127.0.0.1, orders placed
 * through it, the outcomes payment-service and inventory-service send
 * back, and readers for what the saga left in the database. Every function
 * fails the test (Check assertions) rather than return an error.
 */
#ifndef ORDER_TEST_FIXTURE_H
#define ORDER_TEST_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "es/db.h"
#include "es/dbpool.h"
#include "es/envelope.h"
#include "es/http.h"
#include "es/metrics.h"
#include "es/service.h"
#include "order.h"

/* The trace context POST /orders is given; every event of the saga must
 * carry it unchanged. */
#define SHOP_TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

struct shop {
	char schema[64];
	struct es_db *db; /* the consumer's connection: the saga's */
	struct es_dbpool *pool; /* the front door's */
	struct es_service svc; /* what the app uses of it: db, metrics, topics */
	struct order_app app;
	struct es_http *http;
	unsigned short port;
	struct es_dispatch dispatch; /* order_saga_handlers on db, as the daemon's */
};

/* Sets the shop up on a new schema of conninfo's database, its front door
 * listening. */
void shop_open(struct shop *s, const char *conninfo);
void shop_close(struct shop *s);

/*
 * Places an order through POST /orders (with SHOP_TRACEPARENT): items is
 * a JSON array text of {sku, quantity}. Returns its OrderPlaced as stored
 * in the outbox (free with es_event_free).
 */
struct es_event *shop_place(struct shop *s, const char *items, const char *token);

/* Sends a request to the front door; returns the HTTP status, and the
 * body as JSON in *body (NULL when not JSON; the caller's reference). */
int shop_http(struct shop *s, const char *method, const char *path, const char *body_text,
	      json_t **body);

/*
 * The outcomes as the other services make them, continuing the saga of
 * their cause: payment's and inventory's answers to an OrderPlaced, their
 * compensations of an OrderCancelled. Each is checked against the
 * contract. Free with es_event_free.
 */
struct es_event *payment_processed(const struct es_event *placed);
struct es_event *payment_failed(const struct es_event *placed, const char *reason);
struct es_event *inventory_reserved(const struct es_event *placed);
/* Every line short by one unit: available = quantity - 1. */
struct es_event *inventory_rejected(const struct es_event *placed);
struct es_event *payment_refunded(const struct es_event *cancelled, const struct es_event *charge);
struct es_event *inventory_released(const struct es_event *cancelled,
				    const struct es_event *reservation);

/* Runs ev through the saga's dispatch path as a batch of one, as the
 * consumer loop would; returns the result, reason filled on REJECT. */
enum es_handler_result shop_deliver(struct shop *s, const struct es_event *ev, char *reason,
				    size_t reason_size);

/* shop_deliver, which must answer OK. */
void shop_deliver_ok(struct shop *s, const struct es_event *ev);

/* Runs evs[0..n) through the dispatch path as one batch (the batch must
 * not be retried); results[i] is item i's answer. */
void shop_deliver_batch(struct shop *s, const struct es_event *const *evs, size_t n,
			enum es_handler_result *results);

/* The order's row: column (status, cancel_reason, payment_id, ...) as
 * text in buf, "" for NULL. */
const char *shop_order(struct shop *s, const char *order_id, const char *column, char *buf,
		       size_t size);

/*
 * The events the saga wrote to its outbox for the order (OrderPlaced, the
 * front door's, left out), oldest first, up to max; each checked to be on
 * the orders topic, keyed by its order, from order-service and of the
 * contract's shape. Free with shop_events_free.
 */
int shop_outbox(struct shop *s, const char *order_id, struct es_event **out, int max);
void shop_events_free(struct es_event **evs, int n);

/* Rows of the order's timeline, of type (NULL: all). */
long shop_timeline(struct shop *s, const char *order_id, const char *type);

/* Events the saga's inbox has recorded. */
long shop_inbox(struct shop *s);

/* Asserts that ev continues cause's saga: caused by it, the order's
 * correlation id, the trace context of the order's request. */
void assert_caused_by(const struct es_event *ev, const struct es_event *cause);

/* true when the app's rendered metrics contain line. */
bool shop_metrics_have(struct shop *s, const char *line);

#endif
