/*
 * Fault injection (harness.c), 2: garbage bytes, events of unknown types
 * and well-formed CloudEvents that break the schema, published to all five
 * topics during the load: each is dead-lettered by exactly the services
 * that must, nothing else is; then the invariants (invariants.h).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "es/envelope.h"
#include "es/events.h"
#include "es/consumer.h"
#include "es/kafka.h"
#include "harness.h"
#include "invariants.h"
#include "testkafka.h"

/* ------------------- 2. garbage and schema violations during the load */

#define BY(s) (1u << (s))
/* Who consumes each topic (README: services, topics and events). */
#define READS_ORDERS                                                                   \
	(BY(SHOP_PAYMENT) | BY(SHOP_INVENTORY) | BY(SHOP_EMAIL) | BY(SHOP_ANALYTICS) | \
	 BY(SHOP_SHIPPING))
/* OrderPlaced: shipping-service acts on no OrderPlaced, so checks none. */
#define READS_ORDER_PLACED (READS_ORDERS & ~BY(SHOP_SHIPPING))
#define READS_PAYMENTS (BY(SHOP_ORDER) | BY(SHOP_EMAIL) | BY(SHOP_ANALYTICS))
#define READS_INVENTORY (BY(SHOP_ORDER) | BY(SHOP_ANALYTICS))
#define READS_NOTIFICATIONS (BY(SHOP_ANALYTICS))
#define READS_SHIPMENTS (BY(SHOP_EMAIL) | BY(SHOP_ANALYTICS))

struct injected {
	const char *topic;
	char key[40];
	char *value; /* NULL: a message without a value */
	size_t len;
	unsigned expect; /* BY(service) of every service that must dead-letter it */
	unsigned found; /* BY(service) of the dead letters seen */
	char what[64];
};

struct injector {
	struct load *l;
	struct shop *shop;
	struct es_producer *p;
	struct injected msg[256];
	int n, failures, rounds;
	unsigned seed;
};

static void inject(struct injector *in, const char *topic, const char *key, const void *value,
		   size_t len, unsigned expect, const char *what, const struct es_event *ev)
{
	struct injected *m;
	char err[256];
	int rc;

	if (in->n == (int)(sizeof(in->msg) / sizeof(in->msg[0]))) {
		in->failures++;
		return;
	}
	m = &in->msg[in->n];
	*m = (struct injected){.topic = topic, .len = len, .expect = expect};
	snprintf(m->key, sizeof(m->key), "%s", key);
	snprintf(m->what, sizeof(m->what), "%s", what);
	if (value) {
		m->value = malloc(len ? len : 1);
		memcpy(m->value, value, len);
	}
	if (ev)
		rc = es_producer_send_event(in->p, topic, key, value, ev->id, ev->type, ev->source,
					    NULL, err, sizeof(err));
	else
		rc = es_producer_send_raw(in->p, topic, key, strlen(key), value, len, NULL, NULL,
					  err, sizeof(err));
	if (rc) {
		fprintf(stderr, "injecting %s: %s\n", what, err);
		free(m->value);
		in->failures++;
		return;
	}
	in->n++;
}

/* A well-formed CloudEvent (valid envelope) with the given data, about
 * order subject, sent with subject as its key. */
static void inject_event(struct injector *in, const char *topic, const char *service,
			 const char *type, const char *subject, json_t *data, unsigned expect,
			 const char *what)
{
	struct es_event *ev = es_event_new(service, type, subject, NULL, NULL, data);
	char *value = ev ? es_event_serialize(ev) : NULL;

	if (!value) {
		in->failures++;
	} else {
		inject(in, topic, subject, value, strlen(value), expect, what, ev);
	}
	free(value);
	es_event_free(ev);
}

/* Bytes that are no CloudEvent, four kinds, on topic. */
static void inject_garbage(struct injector *in, const char *topic, unsigned readers)
{
	static const char text[] = "this is not JSON {";
	static const char object[] = "{\"hello\":\"world\"}";
	unsigned char bytes[48];
	char key[ES_UUID_LEN + 1];

	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (unsigned char)rand_r(&in->seed);
	es_uuid_new(key);
	inject(in, topic, key, bytes, sizeof(bytes), readers, "random bytes", NULL);
	es_uuid_new(key);
	inject(in, topic, key, text, strlen(text), readers, "text", NULL);
	es_uuid_new(key);
	inject(in, topic, key, object, strlen(object), readers, "JSON, not a CloudEvent", NULL);
	es_uuid_new(key);
	inject(in, topic, key, NULL, 0, readers, "no value", NULL);
}

