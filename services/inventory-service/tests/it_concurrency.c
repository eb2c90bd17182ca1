/*
 * Integration tests of the inventory handler under concurrency, against a
 * real PostgreSQL (DATABASE_URL): eight threads, each with its own
 * connection, stand for instances of the service handling different
 * orders at the same time. Stock is never oversold, never goes below zero,
 * and an order gets all of its lines or none, also when a place and a
 * cancel of the same order race. Each test runs twice: with batches of
 * one event, and with batches of several orders, whose locks overlap
 * those of the other instances' batches.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "es/events.h"
#include "es/log.h"
#include "fixture.h"
#include "testsupport.h"

#define THREADS 8
#define ORDERS 40
#define BATCH_MAX 5

/* The events a worker hands the dispatch at once, per loop iteration. */
static const size_t batch_sizes[] = {1, BATCH_MAX};

static const char *conninfo;

static struct it_fixture f;

static void setup(void)
{
	it_fixture_setup(&f, conninfo, IT_CATALOG);
}

static void teardown(void)
{
	it_fixture_teardown(&f);
}

struct worker {
	pthread_t thread;
	int index; /* handles events index, index + THREADS, ... */
	size_t batch; /* that many of them per batch */
	struct es_db *db; /* its own connection */
	pthread_barrier_t *start;
	struct es_event **events;
	size_t nevents;
	enum es_handler_result *results; /* one per event, shared array */
	char (*reasons)[512];
};

/* Dispatches the worker's events from event first on: up to w->batch of
 * them in one batch. Returns the index of the next event of its own. */
static size_t dispatch_batch(struct worker *w, struct es_dispatch *d, size_t first)
{
	struct es_batch_item items[BATCH_MAX];
	size_t at[BATCH_MAX], n = 0, i;
	char reason[512] = "";
	enum es_handler_result r;

	memset(items, 0, sizeof(items));
	for (i = first; i < w->nevents && n < w->batch; i += THREADS) {
		at[n] = i;
		items[n++].ev = w->events[i];
	}
	r = es_dispatch_batch(d, items, n, reason, sizeof(reason));
	for (size_t k = 0; k < n; k++) {
		w->results[at[k]] = r == ES_HANDLER_OK ? items[k].result : r;
		snprintf(w->reasons[at[k]], sizeof(w->reasons[at[k]]), "%s",
			 r == ES_HANDLER_OK ? items[k].reason : reason);
	}
	return i;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	/* Each instance has its app, with its batch in hand; the counters
	 * are shared. */
	struct inventory inv = f.inv;
	struct es_dispatch d = {.consumer = INVENTORY_SERVICE,
				.db = w->db,
				.handlers = &inventory_handlers,
				.app = &inv};

	/* All threads start handling together, to collide as much as they
	 * can. */
	pthread_barrier_wait(w->start);
	for (size_t i = (size_t)w->index; i < w->nevents;)
		i = dispatch_batch(w, &d, i);
	inventory_release(&inv);
	return NULL;
}

struct watcher {
	pthread_t thread;
	struct es_db *db;
	const char *sku;
	atomic_int stop;
	long long min; /* the lowest stock seen */
	int samples;
};

/* Samples the stock of one sku while the workers run. */
static void *watcher_main(void *arg)
{
	struct watcher *w = arg;
	const char *params[1] = {w->sku};
	char errstr[256];

	while (!atomic_load(&w->stop)) {
		PGresult *res = es_db_query(w->db, "SELECT available FROM stock WHERE sku = $1", 1,
					    params, errstr, sizeof(errstr));
		const char *v = res && PQntuples(res) == 1 ? es_db_get(res, 0, "available") : NULL;

		if (v) {
			long long n = strtoll(v, NULL, 10);

			if (n < w->min)
				w->min = n;
			w->samples++;
		}
		PQclear(res);
	}
	return NULL;
}

/* Handles events on THREADS threads at once (event i on thread i % THREADS,
 * batch events to a batch) while watch_sku's stock is sampled; every event
 * must be handled OK. Returns the lowest stock of watch_sku seen. */
