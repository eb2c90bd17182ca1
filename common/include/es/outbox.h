/*
 * outbox: the transactional outbox and its relay.
 *
 * A service never produces to Kafka from a request or a handler. It calls
 * es_outbox_put() inside the transaction that changes its state, so the
 * state change and the event commit together or not at all. The relay, a
 * thread in the same process, then publishes unpublished rows in id order
 * through an idempotent producer and marks each published only after the
 * broker acknowledged it (the delivery report).
 *
 * A crash between "delivered" and "marked" publishes the row again after the
 * restart: the same event id, which consumers' inboxes recognize. So the
 * outbox is at-least-once, and the inbox turns that into effectively-once.
 *
 * One active relay per service: it holds a PostgreSQL advisory lock on its
 * own connection; other instances stand by and take over when that
 * connection dies. The relay sleeps until a commit of its own process that
 * wrote outbox rows wakes it (es_relay_commit_hook), or a NOTIFY on
 * es_outbox_<schema> does (sent by the hook of an instance whose relay
 * stands by, and by es_outbox_retry), with polling as the fallback. No
 * trigger NOTIFYs: in a database shared by several services every NOTIFY
 * costs every listening relay a transaction, and a NOTIFY in a commit
 * serializes it with every other notifying commit.
 */
#ifndef ES_OUTBOX_H
#define ES_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "es/db.h"
#include "es/envelope.h"

struct es_metrics;
struct es_kafka_metrics;

/* Stores ev (serialized) for topic, keyed by its partitionkey. Call inside
 * the state change's transaction. Returns 0, or -1 with errstr filled; an
 * event that Kafka would refuse as larger than the producer's
 * message.max.bytes (KAFKA_MESSAGE_MAX_BYTES, default 1000000) is refused
 * here, before it is stored, without a database error (not transient). */
int es_outbox_put(struct es_db *db, const char *topic, const struct es_event *ev, char *errstr,
		  size_t errstr_size);

/*
 * A batch's outbox rows, inserted with one statement instead of one each.
 * The consumer's dispatch (es/dispatch.h) gives each batch one: its effects
 * add their events (es_effect_emit, es_effect_put), and the dispatch
 * inserts them all just before the batch commits. The rows keep the order
 * they were added in, so events of one key are published in that order.
 */
struct es_outbox_batch;

/* An empty batch (NULL when out of memory). Free with es_outbox_batch_free. */
struct es_outbox_batch *es_outbox_batch_new(void);
void es_outbox_batch_free(struct es_outbox_batch *b);

/* Adds ev for topic, with the checks of es_outbox_put (size). Nothing
 * reaches the database yet. Returns 0, or -1 with errstr filled. */
int es_outbox_batch_add(struct es_outbox_batch *b, const char *topic, const struct es_event *ev,
			char *errstr, size_t errstr_size);

/* Rows added so far; es_outbox_batch_truncate drops the rows added after
 * the first len (an effect rolled back to its savepoint). */
size_t es_outbox_batch_len(const struct es_outbox_batch *b);
void es_outbox_batch_truncate(struct es_outbox_batch *b, size_t len);

/* Inserts every row in one statement inside the caller's transaction and
 * empties the batch. Returns the number of rows, or -1 with errstr filled
 * (the batch is kept: the caller rolls back and tries the whole again). */
long es_outbox_batch_insert(struct es_db *db, struct es_outbox_batch *b, char *errstr,
			    size_t errstr_size);

/*
 * The INSERT of a batch's rows, for a statement of the caller's own that
 * stores its state and its events with one round trip (a data-modifying
 * WITH, as order-service's POST /orders does): param names the statement's
 * parameter ("$13") that takes es_outbox_batch_rows(b). Once that statement
 * succeeded, call es_outbox_batch_stored(db, b), as es_outbox_batch_insert
 * does itself. The ids (bigserial) are taken in the order of the rows, so
 * the relay publishes them in that order.
 */
