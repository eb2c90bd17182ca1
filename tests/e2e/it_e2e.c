/*
 * End to end: the six daemons as separate processes on the real broker
 * and the real database, driven through the front door, checked through
 * the APIs, the topics and the maildir, and finally against the contract's
 * seven invariants and shipping's (invariants.h).
 *
 * Two shops: "main" (default saga timeout) for the saga paths, errors,
 * duplicates, dead letters, two instances per group and the concurrency
 * test; "timeout" (a 3 s saga timeout) for customer cancel and the timeout
 * with payment-service stopped. The tests share the shops and run in one
 * process (CK_FORK=no), in order; the last ones check the invariants over
 * everything the others did.
 */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libpq-fe.h>

#include "es/auth.h"
#include "es/kafka.h"
#include "es/log.h"
#include "invariants.h"
#include "shop.h"
#include "testkafka.h"
#include "testsupport.h"

#define SAGA_DEADLINE_MS 60000
#define MAX_ORDERS 1024

static struct shop shop_main, shop_timeout;
static char accepted_main[MAX_ORDERS][37], accepted_timeout[64][37];
static size_t n_main, n_timeout;
static pthread_mutex_t accepted_lock = PTHREAD_MUTEX_INITIALIZER;

static void remember(char (*list)[37], size_t *n, const char *id)
{
	pthread_mutex_lock(&accepted_lock);
	snprintf(list[(*n)++], 37, "%s", id);
	pthread_mutex_unlock(&accepted_lock);
}

static char *order_body(const char *sku, int quantity, const char *token)
{
	static char body[512];

	snprintf(body, sizeof(body),
		 "{\"customerId\":\"c-e2e\",\"customerEmail\":\"ada@example.com\","
		 "\"paymentToken\":\"%s\",\"items\":[{\"sku\":\"%s\",\"quantity\":%d}]}",
		 token, sku, quantity);
	return body;
}

