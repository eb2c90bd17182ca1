/*
 * shopctl watch: one message as one line. What the line shows is read
 * leniently from the message (its view), then written with every byte
 * that came from Kafka escaped, coloured by the kind of event.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "es/config.h"
#include "es/envelope.h"
#include "es/consumer.h"
#include "shopctl.h"
#include "watch.h"

/* The columns of a line. */
#define WHERE_WIDTH 17
#define TYPE_WIDTH 17
#define MAX_TYPE_CHARS 40
#define MAX_TEXT_CHARS 200

/* The SGR colours of the kinds of event. */
#define COLOR_ORDERS "36" /* cyan */
#define COLOR_PAYMENTS "32" /* green */
#define COLOR_INVENTORY "33" /* yellow */
#define COLOR_NOTIFICATIONS "35" /* magenta */
#define COLOR_FAILURE "31" /* red: failed, rejected, cancelled, unreadable */
#define COLOR_DEAD "1;31" /* bold red */

long long shopctl_watch_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------- safe output */

/*
 * Writes at most max characters of buf, escaped, with "..." when it was
 * cut and ellipsis is true, then spaces up to width columns.
 */
static void put_text(FILE *f, const void *buf, size_t len, size_t max, bool ellipsis, size_t width)
{
	size_t cut = shopctl_utf8_prefix(buf, len, max);
	size_t cols;

	shopctl_print_escaped(f, buf, cut, 0, &cols);
	if (cut < len && ellipsis) {
		fputs("...", f);
		cols += 3;
	}
	for (; cols < width; cols++)
		fputc(' ', f);
}

static void put_str(FILE *f, const char *s, size_t max, bool ellipsis, size_t width)
{
	put_text(f, s, strlen(s), max, ellipsis, width);
}

/* ----------------------------------------------------- reading an event */

/* The value of the last header `name`; false when absent. */
static bool header(const rd_kafka_message_t *rkm, const char *name, const void **value, size_t *len)
{
	rd_kafka_headers_t *hdrs;

	if (rd_kafka_message_headers(rkm, &hdrs) ||
	    rd_kafka_header_get_last(hdrs, name, value, len) || !*value)
		return false;
	return true;
}

/* A dead letter carries the consumer loop's dlq.error header. */
static bool is_dead_letter(const rd_kafka_message_t *rkm)
{
	const void *value;
	size_t len;

	return header(rkm, ES_DLQ_HDR_ERROR, &value, &len);
}

