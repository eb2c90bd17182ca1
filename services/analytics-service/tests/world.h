/*
 * it_world: what the analytics integration tests share besides the saga
 * (saga.h): a migrated schema of their own, the read models' numbers,
 * and for the tests on a broker, the topics with the saga on them and
 * analytics-service's consumer reading them. Every function fails the test
 * (Check assertions) rather than return an error.
 */
#ifndef ANALYTICS_IT_WORLD_H
#define ANALYTICS_IT_WORLD_H

#include <stddef.h>

#include <jansson.h>

#include "analytics.h"
#include "es/db.h"
#include "es/kafka.h"
#include "saga.h"

/* Makes a new schema named prefix + a unique suffix (written to schema) on
 * conninfo's database, migrated like the daemon's, and returns the
 * connection to it (the caller's, es_db_free). */
struct es_db *it_schema_new(const char *conninfo, const char *prefix, char *schema,
			    size_t schema_size);

/* The rows in analytics-service's inbox: the events it has applied. */
long it_inbox_count(struct es_db *db);

/* GET /stats's body (the caller's reference). */
json_t *it_stats(struct es_db *db);

/* Asserts that two bodies are equal, printing both when they differ;
 * steals both references. */
void it_assert_same(json_t *got, json_t *want);

/* A test's topics, group, schema and saga on one broker. */
struct it_world {
	const char *bootstrap; /* the broker's; not owned */
	char topic[IT_NTOPICS][96];
	const char *topics[IT_NTOPICS + 1]; /* topic[], NULL-terminated */
	char dlq[96];
	char group[96];
	char schema[64];
	struct es_db *db;
	struct analytics app; /* app.db: db */
	struct es_dispatch dispatch; /* of the consumer it_world_consumer made last */
	struct it_saga saga;
};

/* Sets bootstrap, topics, a new schema (it_schema_new with schema_prefix),
 * app and a new saga. The caller then names (and creates) topic[], dlq and
 * group. */
void it_world_init(struct it_world *w, const char *bootstrap, const char *conninfo,
		   const char *schema_prefix);

void it_world_release(struct it_world *w);

/* Produces every saga event to its topic, keyed by order id, and asserts
 * that each was delivered. */
void it_world_produce_saga(struct it_world *w);

/* analytics-service's consumer of the world's topics in its group; its
 * handler writes through app. The caller frees it. */
struct es_consumer *it_world_consumer(struct it_world *w, struct analytics *app);

/* Polls c until every saga event is in the inbox and c has joined its
 * group, or fails the test at the deadline. */
void it_world_consume_all(struct it_world *w, struct es_consumer *c);

/* A daemon's run over the saga: the consumer (it_world_consumer, through
 * w->app) applies every event, then is freed, which leaves the group and
 * commits its offsets. */
void it_world_run_consumer(struct it_world *w);

#endif