/*
 * One round: garbage on all four topics, a well-formed event of a type
 * nobody knows on each, and events of known types whose data breaks the
 * schema. Who must dead-letter what: every reader of the topic for
 * garbage and unknown types; for a known type, the readers that act on
 * it (a service passes over the known types it has nothing to do with,
 * e.g. payment-service over OrderConfirmed, without validating them).
 *
 * The schema-violating events are about orders that do not exist, except
 * OrderPlaced, which is about a real order (the invariant checker takes
 * every OrderPlaced on the topic for an order that must exist).
 */
static void inject_round(struct injector *in)
{
	struct shop *sh = in->shop;
	char r[ES_UUID_LEN + 1], real[37];

	inject_garbage(in, sh->topic_orders, READS_ORDERS);
	inject_garbage(in, sh->topic_payments, READS_PAYMENTS);
	inject_garbage(in, sh->topic_inventory, READS_INVENTORY);
	inject_garbage(in, sh->topic_notifications, READS_NOTIFICATIONS);
	inject_garbage(in, sh->topic_shipments, READS_SHIPMENTS);

	/* orders */
	if (accepted_last(&in->l->acc, real))
		inject_event(in, sh->topic_orders, "order-service", ES_ORDER_PLACED, real,
			     json_pack("{s:s,s:s,s:s,s:[{s:s,s:i,s:i}],s:i,s:s,s:s}", "orderId",
				       real, "customerId", "c-inject", "customerEmail",
				       "inject@example.com", "items", "sku", "mug-classic",
				       "quantity", 0, "unitPriceCents", 1299, "totalCents", 0,
				       "currency", "EUR", "paymentToken", "tok_visa"),
			     READS_ORDER_PLACED, "OrderPlaced with quantity 0");
	es_uuid_new(r);
	inject_event(
		in, sh->topic_orders, "order-service", ES_ORDER_CANCELLED, r,
		json_pack("{s:s,s:s,s:s}", "orderId", r, "reason", "BECAUSE", "detail", "injected"),
		READS_ORDERS, "OrderCancelled with an unknown reason");
	es_uuid_new(r);
	inject_event(in, sh->topic_orders, "order-service", ES_ORDER_CONFIRMED, r,
		     json_pack("{s:s,s:s,s:s,s:i,s:s}", "orderId", r, "paymentId", "p-1",
			       "reservationId", "r-1", "totalCents", -1, "currency", "EUR"),
		     BY(SHOP_INVENTORY) | BY(SHOP_EMAIL) | BY(SHOP_ANALYTICS) | BY(SHOP_SHIPPING),
		     "OrderConfirmed with totalCents -1");
	es_uuid_new(r);
	inject_event(in, sh->topic_orders, "order-service", "OrderShipped", r,
		     json_pack("{s:s}", "orderId", r), READS_ORDERS, "unknown type OrderShipped");

	/* payments */
	es_uuid_new(r);
	inject_event(in, sh->topic_payments, "payment-service", ES_PAYMENT_PROCESSED, r,
		     json_pack("{s:s,s:s,s:i,s:s}", "orderId", r, "paymentId", "p-1", "amountCents",
			       -100, "currency", "EUR"),
		     BY(SHOP_ORDER) | BY(SHOP_ANALYTICS), "PaymentProcessed with amountCents -100");
	es_uuid_new(r);
	{
		char other[ES_UUID_LEN + 1];

		es_uuid_new(other);
		inject_event(in, sh->topic_payments, "payment-service", ES_PAYMENT_PROCESSED, r,
			     json_pack("{s:s,s:s,s:i,s:s}", "orderId", other, "paymentId", "p-1",
				       "amountCents", 100, "currency", "EUR"),
			     BY(SHOP_ORDER) | BY(SHOP_ANALYTICS),
			     "PaymentProcessed whose orderId is not its subject");
	}
	es_uuid_new(r);
	inject_event(in, sh->topic_payments, "payment-service", ES_PAYMENT_FAILED, r,
		     json_pack("{s:s,s:s,s:i,s:s}", "orderId", r, "reason", "STOLEN", "amountCents",
			       100, "currency", "EUR"),
		     BY(SHOP_ORDER) | BY(SHOP_ANALYTICS), "PaymentFailed with an unknown reason");
	es_uuid_new(r);
	inject_event(
		in, sh->topic_payments, "payment-service", ES_PAYMENT_REFUNDED, r,
		json_pack("{s:s,s:i,s:s}", "orderId", r, "amountCents", 100, "currency", "EUR"),
		READS_PAYMENTS, "PaymentRefunded without paymentId");
	es_uuid_new(r);
	inject_event(in, sh->topic_payments, "payment-service", "PaymentChargedBack", r,
		     json_pack("{s:s}", "orderId", r), READS_PAYMENTS,
		     "unknown type PaymentChargedBack");

	/* inventory */
	es_uuid_new(r);
	inject_event(in, sh->topic_inventory, "inventory-service", ES_INVENTORY_RESERVED, r,
		     json_pack("{s:s,s:s,s:[]}", "orderId", r, "reservationId", "r-1", "items"),
		     READS_INVENTORY, "InventoryReserved without items");
	es_uuid_new(r);
	inject_event(in, sh->topic_inventory, "inventory-service", ES_INVENTORY_REJECTED, r,
		     json_pack("{s:s,s:s,s:[{s:s,s:i,s:i}]}", "orderId", r, "reason",
			       "OUT_OF_STOCK", "items", "sku", "mug-classic", "requested", 0,
			       "available", 0),
		     READS_INVENTORY, "InventoryRejected with requested 0");
	es_uuid_new(r);
	inject_event(in, sh->topic_inventory, "inventory-service", "InventoryAudited", r,
		     json_pack("{s:s}", "orderId", r), READS_INVENTORY,
		     "unknown type InventoryAudited");

	/* notifications */
	es_uuid_new(r);
	inject_event(in, sh->topic_notifications, "email-service", ES_EMAIL_SENT, r,
		     json_pack("{s:s,s:s,s:s,s:s}", "orderId", r, "template", "spam", "to",
			       "inject@example.com", "messageId", "m-1"),
		     READS_NOTIFICATIONS, "EmailSent with an unknown template");
	es_uuid_new(r);
	inject_event(in, sh->topic_notifications, "email-service", "EmailBounced", r,
		     json_pack("{s:s}", "orderId", r), READS_NOTIFICATIONS,
		     "unknown type EmailBounced");

	/* shipments: email acts on ShipmentDispatched only, analytics on all */
	es_uuid_new(r);
	inject_event(in, sh->topic_shipments, "shipping-service", ES_SHIPMENT_DISPATCHED, r,
		     json_pack("{s:s,s:s,s:s,s:s}", "orderId", r, "shipmentId", r, "carrier",
			       "Pigeon Post", "trackingNumber", "ES1"),
		     READS_SHIPMENTS, "ShipmentDispatched with an unknown carrier");
	es_uuid_new(r);
	inject_event(in, sh->topic_shipments, "shipping-service", ES_SHIPMENT_CREATED, r,
		     json_pack("{s:s,s:s,s:s,s:s}", "orderId", r, "shipmentId", "ship-1", "carrier",
			       "DHL", "trackingNumber", "ES1"),
		     BY(SHOP_ANALYTICS), "ShipmentCreated whose shipmentId is not a UUID");
	es_uuid_new(r);
	inject_event(in, sh->topic_shipments, "shipping-service", "ShipmentLost", r,
		     json_pack("{s:s}", "orderId", r), READS_SHIPMENTS,
		     "unknown type ShipmentLost");
	if (es_producer_flush(in->p, 10000)) {
		fprintf(stderr, "injected messages not delivered in 10 s\n");
		in->failures++;
	}
	in->rounds++;
}