/* Places an order on the main shop and returns its terminal JSON. */
static json_t *place_and_wait(const char *sku, int quantity, const char *token)
{
	char id[37];
	json_t *o;

	ck_assert_int_eq(shop_place(&shop_main, order_body(sku, quantity, token), NULL, id), 202);
	remember(accepted_main, &n_main, id);
	o = shop_wait_terminal(&shop_main, id, SAGA_DEADLINE_MS);
	ck_assert_msg(o != NULL, "order %s never became terminal", id);
	return o;
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Waits until the order's timeline holds an event of type. */
static bool timeline_has(const struct shop *shop, const char *id, const char *type, int timeout_ms)
{
	char url[200];
	long long deadline = shop_now_ms() + timeout_ms;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/orders/%s", shop->port[SHOP_ORDER][0], id);
	while (shop_now_ms() < deadline) {
		json_t *o = NULL;
		json_t *tl;
		size_t i;
		json_t *e;
		bool found = false;

		shop_http("GET", url, NULL, NULL, &o);
		tl = json_object_get(o, "timeline");
		json_array_foreach(tl, i, e)
		{
			found |= !strcmp(str(e, "type"), type);
		}
		json_decref(o);
		if (found)
			return true;
		nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
	}
	return false;
}

static bool mail_exists(const struct shop *shop, const char *id, const char *tmpl, int timeout_ms)
{
	char path[600];
	struct stat st;
	long long deadline = shop_now_ms() + timeout_ms;

	snprintf(path, sizeof(path), "%s/new/%s.%s.eml", shop->maildir, id, tmpl);
	while (shop_now_ms() < deadline) {
		if (stat(path, &st) == 0)
			return true;
		nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
	}
	return false;
}

/* ------------------------------------------------------------ saga paths */

START_TEST(confirmed_order_takes_stock_charges_once_and_mails)
{
	json_t *o = place_and_wait("mug-classic", 2, "tok_visa");
	const char *id = str(o, "orderId");

	ck_assert_str_eq(str(o, "status"), "CONFIRMED");
	ck_assert(json_is_null(json_object_get(o, "cancelReason")));
	ck_assert_int_eq(json_integer_value(json_object_get(o, "totalCents")), 2 * 1299);
	ck_assert(timeline_has(&shop_main, id, "PaymentProcessed", 5000));
	ck_assert(timeline_has(&shop_main, id, "InventoryReserved", 5000));
	ck_assert(timeline_has(&shop_main, id, "OrderConfirmed", 5000));
	ck_assert(mail_exists(&shop_main, id, "order-received", 20000));
	ck_assert(mail_exists(&shop_main, id, "order-confirmed", 20000));
	json_decref(o);
}
END_TEST

START_TEST(declined_card_cancels_and_gives_the_stock_back)
{
	json_t *o = place_and_wait("hoodie-eda", 1, "tok_declined");
	const char *id = str(o, "orderId");

	ck_assert_str_eq(str(o, "status"), "CANCELLED");
	ck_assert_str_eq(str(o, "cancelReason"), "PAYMENT_DECLINED");
	ck_assert(timeline_has(&shop_main, id, "PaymentFailed", 5000));
	ck_assert(mail_exists(&shop_main, id, "order-cancelled", 20000));
	/* The reservation (if inventory was first) is released: invariant 4
	 * at the end checks the stock itself. */
	json_decref(o);
}
END_TEST

START_TEST(poster_over_stock_is_cancelled_and_the_charge_refunded)
{
	json_t *o = place_and_wait("poster-limited", 6, "tok_visa");
	const char *id = str(o, "orderId");

	ck_assert_str_eq(str(o, "status"), "CANCELLED");
	ck_assert_str_eq(str(o, "cancelReason"), "OUT_OF_STOCK");
	ck_assert(timeline_has(&shop_main, id, "InventoryRejected", 5000));
	ck_assert_msg(timeline_has(&shop_main, id, "PaymentRefunded", 30000),
		      "the charge of %s was not refunded", id);
	ck_assert(mail_exists(&shop_main, id, "refund-issued", 20000));
	json_decref(o);
}
END_TEST

/* ------------------------------------------------------- the front door */

static void expect_problem(long status, json_t *body, long want, const char *what)
{
	ck_assert_msg(status == want, "%s: got %ld, want %ld", what, status, want);
	ck_assert_msg(body && json_integer_value(json_object_get(body, "status")) == want &&
			      json_is_string(json_object_get(body, "title")) &&
			      json_is_string(json_object_get(body, "type")),
		      "%s: not an RFC 9457 problem body", what);
}

START_TEST(front_door_answers_every_error_with_a_problem)
{
	char url[160], big[70 * 1024];
	const char *json_hdr[] = {"Content-Type: application/json", NULL};
	const char *text_hdr[] = {"Content-Type: text/plain", NULL};
	json_t *b = NULL;
	long st;

	shop_url(&shop_main, SHOP_ORDER, url, sizeof(url));
	strcat(url, "/orders");
	st = shop_http("POST", url, "{\"customerId\":", json_hdr, &b);
	expect_problem(st, b, 400, "malformed JSON");
	json_decref(b);
	st = shop_http("POST", url, order_body("mug-classic", 1, "tok_visa"), text_hdr, &b);
	expect_problem(st, b, 415, "text/plain");
	json_decref(b);
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	st = shop_http("POST", url, big, json_hdr, &b);
	expect_problem(st, b, 413, "70 KiB body");
	json_decref(b);
	st = shop_http("POST", url, order_body("no-such-sku", 1, "tok_visa"), json_hdr, &b);
	expect_problem(st, b, 422, "unknown sku");
	ck_assert_str_eq(str(json_array_get(json_object_get(b, "errors"), 0), "pointer"),
			 "/items/0/sku");
	json_decref(b);

	shop_url(&shop_main, SHOP_ORDER, url, sizeof(url));
	strcat(url, "/orders/0b6f2c9e-51d4-4e8a-9c1f-3a7d2e6b8f40");
	st = shop_http("GET", url, NULL, NULL, &b);
	expect_problem(st, b, 404, "unknown order");
	json_decref(b);
	shop_url(&shop_main, SHOP_ORDER, url, sizeof(url));
	strcat(url, "/orders/not-a-uuid");
	st = shop_http("GET", url, NULL, NULL, &b);
	expect_problem(st, b, 400, "malformed id");
	json_decref(b);
}
END_TEST

START_TEST(cancelling_a_terminal_order_is_409)
{
	json_t *o = place_and_wait("sticker-pack", 3, "tok_ok_e2e");
	char url[200];
	json_t *b = NULL;
	long st;

	ck_assert_str_eq(str(o, "status"), "CONFIRMED");
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/orders/%s/cancel",
		 shop_main.port[SHOP_ORDER][0], str(o, "orderId"));
	st = shop_http("POST", url, NULL, NULL, &b);
	expect_problem(st, b, 409, "cancel confirmed order");
	json_decref(b);
	json_decref(o);
}
END_TEST

