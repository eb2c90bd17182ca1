/*
 * envelope: CloudEvents 1.0 in structured JSON mode, as eventshop's contract
 * defines it (every Kafka message value is one such event).
 *
 *   {"specversion":"1.0","id":"<uuid>","source":"/eventshop/order-service",
 *    "type":"OrderPlaced","subject":"<orderId>","time":"...T...Z",
 *    "datacontenttype":"application/json","dataschema":"urn:eventshop:schema:OrderPlaced:1",
 *    "partitionkey":"<orderId>","correlationid":"<orderId>",
 *    "causationid":"<id of the cause>","traceparent":"00-...-...-01","data":{...}}
 *
 * es_event_parse() is the only door for bytes read from Kafka: it rejects
 * every malformed, missing or ill-typed attribute with a reason fit for a
 * dead-letter header, and never crashes (it is fuzzed: tests/fuzz).
 */
#ifndef ES_ENVELOPE_H
#define ES_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* Bytes we refuse to parse at all: a message this large is not ours. */
#define ES_EVENT_MAX_BYTES (1024 * 1024)

#define ES_UUID_LEN 36
#define ES_TRACEPARENT_LEN 55
#define ES_TIME_LEN 24 /* 2026-11-22T04:15:10.123Z */

/* All strings are owned by the event and freed by es_event_free(). */
struct es_event {
	char *id;
	char *source;
	char *type;
	char *subject;
	char *time;
	char *datacontenttype;
	char *dataschema;
	char *partitionkey;
	char *correlationid;
	char *causationid; /* NULL on the first event of a saga */
	char *traceparent;
	json_t *data; /* an object; owned (one reference) */
};

/*
 * Makes a new event of `type` about order `order_id`, produced by `service`
 * (e.g. "payment-service"): a fresh UUID id, the time now, and dataschema
 * derived from the type. When `cause` is given the new event continues its
 * saga: causationid = cause->id, correlationid and traceparent copied from
 * it. Without a cause, correlationid = order_id and traceparent is the given
 * one if valid, else a new one. `data` is stolen (even on failure).
 * Returns NULL only when out of memory.
 */
struct es_event *es_event_new(const char *service, const char *type, const char *order_id,
			      const struct es_event *cause, const char *traceparent, json_t *data);

void es_event_free(struct es_event *ev);

/* Serializes to compact JSON (attributes in the order above). Returns a
 * malloc'd NUL-terminated string the caller frees, or NULL on OOM. */
char *es_event_serialize(const struct es_event *ev);

/*
 * Parses and validates untrusted bytes (need not be NUL-terminated).
 * Returns a new event, or NULL with a one-line reason in errstr, e.g.
 *   "attribute 'time' is not an RFC 3339 timestamp"
 */
struct es_event *es_event_parse(const void *buf, size_t len, char *errstr, size_t errstr_size);

/* The dataschema of a type: "urn:eventshop:schema:<type>:<version>". */
int es_event_dataschema(const char *type, char *buf, size_t size);

/* Writes a new UUID v4 (36 chars + NUL). */
void es_uuid_new(char out[ES_UUID_LEN + 1]);
bool es_uuid_valid(const char *s);

/* Writes a new W3C traceparent "00-<32 hex>-<16 hex>-01". */
void es_traceparent_new(char out[ES_TRACEPARENT_LEN + 1]);
/* Version 00 form with non-zero ids, lower-case hex. */
bool es_traceparent_valid(const char *s);
/* Copies the 32-hex trace id out of a valid traceparent. */
int es_traceparent_trace_id(const char *traceparent, char out[33]);

/* Formats "now" (or a time in ms since the epoch) as RFC 3339 UTC with
 * milliseconds. */
void es_time_now(char out[ES_TIME_LEN + 1]);
void es_time_format(long long epoch_ms, char out[ES_TIME_LEN + 1]);
/* Parses an RFC 3339 timestamp (any offset, any fraction) into ms since the
 * epoch. Returns 0, or -1 when it is not one. */
int es_time_parse(const char *s, long long *epoch_ms);

#endif
