/*
 * order-service: the front door (REST) and the saga's decisions.
 *
 *   init     configuration, database, migrations, catalog prices
 *   serve    POST /orders writes the order and OrderPlaced in one transaction
 *   consume  payments and inventory outcomes confirm or cancel each order;
 *            the loop's tick cancels orders whose saga timed out
 *   release  on SIGTERM: stop HTTP, leave the group, flush the outbox relay
 */
#include <stdio.h>

#include "es/log.h"
#include "es/service.h"
#include "order.h"

#define ORDER_HTTP_PORT 8080

int main(void)
{
	const struct es_service_spec spec = {
		.name = ORDER_SERVICE,
		.http_port = ORDER_HTTP_PORT,
		.migrations = order_migrations,
		.nmigrations = order_migrations_count,
		.relay = true,
	};
	struct es_service svc;
	struct order_app app;
	char errstr[512];
	int rc = 1;

	if (es_service_init(&svc, &spec, errstr, sizeof(errstr))) {
		es_error("cannot start: %s", errstr);
		return 1;
	}
	if (order_app_init(&app, &svc, errstr, sizeof(errstr))) {
		es_error("cannot start: %s", errstr);
		es_service_release(&svc);
		return 1;
	}
	if (order_api_routes(&app, svc.http, errstr, sizeof(errstr)) ||
	    es_service_start(&svc, errstr, sizeof(errstr)) ||
	    es_service_consume(
		    &svc, (const char *const[]){svc.topics.payments, svc.topics.inventory, NULL},
		    &order_saga_handlers, &app, order_saga_sweep, &app, errstr, sizeof(errstr)))
		es_error("stopping: %s", errstr);
	else
		rc = 0;
	es_service_release(&svc);
	order_app_release(&app);
	return rc;
}
