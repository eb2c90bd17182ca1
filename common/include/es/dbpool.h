/*
 * dbpool: database connections for the daemons' HTTP handlers. Handlers
 * run in libmicrohttpd's thread pool, several at once, and an es_db is not
 * thread-safe, so each request borrows a connection of its own: an idle
 * one when there is one, else a new one (a single attempt: a request
 * answers 503 rather than wait for a database that is away). The service
 * frame makes one pool (es_service.pool) and the HTTP server lends its
 * connections to requests (es_http_db): handlers never call this module.
 */
#ifndef ES_DBPOOL_H
#define ES_DBPOOL_H

#include <stddef.h>

#include "es/db.h"

struct es_dbpool;

/* conninfo and schema are copied; at most max_idle connections are kept
 * between requests. Returns NULL when out of memory. */
struct es_dbpool *es_dbpool_new(const char *conninfo, const char *schema, size_t max_idle);

/* Gives every connection the pool makes from now on this commit hook
 * (es_db_set_commit_hook). Call before the first es_dbpool_get. */
void es_dbpool_set_commit_hook(struct es_dbpool *pool, es_db_commit_fn *fn, void *arg);

/* Closes every idle connection and frees the pool. Every borrowed
 * connection must have been given back. NULL is a no-op. */
void es_dbpool_free(struct es_dbpool *pool);

/* Borrows a connection (the caller owns it until es_dbpool_put).
 * Returns NULL with errstr filled when none can be made. */
struct es_db *es_dbpool_get(struct es_dbpool *pool, char *errstr, size_t errstr_size);

/* Gives db back: kept for the next request while it works and there is
 * room, closed otherwise. NULL is a no-op. */
void es_dbpool_put(struct es_dbpool *pool, struct es_db *db);

#endif
