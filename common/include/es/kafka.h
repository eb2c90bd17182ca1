/*
 * kafka: the producer and the consumer loop every daemon uses, on
 * librdkafka (2.0.2 on Debian bookworm; see docs/ for its caveats).
 *
 * Producer: idempotent (enable.idempotence=true, so retries never duplicate
 * or reorder within a partition), murmur2_random partitioner (keys land where
 * Java clients put them), the contract's headers on every event. Delivery
 * reports are served by es_producer_poll(), which the owner calls every loop.
 *
 * Consumer: at-least-once. enable.auto.offset.store=false: the offset of a
 * message is stored (offset + 1, the next one to read) only after its handler
 * returned OK, or after a REJECTed message reached the dead-letter topic.
 * A crash at any instant therefore re-delivers, never loses; the inbox makes
 * the re-delivery harmless.
 */
#ifndef ES_KAFKA_H
#define ES_KAFKA_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "es/envelope.h"

struct es_metrics;
struct es_counter;
struct es_histogram;

/*
 * The event metrics a daemon exposes on /metrics, registered once per
 * process and shared by its consumers and its outbox relay:
 *
 *   es_events_consumed_total{topic,type}          messages read (once each)
 *   es_events_handled_total{topic,type,result}    final result: ok, rejected
 *   es_events_retried_total{topic}                RETRY results
 *   es_events_dead_lettered_total{topic,reason}   reason: invalid, rejected
 *   es_events_produced_total{topic,type}          acknowledged by the broker
 *   es_handler_duration_seconds{topic}            one handler call (a batch)
 *   es_consumer_batch_size                        events per handler call
 *
 * `type` comes from the message, so a stream of invented types could grow
 * the label set; the registry caps every family (ES_METRICS_MAX_CHILDREN)
 * and unparseable messages are counted as type "invalid".
 */
struct es_kafka_metrics {
	struct es_counter *consumed;
	struct es_counter *handled;
	struct es_counter *retried;
	struct es_counter *dead_lettered;
	struct es_counter *produced;
	struct es_histogram *handler_seconds;
	struct es_histogram *batch_size;
};

/* Registers the families above in reg. Returns 0, or -1 with errstr. */
int es_kafka_metrics_register(struct es_metrics *reg, struct es_kafka_metrics *m, char *errstr,
			      size_t errstr_size);

/*
 * A new librdkafka configuration: bootstrap.servers, client.id, the log
 * callback routed into es_log, then every KAFKA_* environment variable
 * (es_config_kafka_passthrough), so deployments can add SASL/TLS without a
 * rebuild. Returns NULL with errstr filled.
 */
rd_kafka_conf_t *es_kafka_conf_new(const char *bootstrap, const char *client_id, char *errstr,
				   size_t errstr_size);

/* ---------------------------------------------------------------- producer */

/*
 * Called from es_producer_poll() (the owner's thread) once per message with
 * its final outcome: err is RD_KAFKA_RESP_ERR_NO_ERROR when the broker has
 * it (acks=all), and `opaque` is what was given to the send call.
 */
typedef void(es_delivery_fn)(void *arg, void *opaque, rd_kafka_resp_err_t err,
			     const rd_kafka_message_t *rkmessage);

struct es_producer;

/* on_delivery may be NULL. Returns NULL with errstr filled. */
struct es_producer *es_producer_new(const char *bootstrap, const char *client_id,
				    es_delivery_fn *on_delivery, void *arg, char *errstr,
				    size_t errstr_size);

/* Flushes (up to 10 s) and destroys. NULL is a no-op. */
void es_producer_free(struct es_producer *p);

/*
 * Enqueues the serialized event `value` (a CloudEvent as JSON) on topic with
 * `key`, adding the contract's headers: content-type and ce_specversion,
 * ce_id, ce_type, ce_source. Returns 0, or librdkafka's error code (never 0)
 * with errstr filled: RD_KAFKA_RESP_ERR__QUEUE_FULL when the local queue is
 * full (poll and try again), another code when the message can never be
 * sent as it is (too large, an invalid topic name).
 */
int es_producer_send_event(struct es_producer *p, const char *topic, const char *key,
			   const char *value, const char *event_id, const char *event_type,
			   const char *event_source, void *opaque, char *errstr,
			   size_t errstr_size);

/* The same for a parsed/built event: serializes it first. */
int es_producer_send(struct es_producer *p, const char *topic, const struct es_event *ev,
		     void *opaque, char *errstr, size_t errstr_size);

/*
 * Enqueues raw bytes with the given headers (stolen, may be NULL), for the
 * dead-letter topic and for tests. key may be NULL. Returns as
 * es_producer_send_event.
 */
int es_producer_send_raw(struct es_producer *p, const char *topic, const void *key, size_t key_len,
			 const void *value, size_t len, rd_kafka_headers_t *hdrs, void *opaque,
			 char *errstr, size_t errstr_size);

/*
 * Serves delivery reports (waiting up to timeout_ms) and checks for a fatal
 * error. Returns 0, or -1 when the producer hit a fatal error: the idempotent
 * producer cannot go on safely, so the daemon must exit non-zero and be
 * restarted (crash-only); errstr says why.
 */
int es_producer_poll(struct es_producer *p, int timeout_ms, char *errstr, size_t errstr_size);

/* Waits up to timeout_ms for every queued message. Returns 0 when all were
 * handed over, -1 on timeout. */
int es_producer_flush(struct es_producer *p, int timeout_ms);

/* Messages waiting for a delivery report. */
int es_producer_outq_len(struct es_producer *p);

rd_kafka_t *es_producer_handle(struct es_producer *p);

/* Totals since start (thread-safe reads). */
uint64_t es_producer_delivered(const struct es_producer *p);
uint64_t es_producer_failed(const struct es_producer *p);

/* ---------------------------------------------------------------- consumer */

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
 * behind by a minute of load grew to 160 MiB. 4 MiB is still a dozen
 * batches of CONSUMER_BATCH_MAX events ahead of the loop, so the loop never
 * waits for the network while the broker has more.
 */
#define ES_CONSUMER_PREFETCH_KBYTES "4096"

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
