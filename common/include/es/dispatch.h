/*
 * dispatch: the one path from a batch of consumed events to their effects,
 * exactly once each, for every service.
 *
 * A service writes a table of (event type -> effect) and its effects;
 * everything else happens here, once:
 *
 *   1. each event is checked: a type the contract does not know, or data
 *      not of the contract's shape, is REJECTed (dead-lettered) with the
 *      reason; a known type the table does not name needs nothing;
 *   2. the service's prepare hook may check and parse more (outside any
 *      transaction), and its begin hook may wait for the batch (payment's
 *      simulated bank);
 *   3. one transaction: the inbox claims the whole batch in one statement
 *      (es_inbox_claim), so redeliveries, also two deliveries of one event
 *      inside the batch, are known in one round trip; the before_effects
 *      hook runs (order-service reads the batch's orders in one query);
 *      each new event's effect runs, in delivery order; the before_commit
 *      hook runs (set-based writes built from the applied effects: one
 *      statement per kind of write, e.g. analytics' rows and counts; what
 *      must be durable first, e.g. email's one fsync of the maildir); the
 *      events the effects emitted go into the outbox in one statement;
 *      one COMMIT;
 *   4. after the commit, the committed hook sees each applied event (the
 *      service's counters and log lines), and a duplicate is logged.
 *
 * An effect that REJECTs must not take its neighbours with it. Savepoints
 * cost two round trips per event, so a batch first runs without them; only
 * a batch in which an effect rejected is rolled back and run again with a
 * SAVEPOINT around each event, so that the rejected event alone is rolled
 * back (its inbox row too: a corrected redelivery may still apply) and
 * dead-lettered, while the others commit. An effect that answers RETRY, a
 * lost connection or a failed COMMIT rolls the whole batch back and the
 * consumer tries it again after its backoff: nothing is dead-lettered for
 * being transient. A deadlock or serialization failure is retried at once
 * (es_db_tx).
 *
 * Effects write with the transaction's connection only (fx->db) and put
 * what they produce in the outbox with es_effect_emit or es_effect_put:
 * the effect, its events and the inbox rows commit together or not at all.
 */
#ifndef ES_DISPATCH_H
#define ES_DISPATCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "es/db.h"
#include "es/envelope.h"
#include "es/consumer.h"
#include "es/log.h"
#include "es/outbox.h"

/* One event in the hands of a service's hook or effect. */
struct es_effect {
	struct es_db *db; /* in the batch's transaction (effects, before_commit) */
	const struct es_event *ev; /* checked against the contract */
	void *app; /* the service's, from struct es_dispatch */
	void *state; /* prepare's to set, release's to free */
	struct es_outbox_batch *outbox; /* the batch's events (es_effect_put); NULL: none */
	int outcome; /* the effect's to set (0 before each run), read after commit */
	double value; /* likewise, e.g. a saga's duration */
	struct es_log_ctx log; /* the event's order, id and trace id */
	char trace_id[33];
	char reason[512]; /* why, on RETRY or REJECT */
};

/*
 * An effect: runs inside the batch's transaction, once per event id.
 * Returns OK, RETRY (transient: the batch is tried again later) or REJECT
 * (never applicable: dead-lettered), filling fx->reason on RETRY and
 * REJECT. The transaction may be run again (a deadlock, or a neighbour
 * that rejected), so an effect reports only through fx->outcome, fx->value
 * and the database, never by counting anything itself.
 */
typedef enum es_handler_result(es_effect_fn)(struct es_effect *fx);

struct es_dispatch_rule {
	const char *type; /* e.g. ES_ORDER_PLACED */
	es_effect_fn *effect;
};

