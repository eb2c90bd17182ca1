/*
 * shipping-service: ships confirmed orders, event-sourced.
 *
 *   orders topic                          shipments topic (through the outbox)
 *   OrderConfirmed  -> create a shipment -> ShipmentCreated
 *   (SHIPPING_DELAY_MS later, the sweep) -> ShipmentDispatched
 *   (SHIPPING_DELAY_MS later, the sweep) -> ShipmentDelivered
 *   OrderCancelled  -> stop it if not yet dispatched -> ShipmentCancelled
 *
 * Event sourcing, in three parts a reader can hold at once:
 *
 *   shipment.c  the domain, pure: the fold (what an event does to the
 *               state) and the decisions (which event, if any, a state
 *               and a command call for). No I/O: unit-tested.
 *   stream.c    the event store: a shipment's stream is its rows of
 *               shipment_events, one version each; loading folds them (a
 *               batch's streams in one query), appending makes version + 1
 *               and puts the very same event in the outbox, and a batch's
 *               appends are written with one statement, in the caller's
 *               transaction.
 *   handler.c   the consumer's effects and the sweep: load, decide,
 *               append. Nothing else.
 *
 * Nobody else was changed to add this service: it reads OrderConfirmed
 * and OrderCancelled, which order-service already published, and its own
 * events are read by email-service and analytics-service.
 */
#ifndef SHIPPING_H
#define SHIPPING_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "es/db.h"
#include "es/dispatch.h"
#include "es/envelope.h"
#include "es/http.h"
#include "es/metrics.h"
#include "es/service.h"

#define SHIPPING_SERVICE "shipping-service"

/* Embedded migrations (generated from migrations/ at build time). */
extern const struct es_migration shipping_migrations[];
extern const size_t shipping_migrations_count;

/* --------------------------------------------------------------- shipment */

enum shipment_status {
	SHIPMENT_NONE = 0, /* no stream: the order has no shipment */
	SHIPMENT_CREATED,
	SHIPMENT_DISPATCHED,
	SHIPMENT_DELIVERED, /* terminal */
	SHIPMENT_CANCELLED, /* terminal */
};

/* A shipment's state: nothing but the fold of its stream. */
struct shipment {
	enum shipment_status status;
	int version; /* of the last event folded; 0 with no stream */
	char shipment_id[ES_UUID_LEN + 1];
	char carrier[8];
	char tracking_number[40];
	char cancel_reason[24];
};

/* The state before any event: SHIPMENT_NONE, version 0. */
void shipment_init(struct shipment *s);

/*
 * The fold's step: what the event of `type` with `data` (borrowed) makes
 * of s. An event that cannot follow s (a ShipmentDelivered before its
 * ShipmentDispatched, anything after a terminal event, a field missing)
 * means the stream is not one this code wrote: -1 with errstr filled, s
 * unchanged. Returns 0 otherwise, with s->version one more.
 */
int shipment_apply(struct shipment *s, const char *type, const json_t *data, char *errstr,
		   size_t errstr_size);

/*
 * Folds a whole stream: events is a JSON array of CloudEvent objects
 * (borrowed), version 1 first. Returns 0, or -1 with errstr naming the
 * version that did not fold.
 */
int shipment_fold(struct shipment *s, const json_t *events, char *errstr, size_t errstr_size);

/* "CREATED", "DISPATCHED", ...; NULL for SHIPMENT_NONE. */
const char *shipment_status_name(enum shipment_status status);

/* The simulated carrier and tracking number of an order, derived from its
 * id so that a retried decision makes the same ones. tracking holds at
 * least 15 bytes ("ES" + 12 characters + NUL). */
const char *shipment_carrier_for(const char *order_id);
void shipment_tracking_number_for(const char *order_id, char *tracking, size_t size);

/*
 * The decisions: from a state and what happened, the event to append, as
 * its type (the return) and its data (*data, a new reference the caller
 * owns), or NULL when nothing is to be done, with *why saying why (a
 * static string for the log). No I/O, no clock: every branch is a unit
 * test.
 *
 *   OrderConfirmed  NONE -> ShipmentCreated (new_shipment_id, carrier and
 *                   tracking number from the order id); otherwise nothing
 *                   (a redelivered or repeated OrderConfirmed).
 *   OrderCancelled  CREATED -> ShipmentCancelled (reason); otherwise
 *                   nothing: no shipment, or already on its way.
 *   progress        CREATED -> ShipmentDispatched, DISPATCHED ->
 *                   ShipmentDelivered; otherwise nothing.
 */
const char *shipment_decide_confirmed(const struct shipment *s, const char *order_id,
				      const char *new_shipment_id, json_t **data, const char **why);
const char *shipment_decide_cancelled(const struct shipment *s, const char *order_id,
				      const char *reason, json_t **data, const char **why);
const char *shipment_decide_progress(const struct shipment *s, const char *order_id, json_t **data,
				     const char **why);

/*
 * GET /shipments/{orderId}'s body: the state s and the stream it was
 * folded from (events, borrowed), each entry {version, id, type, time,
 * data}. Returns a new reference, or NULL when out of memory.
 */
json_t *shipment_to_json(const struct shipment *s, const char *order_id, const json_t *events);

/* ----------------------------------------------------------------- stream */

/* One shipment's stream, read and folded. */
struct shipping_stream {
	char *order_id; /* owned */
	struct shipment s; /* the fold, and what was appended to it since */
	json_t *events; /* the stream as read, version 1 first (owned) */
	char error[256]; /* why the stream does not fold; "" when it does */
};