/* Counts the OrderPlaced events of order id on the orders topic. */
static int order_placed_count(const struct shop *shop, const char *id)
{
	bool complete;
	struct es_test_batch *b = es_test_kafka_read_all(shop->bootstrap, shop->topic_orders, 20000,
							 &complete);
	int n = 0;

	for (int i = 0; i < b->n; i++) {
		char err[128];
		struct es_event *ev = es_event_parse(b->msg[i]->payload, b->msg[i]->len, err,
						     sizeof(err));

		n += ev && !strcmp(ev->subject, id) && !strcmp(ev->type, "OrderPlaced");
		es_event_free(ev);
	}
	es_test_kafka_batch_free(b);
	return n;
}

struct racer {
	const char *key;
	long status;
	char id[37];
};

static void *race(void *arg)
{
	struct racer *r = arg;

	r->status = shop_place(&shop_main, order_body("tshirt-kafka", 1, "tok_mastercard"), r->key,
			       r->id);
	return NULL;
}

START_TEST(idempotency_key_replays_and_refuses_another_body)
{
	char key[64], first[37] = "", second[37] = "";
	struct racer racers[8];
	pthread_t t[8];
	const char *winner = NULL;
	int created = 0;
	json_t *o;

	es_test_unique_name(key, sizeof(key), "idem");
	ck_assert_int_eq(
		shop_place(&shop_main, order_body("tshirt-kafka", 1, "tok_visa"), key, first), 202);
	remember(accepted_main, &n_main, first);
	ck_assert_int_eq(
		shop_place(&shop_main, order_body("tshirt-kafka", 1, "tok_visa"), key, second),
		202);
	ck_assert_str_eq(first, second);
	ck_assert_int_eq(
		shop_place(&shop_main, order_body("tshirt-kafka", 2, "tok_visa"), key, NULL), 422);

	/* Eight clients racing with one new key: one order, the others get
	 * it replayed (202, same id) or 409 while it is in flight. */
	es_test_unique_name(key, sizeof(key), "race");
	for (int i = 0; i < 8; i++) {
		racers[i] = (struct racer){.key = key};
		pthread_create(&t[i], NULL, race, &racers[i]);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 8; i++) {
		ck_assert_msg(racers[i].status == 202 || racers[i].status == 409, "status %ld",
			      racers[i].status);
		if (racers[i].status != 202)
			continue;
		if (!created++) {
			winner = racers[i].id;
			remember(accepted_main, &n_main, winner);
		}
		/* Every 202 names the one order the key created. */
		ck_assert_str_eq(racers[i].id, winner);
	}
	ck_assert_int_ge(created, 1);
	o = shop_wait_terminal(&shop_main, first, SAGA_DEADLINE_MS);
	ck_assert(o != NULL);
	json_decref(o);
	ck_assert_int_eq(order_placed_count(&shop_main, first), 1);
	o = shop_wait_terminal(&shop_main, winner, SAGA_DEADLINE_MS);
	ck_assert(o != NULL);
	json_decref(o);
	ck_assert_int_eq(order_placed_count(&shop_main, winner), 1);
}
END_TEST

/* ------------------------------------------- duplicates and dead letters */

/* Produces value (with key) to topic, raw. */
static void produce(const char *topic, const char *key, const void *value, size_t len)
{
	char err[256];
	struct es_producer *p = es_producer_new(shop_main.bootstrap, "e2e", NULL, NULL, err,
						sizeof(err));

	ck_assert_msg(p != NULL, "%s", err);
	ck_assert_int_eq(es_producer_send_raw(p, topic, key, strlen(key), value, len, NULL, NULL,
					      err, sizeof(err)),
			 0);
	ck_assert_int_eq(es_producer_flush(p, 10000), 0);
	es_producer_free(p);
}

