/*
 * shopctl dlq: look at the dead-letter topics and send a dead letter back.
 *
 * Every consumer loop (common/src/consumer.c) writes a message it could
 * not process to dlq.<service> with the original key, value and headers,
 * plus the ES_DLQ_HDR_* headers saying why and where it came from.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "es/config.h"
#include "es/envelope.h"
#include "es/consumer.h"
#include "es/reader.h"
#include "shopctl.h"

/* The header a replayed message carries: where its dead letter was. */
#define REPLAYED_FROM_HDR "dlq.replayed.from"
#define DLQ_HDR_PREFIX "dlq."
#define MAX_TOPICS 64
#define DELIVERY_TIMEOUT_MS 60000

static const char *const services[] = {
	"order-service",
	"payment-service",
	"inventory-service",
	"email-service",
	"analytics-service",
	"shipping-service",
	NULL,
};

static void usage_list(FILE *f)
{
	fprintf(f, "usage: shopctl dlq list [--topic TOPIC]... [SERVICE...]\n"
		   "\n"
		   "Lists the dead letters of the given services (default all six:\n"
		   "order-service payment-service inventory-service email-service\n"
		   "analytics-service shipping-service), one line each, read from\n"
		   "dlq.<service>:\n"
		   "\n"
		   "  TOPIC[PARTITION]@OFFSET  original=TOPIC[PARTITION]@OFFSET  attempts=N\n"
		   "      time=WHEN  error=WHY\n"
		   "\n"
		   "(on one line). Control characters in header values are escaped; a header\n"
		   "that is missing shows as \"?\". The count per topic goes to stderr.\n"
		   "\n"
		   "  --topic TOPIC  read this topic too (instead of the default six when\n"
		   "                 no SERVICE is named)\n"
		   "\n"
		   "TOPIC_DLQ, when set, is the dead-letter topic of the one SERVICE named,\n"
		   "as for the daemons. The topics are read from their first message to\n"
		   "their end at the start, by a reader that joins no consumer group and\n"
		   "commits nothing, so listing never moves anybody's offsets.\n");
}

static void usage_show(FILE *f)
{
	fprintf(f, "usage: shopctl dlq show TOPIC PARTITION OFFSET\n"
		   "\n"
		   "Prints one dead letter: its topic, partition, offset, timestamp and key,\n"
		   "every header (the original ones and the dlq.* ones), and the value as\n"
		   "it is. A key, header or value that is not valid UTF-8 is printed with\n"
		   "\\xNN escapes (and says so). Control characters are escaped too, but\n"
		   "for the newlines and tabs of the value.\n"
		   "Reads without joining a group or committing anything.\n");
}

static void usage_replay(FILE *f)
{
	fprintf(f, "usage: shopctl dlq replay TOPIC PARTITION OFFSET [--to TOPIC]\n"
		   "\n"
		   "Sends a dead letter back: produces its key and value to the topic it was\n"
		   "first read from (its " ES_DLQ_HDR_TOPIC " header), or to --to TOPIC, with\n"
		   "its original headers, without the dlq.* ones, plus\n"
		   "\n"
		   "  " REPLAYED_FROM_HDR ": TOPIC[PARTITION]@OFFSET\n"
		   "\n"
		   "through the idempotent producer, and waits for the broker to acknowledge\n"
		   "it. It prints where the message went. The same key puts it in the same\n"
		   "partition as the events of its order (after them).\n"
		   "\n"
		   "Why replaying is safe: every consumer applies an event through its inbox,\n"
		   "which records the event's id in the same transaction as the effect. The\n"
		   "services that had already applied the event (all the other consumers of\n"
		   "that topic, and this one if it got that far) recognise the id and skip\n"
		   "it; the service whose handler failed, once fixed, now processes it. If it\n"
		   "still cannot, it dead-letters it again: nothing is lost. Replaying one\n"
		   "dead letter twice is just as harmless.\n"
		   "\n"
		   "  --to TOPIC  produce here instead of the original topic\n");
}

