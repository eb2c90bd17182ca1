#include "es/inbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* The batch as one JSON parameter, [{"id":..,"type":..}, ...]: PostgreSQL
 * reads it with json_to_recordset, and jansson does the quoting. */
static char *claim_json(size_t n, const char *const *ids, const char *const *types)
{
	json_t *a = json_array();
	char *text;

	for (size_t i = 0; a && i < n; i++) {
		if (json_array_append_new(a, json_pack("{s:s, s:s?}", "id", ids[i], "type",
						       types ? types[i] : NULL))) {
			json_decref(a);
			return NULL;
		}
	}
	text = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return text;
}

long es_inbox_claim(struct es_db *db, const char *consumer, size_t n, const char *const *ids,
		    const char *const *types, bool *is_new, char *errstr, size_t errstr_size)
{
	const char *params[2] = {consumer, NULL};
	PGresult *res;
	char *batch;
	long news = 0;

	for (size_t i = 0; i < n; i++) {
		is_new[i] = false;
		if (!ids[i] || !*ids[i]) {
			snprintf(errstr, errstr_size, "inbox: event ids must not be empty");
			return -1;
		}
	}
	if (!consumer || !*consumer) {
		snprintf(errstr, errstr_size, "inbox: the consumer must not be empty");
		return -1;
	}
	/* Outside a transaction the claim would commit on its own, and a
	 * crash before the effects would lose the events for good. */
	if (es_db_ok(db) && !es_db_in_transaction(db)) {
		snprintf(errstr, errstr_size, "inbox: claim outside a transaction");
		return -1;
	}
	if (!n)
		return 0;
	batch = claim_json(n, ids, types);
	if (!batch) {
		snprintf(errstr, errstr_size, "inbox: out of memory");
		return -1;
	}
	params[1] = batch;
	/*
	 * ON CONFLICT DO NOTHING, never a plain INSERT that fails with 23505:
	 * a failed statement aborts the whole transaction, the effects
	 * included. A repeat inside the list conflicts with its first
	 * occurrence and inserts nothing. A concurrent claim of the same event
	 * waits here for the other transaction, then inserts (it rolled back)
	 * or does nothing (it committed), so exactly one of them sees a row
	 * inserted.
	 */
	res = es_db_query(db,
			  "INSERT INTO es_inbox (consumer, event_id, event_type) "
			  "SELECT $1, e.id, e.type FROM json_to_recordset($2::json) "
			  "AS e(id text, type text) "
			  "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id",
			  2, params, errstr, errstr_size);
	free(batch);
	if (!res)
		return -1;
	/* Each id inserted makes its first occurrence new. */
	for (int r = 0; r < PQntuples(res); r++) {
		const char *id = PQgetvalue(res, r, 0);

		for (size_t i = 0; i < n; i++) {
			if (!strcmp(ids[i], id)) {
				is_new[i] = true;
				news++;
				break;
			}
		}
	}
	PQclear(res);
	return news;
}

int es_inbox_forget(struct es_db *db, const char *consumer, const char *event_id, char *errstr,
		    size_t errstr_size)
{
	const char *params[2] = {consumer, event_id};

	return es_db_exec(db, "DELETE FROM es_inbox WHERE consumer = $1 AND event_id = $2", 2,
			  params, errstr, errstr_size) < 0
		       ? -1
		       : 0;
}

long es_inbox_count(struct es_db *db, const char *consumer, char *errstr, size_t errstr_size)
{
	const char *params[1] = {consumer};
	const char *value;
	PGresult *res;
	long n;

	res = es_db_query(db, "SELECT count(*) AS n FROM es_inbox WHERE consumer = $1", 1, params,
			  errstr, errstr_size);
	if (!res)
		return -1;
	value = es_db_get(res, 0, "n");
	n = value ? strtol(value, NULL, 10) : -1;
	PQclear(res);
	if (n < 0)
		snprintf(errstr, errstr_size, "inbox: count returned no value");
	return n;
}
