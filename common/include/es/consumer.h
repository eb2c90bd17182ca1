/*
 * consumer: the consumer loop every daemon runs (common/src/consumer.c).
 *
 * At-least-once. enable.auto.offset.store=false: the offset of a message is
 * stored (offset + 1, the next one to read) only after its batch's handler
 * returned OK for it, or after a REJECTed message reached the dead-letter
 * topic. A crash at any instant therefore re-delivers, never loses; the
 * inbox (es/inbox.h) makes the re-delivery harmless.
 */
#ifndef ES_CONSUMER_H
#define ES_CONSUMER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "es/envelope.h"
#include "es/kafka.h"

enum es_handler_result {
	ES_HANDLER_OK = 0, /* done (or already done): store the offset */
	ES_HANDLER_RETRY, /* transient failure: try the same message again later */
	ES_HANDLER_REJECT, /* can never succeed: dead-letter it and move on */
};

/* Where a message came from. */
struct es_delivery {
	const char *topic;
	int32_t partition;
	int64_t offset;
	int attempt; /* 1 on the first try of this message in this process */
	const rd_kafka_message_t *rkm;
};

/* One parsed event of a batch and the handler's answer for it. */
struct es_batch_item {
	const struct es_event *ev;
	struct es_delivery d;
	enum es_handler_result result; /* the handler's to set: OK or REJECT */
	char reason[512]; /* on REJECT: why, for the dead letter */
};

/*
 * Handles a batch of parsed events, in the order they were read (so in
 * order within each partition), on the consumer's thread. Sets each item's
 * result (OK, or REJECT with its reason) and returns OK; or returns RETRY
 * (reason filled) when the whole batch must be tried again later, after a
 * backoff. es_dispatch_batch (es/dispatch.h) is the daemons' one handler.
 */
typedef enum es_handler_result(es_batch_fn)(void *arg, struct es_batch_item *items, size_t n,
					    char *reason, size_t reason_size);

/* The most messages one batch takes unless CONSUMER_BATCH_MAX says. */
#define ES_CONSUMER_BATCH_MAX 256

struct es_consumer_config {
	const char *bootstrap;
	const char *group_id; /* usually the service name */
	/* group.instance.id: a static member (es_service_instance_id), or NULL
	 * for a dynamic one. A static member does not leave its group when it
	 * closes: its partitions wait for it until the session timeout. */
	const char *instance_id;
	const char *client_id; /* defaults to group_id */
	const char *const *topics; /* NULL-terminated */
	const char *service; /* for dead-letter headers, e.g. "payment-service" */
	const char *dlq_topic; /* e.g. "dlq.payment-service" */
	es_batch_fn *handler;
	void *handler_arg;
	const struct es_kafka_metrics *metrics; /* optional, borrowed */
	int batch_max; /* messages per batch; default ES_CONSUMER_BATCH_MAX */
	int retry_initial_ms; /* default 100 */
	int retry_max_ms; /* default 5000; the backoff never exceeds it */
	/* 0: the broker answers a fetch as soon as one message is there.
	 * Above 0: it may hold a fetch this many ms to fill it (see
	 * ES_CONSUMER_FETCH_WAIT_MIN_BYTES), for a consumer nothing waits on. */
	int fetch_wait_ms;
};

/*
 * The consumers' session timeout (session.timeout.ms) unless
 * KAFKA_SESSION_TIMEOUT_MS sets one. When a daemon dies without leaving
 * its group (SIGKILL, a crash, a lost machine), its partitions stand still
 * until the broker gives up on it after this long and rebalances; only
 * then does anyone go on with them. That stall, plus the restart and the
 * rebalance, must stay well under order-service's saga timeout
 * (SAGA_TIMEOUT_MS, 30 s), or a crash turns waiting orders into TIMEOUT
 * cancellations. librdkafka's own default, 45 s, breaks that rule; 10 s
 * keeps it while tolerating pauses of a few seconds (three heartbeats at
 * librdkafka's 3 s interval), and the broker accepts anything from its
 * group.min.session.timeout.ms (6 s by default).
 */
#define ES_CONSUMER_SESSION_TIMEOUT_MS "10000"

/*
 * How much a consumer fetches ahead of its loop (queued.max.messages.kbytes)
 * unless KAFKA_QUEUED_MAX_MESSAGES_KBYTES sets it. librdkafka's default,
 * 64 MiB, is what a consumer that falls behind holds in memory: a daemon
 * behind by a minute of load grew to 160 MiB. 2 MiB is still ten batches
 * of CONSUMER_BATCH_MAX saga events ahead of the loop, so the loop never
 * waits for the network while the broker has more; 4 MiB measured no
 * faster, and email-service, which reads three topics, peaked 2.6 MiB
 * higher with it (docs/benchmarks.md).
 */