START_TEST(the_same_event_delivered_twice_has_its_effect_once)
{
	json_t *o = place_and_wait("mug-classic", 1, "tok_visa");
	const char *id = str(o, "orderId");
	const char *topics[] = {shop_main.topic_orders, shop_main.topic_payments,
				shop_main.topic_inventory};
	int copied = 0;

	ck_assert_str_eq(str(o, "status"), "CONFIRMED");
	/* Every event of this order, produced again byte for byte: the
	 * duplicates a producer retry or an outbox replay would make. */
	for (size_t t = 0; t < 3; t++) {
		bool complete;
		struct es_test_batch *b = es_test_kafka_read_all(shop_main.bootstrap, topics[t],
								 20000, &complete);

		for (int i = 0; i < b->n; i++) {
			if (b->msg[i]->key_len == strlen(id) &&
			    !memcmp(b->msg[i]->key, id, strlen(id))) {
				produce(topics[t], id, b->msg[i]->payload, b->msg[i]->len);
				copied++;
			}
		}
		es_test_kafka_batch_free(b);
	}
	ck_assert_int_ge(copied, 4);
	/* Invariants 2, 5 and 7 at the end prove nothing happened twice. */
	json_decref(o);
}
END_TEST

static bool dlq_has(const char *service, const char *topic, int timeout_ms)
{
	char dlq[160], hdr[256];
	long long deadline = shop_now_ms() + timeout_ms;

	snprintf(dlq, sizeof(dlq), "%s.dlq.%s", shop_main.run, service);
	while (shop_now_ms() < deadline) {
		bool complete, found = false;
		struct es_test_batch *b = es_test_kafka_read_all(shop_main.bootstrap, dlq, 5000,
								 &complete);

		for (int i = 0; i < b->n; i++) {
			const char *t = es_test_kafka_header(b->msg[i], ES_DLQ_HDR_TOPIC, hdr,
							     sizeof(hdr));

			found |= t && !strcmp(t, topic);
		}
		es_test_kafka_batch_free(b);
		if (found)
			return true;
		nanosleep(&(struct timespec){0, 200 * 1000000L}, NULL);
	}
	return false;
}

START_TEST(malformed_messages_are_dead_lettered_and_the_next_is_processed)
{
	static const char garbage[] = "{\"specversion\":\"1.0\",\"id\":\"not-a-uuid\"";
	const char *key = "0b6f2c9e-51d4-4e8a-9c1f-3a7d2e6b8f40";
	json_t *o;

	produce(shop_main.topic_orders, key, garbage, strlen(garbage));
	produce(shop_main.topic_payments, key, garbage, strlen(garbage));
	produce(shop_main.topic_inventory, key, garbage, strlen(garbage));
	produce(shop_main.topic_notifications, key, garbage, strlen(garbage));
	/* Each consumer of a topic dead-letters what arrived on it. */
	ck_assert(dlq_has("payment-service", shop_main.topic_orders, 30000));
	ck_assert(dlq_has("inventory-service", shop_main.topic_orders, 30000));
	ck_assert(dlq_has("email-service", shop_main.topic_orders, 30000));
	ck_assert(dlq_has("email-service", shop_main.topic_payments, 30000));
	ck_assert(dlq_has("order-service", shop_main.topic_payments, 30000));
	ck_assert(dlq_has("order-service", shop_main.topic_inventory, 30000));
	ck_assert(dlq_has("analytics-service", shop_main.topic_orders, 30000));
	ck_assert(dlq_has("analytics-service", shop_main.topic_notifications, 30000));
	ck_assert(dlq_has("shipping-service", shop_main.topic_orders, 30000));
	o = place_and_wait("mug-classic", 1, "tok_visa");
	ck_assert_str_eq(str(o, "status"), "CONFIRMED");
	json_decref(o);
}
END_TEST

/* ----------------------------------------------- groups and concurrency */

/* The sum of es_events_consumed_total on an instance's /metrics. */
static double consumed(const struct shop *shop, enum shop_service s, int i)
{
	char url[160];
	char *text = NULL;
	double sum = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", shop->port[s][i]);
	if (shop_get_text(url, &text) == 200) {
		for (char *line = text; line; line = strchr(line, '\n')) {
			char *close;

			line += *line == '\n';
			if (strncmp(line, "es_events_consumed_total{", 25))
				continue;
			close = strchr(line, '}');
			if (close)
				sum += strtod(close + 1, NULL);
		}
	}
	free(text);
	return sum;
}

