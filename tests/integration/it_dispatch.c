/*
 * Integration tests of the one dispatch path (es/dispatch.h) against the
 * real database, and through the consumer loop against the real broker:
 * a batch is one transaction, a poison event in its middle is rolled back
 * and dead-lettered alone, two deliveries of one event id in one batch
 * apply once, and a RETRY takes the whole batch back.
 *
 * The effect under test is OrderCancelled's of a made-up service: one row
 * in `effects` per event and an event in the outbox, then a REJECT when the
 * event's detail says "poison" (so that only a savepoint can take the row
 * and the event back). A detail of "retry" answers RETRY instead.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/db.h"
#include "es/dispatch.h"
#include "es/envelope.h"
#include "es/events.h"
#include "es/inbox.h"
#include "es/kafka.h"
#include "es/log.h"
#include "es/metrics.h"
#include "testkafka.h"
#include "testsupport.h"

#define CONSUMER "it-dispatch"

static const char *bootstrap;
static const char *conninfo;

struct app {
	int committed; /* events the committed hook saw */
	size_t largest_batch; /* the most events one es_dispatch_batch call had */
	struct es_dispatch *dispatch;
};

static enum es_handler_result cancelled(struct es_effect *fx)
{
	const char *detail = es_data_str(fx->ev, "detail");

	if (es_db_exec(fx->db, "INSERT INTO effects (event_id, detail) VALUES ($1, $2)", 2,
		       (const char *const[]){fx->ev->id, detail}, fx->reason,
		       sizeof(fx->reason)) != 1)
		return es_effect_db_failed(fx);
	if (es_effect_emit(fx, "it-dispatch", "it-dispatch", ES_ORDER_CANCELLED,
			   json_pack("{s:s}", "detail", detail)) != ES_HANDLER_OK)
		return ES_HANDLER_RETRY;
	if (!strcmp(detail, "poison")) {
		snprintf(fx->reason, sizeof(fx->reason), "poison, as the test asked");
		return ES_HANDLER_REJECT;
	}
	if (!strcmp(detail, "retry")) {
		snprintf(fx->reason, sizeof(fx->reason), "the test asked for a retry");
		return ES_HANDLER_RETRY;
	}
	return ES_HANDLER_OK;
}

static void committed(struct es_effect *fx)
{
	((struct app *)fx->app)->committed++;
}

static const struct es_dispatch_rule rules[] = {
	{ES_ORDER_CANCELLED, cancelled},
	{NULL, NULL},
};

static const struct es_handlers handlers = {.rules = rules, .committed = committed};

/* A schema of its own with the inbox and the effects table. */
struct fixture {
	char schema[64];
	struct es_db *db;
	struct app app;
	struct es_dispatch dispatch;
};

static void setup(struct fixture *f)
{
	char err[512];

	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(es_test_unique_name(f->schema, sizeof(f->schema), "dp"), 0);
	f->db = es_db_connect(conninfo, f->schema, 10000, err, sizeof(err));
	ck_assert_msg(f->db != NULL, "%s", err);
	ck_assert_msg(es_db_migrate(f->db, NULL, err, sizeof(err)) >= 0, "%s", err);
	ck_assert_int_ge(es_db_exec(f->db, "CREATE TABLE effects (event_id text, detail text)", 0,
				    NULL, err, sizeof(err)),
			 0);
	f->dispatch = (struct es_dispatch){
		.consumer = CONSUMER, .db = f->db, .handlers = &handlers, .app = &f->app};
	f->app.dispatch = &f->dispatch;
}

static struct es_event *cancel_event(const char *detail)
{
	char order[ES_UUID_LEN + 1];
	struct es_event *ev;

	es_uuid_new(order);
	ev = es_event_new("order-service", ES_ORDER_CANCELLED, order, NULL, NULL,
			  json_pack("{s:s, s:s, s:s}", "orderId", order, "reason",
				    "CUSTOMER_REQUEST", "detail", detail));
	ck_assert_ptr_nonnull(ev);
	return ev;
}

static long effects(struct fixture *f, const char *detail)
{
	return es_test_count(f->db, "SELECT count(*) AS n FROM effects WHERE detail = $1", 1,
			     (const char *const[]){detail});
}

/* The details of the events in the outbox, in id order ("" when none). */
static char *outbox(struct fixture *f)
{
	char err[512];
	PGresult *res = es_db_query(
		f->db,
		"SELECT coalesce(string_agg(payload::json->'data'->>'detail', ','"
		" ORDER BY id), '') AS d FROM es_outbox",
		0, NULL, err, sizeof(err));
	char *d;

	ck_assert_msg(res != NULL, "%s", err);
	d = strdup(es_db_get(res, 0, "d"));
	PQclear(res);
	return d;
}

static void assert_outbox(struct fixture *f, const char *want)
{
	char *got = outbox(f);

	ck_assert_str_eq(got, want);
	free(got);
}

static long inbox(struct fixture *f)
{
	return es_test_count(f->db, "SELECT count(*) AS n FROM es_inbox WHERE consumer = $1", 1,
			     (const char *const[]){CONSUMER});
}