static long long run_concurrently(struct es_event **events, size_t n, size_t batch,
				  const char *watch_sku)
{
	enum es_handler_result *results = calloc(n, sizeof(*results));
	char(*reasons)[512] = calloc(n, sizeof(*reasons));
	struct worker workers[THREADS];
	struct watcher watcher = {.sku = watch_sku, .min = 1LL << 62};
	pthread_barrier_t start;

	ck_assert_ptr_nonnull(results);
	ck_assert_ptr_nonnull(reasons);
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, THREADS), 0);
	watcher.db = it_connect(conninfo, f.schema);
	ck_assert_int_eq(pthread_create(&watcher.thread, NULL, watcher_main, &watcher), 0);
	for (int t = 0; t < THREADS; t++) {
		workers[t] = (struct worker){
			.index = t,
			.batch = batch,
			.db = it_connect(conninfo, f.schema),
			.start = &start,
			.events = events,
			.nevents = n,
			.results = results,
			.reasons = reasons,
		};
		ck_assert_int_eq(pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]),
				 0);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(workers[t].thread, NULL);
		es_db_free(workers[t].db);
	}
	atomic_store(&watcher.stop, 1);
	pthread_join(watcher.thread, NULL);
	es_db_free(watcher.db);
	pthread_barrier_destroy(&start);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(results[i] == ES_HANDLER_OK, "event %zu (%s): result %d: %s", i,
			      events[i]->type, results[i], reasons[i]);
	free(results);
	free(reasons);
	ck_assert_int_gt(watcher.samples, 0);
	return watcher.min;
}

static long long count_outbox(const char *type)
{
	return it_number(f.db, "SELECT count(*) FROM es_outbox WHERE event_type = $1", type);
}

static bool metrics_have(const char *line)
{
	char *text = es_metrics_render(f.metrics, NULL);
	bool found;

	ck_assert_ptr_nonnull(text);
	found = strstr(text, line) != NULL;
	free(text);
	return found;
}

static void free_events(struct es_event **events, size_t n)
{
	for (size_t i = 0; i < n; i++)
		es_event_free(events[i]);
}

START_TEST(forty_orders_for_five_units_reserve_exactly_five)
{
	struct es_event *events[ORDERS];
	char order[ES_UUID_LEN + 1];
	long long min;

	for (int i = 0; i < ORDERS; i++) {
		it_order_id(order);
		events[i] = it_placed(order, "[{\"sku\":\"poster-limited\",\"quantity\":1}]");
	}
	min = run_concurrently(events, ORDERS, batch_sizes[_i], "poster-limited");

	ck_assert_int_ge(min, 0);
	ck_assert_int_eq(it_stock(f.db, "poster-limited"), 0);
	ck_assert_int_eq(it_number(f.db, "SELECT count(*) FROM reservations", NULL), 5);
	ck_assert_int_eq(it_number(f.db, "SELECT count(*) FROM rejections", NULL), 35);
	ck_assert_int_eq(count_outbox(ES_INVENTORY_RESERVED), 5);
	ck_assert_int_eq(count_outbox(ES_INVENTORY_REJECTED), 35);
	/* Each rejection saw the poster sold out. */
	ck_assert_int_eq(it_number(f.db,
				   "SELECT count(*) FROM rejections"
				   " WHERE (items -> 0 ->> 'available')::bigint = 0",
				   NULL),
			 35);
	ck_assert(metrics_have("es_inventory_reservations_total{outcome=\"reserved\"} 5"));
	ck_assert(metrics_have("es_inventory_reservations_total{outcome=\"rejected\"} 35"));
	free_events(events, ORDERS);
}
END_TEST

