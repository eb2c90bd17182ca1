/*
 * inbox: the idempotent consumer's record of what it has applied.
 *
 * The dispatcher (es/dispatch.h) claims a batch's events inside the
 * transaction that applies their effects. Inserting (consumer, event_id)
 * into es_inbox either succeeds (first time: apply the effect) or meets
 * the primary key (a redelivery: skip it). Since the rows and the effects
 * commit together, a crash between them leaves neither.
 */
#ifndef ES_INBOX_H
#define ES_INBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "es/db.h"

/*
 * Claims n events (ids[i] of type types[i]) for consumer in one statement,
 * inside the transaction in hand. is_new[i] is set true for an event not
 * recorded before, and false for a redelivery and for a repeat of an id
 * that came earlier in the same list (its first occurrence is the new
 * one). An empty consumer or id, or a call outside a transaction, is an
 * error. Returns how many are new, or -1 with errstr filled.
 */
long es_inbox_claim(struct es_db *db, const char *consumer, size_t n, const char *const *ids,
		    const char *const *types, bool *is_new, char *errstr, size_t errstr_size);

/* Forgets consumer's record of event_id, inside the transaction in hand: an
 * event rejected after its claim may still be applied when it comes again
 * corrected. Returns 0, or -1 with errstr filled. */
int es_inbox_forget(struct es_db *db, const char *consumer, const char *event_id, char *errstr,
		    size_t errstr_size);

/* Number of events consumer has recorded (for tests and metrics). */
long es_inbox_count(struct es_db *db, const char *consumer, char *errstr, size_t errstr_size);

#endif