#define ES_OUTBOX_INSERT_FROM(param)                                            \
	"INSERT INTO es_outbox (topic, msg_key, event_id, event_type, payload)" \
	" SELECT r->>0, r->>1, r->>2, r->>3, r->>4"                             \
	" FROM json_array_elements(" param "::json) WITH ORDINALITY AS t(r, pos) ORDER BY pos"

/* The rows as the JSON text ES_OUTBOX_INSERT_FROM reads (the caller frees
 * it), or NULL when out of memory. */
char *es_outbox_batch_rows(const struct es_outbox_batch *b);

/* The caller's statement stored the rows: empties the batch and wakes the
 * relay once the transaction commits. */
void es_outbox_batch_stored(struct es_db *db, struct es_outbox_batch *b);

struct es_relay_config {
	const char *conninfo; /* the service's database */
	const char *schema; /* the service's schema */
	const char *bootstrap; /* Kafka */
	const char *service; /* client.id and log lines */
	int poll_interval_ms; /* fallback when no NOTIFY arrives; default 1000 */
	int batch_size; /* rows per round; default 200 */
	int max_attempts; /* failed rounds before a row is parked; default 10 */
	const struct es_kafka_metrics *metrics; /* optional: produced events */
};

struct es_relay;

/* Copies the config. Connects nothing yet. Returns NULL with errstr. */
struct es_relay *es_relay_new(const struct es_relay_config *cfg, char *errstr, size_t errstr_size);

/* Starts the relay thread. Returns 0, or -1 with errstr filled. */
int es_relay_start(struct es_relay *r, char *errstr, size_t errstr_size);

/* Asks the thread to stop, waits for it (it finishes the round in hand and
 * flushes the producer, at most ~10 s), and releases everything. */
void es_relay_free(struct es_relay *r);

/*
 * Adds the relay's gauges to reg, computed at each scrape:
 *   es_outbox_backlog        rows not yet published (absent while standing by)
 *   es_outbox_relay_active   1 while this instance holds the relay lock
 * and the counter es_outbox_parked_total{topic}. Returns 0, or -1 with errstr
 * filled.
 */
int es_relay_register_gauges(struct es_relay *r, struct es_metrics *reg, char *errstr,
			     size_t errstr_size);

/* Rows not yet published: 0 after a round that found none, otherwise as
 * counted at most once a second while rows flow (-1 before the first
 * round, or while this instance stands by). */
long es_relay_backlog(const struct es_relay *r);

/* true while this instance holds the relay lock. */
bool es_relay_active(const struct es_relay *r);

/*
 * The commit hook (es_db_set_commit_hook, with the relay as its argument)
 * of every connection on which the daemon writes outbox rows. After such
 * rows commit, it wakes the relay: in-process when this instance relays,
 * otherwise with NOTIFY es_outbox_<schema> for the instance that does.
 * A connection without it leaves its rows to the relay's poll interval.
 */
void es_relay_commit_hook(void *relay, struct es_db *db);

/*
 * A row the relay can never publish (too large, an invalid topic: at once;
 * any other failure: after max_attempts rounds) is parked: parked_at and
 * park_reason are set, es_outbox_parked_total counts it, the relay logs it
 * and goes on with the other rows. Every later row of the same topic and
 * key waits behind it, unpublished, so that none overtakes it. An operator
 * sees parked rows with `shopctl outbox list` and, once the cause is
 * mended, puts one back with es_outbox_retry (`shopctl outbox retry`).
 *
 * es_outbox_retry un-parks the row with this id in db's schema (attempts
 * back to 0) and wakes the relay. Returns 1, 0 when no parked, unpublished
 * row has that id, or -1 with errstr filled.
 */
int es_outbox_retry(struct es_db *db, const char *id, char *errstr, size_t errstr_size);

/* Rows published since start. */
unsigned long es_relay_published(const struct es_relay *r);

/* true when the relay has stopped on an unrecoverable error (a fatal
 * producer error): the daemon should exit non-zero and be restarted. */
bool es_relay_failed(const struct es_relay *r);

#endif