static void usage_dlq(FILE *f)
{
	fprintf(f, "usage: shopctl dlq list [--topic TOPIC]... [SERVICE...]\n"
		   "       shopctl dlq show TOPIC PARTITION OFFSET\n"
		   "       shopctl dlq replay TOPIC PARTITION OFFSET [--to TOPIC]\n"
		   "\n"
		   "The dead-letter topics dlq.<service>: list them, show one dead letter,\n"
		   "send one back to where it came from. 'shopctl dlq COMMAND --help' says\n"
		   "more. Kafka: KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092) and KAFKA_*.\n");
}

/* ------------------------------------------------------------- headers */

/* The value of the last header `name` as a string, into buf; NULL when
 * absent. */
static const char *header(const rd_kafka_message_t *rkm, const char *name, char *buf, size_t size)
{
	rd_kafka_headers_t *hdrs;
	const void *value;
	size_t len;

	if (rd_kafka_message_headers(rkm, &hdrs) ||
	    rd_kafka_header_get_last(hdrs, name, &value, &len))
		return NULL;
	if (!value)
		return "(null)";
	snprintf(buf, size, "%.*s", (int)len, (const char *)value);
	return buf;
}

/* Prints header `name` for a one-line listing. */
static void put_header(const rd_kafka_message_t *rkm, const char *name)
{
	char buf[4096];
	const char *v = header(rkm, name, buf, sizeof(buf));

	if (v)
		shopctl_print_escaped(stdout, v, strlen(v), 0, NULL);
	else
		putchar('?');
}

/* ---------------------------------------------------------------- list */

static int list_one(void *arg, const rd_kafka_message_t *rkm)
{
	printf("%s[%" PRId32 "]@%" PRId64 "  original=", rd_kafka_topic_name(rkm->rkt),
	       rkm->partition, rkm->offset);
	put_header(rkm, ES_DLQ_HDR_TOPIC);
	putchar('[');
	put_header(rkm, ES_DLQ_HDR_PARTITION);
	fputs("]@", stdout);
	put_header(rkm, ES_DLQ_HDR_OFFSET);
	fputs("  attempts=", stdout);
	put_header(rkm, ES_DLQ_HDR_ATTEMPTS);
	fputs("  time=", stdout);
	put_header(rkm, ES_DLQ_HDR_TIME);
	fputs("  error=", stdout);
	put_header(rkm, ES_DLQ_HDR_ERROR);
	putchar('\n');
	return 0;
}

/* Fills topics (bufs hold the dlq.<service> names) from the arguments.
 * Returns the count, or -1 after a usage error. */
static int list_topics(int nservices, char **names, const char **topics, int ntopics,
		       char (*bufs)[256])
{
	const char *dlq_env = es_config_str("TOPIC_DLQ", NULL);
	const char *const *want = (const char *const *)names;
	int n = ntopics;

	if (dlq_env && nservices != 1) {
		shopctl_usage_error("dlq list",
				    "TOPIC_DLQ is set (%s): it is the dead-letter topic of one "
				    "service; name that SERVICE, or unset TOPIC_DLQ",
				    dlq_env);
		return -1;
	}
	if (nservices == 0 && ntopics == 0) {
		want = services;
		nservices = 5;
	}
	for (int i = 0; i < nservices; i++) {
		if (n == MAX_TOPICS) {
			shopctl_usage_error("dlq list", "more than %d topics", MAX_TOPICS);
			return -1;
		}
		if (dlq_env)
			snprintf(bufs[i], sizeof(bufs[i]), "%s", dlq_env);
		else
			snprintf(bufs[i], sizeof(bufs[i]), "dlq.%s", want[i]);
		topics[n++] = bufs[i];
	}
	return n;
}

