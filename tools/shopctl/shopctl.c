/*
 * shopctl: eventshop's command-line tool, for learners and operators.
 *
 *   shopctl create-topics [FILE]           topics.c
 *   shopctl create-acls [FILE]             acls.c
 *   shopctl place --sku SKU[:QTY] ...      place.c
 *   shopctl follow ORDER_ID                follow.c
 *   shopctl dlq list|show|replay ...       dlq.c
 *   shopctl outbox list|retry SERVICE ...  outbox.c
 *   shopctl rebuild-analytics              rebuild.c
 *   shopctl watch [--from-beginning] ...   watch.c
 *   shopctl faults list|set|clear          faults.c
 *   shopctl token CUSTOMER_ID              token.c
 *
 * Kafka is KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092); KAFKA_* pass
 * through to librdkafka as for the daemons. order-service is --url or
 * ORDER_SERVICE_URL (default http://127.0.0.1:8080).
 */
#include <stdio.h>
#include <string.h>

#include "es/config.h"
#include "es/log.h"
#include "shopctl.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"create-topics", shopctl_cmd_create_topics,
	 "create the topics of FILE (default deploy/topics.txt)"},
	{"create-acls", shopctl_cmd_create_acls,
	 "grant the Kafka ACLs of FILE (default deploy/kafka-acls.txt)"},
	{"place", shopctl_cmd_place, "place an order (POST /orders)"},
	{"follow", shopctl_cmd_follow, "print an order's timeline as it grows, until terminal"},
	{"dlq", shopctl_cmd_dlq, "list, show and replay dead letters (dlq.<service>)"},
	{"outbox", shopctl_cmd_outbox, "list and retry the outbox rows a relay parked"},
	{"rebuild-analytics", shopctl_cmd_rebuild_analytics,
	 "analytics-service --rebuild (stop analytics-service first)"},
	{"watch", shopctl_cmd_watch,
	 "print the events of every topic as one stream, in time order"},
	{"token", shopctl_cmd_token, "print a bearer token for a customer or an operator"},
	{"faults", shopctl_cmd_faults, "list, set and clear a daemon's fault switches"},
	{NULL, NULL, NULL},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: shopctl COMMAND [ARGS...]\n\ncommands:\n");
	for (const struct command *c = commands; c->name; c++)
		fprintf(f, "  %-18s %s\n", c->name, c->summary);
	fprintf(f, "\n"
		   "'shopctl COMMAND --help' describes one. Exit status: 0 done, 1 failed,\n"
		   "2 bad command line.\n"
		   "\n"
		   "Environment: KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092) and any\n"
		   "KAFKA_* for librdkafka, as for the daemons; ORDER_SERVICE_URL (default\n"
		   "http://127.0.0.1:8080); LOG_LEVEL for librdkafka's messages (default\n"
		   "warn).\n");
}

int main(int argc, char **argv)
{
	enum es_log_level level = ES_LOG_WARN;

	/* librdkafka's complaints (a broker that does not answer) go to
	 * stderr as JSON lines, like the daemons' logs. */
	if (es_log_level_parse(es_config_str("LOG_LEVEL", "warn"), &level)) {
		fprintf(stderr, "shopctl: LOG_LEVEL is not one of debug, info, warn, error\n");
		return SHOPCTL_USAGE;
	}
	es_log_init("shopctl", level);
	if (argc < 2) {
		usage(stderr);
		return SHOPCTL_USAGE;
	}
	if (shopctl_is_help(argv[1]) || !strcmp(argv[1], "help")) {
		usage(stdout);
		return SHOPCTL_OK;
	}
	for (const struct command *c = commands; c->name; c++) {
		if (!strcmp(argv[1], c->name))
			return c->fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "shopctl: unknown command %s\n\n", argv[1]);
	usage(stderr);
	return SHOPCTL_USAGE;
}