static void *injector_run(void *arg)
{
	struct injector *in = arg;
	long long at[] = {2500, 5000, 7500};

	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		long long due = in->l->start_ms + at[i];

		if (due > shop_now_ms())
			sleep_ms((long)(due - shop_now_ms()));
		inject_round(in);
	}
	return NULL;
}

static bool same_bytes(const rd_kafka_message_t *m, const struct injected *in)
{
	return m->len == in->len && (!in->len || !memcmp(m->payload, in->value, in->len)) &&
	       m->key_len == strlen(in->key) && !memcmp(m->key, in->key, m->key_len);
}

/*
 * Reads every service's DLQ and marks what it finds. Returns the number of
 * expected dead letters still missing; *extra counts dead letters that are
 * not one of the injected messages, or one more copy of one (printed).
 */
static int match_dead_letters(struct injector *in, int *extra, bool print)
{
	int missing = 0;

	*extra = 0;
	for (int i = 0; i < in->n; i++)
		in->msg[i].found = 0;
	for (int s = 0; s < SHOP_NSERVICES; s++) {
		char dlq[160], topic[200], why[512];
		bool complete;
		struct es_test_batch *b;

		snprintf(dlq, sizeof(dlq), "%s.dlq.%s", in->shop->run, shop_names[s]);
		b = es_test_kafka_read_all(bootstrap, dlq, 10000, &complete);
		for (int j = 0; j < b->n; j++) {
			const char *t = es_test_kafka_header(b->msg[j], ES_DLQ_HDR_TOPIC, topic,
							     sizeof(topic));
			int hit = -1;

			for (int i = 0; i < in->n && hit < 0; i++) {
				if (t && !strcmp(t, in->msg[i].topic) &&
				    (in->msg[i].expect & BY(s)) && !(in->msg[i].found & BY(s)) &&
				    same_bytes(b->msg[j], &in->msg[i]))
					hit = i;
			}
			if (hit >= 0) {
				in->msg[hit].found |= BY(s);
				continue;
			}
			(*extra)++;
			if (print) {
				const char *e = es_test_kafka_header(b->msg[j], ES_DLQ_HDR_ERROR,
								     why, sizeof(why));

				fprintf(stderr,
					"UNEXPECTED dead letter in %s from %s: %.*s (dlq.error: "
					"%s)\n",
					dlq, t ? t : "?",
					(int)(b->msg[j]->len > 160 ? 160 : b->msg[j]->len),
					b->msg[j]->payload ? (const char *)b->msg[j]->payload : "",
					e ? e : "?");
			}
		}
		es_test_kafka_batch_free(b);
	}
	for (int i = 0; i < in->n; i++) {
		unsigned lost = in->msg[i].expect & ~in->msg[i].found;

		for (int s = 0; s < SHOP_NSERVICES; s++) {
			if (!(lost & BY(s)))
				continue;
			missing++;
			if (print)
				fprintf(stderr,
					"MISSING dead letter: %s did not dead-letter %s on %s\n",
					shop_names[s], in->msg[i].what, in->msg[i].topic);
		}
	}
	return missing;
}