START_TEST(two_line_orders_get_all_lines_or_none_and_release_all)
{
	struct es_event *events[ORDERS], *cancels[ORDERS];
	char order[ES_UUID_LEN + 1];
	long long min;

	/* mug-classic (10) runs out, tshirt-kafka (1000) does not. Half the
	 * orders list the lines in the other order: the handler takes its
	 * locks in sku order regardless, so no two orders deadlock. */
	for (int i = 0; i < ORDERS; i++) {
		it_order_id(order);
		events[i] = it_placed(order, i % 2 ? "[{\"sku\":\"tshirt-kafka\",\"quantity\":1},"
						     "{\"sku\":\"mug-classic\",\"quantity\":1}]"
						   : "[{\"sku\":\"mug-classic\",\"quantity\":1},"
						     "{\"sku\":\"tshirt-kafka\",\"quantity\":1}]");
		cancels[i] = it_cancelled(order, "CUSTOMER_REQUEST");
	}
	min = run_concurrently(events, ORDERS, batch_sizes[_i], "mug-classic");
	ck_assert_int_ge(min, 0);
	ck_assert_int_eq(it_stock(f.db, "mug-classic"), 0);
	/* A rejected order took no tshirt: exactly one per reserved order. */
	ck_assert_int_eq(it_stock(f.db, "tshirt-kafka"), 990);
	ck_assert_int_eq(count_outbox(ES_INVENTORY_RESERVED), 10);
	ck_assert_int_eq(count_outbox(ES_INVENTORY_REJECTED), 30);

	/* Cancelling every order, concurrently, gives back exactly what was
	 * reserved. */
	run_concurrently(cancels, ORDERS, batch_sizes[_i], "mug-classic");
	ck_assert_int_eq(it_stock(f.db, "mug-classic"), 10);
	ck_assert_int_eq(it_stock(f.db, "tshirt-kafka"), 1000);
	ck_assert_int_eq(count_outbox(ES_INVENTORY_RELEASED), 10);
	ck_assert_int_eq(it_number(f.db,
				   "SELECT count(*) FROM reservations WHERE status = 'RELEASED'",
				   NULL),
			 10);
	ck_assert(metrics_have("es_inventory_reservations_total{outcome=\"released\"} 10"));
	free_events(events, ORDERS);
	free_events(cancels, ORDERS);
}
END_TEST

START_TEST(place_and_cancel_of_one_order_racing_leave_no_stock_held)
{
	struct es_event *events[2 * ORDERS];
	char order[ES_UUID_LEN + 1];

	/* Event 2k (OrderPlaced) runs on an even thread while event 2k + 1
	 * (its OrderCancelled) runs on the odd one next to it: two instances
	 * handling one order's events at once, as during a rebalance.
	 * Whichever wins, the order ends up holding no stock. */
	for (int i = 0; i < ORDERS; i++) {
		it_order_id(order);
		events[2 * i] = it_placed(order, "[{\"sku\":\"tshirt-kafka\",\"quantity\":3}]");
		events[2 * i + 1] = it_cancelled(order, "TIMEOUT");
	}
	run_concurrently(events, 2 * ORDERS, batch_sizes[_i], "tshirt-kafka");
	ck_assert_int_eq(it_stock(f.db, "tshirt-kafka"), 1000);
	ck_assert_int_eq(it_number(f.db,
				   "SELECT count(*) FROM reservations WHERE status <> 'RELEASED'",
				   NULL),
			 0);
	ck_assert_int_eq(count_outbox(ES_INVENTORY_RESERVED), count_outbox(ES_INVENTORY_RELEASED));
	ck_assert_int_eq(it_number(f.db, "SELECT count(*) FROM cancellations", NULL), ORDERS);
	free_events(events, 2 * ORDERS);
}
END_TEST

static Suite *concurrency_suite(void)
{
	Suite *s = suite_create("inventory.concurrency");
	TCase *tc = tcase_create("concurrency");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, forty_orders_for_five_units_reserve_exactly_five, 0, 2);
	tcase_add_loop_test(tc, two_line_orders_get_all_lines_or_none_and_release_all, 0, 2);
	tcase_add_loop_test(tc, place_and_cancel_of_one_order_racing_leave_no_stock_held, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (!es_test_database_url())
		return ES_TEST_SKIP;
	es_log_init("it_inventory_concurrency", ES_LOG_WARN);
	return es_test_run_with_db(concurrency_suite(), &conninfo);
}
