#include "fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include "es/events.h"
#include "es/inbox.h"
#include "testsupport.h"

#define CONNECT_TIMEOUT_MS 10000

void shop_open(struct shop *s, const char *conninfo)
{
	struct es_http_conf conf;
	char errstr[512];

	memset(s, 0, sizeof(*s));
	ck_assert_int_eq(es_test_unique_name(s->schema, sizeof(s->schema), "ord"), 0);
	s->db = es_db_connect(conninfo, s->schema, CONNECT_TIMEOUT_MS, errstr, sizeof(errstr));
	ck_assert_msg(s->db, "connect to schema %s: %s", s->schema, errstr);
	ck_assert_msg(es_db_migrate_list(s->db, order_migrations, order_migrations_count, errstr,
					 sizeof(errstr)) >= 0,
		      "%s", errstr);
	s->svc.name = ORDER_SERVICE;
	s->svc.db = s->db;
	s->svc.metrics = es_metrics_new();
	ck_assert_ptr_nonnull(s->svc.metrics);
	ck_assert_msg(es_service_topics(&s->svc.topics, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_msg(order_app_init(&s->app, &s->svc, errstr, sizeof(errstr)) == 0, "%s", errstr);
	s->dispatch = (struct es_dispatch){.consumer = ORDER_SERVICE,
					   .db = s->db,
					   .handlers = &order_saga_handlers,
					   .app = &s->app};

	s->pool = es_dbpool_new(conninfo, s->schema, 2);
	ck_assert_ptr_nonnull(s->pool);
	es_http_conf_init(&conf);
	conf.bind_addr = "127.0.0.1";
	conf.threads = 2;
	conf.db_pool = s->pool;
	s->http = es_http_new(&conf, errstr, sizeof(errstr));
	ck_assert_msg(s->http, "%s", errstr);
	ck_assert_msg(order_api_routes(&s->app, s->http, errstr, sizeof(errstr)) == 0, "%s",
		      errstr);
	ck_assert_msg(es_http_start(s->http, errstr, sizeof(errstr)) == 0, "%s", errstr);
	s->port = es_http_port(s->http);
}

void shop_close(struct shop *s)
{
	es_http_free(s->http);
	es_dbpool_free(s->pool);
	order_app_release(&s->app);
	es_metrics_free(s->svc.metrics);
	es_db_free(s->db);
}

/* ---------------------------------------------------------- front door */

int shop_http(struct shop *s, const char *method, const char *path, const char *body_text,
	      json_t **body)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(s->port)};
	size_t body_len = body_text ? strlen(body_text) : 0;
	char req[8192], resp[65536];
	size_t len = 0;
	int fd, status = 0, n;
	const char *start;
	ssize_t r;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
		     "traceparent: " SHOP_TRACEPARENT "\r\n"
		     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
		     method, path, body_len, body_text ? body_text : "");
	ck_assert(n > 0 && (size_t)n < sizeof(req));
	ck_assert_int_eq(write(fd, req, (size_t)n), n);
	while (len + 1 < sizeof(resp) && (r = read(fd, resp + len, sizeof(resp) - 1 - len)) > 0)
		len += (size_t)r;
	resp[len] = '\0';
	close(fd);
	ck_assert_msg(sscanf(resp, "HTTP/1.1 %d", &status) == 1, "no HTTP answer: %s", resp);
	start = strstr(resp, "\r\n\r\n");
	*body = start ? json_loads(start + 4, 0, NULL) : NULL;
	return status;
}

/* The one outbox row of type for order_id, parsed. */
static struct es_event *outbox_one(struct shop *s, const char *order_id, const char *type)
{
	const char *params[2] = {order_id, type};
	char errstr[512];
	struct es_event *ev;
	const char *payload;
	PGresult *res;

	res = es_db_query(s->db,
			  "SELECT payload FROM es_outbox WHERE msg_key = $1 AND event_type = $2", 2,
			  params, errstr, sizeof(errstr));
	ck_assert_msg(res, "%s", errstr);
	ck_assert_int_eq(PQntuples(res), 1);
	payload = es_db_get(res, 0, "payload");
	ev = es_event_parse(payload, strlen(payload), errstr, sizeof(errstr));
	ck_assert_msg(ev, "%s: %s", type, errstr);
	PQclear(res);
	return ev;
}

struct es_event *shop_place(struct shop *s, const char *items, const char *token)
{
	char body[4096];
	const char *order_id;
	struct es_event *placed;
	json_t *answer;
	int status;

