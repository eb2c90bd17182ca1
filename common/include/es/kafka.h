/*
 * kafka: librdkafka (2.0.2 on Debian bookworm; see docs/ for its caveats)
 * as every daemon configures it, the event metrics, and the producer. The
 * consumer loop is es/consumer.h, the non-committing reader es/reader.h.
 *
 * Producer: idempotent (enable.idempotence=true, so retries never duplicate
 * or reorder within a partition), murmur2_random partitioner (keys land where
 * Java clients put them), the contract's headers on every event. Delivery
 * reports are served by es_producer_poll(), which the owner calls every loop.
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
 *   es_consumer_lag{topic,partition}              messages between the group's
 *                                                 committed offset and the end of
 *                                                 the partition, as librdkafka's
 *                                                 statistics saw it (every
 *                                                 ES_KAFKA_STATS_INTERVAL_MS); 0
 *                                                 for a partition this instance
 *                                                 does not consume
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
	struct es_gauge *lag;
};

/* How often a consumer's librdkafka reports its statistics (the lag). */
#define ES_KAFKA_STATS_INTERVAL_MS "5000"

/*
 * Sets es_consumer_lag from one of librdkafka's statistics reports (the
 * JSON its stats callback gets): per partition, consumer_lag when this
 * instance consumes it and knows it, 0 when it does not consume it.
 * Returns the number of partitions set, or -1 when json is not such a
 * report.
 */
int es_kafka_stats_lag(const struct es_kafka_metrics *m, const char *json, size_t len);

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

/*
 * Replication of a topic on a cluster of `brokers` brokers, for one that
 * asks for `replicas` copies and `min_insync` of them in sync before a
 * write (acks=all) is acknowledged: as many copies as asked but no more
 * than there are brokers, and at most one fewer in sync than there are
 * copies (at least 1), so that one broker down never stops the writes. A
 * single broker gets 1 and 1; three or more get 3 and 2 when asked for
 * that (deploy/topics.txt's default). Values below 1 count as 1.
 */
void es_kafka_replication(int brokers, int replicas, int min_insync, int *out_replicas,
			  int *out_min_insync);

/* The number of brokers the cluster's metadata lists, asked through rk;
 * -1 with errstr filled when there is no answer within timeout_ms. */
int es_kafka_broker_count(rd_kafka_t *rk, int timeout_ms, char *errstr, size_t errstr_size);

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

#endif
