/*
 * shopctl watch: every topic of the shop as one stream, one line per event,
 * in the order things happened.
 *
 * The events of one order travel on different topics (OrderPlaced on
 * orders, InventoryReserved on inventory), and a consumer fetches each
 * partition at its own pace: read raw, a reaction can show up before its
 * cause. watch therefore holds each event for a short window after it
 * arrived, in a heap ordered by event time, and prints it once the window
 * has passed; an event that arrives late but happened earlier overtakes the
 * ones still held.
 *
 * Reading is kread's: partitions assigned by hand under a throwaway group
 * id, nothing ever committed, so watching moves no daemon's offsets.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "es/config.h"
#include "es/daemon.h"
#include "es/envelope.h"
#include "es/kafka.h"
#include "kread.h"
#include "shopctl.h"

#define MAX_TOPICS 64
#define MAX_TOPIC_LEN 249 /* Kafka's own limit */
#define DEFAULT_WINDOW_MS 250
#define MAX_WINDOW_MS 60000
#define POLL_MS 100
/*
 * While the history is read (--from-beginning) every event is held, so that
 * all of it comes out sorted; beyond this many the earliest is printed
 * early, so that a huge history cannot take all memory (it then comes out
 * sorted in runs).
 */
#define MAX_HELD 200000

/* The columns of a line. */
#define WHERE_WIDTH 17
#define TYPE_WIDTH 17
#define SHORT_ID 8 /* enough to match a cause to an earlier line by eye */
#define MAX_TYPE_CHARS 40
#define MAX_TEXT_CHARS 200

/* The SGR colours of the kinds of event. */
#define COLOR_ORDERS "36" /* cyan */
#define COLOR_PAYMENTS "32" /* green */
#define COLOR_INVENTORY "33" /* yellow */
#define COLOR_NOTIFICATIONS "35" /* magenta */
#define COLOR_FAILURE "31" /* red: failed, rejected, cancelled, unreadable */
#define COLOR_DEAD "1;31" /* bold red */

static const char *const dlq_topics[] = {
	"dlq.order-service", "dlq.payment-service",   "dlq.inventory-service",
	"dlq.email-service", "dlq.analytics-service", NULL,
};

enum color_mode {
	COLOR_AUTO,
	COLOR_ALWAYS,
	COLOR_NEVER,
};

struct opts {
	char topics[MAX_TOPICS][MAX_TOPIC_LEN + 1];
	int ntopics;
	bool from_beginning;
	bool exit_at_end;
	long long window_ms;
	long long count; /* 0: no limit */
	const char *order; /* argv's */
	enum color_mode color_mode;
};

/* Where one partition stands. */
struct part {
	int64_t end; /* the high watermark when the watch started */
	bool done; /* read up to end */
};

struct topic {
	const char *name; /* struct opts's */
	const char *color; /* of its role in the shop, NULL for others */
	int n;
	struct part *parts;
};

/* An event waiting for its turn. */
struct held {
	long long time_ms; /* event time, ms since the epoch: the order */
	unsigned long long seq; /* arrival: keeps equal times in arrival order */
	long long release_ms; /* monotonic: when the window after it has passed */
	char *line; /* rendered, without the newline; owned */
};

/* A binary min-heap of held events by (time_ms, seq). */
struct heap {
	struct held **v;
	size_t n, cap;
};

