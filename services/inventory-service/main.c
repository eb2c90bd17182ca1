/*
 * inventory-service: keeps stock and reserves it for orders.
 *
 * It consumes the orders topic: OrderPlaced reserves every line or none
 * (InventoryReserved / InventoryRejected), OrderCancelled gives a
 * reservation back (InventoryReleased), OrderConfirmed makes it final. Its
 * events reach the inventory topic through its outbox. HTTP: GET /stock,
 * GET /reservations/{orderId}, and the /livez, /readyz, /metrics of every
 * daemon.
 */
#include <stdio.h>

#include "es/catalog.h"
#include "es/log.h"
#include "es/service.h"
#include "inventory.h"

#define INVENTORY_HTTP_PORT 8082

/* Stock starts from the catalog; skus already there keep what they have. */
static int seed(struct es_db *db, char *errstr, size_t errstr_size)
{
	struct es_catalog cat;
	int added;

	if (es_catalog_load(&cat, errstr, errstr_size))
		return -1;
	added = inventory_stock_seed(db, &cat, errstr, errstr_size);
	if (added >= 0)
		es_info("stock seeded: %d of %zu catalog skus added", added, cat.count);
	es_catalog_release(&cat);
	return added < 0 ? -1 : 0;
}

int main(void)
{
	const struct es_service_spec spec = {
		.name = INVENTORY_SERVICE,
		.http_port = INVENTORY_HTTP_PORT,
		.migrations = inventory_migrations,
		.nmigrations = inventory_migrations_count,
		.relay = true,
	};
	struct es_service svc;
	struct inventory inv = {0};
	char errstr[512];
	int rc = 1;

	if (es_service_init(&svc, &spec, errstr, sizeof(errstr))) {
		es_error("cannot start: %s", errstr);
		return 1;
	}
	if (seed(svc.db, errstr, sizeof(errstr)) ||
	    inventory_init(&inv, svc.topics.inventory, svc.metrics, errstr, sizeof(errstr)) ||
	    inventory_routes(svc.http, errstr, sizeof(errstr)) ||
	    es_service_start(&svc, errstr, sizeof(errstr)) ||
	    es_service_consume(&svc, (const char *const[]){svc.topics.orders, NULL},
			       &inventory_handlers, &inv, NULL, NULL, errstr, sizeof(errstr)))
		es_error("stopping: %s", errstr);
	else
		rc = 0;
	inventory_release(&inv);
	es_service_release(&svc);
	return rc;
}
