#include "es/dbpool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct es_dbpool {
	pthread_mutex_t lock; /* guards idle and nidle */
	char *conninfo;
	char *schema;
	size_t max_idle;
	size_t nidle;
	struct es_db **idle;
	es_db_commit_fn *commit_hook; /* given to each new connection */
	void *commit_hook_arg;
};

struct es_dbpool *es_dbpool_new(const char *conninfo, const char *schema, size_t max_idle)
{
	struct es_dbpool *pool = calloc(1, sizeof(*pool));

	if (!pool)
		return NULL;
	pthread_mutex_init(&pool->lock, NULL);
	pool->conninfo = strdup(conninfo);
	pool->schema = strdup(schema);
	pool->max_idle = max_idle;
	pool->idle = calloc(max_idle ? max_idle : 1, sizeof(*pool->idle));
	if (!pool->conninfo || !pool->schema || !pool->idle) {
		es_dbpool_free(pool);
		return NULL;
	}
	return pool;
}

void es_dbpool_set_commit_hook(struct es_dbpool *pool, es_db_commit_fn *fn, void *arg)
{
	pool->commit_hook = fn;
	pool->commit_hook_arg = arg;
}

void es_dbpool_free(struct es_dbpool *pool)
{
	if (!pool)
		return;
	for (size_t i = 0; i < pool->nidle; i++)
		es_db_free(pool->idle[i]);
	free(pool->idle);
	free(pool->conninfo);
	free(pool->schema);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

struct es_db *es_dbpool_get(struct es_dbpool *pool, char *errstr, size_t errstr_size)
{
	struct es_db *db = NULL;

	pthread_mutex_lock(&pool->lock);
	if (pool->nidle)
		db = pool->idle[--pool->nidle];
	pthread_mutex_unlock(&pool->lock);
	if (db)
		return db;
	/* Outside the lock: connecting takes a round trip or more. */
	db = es_db_connect(pool->conninfo, pool->schema, 0, errstr, errstr_size);
	if (db && pool->commit_hook)
		es_db_set_commit_hook(db, pool->commit_hook, pool->commit_hook_arg);
	return db;
}

void es_dbpool_put(struct es_dbpool *pool, struct es_db *db)
{
	if (!db)
		return;
	if (es_db_ok(db)) {
		pthread_mutex_lock(&pool->lock);
		if (pool->nidle < pool->max_idle) {
			pool->idle[pool->nidle++] = db;
			db = NULL;
		}
		pthread_mutex_unlock(&pool->lock);
	}
	es_db_free(db);
}
