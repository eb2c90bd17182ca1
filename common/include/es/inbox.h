/*
 * inbox: the idempotent consumer.
 *
 * A handler calls es_inbox_claim() inside the transaction that applies its
 * effect. The insert into es_inbox(consumer, event_id) either succeeds (first
 * time: apply the effect) or hits the primary key (a redelivery: skip the
 * effect, commit, and let the offset move on). Since the row and the effect
 * commit together, a crash between them leaves neither.
 */
#ifndef ES_INBOX_H
#define ES_INBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "es/db.h"
#include "es/envelope.h"
#include "es/kafka.h"

enum es_inbox_result {
	ES_INBOX_NEW = 0, /* first delivery: apply the effect */
	ES_INBOX_DUPLICATE = 1, /* seen before: skip the effect */
	ES_INBOX_ERROR = -1, /* database error: errstr filled */
};

/* Must be called inside a transaction (es_db_tx). consumer names the
 * handler (e.g. "payment-service"), event_id is the CloudEvent id. */
enum es_inbox_result es_inbox_claim(struct es_db *db, const char *consumer, const char *event_id,
				    const char *event_type, char *errstr, size_t errstr_size);

/* Number of events consumer has recorded (for tests and metrics). */
long es_inbox_count(struct es_db *db, const char *consumer, char *errstr, size_t errstr_size);

/*
 * The effect of one event, run inside the inbox transaction. Return OK to
 * commit, RETRY to roll back and try again later (transient), REJECT to
 * roll back and dead-letter the event (reason filled).
 */
typedef enum es_handler_result(es_effect_fn)(struct es_db *db, const struct es_event *ev, void *arg,
					     char *reason, size_t reason_size);

/*
 * The idempotent consumer in one call: reconnects db if it was lost, then in
 * one transaction claims (consumer, ev->id) and, when it is new, runs fn.
 * A duplicate commits nothing but the skip, and returns OK with *duplicate
 * set (duplicate may be NULL). Database failures map to RETRY when
 * transient, REJECT otherwise, with the reason filled.
 */
enum es_handler_result es_inbox_process(struct es_db *db, const char *consumer,
					const struct es_event *ev, es_effect_fn *fn, void *arg,
					bool *duplicate, char *reason, size_t reason_size);

#endif
