/*
 * inventory: the inventory-service's domain, as a library the daemon
 * (main.c) and the tests link.
 *
 *   lines.c         an order's lines: merged per sku, sorted (pure)
 *   stock.c         the stock table: seed, all-or-none reserve, give back
 *   reservations.c  what was decided per order: reservation, rejection,
 *                   cancellation, one order at a time (the lesson
 *                   lessons/sync-vs-events calls these)
 *   batch.c         a batch's copy of its orders' rows and its skus'
 *                   stock: read once, written back once per kind of row
 *   handler.c       the effects of OrderPlaced, OrderCancelled,
 *                   OrderConfirmed, each applied once (inbox) with its
 *                   event written to the outbox in the same transaction
 *   routes.c        GET /stock and GET /reservations/{orderId}
 *
 * Concurrency: several instances (one consumer group) may handle different
 * orders at the same time. A batch locks its orders (transaction-scoped
 * advisory locks on the order ids, sorted), then the stock rows of its skus
 * (FOR UPDATE, in sku order), so the events of one order apply one batch at
 * a time, no sku is oversold and two batches cannot deadlock.
 */
#ifndef INVENTORY_H
#define INVENTORY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "es/catalog.h"
#include "es/db.h"
#include "es/dispatch.h"
#include "es/envelope.h"
#include "es/http.h"
#include "es/kafka.h"
#include "es/metrics.h"

#define INVENTORY_SERVICE "inventory-service"

/* Lines per order we accept; the front door allows 50. More can never be
 * reserved sensibly and would only hold many row locks. */
#define INVENTORY_MAX_LINES 1000

/* Generated from migrations/ by es_embed_migrations. */
extern const struct es_migration inventory_migrations[];
extern const size_t inventory_migrations_count;

/* ------------------------------------------------------------------------ */
/* lines.c                                                                  */
/* ------------------------------------------------------------------------ */

/* One order line. */
struct inventory_line {
	const char *sku; /* borrowed from the JSON the lines were parsed from */
	long long quantity; /* >= 1 */
	long long available; /* on rejection: the sku's stock now (0: unknown) */
};

/*
 * Reads an items array ([{sku, quantity, ...}], other fields ignored) into
 * a new array of lines, one per sku (quantities of repeated skus added up,
 * saturating rather than overflowing), sorted by sku in byte order: the
 * order every transaction takes its row locks in. The skus point into
 * items, which must outlive the lines. Returns 0 with *lines (free()) and
 * *n set, or -1 with errstr saying what is wrong (not an array, empty,
 * more than INVENTORY_MAX_LINES, a bad sku or quantity).
 */
int inventory_lines_parse(json_t *items, struct inventory_line **lines, size_t *n, char *errstr,
			  size_t errstr_size);

/* [{sku, quantity}] for InventoryReserved/Released and the reservations
 * table. Returns a new reference, or NULL when out of memory. */
json_t *inventory_lines_reserved_json(const struct inventory_line *lines, size_t n);

/* [{sku, requested, available}] for InventoryRejected. Returns a new
 * reference, or NULL when out of memory. */
json_t *inventory_lines_rejected_json(const struct inventory_line *lines, size_t n);

/* ------------------------------------------------------------------------ */
/* stock.c                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Inserts each catalog product with its initial stock unless the sku is
 * already there: a restart never resets stock. Returns the number of skus
 * added, or -1 with errstr filled.
 */
int inventory_stock_seed(struct es_db *db, const struct es_catalog *cat, char *errstr,
			 size_t errstr_size);

/*
 * Takes every line's quantity from stock, or nothing. Call inside a
 * transaction with lines sorted by sku (inventory_lines_parse). Returns 1
 * when all were taken; 0 when some line was short (or its sku unknown):
 * then no stock was changed and each line's available holds the sku's
 * stock now; -1 on a database error (errstr filled, db->sqlstate set).
 */
int inventory_stock_reserve(struct es_db *db, struct inventory_line *lines, size_t n, char *errstr,
			    size_t errstr_size);

