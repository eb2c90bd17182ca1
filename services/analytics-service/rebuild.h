/*
 * rebuild: replay, the lesson. The read models are a cache of the topics,
 * so they can be thrown away and computed again from the first event:
 *
 *   analytics-service --rebuild      (while the daemon is stopped)
 *   analytics-service                (replays every topic from the start)
 *
 * The rebuild does two things, in this order:
 *
 *   1. It moves the consumer group's committed offsets back to the first
 *      offset still held (the low watermark) of every partition of the
 *      given topics, and reads them back to check that they moved. The
 *      broker refuses such a commit while the group has live members, so
 *      a running daemon stops the rebuild here, before anything is lost.
 *   2. In one transaction it deletes every read-model row and this
 *      consumer's inbox rows (without those, the replay would be skipped
 *      as duplicates).
 *
 * Why offsets first: a failure between the two steps then leaves offsets
 * at the start and the read models whole. The next start replays, the
 * inbox recognises every event, and the numbers stay right. The other
 * order would leave empty read models with offsets at the end: wrong
 * numbers until someone noticed. Running the rebuild again after a
 * failure finishes the job either way.
 */
#ifndef ANALYTICS_REBUILD_H
#define ANALYTICS_REBUILD_H

#include <stddef.h>
#include <stdio.h>

#include "es/db.h"

struct analytics_rebuild_report {
	int topics; /* topics whose offsets were reset */
	int missing_topics; /* topics that do not exist (nothing to replay) */
	int partitions; /* partitions whose offsets were reset */
	long long replay_messages; /* sum of (high - low) watermarks: to consume again */
	long orders, items, counts; /* read-model rows deleted */
	long inbox; /* inbox rows of analytics-service deleted */
};

/*
 * Rebuilds as described above: db is analytics-service's own connection
 * (its schema), bootstrap the Kafka servers (KAFKA_* environment variables
 * apply as for every client), group the consumer group (CONSUMER_GROUP),
 * topics a NULL-terminated list. When out is not NULL a line per step is
 * written to it. rep may be NULL. Returns 0, or -1 with errstr filled; on
 * -1 nothing was deleted unless errstr says the offsets were reset.
 */
int analytics_rebuild(struct es_db *db, const char *bootstrap, const char *group,
		      const char *const *topics, FILE *out, struct analytics_rebuild_report *rep,
		      char *errstr, size_t errstr_size);

#endif
