/*
 * it_live: a running analytics-service, for the tests that a rebuild
 * refuses while one is in the group. A daemon polls its consumer every
 * 100 ms, and so answers a rebalance at once; a consumer that nobody polls
 * would instead hold the group's rebalance up until the rebuild's join
 * deadline. So the member here is polled by a thread of its own, with a
 * database connection of its own (the test's connection stays the test's).
 */
#ifndef ANALYTICS_IT_LIVE_H
#define ANALYTICS_IT_LIVE_H

#include <pthread.h>
#include <signal.h>

#include "analytics.h"
#include "es/consumer.h"
#include "world.h"

struct it_live {
	struct es_consumer *c;
	struct analytics app; /* app.db: the member's own connection */
	pthread_t thread;
	volatile sig_atomic_t stop;
	int rc; /* es_consumer_run's result, once joined */
	char errstr[512];
};

/* Connects the member's own database connection to schema (Check
 * assertion on failure). */
void it_live_init(struct it_live *l, const char *conninfo, const char *schema);

/* Starts polling c on a thread; c must have been created with handler_arg
 * &l->app, and belongs to l from now on. */
void it_live_start(struct it_live *l, struct es_consumer *c);

/* Stops the thread, then frees the consumer (it leaves the group) and the
 * connection. Asserts that polling never failed. */
void it_live_stop(struct it_live *l);

/*
 * The refusal itself, on a new world (it_world_init, topics created): the
 * saga is produced and a live member of w's group applies it; a rebuild
 * while it is there fails with "still running" and changes nothing; once
 * the member stopped, the same rebuild goes through and empties the inbox.
 * conninfo: the member's database (w's schema in it).
 */
void it_live_assert_blocks_rebuild(struct it_world *w, const char *conninfo);

#endif
