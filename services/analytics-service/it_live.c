#include "it_live.h"

#include <string.h>

#include <check.h>

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