static int cmd_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{"topic", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *topics[MAX_TOPICS];
	char bufs[MAX_TOPICS][256], err[512];
	int ntopics = 0, c, rc = SHOPCTL_OK;
	rd_kafka_t *rk;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (ntopics == MAX_TOPICS)
				return shopctl_usage_error("dlq list", "more than %d topics",
							   MAX_TOPICS);
			topics[ntopics++] = optarg;
			break;
		case 'h':
			usage_list(stdout);
			return SHOPCTL_OK;
		case ':':
			return shopctl_usage_error("dlq list", "%s needs a value",
						   argv[optind - 1]);
		default:
			return shopctl_usage_error("dlq list", "unknown option %s",
						   argv[optind - 1]);
		}
	}
	if (argc - optind > MAX_TOPICS)
		return shopctl_usage_error("dlq list", "more than %d services", MAX_TOPICS);
	ntopics = list_topics(argc - optind, argv + optind, topics, ntopics, bufs);
	if (ntopics < 0)
		return SHOPCTL_USAGE;
	rk = es_reader_new(shopctl_bootstrap(), "shopctl", err, sizeof(err));
	if (!rk) {
		shopctl_err("%s", err);
		return SHOPCTL_FAIL;
	}
	for (int i = 0; i < ntopics; i++) {
		long long n = es_reader_read_all(rk, topics[i], list_one, NULL, NULL, err,
						 sizeof(err));

		fflush(stdout);
		if (n < 0) {
			shopctl_err("%s", err);
			rc = SHOPCTL_FAIL;
		} else {
			fprintf(stderr, "shopctl: %s: %lld dead letter%s\n", topics[i], n,
				n == 1 ? "" : "s");
		}
	}
	es_reader_free(rk);
	return rc;
}

/* ---------------------------------------------------------------- show */

/* TOPIC PARTITION OFFSET of show and replay. Returns 0, or the exit
 * status of a usage error (printed). */
static int parse_where(const char *cmd, char **args, int32_t *partition, int64_t *offset)
{
	long long v;

	if (!args[0][0])
		return shopctl_usage_error(cmd, "TOPIC is empty");
	if (es_parse_ll(args[1], 0, INT32_MAX, &v))
		return shopctl_usage_error(cmd, "PARTITION \"%s\" is not a whole number >= 0",
					   args[1]);
	*partition = (int32_t)v;
	if (es_parse_ll(args[2], 0, INT64_MAX, &v))
		return shopctl_usage_error(cmd, "OFFSET \"%s\" is not a whole number >= 0",
					   args[2]);
	*offset = v;
	return 0;
}

/* Prints bytes on a line of their own context, saying when they were not
 * valid UTF-8. */
static void put_bytes(const void *buf, size_t len, int flags)
{
	if (!buf) {
		fputs("(none)", stdout);
		return;
	}
	if (!shopctl_print_escaped(stdout, buf, len, flags, NULL))
		fputs("  (not valid UTF-8: escaped)", stdout);
}

static void show_message(const rd_kafka_message_t *rkm)
{
	rd_kafka_timestamp_type_t tstype;
	int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);
	rd_kafka_headers_t *hdrs = NULL;
	char when[ES_TIME_LEN + 1];
	const char *name;
	const void *value;
	size_t size;

	printf("topic      %s\npartition  %" PRId32 "\noffset     %" PRId64 "\n",
	       rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset);
	if (ts >= 0) {
		es_time_format(ts, when);
		printf("timestamp  %s (%s)\n", when,
		       tstype == RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME ? "log append time"
								    : "create time");
	}
	fputs("key        ", stdout);
	put_bytes(rkm->key, rkm->key_len, 0);
	if (rd_kafka_message_headers(rkm, &hdrs))
		hdrs = NULL;
	printf("\nheaders    %zu\n", hdrs ? rd_kafka_header_cnt(hdrs) : (size_t)0);
	for (size_t i = 0; hdrs && !rd_kafka_header_get_all(hdrs, i, &name, &value, &size); i++) {
		fputs("  ", stdout);
		shopctl_print_escaped(stdout, name, strlen(name), 0, NULL);
		fputs(": ", stdout);
		put_bytes(value, size, 0);
		putchar('\n');
	}
	printf("value      %zu bytes\n", rkm->len);
	if (rkm->payload)
		put_bytes(rkm->payload, rkm->len, SHOPCTL_ESC_MULTILINE);
	else
		fputs("(null)", stdout);
	putchar('\n');
}