/* What a service does with events. Hooks may be NULL. */
struct es_handlers {
	const struct es_dispatch_rule *rules; /* ends with {NULL, NULL} */
	/* Per event, after the contract's checks, outside the transaction:
	 * more checks, parsing into fx->state. OK, REJECT, or RETRY for the
	 * whole batch. */
	es_effect_fn *prepare;
	/* Once per batch that has events to apply, before its transaction:
	 * n of them. A wait here ends early when *stop is set (stop may be
	 * NULL). OK, or RETRY (reason filled) to try the batch later. */
	enum es_handler_result (*begin)(void *app, size_t n, volatile sig_atomic_t *stop,
					char *reason, size_t reason_size);
	/* Inside the transaction after the claim, with the n new events,
	 * before their effects: set-based work they rely on (order-service
	 * locks and reads the orders of the whole batch in one query). 0, or
	 * -1 with reason (the batch is retried). */
	int (*before_effects)(struct es_db *db, void *app, struct es_effect *const *fresh, size_t n,
			      char *reason, size_t reason_size);
	/* Inside the transaction after the last effect, with the n events
	 * whose effects were applied: set-based work for all of them, and
	 * what must be durable before the commit. 0, or -1 with reason (the
	 * batch is retried). */
	int (*before_commit)(struct es_db *db, void *app, struct es_effect *const *applied,
			     size_t n, char *reason, size_t reason_size);
	/* After the commit, for each event whose effect was applied. */
	void (*committed)(struct es_effect *fx);
	/* For each prepared event, once the batch is done with it. */
	void (*release)(struct es_effect *fx);
};

struct es_dispatch {
	const char *consumer; /* the inbox's name for us: the service's */
	struct es_db *db; /* the consumer thread's connection, borrowed */
	const struct es_handlers *handlers;
	void *app;
	volatile sig_atomic_t *stop; /* set on SIGTERM; NULL: never */
};

/*
 * es_batch_fn for the consumer (arg is a struct es_dispatch): applies the
 * batch as told above. Fills each item's result (OK or REJECT with its
 * reason) and returns OK, or returns RETRY with reason filled when the
 * whole batch must be tried again.
 */
enum es_handler_result es_dispatch_batch(void *arg, struct es_batch_item *items, size_t n,
					 char *reason, size_t reason_size);

/*
 * A batch of one, for tests and tools: the result of ev (RETRY included),
 * with reason filled on RETRY and REJECT.
 */
enum es_handler_result es_dispatch_one(struct es_dispatch *d, const struct es_event *ev,
				       char *reason, size_t reason_size);

/*
 * For a before_effects hook: waits for, then holds until the batch's
 * transaction ends, a lock on each order (event subject) of the n events
 * in the service's lock space (e.g. "payment-service:order"), with one
 * statement (es_db_lock_keys). One order's events then apply one
 * transaction at a time whatever instance consumes them (two may, during
 * a rebalance), and a read after the lock sees what the other committed.
 * Returns 0, or -1 with errstr filled.
 */
int es_dispatch_lock_orders(struct es_db *db, const char *space, struct es_effect *const *fresh,
			    size_t n, char *errstr, size_t errstr_size);

/*
 * What an effect answers when a statement failed (reason already filled):
 * RETRY when it may pass (a lost connection, a server restarting, a
 * deadlock, a serialization failure, or a unique violation, which in an
 * effect can only be a concurrent transaction that decided the same thing
 * first and that the next attempt sees), REJECT otherwise.
 */
enum es_handler_result es_effect_db_failed(struct es_effect *fx);

/* What an effect answers when it ran out of memory: RETRY (the batch is
 * tried again later), with the reason filled. */
enum es_handler_result es_effect_out_of_memory(struct es_effect *fx);

/*
 * ev for topic into the outbox, in the batch's transaction: added to the
 * batch's rows (fx->outbox), which the dispatch inserts with one statement
 * before the commit, or, for an effect run outside a dispatch (fx->outbox
 * NULL), inserted at once. OK, or what es_effect_db_failed says (an event
 * Kafka would refuse for its size is REJECTed).
 */
enum es_handler_result es_effect_put(struct es_effect *fx, const char *topic,
				     const struct es_event *ev);

/* An event of type made by the service `source`, caused by fx->ev and about
 * the same order (data stolen, even on failure), put in the outbox for
 * topic (es_effect_put); RETRY when out of memory. */
enum es_handler_result es_effect_emit(struct es_effect *fx, const char *source, const char *topic,
				      const char *type, json_t *data);

#endif
