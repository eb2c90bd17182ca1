/*
 * Integration tests of shipping-service's handler and sweep against a real
 * PostgreSQL (DATABASE_URL): each test gets a schema of its own with the
 * service's migrations, runs events through the dispatch path as the
 * consumer loop would, runs the sweep as the daemon's tick would, and
 * reads the stream, the to-do list and the outbox. They prove one
 * shipment per confirmed order (redeliveries, a second OrderConfirmed),
 * that the outbox carries exactly the stream's events, the steps in order
 * and once each, a cancel that stops only what has not left, an unknown
 * order, a malformed event dead-lettered, the optimistic concurrency
 * of the stream's versions, and batches that read each stream once.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/db.h"
#include "es/events.h"
#include "es/log.h"
#include "shipping.h"
#include "testsupport.h"

#define TOPIC "shipments"
#define ORDER "0b6f2c9e-51d4-4e8a-9c1f-3a7d2e6b8f40"

static const char *test_conninfo;

/* ------------------------------------------------------------------------ */
/* Fixture and helpers                                                      */
/* ------------------------------------------------------------------------ */

/* A test's world: a migrated schema, the app (no delay: every step is due
 * at once) and the dispatch path. */
struct world {
	char schema[64];
	struct es_db *db;
	struct shipping_app app;
	struct es_dispatch dispatch;
};

static void world_init(struct world *w)
{
	char errstr[512];

	ck_assert_int_eq(es_test_unique_name(w->schema, sizeof(w->schema), "ship"), 0);
	w->db = es_test_connect(test_conninfo, w->schema);
	ck_assert_msg(es_db_migrate_list(w->db, shipping_migrations, shipping_migrations_count,
					 errstr, sizeof(errstr)) >= 0,
		      "%s", errstr);
	shipping_app_init(&w->app, TOPIC, 0);
	w->dispatch = (struct es_dispatch){.consumer = SHIPPING_SERVICE,
					   .db = w->db,
					   .handlers = &shipping_handlers,
					   .app = &w->app};
}

static struct es_event *order_confirmed(const char *order_id)
{
	struct es_event *ev;

	ev = es_event_new("order-service", ES_ORDER_CONFIRMED, order_id, NULL, NULL,
			  json_pack("{s:s, s:s, s:s, s:i, s:s}", "orderId", order_id, "paymentId",
				    "pay-1", "reservationId", "res-1", "totalCents", 1299,
				    "currency", "EUR"));
	ck_assert_ptr_nonnull(ev);
	return ev;
}

static struct es_event *order_cancelled(const char *order_id)
{
	struct es_event *ev;

	ev = es_event_new("order-service", ES_ORDER_CANCELLED, order_id, NULL, NULL,
			  json_pack("{s:s, s:s, s:s}", "orderId", order_id, "reason",
				    "CUSTOMER_REQUEST", "detail", "changed my mind"));
	ck_assert_ptr_nonnull(ev);
	return ev;
}

/* Runs ev through the dispatch path as a batch of one; the result must be
 * want. */
static void handle_expect(struct world *w, const struct es_event *ev, enum es_handler_result want)
{
	char reason[512] = "";
	enum es_handler_result r = es_dispatch_one(&w->dispatch, ev, reason, sizeof(reason));

	ck_assert_msg(r == want, "%s %s: result %d, expected %d (%s)", ev->type, ev->id, r, want,
		      reason);
}

static void handle(struct world *w, const struct es_event *ev)
{
	handle_expect(w, ev, ES_HANDLER_OK);
}

static int sweep(struct world *w)
{
	char errstr[512];
	int n = shipping_sweep_once(&w->app, w->db, errstr, sizeof(errstr));

	ck_assert_msg(n >= 0, "%s", errstr);
	return n;
}

static struct shipment load(struct world *w, const char *order_id)
{
	struct shipment s;
	char errstr[512];

	ck_assert_msg(shipping_stream_load(w->db, order_id, &s, NULL, errstr, sizeof(errstr)) == 0,
		      "%s", errstr);
	return s;
}

static long count(struct world *w, const char *sql, const char *param)
{
	return es_test_count(w->db, sql, param ? 1 : 0, (const char *const[]){param});
}

static long stream_length(struct world *w, const char *order_id)
{
	return count(w, "SELECT count(*) AS n FROM shipment_events WHERE order_id = $1", order_id);
}