struct watch {
	const struct opts *o;
	bool color;
	rd_kafka_t *rk;
	struct topic topics[MAX_TOPICS];
	int ntopics;
	int remaining; /* partitions not yet read up to their end */
	struct heap held;
	unsigned long long seq;
	long long printed;
	long long progress_ms; /* monotonic: the last message or end reached */
	int last_day; /* the local date last shown, yyyymmdd */
	char last_error[512];
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shopctl watch [--from-beginning] [-e] [--order ORDER_ID] [--count N]\n"
		"                     [--window MS] [--color[=WHEN]] [--topics T1,T2,...]\n"
		"\n"
		"Prints the events of every topic of the shop as one stream, one line per\n"
		"event, in the order they happened: the topics orders, payments, inventory\n"
		"and notifications ($TOPIC_ORDERS, $TOPIC_PAYMENTS, $TOPIC_INVENTORY,\n"
		"$TOPIC_NOTIFICATIONS when set) and the dead-letter topics dlq.order-service,\n"
		"dlq.payment-service, dlq.inventory-service, dlq.email-service and\n"
		"dlq.analytics-service. A topic that does not exist yet is skipped with a\n"
		"notice. For example:\n"
		"\n"
		"  12:03:04.123  orders/2@17       OrderPlaced        order 1b2c3d4e  id 9f3a01c2  "
		"cause -\n"
		"  12:03:04.180  payments/0@5      PaymentProcessed   order 1b2c3d4e  id 77aa0b12  "
		"cause 9f3a01c2\n"
		"  12:03:04.191  inventory/1@9     InventoryReserved  order 1b2c3d4e  id 5e6f7a8b  "
		"cause 9f3a01c2\n"
		"  12:03:04.240  orders/2@18       OrderConfirmed     order 1b2c3d4e  id 0c4d2e6f  "
		"cause 5e6f7a8b\n"
		"\n"
		"that is: the event's time (local, from its CloudEvent time attribute; a\n"
		"line \"--- YYYY-MM-DD ---\" comes first when the date is not today's),\n"
		"where it is (topic/partition@offset), its type, the first %d characters\n"
		"of its order id (the CloudEvent subject, else the Kafka key), of its own\n"
		"id and of the id of the event that caused it (\"cause\", \"-\" for the\n"
		"first event of a saga): PaymentProcessed above was caused by OrderPlaced.\n"
		"A dead letter says DEAD LETTER, the type it had, why it was set aside\n"
		"and where it came from; its time is when it was dead-lettered. A value\n"
		"that is not a CloudEvent is shown as such. Control characters and bytes\n"
		"that are not UTF-8 are escaped (\\n, \\xNN).\n"
		"\n"
		"Topics are read in parallel, so an event can arrive before the one that\n"
		"caused it: watch holds each event for a window after it arrived and\n"
		"prints the events it holds in time order (the Kafka timestamp stands in\n"
		"for a missing time).\n"
		"\n"
		"  --from-beginning  start at the first message each topic still holds\n"
		"                    (default: at the end, only new events)\n"
		"  -e, --exit        stop once the topics are read up to where they ended\n"
		"                    when watch started (with --from-beginning: the whole\n"
		"                    history, sorted), instead of at Ctrl-C\n"
		"  --order ORDER_ID  only the events of this order (or of the orders whose\n"
		"                    id starts with ORDER_ID: the 8 characters shown do)\n"
		"  --count N         stop after N events\n"
		"  --window MS       how long to hold each event (default %d, 0 to %d)\n"
		"  --color[=WHEN]    colour by kind of event: auto (on a terminal, unless\n"
		"                    NO_COLOR is set; the default), always (also for\n"
		"                    --color alone) or never\n"
		"  --topics LIST     read these topics (comma-separated; may be repeated)\n"
		"                    instead of the shop's nine\n"
		"\n"
		"watch joins no consumer group and commits nothing: it disturbs no daemon.\n"
		"Ctrl-C (or SIGTERM) prints what it holds and exits 0. It gives up with\n"
		"exit status 1 when Kafka ($KAFKA_BOOTSTRAP_SERVERS, default\n"
		"127.0.0.1:9092) does not answer in %d s, or none of the topics exists.\n",
		SHORT_ID, DEFAULT_WINDOW_MS, MAX_WINDOW_MS, SHOPCTL_KAFKA_TIMEOUT_MS / 1000);
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ options */