START_TEST(malformed_and_schema_violating_events_during_load)
{
	struct shop shop;
	struct load l;
	struct injector in = {.seed = (unsigned)time(NULL)};
	struct invariants_report rep = {0};
	struct client *clients;
	pthread_t injector_thread;
	long long t0 = shop_now_ms(), deadline;
	int violations = -1, missing = -1, extra = -1, expected = 0, exits = 0, crashes = 0;
	int per_service[SHOP_NSERVICES] = {0};
	bool failed = true;
	char err[256];

	if (start_shop(&shop))
		goto out;
	in.p = es_producer_new(bootstrap, "fault-injector", NULL, NULL, err, sizeof(err));
	if (!in.p) {
		fprintf(stderr, "producer: %s\n", err);
		goto out;
	}
	/* 4 clients x 75 orders, one every 133 ms each: 300 in ~10 s. */
	load_init(&l, &shop, 4, 75, 133);
	in.l = &l;
	in.shop = &shop;
	clients = load_start(&l);
	pthread_create(&injector_thread, NULL, injector_run, &in);
	load_join(&l, clients);
	pthread_join(injector_thread, NULL);
	load_print("malformed", &l);
	for (int i = 0; i < in.n; i++) {
		for (int s = 0; s < SHOP_NSERVICES; s++) {
			if (in.msg[i].expect & BY(s)) {
				per_service[s]++;
				expected++;
			}
		}
	}
	fprintf(stderr,
		"malformed: %d messages injected in %d rounds (%d failed), %d dead letters "
		"expected: order %d, payment %d, inventory %d, email %d, analytics %d, shipping "
		"%d\n",
		in.n, in.rounds, in.failures, expected, per_service[SHOP_ORDER],
		per_service[SHOP_PAYMENT], per_service[SHOP_INVENTORY], per_service[SHOP_EMAIL],
		per_service[SHOP_ANALYTICS], per_service[SHOP_SHIPPING]);

	wait_quiet(&shop, 120000, &exits, &crashes);
	violations = shop_check_invariants(&shop, l.acc.ids, l.acc.n, 90000, &rep);
	deadline = shop_now_ms() + 60000;
	do {
		missing = match_dead_letters(&in, &extra, false);
		if (missing == 0)
			break;
		sleep_ms(500);
	} while (shop_now_ms() < deadline);
	missing = match_dead_letters(&in, &extra, true);
	print_duplicates(&shop, "malformed");
	fprintf(stderr,
		"malformed: %zu accepted orders, %d on the topic (%d confirmed, %d cancelled), "
		"%d dead letters (%d expected, %d missing, %d unexpected), %d daemon exits "
		"(%d crashes), %d error log lines, %d violation(s), %.1f s\n",
		l.acc.n, rep.orders, rep.confirmed, rep.cancelled, rep.dead_letters, expected,
		missing, extra, exits, crashes, log_total(&shop, "\"level\":\"error\""), violations,
		secs_since(t0));
	failed = violations != 0 || missing != 0 || extra != 0 || exits || in.failures ||
		 in.rounds != 3 || atomic_load(&l.refused) || l.acc.n < 250;
out:
	release(&shop, failed);
	es_producer_free(in.p);
	for (int i = 0; i < in.n; i++)
		free(in.msg[i].value);
	if (in.l)
		load_free(&l);
	ck_assert_msg(!failed,
		      "malformed: %d violation(s), %d dead letters missing, %d unexpected, %d "
		      "daemon exits",
		      violations, missing, extra, exits);
}
END_TEST

int main(void)
{
	struct fault_case cases[] = {
		{"malformed_and_schema_violating_events_during_load",
		 malformed_and_schema_violating_events_during_load},
	};

	return fault_main("fault.injection.malformed", cases, sizeof(cases) / sizeof(cases[0]));
}
