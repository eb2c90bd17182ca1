/*
 * rebuild: replay, the lesson. The read models are a cache of the topics,
 * so they can be thrown away and computed again from the first event:
 *
 *   analytics-service --rebuild      (while the daemon is stopped)
 *   analytics-service                (replays every topic from the start)
 *
 * The rebuild joins the consumer group as a member, and while it is one:
 *
 *   1. It checks that it was given every partition of the topics. The
 *      group gives a member part of them only when others are there, so a
 *      running daemon stops the rebuild here, before anything changed (it
 *      leaves and says "is analytics-service still running?").
 *   2. It commits, as that member, the first offset still held (the low
 *      watermark) of every partition, and reads them back to check that
 *      they moved.
 *   3. In one transaction it deletes every read-model row and this
 *      consumer's inbox rows (without those, the replay would be skipped
 *      as duplicates).
 *
 * Then it leaves the group. Why as a member: a commit from outside the
 * group is taken by Apache Kafka only while the group is empty, and by
 * the development broker (librdkafka's mock cluster) never once the group
 * has existed; a member's commit is taken by both. And while the rebuild
 * holds every partition, a daemon that starts meanwhile waits at the
 * group's door until the rebuild leaves (or, on the development broker,
 * makes its commit fail): it cannot consume between steps 2 and 3.
 *
 * Why offsets first: a failure between steps 2 and 3 then leaves offsets
 * at the start and the read models whole. The next start replays, the
 * inbox recognises every event, and the numbers stay right. The other
 * order would leave empty read models with offsets at the end: wrong
 * numbers until someone noticed. Running the rebuild again after a
 * failure finishes the job either way.
 *
 * The check of step 1 relies on the assignor spreading every topic over
 * the members (the range assignor, librdkafka's default, does while some
 * topic has at least as many partitions as the group has members: with
 * topics of one partition each, a second member may get nothing).
 */
#ifndef ANALYTICS_REBUILD_H
#define ANALYTICS_REBUILD_H

#include <stddef.h>
#include <signal.h>
#include <stdio.h>

#include "es/db.h"

struct analytics_rebuild_report {
	int topics; /* topics whose offsets were reset */
	int missing_topics; /* topics that do not exist (nothing to replay) */
	int partitions; /* partitions whose offsets were reset */
	long long replay_messages; /* sum of (high - low) watermarks: to consume again */
	long orders, items, counts, deliveries; /* read-model rows deleted */
	long inbox; /* inbox rows of analytics-service deleted */
};

/*
 * Rebuilds as described above: db is analytics-service's own connection
 * (its schema), bootstrap the Kafka servers (KAFKA_* environment variables
 * apply as for every client), group the consumer group (CONSUMER_GROUP),
 * topics a NULL-terminated list. When out is not NULL a line per step is
 * written to it, and one every 10 s while the group makes it wait. Waits
 * at most twice the session timeout (KAFKA_SESSION_TIMEOUT_MS, else 10 s)
 * and 10 s to be given the partitions. *stop becoming true (SIGINT,
 * SIGTERM: the caller's es_stop) stops it at the next safe point; stop may
 * be NULL. rep may be NULL. Returns 0, or -1 with errstr
 * filled; on -1 nothing was deleted (the offsets may have moved, which the
 * next start replays harmlessly; running the rebuild again is safe).
 */
int analytics_rebuild(struct es_db *db, const char *bootstrap, const char *group,
		      const char *const *topics, FILE *out, volatile sig_atomic_t *stop,
		      struct analytics_rebuild_report *rep, char *errstr, size_t errstr_size);

#endif