struct loader {
	int first, count;
	const char *sku;
	const char *tokens[4];
	int confirmed;
	char ids[200][37];
	int placed;
};

static void *load(void *arg)
{
	struct loader *l = arg;

	for (int i = 0; i < l->count; i++) {
		char id[37];

		if (shop_place(&shop_main, order_body(l->sku, 1, l->tokens[(l->first + i) % 4]),
			       NULL, id) == 202) {
			remember(accepted_main, &n_main, id);
			snprintf(l->ids[l->placed++], 37, "%s", id);
		}
	}
	return NULL;
}

START_TEST(two_instances_of_payment_and_inventory_share_the_work)
{
	struct loader l[4];
	pthread_t t[4];

	ck_assert_int_eq(shop_start(&shop_main, SHOP_PAYMENT, 1), 0);
	ck_assert_int_eq(shop_start(&shop_main, SHOP_INVENTORY, 1), 0);
	for (int i = 0; i < 4; i++) {
		l[i] = (struct loader){.first = i * 15,
				       .count = 15,
				       .sku = "tshirt-kafka",
				       .tokens = {"tok_visa", "tok_declined", "tok_ok_x",
						  "tok_insufficient_funds"}};
		pthread_create(&t[i], NULL, load, &l[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 4; i++) {
		for (int j = 0; j < l[i].placed; j++) {
			json_t *o = shop_wait_terminal(&shop_main, l[i].ids[j], SAGA_DEADLINE_MS);

			ck_assert_msg(o != NULL, "order %s never became terminal", l[i].ids[j]);
			json_decref(o);
		}
	}
	for (int s = SHOP_PAYMENT; s <= SHOP_INVENTORY; s++) {
		ck_assert_msg(consumed(&shop_main, (enum shop_service)s, 0) > 0,
			      "%s instance 0 consumed nothing", shop_names[s]);
		ck_assert_msg(consumed(&shop_main, (enum shop_service)s, 1) > 0,
			      "%s instance 1 consumed nothing", shop_names[s]);
	}
}
END_TEST

START_TEST(two_hundred_concurrent_orders_sell_exactly_five_posters)
{
	struct loader *l = calloc(8, sizeof(*l));
	pthread_t t[8];
	int confirmed = 0, cancelled = 0;
	long long start = shop_now_ms(), accepted_ms;

	for (int i = 0; i < 8; i++) {
		l[i] = (struct loader){.first = 0,
				       .count = 25,
				       .sku = "poster-limited",
				       .tokens = {"tok_visa", "tok_visa", "tok_visa", "tok_visa"}};
		pthread_create(&t[i], NULL, load, &l[i]);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	accepted_ms = shop_now_ms() - start;
	for (int i = 0; i < 8; i++) {
		for (int j = 0; j < l[i].placed; j++) {
			json_t *o = shop_wait_terminal(&shop_main, l[i].ids[j], SAGA_DEADLINE_MS);

			ck_assert_msg(o != NULL, "order %s never became terminal", l[i].ids[j]);
			confirmed += !strcmp(str(o, "status"), "CONFIRMED");
			cancelled += !strcmp(str(o, "status"), "CANCELLED");
			json_decref(o);
		}
	}
	/* A figure to read, not to assert: speed is measured in benchmarks. */
	fprintf(stderr,
		"200 concurrent orders (8 clients): accepted in %lld ms, all terminal in %lld ms\n",
		accepted_ms, shop_now_ms() - start);
	ck_assert_int_eq(confirmed + cancelled, 200);
	ck_assert_int_eq(confirmed, 5);
	free(l);
}
END_TEST

/* ------------------------------------------------------------- shipping */

/* GET /shipments/{id} until its status is want; the last body (caller
 * owns) or NULL. */
static json_t *shipment_when(const char *id, const char *want, int timeout_ms)
{
	char url[200];
	long long deadline = shop_now_ms() + timeout_ms;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/shipments/%s",
		 shop_main.port[SHOP_SHIPPING][0], id);
	while (shop_now_ms() < deadline) {
		json_t *b = NULL;

		if (shop_http("GET", url, NULL, NULL, &b) == 200 && !strcmp(str(b, "status"), want))
			return b;
		json_decref(b);
		nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
	}
	return NULL;
}

/*
 * shipping-service killed (SIGKILL) while a confirmed order waits for it:
 * the order is confirmed without it (nobody waits for shipping), and once
 * started again it reads the OrderConfirmed it missed and ships it. Its
 * state is the fold of its stream: three events, versions 1 to 3. A
 * declined order gets no shipment.
 */
START_TEST(a_confirmed_order_is_shipped_across_a_kill_of_shipping)
{
	static const char *const types[] = {"ShipmentCreated", "ShipmentDispatched",
					    "ShipmentDelivered"};
	json_t *o, *declined, *s, *stream;
	char url[200];

	ck_assert_int_eq(shop_signal(&shop_main, SHOP_SHIPPING, 0, SIGKILL), 0);
	o = place_and_wait("sticker-pack", 1, "tok_visa");
	ck_assert_str_eq(str(o, "status"), "CONFIRMED");
	declined = place_and_wait("sticker-pack", 1, "tok_declined");
	ck_assert_str_eq(str(declined, "status"), "CANCELLED");
	ck_assert_int_eq(shop_start(&shop_main, SHOP_SHIPPING, 0), 0);

	s = shipment_when(str(o, "orderId"), "DELIVERED", 60000);
	ck_assert_msg(s, "order %s was not delivered", str(o, "orderId"));
	ck_assert_int_eq(json_integer_value(json_object_get(s, "version")), 3);
	stream = json_object_get(s, "stream");
	ck_assert_int_eq(json_array_size(stream), 3);
	for (size_t i = 0; i < 3; i++) {
		json_t *e = json_array_get(stream, i);

		ck_assert_str_eq(str(e, "type"), types[i]);
		ck_assert_int_eq(json_integer_value(json_object_get(e, "version")), (int)i + 1);
	}
	ck_assert(mail_exists(&shop_main, str(o, "orderId"), "order-shipped", 20000));

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/shipments/%s",
		 shop_main.port[SHOP_SHIPPING][0], str(declined, "orderId"));
	ck_assert_int_eq(shop_http("GET", url, NULL, NULL, NULL), 404);
	json_decref(s);
	json_decref(declined);
	json_decref(o);
}
END_TEST

START_TEST(main_shop_keeps_all_invariants)
{
	struct invariants_report r;

	ck_assert_int_eq(shop_check_invariants(&shop_main, accepted_main, n_main, 90000, &r), 0);
	ck_assert_int_ge(r.orders, 200);
	ck_assert_int_ge(r.dead_letters, 8);
}
END_TEST

/* ------------------------------------------ customer cancel and timeout */

START_TEST(customer_cancel_and_saga_timeout_with_payment_stopped)
{
	char cancel_id[37], timeout_id[37], url[200];
	json_t *b = NULL, *o;

	/* Without payment-service no order can be confirmed. */
	ck_assert_int_eq(shop_signal(&shop_timeout, SHOP_PAYMENT, 0, SIGTERM), 0);
	ck_assert_int_eq(shop_place(&shop_timeout, order_body("mug-classic", 1, "tok_visa"), NULL,
				    cancel_id),
			 202);
	remember(accepted_timeout, &n_timeout, cancel_id);
	ck_assert_int_eq(shop_place(&shop_timeout, order_body("hoodie-eda", 2, "tok_visa"), NULL,
				    timeout_id),
			 202);
	remember(accepted_timeout, &n_timeout, timeout_id);

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/orders/%s/cancel",
		 shop_timeout.port[SHOP_ORDER][0], cancel_id);
	ck_assert_int_eq(shop_http("POST", url, NULL, NULL, &b), 202);
	json_decref(b);
	o = shop_wait_terminal(&shop_timeout, cancel_id, 10000);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(str(o, "cancelReason"), "CUSTOMER_REQUEST");
	json_decref(o);
	ck_assert_int_eq(shop_http("POST", url, NULL, NULL, &b), 409);
	json_decref(b);

	o = shop_wait_terminal(&shop_timeout, timeout_id, 30000);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(str(o, "status"), "CANCELLED");
	ck_assert_str_eq(str(o, "cancelReason"), "TIMEOUT");
	json_decref(o);

	/* Payment comes back, charges the two orders it missed, sees them
	 * cancelled, and refunds: nothing is charged net (invariant 3). */
	ck_assert_int_eq(shop_start(&shop_timeout, SHOP_PAYMENT, 0), 0);
	ck_assert(timeline_has(&shop_timeout, timeout_id, "PaymentRefunded", 30000) ||
		  timeline_has(&shop_timeout, timeout_id, "PaymentFailed", 1000));
}
END_TEST