/* ms since the epoch of an RFC 3339 header value. */
static int header_time(const rd_kafka_message_t *rkm, const char *name, long long *ms)
{
	char buf[64];
	const void *value;
	size_t len;

	if (!header(rkm, name, &value, &len) || len >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%.*s", (int)len, (const char *)value);
	return es_time_parse(buf, ms);
}

/*
 * The time an event is sorted and shown by: its CloudEvent time; for a dead
 * letter, when it was dead-lettered (its original time would file it among
 * the events of long ago); else the Kafka timestamp, else now.
 */
static long long event_time(const rd_kafka_message_t *rkm, const struct shopctl_watch_view *v)
{
	long long ms;

	if (v->dead && !header_time(rkm, ES_DLQ_HDR_TIME, &ms))
		return ms;
	if (!v->dead && v->time && !es_time_parse(v->time, &ms))
		return ms;
	ms = rd_kafka_message_timestamp(rkm, NULL);
	return ms >= 0 ? ms : shopctl_watch_wall_ms();
}

static const char *attr(json_t *root, const char *name)
{
	return json_string_value(json_object_get(root, name));
}

/* Only what is not a JSON object is shown as unreadable. */
void shopctl_watch_view_read(struct shopctl_watch_view *v, const rd_kafka_message_t *rkm)
{
	json_error_t jerr;

	memset(v, 0, sizeof(*v));
	if (!rkm->payload || rkm->len == 0) {
		snprintf(v->why, sizeof(v->why), "empty value");
	} else if (rkm->len > ES_EVENT_MAX_BYTES) {
		snprintf(v->why, sizeof(v->why), "%zu bytes: too large for an event", rkm->len);
	} else {
		v->root = json_loadb(rkm->payload, rkm->len, 0, &jerr);
		if (!v->root) {
			snprintf(v->why, sizeof(v->why), "not JSON: %s", jerr.text);
		} else if (!json_is_object(v->root)) {
			snprintf(v->why, sizeof(v->why), "not a JSON object");
			json_decref(v->root);
			v->root = NULL;
		}
	}
	if (v->root) {
		v->type = attr(v->root, "type");
		v->subject = attr(v->root, "subject");
		v->id = attr(v->root, "id");
		v->cause = attr(v->root, "causationid");
		v->time = attr(v->root, "time");
	}
	if (v->subject && *v->subject) {
		v->order = v->subject;
		v->order_len = strlen(v->subject);
	} else if (rkm->key && rkm->key_len) {
		v->order = rkm->key;
		v->order_len = rkm->key_len;
	}
	v->dead = is_dead_letter(rkm);
	v->time_ms = event_time(rkm, v);
}

void shopctl_watch_view_release(struct shopctl_watch_view *v)
{
	json_decref(v->root);
}

/* ------------------------------------------------------------ a line */

static bool local_time(long long ms, struct tm *tm, int *msec)
{
	long long sec = ms / 1000;
	int rem = (int)(ms % 1000);
	time_t t;

	if (rem < 0) {
		rem += 1000;
		sec--;
	}
	t = (time_t)sec;
	*msec = rem;
	return localtime_r(&t, tm) != NULL;
}

int shopctl_watch_local_day(long long ms)
{
	struct tm tm;
	int msec;

	if (!local_time(ms, &tm, &msec))
		return 0;
	return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

static void put_time(FILE *f, long long ms)
{
	struct tm tm;
	int msec;

	if (local_time(ms, &tm, &msec))
		fprintf(f, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, msec);
	else
		fputs("??:??:??.???", f);
}

static bool has_word(const char *type, const char *word)
{
	return type && strstr(type, word);
}

/* The colour of a line: failures in red whatever their topic, then by the
 * service the type belongs to, then by the role of the topic. */
static const char *line_color(const struct shopctl_watch_view *v, const char *topic_color)
{
	if (v->dead)
		return COLOR_DEAD;
	if (!v->root || has_word(v->type, "Failed") || has_word(v->type, "Rejected") ||
	    has_word(v->type, "Cancelled"))
		return COLOR_FAILURE;
	if (v->type && !strncmp(v->type, "Order", 5))
		return COLOR_ORDERS;
	if (v->type && !strncmp(v->type, "Payment", 7))
		return COLOR_PAYMENTS;
	if (v->type && !strncmp(v->type, "Inventory", 9))
		return COLOR_INVENTORY;
	if (v->type && !strncmp(v->type, "Email", 5))
		return COLOR_NOTIFICATIONS;
	return topic_color;
}

/* "order 1b2c3d4e  id 9f3a01c2  cause 5e6f7a8b" */
static void put_ids(FILE *f, const struct shopctl_watch_view *v)
{
	fputs("order ", f);
	if (v->order)
		put_text(f, v->order, v->order_len, SHOPCTL_WATCH_SHORT_ID, false,
			 SHOPCTL_WATCH_SHORT_ID);
	else
		put_str(f, "-", SHOPCTL_WATCH_SHORT_ID, false, SHOPCTL_WATCH_SHORT_ID);
	fputs("  id ", f);
	put_str(f, v->id ? v->id : "-", SHOPCTL_WATCH_SHORT_ID, false, SHOPCTL_WATCH_SHORT_ID);
	fputs("  cause ", f);
	put_str(f, v->cause ? v->cause : "-", SHOPCTL_WATCH_SHORT_ID, false, 0);
}

/* Header `name` escaped, or "?". */
static void put_header(FILE *f, const rd_kafka_message_t *rkm, const char *name, size_t max)
{
	const void *value;
	size_t len;

	if (header(rkm, name, &value, &len))
		put_text(f, value, len, max, true, 0);
	else
		fputc('?', f);
}

/* "  reason: WHY  (from TOPIC/P@O by SERVICE after N attempts)", one attempt
 * in the singular. */
static void put_dead_letter(FILE *f, const rd_kafka_message_t *rkm)
{
	const void *value;
	size_t len;

	fputs("  reason: ", f);
	put_header(f, rkm, ES_DLQ_HDR_ERROR, MAX_TEXT_CHARS);
	if (header(rkm, ES_DLQ_HDR_TOPIC, &value, &len)) {
		fputs("  (from ", f);
		put_text(f, value, len, SHOPCTL_WATCH_MAX_TOPIC_LEN, true, 0);
		fputc('/', f);
		put_header(f, rkm, ES_DLQ_HDR_PARTITION, 12);
		fputc('@', f);
		put_header(f, rkm, ES_DLQ_HDR_OFFSET, 20);
		if (header(rkm, ES_DLQ_HDR_SERVICE, &value, &len)) {
			fputs(" by ", f);
			put_text(f, value, len, 60, true, 0);
		}
		if (header(rkm, ES_DLQ_HDR_ATTEMPTS, &value, &len)) {
			fputs(" after ", f);
			put_text(f, value, len, 12, true, 0);
			fputs(len == 1 && *(const char *)value == '1' ? " attempt" : " attempts",
			      f);
		}
		fputc(')', f);
	}
}

/* The type column: the event's type; for a dead letter, DEAD LETTER and
 * the type it had (its ce_type header, else the one in its value). */
static void put_type(FILE *f, const rd_kafka_message_t *rkm, const struct shopctl_watch_view *v,
		     bool color)
{
	const void *value;
	size_t len;

	if (color)
		fputs("\033[1m", f);
	if (v->dead) {
		fputs("DEAD LETTER ", f);
		if (header(rkm, "ce_type", &value, &len))
			put_text(f, value, len, MAX_TYPE_CHARS, true, TYPE_WIDTH - 12);
		else
			put_str(f, v->type ? v->type : "?", MAX_TYPE_CHARS, true, TYPE_WIDTH - 12);
	} else if (!v->root) {
		put_str(f, "NOT AN EVENT", MAX_TYPE_CHARS, false, TYPE_WIDTH);
	} else {
		put_str(f, v->type ? v->type : "?", MAX_TYPE_CHARS, true, TYPE_WIDTH);
	}
	if (color)
		fputs("\033[22m", f);
}

char *shopctl_watch_render(const struct shopctl_watch_view *v, const rd_kafka_message_t *rkm,
			   const char *topic, const char *topic_color, bool color)
{
	const char *sgr = color ? line_color(v, topic_color) : NULL;
	char where[SHOPCTL_WATCH_MAX_TOPIC_LEN + 48], *line = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&line, &size);

	if (!f)
		return NULL;
	if (sgr)
		fprintf(f, "\033[%sm", sgr);
	put_time(f, v->time_ms);
	snprintf(where, sizeof(where), "%s/%" PRId32 "@%" PRId64, topic, rkm->partition,
		 rkm->offset);
	fputs("  ", f);
	put_str(f, where, sizeof(where), false, WHERE_WIDTH);
	fputc(' ', f);
	put_type(f, rkm, v, color);
	fputs("  ", f);
	put_ids(f, v);
	/* A dead letter's reason says already why its value is no event. */
	if (!v->root && !v->dead) {
		fputs("  value ", f);
		put_str(f, v->why, MAX_TEXT_CHARS, true, 0);
	}
	if (v->dead)
		put_dead_letter(f, rkm);
	if (sgr)
		fputs("\033[0m", f);
	if (fclose(f)) {
		free(line);
		return NULL;
	}
	return line;
}

const char *shopctl_watch_topic_color(const char *name)
{
	if (!strcmp(name, es_config_str("TOPIC_ORDERS", "orders")))
		return COLOR_ORDERS;
	if (!strcmp(name, es_config_str("TOPIC_PAYMENTS", "payments")))
		return COLOR_PAYMENTS;
	if (!strcmp(name, es_config_str("TOPIC_INVENTORY", "inventory")))
		return COLOR_INVENTORY;
	if (!strcmp(name, es_config_str("TOPIC_NOTIFICATIONS", "notifications")))
		return COLOR_NOTIFICATIONS;
	return NULL;
}
