/*
 * stream: the event store. A shipment's stream is its rows of
 * shipment_events, version 1 first; its state is their fold (shipment.c).
 *
 * A batch (the consumer's, or the sweep's) reads the streams of all its
 * orders with one query, then decides and appends in memory, so that a
 * second event of an order in the batch sees what the first one appended.
 * An append is three writes in the caller's transaction, so that they
 * commit together or not at all:
 *
 *   1. the event, at version = the version folded + 1 (the primary key
 *      (order_id, version) refuses a second writer of the same version:
 *      optimistic concurrency, no lock held while deciding);
 *   2. the same event, same id, in the outbox: what the shipments topic
 *      carries is exactly what the stream holds;
 *   3. the shipment's next step in shipment_due, the simulation's to-do
 *      list, derived from the new state.
 *
 * The outbox row goes with the batch's outbox rows (es_effect_put); the
 * batch's events and their due steps are written with one statement
 * (shipping_stream_write) just before the commit. A writer that appended
 * since the streams were read makes that statement fail on the primary
 * key, and the batch is retried from a new read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/log.h"
#include "shipping.h"

struct shipping_stream *shipping_streams_find(struct shipping_streams *st, const char *order_id)
{
	for (size_t i = 0; i < st->n; i++) {
		if (!strcmp(st->v[i].order_id, order_id))
			return &st->v[i];
	}
	return NULL;
}

void shipping_streams_release(struct shipping_streams *st)
{
	for (size_t i = 0; i < st->n; i++) {
		free(st->v[i].order_id);
		json_decref(st->v[i].events);
	}
	free(st->v);
	st->v = NULL;
	st->n = 0;
}

/* One empty stream per distinct id, each id added to the JSON array ids. */
static int streams_new(struct shipping_streams *st, const char *const *order_ids, size_t n,
		       json_t *ids)
{
	st->v = calloc(n ? n : 1, sizeof(*st->v));
	if (!st->v)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct shipping_stream *stream;

		if (shipping_streams_find(st, order_ids[i]))
			continue;
		stream = &st->v[st->n++];
		shipment_init(&stream->s);
		stream->order_id = strdup(order_ids[i]);
		stream->events = json_array();
		if (!stream->order_id || !stream->events ||
		    json_array_append_new(ids, json_string(order_ids[i])))
			return -1;
	}
	return 0;
}

/* A row of the query: the event, appended to its order's stream. */
static void add_row(struct shipping_streams *st, const char *order_id, const char *text)
{
	struct shipping_stream *stream = shipping_streams_find(st, order_id);
	json_t *ev = text ? json_loads(text, 0, NULL) : NULL;

	if (!stream || stream->error[0]) {
		json_decref(ev);
		return;
	}
	if (!json_is_object(ev) || json_array_append_new(stream->events, ev))
		snprintf(stream->error, sizeof(stream->error),
			 "shipment %s: version %zu is not an event", order_id,
			 json_array_size(stream->events) + 1);
}

int shipping_streams_load(struct es_db *db, struct shipping_streams *st,
			  const char *const *order_ids, size_t n, char *errstr, size_t errstr_size)
{
	static const char sql[] = ES_DB_PLAN_EACH_RUN
		"SELECT order_id, event::text AS event FROM shipment_events "
		"WHERE order_id = ANY (ARRAY(SELECT json_array_elements_text($1::json))) "
		"ORDER BY order_id, version";
	json_t *ids = json_array();
	char *ids_text = NULL;
	PGresult *res = NULL;
	int result = -1;

	memset(st, 0, sizeof(*st));
	if (!ids || streams_new(st, order_ids, n, ids) ||
	    !(ids_text = json_dumps(ids, JSON_COMPACT))) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	if (st->n == 0) { /* a batch of redeliveries only: nothing to read */
		result = 0;
		goto out;
	}
	res = es_db_query(db, sql, 1, (const char *const[]){ids_text}, errstr, errstr_size);
	if (!res)
		goto out;
	for (int r = 0; r < PQntuples(res); r++)
		add_row(st, es_db_get(res, r, "order_id"), es_db_get(res, r, "event"));
	for (size_t i = 0; i < st->n; i++) {
		struct shipping_stream *stream = &st->v[i];

		if (!stream->error[0])
			shipment_fold(&stream->s, stream->events, stream->error,
				      sizeof(stream->error));
	}
	result = 0;
out:
	if (result)
		shipping_streams_release(st);
	json_decref(ids);
	free(ids_text);
	PQclear(res);
	return result;
}