#define ES_CONSUMER_PREFETCH_KBYTES "2048"

/*
 * The most one fetch response brings (fetch.max.bytes) unless
 * KAFKA_FETCH_MAX_BYTES sets it. Left to itself, librdkafka sizes a
 * response to the whole prefetch, and a consumer that is behind then holds
 * two of them at once, each one allocation that lives until the last of
 * its messages is handled: with a 4 MiB prefetch, 8 MiB of
 * email-service's peak. 1 MiB is still some 1,400 of the saga's
 * events per round trip, and it is never below the largest message a
 * consumer must accept (message.max.bytes, 1,000,000 unless configured,
 * which wins when it is larger).
 */
#define ES_CONSUMER_FETCH_MAX_BYTES "1048576"

/*
 * What a consumer with a fetch wait (fetch_wait_ms, CONSUMER_FETCH_WAIT_MS)
 * asks the broker to gather before it answers (fetch.min.bytes), unless
 * KAFKA_FETCH_MIN_BYTES sets it: a whole fetch, so that below some 1,400
 * events per wait the broker answers once per wait (fetch.wait.max.ms,
 * unless KAFKA_FETCH_WAIT_MAX_MS sets it), and above that as soon as a
 * fetch is full. librdkafka's default, 1 byte, answers each event on its
 * own: at a low rate every event then costs each consumer a fetch round
 * trip and a transaction of its own. For the consumers no saga waits on
 * (email-service and analytics-service), a wait of 100 ms took a saga at 50
 * orders/s from 31.6 to 23.8 ms of CPU over every process
 * (docs/benchmarks.md).
 */
#define ES_CONSUMER_FETCH_WAIT_MIN_BYTES ES_CONSUMER_FETCH_MAX_BYTES

struct es_consumer;

/* Subscribes; returns NULL with errstr filled. The config's strings are
 * copied; metrics is borrowed and must outlive the consumer. */
struct es_consumer *es_consumer_new(const struct es_consumer_config *cfg, char *errstr,
				    size_t errstr_size);

/*
 * Polls once (up to timeout_ms for the first message), then takes what else
 * is already there without waiting, up to batch_max messages: at low load a
 * batch is one message, and nothing waits for a batch to fill. The handler
 * gets the parseable ones as one batch; a RETRY answer retries the whole
 * batch with exponential backoff plus jitter until it succeeds or *stop
 * becomes true. While it backs off, the consumer's partitions are paused
 * and it keeps polling, so the group does not evict it
 * (max.poll.interval.ms) however long the database is away. Unparseable
 * messages and REJECTed events go to the dead-letter topic. The offsets of
 * the batch are stored once all of that is done. Returns 0, or -1 on a
 * fatal error (errstr filled): the daemon should shut down non-zero.
 *
 * Dead letters go out through a producer the consumer owns, and the offset
 * of a rejected message is stored only once its dead letter is delivered.
 */
int es_consumer_poll(struct es_consumer *c, int timeout_ms, volatile sig_atomic_t *stop,
		     char *errstr, size_t errstr_size);

/* Loops es_consumer_poll every 100 ms until *stop. */
int es_consumer_run(struct es_consumer *c, volatile sig_atomic_t *stop, char *errstr,
		    size_t errstr_size);

/* Leaves the group, committing stored offsets, then destroys. NULL is a
 * no-op. */
void es_consumer_free(struct es_consumer *c);

rd_kafka_t *es_consumer_handle(struct es_consumer *c);

/* true once the consumer has joined its group (got its first assignment,
 * possibly of no partitions): used for readiness. */
bool es_consumer_joined(struct es_consumer *c);

/* Header names written on dead letters. */
#define ES_DLQ_HDR_ERROR "dlq.error"
#define ES_DLQ_HDR_TOPIC "dlq.original.topic"
#define ES_DLQ_HDR_PARTITION "dlq.original.partition"
#define ES_DLQ_HDR_OFFSET "dlq.original.offset"
#define ES_DLQ_HDR_ATTEMPTS "dlq.attempts"
#define ES_DLQ_HDR_SERVICE "dlq.service"
#define ES_DLQ_HDR_TIME "dlq.time"

/* The jittered backoff delay before attempt `attempt` (>= 2): initial *
 * 2^(attempt-2), capped at max, then a random value in [delay/2, delay]. */
int es_backoff_ms(int attempt, int initial_ms, int max_ms);

#endif
