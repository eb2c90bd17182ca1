#include "es/inbox.h"

#include <stdio.h>
#include <stdlib.h>

enum es_inbox_result es_inbox_claim(struct es_db *db, const char *consumer, const char *event_id,
				    const char *event_type, char *errstr, size_t errstr_size)
{
	const char *params[3] = {consumer, event_id, event_type};
	long n;

	if (!consumer || !*consumer || !event_id || !*event_id) {
		db->sqlstate[0] = '\0';
		snprintf(errstr, errstr_size, "inbox: consumer and event id must not be empty");
		return ES_INBOX_ERROR;
	}
	/* Outside a transaction the claim would commit on its own, and a crash
	 * before the effect would lose the event for good. */
	if (es_db_ok(db) && !es_db_in_transaction(db)) {
		db->sqlstate[0] = '\0';
		snprintf(errstr, errstr_size, "inbox: claim outside a transaction");
		return ES_INBOX_ERROR;
	}
	/*
	 * ON CONFLICT DO NOTHING, never a plain INSERT that fails with 23505:
	 * a failed statement aborts the whole transaction, the handler's effect
	 * included. A concurrent claim of the same event waits here for the
	 * other transaction, then inserts (it rolled back) or does nothing (it
	 * committed), so exactly one of them sees a row inserted.
	 */
	n = es_db_exec(db,
		       "INSERT INTO es_inbox (consumer, event_id, event_type) VALUES ($1, $2, $3) "
		       "ON CONFLICT (consumer, event_id) DO NOTHING",
		       3, params, errstr, errstr_size);
	if (n < 0)
		return ES_INBOX_ERROR;
	return n == 1 ? ES_INBOX_NEW : ES_INBOX_DUPLICATE;
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
