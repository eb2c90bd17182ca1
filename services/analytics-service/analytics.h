/*
 * analytics: the CQRS read side of eventshop. Every event of the five topics
 * updates read models in analytics-service's own tables, once per event id
 * (the inbox), in whatever order the topics deliver them:
 *
 *   analytics_orders        one row per order: status, total, cancel reason,
 *                           placed and terminal times (the events' `time`)
 *   analytics_order_items   the lines of each OrderPlaced
 *   analytics_counts        payments, reservations, emails and shipments, counted
 *   analytics_deliveries    when each order's ShipmentDelivered happened
 *
 * Every update is an upsert that gives the same rows whatever the relative
 * order of the events, and a terminal status (CONFIRMED, CANCELLED) never
 * changes again: the first terminal event of an order wins.
 */
#ifndef ANALYTICS_H
#define ANALYTICS_H

#include <stdbool.h>
#include <stddef.h>

#include "es/db.h"
#include "es/dispatch.h"
#include "es/envelope.h"
#include "es/kafka.h"
#include "es/metrics.h"
#include "es/service.h"

#define ANALYTICS_SERVICE "analytics-service"
#define ANALYTICS_HTTP_PORT 8084

/* Generated from migrations/ by es_embed_migrations. */
extern const struct es_migration analytics_migrations[];
extern const size_t analytics_migrations_count;

/* What an event does to the read models. */
enum analytics_effect {
	ANALYTICS_NONE = 0, /* not an event of the contract */
	ANALYTICS_PLACE, /* OrderPlaced: the order row and its lines */
	ANALYTICS_CONFIRM, /* OrderConfirmed: terminal CONFIRMED */
	ANALYTICS_CANCEL, /* OrderCancelled: terminal CANCELLED with reason */
	ANALYTICS_COUNT, /* everything else: one counter + 1 */
};

/*
 * The effect of an event of type `type`. For ANALYTICS_COUNT, *family and
 * *name are set to the counter (static strings, or for EmailSent the
 * template, which points into ev's data): ("payments", "processed"),
 * ("reservations", "released"), ("emails", "order-confirmed") ...
 */
enum analytics_effect analytics_effect_of(const struct es_event *ev, const char **family,
					  const char **name);

/*
 * Everything about an event that can be checked without the database: a
 * known type, data of the contract's shape, a parseable time (written to
 * *time_ms, ms since the epoch). Returns 0, or -1 with reason filled: the
 * event can never succeed and must be dead-lettered.
 */
int analytics_check(const struct es_event *ev, long long *time_ms, char *reason,
		    size_t reason_size);

/* The consumer's state, on the consumer's thread only. */
struct analytics {
	struct es_db *db; /* borrowed: the consumer thread's connection, for the gauge */
	struct es_gauge *orders_gauge; /* es_analytics_orders{status}, or NULL */
	bool orders_changed; /* an orders-topic event committed since the last refresh */
	long long refreshed_ms; /* monotonic time of the last gauge refresh */
};

/*
 * What analytics-service does with events (es/dispatch.h; the app is a
 * struct analytics): REJECT when analytics_check fails; a batch's applied
 * events are written together before its commit, one statement per kind
 * of write (placed orders, their lines, terminal orders, deliveries,
 * counts), with the rows one event at a time would have left.
 */
extern const struct es_handlers analytics_handlers;

/*
 * es_service_tick_fn, arg a struct analytics: refreshes the orders gauge
 * from the database when an order changed, at most once a second. A failed
 * refresh is logged and tried again later; it never stops the daemon.
 */
int analytics_tick(struct es_service *svc, void *arg, char *errstr, size_t errstr_size);

/* Sets es_analytics_orders{status} from the database now. Returns 0 or -1. */
int analytics_refresh_gauge(struct analytics *app, char *errstr, size_t errstr_size);

#endif
