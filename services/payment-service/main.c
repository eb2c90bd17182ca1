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
	struct payment_api *api = NULL;
	char errstr[512];
	long latency_ms;
	int result = 1;

	/* Checked first, so that a bad value stops us before we wait for
	 * the database. */
	if (es_config_long("PAYMENT_LATENCY_MS", 0, 0, PAYMENT_LATENCY_MAX_MS, &latency_ms, errstr,
			   sizeof(errstr))) {
		es_log_init(PAYMENT_SERVICE, ES_LOG_INFO);
		es_error("%s", errstr);
		return 1;
	}
	if (es_service_init(&svc, &spec, errstr, sizeof(errstr))) {
		es_error("%s", errstr);
		return 1;
	}
	payment_app_init(&app, svc.topics.payments, latency_ms);
	api = payment_api_new(svc.database_url, svc.schema);
	if (!api) {
		es_error("out of memory");
		goto out;
	}
	if (payment_metrics_register(&app, svc.metrics, errstr, sizeof(errstr)) ||
	    payment_api_routes(api, svc.http, errstr, sizeof(errstr)) ||
	    es_service_start(&svc, errstr, sizeof(errstr))) {
		es_error("%s", errstr);
		goto out;
	}
	if (latency_ms)
		es_info("simulating %ld ms of payment latency per batch of charges", latency_ms);

	if (es_service_consume(&svc, (const char *const[]){svc.topics.orders, NULL},
			       &payment_handlers, &app, NULL, NULL, errstr, sizeof(errstr))) {
		es_error("%s", errstr);
		goto out;
	}
	result = 0;
out:
	/* Stops HTTP first, so no handler is left using api when it goes. */
	es_service_release(&svc);
	payment_api_free(api);
	return result;
}
