/*
 * The one dispatch path: see es/dispatch.h for what it promises; the why of
 * each step is told here.
 */
#include "es/dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/events.h"
#include "es/inbox.h"
#include "es/outbox.h"

/* What one batch carries through its transaction, per event and overall. */
struct run {
	struct es_dispatch *d;
	struct es_batch_item *items;
	struct es_effect *fx; /* per item */
	es_effect_fn **effect; /* per item; NULL: nothing to apply */
	bool *is_new; /* per candidate, from the claim */
	struct es_effect **applied; /* for before_commit */
	const char **ids, **types; /* per candidate */
	size_t *cand; /* candidate k is item cand[k] */
	size_t n, ncand;
	struct es_outbox_batch *outbox; /* the events the effects emitted */
	bool careful; /* a SAVEPOINT around each effect */
	bool rejected; /* an effect rejected in a run without savepoints */
	enum es_handler_result failed; /* RETRY: an effect or hook asked for it */
};

int es_dispatch_lock_orders(struct es_db *db, const char *space, struct es_effect *const *fresh,
			    size_t n, char *errstr, size_t errstr_size)
{
	const char **ids = calloc(n ? n : 1, sizeof(*ids));
	int rc;

	if (!ids) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		ids[i] = fresh[i]->ev->subject;
	rc = es_db_lock_keys(db, space, ids, n, errstr, errstr_size);
	free(ids);
	return rc;
}

enum es_handler_result es_effect_out_of_memory(struct es_effect *fx)
{
	snprintf(fx->reason, sizeof(fx->reason), "out of memory");
	return ES_HANDLER_RETRY;
}

enum es_handler_result es_effect_db_failed(struct es_effect *fx)
{
	if (es_db_error_is_transient(fx->db) || es_db_error_is_unique_violation(fx->db))
		return ES_HANDLER_RETRY;
	return ES_HANDLER_REJECT;
}

enum es_handler_result es_effect_emit(struct es_effect *fx, const char *source, const char *topic,
				      const char *type, json_t *data)
{
	struct es_event *out;
	int rc;

	out = es_event_new(source, type, fx->ev->subject, fx->ev, NULL, data);
	if (!out) {
		snprintf(fx->reason, sizeof(fx->reason), "out of memory making %s", type);
		return ES_HANDLER_RETRY;
	}
	rc = es_effect_put(fx, topic, out);
	es_event_free(out);
	return rc;
}

enum es_handler_result es_effect_put(struct es_effect *fx, const char *topic,
				     const struct es_event *ev)
{
	int rc = fx->outbox ? es_outbox_batch_add(fx->outbox, topic, ev, fx->reason,
						  sizeof(fx->reason))
			    : es_outbox_put(fx->db, topic, ev, fx->reason, sizeof(fx->reason));

	return rc ? es_effect_db_failed(fx) : ES_HANDLER_OK;
}

static es_effect_fn *effect_of(const struct es_handlers *h, const char *type)
{
	for (const struct es_dispatch_rule *r = h->rules; r->type; r++) {
		if (!strcmp(r->type, type))
			return r->effect;
	}
	return NULL;
}

static void reject(struct es_batch_item *it, const char *reason)
{
	it->result = ES_HANDLER_REJECT;
	snprintf(it->reason, sizeof(it->reason), "%s", reason);
}

/* Runs one statement that takes no parameters (a savepoint's). */
static int exec0(struct es_db *db, const char *sql, char *errstr, size_t errstr_size)
{
	return es_db_exec(db, sql, 0, NULL, errstr, errstr_size) < 0 ? -1 : 0;
}

/* Candidate k's effect, inside a savepoint when the run is careful.
 * Returns 0 to go on, -1 to end the transaction (rolled back). */
