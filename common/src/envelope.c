#include "es/envelope.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uuid/uuid.h>

#define DATASCHEMA_VERSION 1

static const char hexdigits[] = "0123456789abcdef";

void es_uuid_new(char out[ES_UUID_LEN + 1])
{
	uuid_t u;

	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

bool es_uuid_valid(const char *s)
{
	uuid_t u;

	/* uuid_parse accepts exactly the 8-4-4-4-12 hex form. */
	return s && strlen(s) == ES_UUID_LEN && uuid_parse(s, u) == 0;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 0xf];
	}
}

void es_traceparent_new(char out[ES_TRACEPARENT_LEN + 1])
{
	uuid_t trace, span;

	/* A random UUID is 122 random bits: plenty for W3C's random ids, and
	 * never all zero. */
	uuid_generate_random(trace);
	uuid_generate_random(span);
	memcpy(out, "00-", 3);
	hex_encode(trace, 16, out + 3);
	out[35] = '-';
	hex_encode(span, 8, out + 36);
	memcpy(out + 52, "-01", 4);
}

static bool is_lower_hex(const char *s, size_t n)
{
	bool nonzero = false;

	for (size_t i = 0; i < n; i++) {
		if (!strchr(hexdigits, s[i]) || s[i] == '\0')
			return false;
		if (s[i] != '0')
			nonzero = true;
	}
	return nonzero;
}

bool es_traceparent_valid(const char *s)
{
	if (!s || strlen(s) != ES_TRACEPARENT_LEN)
		return false;
	return s[0] == '0' && s[1] == '0' && s[2] == '-' && is_lower_hex(s + 3, 32) &&
	       s[35] == '-' && is_lower_hex(s + 36, 16) && s[52] == '-' &&
	       strchr(hexdigits, s[53]) && strchr(hexdigits, s[54]);
}

int es_traceparent_trace_id(const char *traceparent, char out[33])
{
	if (!es_traceparent_valid(traceparent))
		return -1;
	memcpy(out, traceparent + 3, 32);
	out[32] = '\0';
	return 0;
}