	snprintf(body, sizeof(body),
		 "{\"customerId\":\"c-1\",\"customerEmail\":\"ada@example.com\","
		 "\"paymentToken\":\"%s\",\"items\":%s}",
		 token, items);
	status = shop_http(s, "POST", "/orders", body, &answer);
	ck_assert_msg(status == 202, "POST /orders: %d", status);
	ck_assert_ptr_nonnull(answer);
	order_id = json_string_value(json_object_get(answer, "orderId"));
	ck_assert_ptr_nonnull(order_id);
	ck_assert_str_eq(json_string_value(json_object_get(answer, "status")), "PENDING");
	placed = outbox_one(s, order_id, ES_ORDER_PLACED);
	ck_assert_str_eq(placed->traceparent, SHOP_TRACEPARENT);
	json_decref(answer);
	return placed;
}

/* ------------------------------------------------ the other services */

/* An event of type from service, continuing cause's saga; data gets the
 * order id. */
static struct es_event *outcome(const char *service, const char *type, const struct es_event *cause,
				json_t *data)
{
	struct es_event *ev;
	char errstr[512];

	ck_assert_ptr_nonnull(data);
	json_object_set_new(data, "orderId", json_string(cause->subject));
	ev = es_event_new(service, type, cause->subject, cause, NULL, data);
	ck_assert_ptr_nonnull(ev);
	ck_assert_msg(es_event_data_check(ev, errstr, sizeof(errstr)) == 0, "%s: %s", type, errstr);
	return ev;
}

static json_t *total(const struct es_event *placed)
{
	return json_object_get(placed->data, "totalCents");
}

struct es_event *payment_processed(const struct es_event *placed)
{
	char payment_id[ES_UUID_LEN + 1];

	es_uuid_new(payment_id);
	return outcome("payment-service", ES_PAYMENT_PROCESSED, placed,
		       json_pack("{s:s, s:O, s:s}", "paymentId", payment_id, "amountCents",
				 total(placed), "currency", "EUR"));
}

struct es_event *payment_failed(const struct es_event *placed, const char *reason)
{
	return outcome("payment-service", ES_PAYMENT_FAILED, placed,
		       json_pack("{s:s, s:O, s:s}", "reason", reason, "amountCents", total(placed),
				 "currency", "EUR"));
}

/* The order's lines as {sku, quantity}, or {sku, requested, available}
 * one short of each when short. */
static json_t *lines(const struct es_event *placed, bool short_by_one)
{
	json_t *out = json_array(), *item;
	size_t i;

	json_array_foreach(json_object_get(placed->data, "items"), i, item)
	{
		json_t *sku = json_object_get(item, "sku");
		json_int_t qty = json_integer_value(json_object_get(item, "quantity"));

		json_array_append_new(
			out, short_by_one ? json_pack("{s:O, s:I, s:I}", "sku", sku, "requested",
						      qty, "available", qty - 1)
					  : json_pack("{s:O, s:I}", "sku", sku, "quantity", qty));
	}
	return out;
}

struct es_event *inventory_reserved(const struct es_event *placed)
{
	char reservation_id[ES_UUID_LEN + 1];

	es_uuid_new(reservation_id);
	return outcome("inventory-service", ES_INVENTORY_RESERVED, placed,
		       json_pack("{s:s, s:o}", "reservationId", reservation_id, "items",
				 lines(placed, false)));
}

struct es_event *inventory_rejected(const struct es_event *placed)
{
	return outcome(
		"inventory-service", ES_INVENTORY_REJECTED, placed,
		json_pack("{s:s, s:o}", "reason", "OUT_OF_STOCK", "items", lines(placed, true)));
}

struct es_event *payment_refunded(const struct es_event *cancelled, const struct es_event *charge)
{
	return outcome("payment-service", ES_PAYMENT_REFUNDED, cancelled,
		       json_pack("{s:O, s:O, s:s}", "paymentId",
				 json_object_get(charge->data, "paymentId"), "amountCents",
				 json_object_get(charge->data, "amountCents"), "currency", "EUR"));
}

struct es_event *inventory_released(const struct es_event *cancelled,
				    const struct es_event *reservation)
{
	return outcome("inventory-service", ES_INVENTORY_RELEASED, cancelled,
		       json_pack("{s:O, s:O}", "reservationId",
				 json_object_get(reservation->data, "reservationId"), "items",
				 json_object_get(reservation->data, "items")));
}

/* ------------------------------------------------------------ delivery */

enum es_handler_result shop_deliver(struct shop *s, const struct es_event *ev, char *reason,
				    size_t reason_size)
{
	enum es_handler_result r = es_dispatch_one(&s->dispatch, ev, reason, reason_size);

	ck_assert_msg(r != ES_HANDLER_RETRY, "%s %s: RETRY: %s", ev->type, ev->id, reason);
	return r;
}