/* Kafka's rule: [a-zA-Z0-9._-], 1 to 249 of them. */
static bool topic_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > MAX_TOPIC_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Adds a topic once. Returns 0, or the status of a usage error. */
static int add_topic(struct opts *o, const char *s, size_t len)
{
	if (!topic_name_valid(s, len))
		return shopctl_usage_error("watch",
					   "\"%.*s\" is not a topic name (1 to %d of "
					   "a-z A-Z 0-9 . _ -)",
					   (int)(len > 300 ? 300 : len), s, MAX_TOPIC_LEN);
	for (int i = 0; i < o->ntopics; i++) {
		if (strlen(o->topics[i]) == len && !memcmp(o->topics[i], s, len))
			return 0;
	}
	if (o->ntopics == MAX_TOPICS)
		return shopctl_usage_error("watch", "more than %d topics", MAX_TOPICS);
	snprintf(o->topics[o->ntopics++], sizeof(o->topics[0]), "%.*s", (int)len, s);
	return 0;
}

/* --topics a,b,c */
static int add_topic_list(struct opts *o, const char *list)
{
	const char *p = list;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		int rc = add_topic(o, p, len);

		if (rc)
			return rc;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

/* The shop's topics, named as the daemons name them. */
static int add_default_topics(struct opts *o)
{
	const char *const names[] = {
		es_config_str("TOPIC_ORDERS", "orders"),
		es_config_str("TOPIC_PAYMENTS", "payments"),
		es_config_str("TOPIC_INVENTORY", "inventory"),
		es_config_str("TOPIC_NOTIFICATIONS", "notifications"),
	};
	int rc;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		rc = add_topic(o, names[i], strlen(names[i]));
		if (rc)
			return rc;
	}
	for (size_t i = 0; dlq_topics[i]; i++) {
		rc = add_topic(o, dlq_topics[i], strlen(dlq_topics[i]));
		if (rc)
			return rc;
	}
	return 0;
}

/* Fills o from the command line. Returns 0, -1 after --help, or the
 * status of a usage error. */
static int parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"from-beginning", no_argument, NULL, 'b'},
		{"exit", no_argument, NULL, 'e'},
		{"order", required_argument, NULL, 'o'},
		{"count", required_argument, NULL, 'n'},
		{"window", required_argument, NULL, 'w'},
		{"color", optional_argument, NULL, 'c'},
		{"topics", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c, rc;

	memset(o, 0, sizeof(*o));
	o->window_ms = DEFAULT_WINDOW_MS;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":eh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->from_beginning = true;
			break;
		case 'e':
			o->exit_at_end = true;
			break;
		case 'o':
			if (!optarg[0])
				return shopctl_usage_error("watch", "--order ORDER_ID is empty");
			o->order = optarg;
			break;
		case 'n':
			if (shopctl_parse_long(optarg, 1, LLONG_MAX, &o->count))
				return shopctl_usage_error(
					"watch", "--count \"%s\" is not a whole number >= 1",
					optarg);
			break;
		case 'w':
			if (shopctl_parse_long(optarg, 0, MAX_WINDOW_MS, &o->window_ms))
				return shopctl_usage_error(
					"watch",
					"--window \"%s\" is not a whole number of ms from 0 to %d",
					optarg, MAX_WINDOW_MS);
			break;
		case 'c':
			if (!optarg || !strcmp(optarg, "always"))
				o->color_mode = COLOR_ALWAYS;
			else if (!strcmp(optarg, "never"))
				o->color_mode = COLOR_NEVER;
			else if (!strcmp(optarg, "auto"))
				o->color_mode = COLOR_AUTO;
			else
				return shopctl_usage_error(
					"watch", "--color \"%s\" is not one of auto, always, never",
					optarg);
			break;
		case 't':
			rc = add_topic_list(o, optarg);
			if (rc)
				return rc;
			break;
		case 'h':
			usage(stdout);
			return -1;
		case ':':
			return shopctl_usage_error("watch", "%s needs a value", argv[optind - 1]);
		default:
			return shopctl_usage_error("watch", "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return shopctl_usage_error("watch", "unexpected argument \"%s\"", argv[optind]);
	if (o->ntopics == 0)
		return add_default_topics(o);
	return 0;
}

static bool want_color(enum color_mode mode)
{
	const char *no_color = getenv("NO_COLOR");
	const char *term = getenv("TERM");

	if (mode != COLOR_AUTO)
		return mode == COLOR_ALWAYS;
	/* https://no-color.org: present and not empty. */
	if (no_color && *no_color)
		return false;
	if (term && !strcmp(term, "dumb"))
		return false;
	return isatty(STDOUT_FILENO);
}

