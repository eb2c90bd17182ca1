#include "live.h"

#include <stdio.h>
#include <string.h>

#include <check.h>

#include "rebuild.h"

static void *run(void *arg)
{
	struct it_live *l = arg;

	l->rc = es_consumer_run(l->c, &l->stop, l->errstr, sizeof(l->errstr));
	return NULL;
}

void it_live_init(struct it_live *l, const char *conninfo, const char *schema)
{
	char errstr[512];

	memset(l, 0, sizeof(*l));
	l->app.db = es_db_connect(conninfo, schema, 10000, errstr, sizeof(errstr));
	ck_assert_msg(l->app.db, "%s", errstr);
}

void it_live_start(struct it_live *l, struct es_consumer *c)
{
	l->c = c;
	ck_assert_int_eq(pthread_create(&l->thread, NULL, run, l), 0);
}

void it_live_stop(struct it_live *l)
{
	l->stop = 1;
	ck_assert_int_eq(pthread_join(l->thread, NULL), 0);
	ck_assert_msg(l->rc == 0, "the live member's poll failed: %s", l->errstr);
	es_consumer_free(l->c);
	es_db_free(l->app.db);
	memset(l, 0, sizeof(*l));
}

void it_live_assert_blocks_rebuild(struct it_world *w, const char *conninfo)
{
	struct analytics_rebuild_report rep;
	struct it_live live;
	char errstr[512];
	json_t *before;

	it_world_produce_saga(w);
	it_live_init(&live, conninfo, w->schema);
	{
		struct es_consumer *c = it_world_consumer(w, &live.app);

		it_world_consume_all(w, c);
		it_live_start(&live, c); /* polled from now on, as by the daemon */
	}
	before = it_stats(w->db);

	/* The daemon is still running: the rebuild joins the group, is given
	 * only part of the partitions and leaves; nothing may be deleted. */
	ck_assert_int_eq(analytics_rebuild(w->db, w->bootstrap, w->group, w->topics, stdout, NULL,
					   &rep, errstr, sizeof(errstr)),
			 -1);
	ck_assert_msg(strstr(errstr, "still running"), "%s", errstr);
	printf("refused as expected: %s\n", errstr);
	ck_assert_int_eq(it_inbox_count(w->db), (long)w->saga.total);
	it_assert_same(it_stats(w->db), json_incref(before));

	it_live_stop(&live);
	/* Stopped, the same rebuild goes through. */
	ck_assert_msg(analytics_rebuild(w->db, w->bootstrap, w->group, w->topics, NULL, NULL, &rep,
					errstr, sizeof(errstr)) == 0,
		      "%s", errstr);
	ck_assert_int_eq(it_inbox_count(w->db), 0);
	json_decref(before);
}
