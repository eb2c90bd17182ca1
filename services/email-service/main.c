/*
 * email-service: sends the customer the contract's five emails
 * (order-received, order-confirmed, order-cancelled, refund-issued,
 * order-shipped) for the events of the orders, payments and shipments
 * topics, into a Maildir or through an
 * SMTP server, and announces each with EmailSent on the notifications
 * topic (through its outbox).
 */
#include <stdio.h>

#include <curl/curl.h>

#include "api.h"
#include "delivery.h"
#include "email.h"
#include "es/log.h"
#include "es/service.h"

#define EMAIL_HTTP_PORT 8083

int main(void)
{
	const struct es_service_spec spec = {
		.name = EMAIL_SERVICE,
		.http_port = EMAIL_HTTP_PORT,
		.migrations = email_migrations,
		.nmigrations = email_migrations_count,
		.relay = true,
		/* No saga waits on it: the broker may gather its events,
		 * so that it handles them in batches. */
		.fetch_wait_ms = ES_SERVICE_OFF_PATH_FETCH_WAIT_MS,
	};
	struct es_service svc;
	struct email_delivery delivery;
	struct email_app app;
	char errstr[1024];
	int rc = 1;

	/* Before any thread exists: curl_global_init is not thread-safe. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		fprintf(stderr, "email-service: cannot initialise libcurl\n");
		return 1;
	}
	/* Our own settings first: a bad one stops us before we wait for the
	 * database. */
	es_log_init(spec.name, ES_LOG_INFO);
	if (email_delivery_config(&delivery, errstr, sizeof(errstr)) ||
	    es_service_init(&svc, &spec, errstr, sizeof(errstr))) {
		es_error("cannot start: %s", errstr);
		curl_global_cleanup();
		return 1;
	}
	es_info("delivering email by %s, from %s", delivery.shown, delivery.from);
	email_app_init(&app, svc.topics.notifications, &delivery);
	if (email_metrics_register(&app, svc.metrics, errstr, sizeof(errstr)) ||
	    email_api_routes(svc.http, errstr, sizeof(errstr)) ||
	    es_service_start(&svc, errstr, sizeof(errstr)) ||
	    es_service_consume(&svc,
			       (const char *const[]){svc.topics.orders, svc.topics.payments,
						     svc.topics.shipments, NULL},
			       &email_handlers, &app, NULL, NULL, errstr, sizeof(errstr)))
		es_error("stopping: %s", errstr);
	else
		rc = 0;
	email_app_release(&app);
	es_service_release(&svc);
	curl_global_cleanup();
	return rc;
}