/* ------------------------------------------------------- safe output */

static size_t put_control(FILE *f, unsigned char c)
{
	if (c == '\n') {
		fputs("\\n", f);
		return 2;
	}
	if (c == '\t') {
		fputs("\\t", f);
		return 2;
	}
	if (c == '\r') {
		fputs("\\r", f);
		return 2;
	}
	fprintf(f, "\\x%02x", c);
	return 4;
}

/* The length of the UTF-8 sequence led by c, in text known to be valid. */
static size_t utf8_len(unsigned char c)
{
	if (c < 0x80)
		return 1;
	if (c < 0xe0)
		return 2;
	if (c < 0xf0)
		return 3;
	return 4;
}

/*
 * Writes len bytes of buf on one line by shopctl_print_escaped's rules, and
 * also escapes the C1 control characters (U+0080 to U+009F), which some
 * terminals obey like ESC sequences. Returns the columns written (one per
 * character: wide characters are rare in events).
 */
static size_t put_escaped(FILE *f, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	bool valid = shopctl_utf8_valid(buf, len);
	size_t cols = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (c < 0x20 || c == 0x7f) {
			cols += put_control(f, c);
		} else if (valid && c >= 0x80) {
			size_t n = utf8_len(c);

			if (c == 0xc2 && p[i + 1] < 0xa0) {
				fprintf(f, "\\x%02x\\x%02x", c, p[i + 1]);
				cols += 8;
			} else {
				fwrite(p + i, 1, n, f);
				cols++;
			}
			i += n - 1;
		} else if (valid || (c < 0x7f && c != '\\')) {
			fputc(c, f);
			cols++;
		} else if (c == '\\') {
			fputs("\\\\", f);
			cols += 2;
		} else {
			fprintf(f, "\\x%02x", c);
			cols += 4;
		}
	}
	return cols;
}

/* The bytes of the first n characters of buf (of its first n bytes when it
 * is not valid UTF-8). */
static size_t prefix_len(const void *buf, size_t len, size_t n)
{
	const unsigned char *p = buf;
	size_t i = 0;

	if (!shopctl_utf8_valid(buf, len))
		return len < n ? len : n;
	for (size_t chars = 0; i < len && chars < n; chars++)
		i += utf8_len(p[i]);
	return i;
}

/*
 * Writes at most max characters of buf, escaped, with "..." when it was
 * cut and ellipsis is true, then spaces up to width columns.
 */
static void put_text(FILE *f, const void *buf, size_t len, size_t max, bool ellipsis, size_t width)
{
	size_t cut = prefix_len(buf, len, max);
	size_t cols = put_escaped(f, buf, cut);

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

/* What watch shows of one message, borrowed from it and from root. */
struct view {
	json_t *root; /* the value as JSON, or NULL; owned */
	char why[200]; /* why the value is not a CloudEvent, "" when it is one */
	const char *type, *subject, *id, *cause, *time; /* NULL when absent */
	const void *order; /* subject, else the key; NULL when neither */
	size_t order_len;
};

static const char *attr(json_t *root, const char *name)
{
	return json_string_value(json_object_get(root, name));
}

/* Reads rkm's value leniently: a viewer shows what is there even when
 * es_event_parse would refuse it; only what is not a JSON object is shown
 * as unreadable. */
static void view_read(struct view *v, const rd_kafka_message_t *rkm)
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
}

