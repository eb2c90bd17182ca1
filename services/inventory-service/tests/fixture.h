/*
 * it_fixture: what the inventory integration tests share: a schema of their
 * own, migrated and seeded, and the order events the service consumes.
 * Failures end the test (Check assertions).
 */
#ifndef INVENTORY_IT_FIXTURE_H
#define INVENTORY_IT_FIXTURE_H

#include "es/db.h"
#include "es/envelope.h"
#include "es/metrics.h"
#include "inventory.h"

#define IT_TOPIC "inventory"

/* mug-classic 10, poster-limited 5, tshirt-kafka 1000 */
#define IT_CATALOG                                                                                 \
	"{\"currency\":\"EUR\",\"products\":["                                                     \
	"{\"sku\":\"mug-classic\",\"name\":\"Mug\",\"priceCents\":1299,\"initialStock\":10},"      \
	"{\"sku\":\"poster-limited\",\"name\":\"Poster\",\"priceCents\":1999,\"initialStock\":5}," \
	"{\"sku\":\"tshirt-kafka\",\"name\":\"Shirt\",\"priceCents\":2499,\"initialStock\":1000}]" \
	"}"

struct it_fixture {
	char schema[64];
	struct es_db *db;
	struct es_metrics *metrics;
	struct inventory inv;
};

/* A new schema on conninfo with the service's migrations applied and the
 * stock of catalog (JSON) seeded; inv produces to IT_TOPIC. */
void it_fixture_setup(struct it_fixture *f, const char *conninfo, const char *catalog);
void it_fixture_teardown(struct it_fixture *f);

/* Another connection to the same schema (for threads). */
struct es_db *it_connect(const char *conninfo, const char *schema);

/* Events as order-service makes them; items is a JSON array text of
 * {sku, quantity}. Free with es_event_free. */
struct es_event *it_placed(const char *order_id, const char *items);
struct es_event *it_cancelled(const char *order_id, const char *reason);
struct es_event *it_confirmed(const char *order_id, const char *reservation_id);

/* A fresh order id (a UUID). */
void it_order_id(char out[ES_UUID_LEN + 1]);

long long it_stock(struct es_db *db, const char *sku);

/* The single number a query with at most one parameter returns. */
long long it_number(struct es_db *db, const char *sql, const char *param);

#endif
