/*
 * Integration tests of email.c's handler against a real PostgreSQL
 * (DATABASE_URL): each test has its own schema migrated with the service's
 * embedded migrations and its own Maildir, and calls the handler directly
 * the way the consumer loop would. They prove: an email per event with its
 * EmailSent in the outbox, once per (order, template) however often the
 * event comes, a refund that overtakes its OrderPlaced waiting for it
 * instead of being lost or blocking, a failed delivery retried with nothing
 * recorded, and GET /emails listing what was sent.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "api.h"
#include "delivery.h"
#include "email.h"
#include "es/db.h"
#include "es/dispatch.h"
#include "es/envelope.h"
#include "es/events.h"
#include "es/http.h"
#include "es/log.h"
#include "es/metrics.h"
#include "maildir.h"
#include "testsupport.h"

#define TOPIC "notifications"
#define CUSTOMER "ada@example.com"

static const char *conninfo;

/* Per test: a schema, a Maildir, the handler's state and an order id. */
struct fixture {
	char schema[64];
	char root[128];
	struct es_db *db;
	struct es_metrics *metrics;
	struct email_delivery delivery;
	struct email_app app;
	char order[ES_UUID_LEN + 1];
};

static struct fixture fx;

static void setup(void)
{
	char errstr[512];

	memset(&fx, 0, sizeof(fx));
	ck_assert_int_eq(es_test_unique_name(fx.schema, sizeof(fx.schema), "email_it"), 0);
	fx.db = es_db_connect(conninfo, fx.schema, 10000, errstr, sizeof(errstr));
	ck_assert_msg(fx.db, "%s", errstr);
	ck_assert_msg(es_db_migrate_list(fx.db, email_migrations, email_migrations_count, errstr,
					 sizeof(errstr)) >= 0,
		      "%s", errstr);

	snprintf(fx.root, sizeof(fx.root), "/tmp/email_it_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fx.root));
	setenv("MAILDIR", fx.root, 1);
	unsetenv("SMTP_URL");
	unsetenv("EMAIL_FROM");
	ck_assert_msg(email_delivery_config(&fx.delivery, errstr, sizeof(errstr)) == 0, "%s",
		      errstr);

	fx.metrics = es_metrics_new();
	ck_assert_ptr_nonnull(fx.metrics);
	email_app_init(&fx.app, TOPIC, &fx.delivery);
	ck_assert_int_eq(email_metrics_register(&fx.app, fx.metrics, errstr, sizeof(errstr)), 0);
	es_uuid_new(fx.order);
}

static void remove_dir(const char *path)
{
	struct dirent *e;
	DIR *d = opendir(path);

	if (!d)
		return;
	while ((e = readdir(d))) {
		char child[512];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
		if (unlink(child))
			remove_dir(child);
	}
	closedir(d);
	rmdir(path);
}

static void teardown(void)
{
	es_metrics_free(fx.metrics);
	es_db_free(fx.db);
	remove_dir(fx.root);
}

/* ----------------------------------------------------------------- events */

static struct es_event *order_placed(const char *order, const char *email)
{
	return es_event_new("order-service", ES_ORDER_PLACED, order, NULL, NULL,
			    json_pack("{s:s, s:s, s:s, s:[{s:s, s:i, s:i}], s:i, s:s, s:s}",
				      "orderId", order, "customerId", "cust-1", "customerEmail",
				      email, "items", "sku", "poster-limited", "quantity", 1,
				      "unitPriceCents", 1999, "totalCents", 1999, "currency", "EUR",
				      "paymentToken", "tok_visa"));
}

static struct es_event *order_confirmed(const char *order)
{
	return es_event_new("order-service", ES_ORDER_CONFIRMED, order, NULL, NULL,
			    json_pack("{s:s, s:s, s:s, s:i, s:s}", "orderId", order, "paymentId",
				      "pay-1", "reservationId", "res-1", "totalCents", 1999,
				      "currency", "EUR"));
}

static struct es_event *order_cancelled(const char *order, const char *reason)
{
	return es_event_new("order-service", ES_ORDER_CANCELLED, order, NULL, NULL,
			    json_pack("{s:s, s:s, s:s}", "orderId", order, "reason", reason,
				      "detail", "poster-limited: requested 1, available 0"));
}

static struct es_event *payment_refunded(const char *order)
{
	return es_event_new("payment-service", ES_PAYMENT_REFUNDED, order, NULL, NULL,
			    json_pack("{s:s, s:s, s:i, s:s}", "orderId", order, "paymentId",
				      "pay-1", "amountCents", 1999, "currency", "EUR"));
}

/* Runs the handler as the consumer loop would, and frees nothing. */
/* ShipmentDispatched, from shipping-service: the order is on its way. */
static struct es_event *shipment_dispatched(const char *order, const char *tracking)
{
	return es_event_new("shipping-service", ES_SHIPMENT_DISPATCHED, order, NULL, NULL,
			    json_pack("{s:s, s:s, s:s, s:s}", "orderId", order, "shipmentId",
				      "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "carrier", "UPS",
				      "trackingNumber", tracking));
}

static enum es_handler_result handle(const struct es_event *ev, char *reason, size_t size)
{
	struct es_dispatch d = {.consumer = EMAIL_SERVICE,
				.db = fx.db,
				.handlers = &email_handlers,
				.app = &fx.app};

	ck_assert_ptr_nonnull(ev);
	return es_dispatch_one(&d, ev, reason, size);
}

static void handle_ok(const struct es_event *ev)
{
	char reason[512];

	ck_assert_msg(handle(ev, reason, sizeof(reason)) == ES_HANDLER_OK, "%s %s: %s", ev->type,
		      ev->id, reason);
}

/* ---------------------------------------------------------------- queries */

static long count(const char *sql, const char *order)
{
	const char *params[1] = {order};
	char errstr[512];
	PGresult *res;
	long n;

	res = es_db_query(fx.db, sql, order ? 1 : 0, order ? params : NULL, errstr, sizeof(errstr));
	ck_assert_msg(res, "%s", errstr);
	n = strtol(es_db_get(res, 0, "n"), NULL, 10);
	PQclear(res);
	return n;
}

static long outbox_rows(void)
{
	return count("SELECT count(*) AS n FROM es_outbox", NULL);
}

static long sent_rows(const char *order)
{
	return count("SELECT count(*) AS n FROM email_sent WHERE order_id = $1", order);
}

static long pending_rows(const char *order)
{
	return count("SELECT count(*) AS n FROM email_pending WHERE order_id = $1", order);
}

/* The EmailSent of (order, template) in the outbox, parsed (free it), and
 * checked for what every EmailSent must say. */
static struct es_event *email_sent_event(const char *order, const char *tmpl)
{
	const char *params[2] = {order, tmpl};
	char errstr[512], want_id[128];
	struct es_event *ev;
	const char *payload;
	PGresult *res;

	res = es_db_query(fx.db,
			  "SELECT topic, msg_key, event_type, payload FROM es_outbox "
			  "WHERE msg_key = $1 AND payload::json->'data'->>'template' = $2",
			  2, params, errstr, sizeof(errstr));
	ck_assert_msg(res, "%s", errstr);
	ck_assert_msg(PQntuples(res) == 1, "%d EmailSent rows for %s", PQntuples(res), tmpl);
	ck_assert_str_eq(es_db_get(res, 0, "topic"), TOPIC);
	ck_assert_str_eq(es_db_get(res, 0, "event_type"), ES_EMAIL_SENT);
	payload = es_db_get(res, 0, "payload");
	ev = es_event_parse(payload, strlen(payload), errstr, sizeof(errstr));
	PQclear(res);
	ck_assert_msg(ev, "%s", errstr);
	ck_assert_msg(es_event_data_check(ev, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_str_eq(ev->source, "/eventshop/email-service");
	ck_assert_str_eq(es_data_str(ev, "to"), CUSTOMER);
	snprintf(want_id, sizeof(want_id), "<%s.%s@eventshop.local>", order, tmpl);
	ck_assert_str_eq(es_data_str(ev, "messageId"), want_id);
	return ev;
}

/* ---------------------------------------------------------------- maildir */

static int files_in(const char *sub)
{
	char path[256];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", fx.root, sub);
	d = opendir(path);
	ck_assert_msg(d, "no %s", path);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

/* The delivered file of (order, template), read into a static buffer;
 * NULL when there is none. */
static const char *mail_file(const char *order, const char *tmpl)
{
	static char buf[8192];
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/new/%s.%s.eml", fx.root, order, tmpl);
	f = fopen(path, "rb");
	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void assert_metric(const char *line)
{
	char *text = es_metrics_render(fx.metrics, NULL);

	ck_assert_ptr_nonnull(text);
	ck_assert_msg(strstr(text, line), "no \"%s\" in\n%s", line, text);
	free(text);
}

/* ------------------------------------------------------------------ tests */

START_TEST(order_placed_sends_order_received_with_email_sent_in_outbox)
{
	struct es_event *placed = order_placed(fx.order, CUSTOMER);
	struct es_event *sent;
	const char *mail;

	handle_ok(placed);

	mail = mail_file(fx.order, "order-received");
	ck_assert_msg(mail, "no order-received file");
	ck_assert_ptr_nonnull(strstr(mail, "\r\nTo: " CUSTOMER "\r\n"));
	ck_assert_ptr_nonnull(strstr(mail, "1 x poster-limited at 19.99 EUR"));
	ck_assert_int_eq(files_in("new"), 1);
	ck_assert_int_eq(files_in("tmp"), 0);

	ck_assert_int_eq(outbox_rows(), 1);
	ck_assert_int_eq(sent_rows(fx.order), 1);
	sent = email_sent_event(fx.order, "order-received");
	/* The saga's thread carries on: caused by OrderPlaced, same order. */
	ck_assert_str_eq(sent->causationid, placed->id);
	ck_assert_str_eq(sent->correlationid, fx.order);
	ck_assert_str_eq(sent->traceparent, placed->traceparent);
	assert_metric("es_emails_sent_total{template=\"order-received\"} 1");
	es_event_free(sent);
	es_event_free(placed);
}
END_TEST

START_TEST(the_same_event_twice_sends_one_email)
{
	struct es_event *placed = order_placed(fx.order, CUSTOMER);
	struct es_event *again = order_placed(fx.order, CUSTOMER); /* a new id */

	handle_ok(placed);
	handle_ok(placed); /* Kafka redelivers: the inbox knows it */
	handle_ok(again); /* republished with another id: email_sent knows it */
	ck_assert_int_eq(files_in("new"), 1);
	ck_assert_int_eq(outbox_rows(), 1);
	ck_assert_int_eq(sent_rows(fx.order), 1);
	assert_metric("es_emails_sent_total{template=\"order-received\"} 1");
	es_event_free(again);
	es_event_free(placed);
}
END_TEST

START_TEST(redelivery_after_a_lost_commit_replaces_the_same_file)
{
	struct es_event *placed = order_placed(fx.order, CUSTOMER);
	char errstr[512];
	struct es_event *sent;

	handle_ok(placed);
	/* As if the process died after the rename and before the commit:
	 * the file is there, the transaction's rows are not. */
	ck_assert_int_ge(
		es_db_exec(fx.db, "DELETE FROM email_sent", 0, NULL, errstr, sizeof(errstr)), 0);
	ck_assert_int_ge(
		es_db_exec(fx.db, "DELETE FROM es_outbox", 0, NULL, errstr, sizeof(errstr)), 0);
	ck_assert_int_ge(es_db_exec(fx.db, "DELETE FROM es_inbox", 0, NULL, errstr, sizeof(errstr)),
			 0);
	handle_ok(placed);
	ck_assert_int_eq(files_in("new"), 1);
	ck_assert_int_eq(files_in("tmp"), 0);
	ck_assert_int_eq(outbox_rows(), 1);
	sent = email_sent_event(fx.order, "order-received");
	es_event_free(sent);
	es_event_free(placed);
}
END_TEST

START_TEST(refund_before_order_placed_waits_then_both_are_sent)
{
	struct es_event *refund = payment_refunded(fx.order);
	struct es_event *placed = order_placed(fx.order, CUSTOMER);
	struct es_event *sent;
	const char *mail;

	/* The payments topic overtook the orders topic: no address yet. */
	handle_ok(refund);
	ck_assert_int_eq(files_in("new"), 0);
	ck_assert_int_eq(outbox_rows(), 0);
	ck_assert_int_eq(pending_rows(fx.order), 1);
	handle_ok(refund); /* redelivered while waiting: still one */
	ck_assert_int_eq(pending_rows(fx.order), 1);

	handle_ok(placed);
	ck_assert_int_eq(files_in("new"), 2);
	ck_assert_ptr_nonnull(mail_file(fx.order, "order-received"));
	mail = mail_file(fx.order, "refund-issued");
	ck_assert_msg(mail, "no refund-issued file");
	ck_assert_ptr_nonnull(strstr(mail, "refunded 19.99 EUR"));
	ck_assert_ptr_nonnull(strstr(mail, "\r\nTo: " CUSTOMER "\r\n"));
	ck_assert_int_eq(pending_rows(fx.order), 0);
	ck_assert_int_eq(sent_rows(fx.order), 2);
	ck_assert_int_eq(outbox_rows(), 2);
	sent = email_sent_event(fx.order, "refund-issued");
	/* The refund email is about the refund, whenever it went out. */
	ck_assert_str_eq(sent->causationid, refund->id);
	es_event_free(sent);
	sent = email_sent_event(fx.order, "order-received");
	ck_assert_str_eq(sent->causationid, placed->id);
	es_event_free(sent);
	assert_metric("es_emails_sent_total{template=\"refund-issued\"} 1");

	/* And the refund arriving once more changes nothing. */
	handle_ok(refund);
	ck_assert_int_eq(files_in("new"), 2);
	ck_assert_int_eq(outbox_rows(), 2);
	es_event_free(placed);
	es_event_free(refund);
}
END_TEST

/* A batch as the consumer loop hands it over: every email once, whatever
 * the order of the events in it and however often one comes. */
START_TEST(one_batch_of_two_orders_sends_each_email_once)
{
	char other[ES_UUID_LEN + 1], reason[512];
	struct es_event *evs[7];
	struct es_batch_item items[8] = {0};
	struct es_dispatch d = {.consumer = EMAIL_SERVICE,
				.db = fx.db,
				.handlers = &email_handlers,
				.app = &fx.app};

	es_uuid_new(other);
	evs[0] = payment_refunded(fx.order); /* overtook its OrderPlaced */
	evs[1] = order_placed(other, CUSTOMER);
	evs[2] = order_placed(fx.order, CUSTOMER);
	evs[3] = order_confirmed(fx.order);
	evs[4] = order_cancelled(other, "PAYMENT_DECLINED");
	evs[5] = order_placed(fx.order, "someone.else@example.com"); /* a second OrderPlaced */
	evs[6] = order_confirmed(fx.order); /* its own event id: the same email */
	for (int i = 0; i < 7; i++) {
		ck_assert_ptr_nonnull(evs[i]);
		items[i].ev = evs[i];
	}
	items[7].ev = evs[3]; /* and one delivered twice in the batch */

	for (int round = 0; round < 2; round++) {
		ck_assert_int_eq(es_dispatch_batch(&d, items, 8, reason, sizeof(reason)),
				 ES_HANDLER_OK);
		for (int i = 0; i < 8; i++)
			ck_assert_msg(items[i].result == ES_HANDLER_OK, "%d: %s", i,
				      items[i].reason);
		ck_assert_int_eq(files_in("new"), 5);
		ck_assert_int_eq(files_in("tmp"), 0); /* all published */
		ck_assert_int_eq(sent_rows(fx.order), 3);
		ck_assert_int_eq(sent_rows(other), 2);
		ck_assert_int_eq(pending_rows(fx.order), 0);
		ck_assert_int_eq(outbox_rows(), 5);
	}
	/* Each EmailSent once, all to the first OrderPlaced's address. */
	es_event_free(email_sent_event(fx.order, "refund-issued"));
	es_event_free(email_sent_event(fx.order, "order-received"));
	es_event_free(email_sent_event(fx.order, "order-confirmed"));
	es_event_free(email_sent_event(other, "order-received"));
	es_event_free(email_sent_event(other, "order-cancelled"));
	for (int i = 0; i < 7; i++)
		es_event_free(evs[i]);
}
END_TEST

/*
 * An effect that rejects in the middle of a batch: the batch is run again
 * with a savepoint around each event, and the others must give what they
 * give one at a time. OrderPlaced of `other` finds a pending email it
 * cannot render (a row no checked event could have made), so it is
 * rejected; what it noted of its order goes with its savepoint, so that
 * the OrderConfirmed behind it waits for an OrderPlaced rather than being
 * mailed to an address nothing recorded.
 */
START_TEST(a_rejected_event_leaves_the_rest_of_its_batch_as_one_at_a_time)
{
	char other[ES_UUID_LEN + 1], reason[512], errstr[512];
	struct es_event *bad_cancel, *evs[4];
	struct es_batch_item items[5] = {0};
	struct es_dispatch d = {.consumer = EMAIL_SERVICE,
				.db = fx.db,
				.handlers = &email_handlers,
				.app = &fx.app};
	char *text;

	es_uuid_new(other);
	bad_cancel = order_cancelled(other, "LOST_IN_SPACE");
	ck_assert_ptr_nonnull(bad_cancel);
	text = es_event_serialize(bad_cancel);
	ck_assert_ptr_nonnull(text);
	ck_assert_int_eq(es_db_exec(fx.db,
				    "INSERT INTO email_pending (order_id, template, event)"
				    " VALUES ($1, 'order-cancelled', $2)",
				    2, (const char *[]){other, text}, errstr, sizeof(errstr)),
			 1);
	free(text);
	evs[0] = order_placed(fx.order, CUSTOMER);
	evs[1] = order_placed(other, CUSTOMER);
	evs[2] = order_confirmed(other);
	evs[3] = order_confirmed(fx.order);
	for (int i = 0; i < 4; i++) {
		ck_assert_ptr_nonnull(evs[i]);
		items[i].ev = evs[i];
	}
	items[4].ev = evs[0]; /* and one delivered twice in the batch */

	ck_assert_int_eq(es_dispatch_batch(&d, items, 5, reason, sizeof(reason)), ES_HANDLER_OK);
	for (int i = 0; i < 5; i++)
		ck_assert_msg(items[i].result == (i == 1 ? ES_HANDLER_REJECT : ES_HANDLER_OK),
			      "%d: %s", i, items[i].reason);
	ck_assert_msg(strstr(items[1].reason, "LOST_IN_SPACE"), "%s", items[1].reason);
	ck_assert_int_eq(sent_rows(fx.order), 2);
	ck_assert_int_eq(outbox_rows(), 2);
	es_event_free(email_sent_event(fx.order, "order-received"));
	es_event_free(email_sent_event(fx.order, "order-confirmed"));
	assert_metric("es_emails_sent_total{template=\"order-received\"} 1");
	assert_metric("es_emails_sent_total{template=\"order-confirmed\"} 1");
	/* Nothing recorded of the rejected order: its OrderConfirmed waits. */
	ck_assert_int_eq(sent_rows(other), 0);
	ck_assert_int_eq(count("SELECT count(*) AS n FROM email_orders WHERE order_id = $1", other),
			 0);
	ck_assert_int_eq(pending_rows(other), 2);
	ck_assert_int_eq(count("SELECT count(*) AS n FROM es_inbox", NULL), 3);
	/* Its order-received left before the pending one failed (at least
	 * once): the redelivery below replaces the same file. */
	ck_assert_int_eq(files_in("new"), 3);

	/* Once the unsendable row is gone, the redelivered OrderPlaced sends
	 * its own email and the one that waited. */
	ck_assert_int_eq(es_db_exec(fx.db,
				    "DELETE FROM email_pending WHERE template = 'order-cancelled'",
				    0, NULL, errstr, sizeof(errstr)),
			 1);
	handle_ok(evs[1]);
	ck_assert_int_eq(sent_rows(other), 2);
	ck_assert_int_eq(pending_rows(other), 0);
	ck_assert_int_eq(outbox_rows(), 4);
	ck_assert_int_eq(files_in("new"), 4);
	es_event_free(email_sent_event(other, "order-confirmed"));
	for (int i = 0; i < 4; i++)
		es_event_free(evs[i]);
	es_event_free(bad_cancel);
}
END_TEST

START_TEST(order_confirmed_sends_order_confirmed)
{
	struct es_event *placed = order_placed(fx.order, CUSTOMER);
	struct es_event *confirmed = order_confirmed(fx.order);
	struct es_event *sent;
	const char *mail;

	handle_ok(placed);
	handle_ok(confirmed);
	mail = mail_file(fx.order, "order-confirmed");
	ck_assert_msg(mail, "no order-confirmed file");
	ck_assert_ptr_nonnull(strstr(mail, "is confirmed"));
	ck_assert_ptr_nonnull(strstr(mail, "19.99 EUR"));
	ck_assert_int_eq(files_in("new"), 2);
	ck_assert_int_eq(outbox_rows(), 2);
	sent = email_sent_event(fx.order, "order-confirmed");
	ck_assert_str_eq(sent->causationid, confirmed->id);
	es_event_free(sent);
	es_event_free(confirmed);
	es_event_free(placed);
}
END_TEST

/* The shipping lesson's consumer: a new producer's event, a new email,
 * and no producer of the shop changed. Before the order's OrderPlaced
 * (unknown order) the mail waits, as every other one does. */
START_TEST(shipment_dispatched_sends_order_shipped_with_the_tracking_number)
{
	struct es_event *dispatched = shipment_dispatched(fx.order, "ES0B6F2C9E51D4");
	struct es_event *placed = order_placed(fx.order, CUSTOMER);
	struct es_event *sent;
	const char *mail;

	handle_ok(dispatched);
	ck_assert_int_eq(files_in("new"), 0);
	ck_assert_int_eq(pending_rows(fx.order), 1);
	handle_ok(placed);
	mail = mail_file(fx.order, "order-shipped");
	ck_assert_msg(mail, "no order-shipped file");
	ck_assert_ptr_nonnull(strstr(mail, "has shipped"));
	ck_assert_ptr_nonnull(strstr(mail, "Carrier: UPS"));
	ck_assert_ptr_nonnull(strstr(mail, "Tracking number: ES0B6F2C9E51D4"));
	sent = email_sent_event(fx.order, "order-shipped");
	ck_assert_str_eq(sent->causationid, dispatched->id);
	es_event_free(sent);
	assert_metric("es_emails_sent_total{template=\"order-shipped\"} 1");

	/* Redelivered: once. */
	handle_ok(dispatched);
	ck_assert_int_eq(files_in("new"), 2);
	ck_assert_int_eq(sent_rows(fx.order), 2);
	es_event_free(placed);
	es_event_free(dispatched);
}
END_TEST

START_TEST(order_cancelled_sends_the_reason_in_words)
{
	struct es_event *placed = order_placed(fx.order, CUSTOMER);
	struct es_event *cancelled = order_cancelled(fx.order, "OUT_OF_STOCK");
	struct es_event *sent;
	const char *mail;

	handle_ok(placed);
	handle_ok(cancelled);
	mail = mail_file(fx.order, "order-cancelled");
	ck_assert_msg(mail, "no order-cancelled file");
	ck_assert_ptr_nonnull(strstr(mail, "an item you ordered is out of stock"));
	sent = email_sent_event(fx.order, "order-cancelled");
	es_event_free(sent);
	es_event_free(cancelled);
	es_event_free(placed);
}
END_TEST

START_TEST(other_known_types_do_nothing_and_bad_events_are_rejected)
{
	struct es_event *processed = es_event_new(
		"payment-service", ES_PAYMENT_PROCESSED, fx.order, NULL, NULL,
		json_pack("{s:s, s:s, s:i, s:s}", "orderId", fx.order, "paymentId", "pay-1",
			  "amountCents", 1999, "currency", "EUR"));
	struct es_event *unknown = es_event_new("order-service", "OrderShipped", fx.order, NULL,
						NULL, json_pack("{s:s}", "orderId", fx.order));
	struct es_event *bad_email = order_placed(fx.order, "ada at example.com");
	struct es_event *no_total = order_placed(fx.order, CUSTOMER);
	struct es_event *bad_currency = payment_refunded(fx.order);
	char reason[512];

	handle_ok(processed);
	ck_assert_int_eq(handle(unknown, reason, sizeof(reason)), ES_HANDLER_REJECT);
	ck_assert_msg(strstr(reason, "OrderShipped"), "%s", reason);
	ck_assert_int_eq(handle(bad_email, reason, sizeof(reason)), ES_HANDLER_REJECT);
	ck_assert_msg(strstr(reason, "customerEmail"), "%s", reason);
	json_object_del(no_total->data, "totalCents");
	ck_assert_int_eq(handle(no_total, reason, sizeof(reason)), ES_HANDLER_REJECT);
	ck_assert_msg(strstr(reason, "totalCents"), "%s", reason);
	json_object_set_new(bad_currency->data, "currency", json_string("euro"));
	ck_assert_int_eq(handle(bad_currency, reason, sizeof(reason)), ES_HANDLER_REJECT);
	ck_assert_msg(strstr(reason, "currency"), "%s", reason);

	ck_assert_int_eq(files_in("new"), 0);
	ck_assert_int_eq(outbox_rows(), 0);
	ck_assert_int_eq(count("SELECT count(*) AS n FROM es_inbox", NULL), 0);
	es_event_free(bad_currency);
	es_event_free(no_total);
	es_event_free(bad_email);
	es_event_free(unknown);
	es_event_free(processed);
}
END_TEST

START_TEST(failed_delivery_is_retried_and_records_nothing)
{
	struct es_event *placed = order_placed(fx.order, CUSTOMER);
	char path[256], reason[512], errstr[512];

	/* The disk "fails": new/ is gone, so the rename cannot happen. */
	snprintf(path, sizeof(path), "%s/new", fx.root);
	ck_assert_int_eq(rmdir(path), 0);
	ck_assert_int_eq(handle(placed, reason, sizeof(reason)), ES_HANDLER_RETRY);
	ck_assert_msg(strstr(reason, "cannot move"), "%s", reason);
	ck_assert_int_eq(files_in("tmp"), 0);
	ck_assert_int_eq(outbox_rows(), 0);
	ck_assert_int_eq(sent_rows(fx.order), 0);
	/* The inbox claim rolled back with the rest, so the retry is new. */
	ck_assert_int_eq(count("SELECT count(*) AS n FROM es_inbox", NULL), 0);

	ck_assert_msg(email_maildir_prepare(fx.root, errstr, sizeof(errstr)) == 0, "%s", errstr);
	handle_ok(placed);
	ck_assert_int_eq(files_in("new"), 1);
	ck_assert_int_eq(outbox_rows(), 1);
	es_event_free(placed);
}
END_TEST

/* ---------------------------------------------------------------- GET API */

struct body {
	char data[8192];
	size_t len;
};

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = size * n;

	if (len > sizeof(b->data) - 1 - b->len)
		len = sizeof(b->data) - 1 - b->len;
	memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return size * n;
}

/* GETs path from the server; returns the status, the body in b. */
static long get(unsigned short port, const char *path, struct body *b)
{
	char url[256];
	long status = 0;
	CURL *curl = curl_easy_init();

	ck_assert_ptr_nonnull(curl);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
	memset(b, 0, sizeof(*b));
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
	ck_assert_int_eq(curl_easy_perform(curl), CURLE_OK);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	return status;
}

START_TEST(get_emails_lists_what_was_sent)
{
	struct es_event *placed = order_placed(fx.order, CUSTOMER);
	struct es_event *confirmed = order_confirmed(fx.order);
	struct es_dbpool *pool = es_dbpool_new(conninfo, fx.schema, 2);
	struct es_http_conf conf;
	struct es_http *http;
	char errstr[512], path[128];
	struct body b;
	json_t *doc, *emails, *first;
	long long ms;

	handle_ok(placed);
	handle_ok(confirmed);
	ck_assert_ptr_nonnull(pool);
	es_http_conf_init(&conf);
	conf.bind_addr = "127.0.0.1";
	conf.db_pool = pool;
	http = es_http_new(&conf, errstr, sizeof(errstr));
	ck_assert_msg(http, "%s", errstr);
	ck_assert_int_eq(email_api_routes(http, errstr, sizeof(errstr)), 0);
	ck_assert_msg(es_http_start(http, errstr, sizeof(errstr)) == 0, "%s", errstr);

	snprintf(path, sizeof(path), "/emails?orderId=%s", fx.order);
	ck_assert_int_eq(get(es_http_port(http), path, &b), 200);
	doc = json_loads(b.data, 0, NULL);
	ck_assert_msg(doc, "not JSON: %s", b.data);
	emails = json_object_get(doc, "emails");
	ck_assert_int_eq(json_array_size(emails), 2);
	first = json_array_get(emails, 0);
	ck_assert_str_eq(json_string_value(json_object_get(first, "orderId")), fx.order);
	ck_assert_str_eq(json_string_value(json_object_get(first, "template")), "order-received");
	ck_assert_str_eq(json_string_value(json_object_get(first, "to")), CUSTOMER);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(first, "messageId")),
				     ".order-received@eventshop.local>"));
	ck_assert_int_eq(es_time_parse(json_string_value(json_object_get(first, "sentAt")), &ms),
			 0);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(emails, 1), "template")),
			 "order-confirmed");
	json_decref(doc);

	ck_assert_int_eq(get(es_http_port(http), "/emails?orderId=no-such-order", &b), 200);
	doc = json_loads(b.data, 0, NULL);
	ck_assert_msg(doc, "not JSON: %s", b.data);
	ck_assert(json_is_array(json_object_get(doc, "emails")));
	ck_assert_int_eq(json_array_size(json_object_get(doc, "emails")), 0);
	json_decref(doc);
	ck_assert_int_eq(get(es_http_port(http), "/emails", &b), 400);
	ck_assert_int_eq(get(es_http_port(http), "/emails?orderId=a%2F..", &b), 400);

	es_http_free(http);
	es_dbpool_free(pool);
	es_event_free(confirmed);
	es_event_free(placed);
}
END_TEST