/* The streams of a batch of orders, one per order. */
struct shipping_streams {
	struct shipping_stream *v;
	size_t n;
};

/*
 * Reads the streams of order_ids[0..n) (an id may repeat: one stream for
 * it) with one query, version 1 first, and folds each into its s (an
 * order with no stream: version 0). A stream that does not fold gets its
 * error filled; the others are not held up. Returns 0, or -1 with errstr
 * filled (nothing to release then). Free with shipping_streams_release.
 */
int shipping_streams_load(struct es_db *db, struct shipping_streams *st,
			  const char *const *order_ids, size_t n, char *errstr, size_t errstr_size);
void shipping_streams_release(struct shipping_streams *st);

/* order_id's stream in st, or NULL. */
struct shipping_stream *shipping_streams_find(struct shipping_streams *st, const char *order_id);

/*
 * One order's stream (shipping_streams_load of one): folded into s; when
 * events is not NULL, *events is set to the stream as a JSON array of
 * CloudEvent objects (a new reference the caller owns). Returns 0 (also
 * for an order with no stream: s->version 0), or -1 with errstr filled
 * (also for a stream that does not fold).
 */
int shipping_stream_load(struct es_db *db, const char *order_id, struct shipment *s,
			 json_t **events, char *errstr, size_t errstr_size);

/*
 * Appends an event of `type` with `data` (stolen, even on failure) to
 * stream, caused by `cause`, in memory: the fold checks it, the event is
 * put in the outbox for topic (es_effect_put: into fx's batch, or at once
 * with fx->outbox NULL), stream->s becomes the new state, and *row is set
 * to what shipping_stream_write needs of it (a new reference the caller
 * owns). Returns OK, REJECT (reason in fx->reason) when the fold refuses
 * the event, or RETRY; on failure stream is unchanged and *row NULL.
 */
enum es_handler_result shipping_stream_append(struct es_effect *fx, struct shipping_stream *stream,
					      const char *topic, const char *type, json_t *data,
					      const struct es_event *cause, json_t **row);

/*
 * Writes rows (shipping_stream_append's, borrowed; an order's in version
 * order) in the caller's transaction, with one statement: the events at
 * their versions in shipment_events, and each order's next due step in
 * shipment_due from its last event (delay_ms from now while the shipment
 * is on its way, none once it ended). A concurrent append of a version
 * written here is a unique violation (es_db_error_is_unique_violation):
 * the caller rolls back, and its retry folds the longer stream. Returns
 * 0, or -1 with errstr filled.
 */
int shipping_stream_write(struct es_db *db, const json_t *rows, long delay_ms, char *errstr,
			  size_t errstr_size);

/* ---------------------------------------------------------------- handler */

/* What a committed effect or sweep step appended, for es_shipments_total. */
enum shipping_outcome {
	SHIPPING_OUTCOME_NONE = 0,
	SHIPPING_OUTCOME_CREATED,
	SHIPPING_OUTCOME_DISPATCHED,
	SHIPPING_OUTCOME_DELIVERED,
	SHIPPING_OUTCOME_CANCELLED,
};

/*
 * The consumer's state. shipments_topic is where produced events go (not
 * owned, must outlive the app); delay_ms the simulated time from one step
 * of a shipment to the next; counter may be NULL (no metrics).
 */
struct shipping_app {
	const char *shipments_topic;
	long delay_ms;
	struct es_counter *counter;
	long long last_sweep_ms; /* monotonic */
	struct shipping_streams streams; /* the batch in hand's (handler.c) */
};

/* Fills app; counter starts NULL (see shipping_metrics_register). */
void shipping_app_init(struct shipping_app *app, const char *shipments_topic, long delay_ms);
/* Frees what the last batch left. */
void shipping_app_release(struct shipping_app *app);

/*
 * Registers es_shipments_total{event} (created, dispatched, delivered,
 * cancelled) in reg, every child at 0, and points app->counter at it.
 * Returns 0, or -1 with errstr filled.
 */
int shipping_metrics_register(struct shipping_app *app, struct es_metrics *reg, char *errstr,
			      size_t errstr_size);

/*
 * What shipping-service does with events (es/dispatch.h; the app is a
 * struct shipping_app): OrderConfirmed creates the shipment, OrderCancelled
 * stops one not yet dispatched. Other known types need nothing.
 */
extern const struct es_handlers shipping_handlers;

/*
 * The simulated carrier (es_service_tick_fn; arg is the struct
 * shipping_app): at most every 100 ms, takes the next step of each
 * shipment whose step is due (shipment_due), one transaction per sweep.
 * What the step is comes from the stream, never from the to-do row, so a
 * sweep killed at any instant is simply run again. Never stops the daemon.
 */
int shipping_sweep(struct es_service *svc, void *arg, char *errstr, size_t errstr_size);

/* One sweep on db, whatever the time since the last; the number of steps
 * taken, or -1 with errstr filled. For tests. */
int shipping_sweep_once(struct shipping_app *app, struct es_db *db, char *errstr,
			size_t errstr_size);

/* -------------------------------------------------------------------- api */

/* Adds GET /shipments/{orderId} to http, an operator's route (with
 * AUTH_JWT_KEY_FILE set, it needs an operator's token), whose requests
 * reach the database through es_http_db. Returns 0, or -1 with errstr
 * filled. */
int shipping_api_routes(struct es_http *http, char *errstr, size_t errstr_size);

#endif