/* ------------------------------------------------------------------------ */
/* The dispatcher on the database alone                                     */
/* ------------------------------------------------------------------------ */

START_TEST(poison_in_a_batch_goes_alone_and_its_neighbours_commit)
{
	const char *details[5] = {"a", "b", "poison", "c", "d"};
	struct es_batch_item items[5] = {0};
	struct es_event *evs[5];
	struct fixture f;
	char reason[512];

	setup(&f);
	for (int i = 0; i < 5; i++) {
		evs[i] = cancel_event(details[i]);
		items[i].ev = evs[i];
	}
	ck_assert_int_eq(es_dispatch_batch(&f.dispatch, items, 5, reason, sizeof(reason)),
			 ES_HANDLER_OK);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(items[i].result, i == 2 ? ES_HANDLER_REJECT : ES_HANDLER_OK);
		ck_assert_int_eq(effects(&f, details[i]), i == 2 ? 0 : 1);
	}
	ck_assert_msg(strstr(items[2].reason, "poison, as the test asked"), "%s", items[2].reason);
	ck_assert_int_eq(f.app.committed, 4);
	/* The poison's claim went with its effect: corrected, it applies. */
	ck_assert_int_eq(inbox(&f), 4);
	/* The batch's events went in with one statement, in the order they
	 * were emitted, the poison's left out. */
	assert_outbox(&f, "a,b,c,d");

	/* The same batch again: four duplicates, and the poison again. */
	f.app.committed = 0;
	ck_assert_int_eq(es_dispatch_batch(&f.dispatch, items, 5, reason, sizeof(reason)),
			 ES_HANDLER_OK);
	ck_assert_int_eq(items[2].result, ES_HANDLER_REJECT);
	ck_assert_int_eq(f.app.committed, 0);
	ck_assert_int_eq(effects(&f, "a"), 1);
	assert_outbox(&f, "a,b,c,d");
	for (int i = 0; i < 5; i++)
		es_event_free(evs[i]);
	es_db_free(f.db);
}
END_TEST

START_TEST(two_deliveries_of_one_event_in_a_batch_apply_once)
{
	struct es_event *a = cancel_event("a"), *b = cancel_event("b");
	struct es_batch_item items[4] = {{.ev = a}, {.ev = b}, {.ev = a}, {.ev = a}};
	struct fixture f;
	char reason[512];

	setup(&f);
	ck_assert_int_eq(es_dispatch_batch(&f.dispatch, items, 4, reason, sizeof(reason)),
			 ES_HANDLER_OK);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(items[i].result, ES_HANDLER_OK);
	ck_assert_int_eq(effects(&f, "a"), 1);
	ck_assert_int_eq(effects(&f, "b"), 1);
	ck_assert_int_eq(f.app.committed, 2);
	ck_assert_int_eq(inbox(&f), 2);
	assert_outbox(&f, "a,b");
	es_event_free(a);
	es_event_free(b);
	es_db_free(f.db);
}
END_TEST

START_TEST(a_retry_takes_the_whole_batch_back)
{
	struct es_event *a = cancel_event("a"), *r = cancel_event("retry");
	struct es_batch_item items[2] = {{.ev = a}, {.ev = r}};
	struct fixture f;
	char reason[512];

	setup(&f);
	ck_assert_int_eq(es_dispatch_batch(&f.dispatch, items, 2, reason, sizeof(reason)),
			 ES_HANDLER_RETRY);
	ck_assert_msg(strstr(reason, "the test asked for a retry"), "%s", reason);
	ck_assert_int_eq(effects(&f, "a"), 0);
	ck_assert_int_eq(inbox(&f), 0);
	assert_outbox(&f, "");
	ck_assert_int_eq(f.app.committed, 0);
	es_event_free(a);
	es_event_free(r);
	es_db_free(f.db);
}
END_TEST