static long due_rows(struct world *w)
{
	return count(w, "SELECT count(*) AS n FROM shipment_due", NULL);
}

/* The stream's event ids and types, version order, against the outbox's
 * rows of the order, id order: the same events, in the same order, on
 * TOPIC, each a valid contract event caused by the one before. */
static void assert_outbox_is_the_stream(struct world *w, const char *order_id, long want)
{
	char errstr[512];
	PGresult *stream, *outbox;

	stream = es_db_query(w->db,
			     "SELECT event_id::text AS id, event_type FROM shipment_events "
			     "WHERE order_id = $1 ORDER BY version",
			     1, (const char *const[]){order_id}, errstr, sizeof(errstr));
	ck_assert_msg(stream, "%s", errstr);
	outbox = es_db_query(w->db,
			     "SELECT topic, msg_key, payload FROM es_outbox WHERE msg_key = $1 "
			     "ORDER BY id",
			     1, (const char *const[]){order_id}, errstr, sizeof(errstr));
	ck_assert_msg(outbox, "%s", errstr);
	ck_assert_int_eq(PQntuples(stream), want);
	ck_assert_int_eq(PQntuples(outbox), want);
	for (int i = 0; i < want; i++) {
		const char *payload = es_db_get(outbox, i, "payload");
		struct es_event *ev = es_event_parse(payload, strlen(payload), errstr,
						     sizeof(errstr));

		ck_assert_msg(ev, "outbox payload: %s", errstr);
		ck_assert_msg(es_event_data_check(ev, errstr, sizeof(errstr)) == 0, "%s", errstr);
		ck_assert_str_eq(es_db_get(outbox, i, "topic"), TOPIC);
		ck_assert_str_eq(ev->id, es_db_get(stream, i, "id"));
		ck_assert_str_eq(ev->type, es_db_get(stream, i, "event_type"));
		ck_assert_str_eq(ev->source, "/eventshop/shipping-service");
		es_event_free(ev);
	}
	PQclear(stream);
	PQclear(outbox);
}

/* ------------------------------------------------------------------------ */
/* A shipment's life                                                        */
/* ------------------------------------------------------------------------ */

START_TEST(confirmed_order_is_shipped_then_delivered_once_each)
{
	struct world w;
	struct es_event *confirmed;
	struct shipment s;

	world_init(&w);
	confirmed = order_confirmed(ORDER);
	handle(&w, confirmed);
	s = load(&w, ORDER);
	ck_assert_int_eq(s.status, SHIPMENT_CREATED);
	ck_assert_int_eq(s.version, 1);
	ck_assert_int_eq(due_rows(&w), 1);

	ck_assert_int_eq(sweep(&w), 1);
	ck_assert_int_eq(load(&w, ORDER).status, SHIPMENT_DISPATCHED);
	ck_assert_int_eq(sweep(&w), 1);
	s = load(&w, ORDER);
	ck_assert_int_eq(s.status, SHIPMENT_DELIVERED);
	ck_assert_int_eq(s.version, 3);
	/* Delivered is the end: nothing left to do, nothing appended. */
	ck_assert_int_eq(due_rows(&w), 0);
	ck_assert_int_eq(sweep(&w), 0);
	assert_outbox_is_the_stream(&w, ORDER, 3);

	es_event_free(confirmed);
	es_db_free(w.db);
}
END_TEST

START_TEST(order_confirmed_twice_ships_once)
{
	struct world w;
	struct es_event *first, *second;

	world_init(&w);
	first = order_confirmed(ORDER);
	second = order_confirmed(ORDER); /* another id: not a redelivery */
	handle(&w, first);
	handle(&w, first); /* a redelivery: the inbox skips it */
	handle(&w, second); /* the fold sees the shipment: nothing */
	ck_assert_int_eq(stream_length(&w, ORDER), 1);
	assert_outbox_is_the_stream(&w, ORDER, 1);

	es_event_free(second);
	es_event_free(first);
	es_db_free(w.db);
}
END_TEST

