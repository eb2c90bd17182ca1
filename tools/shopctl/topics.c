/* shopctl create-topics: the topics of deploy/topics.txt (or another file). */
#include <stdio.h>
#include <string.h>

#include "es/kafka.h"
#include "shopctl.h"

#define MAX_TOPICS 64

/* What a line asks for when it leaves the replication out: the usual
 * production setting, which es_kafka_replication trims to the cluster. */
#define DEFAULT_REPLICAS 3
#define DEFAULT_MIN_INSYNC 2

struct topic_spec {
	char name[250];
	int partitions;
	int replicas, min_insync; /* as the file asks; trimmed to the cluster */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shopctl create-topics [FILE]\n"
		"\n"
		"Creates the topics listed in FILE (default deploy/topics.txt, relative to\n"
		"the current directory): one \"name partitions [replicas min.insync]\"\n"
		"per line, # starts a comment. Topics that exist already are kept as they\n"
		"are (\"exists\").\n"
		"\n"
		"replicas and min.insync (default %d and %d) are what a cluster of three\n"
		"or more brokers gets: a smaller cluster gets as many replicas as it has\n"
		"brokers, and at most one fewer in sync (at least 1), so a single broker\n"
		"gets 1 and 1. min.insync is the topic's min.insync.replicas: how many\n"
		"copies must have an event before the broker acknowledges it (the\n"
		"daemons' producers ask for acks=all).\n"
		"\n"
		"Kafka: KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092); every other\n"
		"KAFKA_* variable is passed to librdkafka as for the daemons.\n",
		DEFAULT_REPLICAS, DEFAULT_MIN_INSYNC);
}

/* Reads "name partitions [replicas min.insync]" lines. Returns the count,
 * or -1 (message printed). */
static int read_topics(const char *path, struct topic_spec *out)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int n = 0, lineno = 0;

	if (!f) {
		shopctl_err("cannot open %s", path);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char name[250], extra[2];
		int parts, replicas = DEFAULT_REPLICAS, min_insync = DEFAULT_MIN_INSYNC, fields;
		char *hash = strchr(line, '#');

		lineno++;
		if (hash)
			*hash = '\0';
		fields = sscanf(line, "%249s %d %d %d %1s", name, &parts, &replicas, &min_insync,
				extra);
		if (fields < 1)
			continue;
		if (fields != 2 && fields != 4) {
			shopctl_err("%s:%d: want \"name partitions [replicas min.insync]\"", path,
				    lineno);
			fclose(f);
			return -1;
		}
		if (parts < 1 || parts > 1000 || replicas < 1 || replicas > 7 || min_insync < 1 ||
		    min_insync > replicas || n == MAX_TOPICS) {
			shopctl_err("%s:%d: partitions 1 to 1000, replicas 1 to 7, min.insync 1 to "
				    "replicas, at most %d topics",
				    path, lineno, MAX_TOPICS);
			fclose(f);
			return -1;
		}
		snprintf(out[n].name, sizeof(out[n].name), "%s", name);
		out[n].partitions = parts;
		out[n].replicas = replicas;
		out[n].min_insync = min_insync;
		n++;
	}
	fclose(f);
	return n;
}

static int report(rd_kafka_event_t *ev, const struct topic_spec *t, int n, int brokers)
{
	const rd_kafka_topic_result_t **res;
	int failed = 0;
	size_t cnt;

	res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
	for (size_t i = 0; i < cnt; i++) {
		rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);

		const char *name = rd_kafka_topic_result_name(res[i]);

		if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
			for (int k = 0; k < n; k++) {
				int rf, isr;

				if (strcmp(t[k].name, name))
					continue;
				es_kafka_replication(brokers, t[k].replicas, t[k].min_insync, &rf,
						     &isr);
				printf("created %s (%d partition%s, %d replica%s, "
				       "min.insync.replicas %d)\n",
				       name, t[k].partitions, t[k].partitions == 1 ? "" : "s", rf,
				       rf == 1 ? "" : "s", isr);
				break;
			}
		} else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
			printf("exists  %s\n", name);
		} else {
			shopctl_err("%s: %s", name, rd_kafka_topic_result_error_string(res[i]));
			failed = 1;
		}
	}
	return failed;
}

static int create_topics(const char *bootstrap, const struct topic_spec *t, int n)
{
	rd_kafka_NewTopic_t *nt[MAX_TOPICS];
	rd_kafka_queue_t *q = NULL;
	rd_kafka_event_t *ev = NULL;
	rd_kafka_t *rk = shopctl_admin_client(bootstrap);
	char err[512], isr_text[16];
	int made = 0, failed = 1, brokers;

	if (!rk)
		return SHOPCTL_FAIL;
	/* The replication follows from the cluster's size. */
	brokers = es_kafka_broker_count(rk, 30000, err, sizeof(err));
	if (brokers < 1) {
		shopctl_err("no answer from Kafka at %s: %s", bootstrap, err);
		goto out;
	}
	for (made = 0; made < n; made++) {
		int rf, isr;

		es_kafka_replication(brokers, t[made].replicas, t[made].min_insync, &rf, &isr);
		nt[made] = rd_kafka_NewTopic_new(t[made].name, t[made].partitions, rf, err,
						 sizeof(err));
		if (!nt[made]) {
			shopctl_err("topic %s: %s", t[made].name, err);
			goto out;
		}
		snprintf(isr_text, sizeof(isr_text), "%d", isr);
		if (rd_kafka_NewTopic_set_config(nt[made], "min.insync.replicas", isr_text)) {
			shopctl_err("topic %s: cannot set min.insync.replicas", t[made].name);
			made++;
			goto out;
		}
	}
	q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, nt, (size_t)n, NULL, q);
	ev = shopctl_admin_result(q, bootstrap);
	if (ev)
		failed = report(ev, t, n, brokers);
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_NewTopic_destroy_array(nt, (size_t)made);
	if (q)
		rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	return failed ? SHOPCTL_FAIL : SHOPCTL_OK;
}

int shopctl_cmd_create_topics(int argc, char **argv)
{
	struct topic_spec topics[MAX_TOPICS];
	int n;

	if (argc >= 2 && shopctl_is_help(argv[1])) {
		usage(stdout);
		return SHOPCTL_OK;
	}
	if (argc > 2)
		return shopctl_usage_error(argv[0], "at most one FILE");
	if (argc == 2 && argv[1][0] == '-')
		return shopctl_usage_error(argv[0], "unknown option %s", argv[1]);
	n = read_topics(argc == 2 ? argv[1] : "deploy/topics.txt", topics);
	if (n < 0)
		return SHOPCTL_FAIL;
	if (n == 0) {
		shopctl_err("%s lists no topics", argc == 2 ? argv[1] : "deploy/topics.txt");
		return SHOPCTL_FAIL;
	}
	return create_topics(shopctl_bootstrap(), topics, n);
}
