/*
 * stream: the event store. A shipment's stream is its rows of
 * shipment_events, version 1 first; its state is their fold (shipment.c).
 *
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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/log.h"
#include "shipping.h"

int shipping_stream_load(struct es_db *db, const char *order_id, struct shipment *s,
			 json_t **events, char *errstr, size_t errstr_size)
{
	static const char sql[] = "SELECT event::text AS event FROM shipment_events "
				  "WHERE order_id = $1 ORDER BY version";
	json_t *stream = json_array();
	PGresult *res = NULL;
	int result = -1;

	shipment_init(s);
	if (events)
		*events = NULL;
	if (!stream) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	res = es_db_query(db, sql, 1, (const char *const[]){order_id}, errstr, errstr_size);
	if (!res)
		goto out;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *text = es_db_get(res, i, "event");
		json_t *ev = text ? json_loads(text, 0, NULL) : NULL;

		if (!json_is_object(ev) || json_array_append_new(stream, ev)) {
			snprintf(errstr, errstr_size, "shipment %s: version %d is not an event",
				 order_id, i + 1);
			goto out;
		}
	}
	if (shipment_fold(s, stream, errstr, errstr_size))
		goto out;
	if (events) {
		*events = stream;
		stream = NULL;
	}
	result = 0;
out:
	json_decref(stream);
	PQclear(res);
	return result;
}

/* Keeps shipment_due in step with the new state: the next step is due
 * delay_ms from now while the shipment is on its way; none once it ended. */
static int reschedule(struct es_db *db, const char *order_id, const struct shipment *s,
		      long delay_ms, char *errstr, size_t errstr_size)
{
	static const char upsert[] =
		"INSERT INTO shipment_due (order_id, due_at) "
		"VALUES ($1, now() + $2::bigint * interval '1 millisecond') "
		"ON CONFLICT (order_id) DO UPDATE SET due_at = EXCLUDED.due_at";
	static const char drop[] = "DELETE FROM shipment_due WHERE order_id = $1";
	char delay_s[24];

	if (s->status == SHIPMENT_DELIVERED || s->status == SHIPMENT_CANCELLED)
		return es_db_exec(db, drop, 1, (const char *const[]){order_id}, errstr,
				  errstr_size) < 0
			       ? -1
			       : 0;
	snprintf(delay_s, sizeof(delay_s), "%ld", delay_ms);
	return es_db_exec(db, upsert, 2, (const char *const[]){order_id, delay_s}, errstr,
			  errstr_size) < 0
		       ? -1
		       : 0;
}

enum es_handler_result shipping_stream_append(struct es_effect *fx, struct shipment *s,
					      const char *order_id, const char *topic,
					      long delay_ms, const char *type, json_t *data,
					      const struct es_event *cause)
{
	static const char sql[] = "INSERT INTO shipment_events "
				  "(order_id, version, event_id, event_type, event) "
				  "VALUES ($1, $2::integer, $3::uuid, $4, $5::jsonb)";
	enum es_handler_result r = ES_HANDLER_RETRY;
	struct shipment next = *s;
	struct es_event *ev;
	char version_s[16];
	char *text = NULL;

	/* The fold first: an event this code would not accept back is a
	 * bug, and must not reach the stream. data is still ours here. */
	if (shipment_apply(&next, type, data, fx->reason, sizeof(fx->reason))) {
		json_decref(data);
		return ES_HANDLER_REJECT;
	}
	ev = es_event_new(SHIPPING_SERVICE, type, order_id, cause, NULL, data);
	if (!ev || !(text = es_event_serialize(ev))) {
		snprintf(fx->reason, sizeof(fx->reason), "out of memory making %s", type);
		goto out;
	}
	snprintf(version_s, sizeof(version_s), "%d", next.version);
	if (es_db_exec(fx->db, sql, 5,
		       (const char *const[]){order_id, version_s, ev->id, type, text}, fx->reason,
		       sizeof(fx->reason)) < 0 ||
	    reschedule(fx->db, order_id, &next, delay_ms, fx->reason, sizeof(fx->reason))) {
		r = es_effect_db_failed(fx);
		goto out;
	}
	r = es_effect_put(fx, topic, ev);
	if (r != ES_HANDLER_OK)
		goto out;
	*s = next;
out:
	free(text);
	es_event_free(ev);
	return r;
}