START_TEST(checks_reject_before_the_transaction)
{
	struct es_event *unknown = cancel_event("a"), *shapeless = cancel_event("b");
	struct es_event *ignored = es_event_new("order-service", ES_ORDER_CONFIRMED,
						unknown->subject, NULL, NULL, json_object());
	struct es_batch_item items[3] = {{.ev = unknown}, {.ev = shapeless}, {.ev = ignored}};
	struct fixture f;
	char reason[512];

	setup(&f);
	free(unknown->type);
	unknown->type = strdup("OrderTeleported");
	json_object_del(shapeless->data, "reason");
	ck_assert_int_eq(es_dispatch_batch(&f.dispatch, items, 3, reason, sizeof(reason)),
			 ES_HANDLER_OK);
	ck_assert_int_eq(items[0].result, ES_HANDLER_REJECT);
	ck_assert_msg(strstr(items[0].reason, "unknown event type OrderTeleported"), "%s",
		      items[0].reason);
	ck_assert_int_eq(items[1].result, ES_HANDLER_REJECT);
	ck_assert_msg(strstr(items[1].reason, "reason"), "%s", items[1].reason);
	/* Known but not in the table: nothing to do, not even an inbox row. */
	ck_assert_int_eq(items[2].result, ES_HANDLER_OK);
	ck_assert_int_eq(inbox(&f), 0);
	es_event_free(unknown);
	es_event_free(shapeless);
	es_event_free(ignored);
	es_db_free(f.db);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Through the consumer loop, on the real broker                            */
/* ------------------------------------------------------------------------ */

/* es_batch_fn: the dispatcher, noting the largest batch it was given. */
static enum es_handler_result measured(void *arg, struct es_batch_item *items, size_t n,
				       char *reason, size_t size)
{
	struct app *app = arg;

	if (n > app->largest_batch)
		app->largest_batch = n;
	return es_dispatch_batch(app->dispatch, items, n, reason, size);
}

START_TEST(a_poison_mid_batch_from_kafka_is_dead_lettered_alone)
{
	enum { N = 9, POISON = 4 };
	char topic[64], dlq[80], group[64], err[512], buf[256];
	struct es_event *evs[N];
	struct es_test_batch *dead;
	struct es_producer *p;
	struct es_consumer *c;
	struct fixture f;

	setup(&f);
	ck_assert_int_eq(es_test_unique_name(topic, sizeof(topic), "it_dispatch"), 0);
	ck_assert_int_eq(es_test_unique_name(group, sizeof(group), "it_dispatch"), 0);
	snprintf(dlq, sizeof(dlq), "dlq.%s", topic);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, topic, 1), 0);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, dlq, 1), 0);
	p = es_producer_new(bootstrap, "it-dispatch", NULL, NULL, err, sizeof(err));
	ck_assert_msg(p != NULL, "%s", err);
	for (int i = 0; i < N; i++) {
		char detail[16];

		snprintf(detail, sizeof(detail), "%s", i == POISON ? "poison" : "good");
		evs[i] = cancel_event(detail);
		ck_assert_int_eq(es_producer_send(p, topic, evs[i], NULL, err, sizeof(err)), 0);
	}
	/* The first event once more, at the end: a redelivery. */
	ck_assert_int_eq(es_producer_send(p, topic, evs[0], NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(es_producer_flush(p, 20000), 0);
	es_producer_free(p);

	c = es_consumer_new(&(struct es_consumer_config){.bootstrap = bootstrap,
							 .group_id = group,
							 .topics = (const char *[]){topic, NULL},
							 .service = CONSUMER,
							 .dlq_topic = dlq,
							 .handler = measured,
							 .handler_arg = &f.app,
							 .retry_initial_ms = 20,
							 .retry_max_ms = 100},
			    err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	for (int i = 0; i < 600 && f.app.committed + 1 < N; i++)
		ck_assert_int_eq(es_consumer_poll(c, 100, NULL, err, sizeof(err)), 0);
	es_consumer_free(c);

	/* The events were read before the consumer started: one fetch holds
	 * them all, so the poison had neighbours on both sides. */
	ck_assert_uint_ge(f.app.largest_batch, POISON + 2);
	ck_assert_int_eq(f.app.committed, N - 1);
	ck_assert_int_eq(effects(&f, "good"), N - 1);
	ck_assert_int_eq(effects(&f, "poison"), 0);
	ck_assert_int_eq(inbox(&f), N - 1);
	ck_assert_int_eq(es_test_kafka_committed(bootstrap, group, topic, 0), N + 1);
	dead = es_test_kafka_read(bootstrap, dlq, 1, 20000);
	ck_assert_int_eq(dead->n, 1);
	ck_assert_str_eq(es_test_kafka_header(dead->msg[0], ES_DLQ_HDR_ERROR, buf, sizeof(buf)),
			 "poison, as the test asked");
	es_test_kafka_batch_free(dead);
	for (int i = 0; i < N; i++)
		es_event_free(evs[i]);
	es_db_free(f.db);
}
END_TEST

int main(void)
{
	Suite *s;
	TCase *db, *kafka;

	es_log_init("it-dispatch", ES_LOG_ERROR);
	if (!es_test_database_url())
		return ES_TEST_SKIP;
	bootstrap = es_test_kafka_bootstrap();
	s = suite_create("dispatch");
	db = tcase_create("database");
	tcase_set_timeout(db, 60);
	tcase_add_test(db, poison_in_a_batch_goes_alone_and_its_neighbours_commit);
	tcase_add_test(db, two_deliveries_of_one_event_in_a_batch_apply_once);
	tcase_add_test(db, a_retry_takes_the_whole_batch_back);
	tcase_add_test(db, checks_reject_before_the_transaction);
	suite_add_tcase(s, db);
	if (bootstrap) {
		kafka = tcase_create("kafka");
		tcase_set_timeout(kafka, 120);
		tcase_add_test(kafka, a_poison_mid_batch_from_kafka_is_dead_lettered_alone);
		suite_add_tcase(s, kafka);
	}
	return es_test_run_with_db(s, &conninfo);
}