START_TEST(timeout_shop_keeps_all_invariants)
{
	ck_assert_int_eq(
		shop_check_invariants(&shop_timeout, accepted_timeout, n_timeout, 60000, NULL), 0);
}
END_TEST

/* Every daemon's diagnostic route: 401 problem with no token, 403 with a
 * customer's, answered with an operator's (shop_http's own). */
START_TEST(diagnostic_routes_are_for_operators)
{
	static const struct {
		enum shop_service s;
		const char *path; /* the order id follows when it ends in '/' or '=' */
	} routes[] = {
		{SHOP_PAYMENT, "/payments/"},	    {SHOP_INVENTORY, "/stock"},
		{SHOP_INVENTORY, "/reservations/"}, {SHOP_EMAIL, "/emails?orderId="},
		{SHOP_ANALYTICS, "/stats"},	    {SHOP_SHIPPING, "/shipments/"},
	};
	char customer[ES_AUTH_HEADER_MAX], err[256];
	const char *none[] = {"Authorization:", NULL}; /* curl: send no such header */
	const char *mine[] = {customer, NULL};
	json_t *o = place_and_wait("mug-classic", 1, "tok_visa");
	const char *id = str(o, "orderId");

	ck_assert_int_eq(es_auth_header_from_env(ES_AUTH_CUSTOMER, "c-e2e", 300, customer,
						 sizeof(customer), err, sizeof(err)),
			 0);
	ck_assert_msg(customer[0], "the e2e shop asks for no tokens");
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		char base[64], path[128], url[256];
		json_t *b = NULL;
		long st;

		size_t n = strlen(routes[i].path);
		bool with_id = routes[i].path[n - 1] == '/' || routes[i].path[n - 1] == '=';

		snprintf(path, sizeof(path), "%s%s", routes[i].path, with_id ? id : "");
		snprintf(url, sizeof(url), "%s%s",
			 shop_url(&shop_main, routes[i].s, base, sizeof(base)), path);
		st = shop_http("GET", url, NULL, none, &b);
		ck_assert_msg(st == 401 && json_object_get(b, "status"), "GET %s, no token: %ld",
			      path, st);
		json_decref(b);
		st = shop_http("GET", url, NULL, mine, &b);
		ck_assert_msg(st == 403 && json_object_get(b, "status"),
			      "GET %s, a customer's token: %ld", path, st);
		json_decref(b);
		/* The shipment may not exist yet: 404 is an answer too. */
		st = shop_http("GET", url, NULL, NULL, &b);
		ck_assert_msg(st == 200 || (st == 404 && routes[i].s == SHOP_SHIPPING),
			      "GET %s, an operator's token: %ld", path, st);
		json_decref(b);
	}
	json_decref(o);
}
END_TEST

