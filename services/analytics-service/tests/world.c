#include "world.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "es/inbox.h"
#include "stats.h"
#include "testsupport.h"

/* A bound, not a speed: on the mock cluster each join waits out its
 * rebalance delays. */
#define CONSUME_TIMEOUT_MS 60000

struct es_db *it_schema_new(const char *conninfo, const char *prefix, char *schema,
			    size_t schema_size)
{
	char errstr[512];
	struct es_db *db;

	ck_assert_int_eq(es_test_unique_name(schema, schema_size, prefix), 0);
	db = es_db_connect(conninfo, schema, 10000, errstr, sizeof(errstr));
	ck_assert_msg(db, "connect: %s", errstr);
	ck_assert_msg(es_db_migrate_list(db, analytics_migrations, analytics_migrations_count,
					 errstr, sizeof(errstr)) >= 0,
		      "%s", errstr);
	return db;
}

long it_inbox_count(struct es_db *db)
{
	char errstr[512];
	long n = es_inbox_count(db, ANALYTICS_SERVICE, errstr, sizeof(errstr));

	ck_assert_msg(n >= 0, "%s", errstr);
	return n;
}

json_t *it_stats(struct es_db *db)
{
	char errstr[512];
	json_t *body = analytics_stats_build(db, errstr, sizeof(errstr));

	ck_assert_msg(body, "stats: %s", errstr);
	return body;
}

void it_assert_same(json_t *got, json_t *want)
{
	char *g = json_dumps(got, JSON_SORT_KEYS), *w = json_dumps(want, JSON_SORT_KEYS);

	ck_assert_msg(json_equal(got, want), "got  %s\nwant %s", g, w);
	free(g);
	free(w);
	json_decref(got);
	json_decref(want);
}

void it_world_init(struct it_world *w, const char *bootstrap, const char *conninfo,
		   const char *schema_prefix)
{
	memset(w, 0, sizeof(*w));
	w->bootstrap = bootstrap;
	for (int t = 0; t < IT_NTOPICS; t++)
		w->topics[t] = w->topic[t];
	w->db = it_schema_new(conninfo, schema_prefix, w->schema, sizeof(w->schema));
	w->app.db = w->db;
	it_saga_build(&w->saga);
}

void it_world_release(struct it_world *w)
{
	it_saga_free(&w->saga);
	es_db_free(w->db);
}

void it_world_produce_saga(struct it_world *w)
{
	char errstr[512];
	struct es_producer *p = es_producer_new(w->bootstrap, "it-analytics", NULL, NULL, errstr,
						sizeof(errstr));

	ck_assert_msg(p, "%s", errstr);
	for (int t = 0; t < IT_NTOPICS; t++) {
		for (size_t i = 0; i < w->saga.n[t]; i++)
			ck_assert_msg(es_producer_send(p, w->topic[t], w->saga.ev[t][i], NULL,
						       errstr, sizeof(errstr)) == 0,
				      "%s", errstr);
	}
	ck_assert_int_eq(es_producer_flush(p, 30000), 0);
	ck_assert_uint_eq(es_producer_delivered(p), w->saga.total);
	es_producer_free(p);
}

struct es_consumer *it_world_consumer(struct it_world *w, struct analytics *app)
{
	w->dispatch = (struct es_dispatch){.consumer = ANALYTICS_SERVICE,
					   .db = app->db,
					   .handlers = &analytics_handlers,
					   .app = app};
	struct es_consumer_config cfg = {
		.bootstrap = w->bootstrap,
		.group_id = w->group,
		.topics = w->topics,
		.service = ANALYTICS_SERVICE,
		.dlq_topic = w->dlq,
		.handler = es_dispatch_batch,
		.handler_arg = &w->dispatch,
		.retry_initial_ms = 20,
		.retry_max_ms = 200,
	};
	char errstr[512];
	struct es_consumer *c = es_consumer_new(&cfg, errstr, sizeof(errstr));

	ck_assert_msg(c, "%s", errstr);
	return c;
}

struct consuming {
	struct it_world *w;
	struct es_consumer *c;
	long n; /* inbox rows at the last poll */
};

/* One poll; true when everything is in and the consumer has joined. */
static bool consumed_all(void *arg)
{
	struct consuming *s = arg;
	volatile sig_atomic_t stop = 0;
	char errstr[512];

	ck_assert_msg(es_consumer_poll(s->c, 100, &stop, errstr, sizeof(errstr)) == 0, "%s",
		      errstr);
	s->n = it_inbox_count(s->w->db);
	ck_assert_int_le(s->n, (long)s->w->saga.total);
	return s->n == (long)s->w->saga.total && es_consumer_joined(s->c);
}

void it_world_consume_all(struct it_world *w, struct es_consumer *c)
{
	struct consuming s = {.w = w, .c = c};

	if (!es_test_wait_until(consumed_all, &s, CONSUME_TIMEOUT_MS))
		ck_abort_msg("consumed %ld of %zu events in %d ms", s.n, w->saga.total,
			     CONSUME_TIMEOUT_MS);
}

void it_world_run_consumer(struct it_world *w)
{
	struct es_consumer *c = it_world_consumer(w, &w->app);

	it_world_consume_all(w, c);
	es_consumer_free(c);
}