static Suite *handler_suite(void)
{
	Suite *s = suite_create("email handler (PostgreSQL)");
	TCase *tc = tcase_create("handler");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, order_placed_sends_order_received_with_email_sent_in_outbox);
	tcase_add_test(tc, the_same_event_twice_sends_one_email);
	tcase_add_test(tc, redelivery_after_a_lost_commit_replaces_the_same_file);
	tcase_add_test(tc, refund_before_order_placed_waits_then_both_are_sent);
	tcase_add_test(tc, one_batch_of_two_orders_sends_each_email_once);
	tcase_add_test(tc, a_rejected_event_leaves_the_rest_of_its_batch_as_one_at_a_time);
	tcase_add_test(tc, order_confirmed_sends_order_confirmed);
	tcase_add_test(tc, order_cancelled_sends_the_reason_in_words);
	tcase_add_test(tc, shipment_dispatched_sends_order_shipped_with_the_tracking_number);
	tcase_add_test(tc, other_known_types_do_nothing_and_bad_events_are_rejected);
	tcase_add_test(tc, failed_delivery_is_retried_and_records_nothing);
	tcase_add_test(tc, get_emails_lists_what_was_sent);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int rc;

	if (!es_test_database_url())
		return ES_TEST_SKIP;
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return 1;
	es_log_init("it_email_handler", ES_LOG_WARN);
	rc = es_test_run_with_db(handler_suite(), &conninfo);
	curl_global_cleanup();
	return rc;
}
