#include "es/outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

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

/* ev serialized, once it is known that Kafka will take it. Returns the
 * payload (the caller frees it), or NULL with errstr filled. */
static char *outbox_payload(const struct es_event *ev, char *errstr, size_t errstr_size)
{
	char *payload = es_event_serialize(ev);
	size_t size;

	if (!payload) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
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
		return NULL;
	}
	return payload;
}

int es_outbox_put(struct es_db *db, const char *topic, const struct es_event *ev, char *errstr,
		  size_t errstr_size)
{
	char *payload = outbox_payload(ev, errstr, errstr_size);
	const char *params[5] = {topic, ev->partitionkey, ev->id, ev->type, payload};
	int rc;

	if (!payload)
		return -1;
	rc = es_db_exec_one(db,
			    "INSERT INTO es_outbox (topic, msg_key, event_id, event_type, payload)"
			    " VALUES ($1, $2, $3, $4, $5)",
			    5, params, errstr, errstr_size);
	free(payload);
	if (!rc)
		es_db_after_commit(db);
	return rc;
}

/* The rows in the order they were added: [[topic, key, id, type, payload],
 * ...], the one parameter of the INSERT. */
struct es_outbox_batch {
	json_t *rows;
};

struct es_outbox_batch *es_outbox_batch_new(void)
{
	struct es_outbox_batch *b = calloc(1, sizeof(*b));

	if (b && !(b->rows = json_array())) {
		free(b);
		b = NULL;
	}
	return b;
}

void es_outbox_batch_free(struct es_outbox_batch *b)
{
	if (!b)
		return;
	json_decref(b->rows);
	free(b);
}

size_t es_outbox_batch_len(const struct es_outbox_batch *b)
{
	return json_array_size(b->rows);
}

void es_outbox_batch_truncate(struct es_outbox_batch *b, size_t len)
{
	while (json_array_size(b->rows) > len)
		json_array_remove(b->rows, json_array_size(b->rows) - 1);
}

int es_outbox_batch_add(struct es_outbox_batch *b, const char *topic, const struct es_event *ev,
			char *errstr, size_t errstr_size)
{
	char *payload = outbox_payload(ev, errstr, errstr_size);
	json_t *row;

	if (!payload)
		return -1;
	/* json_pack's "s" copies; "s" also refuses text that is not UTF-8,
	 * which a serialized event never is. */
	row = json_pack("[sssss]", topic, ev->partitionkey, ev->id, ev->type, payload);
	free(payload);
	if (!row || json_array_append_new(b->rows, row)) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	return 0;
}

char *es_outbox_batch_rows(const struct es_outbox_batch *b)
{
	return json_dumps(b->rows, JSON_COMPACT);
}

void es_outbox_batch_stored(struct es_db *db, struct es_outbox_batch *b)
{
	json_array_clear(b->rows);
	es_db_after_commit(db);
}

long es_outbox_batch_insert(struct es_db *db, struct es_outbox_batch *b, char *errstr,
			    size_t errstr_size)
{
	size_t n = json_array_size(b->rows);
	const char *params[1];
	char *rows;
	long inserted;

	if (n == 0)
		return 0;
	rows = es_outbox_batch_rows(b);
	if (!rows) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	params[0] = rows;
	inserted = es_db_exec(db, ES_OUTBOX_INSERT_FROM("$1"), 1, params, errstr, errstr_size);
	free(rows);
	if (inserted >= 0 && (size_t)inserted != n) {
		snprintf(errstr, errstr_size, "outbox: %ld of %zu rows inserted", inserted, n);
		return -1;
	}
	if (inserted >= 0)
		es_outbox_batch_stored(db, b);
	return inserted;
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
