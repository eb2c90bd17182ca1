#include <stdio.h>
#include <string.h>

#include "es/inbox.h"
#include "es/log.h"

struct process_tx {
	const char *consumer;
	const struct es_event *ev;
	es_effect_fn *fn;
	void *arg;
	bool duplicate;
	enum es_handler_result result;
};

static int process_in_tx(struct es_db *db, void *arg, char *errstr, size_t errstr_size)
{
	struct process_tx *t = arg;
	enum es_inbox_result claim;

	claim = es_inbox_claim(db, t->consumer, t->ev->id, t->ev->type, errstr, errstr_size);
	if (claim == ES_INBOX_ERROR)
		return -1;
	t->duplicate = claim == ES_INBOX_DUPLICATE;
	if (t->duplicate)
		return 0;
	t->result = t->fn(db, t->ev, t->arg, errstr, errstr_size);
	return t->result == ES_HANDLER_OK ? 0 : -1;
}

enum es_handler_result es_inbox_process(struct es_db *db, const char *consumer,
					const struct es_event *ev, es_effect_fn *fn, void *arg,
					bool *duplicate, char *reason, size_t reason_size)
{
	struct process_tx t = {consumer, ev, fn, arg, false, ES_HANDLER_OK};

	if (duplicate)
		*duplicate = false;
	if (!es_db_ok(db) && es_db_reconnect(db, 0, reason, reason_size))
		return ES_HANDLER_RETRY;
	db->sqlstate[0] = '\0';
	if (es_db_tx(db, process_in_tx, &t, reason, reason_size) == 0) {
		if (duplicate)
			*duplicate = t.duplicate;
		if (t.duplicate) {
			struct es_log_ctx ctx = {ev->subject, ev->id, NULL};

			es_log(ES_LOG_INFO, &ctx, "%s already processed by %s: skipped", ev->type,
			       consumer);
		}
		return ES_HANDLER_OK;
	}
	/* The effect itself said RETRY or REJECT: respect it. */
	if (t.result != ES_HANDLER_OK)
		return t.result;
	return es_db_error_is_transient(db) ? ES_HANDLER_RETRY : ES_HANDLER_REJECT;
}
