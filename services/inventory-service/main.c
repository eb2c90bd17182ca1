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

struct app {
	struct es_service svc;
	struct inventory inv;
};

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
		.http_port = 8082,
		.migrations = inventory_migrations,
		.nmigrations = inventory_migrations_count,
		.relay = true,
	};
	const char *topics[2] = {NULL, NULL};
	struct inventory_web *web = NULL;
	char errstr[512] = "";
	struct app app;
	int result = 1;

	if (es_service_init(&app.svc, &spec, errstr, sizeof(errstr))) {
		es_error("cannot start: %s", errstr);
		return 1;
	}
	if (seed(app.svc.db, errstr, sizeof(errstr)) ||
	    inventory_init(&app.inv, app.svc.topics.inventory, app.svc.metrics, errstr,
			   sizeof(errstr)))
		goto out;
	web = inventory_web_new(app.svc.database_url, app.svc.schema);
	if (!web) {
		snprintf(errstr, sizeof(errstr), "out of memory");
		goto out;
	}
	if (inventory_web_routes(web, app.svc.http, errstr, sizeof(errstr)) ||
	    es_service_start(&app.svc, errstr, sizeof(errstr)))
		goto out;

	topics[0] = app.svc.topics.orders;
	if (es_service_consume(&app.svc, topics, &inventory_handlers, &app.inv, NULL, NULL, errstr,
			       sizeof(errstr)))
		goto out;
	result = 0;
out:
	if (result)
		es_error("stopping: %s", errstr);
	/* HTTP stops first, so no handler still uses web when it goes. */
	es_service_release(&app.svc);
	inventory_web_free(web);
	return result;
}