void es_time_format(long long epoch_ms, char out[ES_TIME_LEN + 1])
{
	time_t secs = (time_t)(epoch_ms / 1000);
	int ms = (int)(epoch_ms % 1000);
	struct tm tm;

	if (ms < 0) {
		ms += 1000;
		secs--;
	}
	gmtime_r(&secs, &tm);
	if (strftime(out, ES_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
		/* A year outside 0..9999: not a time any event can carry. */
		snprintf(out, ES_TIME_LEN + 1, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(out + 19, ES_TIME_LEN + 1 - 19, ".%03uZ", (unsigned int)ms % 1000u);
}

void es_time_now(char out[ES_TIME_LEN + 1])
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	es_time_format((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, out);
}

/* Reads exactly n digits; returns -1 when any is not a digit. */
static int digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int es_time_parse(const char *s, long long *epoch_ms)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	struct tm tm = {0};
	int year, mon, day, hour, min, sec, ms = 0, off = 0;
	const char *p;
	time_t t;

	if (!s || strlen(s) < 20)
		return -1;
	year = digits(s, 4);
	mon = digits(s + 5, 2);
	day = digits(s + 8, 2);
	hour = digits(s + 11, 2);
	min = digits(s + 14, 2);
	sec = digits(s + 17, 2);
	if (year < 0 || mon < 1 || mon > 12 || day < 1 || day > mdays[mon - 1] || hour < 0 ||
	    hour > 23 || min < 0 || min > 59 || sec < 0 || sec > 60 || s[4] != '-' || s[7] != '-' ||
	    (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
		return -1;
	p = s + 19;
	if (*p == '.') {
		int scale = 100, n = 0;

		for (p++; isdigit((unsigned char)*p); p++, n++) {
			ms += (*p - '0') * scale;
			scale /= 10;
		}
		if (n == 0)
			return -1;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;

		/* "+hh:mm": check the length first, digits() reads blindly. */
		if (strnlen(p, 6) < 6)
			return -1;
		oh = digits(p + 1, 2);
		om = digits(p + 4, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59 || p[3] != ':')
			return -1;
		off = (oh * 60 + om) * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;

	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* timegm normalizes Feb 30th into March: a changed day means invalid. */
	if (tm.tm_mday != day)
		return -1;
	*epoch_ms = ((long long)t - (long long)off * 60) * 1000 + ms;
	return 0;
}

int es_event_dataschema(const char *type, char *buf, size_t size)
{
	int n = snprintf(buf, size, "urn:eventshop:schema:%s:%d", type, DATASCHEMA_VERSION);

	return (n < 0 || (size_t)n >= size) ? -1 : 0;
}

void es_event_free(struct es_event *ev)
{
	if (!ev)
		return;
	free(ev->id);
	free(ev->source);
	free(ev->type);
	free(ev->subject);
	free(ev->time);
	free(ev->datacontenttype);
	free(ev->dataschema);
	free(ev->partitionkey);
	free(ev->correlationid);
	free(ev->causationid);
	free(ev->traceparent);
	json_decref(ev->data);
	free(ev);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct es_event *es_event_new(const char *service, const char *type, const char *order_id,
			      const struct es_event *cause, const char *traceparent, json_t *data)
{
	struct es_event *ev = calloc(1, sizeof(*ev));
	char id[ES_UUID_LEN + 1], when[ES_TIME_LEN + 1], tp[ES_TRACEPARENT_LEN + 1];
	char source[128], schema[128];

	if (!ev) {
		json_decref(data);
		return NULL;
	}
	ev->data = data;
	es_uuid_new(id);
	es_time_now(when);
	snprintf(source, sizeof(source), "/eventshop/%s", service);
	es_event_dataschema(type, schema, sizeof(schema));
	if (cause) {
		snprintf(tp, sizeof(tp), "%s", cause->traceparent);
	} else if (es_traceparent_valid(traceparent)) {
		snprintf(tp, sizeof(tp), "%s", traceparent);
	} else {
		es_traceparent_new(tp);
	}

	ev->id = strdup(id);
	ev->source = strdup(source);
	ev->type = strdup(type);
	ev->subject = strdup(order_id);
	ev->time = strdup(when);
	ev->datacontenttype = strdup("application/json");
	ev->dataschema = strdup(schema);
	ev->partitionkey = strdup(order_id);
	ev->correlationid = strdup(cause ? cause->correlationid : order_id);
	ev->causationid = cause ? dup_or_null(cause->id) : NULL;
	ev->traceparent = strdup(tp);
	if (!ev->id || !ev->source || !ev->type || !ev->subject || !ev->time ||
	    !ev->datacontenttype || !ev->dataschema || !ev->partitionkey || !ev->correlationid ||
	    (cause && !ev->causationid) || !ev->traceparent || !ev->data) {
		es_event_free(ev);
		return NULL;
	}
	return ev;
}

char *es_event_serialize(const struct es_event *ev)
{
	json_t *o = json_object();
	char *out;

	json_object_set_new(o, "specversion", json_string("1.0"));
	json_object_set_new(o, "id", json_string(ev->id));
	json_object_set_new(o, "source", json_string(ev->source));
	json_object_set_new(o, "type", json_string(ev->type));
	json_object_set_new(o, "subject", json_string(ev->subject));
	json_object_set_new(o, "time", json_string(ev->time));
	json_object_set_new(o, "datacontenttype", json_string(ev->datacontenttype));
	json_object_set_new(o, "dataschema", json_string(ev->dataschema));
	json_object_set_new(o, "partitionkey", json_string(ev->partitionkey));
	json_object_set_new(o, "correlationid", json_string(ev->correlationid));
	if (ev->causationid)
		json_object_set_new(o, "causationid", json_string(ev->causationid));
	json_object_set_new(o, "traceparent", json_string(ev->traceparent));
	json_object_set(o, "data", ev->data);
	out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return out;
}

/* Attribute rules of the contract's envelope table. */
enum attr_rule {
	ATTR_STRING = 0, /* non-empty string */
	ATTR_UUID,
	ATTR_TIME,
	ATTR_TRACEPARENT,
	ATTR_SOURCE,
};

struct attr_spec {
	const char *name;
	size_t offset;
	enum attr_rule rule;
	bool optional;
};

#define ATTR(field, rule, opt)                                      \
	{                                                           \
#field, offsetof(struct es_event, field), rule, opt \
	}

static const struct attr_spec attrs[] = {
	ATTR(id, ATTR_UUID, false),
	ATTR(source, ATTR_SOURCE, false),
	ATTR(type, ATTR_STRING, false),
	ATTR(subject, ATTR_STRING, false),
	ATTR(time, ATTR_TIME, false),
	ATTR(datacontenttype, ATTR_STRING, false),
	ATTR(dataschema, ATTR_STRING, false),
	ATTR(partitionkey, ATTR_STRING, false),
	ATTR(correlationid, ATTR_STRING, false),
	ATTR(causationid, ATTR_UUID, true),
	ATTR(traceparent, ATTR_TRACEPARENT, false),
};

/* Limits on attribute length keep a hostile event from ballooning logs,
 * headers and database rows. */
#define ATTR_MAX_LEN 256

static const char *attr_problem(const char *v, enum attr_rule rule)
{
	long long ms;

	if (!*v)
		return "is empty";
	if (strlen(v) > ATTR_MAX_LEN)
		return "is longer than 256 bytes";
	switch (rule) {
	case ATTR_UUID:
		return es_uuid_valid(v) ? NULL : "is not a UUID";
	case ATTR_TIME:
		return es_time_parse(v, &ms) == 0 ? NULL : "is not an RFC 3339 timestamp";
	case ATTR_TRACEPARENT:
		return es_traceparent_valid(v) ? NULL : "is not a W3C traceparent";
	case ATTR_SOURCE:
		/* A URI-reference without spaces or control characters. */
		for (const char *p = v; *p; p++) {
			if ((unsigned char)*p <= 0x20 || *p == 0x7f)
				return "is not a URI reference";
		}
		return NULL;
	case ATTR_STRING:
		break;
	}
	return NULL;
}

/* The message as a JSON object of CloudEvents 1.0, within the size limit.
 * Returns a new reference, or NULL with errstr filled. */
static json_t *load_envelope(const void *buf, size_t len, char *errstr, size_t errstr_size)
{
	json_error_t jerr;
	json_t *root, *v;

	if (!buf || len == 0) {
		snprintf(errstr, errstr_size, "empty message");
		return NULL;
	}
	if (len > ES_EVENT_MAX_BYTES) {
		snprintf(errstr, errstr_size, "message of %zu bytes exceeds the %d byte limit", len,
			 ES_EVENT_MAX_BYTES);
		return NULL;
	}
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(errstr, errstr_size, "not valid JSON: %s (line %d, column %d)", jerr.text,
			 jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(root)) {
		snprintf(errstr, errstr_size, "not a JSON object");
		json_decref(root);
		return NULL;
	}
	v = json_object_get(root, "specversion");
	if (!json_is_string(v) || strcmp(json_string_value(v), "1.0")) {
		snprintf(errstr, errstr_size, "attribute 'specversion' %s",
			 v ? "must be \"1.0\"" : "is missing");
		json_decref(root);
		return NULL;
	}
	return root;
}

/* Checks each attribute of attrs[] by its rule and copies it into ev.
 * Returns 0, or -1 with errstr naming the attribute. */
static int copy_attrs(struct es_event *ev, json_t *root, char *errstr, size_t errstr_size)
{
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		char **field = (char **)((char *)ev + attrs[i].offset);
		json_t *v = json_object_get(root, attrs[i].name);
		const char *problem;

		if (!v && attrs[i].optional)
			continue;
		if (!v) {
			snprintf(errstr, errstr_size, "attribute '%s' is missing", attrs[i].name);
			return -1;
		}
		if (!json_is_string(v)) {
			snprintf(errstr, errstr_size, "attribute '%s' is not a string",
				 attrs[i].name);
			return -1;
		}
		problem = attr_problem(json_string_value(v), attrs[i].rule);
		if (problem) {
			snprintf(errstr, errstr_size, "attribute '%s' %s", attrs[i].name, problem);
			return -1;
		}
		*field = strdup(json_string_value(v));
		if (!*field) {
			snprintf(errstr, errstr_size, "out of memory");
			return -1;
		}
	}
	return 0;
}

/* The contract's rules across attributes: JSON data, the partition key
 * equal to the subject, data an object (kept in ev). Returns 0 or -1. */
static int check_contract(struct es_event *ev, json_t *root, char *errstr, size_t errstr_size)
{
	json_t *data;

	if (strcmp(ev->datacontenttype, "application/json")) {
		snprintf(errstr, errstr_size,
			 "attribute 'datacontenttype' is \"%s\", expected \"application/json\"",
			 ev->datacontenttype);
		return -1;
	}
	if (strcmp(ev->partitionkey, ev->subject)) {
		snprintf(errstr, errstr_size, "attribute 'partitionkey' differs from 'subject'");
		return -1;
	}
	data = json_object_get(root, "data");
	if (!json_is_object(data)) {
		snprintf(errstr, errstr_size, "attribute 'data' is %s",
			 data ? "not a JSON object" : "missing");
		return -1;
	}
	ev->data = json_incref(data);
	return 0;
}

/* Unknown extension attributes are allowed by CloudEvents, but only with
 * names it allows: lower-case letters and digits, 1 to 64 of them. */
static int check_attr_names(json_t *root, char *errstr, size_t errstr_size)
{
	const char *key;
	json_t *v;

	json_object_foreach(root, key, v)
	{
		for (const char *p = key; *p; p++) {
			if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p)) {
				snprintf(errstr, errstr_size,
					 "attribute name '%.64s' is not lower-case alphanumeric",
					 key);
				return -1;
			}
		}
		if (!*key || strlen(key) > 64) {
			snprintf(errstr, errstr_size, "attribute name of invalid length");
			return -1;
		}
	}
	return 0;
}

struct es_event *es_event_parse(const void *buf, size_t len, char *errstr, size_t errstr_size)
{
	json_t *root = load_envelope(buf, len, errstr, errstr_size);
	struct es_event *ev = NULL;

	if (!root)
		return NULL;
	ev = calloc(1, sizeof(*ev));
	if (!ev) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	if (copy_attrs(ev, root, errstr, errstr_size) ||
	    check_contract(ev, root, errstr, errstr_size) ||
	    check_attr_names(root, errstr, errstr_size))
		goto fail;
	json_decref(root);
	return ev;
fail:
	es_event_free(ev);
	json_decref(root);
	return NULL;
}
