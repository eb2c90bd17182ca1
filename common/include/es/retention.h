/*
 * retention: the outbox and the inbox must not grow forever.
 *
 * Nothing else deletes from es_outbox or es_inbox. At a thousand orders a
 * second each service's inbox gains thousands of rows a second, and every
 * claim and every relay scan slows down as the tables and their indexes
 * bloat. So each daemon removes, in bounded batches between two polls of
 * its consumer loop:
 *
 *  - outbox rows published more than outbox_keep_s ago. A published row is
 *    never read again by the relay; it is kept a while only so that an
 *    operator can look at what went out (OUTBOX_RETENTION_S, default an
 *    hour).
 *  - inbox rows processed more than inbox_keep_s ago. An inbox row exists
 *    to recognise a redelivery of its event, and Kafka can only redeliver
 *    what its topic still holds: once the topic's retention has dropped
 *    the message, its inbox row can never match again. inbox_keep_s must
 *    therefore be at least the retention of every topic the service
 *    consumes, plus a margin for a consumer that was down or lagging when
 *    the message expired (INBOX_RETENTION_S, default 8 days: Kafka's
 *    default retention.ms of 7 days and one day more). A shorter value
 *    re-opens the door to double effects after a late redelivery.
 *
 * Each DELETE takes at most `batch` rows (a short transaction that holds few
 * locks), and a pass stops when it caught up or its time budget is spent,
 * so that the consumer loop is never held up for long.
 */
#ifndef ES_RETENTION_H
#define ES_RETENTION_H

#include <stddef.h>

#include "es/db.h"

struct es_retention_config {
	long inbox_keep_s; /* INBOX_RETENTION_S; 0 turns inbox pruning off */
	long outbox_keep_s; /* OUTBOX_RETENTION_S; 0 turns outbox pruning off */
	long batch; /* RETENTION_BATCH: rows per DELETE */
	long budget_ms; /* time one pass may take */
};

/* The defaults above, overridden by INBOX_RETENTION_S, OUTBOX_RETENTION_S
 * and RETENTION_BATCH. Returns 0, or -1 with errstr naming the variable. */
int es_retention_config_env(struct es_retention_config *cfg, char *errstr, size_t errstr_size);

/* What one pass removed. */
struct es_retention_report {
	long inbox; /* rows deleted from es_inbox */
	long outbox; /* rows deleted from es_outbox */
	int caught_up; /* 1: nothing old is left; 0: the budget ran out first */
};

/*
 * One pass on db (not inside a transaction: each batch commits on its own):
 * deletes batches of old outbox and inbox rows until a batch comes back
 * short or cfg->budget_ms has passed. Returns 0 with rep filled, or -1 with
 * errstr filled (rep says what was removed before the error).
 */
int es_retention_prune(struct es_db *db, const struct es_retention_config *cfg,
		       struct es_retention_report *rep, char *errstr, size_t errstr_size);

#endif