/* Gives every line's quantity back (in sku order). Call inside a
 * transaction. Returns 0, or -1 with errstr filled. */
int inventory_stock_give_back(struct es_db *db, const struct inventory_line *lines, size_t n,
			      char *errstr, size_t errstr_size);

/* {"stock": [{sku, available}]} sorted by sku. Returns a new reference, or
 * NULL with errstr filled. */
json_t *inventory_stock_list(struct es_db *db, char *errstr, size_t errstr_size);

/* ------------------------------------------------------------------------ */
/* reservations.c                                                           */
/* ------------------------------------------------------------------------ */

/* The lock space of inventory-service's order locks (es_db_lock_keys). */
#define INVENTORY_LOCK_SPACE "inventory-service:order"

/* Waits for, then holds until the end of the transaction, the lock that
 * makes one order's events apply one at a time. Returns 0 or -1. */
int inventory_order_lock(struct es_db *db, const char *order_id, char *errstr, size_t errstr_size);

/* What is known of an order before its OrderPlaced is applied. */
enum inventory_order_state {
	INVENTORY_ORDER_NEW = 0, /* nothing: decide now */
	INVENTORY_ORDER_DECIDED, /* reserved or rejected already */
	INVENTORY_ORDER_CANCELLED, /* cancelled before it was placed */
	INVENTORY_ORDER_ERROR = -1,
};

enum inventory_order_state inventory_order_state(struct es_db *db, const char *order_id,
						 char *errstr, size_t errstr_size);

/* Records a reservation (status RESERVED) with its items JSON. A second one
 * for the order fails with a unique violation. Returns 0 or -1. */
int inventory_reservation_insert(struct es_db *db, const char *order_id, const char *reservation_id,
				 json_t *items, char *errstr, size_t errstr_size);

/* Records a rejection with the items sent. Returns 0 or -1. */
int inventory_rejection_insert(struct es_db *db, const char *order_id, json_t *items, char *errstr,
			       size_t errstr_size);

/* Remembers the cancellation (once; a repeat is a no-op). Returns 0 or -1. */
int inventory_cancellation_insert(struct es_db *db, const char *order_id, const char *reason,
				  char *errstr, size_t errstr_size);

/*
 * Turns the order's RESERVED reservation into RELEASED. Returns 1 with its
 * id copied into reservation_id and its items in *items (a new reference),
 * 0 when the order has no RESERVED reservation, -1 on error.
 */
int inventory_reservation_give_back(struct es_db *db, const char *order_id,
				    char reservation_id[ES_UUID_LEN + 1], json_t **items,
				    char *errstr, size_t errstr_size);

/*
 * The order's reservation as {orderId, reservationId, status, items}.
 * Returns 1 with *out set (a new reference), 0 when there is none, -1 on
 * error (errstr filled).
 */
int inventory_reservation_get(struct es_db *db, const char *order_id, json_t **out, char *errstr,
			      size_t errstr_size);

/* ------------------------------------------------------------------------ */
/* batch.c                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * A batch's copy of the rows its effects read and change (see batch.c).
 * JSON objects whose keys are the columns json_to_recordset reads back:
 *   orders: order id -> {order_id; reservation_id, status, items (its
 *           reservation, if any); rejected, cancelled (true when there is
 *           such a row); new (the reservation is this batch's), changed
 *           (its status is)}
 *   stock:  sku -> {sku, available, delta (what the batch took, < 0, and
 *           gave back, > 0), found (the row exists, locked)}
 * and the rows to write: reserved and changed (orders), rejected
 * ({order_id, items}), cancelled ({order_id, reason}). All NULL between
 * batches.
 */
struct inventory_batch {
	json_t *orders;
	json_t *stock;
	json_t *reserved, *changed, *rejected, *cancelled;
};

/* Empties b for a new batch (what a failed one left goes). Returns 0, or
 * -1 when out of memory (errstr filled). */
int inventory_batch_start(struct inventory_batch *b, char *errstr, size_t errstr_size);

/* Frees what b holds; b is empty afterwards. */
void inventory_batch_release(struct inventory_batch *b);