static int cmd_show(int argc, char **argv)
{
	rd_kafka_message_t *rkm;
	int32_t partition;
	int64_t offset;
	rd_kafka_t *rk;
	char err[512];
	int rc;

	for (int i = 1; i < argc; i++) {
		if (shopctl_is_help(argv[i])) {
			usage_show(stdout);
			return SHOPCTL_OK;
		}
		if (!strncmp(argv[i], "--", 2))
			return shopctl_usage_error("dlq show", "unknown option %s", argv[i]);
	}
	if (argc != 4)
		return shopctl_usage_error("dlq show", "want TOPIC PARTITION OFFSET");
	rc = parse_where("dlq show", argv + 1, &partition, &offset);
	if (rc)
		return rc;
	rk = es_reader_new(shopctl_bootstrap(), "shopctl", err, sizeof(err));
	if (!rk) {
		shopctl_err("%s", err);
		return SHOPCTL_FAIL;
	}
	rkm = es_reader_read_one(rk, argv[1], partition, offset, err, sizeof(err));
	if (rkm) {
		show_message(rkm);
		rd_kafka_message_destroy(rkm);
		rc = SHOPCTL_OK;
	} else {
		shopctl_err("%s", err);
		rc = SHOPCTL_FAIL;
	}
	es_reader_free(rk);
	return rc;
}

/* -------------------------------------------------------------- replay */

struct delivery {
	bool done;
	rd_kafka_resp_err_t err;
	int32_t partition;
	int64_t offset;
};

static void on_delivery(void *arg, void *opaque, rd_kafka_resp_err_t err,
			const rd_kafka_message_t *rkm)
{
	struct delivery *d = opaque;

	if (!d)
		return;
	d->err = err;
	d->partition = rkm->partition;
	d->offset = rkm->offset;
	d->done = true;
}

/* The dead letter's headers without the dlq.* ones, plus where it was. */
static rd_kafka_headers_t *replay_headers(const rd_kafka_message_t *rkm)
{
	rd_kafka_headers_t *orig = NULL, *hdrs;
	const char *name;
	const void *value;
	char from[600];
	size_t size;

	if (rd_kafka_message_headers(rkm, &orig))
		orig = NULL;
	hdrs = rd_kafka_headers_new(orig ? rd_kafka_header_cnt(orig) + 1 : 1);
	for (size_t i = 0; orig && !rd_kafka_header_get_all(orig, i, &name, &value, &size); i++) {
		if (strncmp(name, DLQ_HDR_PREFIX, strlen(DLQ_HDR_PREFIX)))
			rd_kafka_header_add(hdrs, name, -1, value, value ? (ssize_t)size : 0);
	}
	snprintf(from, sizeof(from), "%s[%" PRId32 "]@%" PRId64, rd_kafka_topic_name(rkm->rkt),
		 rkm->partition, rkm->offset);
	rd_kafka_header_add(hdrs, REPLAYED_FROM_HDR, -1, from, -1);
	return hdrs;
}