void shop_deliver_ok(struct shop *s, const struct es_event *ev)
{
	char reason[512] = "";

	ck_assert_msg(shop_deliver(s, ev, reason, sizeof(reason)) == ES_HANDLER_OK,
		      "%s %s rejected: %s", ev->type, ev->id, reason);
}

void shop_deliver_batch(struct shop *s, const struct es_event *const *evs, size_t n,
			enum es_handler_result *results)
{
	struct es_batch_item *items = calloc(n, sizeof(*items));
	char reason[512] = "";

	ck_assert_ptr_nonnull(items);
	for (size_t i = 0; i < n; i++)
		items[i] = (struct es_batch_item){
			.ev = evs[i],
			.d = {.topic = "payments", .offset = (int64_t)i, .attempt = 1}};
	ck_assert_msg(es_dispatch_batch(&s->dispatch, items, n, reason, sizeof(reason)) ==
			      ES_HANDLER_OK,
		      "batch of %zu: RETRY: %s", n, reason);
	for (size_t i = 0; i < n; i++)
		results[i] = items[i].result;
	free(items);
}

/* ------------------------------------------------------------- readers */

const char *shop_order(struct shop *s, const char *order_id, const char *column, char *buf,
		       size_t size)
{
	const char *params[1] = {order_id};
	char sql[256], errstr[512];
	PGresult *res;

	snprintf(sql, sizeof(sql), "SELECT %s AS v FROM orders WHERE order_id = $1", column);
	res = es_db_query(s->db, sql, 1, params, errstr, sizeof(errstr));
	ck_assert_msg(res, "%s", errstr);
	ck_assert_msg(PQntuples(res) == 1, "order %s: %d rows", order_id, PQntuples(res));
	snprintf(buf, size, "%s", PQgetisnull(res, 0, 0) ? "" : es_db_get(res, 0, "v"));
	PQclear(res);
	return buf;
}

int shop_outbox(struct shop *s, const char *order_id, struct es_event **out, int max)
{
	const char *params[2] = {order_id, ES_ORDER_PLACED};
	char errstr[512];
	PGresult *res;
	int n;

	res = es_db_query(s->db,
			  "SELECT topic, msg_key, payload FROM es_outbox"
			  " WHERE msg_key = $1 AND event_type <> $2 ORDER BY id",
			  2, params, errstr, sizeof(errstr));
	ck_assert_msg(res, "%s", errstr);
	n = PQntuples(res);
	ck_assert_int_le(n, max);
	for (int i = 0; i < n; i++) {
		const char *payload = es_db_get(res, i, "payload");

		out[i] = es_event_parse(payload, strlen(payload), errstr, sizeof(errstr));
		ck_assert_msg(out[i], "%s", errstr);
		ck_assert_str_eq(es_db_get(res, i, "topic"), s->svc.topics.orders);
		ck_assert_str_eq(es_db_get(res, i, "msg_key"), out[i]->subject);
		ck_assert_str_eq(out[i]->source, "/eventshop/order-service");
		ck_assert_msg(es_event_data_check(out[i], errstr, sizeof(errstr)) == 0, "%s",
			      errstr);
	}
	PQclear(res);
	return n;
}

void shop_events_free(struct es_event **evs, int n)
{
	for (int i = 0; i < n; i++)
		es_event_free(evs[i]);
}

long shop_timeline(struct shop *s, const char *order_id, const char *type)
{
	const char *params[2] = {order_id, type};

	return es_test_count(s->db,
			     "SELECT count(*) AS n FROM timeline"
			     " WHERE order_id = $1 AND ($2::text IS NULL OR type = $2)",
			     2, params);
}

long shop_inbox(struct shop *s)
{
	char errstr[512];
	long n = es_inbox_count(s->db, ORDER_SERVICE, errstr, sizeof(errstr));

	ck_assert_msg(n >= 0, "%s", errstr);
	return n;
}

void assert_caused_by(const struct es_event *ev, const struct es_event *cause)
{
	ck_assert_str_eq(ev->causationid, cause->id);
	ck_assert_str_eq(ev->correlationid, ev->subject);
	ck_assert_str_eq(ev->subject, cause->subject);
	ck_assert_str_eq(ev->traceparent, SHOP_TRACEPARENT);
}

bool shop_metrics_have(struct shop *s, const char *line)
{
	char *text = es_metrics_render(s->svc.metrics, NULL);
	bool found;

	ck_assert_ptr_nonnull(text);
	found = strstr(text, line) != NULL;
	free(text);
	return found;
}
