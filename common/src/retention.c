#include "es/clock.h"
#include "es/retention.h"

#include <stdio.h>
#include <time.h>

#include "es/config.h"

/* Kafka's default retention.ms (7 days) and a day for a consumer that was
 * down or behind when a message expired. */
#define INBOX_KEEP_S_DEFAULT (8L * 24 * 3600)
#define OUTBOX_KEEP_S_DEFAULT 3600L
#define BATCH_DEFAULT 5000L
/* A pass runs between two polls of the consumer loop: a few batches, then
 * the loop goes on and the next pass continues where this one stopped. */
#define BUDGET_MS_DEFAULT 50L

int es_retention_config_env(struct es_retention_config *cfg, char *errstr, size_t errstr_size)
{
	cfg->budget_ms = BUDGET_MS_DEFAULT;
	if (es_config_long("INBOX_RETENTION_S", INBOX_KEEP_S_DEFAULT, 0, 10L * 365 * 24 * 3600,
			   &cfg->inbox_keep_s, errstr, errstr_size) ||
	    es_config_long("OUTBOX_RETENTION_S", OUTBOX_KEEP_S_DEFAULT, 0, 10L * 365 * 24 * 3600,
			   &cfg->outbox_keep_s, errstr, errstr_size) ||
	    es_config_long("RETENTION_BATCH", BATCH_DEFAULT, 1, 1000000, &cfg->batch, errstr,
			   errstr_size))
		return -1;
	return 0;
}

/* Deletes at most batch rows older than keep_s with sql; returns how many,
 * or -1. */
static long prune_batch(struct es_db *db, const char *sql, long keep_s, long batch, char *errstr,
			size_t errstr_size)
{
	char keep[24], limit[24];

	snprintf(keep, sizeof(keep), "%ld", keep_s);
	snprintf(limit, sizeof(limit), "%ld", batch);
	return es_db_exec(db, sql, 2, (const char *const[]){keep, limit}, errstr, errstr_size);
}

int es_retention_prune(struct es_db *db, const struct es_retention_config *cfg,
		       struct es_retention_report *rep, char *errstr, size_t errstr_size)
{
	/* Any old rows, found by the BRIN indexes of migration 001 (no ORDER
	 * BY: sorting every old row to take the first few would cost more
	 * than it tells); the subquery bounds each statement to one batch. */
	static const char outbox_sql[] =
		"DELETE FROM es_outbox WHERE id IN (SELECT id FROM es_outbox "
		"WHERE published_at < now() - make_interval(secs => $1::bigint) "
		"LIMIT $2::int)";
	static const char inbox_sql[] =
		"DELETE FROM es_inbox WHERE (consumer, event_id) IN (SELECT consumer, event_id "
		"FROM es_inbox WHERE processed_at < now() - make_interval(secs => $1::bigint) "
		"LIMIT $2::int)";
	struct {
		const char *sql;
		long keep_s;
		long *deleted;
		int done;
	} table[] = {
		{outbox_sql, cfg->outbox_keep_s, &rep->outbox, cfg->outbox_keep_s <= 0},
		{inbox_sql, cfg->inbox_keep_s, &rep->inbox, cfg->inbox_keep_s <= 0},
	};
	long long deadline = es_monotonic_ms() + cfg->budget_ms;
	int rc = -1;

	rep->inbox = rep->outbox = 0;
	rep->caught_up = 0;
	while (!(table[0].done && table[1].done)) {
		for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
			long n;

			if (table[i].done)
				continue;
			n = prune_batch(db, table[i].sql, table[i].keep_s, cfg->batch, errstr,
					errstr_size);
			if (n < 0)
				goto out;
			*table[i].deleted += n;
			table[i].done = n < cfg->batch;
		}
		if (es_monotonic_ms() >= deadline)
			break;
	}
	rep->caught_up = table[0].done && table[1].done;
	rc = 0;
out:
	return rc;
}