/* Produces and waits for the delivery report. Returns an exit status. */
static int produce(const rd_kafka_message_t *rkm, const char *to)
{
	struct delivery d = {0};
	struct es_producer *p;
	char err[512];
	long long waited = 0;
	int rc = SHOPCTL_FAIL;

	p = es_producer_new(shopctl_bootstrap(), "shopctl", on_delivery, NULL, err, sizeof(err));
	if (!p) {
		shopctl_err("%s", err);
		return SHOPCTL_FAIL;
	}
	if (es_producer_send_raw(p, to, rkm->key, rkm->key_len, rkm->payload, rkm->len,
				 replay_headers(rkm), &d, err, sizeof(err))) {
		shopctl_err("%s", err);
		goto out;
	}
	while (!d.done && waited < DELIVERY_TIMEOUT_MS) {
		if (es_producer_poll(p, 100, err, sizeof(err))) {
			shopctl_err("%s", err);
			goto out;
		}
		waited += 100;
	}
	if (!d.done) {
		shopctl_err("no delivery report from Kafka in %d s: the message may or may not "
			    "have been written to %s (a second replay would be harmless)",
			    DELIVERY_TIMEOUT_MS / 1000, to);
	} else if (d.err) {
		shopctl_err("producing to %s failed: %s", to, rd_kafka_err2str(d.err));
	} else {
		printf("replayed %s[%" PRId32 "]@%" PRId64 " to %s[%" PRId32 "]@%" PRId64 "\n",
		       rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset, to, d.partition,
		       d.offset);
		rc = SHOPCTL_OK;
	}
out:
	es_producer_free(p);
	return rc;
}

/* Where the dead letter goes: --to, else its original topic, which must
 * exist (the producer would otherwise have the broker create it). */
static int replay(rd_kafka_t *rk, const char *topic, int32_t partition, int64_t offset,
		  const char *to)
{
	rd_kafka_message_t *rkm;
	char err[512], orig[256];
	int n, rc = SHOPCTL_FAIL;

	rkm = es_reader_read_one(rk, topic, partition, offset, err, sizeof(err));
	if (!rkm) {
		shopctl_err("%s", err);
		return SHOPCTL_FAIL;
	}
	if (!to) {
		to = header(rkm, ES_DLQ_HDR_TOPIC, orig, sizeof(orig));
		if (!to || !*to) {
			shopctl_err("%s[%" PRId32 "]@%" PRId64 " has no " ES_DLQ_HDR_TOPIC
				    " header: say where it goes with --to TOPIC",
				    topic, partition, offset);
			goto out;
		}
	}
	if (es_reader_partitions(rk, to, &n, NULL, err, sizeof(err))) {
		shopctl_err("%s", err);
		goto out;
	}
	rc = produce(rkm, to);
out:
	rd_kafka_message_destroy(rkm);
	return rc;
}

static int cmd_replay(int argc, char **argv)
{
	static const struct option opts[] = {
		{"to", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *to = NULL;
	int32_t partition;
	int64_t offset;
	rd_kafka_t *rk;
	char err[512];
	int c, rc;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (!optarg[0])
				return shopctl_usage_error("dlq replay", "--to TOPIC is empty");
			to = optarg;
			break;
		case 'h':
			usage_replay(stdout);
			return SHOPCTL_OK;
		case ':':
			return shopctl_usage_error("dlq replay", "%s needs a value",
						   argv[optind - 1]);
		default:
			return shopctl_usage_error("dlq replay", "unknown option %s",
						   argv[optind - 1]);
		}
	}
	if (argc - optind != 3)
		return shopctl_usage_error("dlq replay", "want TOPIC PARTITION OFFSET");
	rc = parse_where("dlq replay", argv + optind, &partition, &offset);
	if (rc)
		return rc;
	rk = es_reader_new(shopctl_bootstrap(), "shopctl", err, sizeof(err));
	if (!rk) {
		shopctl_err("%s", err);
		return SHOPCTL_FAIL;
	}
	rc = replay(rk, argv[optind], partition, offset, to);
	es_reader_free(rk);
	return rc;
}

int shopctl_cmd_dlq(int argc, char **argv)
{
	if (argc < 2)
		return shopctl_usage_error("dlq", "which one: list, show or replay?");
	if (shopctl_is_help(argv[1])) {
		usage_dlq(stdout);
		return SHOPCTL_OK;
	}
	if (!strcmp(argv[1], "list"))
		return cmd_list(argc - 1, argv + 1);
	if (!strcmp(argv[1], "show"))
		return cmd_show(argc - 1, argv + 1);
	if (!strcmp(argv[1], "replay"))
		return cmd_replay(argc - 1, argv + 1);
	return shopctl_usage_error("dlq", "unknown command %s (list, show or replay)", argv[1]);
}
