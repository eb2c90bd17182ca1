/*
 * shopctl watch: the command line, its help, and whether to colour.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "es/config.h"
#include "es/reader.h"
#include "shopctl.h"
#include "watch.h"

#define DEFAULT_WINDOW_MS 250
#define MAX_WINDOW_MS 60000

static const char *const dlq_topics[] = {
	"dlq.order-service",
	"dlq.payment-service",
	"dlq.inventory-service",
	"dlq.email-service",
	"dlq.analytics-service",
	"dlq.shipping-service",
	NULL,
};

enum color_mode {
	COLOR_AUTO,
	COLOR_ALWAYS,
	COLOR_NEVER,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shopctl watch [--from-beginning] [-e] [--order ORDER_ID] [--count N]\n"
		"                     [--window MS] [--color[=WHEN]] [--topics T1,T2,...]\n"
		"\n"
		"Prints the events of every topic of the shop as one stream, one line per\n"
		"event, in the order they happened: the topics orders, payments, inventory,\n"
		"notifications and shipments ($TOPIC_ORDERS, $TOPIC_PAYMENTS,\n"
		"$TOPIC_INVENTORY, $TOPIC_NOTIFICATIONS, $TOPIC_SHIPMENTS when set) and the\n"
		"dead-letter topics dlq.order-service, dlq.payment-service,\n"
		"dlq.inventory-service, dlq.email-service, dlq.analytics-service and\n"
		"dlq.shipping-service. A topic that does not exist yet is skipped with a\n"
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
		SHOPCTL_WATCH_SHORT_ID, DEFAULT_WINDOW_MS, MAX_WINDOW_MS,
		ES_READER_TIMEOUT_MS / 1000);
}

/* Kafka's rule: [a-zA-Z0-9._-], 1 to 249 of them. */
static bool topic_name_valid(const char *s, size_t len)
{
	if (len == 0 || len > SHOPCTL_WATCH_MAX_TOPIC_LEN)
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
static int add_topic(struct shopctl_watch_opts *o, const char *s, size_t len)
{
	if (!topic_name_valid(s, len))
		return shopctl_usage_error("watch",
					   "\"%.*s\" is not a topic name (1 to %d of "
					   "a-z A-Z 0-9 . _ -)",
					   (int)(len > 300 ? 300 : len), s,
					   SHOPCTL_WATCH_MAX_TOPIC_LEN);
	for (int i = 0; i < o->ntopics; i++) {
		if (strlen(o->topics[i]) == len && !memcmp(o->topics[i], s, len))
			return 0;
	}
	if (o->ntopics == SHOPCTL_WATCH_MAX_TOPICS)
		return shopctl_usage_error("watch", "more than %d topics",
					   SHOPCTL_WATCH_MAX_TOPICS);
	snprintf(o->topics[o->ntopics++], sizeof(o->topics[0]), "%.*s", (int)len, s);
	return 0;
}

/* --topics a,b,c */
static int add_topic_list(struct shopctl_watch_opts *o, const char *list)
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
static int add_default_topics(struct shopctl_watch_opts *o)
{
	const char *const names[] = {
		es_config_str("TOPIC_ORDERS", "orders"),
		es_config_str("TOPIC_PAYMENTS", "payments"),
		es_config_str("TOPIC_INVENTORY", "inventory"),
		es_config_str("TOPIC_NOTIFICATIONS", "notifications"),
		es_config_str("TOPIC_SHIPMENTS", "shipments"),
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

int shopctl_watch_opts_parse(struct shopctl_watch_opts *o, int argc, char **argv)
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
	enum color_mode color_mode = COLOR_AUTO;
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
			if (es_parse_ll(optarg, 1, LLONG_MAX, &o->count))
				return shopctl_usage_error(
					"watch", "--count \"%s\" is not a whole number >= 1",
					optarg);
			break;
		case 'w':
			if (es_parse_ll(optarg, 0, MAX_WINDOW_MS, &o->window_ms))
				return shopctl_usage_error(
					"watch",
					"--window \"%s\" is not a whole number of ms from 0 to %d",
					optarg, MAX_WINDOW_MS);
			break;
		case 'c':
			if (!optarg || !strcmp(optarg, "always"))
				color_mode = COLOR_ALWAYS;
			else if (!strcmp(optarg, "never"))
				color_mode = COLOR_NEVER;
			else if (!strcmp(optarg, "auto"))
				color_mode = COLOR_AUTO;
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
	o->color = want_color(color_mode);
	if (o->ntopics == 0)
		return add_default_topics(o);
	return 0;
}