/* Adds an order to read, or a sku whose stock to read, once each. 0, or
 * -1 when out of memory. */
int inventory_batch_add_order(struct inventory_batch *b, const char *order_id);
int inventory_batch_want_sku(struct inventory_batch *b, const char *sku);

/* In the batch's transaction, under the orders' locks: what is known of
 * the orders added, with one statement. Returns 0, or -1 with errstr. */
int inventory_batch_read_orders(struct es_db *db, struct inventory_batch *b, char *errstr,
				size_t errstr_size);

/* In the batch's transaction: locks (FOR UPDATE, in sku order) and reads
 * the stock of the skus wanted, with one statement. A sku without a row
 * has 0 available. Returns 0, or -1 with errstr. */
int inventory_batch_read_stock(struct es_db *db, struct inventory_batch *b, char *errstr,
			       size_t errstr_size);

/* The batch's copy of an order (NULL: not added), and the stock of a sku
 * now, in the batch's copy (0 for a sku it does not know). */
json_t *inventory_batch_order(struct inventory_batch *b, const char *order_id);
long long inventory_batch_available(struct inventory_batch *b, const char *sku);

/*
 * What an effect changes, once all else it does succeeded. Each returns 0,
 * or -1 when out of memory (the batch is then tried again, from a new
 * copy):
 *   stock_add:  quantity (< 0 takes, > 0 gives back) to a sku's stock;
 *   reserve:    the order's new RESERVED reservation with its items
 *               (borrowed, referenced);
 *   set_status: its reservation's status (RELEASED, COMMITTED);
 *   reject:     the order's rejection with the items sent (borrowed);
 *   cancel:     the order's cancellation, unless it has one.
 */
int inventory_batch_stock_add(struct inventory_batch *b, const char *sku, long long quantity);
int inventory_batch_reserve(struct inventory_batch *b, json_t *order, const char *reservation_id,
			    json_t *items);
int inventory_batch_set_status(struct inventory_batch *b, json_t *order, const char *status);
int inventory_batch_reject(struct inventory_batch *b, json_t *order, json_t *items);
int inventory_batch_cancel(struct inventory_batch *b, json_t *order, const char *reason);

/* Before the commit: writes what the effects changed, one statement per
 * kind of row, then empties b. Returns 0, or -1 with errstr. */
int inventory_batch_write(struct es_db *db, struct inventory_batch *b, char *errstr,
			  size_t errstr_size);

/* ------------------------------------------------------------------------ */
/* handler.c                                                                */
/* ------------------------------------------------------------------------ */

struct inventory {
	const char *topic; /* where our events go (borrowed) */
	struct es_counter *reservations; /* es_inventory_reservations_total{outcome} */
	struct inventory_batch batch; /* the batch in hand */
};

/*
 * Prepares inv to produce to topic (borrowed, must outlive inv) and
 * registers es_inventory_reservations_total{outcome} (reserved, rejected,
 * released) in metrics. Returns 0, or -1 with errstr filled.
 */
int inventory_init(struct inventory *inv, const char *topic, struct es_metrics *metrics,
		   char *errstr, size_t errstr_size);

/* Frees what inv holds of a batch (nothing once a batch has committed). */
void inventory_release(struct inventory *inv);

/*
 * What inventory-service does with events (es/dispatch.h; the app is a
 * struct inventory): OrderPlaced, OrderCancelled and OrderConfirmed are
 * applied once per event id (inbox) and per order, with the events they
 * produce put in the outbox in the same transaction; an OrderPlaced whose
 * lines make no sense is REJECTed; other services' events need nothing.
 * Several instances may apply events at once, each with its own db.
 */
extern const struct es_handlers inventory_handlers;

/* ------------------------------------------------------------------------ */
/* routes.c                                                                 */
/* ------------------------------------------------------------------------ */

/* Adds GET /stock and GET /reservations/{orderId} to http (before it
 * starts); their requests reach the database through es_http_db. Returns
 * 0, or -1 with errstr. */
int inventory_routes(struct es_http *http, char *errstr, size_t errstr_size);

#endif