START_TEST(the_sweep_takes_only_due_steps)
{
	struct world w;
	struct es_event *confirmed;

	world_init(&w);
	w.app.delay_ms = 3600000; /* an hour: nothing is due in this test */
	confirmed = order_confirmed(ORDER);
	handle(&w, confirmed);
	ck_assert_int_eq(sweep(&w), 0);
	ck_assert_int_eq(load(&w, ORDER).status, SHIPMENT_CREATED);

	es_event_free(confirmed);
	es_db_free(w.db);
}
END_TEST

/* A to-do row whose step the stream already has (a sweep that died after
 * its commit, and a row restored by hand) decides nothing: no step twice. */
START_TEST(a_stale_due_row_takes_no_step_twice)
{
	struct world w;
	struct es_event *confirmed;

	world_init(&w);
	confirmed = order_confirmed(ORDER);
	handle(&w, confirmed);
	ck_assert_int_eq(sweep(&w), 1);
	ck_assert_int_eq(sweep(&w), 1);
	ck_assert_int_eq(
		es_db_exec(w.db, "INSERT INTO shipment_due (order_id, due_at) VALUES ($1, now())",
			   1, (const char *const[]){ORDER}, NULL, 0),
		1);
	ck_assert_int_eq(sweep(&w), 0);
	ck_assert_int_eq(due_rows(&w), 0);
	ck_assert_int_eq(stream_length(&w, ORDER), 3);

	es_event_free(confirmed);
	es_db_free(w.db);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Cancellations and bad input                                              */
/* ------------------------------------------------------------------------ */

START_TEST(order_cancelled_before_dispatch_stops_the_shipment)
{
	struct world w;
	struct es_event *confirmed, *cancelled;
	struct shipment s;

	world_init(&w);
	confirmed = order_confirmed(ORDER);
	cancelled = order_cancelled(ORDER);
	handle(&w, confirmed);
	handle(&w, cancelled);
	s = load(&w, ORDER);
	ck_assert_int_eq(s.status, SHIPMENT_CANCELLED);
	ck_assert_str_eq(s.cancel_reason, "CUSTOMER_REQUEST");
	ck_assert_int_eq(due_rows(&w), 0);
	ck_assert_int_eq(sweep(&w), 0);
	assert_outbox_is_the_stream(&w, ORDER, 2);

	es_event_free(cancelled);
	es_event_free(confirmed);
	es_db_free(w.db);
}
END_TEST

START_TEST(order_cancelled_after_dispatch_has_no_effect)
{
	struct world w;
	struct es_event *confirmed, *cancelled;

	world_init(&w);
	confirmed = order_confirmed(ORDER);
	cancelled = order_cancelled(ORDER);
	handle(&w, confirmed);
	ck_assert_int_eq(sweep(&w), 1);
	handle(&w, cancelled);
	ck_assert_int_eq(load(&w, ORDER).status, SHIPMENT_DISPATCHED);
	ck_assert_int_eq(sweep(&w), 1);
	ck_assert_int_eq(load(&w, ORDER).status, SHIPMENT_DELIVERED);
	assert_outbox_is_the_stream(&w, ORDER, 3);

	es_event_free(cancelled);
	es_event_free(confirmed);
	es_db_free(w.db);
}
END_TEST

START_TEST(order_cancelled_for_an_unknown_order_changes_nothing)
{
	struct world w;
	struct es_event *cancelled;

	world_init(&w);
	cancelled = order_cancelled(ORDER);
	handle(&w, cancelled);
	ck_assert_int_eq(stream_length(&w, ORDER), 0);
	ck_assert_int_eq(count(&w, "SELECT count(*) AS n FROM es_outbox", NULL), 0);

	es_event_free(cancelled);
	es_db_free(w.db);
}
END_TEST

START_TEST(malformed_order_confirmed_is_rejected_with_a_reason)
{
	struct world w;
	struct es_event *bad;
	char reason[512] = "";

	world_init(&w);
	bad = order_confirmed(ORDER);
	json_object_del(bad->data, "paymentId");
	ck_assert_int_eq(es_dispatch_one(&w.dispatch, bad, reason, sizeof(reason)),
			 ES_HANDLER_REJECT);
	ck_assert_msg(strstr(reason, "paymentId"), "%s", reason);
	ck_assert_int_eq(stream_length(&w, ORDER), 0);

	es_event_free(bad);
	es_db_free(w.db);
}
END_TEST

/* A stream this code did not write never folds: the event that met it is
 * dead-lettered rather than retried forever. */
START_TEST(a_stream_that_does_not_fold_rejects)
{
	struct world w;
	struct es_event *cancelled;
	char reason[512] = "";

	world_init(&w);
	ck_assert_int_eq(
		es_db_exec(w.db,
			   "INSERT INTO shipment_events (order_id, version, event_id, event_type, "
			   "event) VALUES ($1, 1, gen_random_uuid(), 'ShipmentCreated', "
			   "'{\"type\":\"ShipmentCreated\",\"data\":{}}')",
			   1, (const char *const[]){ORDER}, NULL, 0),
		1);
	cancelled = order_cancelled(ORDER);
	ck_assert_int_eq(es_dispatch_one(&w.dispatch, cancelled, reason, sizeof(reason)),
			 ES_HANDLER_REJECT);
	ck_assert_msg(strstr(reason, "stream version 1"), "%s", reason);

	es_event_free(cancelled);
	es_db_free(w.db);
}
END_TEST

/* A shipment that can never move on (its stream does not fold) does not
 * hold up the others: it is put off, and the sweep takes the next ones. */
START_TEST(a_stream_that_does_not_fold_holds_up_no_other_shipment)
{
	static const char broken[] = "6f0e1d2c-3b4a-4958-8776-655443322110";
	struct world w;
	struct es_event *confirmed;

	world_init(&w);
	ck_assert_int_eq(
		es_db_exec(w.db,
			   "INSERT INTO shipment_events (order_id, version, event_id, event_type, "
			   "event) VALUES ($1, 1, gen_random_uuid(), 'ShipmentCreated', "
			   "'{\"type\":\"ShipmentCreated\",\"data\":{}}')",
			   1, (const char *const[]){broken}, NULL, 0),
		1);
	ck_assert_int_eq(es_db_exec(w.db,
				    "INSERT INTO shipment_due (order_id, due_at) "
				    "VALUES ($1, now() - interval '1 minute')",
				    1, (const char *const[]){broken}, NULL, 0),
			 1);
	confirmed = order_confirmed(ORDER);
	handle(&w, confirmed);
	ck_assert_int_eq(sweep(&w), 1);
	ck_assert_int_eq(load(&w, ORDER).status, SHIPMENT_DISPATCHED);
	ck_assert_int_eq(count(&w,
			       "SELECT count(*) AS n FROM shipment_due "
			       "WHERE order_id = $1 AND due_at > now() + interval '30 minutes'",
			       broken),
			 1);
	ck_assert_int_eq(stream_length(&w, broken), 1);

	es_event_free(confirmed);
	es_db_free(w.db);
}
END_TEST

/* Two writers that decided from the same version: the second one's write
 * hits (order_id, version), a unique violation its caller retries; the
 * retry folds the longer stream. */
START_TEST(an_append_from_a_stale_version_is_refused)
{
	struct world w;
	struct es_event *confirmed;
	struct shipping_streams stale;
	struct es_effect fx = {0};
	enum es_handler_result r;
	json_t *data, *row, *rows = json_array();
	const char *why;
	char errstr[512];

	world_init(&w);
	confirmed = order_confirmed(ORDER);
	handle(&w, confirmed);
	ck_assert_int_eq(shipping_streams_load(w.db, &stale, (const char *const[]){ORDER}, 1,
					       errstr, sizeof(errstr)),
			 0);
	ck_assert_int_eq(stale.v[0].s.version, 1); /* CREATED */
	ck_assert_int_eq(sweep(&w), 1); /* the other writer: version 2 */

	fx.db = w.db;
	ck_assert_int_eq(es_db_begin(w.db, errstr, sizeof(errstr)), 0);
	ck_assert_str_eq(shipment_decide_progress(&stale.v[0].s, ORDER, &data, &why),
			 ES_SHIPMENT_DISPATCHED);
	r = shipping_stream_append(&fx, &stale.v[0], TOPIC, ES_SHIPMENT_DISPATCHED, data, confirmed,
				   &row);
	ck_assert_msg(r == ES_HANDLER_OK, "%d: %s", r, fx.reason);
	ck_assert_int_eq(json_array_append_new(rows, row), 0);
	ck_assert_int_eq(shipping_stream_write(w.db, rows, 0, errstr, sizeof(errstr)), -1);
	ck_assert(es_db_error_is_unique_violation(w.db));
	es_db_rollback(w.db);
	ck_assert_int_eq(stream_length(&w, ORDER), 2);
	assert_outbox_is_the_stream(&w, ORDER, 2);

	json_decref(rows);
	shipping_streams_release(&stale);
	es_event_free(confirmed);
	es_db_free(w.db);
}
END_TEST

/* The batch in hand of a_batch_that_decided_from_a_stale_stream_is_retried,
 * and its other writer. */
static struct world *racing;
static struct es_db *other_writer;

/* The service's before_effects, then the other writer's sweep, committed:
 * the batch decides from streams a version behind. */
static int read_then_race(struct es_db *db, void *app, struct es_effect *const *fresh, size_t n,
			  char *errstr, size_t errstr_size)
{
	int rc = shipping_handlers.before_effects(db, app, fresh, n, errstr, errstr_size);

	ck_assert_int_eq(shipping_sweep_once(&racing->app, other_writer, errstr, errstr_size), 1);
	return rc;
}

/* A writer that appends between the batch's read of a stream and its
 * write (the sweep of another instance) is caught by the version: the
 * batch is retried, and its retry decides from the longer stream. */
START_TEST(a_batch_that_decided_from_a_stale_stream_is_retried)
{
	struct world w;
	struct es_event *confirmed, *cancelled;
	struct es_handlers raced = shipping_handlers;
	char reason[512] = "";

	world_init(&w);
	confirmed = order_confirmed(ORDER);
	cancelled = order_cancelled(ORDER);
	handle(&w, confirmed);

	racing = &w;
	other_writer = es_test_connect(test_conninfo, w.schema);
	raced.before_effects = read_then_race;
	w.dispatch.handlers = &raced;
	ck_assert_int_eq(es_dispatch_one(&w.dispatch, cancelled, reason, sizeof(reason)),
			 ES_HANDLER_RETRY);
	ck_assert_msg(strstr(reason, "shipment_events_pkey"), "%s", reason);
	ck_assert_int_eq(stream_length(&w, ORDER), 2);

	w.dispatch.handlers = &shipping_handlers;
	handle(&w, cancelled);
	ck_assert_int_eq(load(&w, ORDER).status, SHIPMENT_DISPATCHED);
	assert_outbox_is_the_stream(&w, ORDER, 2);
	ck_assert_int_eq(due_rows(&w), 1);

	es_db_free(other_writer);
	es_event_free(cancelled);
	es_event_free(confirmed);
	es_db_free(w.db);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Batches                                                                  */
/* ------------------------------------------------------------------------ */

/* Runs evs[0..n) through the dispatch path as one batch; each result in
 * res[i]. */
static void handle_batch(struct world *w, const struct es_event *const *evs, size_t n,
			 enum es_handler_result *res)
{
	struct es_batch_item items[8];
	char reason[512] = "";

	ck_assert_uint_le(n, 8);
	for (size_t i = 0; i < n; i++)
		items[i] = (struct es_batch_item){.ev = evs[i], .d = {.attempt = 1}};
	ck_assert_msg(es_dispatch_batch(&w->dispatch, items, n, reason, sizeof(reason)) ==
			      ES_HANDLER_OK,
		      "%s", reason);
	for (size_t i = 0; i < n; i++)
		res[i] = items[i].result;
}

/* The batch reads each stream once: the second event of an order sees
 * what the first appended, as if they had come one after the other. */
START_TEST(two_events_of_one_order_in_one_batch_follow_each_other)
{
	static const char other[] = "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
	struct world w;
	struct es_event *confirmed = order_confirmed(ORDER), *cancelled = order_cancelled(ORDER);
	struct es_event *confirmed_other = order_confirmed(other);
	const struct es_event *batch[] = {confirmed, confirmed_other, cancelled};
	enum es_handler_result res[3];
	struct shipment s;

	world_init(&w);
	handle_batch(&w, batch, 3, res);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(res[i], ES_HANDLER_OK);
	s = load(&w, ORDER);
	ck_assert_int_eq(s.status, SHIPMENT_CANCELLED);
	ck_assert_int_eq(s.version, 2);
	assert_outbox_is_the_stream(&w, ORDER, 2);
	assert_outbox_is_the_stream(&w, other, 1);
	/* The cancelled shipment has no next step; the other one has. */
	ck_assert_int_eq(
		count(&w, "SELECT count(*) AS n FROM shipment_due WHERE order_id = $1", other), 1);
	ck_assert_int_eq(due_rows(&w), 1);
	/* The sweep, set-based too, moves the other one along. */
	ck_assert_int_eq(sweep(&w), 1);
	ck_assert_int_eq(load(&w, other).status, SHIPMENT_DISPATCHED);
	ck_assert_int_eq(load(&w, ORDER).version, 2);

	es_event_free(confirmed_other);
	es_event_free(cancelled);
	es_event_free(confirmed);
	es_db_free(w.db);
}
END_TEST

/* An effect that rejects runs the batch again with a SAVEPOINT per event:
 * what its neighbours appended is written once, and nothing of its own. */
START_TEST(a_rerun_after_a_reject_writes_each_append_once)
{
	static const char broken[] = "6f0e1d2c-3b4a-4958-8776-655443322110";
	struct world w;
	struct es_event *confirmed = order_confirmed(ORDER), *cancelled = order_cancelled(ORDER);
	struct es_event *cancelled_broken = order_cancelled(broken);
	const struct es_event *batch[] = {confirmed, cancelled_broken, cancelled};
	enum es_handler_result res[3];

	world_init(&w);
	ck_assert_int_eq(
		es_db_exec(w.db,
			   "INSERT INTO shipment_events (order_id, version, event_id, event_type, "
			   "event) VALUES ($1, 1, gen_random_uuid(), 'ShipmentCreated', "
			   "'{\"type\":\"ShipmentCreated\",\"data\":{}}')",
			   1, (const char *const[]){broken}, NULL, 0),
		1);
	handle_batch(&w, batch, 3, res);
	ck_assert_int_eq(res[0], ES_HANDLER_OK);
	ck_assert_int_eq(res[1], ES_HANDLER_REJECT);
	ck_assert_int_eq(res[2], ES_HANDLER_OK);
	ck_assert_int_eq(load(&w, ORDER).status, SHIPMENT_CANCELLED);
	assert_outbox_is_the_stream(&w, ORDER, 2);
	ck_assert_int_eq(stream_length(&w, broken), 1);
	ck_assert_int_eq(due_rows(&w), 0);
	ck_assert_int_eq(count(&w, "SELECT count(*) AS n FROM es_inbox", NULL), 2);

	es_event_free(cancelled_broken);
	es_event_free(cancelled);
	es_event_free(confirmed);
	es_db_free(w.db);
}
END_TEST

static Suite *handler_suite(void)
{
	Suite *s = suite_create("shipping handler (PostgreSQL)");
	TCase *life = tcase_create("life");
	TCase *bad = tcase_create("bad input");
	TCase *batch = tcase_create("batch");

	tcase_add_test(life, confirmed_order_is_shipped_then_delivered_once_each);
	tcase_add_test(life, order_confirmed_twice_ships_once);
	tcase_add_test(life, the_sweep_takes_only_due_steps);
	tcase_add_test(life, a_stale_due_row_takes_no_step_twice);
	tcase_add_test(life, an_append_from_a_stale_version_is_refused);
	tcase_add_test(life, a_batch_that_decided_from_a_stale_stream_is_retried);
	suite_add_tcase(s, life);

	tcase_add_test(batch, two_events_of_one_order_in_one_batch_follow_each_other);
	tcase_add_test(batch, a_rerun_after_a_reject_writes_each_append_once);
	suite_add_tcase(s, batch);

	tcase_add_test(bad, order_cancelled_before_dispatch_stops_the_shipment);
	tcase_add_test(bad, order_cancelled_after_dispatch_has_no_effect);
	tcase_add_test(bad, order_cancelled_for_an_unknown_order_changes_nothing);
	tcase_add_test(bad, malformed_order_confirmed_is_rejected_with_a_reason);
	tcase_add_test(bad, a_stream_that_does_not_fold_rejects);
	tcase_add_test(bad, a_stream_that_does_not_fold_holds_up_no_other_shipment);
	suite_add_tcase(s, bad);
	return s;
}

int main(void)
{
	if (!es_test_database_url())
		return ES_TEST_SKIP;
	es_log_init("it_shipping_handler", ES_LOG_WARN);
	return es_test_run_with_db(handler_suite(), &test_conninfo);
}
