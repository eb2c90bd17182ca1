/*
 * payment-service: charges orders when they are placed and refunds them
 * when they are cancelled (see payment.h). Configuration: the common
 * variables of es/service.h, and
 *
 *   PAYMENT_LATENCY_MS   0    simulated time the "bank" takes to answer
 *                             (0..60000), waited once per batch of charges,
 *                             outside any transaction
 */
#include <stdio.h>

#include "es/config.h"
#include "es/log.h"
#include "es/service.h"
#include "payment.h"

#define PAYMENT_HTTP_PORT 8081
#define PAYMENT_LATENCY_MAX_MS 60000

int main(void)
{
	const struct es_service_spec spec = {
		.name = PAYMENT_SERVICE,
		.http_port = PAYMENT_HTTP_PORT,
		.migrations = payment_migrations,
		.nmigrations = payment_migrations_count,
		.relay = true,
	};
	struct es_service svc;
	struct payment_app app;
	char errstr[512];
	long latency_ms;
	int rc = 1;

	/* Our own settings first: a bad one stops us before we wait for the
	 * database. */
	es_log_init(spec.name, ES_LOG_INFO);
	if (es_config_long("PAYMENT_LATENCY_MS", 0, 0, PAYMENT_LATENCY_MAX_MS, &latency_ms, errstr,
			   sizeof(errstr)) ||
	    es_service_init(&svc, &spec, errstr, sizeof(errstr))) {
		es_error("cannot start: %s", errstr);
		return 1;
	}
	payment_app_init(&app, svc.topics.payments, latency_ms);
	if (latency_ms)
		es_info("simulating %ld ms of payment latency per batch of charges", latency_ms);
	if (payment_metrics_register(&app, svc.metrics, errstr, sizeof(errstr)) ||
	    payment_api_routes(svc.http, errstr, sizeof(errstr)) ||
	    es_service_start(&svc, errstr, sizeof(errstr)) ||
	    es_service_consume(&svc, (const char *const[]){svc.topics.orders, NULL},
			       &payment_handlers, &app, NULL, NULL, errstr, sizeof(errstr)))
		es_error("stopping: %s", errstr);
	else
		rc = 0;
	es_service_release(&svc);
	payment_app_release(&app);
	return rc;
}