int shipping_stream_load(struct es_db *db, const char *order_id, struct shipment *s,
			 json_t **events, char *errstr, size_t errstr_size)
{
	struct shipping_streams st;
	int result = -1;

	shipment_init(s);
	if (events)
		*events = NULL;
	if (shipping_streams_load(db, &st, &order_id, 1, errstr, errstr_size))
		return -1;
	if (st.v[0].error[0]) {
		snprintf(errstr, errstr_size, "%s", st.v[0].error);
		goto out;
	}
	*s = st.v[0].s;
	if (events) {
		*events = st.v[0].events;
		st.v[0].events = NULL;
	}
	result = 0;
out:
	shipping_streams_release(&st);
	return result;
}

enum es_handler_result shipping_stream_append(struct es_effect *fx, struct shipping_stream *stream,
					      const char *topic, const char *type, json_t *data,
					      const struct es_event *cause, json_t **row)
{
	enum es_handler_result r = ES_HANDLER_RETRY;
	struct shipment next = stream->s;
	struct es_event *ev;
	char *text = NULL;

	*row = NULL;
	/* The fold first: an event this code would not accept back is a
	 * bug, and must not reach the stream. data is still ours here. */
	if (shipment_apply(&next, type, data, fx->reason, sizeof(fx->reason))) {
		json_decref(data);
		return ES_HANDLER_REJECT;
	}
	ev = es_event_new(SHIPPING_SERVICE, type, stream->order_id, cause, NULL, data);
	if (ev)
		text = es_event_serialize(ev);
	if (text)
		*row = json_pack("{s:s, s:i, s:s, s:s, s:s, s:b}", "order_id", stream->order_id,
				 "version", next.version, "event_id", ev->id, "event_type", type,
				 "event", text, "ended",
				 next.status == SHIPMENT_DELIVERED ||
					 next.status == SHIPMENT_CANCELLED);
	if (!*row) {
		snprintf(fx->reason, sizeof(fx->reason), "out of memory making %s", type);
		goto out;
	}
	r = es_effect_put(fx, topic, ev);
	if (r != ES_HANDLER_OK) {
		json_decref(*row);
		*row = NULL;
		goto out;
	}
	stream->s = next;
out:
	free(text);
	es_event_free(ev);
	return r;
}

int shipping_stream_write(struct es_db *db, const json_t *rows, long delay_ms, char *errstr,
			  size_t errstr_size)
{
	/* The due step follows each order's last event (DISTINCT ON): an
	 * upsert must not touch one row twice in a statement. */
	static const char sql[] =
		"WITH r AS (SELECT * FROM json_to_recordset($1::json) AS r(order_id text, "
		"  version integer, event_id uuid, event_type text, event text, ended boolean)), "
		"appended AS (INSERT INTO shipment_events "
		"  (order_id, version, event_id, event_type, event) "
		"  SELECT order_id, version, event_id, event_type, event::jsonb FROM r), "
		"last AS (SELECT DISTINCT ON (order_id) order_id, ended FROM r "
		"  ORDER BY order_id, version DESC), "
		"ended AS (DELETE FROM shipment_due d USING last "
		"  WHERE d.order_id = last.order_id AND last.ended) "
		"INSERT INTO shipment_due (order_id, due_at) "
		"SELECT order_id, now() + $2::bigint * interval '1 millisecond' FROM last "
		"WHERE NOT ended ON CONFLICT (order_id) DO UPDATE SET due_at = EXCLUDED.due_at";
	char delay[24];

	snprintf(delay, sizeof(delay), "%ld", delay_ms);
	return es_db_exec_rows(db, sql, rows, 1, (const char *const[]){delay}, errstr,
			       errstr_size) < 0
		       ? -1
		       : 0;
}
