/*
 * event: what the page gets of one Kafka message, as one line of JSON:
 *
 *   {"topic":"payments","partition":3,"offset":17,"key":"<orderId>",
 *    "timestamp":1764637365000,
 *    "ce":{"id":..,"type":"PaymentFailed","source":..,"subject":..,
 *          "time":..,"correlationid":..,"causationid":..},
 *    "data":{...},
 *    "dlq":{"error":"...","service":"payment-service",...}}
 *
 * A value that is not a CloudEvent of the contract (not JSON, a missing
 * attribute, too large) has "poison" (why, es_event_parse's reason) and
 * "raw" (its first bytes as text) instead of "ce" and "data". A dead
 * letter has "dlq" with its dlq.* headers. Bytes that are not UTF-8 (a
 * key, a raw value, a header) are shown with U+FFFD in their place: the
 * JSON is always valid and nothing in it is trusted (the page inserts
 * every field as text).
 */
#ifndef CONSOLE_EVENT_H
#define CONSOLE_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

/* Values larger than this are shown as poison without their content. */
#define CONSOLE_EVENT_MAX_BYTES (64 * 1024)
/* How much of a poison value "raw" shows. */
#define CONSOLE_RAW_MAX_BYTES 1024

struct console_msg {
	const char *topic;
	int32_t partition;
	int64_t offset;
	const void *key; /* NULL: none */
	size_t key_len;
	const void *value; /* NULL: none (a tombstone) */
	size_t value_len;
	int64_t timestamp_ms; /* -1: none */
	rd_kafka_headers_t *headers; /* NULL: none; not owned */
};

/* The message as JSON (see above). Returns NULL only when out of memory. */
json_t *console_event_json(const struct console_msg *m);

/* bytes as a JSON string, at most max bytes of them, invalid UTF-8 and NUL
 * replaced by U+FFFD. NULL only when out of memory. */
json_t *console_text(const void *bytes, size_t len, size_t max);

#endif