/*
 * What no daemon may ever log: a bearer token (every JWT starts with the
 * base64 of {"alg"), the key they are signed with, the passwords of the
 * database roles the daemons logged in with. Those are in the passfile
 * that the database URL names (tests/infra/postgres made them), one
 * "*:*:*:role:password" line per role; up to SECRETS_MAX of them.
 */
#define SECRETS_MAX 16

static int db_passwords(char pw[SECRETS_MAX][128])
{
	PQconninfoOption *opts = PQconninfoParse(es_test_database_url(), NULL);
	char line[512];
	int n = 0;
	FILE *f = NULL;

	for (PQconninfoOption *o = opts; o && o->keyword; o++) {
		if (!strcmp(o->keyword, "passfile") && o->val)
			f = fopen(o->val, "r");
	}
	PQconninfoFree(opts);
	ck_assert_msg(f, "the database URL names no readable passfile");
	while (n < SECRETS_MAX && fgets(line, sizeof(line), f)) {
		char *p = strrchr(line, ':');

		if (!p || strlen(p + 1) < 2)
			continue;
		snprintf(pw[n], sizeof(pw[n]), "%.*s", (int)strcspn(p + 1, "\n"), p + 1);
		n++;
	}
	fclose(f);
	ck_assert_int_gt(n, 0);
	return n;
}

