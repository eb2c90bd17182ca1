/*
 * order-service: the REST front door and the saga's decision maker.
 *
 * POST /orders stores the order and its OrderPlaced (outbox) in one
 * transaction. The service then listens to the payments and inventory
 * topics and confirms the order once both succeeded, or cancels it on the
 * first failure, on the customer's request, or when the saga times out. A
 * terminal order never changes again.
 */
#ifndef ORDER_H
#define ORDER_H

#include <stdbool.h>
#include <stddef.h>

#include "es/catalog.h"
#include "es/db.h"
#include "es/dispatch.h"
#include "es/envelope.h"
#include "es/http.h"
#include "es/kafka.h"
#include "es/service.h"

#define ORDER_SERVICE "order-service"
#define ORDER_MAX_LINES 50
#define ORDER_MAX_QUANTITY 100
#define ORDER_ID_MAX 128 /* customerId */
#define ORDER_EMAIL_MAX 254
#define ORDER_TOKEN_MAX 64

extern const struct es_migration order_migrations[];
extern const size_t order_migrations_count;

struct order_app {
	struct es_service *svc;
	struct es_catalog catalog;
	long saga_timeout_ms;
	struct es_histogram *saga_seconds; /* es_saga_duration_seconds{outcome} */
	long long last_sweep_ms;
	struct saga_batch *batch; /* the orders of the batch in hand (saga.c) */
};

/* Sets up what the app needs beyond the service frame: SAGA_TIMEOUT_MS,
 * the catalog (seeded into products) and the saga's metric. */
int order_app_init(struct order_app *app, struct es_service *svc, char *errstr, size_t errstr_size);
void order_app_release(struct order_app *app);

/* ------------------------------------------------------------ validate.c */

struct order_line {
	char sku[ES_SKU_MAX];
	int quantity;
	long unit_price_cents;
};

struct order_request {
	char customer_id[ORDER_ID_MAX + 1];
	char customer_email[ORDER_EMAIL_MAX + 1];
	char payment_token[ORDER_TOKEN_MAX + 1];
	struct order_line lines[ORDER_MAX_LINES];
	size_t nlines;
	long total_cents;
	char *canonical; /* the body as sorted compact JSON, for Idempotency-Key; owned */
};

/*
 * Parses and validates a POST /orders body against the catalog. Returns 0,
 * or the HTTP status to answer (400 for malformed JSON or wrong types, 422
 * for semantic errors) with detail filled and *errors set to a new array of
 * {pointer, detail} (caller owns it). Prices come from the catalog, never
 * from the client.
 */
unsigned order_request_parse(struct order_request *req, const char *body, size_t len,
			     const struct es_catalog *cat, json_t **errors, char *detail,
			     size_t detail_size);
void order_request_release(struct order_request *req);

bool order_email_valid(const char *s);
bool order_token_valid(const char *s);

/* ---------------------------------------------------------------- saga.c */

enum saga_action {
	SAGA_NOTHING = 0, /* record the event, change nothing */
	SAGA_REMEMBER, /* a success: remember it, wait for the other one */
	SAGA_CONFIRM, /* both succeeded: CONFIRMED, OrderConfirmed */
	SAGA_CANCEL, /* a failure: CANCELLED, OrderCancelled */
};

/*
 * The saga's rule for one incoming event, as a pure function: status is
 * the order's current status, paid / reserved what was heard before. On
 * SAGA_CANCEL *reason is the contract's cancel reason.
 */
enum saga_action order_saga_decide(const char *status, bool paid, bool reserved,
				   const char *event_type, const char **reason);

/* What order-service does with the payments and inventory
 * topics' events (es/dispatch.h; the app is a struct order_app): each outcome is
 * recorded in the order's timeline and moves its saga (order_saga_decide). */
extern const struct es_handlers order_saga_handlers;

/* Frees what the last batch loaded; order_app_release calls it. */
void order_saga_batch_clear(struct order_app *app);

/* Cancels PENDING orders whose saga deadline passed (TIMEOUT); called from
 * the consumer loop's tick. */
int order_saga_sweep(struct es_service *svc, void *arg, char *errstr, size_t errstr_size);

/*
 * Moves order_id from PENDING to CANCELLED with reason (and detail) and
 * writes OrderCancelled (order_emit), inside the caller's transaction,
 * outside a dispatch (the timeout sweep, a customer's DELETE). Returns 1
 * when cancelled (*saga_seconds: the order's age), 0 when the order was
 * not PENDING (or does not exist), -1 on error.
 */
int order_cancel_in_tx(struct order_app *app, struct es_db *db, const char *order_id,
		       const char *reason, const char *detail, double *saga_seconds, char *errstr,
		       size_t errstr_size);

/*
 * Stores ev in the outbox for topic and in the order's timeline. Outside a
 * dispatch (fx NULL) both rows are inserted at once. In a saga step (fx,
 * whose transaction db is), ev joins the batch's outbox rows and fx->state
 * keeps its timeline row: the batch inserts the rows of the events its
 * applied effects emitted with one statement before the commit.
 */
int order_emit(struct es_db *db, struct es_effect *fx, const char *topic, const struct es_event *ev,
	       char *errstr, size_t errstr_size);

/* ev's row in its order's timeline, as ORDER_TIMELINE_INSERT_FROM reads it
 * (NULL when out of memory). */
json_t *order_timeline_row(const struct es_event *ev);

/* The INSERT of a JSON array of order_timeline_row's rows, read from the
 * statement's parameter param ("$1"), in their order (the timeline's seq
 * orders events of the same time); a repeated event id is ignored. */
#define ORDER_TIMELINE_INSERT_FROM(param)                                             \
	"INSERT INTO timeline (order_id, event_id, type, source, time)"               \
	" SELECT r.order_id, r.event_id, r.type, r.source, r.time"                    \
	" FROM json_to_recordset(" param "::json) AS r(order_id uuid, event_id uuid," \
	" type text, source text, time timestamptz)"                                  \
	" ON CONFLICT (event_id) DO NOTHING"

/* Observes the saga's duration for an order that just became terminal. */
void order_saga_observe(struct order_app *app, const char *outcome, double seconds);

/* ----------------------------------------------------------------- api.c */

/* Adds the front door's routes (GET /products, POST /orders, GET /orders,
 * GET /orders/{id}, POST /orders/{id}/cancel) to http; their requests
 * reach the database through es_http_db. Returns 0, or -1 with errstr. */
int order_api_routes(struct order_app *app, struct es_http *http, char *errstr, size_t errstr_size);

#endif