static int apply_one(struct run *r, size_t k, char *errstr, size_t errstr_size)
{
	size_t i = r->cand[k];
	struct es_effect *fx = &r->fx[i];
	size_t emitted = es_outbox_batch_len(r->outbox);
	enum es_handler_result res;

	if (r->careful && exec0(fx->db, "SAVEPOINT es_effect", errstr, errstr_size))
		return -1;
	fx->outcome = 0;
	fx->value = 0;
	fx->reason[0] = '\0';
	res = r->effect[i](fx);
	if (res == ES_HANDLER_OK)
		return r->careful
			       ? exec0(fx->db, "RELEASE SAVEPOINT es_effect", errstr, errstr_size)
			       : 0;
	if (res == ES_HANDLER_RETRY) {
		r->failed = ES_HANDLER_RETRY;
		snprintf(errstr, errstr_size, "%s: %s", fx->ev->type, fx->reason);
		return -1;
	}
	if (!r->careful) {
		/* Roll everything back and run the batch again, carefully. */
		r->rejected = true;
		snprintf(errstr, errstr_size, "%s rejected: %s", fx->ev->type, fx->reason);
		return -1;
	}
	/* Only this event goes, its claim and its events included. */
	reject(&r->items[i], fx->reason);
	r->is_new[k] = false;
	es_outbox_batch_truncate(r->outbox, emitted);
	if (exec0(fx->db, "ROLLBACK TO SAVEPOINT es_effect", errstr, errstr_size) ||
	    exec0(fx->db, "RELEASE SAVEPOINT es_effect", errstr, errstr_size) ||
	    es_inbox_forget(fx->db, r->d->consumer, fx->ev->id, errstr, errstr_size))
		return -1;
	return 0;
}

/* Lists the new events (rejected ones no longer count) in r->applied;
 * returns how many. */
static size_t list_fresh(struct run *r)
{
	size_t n = 0;

	for (size_t k = 0; k < r->ncand; k++) {
		if (r->is_new[k])
			r->applied[n++] = &r->fx[r->cand[k]];
	}
	return n;
}

/* es_db_tx_fn: claim, effects, before_commit. es_db_tx may run it again
 * (deadlock, serialization failure), so it starts from scratch. */
static int apply_tx(struct es_db *db, void *arg, char *errstr, size_t errstr_size)
{
	struct run *r = arg;
	const struct es_handlers *h = r->d->handlers;

	r->failed = ES_HANDLER_OK;
	es_outbox_batch_truncate(r->outbox, 0);
	for (size_t k = 0; k < r->ncand; k++) {
		r->items[r->cand[k]].result = ES_HANDLER_OK;
		r->items[r->cand[k]].reason[0] = '\0';
	}
	if (es_inbox_claim(db, r->d->consumer, r->ncand, r->ids, r->types, r->is_new, errstr,
			   errstr_size) < 0)
		return -1;
	if (h->before_effects &&
	    h->before_effects(db, r->d->app, r->applied, list_fresh(r), errstr, errstr_size)) {
		r->failed = ES_HANDLER_RETRY;
		return -1;
	}
	for (size_t k = 0; k < r->ncand; k++) {
		if (r->is_new[k] && apply_one(r, k, errstr, errstr_size))
			return -1;
	}
	if (h->before_commit &&
	    h->before_commit(db, r->d->app, r->applied, list_fresh(r), errstr, errstr_size)) {
		r->failed = ES_HANDLER_RETRY;
		return -1;
	}
	/* The batch's events, one statement for all. */
	if (es_outbox_batch_insert(db, r->outbox, errstr, errstr_size) < 0)
		return -1;
	return 0;
}

/* After the commit: the service's report of each applied event, and a line
 * for each duplicate. */
static void report(struct run *r)
{
	const struct es_handlers *h = r->d->handlers;

	for (size_t k = 0; k < r->ncand; k++) {
		size_t i = r->cand[k];
		struct es_effect *fx = &r->fx[i];

		if (r->items[i].result != ES_HANDLER_OK)
			continue;
		if (!r->is_new[k])
			es_log(ES_LOG_INFO, &fx->log, "%s already processed by %s: skipped",
			       fx->ev->type, r->d->consumer);
		else if (h->committed)
			h->committed(fx);
	}
}

/* The transaction, run again carefully when an effect rejected. */
static enum es_handler_result apply(struct run *r, char *reason, size_t reason_size)
{
	struct es_db *db = r->d->db;

	if (!es_db_ok(db) && es_db_reconnect(db, 0, reason, reason_size))
		return ES_HANDLER_RETRY;
	for (r->careful = false;; r->careful = true) {
		r->rejected = false;
		if (es_db_tx(db, apply_tx, r, reason, reason_size) == 0)
			break;
		if (r->rejected && !r->careful)
			continue;
		/* An effect's own RETRY, a lost connection, a failed commit:
		 * the batch comes again. A failure that will not pass by
		 * itself (a claim the server refuses) comes again too, loudly:
		 * dead-lettering a whole batch for it would lose good events. */
		if (r->failed != ES_HANDLER_RETRY && !es_db_error_is_transient(db))
			es_error("%s: a batch failed outside any effect: %s", r->d->consumer,
				 reason);
		return ES_HANDLER_RETRY;
	}
	report(r);
	return ES_HANDLER_OK;
}

