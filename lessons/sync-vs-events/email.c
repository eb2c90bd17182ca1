/*
 * sync-email: email-service's order-confirmed mail behind an HTTP call.
 * The same message (email_message_render), the same delivery (a Maildir,
 * or SMTP with SMTP_URL: email_deliver), the same email_sent table; but
 * while it is away, nobody sends the mail later: the caller gets an error
 * instead.
 *
 *   POST /emails  {orderId, template: "order-confirmed", to, totalCents, currency}
 *                 200 {orderId, template, messageId}; a repeat of one
 *                 (order, template) delivers the same file again (Maildir)
 *                 and records it once
 *
 * Configuration: es/service.h's variables (HTTP_PORT default 8183,
 * DATABASE_SCHEMA default sync_email) and email-service's MAILDIR,
 * SMTP_URL, SMTP_TIMEOUT_MS, EMAIL_FROM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "email.h"
#include "es/log.h"
#include "es/service.h"
#include "sync.h"

#define SYNC_EMAIL "sync-email"
#define SYNC_EMAIL_PORT 8183

static struct email_delivery delivery;

static int refuse(struct es_http_request *req, const char *pointer, const char *detail)
{
	json_t *errors = json_array();

	es_http_errors_add(errors, pointer, detail);
	return es_http_reply_problem(req, 422, SYNC_PROBLEM("invalid-request"), "Invalid request",
				     detail, errors);
}

/* Delivers the message and makes it durable. Returns 0, or the HTTP
 * status to answer (422: never deliverable, 503: try later). */
static unsigned deliver(const struct email_message *m, char *errstr, size_t errstr_size)
{
	/* This request's own: the message is published as soon as it is
	 * written, by the request that wrote it. */
	struct email_maildir_staged staged = {0};
	enum email_delivery_result dr;
	size_t len;
	char *text;

	text = email_message_render(m, &len, errstr, errstr_size);
	if (!text)
		return 422;
	dr = email_deliver(&delivery, &staged, m->order_id, m->tmpl, m->to, text, len, errstr,
			   errstr_size);
	free(text);
	if (dr == EMAIL_DELIVERY_REFUSED)
		return 422;
	if (dr == EMAIL_DELIVERY_RETRY)
		return 503;
	if (email_delivery_sync(&delivery, &staged, errstr, errstr_size))
		return 503;
	return 0;
}

static int post_email(struct es_http_request *req, void *arg)
{
	static const char sql[] =
		"INSERT INTO email_sent (order_id, template, recipient, message_id, "
		"cause_event_id) VALUES ($1, $2, $3, $4, $5) "
		"ON CONFLICT (order_id, template) DO NOTHING";
	json_t *body = sync_body(req);
	const char *tmpl_name;
	char message_id[EMAIL_MESSAGE_ID_SIZE], err[512];
	struct email_message m = {0};
	struct es_db *db;
	unsigned status;
	int rc = 0;

	if (!body)
		return 0;
	tmpl_name = json_string_value(json_object_get(body, "template"));
	m.order_id = json_string_value(json_object_get(body, "orderId"));
	m.to = json_string_value(json_object_get(body, "to"));
	m.from = delivery.from;
	m.date = time(NULL);
	m.cents = json_integer_value(json_object_get(body, "totalCents"));
	m.currency = json_string_value(json_object_get(body, "currency"));
	if (!tmpl_name || email_template_parse(tmpl_name, &m.tmpl) ||
	    m.tmpl != EMAIL_ORDER_CONFIRMED) {
		rc = refuse(req, "/template", "this twin sends order-confirmed only");
		goto out;
	}
	if (!m.order_id || !email_order_id_valid(m.order_id) ||
	    email_message_id(m.order_id, m.tmpl, message_id, sizeof(message_id))) {
		rc = refuse(req, "/orderId", "not an order id");
		goto out;
	}
	status = deliver(&m, err, sizeof(err));
	if (status == 422) {
		rc = refuse(req, "", err);
		goto out;
	}
	if (status) {
		rc = sync_unavailable(req, "the mail could not be delivered now");
		goto out;
	}
	db = es_http_db(req, err, sizeof(err));
	if (!db ||
	    es_db_exec(db, sql, 5,
		       (const char *const[]){m.order_id, tmpl_name, m.to, message_id, m.order_id},
		       err, sizeof(err)) < 0) {
		rc = sync_unavailable(req, "the email database is unreachable");
		goto out;
	}
	es_info("order %s: delivered %s %s to %s", m.order_id, tmpl_name, message_id, m.to);
	rc = es_http_reply_json(req, 200,
				json_pack("{s:s,s:s,s:s}", "orderId", m.order_id, "template",
					  tmpl_name, "messageId", message_id));
out:
	json_decref(body);
	return rc;
}

int main(void)
{
	const struct es_service_spec spec = {
		.name = SYNC_EMAIL,
		.http_port = SYNC_EMAIL_PORT,
		.migrations = email_migrations,
		.nmigrations = email_migrations_count,
		.http_only = true,
	};
	struct es_service svc;
	char errstr[512];
	int rc = 1;

	es_log_init(spec.name, ES_LOG_INFO);
	if (email_delivery_config(&delivery, errstr, sizeof(errstr)) ||
	    es_service_init(&svc, &spec, errstr, sizeof(errstr))) {
		es_error("cannot start: %s", errstr);
		return 1;
	}
	es_info("delivering email by %s, from %s", delivery.shown, delivery.from);
	if (sync_call_init()) {
		es_error("stopping: libcurl could not start");
	} else if (es_http_route(svc.http, "POST", "/emails", post_email, NULL, errstr,
				 sizeof(errstr)) ||
		   es_service_start(&svc, errstr, sizeof(errstr))) {
		es_error("stopping: %s", errstr);
	} else {
		rc = es_service_serve(&svc);
	}
	es_service_release(&svc);
	sync_call_release();
	return rc;
}