static int secrets_in_logs(const struct shop *shop, const char *key, char *where, size_t size)
{
	char pw[SECRETS_MAX][128];
	int npw = db_passwords(pw);

	static const char jwt_head[] = "eyJhbGci";
	DIR *d = opendir(shop->dir);
	struct dirent *e;
	int found = 0, files = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) && !found) {
		char path[600], line[65536];
		size_t n = strlen(e->d_name);
		FILE *f;

		if (n < 5 || strcmp(e->d_name + n - 4, ".log"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", shop->dir, e->d_name);
		f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		files++;
		for (int no = 1; fgets(line, sizeof(line), f); no++) {
			bool hit = strstr(line, jwt_head) || (*key && strstr(line, key));

			for (int i = 0; i < npw && !hit; i++)
				hit = strstr(line, pw[i]) != NULL;
			if (hit) {
				snprintf(where, size, "%s:%d: %.200s", e->d_name, no, line);
				found = 1;
				break;
			}
		}
		fclose(f);
	}
	closedir(d);
	ck_assert_int_gt(files, 0);
	return found;
}

START_TEST(no_log_line_holds_a_token_or_a_password)
{
	const struct shop *shops[] = {&shop_main, &shop_timeout};
	char key[256] = "", where[800];
	FILE *f = fopen(getenv("AUTH_JWT_KEY_FILE"), "r");

	/* The run used tokens all along (every request of the harness, the
	 * daemons checking them), and every daemon logged in to PostgreSQL
	 * with its role's password. */
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(key, sizeof(key), f));
	fclose(f);
	for (size_t i = 0; i < 2; i++)
		ck_assert_msg(!secrets_in_logs(shops[i], key, where, sizeof(where)),
			      "a secret in a daemon's log: %s", where);
}
END_TEST

int main(void)
{
	const char *bootstrap = es_test_kafka_bootstrap();
	const char *database_url = es_test_database_url();
	Suite *s;
	TCase *tc;
	SRunner *sr;
	int failed;

	if (!bootstrap || !database_url)
		return ES_TEST_SKIP;
	es_log_init("e2e", ES_LOG_WARN);
	setenv("CK_FORK", "no", 1);
	if (shop_init(&shop_main, bootstrap, database_url) || shop_start_all(&shop_main))
		goto fail;
	if (shop_init(&shop_timeout, bootstrap, database_url))
		goto fail;
	shop_timeout.saga_timeout_ms = 3000;
	if (shop_start_all(&shop_timeout))
		goto fail;

	s = suite_create("e2e");
	tc = tcase_create("shop");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, confirmed_order_takes_stock_charges_once_and_mails);
	tcase_add_test(tc, declined_card_cancels_and_gives_the_stock_back);
	tcase_add_test(tc, poster_over_stock_is_cancelled_and_the_charge_refunded);
	tcase_add_test(tc, front_door_answers_every_error_with_a_problem);
	tcase_add_test(tc, diagnostic_routes_are_for_operators);
	tcase_add_test(tc, cancelling_a_terminal_order_is_409);
	tcase_add_test(tc, idempotency_key_replays_and_refuses_another_body);
	tcase_add_test(tc, the_same_event_delivered_twice_has_its_effect_once);
	tcase_add_test(tc, malformed_messages_are_dead_lettered_and_the_next_is_processed);
	tcase_add_test(tc, two_instances_of_payment_and_inventory_share_the_work);
	tcase_add_test(tc, two_hundred_concurrent_orders_sell_exactly_five_posters);
	tcase_add_test(tc, a_confirmed_order_is_shipped_across_a_kill_of_shipping);
	tcase_add_test(tc, main_shop_keeps_all_invariants);
	tcase_add_test(tc, customer_cancel_and_saga_timeout_with_payment_stopped);
	tcase_add_test(tc, timeout_shop_keeps_all_invariants);
	tcase_add_test(tc, no_log_line_holds_a_token_or_a_password);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	shop_release(&shop_main);
	shop_release(&shop_timeout);
	return failed ? 1 : 0;
fail:
	shop_release(&shop_main);
	shop_release(&shop_timeout);
	return 1;
}