/* Checks each item and lines up those with an effect to apply. */
static enum es_handler_result prepare(struct run *r, char *reason, size_t reason_size)
{
	const struct es_handlers *h = r->d->handlers;

	for (size_t i = 0; i < r->n; i++) {
		struct es_batch_item *it = &r->items[i];
		const struct es_event *ev = it->ev;
		struct es_effect *fx = &r->fx[i];
		enum es_handler_result res;

		memset(fx, 0, sizeof(*fx));
		fx->db = r->d->db;
		fx->ev = ev;
		fx->app = r->d->app;
		fx->outbox = r->outbox;
		fx->log = (struct es_log_ctx){ev->subject, ev->id, NULL};
		if (ev->traceparent && es_traceparent_trace_id(ev->traceparent, fx->trace_id) == 0)
			fx->log.trace_id = fx->trace_id;
		it->result = ES_HANDLER_OK;
		if (!es_event_type_known(ev->type)) {
			snprintf(it->reason, sizeof(it->reason), "unknown event type %s", ev->type);
			it->result = ES_HANDLER_REJECT;
			continue;
		}
		r->effect[i] = effect_of(h, ev->type);
		if (!r->effect[i]) /* a known event this service needs nothing from */
			continue;
		if (es_event_data_check(ev, it->reason, sizeof(it->reason))) {
			it->result = ES_HANDLER_REJECT;
			r->effect[i] = NULL;
			continue;
		}
		if (h->prepare) {
			res = h->prepare(fx);
			if (res == ES_HANDLER_RETRY) {
				snprintf(reason, reason_size, "%s: %s", ev->type, fx->reason);
				return ES_HANDLER_RETRY;
			}
			if (res == ES_HANDLER_REJECT) {
				reject(it, fx->reason);
				r->effect[i] = NULL;
				continue;
			}
		}
		r->ids[r->ncand] = ev->id;
		r->types[r->ncand] = ev->type;
		r->cand[r->ncand++] = i;
	}
	return ES_HANDLER_OK;
}

enum es_handler_result es_dispatch_batch(void *arg, struct es_batch_item *items, size_t n,
					 char *reason, size_t reason_size)
{
	struct run r = {.d = arg, .items = items, .n = n};
	const struct es_handlers *h = r.d->handlers;
	enum es_handler_result res = ES_HANDLER_RETRY;

	r.fx = calloc(n ? n : 1, sizeof(*r.fx));
	r.effect = calloc(n ? n : 1, sizeof(*r.effect));
	r.is_new = calloc(n ? n : 1, sizeof(*r.is_new));
	r.ids = calloc(n ? n : 1, sizeof(*r.ids));
	r.types = calloc(n ? n : 1, sizeof(*r.types));
	r.cand = calloc(n ? n : 1, sizeof(*r.cand));
	r.applied = calloc(n ? n : 1, sizeof(*r.applied));
	r.outbox = es_outbox_batch_new();
	if (!r.fx || !r.effect || !r.is_new || !r.ids || !r.types || !r.cand || !r.applied ||
	    !r.outbox) {
		snprintf(reason, reason_size, "out of memory");
		goto out;
	}
	res = prepare(&r, reason, reason_size);
	if (res != ES_HANDLER_OK || !r.ncand)
		goto out;
	if (h->begin) {
		res = h->begin(r.d->app, r.ncand, r.d->stop, reason, reason_size);
		if (res != ES_HANDLER_OK)
			goto out;
	}
	res = apply(&r, reason, reason_size);
out:
	if (r.fx && h->release) {
		for (size_t i = 0; i < n; i++) {
			if (r.fx[i].state)
				h->release(&r.fx[i]);
		}
	}
	free(r.fx);
	free(r.effect);
	free(r.is_new);
	free(r.ids);
	free(r.types);
	free(r.cand);
	free(r.applied);
	es_outbox_batch_free(r.outbox);
	return res;
}

enum es_handler_result es_dispatch_one(struct es_dispatch *d, const struct es_event *ev,
				       char *reason, size_t reason_size)
{
	struct es_batch_item item = {.ev = ev, .d = {.attempt = 1}};
	enum es_handler_result r;

	reason[0] = '\0';
	r = es_dispatch_batch(d, &item, 1, reason, reason_size);
	if (r != ES_HANDLER_OK)
		return r;
	if (item.result == ES_HANDLER_REJECT)
		snprintf(reason, reason_size, "%s", item.reason);
	return item.result;
}
