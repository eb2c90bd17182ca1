/*
 * reader: reading topics without leaving a trace, for tools (`shopctl dlq`,
 * `shopctl watch`, the load generator) and for anything else that must
 * look at a topic without joining the services' consumer groups.
 *
 * A reader is a consumer that is never a member of any group: it assigns
 * partitions by hand at explicit offsets, under a unique throwaway group id
 * (librdkafka wants one), with enable.auto.commit=false, and never commits.
 * Reading a topic therefore moves no one's offsets: not the daemons', not
 * another reader's.
 */
#ifndef ES_READER_H
#define ES_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

/* How long a reader waits for the broker before it gives up. */
#define ES_READER_TIMEOUT_MS 10000

/* A new reader on bootstrap (the other KAFKA_* variables apply), named
 * client_id in the broker's logs and in its throwaway group id. Returns
 * NULL with errstr filled. Destroy with es_reader_free. */
rd_kafka_t *es_reader_new(const char *bootstrap, const char *client_id, char *errstr,
			  size_t errstr_size);

/* Destroys a reader without a consumer close (it is in no group). Every
 * message it returned must have been destroyed first. NULL is a no-op. */
void es_reader_free(rd_kafka_t *rk);

/*
 * The number of partitions of topic into *count (any client will do, a
 * group member too). Returns 0, or -1 with
 * errstr filled: "topic T does not exist" (*missing set true) or why the
 * broker did not answer. missing may be NULL.
 */
int es_reader_partitions(rd_kafka_t *rk, const char *topic, int *count, bool *missing, char *errstr,
			 size_t errstr_size);

/*
 * The low and high watermarks of topic [p]: the first offset still
 * retained and the offset the next message will get (equal when the
 * partition is empty). Returns 0, or -1 with errstr filled.
 */
int es_reader_watermarks(rd_kafka_t *rk, const char *topic, int32_t p, int64_t *low, int64_t *high,
			 char *errstr, size_t errstr_size);

/*
 * Assigns every partition of topic at its high watermark, asked for
 * explicitly (RD_KAFKA_OFFSET_END would be resolved later, when the fetcher
 * starts, and could skip events produced meanwhile): from now on, polling
 * the reader returns what is produced after this call. Returns 0, or -1
 * with errstr filled.
 */
int es_reader_follow(rd_kafka_t *rk, const char *topic, char *errstr, size_t errstr_size);

/*
 * Follows several topics (a NULL-terminated list) at once, every
 * partition of each from `tail` messages before its high watermark (0:
 * from the high watermark, as es_reader_follow; never before the first
 * offset retained), so that a follower that starts again sees the recent
 * past once more. A topic that does not exist is skipped and its name
 * appended to skipped (comma-separated; may be NULL). Returns the number
 * of partitions assigned (0 when no topic exists), or -1 with errstr
 * filled when the broker did not answer.
 */
int es_reader_follow_topics(rd_kafka_t *rk, const char *const *topics, long long tail,
			    char *skipped, size_t skipped_size, char *errstr, size_t errstr_size);

/* Called for each message, in offset order within a partition. Returns 0
 * to go on, -1 to stop the read (which then fails). */
typedef int(es_reader_fn)(void *arg, const rd_kafka_message_t *rkm);

/*
 * Reads every message that topic holds when the call starts, from the
 * first one still retained up to the high watermark of each partition,
 * and calls fn for each. Messages produced meanwhile are left out.
 * Returns the number of messages read, or -1 with errstr filled (the
 * topic does not exist: *missing set true, may be NULL).
 */
long long es_reader_read_all(rd_kafka_t *rk, const char *topic, es_reader_fn *fn, void *arg,
			     bool *missing, char *errstr, size_t errstr_size);

/*
 * Fetches the message at topic [partition] @ offset. Returns it (destroy
 * with rd_kafka_message_destroy before the reader), or NULL with errstr
 * filled: no such topic, partition or offset (e.g. "no message at offset
 * 7 of dlq.x [0]: it holds offsets 0 to 3"), or no answer.
 */
rd_kafka_message_t *es_reader_read_one(rd_kafka_t *rk, const char *topic, int32_t partition,
				       int64_t offset, char *errstr, size_t errstr_size);

#endif
