#include "event.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/consumer.h"
#include "es/envelope.h"

/* The length of the valid UTF-8 sequence at s (1 to 4), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned int cp;

	if (s[0] < 0x80)
		return s[0] ? 1 : 0;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

json_t *console_text(const void *bytes, size_t len, size_t max)
{
	const unsigned char *s = bytes;
	char *out;
	size_t o = 0, i = 0;
	json_t *j;

	if (len > max)
		len = max;
	out = malloc(len * 3 + 1);
	if (!out)
		return NULL;
	while (i < len) {
		size_t n = utf8_seq(s + i, len - i);

		if (n) {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	j = json_stringn(out, o);
	free(out);
	return j;
}

static void set_text(json_t *obj, const char *name, const char *s)
{
	if (s)
		json_object_set_new(obj, name, console_text(s, strlen(s), CONSOLE_RAW_MAX_BYTES));
}

/* The dlq.* headers, by their name without "dlq." ("original.topic"
 * becomes "originalTopic"), or NULL when there are none. */
static json_t *dlq_headers(rd_kafka_headers_t *hdrs)
{
	static const struct {
		const char *header, *field;
	} known[] = {
		{ES_DLQ_HDR_ERROR, "error"},
		{ES_DLQ_HDR_SERVICE, "service"},
		{ES_DLQ_HDR_TOPIC, "originalTopic"},
		{ES_DLQ_HDR_PARTITION, "originalPartition"},
		{ES_DLQ_HDR_OFFSET, "originalOffset"},
		{ES_DLQ_HDR_ATTEMPTS, "attempts"},
		{ES_DLQ_HDR_TIME, "time"},
	};
	json_t *out = NULL;

	if (!hdrs)
		return NULL;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		const void *v;
		size_t len;

		if (rd_kafka_header_get_last(hdrs, known[i].header, &v, &len))
			continue;
		if (!out)
			out = json_object();
		json_object_set_new(out, known[i].field,
				    console_text(v ? v : "", v ? len : 0, CONSOLE_RAW_MAX_BYTES));
	}
	return out;
}

static json_t *ce_attributes(const struct es_event *ev)
{
	json_t *ce = json_object();

	set_text(ce, "id", ev->id);
	set_text(ce, "type", ev->type);
	set_text(ce, "source", ev->source);
	set_text(ce, "subject", ev->subject);
	set_text(ce, "time", ev->time);
	set_text(ce, "correlationid", ev->correlationid);
	set_text(ce, "causationid", ev->causationid);
	return ce;
}

json_t *console_event_json(const struct console_msg *m)
{
	json_t *j = json_object(), *dlq;
	struct es_event *ev = NULL;
	char why[256];

	if (!j)
		return NULL;
	set_text(j, "topic", m->topic);
	json_object_set_new(j, "partition", json_integer(m->partition));
	json_object_set_new(j, "offset", json_integer(m->offset));
	if (m->key)
		json_object_set_new(j, "key",
				    console_text(m->key, m->key_len, CONSOLE_RAW_MAX_BYTES));
	if (m->timestamp_ms >= 0)
		json_object_set_new(j, "timestamp", json_integer(m->timestamp_ms));
	if (!m->value)
		snprintf(why, sizeof(why), "no value (a tombstone)");
	else if (m->value_len > CONSOLE_EVENT_MAX_BYTES)
		snprintf(why, sizeof(why), "a value of %zu bytes, over the console's %d",
			 m->value_len, CONSOLE_EVENT_MAX_BYTES);
	else
		ev = es_event_parse(m->value, m->value_len, why, sizeof(why));
	if (ev) {
		json_object_set_new(j, "ce", ce_attributes(ev));
		json_object_set(j, "data", ev->data);
		es_event_free(ev);
	} else {
		set_text(j, "poison", why);
		if (m->value)
			json_object_set_new(
				j, "raw",
				console_text(m->value, m->value_len, CONSOLE_RAW_MAX_BYTES));
	}
	dlq = dlq_headers(m->headers);
	if (dlq)
		json_object_set_new(j, "dlq", dlq);
	return j;
}
