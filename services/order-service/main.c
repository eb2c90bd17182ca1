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

int main(void)
{
	struct es_service svc;
	struct order_app app;
	char errstr[512];
	const char *topics[3];
	int rc = 1;

	if (es_service_init(&svc,
			    &(struct es_service_spec){.name = ORDER_SERVICE,
						      .http_port = 8080,
						      .migrations = order_migrations,
						      .nmigrations = order_migrations_count,
						      .relay = true},
			    errstr, sizeof(errstr))) {
		es_error("cannot start: %s", errstr);
		return 1;
	}
	if (order_app_init(&app, &svc, errstr, sizeof(errstr))) {
		es_error("cannot start: %s", errstr);
		es_service_release(&svc);
		return 1;
	}
	topics[0] = svc.topics.payments;
	topics[1] = svc.topics.inventory;
	topics[2] = NULL;
	if (es_service_start(&svc, errstr, sizeof(errstr)) ||
	    es_service_consume(&svc, topics, &order_saga_handlers, &app, order_saga_sweep, &app,
			       errstr, sizeof(errstr)))
		es_error("stopping: %s", errstr);
	else
		rc = 0;
	es_service_release(&svc);
	order_app_release(&app);
	return rc;
}
