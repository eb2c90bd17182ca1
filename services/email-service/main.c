/*
 * email-service: sends the customer the contract's four emails
 * (order-received, order-confirmed, order-cancelled, refund-issued) for the
 * events of the orders and payments topics, into a Maildir or through an
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

int main(void)
{
	const struct es_service_spec spec = {
		.name = EMAIL_SERVICE,
		.http_port = 8083,
		.migrations = email_migrations,
		.nmigrations = email_migrations_count,
		.relay = true,
	};
	struct es_service svc = {0};
	struct email_delivery delivery;
	struct email_api api = {0};
	struct email_app app;
	const char *topics[3] = {NULL};
	char errstr[1024];
	int rc = 1;

	/* Before any thread exists: curl_global_init is not thread-safe. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		fprintf(stderr, "email-service: cannot initialise libcurl\n");
		return 1;
	}
	es_log_init(EMAIL_SERVICE, ES_LOG_INFO);
	/* Our own settings first: a bad one should not wait for the database. */
	if (email_delivery_config(&delivery, errstr, sizeof(errstr))) {
		es_error("%s", errstr);
		goto out;
	}
	if (es_service_init(&svc, &spec, errstr, sizeof(errstr))) {
		es_error("%s", errstr);
		goto out;
	}
	es_info("delivering email by %s, from %s", delivery.shown, delivery.from);

	email_app_init(&app, svc.topics.notifications, &delivery);
	if (email_metrics_register(&app, svc.metrics, errstr, sizeof(errstr)) ||
	    email_api_init(&api, svc.database_url, svc.schema, errstr, sizeof(errstr)) ||
	    email_api_routes(&api, svc.http, errstr, sizeof(errstr)) ||
	    es_service_start(&svc, errstr, sizeof(errstr))) {
		es_error("%s", errstr);
		goto out;
	}

	topics[0] = svc.topics.orders;
	topics[1] = svc.topics.payments;
	if (es_service_consume(&svc, topics, &email_handlers, &app, NULL, NULL, errstr,
			       sizeof(errstr)) == 0)
		rc = 0;
	else
		es_error("%s", errstr);
out:
	/* The server stops (its handlers done) before the api they use goes. */
	es_service_release(&svc);
	email_api_release(&api);
	curl_global_cleanup();
	return rc;
}
