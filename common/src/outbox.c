#include "es/outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/config.h"

/* What the relay's headers (content-type, ce_*) add to a message. */
#define HEADERS_ALLOWANCE 512

/* The producer's message.max.bytes (librdkafka's default unless
 * KAFKA_MESSAGE_MAX_BYTES sets it, as it then does for the producer). */
static long max_message_bytes(void)
{
	char why[128];
	long v;

	if (es_config_long("KAFKA_MESSAGE_MAX_BYTES", 1000000, 1000, 1000000000, &v, why,
			   sizeof(why)))
		v = 1000000;
	return v;
}

int es_outbox_put(struct es_db *db, const char *topic, const struct es_event *ev, char *errstr,
		  size_t errstr_size)
{
	char *payload = es_event_serialize(ev);
	const char *params[5] = {topic, ev->partitionkey, ev->id, ev->type, payload};
	size_t size;
	int rc;

	if (!payload) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	/* The producer would refuse it at every round, forever: refuse it
	 * now, in the transaction that would have stored it. */
	size = strlen(payload) + strlen(ev->partitionkey) + HEADERS_ALLOWANCE;
	if (size > (size_t)max_message_bytes()) {
		snprintf(errstr, errstr_size,
			 "%s %s is too large for Kafka: %zu bytes with its key and headers, "
			 "message.max.bytes is %ld (KAFKA_MESSAGE_MAX_BYTES)",
			 ev->type, ev->id, size, max_message_bytes());
		free(payload);
		return -1;
	}
	rc = es_db_exec_one(db,
			    "INSERT INTO es_outbox (topic, msg_key, event_id, event_type, payload)"
			    " VALUES ($1, $2, $3, $4, $5)",
			    5, params, errstr, errstr_size);
	free(payload);
	return rc;
}

int es_outbox_retry(struct es_db *db, const char *id, char *errstr, size_t errstr_size)
{
	long n;

	n = es_db_exec(db,
		       "UPDATE es_outbox SET parked_at = NULL, park_reason = NULL, attempts = 0"
		       " WHERE id = $1::bigint AND parked_at IS NOT NULL AND published_at IS NULL",
		       1, (const char *const[]){id}, errstr, errstr_size);
	if (n < 0)
		return -1;
	/* Wakes the relay at once rather than at its next poll. */
	if (n == 1) {
		PGresult *res = es_db_query(
			db, "SELECT pg_notify('es_outbox_' || current_schema(), '')", 0, NULL,
			errstr, errstr_size);

		if (!res)
			return -1;
		PQclear(res);
	}
	return (int)n;
}