static void view_release(struct view *v)
{
	json_decref(v->root);
}

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
static long long event_time(const rd_kafka_message_t *rkm, const struct view *v, bool dead)
{
	long long ms;

	if (dead && !header_time(rkm, ES_DLQ_HDR_TIME, &ms))
		return ms;
	if (!dead && v->time && !es_time_parse(v->time, &ms))
		return ms;
	ms = rd_kafka_message_timestamp(rkm, NULL);
	return ms >= 0 ? ms : wall_ms();
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

static int local_day(long long ms)
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
static const char *line_color(const struct topic *t, const struct view *v, bool dead)
{
	if (dead)
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
	return t->color;
}

/* "order 1b2c3d4e  id 9f3a01c2  cause 5e6f7a8b" */
static void put_ids(FILE *f, const struct view *v)
{
	fputs("order ", f);
	if (v->order)
		put_text(f, v->order, v->order_len, SHORT_ID, false, SHORT_ID);
	else
		put_str(f, "-", SHORT_ID, false, SHORT_ID);
	fputs("  id ", f);
	put_str(f, v->id ? v->id : "-", SHORT_ID, false, SHORT_ID);
	fputs("  cause ", f);
	put_str(f, v->cause ? v->cause : "-", SHORT_ID, false, 0);
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

/* "  reason: WHY  (from TOPIC/P@O by SERVICE after N attempts)" */
static void put_dead_letter(FILE *f, const rd_kafka_message_t *rkm)
{
	const void *value;
	size_t len;

	fputs("  reason: ", f);
	put_header(f, rkm, ES_DLQ_HDR_ERROR, MAX_TEXT_CHARS);
	if (header(rkm, ES_DLQ_HDR_TOPIC, &value, &len)) {
		fputs("  (from ", f);
		put_text(f, value, len, MAX_TOPIC_LEN, true, 0);
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
			fputs(" attempts", f);
		}
		fputc(')', f);
	}
}

/* The type column: the event's type; for a dead letter, DEAD LETTER and
 * the type it had (its ce_type header, else the one in its value). */
static void put_type(FILE *f, const rd_kafka_message_t *rkm, const struct view *v, bool dead,
		     bool color)
{
	const void *value;
	size_t len;

	if (color)
		fputs("\033[1m", f);
	if (dead) {
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

/* Renders one message as a line (malloc'd, no newline), or NULL when out
 * of memory. */
static char *render(const struct watch *w, const struct topic *t, const rd_kafka_message_t *rkm,
		    const struct view *v, bool dead, long long time_ms)
{
	const char *color = w->color ? line_color(t, v, dead) : NULL;
	char where[MAX_TOPIC_LEN + 48], *line = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&line, &size);

	if (!f)
		return NULL;
	if (color)
		fprintf(f, "\033[%sm", color);
	put_time(f, time_ms);
	snprintf(where, sizeof(where), "%s/%" PRId32 "@%" PRId64, t->name, rkm->partition,
		 rkm->offset);
	fputs("  ", f);
	put_str(f, where, sizeof(where), false, WHERE_WIDTH);
	fputc(' ', f);
	put_type(f, rkm, v, dead, w->color);
	fputs("  ", f);
	put_ids(f, v);
	if (!v->root) {
		fputs("  value ", f);
		put_str(f, v->why, MAX_TEXT_CHARS, true, 0);
	}
	if (dead)
		put_dead_letter(f, rkm);
	if (color)
		fputs("\033[0m", f);
	if (fclose(f)) {
		free(line);
		return NULL;
	}
	return line;
}

/* ------------------------------------------------------ the held events */

static bool earlier(const struct held *a, const struct held *b)
{
	return a->time_ms < b->time_ms || (a->time_ms == b->time_ms && a->seq < b->seq);
}

static void swap(struct held **a, struct held **b)
{
	struct held *t = *a;

	*a = *b;
	*b = t;
}

static int heap_push(struct heap *h, struct held *e)
{
	size_t i;

	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct held **grown = realloc(h->v, cap * sizeof(*grown));

		if (!grown)
			return -1;
		h->v = grown;
		h->cap = cap;
	}
	i = h->n++;
	h->v[i] = e;
	while (i > 0 && earlier(h->v[i], h->v[(i - 1) / 2])) {
		swap(&h->v[i], &h->v[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	return 0;
}

static struct held *heap_pop(struct heap *h)
{
	struct held *top;
	size_t i = 0;

	if (h->n == 0)
		return NULL;
	top = h->v[0];
	h->v[0] = h->v[--h->n];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;

		if (l < h->n && earlier(h->v[l], h->v[min]))
			min = l;
		if (r < h->n && earlier(h->v[r], h->v[min]))
			min = r;
		if (min == i)
			break;
		swap(&h->v[i], &h->v[min]);
		i = min;
	}
	return top;
}

static void held_free(struct held *e)
{
	if (e) {
		free(e->line);
		free(e);
	}
}

static void heap_release(struct heap *h)
{
	for (size_t i = 0; i < h->n; i++)
		held_free(h->v[i]);
	free(h->v);
}

static bool count_reached(const struct watch *w)
{
	return w->o->count && w->printed >= w->o->count;
}

/* Prints and frees the earliest held event, after a date line when its
 * day is not the last one shown. */
static void print_next(struct watch *w)
{
	struct held *e = heap_pop(&w->held);
	int day = local_day(e->time_ms);

	if (day != w->last_day) {
		printf("--- %04d-%02d-%02d ---\n", day / 10000, day / 100 % 100, day % 100);
		w->last_day = day;
	}
	fputs(e->line, stdout);
	putchar('\n');
	w->printed++;
	held_free(e);
}

/*
 * Prints the held events whose window has passed (all of them when all is
 * true), earliest first; while the history is still being read, none. An
 * event still in its window holds back the later ones behind it. Returns
 * 0, or -1 when stdout cannot be written (errno set).
 */
static int release(struct watch *w, bool all)
{
	long long now = mono_ms();
	bool any = false;

	while (w->held.n > 0 && !count_reached(w)) {
		if (!all && (w->remaining > 0 || w->held.v[0]->release_ms > now))
			break;
		print_next(w);
		any = true;
	}
	if (any && fflush(stdout) == EOF)
		return -1;
	return 0;
}

/* How long the poll may wait without delaying the next release. */
static int poll_timeout(const struct watch *w)
{
	long long wait;

	if (w->held.n == 0 || w->remaining > 0)
		return POLL_MS;
	wait = w->held.v[0]->release_ms - mono_ms();
	if (wait < 0)
		return 0;
	return wait < POLL_MS ? (int)wait : POLL_MS;
}

/* ------------------------------------------------------------ reading */

static struct topic *find_topic(struct watch *w, const rd_kafka_message_t *rkm)
{
	const char *name = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : NULL;

	for (int i = 0; name && i < w->ntopics; i++) {
		if (!strcmp(w->topics[i].name, name))
			return &w->topics[i];
	}
	return NULL;
}

/* Live, a learner wants to know that what comes next is new. */
static void say_history_read(const struct watch *w)
{
	if (w->o->from_beginning && !w->o->exit_at_end)
		fprintf(stderr,
			"shopctl: watch: history read (%llu event%s); watching for new ones\n",
			w->seq, w->seq == 1 ? "" : "s");
}

static void partition_done(struct watch *w, struct part *p)
{
	if (p->done)
		return;
	p->done = true;
	if (--w->remaining == 0)
		say_history_read(w);
}

/* The order id, or its first characters: the lines show only those. */
static bool order_matches(const struct watch *w, const struct view *v)
{
	size_t len;

	if (!w->o->order)
		return true;
	len = strlen(w->o->order);
	return v->order && v->order_len >= len && !memcmp(v->order, w->o->order, len);
}

/* Renders rkm and holds it. Returns 0, or -1 when out of memory. */
static int hold(struct watch *w, struct topic *t, const rd_kafka_message_t *rkm)
{
	bool dead = is_dead_letter(rkm);
	struct held *e = NULL;
	struct view v;
	int rc = -1;

	view_read(&v, rkm);
	if (!order_matches(w, &v)) {
		rc = 0;
		goto out;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		goto out;
	e->time_ms = event_time(rkm, &v, dead);
	e->seq = w->seq++;
	e->release_ms = mono_ms() + w->o->window_ms;
	e->line = render(w, t, rkm, &v, dead, e->time_ms);
	if (!e->line || heap_push(&w->held, e))
		goto out;
	e = NULL;
	rc = 0;
out:
	held_free(e);
	view_release(&v);
	return rc;
}

/* Handles what the poll returned. Returns 0, or -1 when out of memory. */
static int on_message(struct watch *w, const rd_kafka_message_t *rkm)
{
	struct topic *t = find_topic(w, rkm);
	struct part *p;

	if (rkm->err && rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
		/* Mostly transient (a broker restarting): librdkafka retries.
		 * Said once per new error, not once per poll. */
		if (strcmp(w->last_error, rd_kafka_message_errstr(rkm))) {
			snprintf(w->last_error, sizeof(w->last_error), "%s",
				 rd_kafka_message_errstr(rkm));
			if (!w->o->exit_at_end)
				shopctl_err("watch: %s (still trying)", w->last_error);
		}
		return 0;
	}
	w->progress_ms = mono_ms();
	if (!t || rkm->partition < 0 || rkm->partition >= t->n)
		return 0;
	p = &t->parts[rkm->partition];
	if (rkm->err) {
		partition_done(w, p);
		return 0;
	}
	/* With -e, what came after the start is left for another run. */
	if (w->o->exit_at_end && rkm->offset >= p->end)
		return 0;
	if (hold(w, t, rkm))
		return -1;
	if (rkm->offset >= p->end - 1)
		partition_done(w, p);
	return 0;
}

/* The colour of a topic of the shop by its role, for events whose type
 * does not say. */
static const char *topic_color(const char *name)
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

/* Adds topic t's partitions to parts at their starting offsets. */
static int open_topic(struct watch *w, struct topic *t, rd_kafka_topic_partition_list_t *parts,
		      char *errstr, size_t errstr_size)
{
	t->parts = calloc((size_t)t->n, sizeof(*t->parts));
	if (!t->parts) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	for (int32_t i = 0; i < t->n; i++) {
		int64_t low, high, start;

		if (shopctl_kread_watermarks(w->rk, t->name, i, &low, &high, errstr, errstr_size))
			return -1;
		start = w->o->from_beginning ? low : high;
		t->parts[i].end = high;
		t->parts[i].done = start >= high;
		if (!t->parts[i].done)
			w->remaining++;
		/* With -e a partition read to its end needs no fetching. */
		if (!w->o->exit_at_end || !t->parts[i].done)
			rd_kafka_topic_partition_list_add(parts, t->name, i)->offset = start;
	}
	return 0;
}

/*
 * Finds the topics that exist, skipping the others with a notice, and
 * assigns their partitions. Returns 0, or -1 with errstr filled: Kafka
 * does not answer, or none of the topics exists.
 */
static int open_topics(struct watch *w, char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
	const struct opts *o = w->o;
	rd_kafka_resp_err_t err;
	char why[512];
	int rc = -1, nparts = 0;

	for (int i = 0; i < o->ntopics; i++) {
		struct topic *t = &w->topics[w->ntopics];
		bool missing;

		t->name = o->topics[i];
		if (shopctl_kread_partitions(w->rk, t->name, &t->n, &missing, why, sizeof(why))) {
			if (missing) {
				fprintf(stderr,
					"shopctl: watch: topic %s does not exist (yet): "
					"skipped\n",
					t->name);
				continue;
			}
			snprintf(errstr, errstr_size, "Kafka at %s: %s", shopctl_bootstrap(), why);
			goto out;
		}
		t->color = topic_color(t->name);
		w->ntopics++;
		if (open_topic(w, t, parts, why, sizeof(why))) {
			snprintf(errstr, errstr_size, "Kafka at %s: %s", shopctl_bootstrap(), why);
			goto out;
		}
		nparts += t->n;
	}
	if (w->ntopics == 0) {
		snprintf(errstr, errstr_size, "none of the %d topic%s exists on Kafka at %s",
			 o->ntopics, o->ntopics == 1 ? "" : "s", shopctl_bootstrap());
		goto out;
	}
	err = rd_kafka_assign(w->rk, parts);
	if (err) {
		snprintf(errstr, errstr_size, "assigning %d partitions: %s", parts->cnt,
			 rd_kafka_err2str(err));
		goto out;
	}
	if (!o->exit_at_end)
		fprintf(stderr,
			"shopctl: watching %d topic%s (%d partition%s) from %s; Ctrl-C stops\n",
			w->ntopics, w->ntopics == 1 ? "" : "s", nparts, nparts == 1 ? "" : "s",
			o->from_beginning ? "the beginning" : "now on");
	if (w->remaining == 0)
		say_history_read(w);
	rc = 0;
out:
	rd_kafka_topic_partition_list_destroy(parts);
	return rc;
}

/* Stops waiting for the partitions still behind: their events are then
 * released by their window like new ones. */
static void give_up_history(struct watch *w)
{
	for (int i = 0; i < w->ntopics; i++) {
		for (int32_t p = 0; p < w->topics[i].n; p++)
			partition_done(w, &w->topics[i].parts[p]);
	}
}

/*
 * Reads until Ctrl-C, --count, or with -e the end. The history must come
 * in without a pause longer than the Kafka timeout: with -e a longer one
 * fails, without -e it ends the wait for the history. Returns an exit
 * status.
 */
static int run(struct watch *w)
{
	long long timeout_ms = SHOPCTL_KAFKA_TIMEOUT_MS;

	w->progress_ms = mono_ms();
	while (!es_stop && !count_reached(w) && !(w->o->exit_at_end && w->remaining == 0)) {
		rd_kafka_message_t *rkm = rd_kafka_consumer_poll(w->rk, poll_timeout(w));

		if (rkm) {
			int rc = on_message(w, rkm);

			rd_kafka_message_destroy(rkm);
			if (rc) {
				shopctl_err("watch: out of memory");
				return SHOPCTL_FAIL;
			}
		} else if (w->remaining > 0 && mono_ms() - w->progress_ms > timeout_ms) {
			if (w->o->exit_at_end) {
				shopctl_err(
					"watch: Kafka at %s: %d partition%s not read to the end: "
					"nothing came for %lld s (%s)",
					shopctl_bootstrap(), w->remaining,
					w->remaining == 1 ? "" : "s", timeout_ms / 1000,
					w->last_error[0] ? w->last_error : "no answer");
				return SHOPCTL_FAIL;
			}
			shopctl_err("watch: the history did not come in %lld s (%s): printing "
				    "events as they come",
				    timeout_ms / 1000,
				    w->last_error[0] ? w->last_error : "no answer");
			give_up_history(w);
		}
		/* Past MAX_HELD, the earliest goes out before its time. */
		while (w->held.n > MAX_HELD)
			print_next(w);
		if (release(w, false))
			return -1;
	}
	return release(w, true) ? -1 : SHOPCTL_OK;
}

int shopctl_cmd_watch(int argc, char **argv)
{
	struct watch w = {0};
	struct opts *o = calloc(1, sizeof(*o));
	char err[1024];
	int rc = SHOPCTL_FAIL;

	if (!o) {
		shopctl_err("out of memory");
		return SHOPCTL_FAIL;
	}
	rc = parse_opts(o, argc, argv);
	if (rc) {
		rc = rc < 0 ? SHOPCTL_OK : rc;
		goto out;
	}
	rc = SHOPCTL_FAIL;
	w.o = o;
	w.color = want_color(o->color_mode);
	w.last_day = local_day(wall_ms());
	if (es_daemon_signals()) {
		shopctl_err("watch: cannot install signal handlers");
		goto out;
	}
	w.rk = shopctl_kread_new(shopctl_bootstrap(), err, sizeof(err));
	if (!w.rk) {
		shopctl_err("watch: %s", err);
		goto out;
	}
	if (open_topics(&w, err, sizeof(err))) {
		shopctl_err("watch: %s", err);
		goto out;
	}
	rc = run(&w);
	if (rc < 0) {
		/* Whoever read our output has gone (| head): nothing to say. */
		if (errno == EPIPE) {
			rc = SHOPCTL_OK;
		} else {
			shopctl_err("watch: writing the output: %s", strerror(errno));
			rc = SHOPCTL_FAIL;
		}
	}
out:
	heap_release(&w.held);
	shopctl_kread_free(w.rk);
	for (int i = 0; i < w.ntopics; i++)
		free(w.topics[i].parts);
	free(o);
	return rc;
}
