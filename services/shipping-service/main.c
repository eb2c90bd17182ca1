/*
 * shipping-service: ships confirmed orders, keeping each shipment as a
 * stream of its own events (see shipping.h). Configuration: the common
 * variables of es/service.h, and
 *
 *   SHIPPING_DELAY_MS   2000   simulated time from one step of a shipment
 *                              to the next (created -> dispatched ->
 *                              delivered), 0..3600000
 *
 * The story of every daemon: init, its routes, start, consume until
 * SIGTERM (the tick is the simulated carrier), release.
 */
#include <stdio.h>

#include "es/config.h"
#include "es/log.h"
#include "es/service.h"
#include "shipping.h"

#define SHIPPING_HTTP_PORT 8086
#define SHIPPING_DELAY_DEFAULT_MS 2000
#define SHIPPING_DELAY_MAX_MS 3600000

int main(void)
{
	const struct es_service_spec spec = {
		.name = SHIPPING_SERVICE,
		.http_port = SHIPPING_HTTP_PORT,
		.migrations = shipping_migrations,
		.nmigrations = shipping_migrations_count,
		.relay = true,
	};
	struct es_service svc;
	struct shipping_app app;
	char errstr[512];
	long delay_ms;
	int rc = 1;

	/* Our own settings first: a bad one stops us before we wait for the
	 * database. */
	es_log_init(spec.name, ES_LOG_INFO);
	if (es_config_long("SHIPPING_DELAY_MS", SHIPPING_DELAY_DEFAULT_MS, 0, SHIPPING_DELAY_MAX_MS,
			   &delay_ms, errstr, sizeof(errstr)) ||
	    es_service_init(&svc, &spec, errstr, sizeof(errstr))) {
		es_error("cannot start: %s", errstr);
		return 1;
	}
	shipping_app_init(&app, svc.topics.shipments, delay_ms);
	es_info("shipments move on every %ld ms (SHIPPING_DELAY_MS)", delay_ms);
	if (shipping_metrics_register(&app, svc.metrics, errstr, sizeof(errstr)) ||
	    shipping_api_routes(svc.http, errstr, sizeof(errstr)) ||
	    es_service_start(&svc, errstr, sizeof(errstr)) ||
	    es_service_consume(&svc, (const char *const[]){svc.topics.orders, NULL},
			       &shipping_handlers, &app, shipping_sweep, &app, errstr,
			       sizeof(errstr)))
		es_error("stopping: %s", errstr);
	else
		rc = 0;
	es_service_release(&svc);
	shipping_app_release(&app);
	return rc;
}
