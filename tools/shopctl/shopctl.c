/*
 * shopctl: eventshop's command-line tool.
 *
 *   shopctl create-topics [FILE]   create the topics listed in FILE
 *                                  (default deploy/topics.txt): "name partitions"
 *                                  per line, # comments; existing topics are kept
 *
 * Kafka is KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092); KAFKA_* pass
 * through to librdkafka as for the daemons.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/config.h"
#include "es/kafka.h"
#include "es/log.h"

#define MAX_TOPICS 64

struct topic_spec {
	char name[250];
	int partitions;
};

/* Reads "name partitions" lines. Returns the count, or -1 (message printed). */
static int read_topics(const char *path, struct topic_spec *out)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int n = 0, lineno = 0;

	if (!f) {
		fprintf(stderr, "shopctl: cannot open %s\n", path);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char name[250];
		int parts;
		char *hash = strchr(line, '#');

		lineno++;
		if (hash)
			*hash = '\0';
		if (sscanf(line, "%249s %d", name, &parts) != 2) {
			if (sscanf(line, "%249s", name) == 1) {
				fprintf(stderr, "shopctl: %s:%d: want \"name partitions\"\n", path,
					lineno);
				fclose(f);
				return -1;
			}
			continue;
		}
		if (parts < 1 || parts > 1000 || n == MAX_TOPICS) {
			fprintf(stderr, "shopctl: %s:%d: bad partition count or too many topics\n",
				path, lineno);
			fclose(f);
			return -1;
		}
		snprintf(out[n].name, sizeof(out[n].name), "%s", name);
		out[n].partitions = parts;
		n++;
	}
	fclose(f);
	return n;
}

static int create_topics(const char *bootstrap, const struct topic_spec *t, int n)
{
	rd_kafka_NewTopic_t *nt[MAX_TOPICS];
	rd_kafka_conf_t *conf;
	rd_kafka_queue_t *q;
	rd_kafka_event_t *ev;
	rd_kafka_t *rk;
	char err[512];
	int failed = 0;

	conf = es_kafka_conf_new(bootstrap, "shopctl", err, sizeof(err));
	if (!conf || !(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err)))) {
		fprintf(stderr, "shopctl: %s\n", err);
		return 1;
	}
	for (int i = 0; i < n; i++)
		nt[i] = rd_kafka_NewTopic_new(t[i].name, t[i].partitions, 1, err, sizeof(err));
	q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, nt, (size_t)n, NULL, q);
	ev = rd_kafka_queue_poll(q, 60000);
	if (!ev) {
		fprintf(stderr, "shopctl: no answer from Kafka at %s in 60 s\n", bootstrap);
		failed = 1;
	} else if (rd_kafka_event_error(ev)) {
		fprintf(stderr, "shopctl: %s\n", rd_kafka_event_error_string(ev));
		failed = 1;
	} else {
		size_t cnt;
		const rd_kafka_topic_result_t **res = rd_kafka_CreateTopics_result_topics(
			rd_kafka_event_CreateTopics_result(ev), &cnt);

		for (size_t i = 0; i < cnt; i++) {
			rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);

			if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
				printf("created %s\n", rd_kafka_topic_result_name(res[i]));
			else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
				printf("exists  %s\n", rd_kafka_topic_result_name(res[i]));
			else {
				fprintf(stderr, "shopctl: %s: %s\n",
					rd_kafka_topic_result_name(res[i]),
					rd_kafka_topic_result_error_string(res[i]));
				failed = 1;
			}
		}
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_NewTopic_destroy_array(nt, (size_t)n);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	return failed;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: shopctl create-topics [FILE]\n"
		   "  create the topics of FILE (default deploy/topics.txt)\n"
		   "Kafka: KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092)\n");
}

int main(int argc, char **argv)
{
	const char *bootstrap = es_config_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092");
	struct topic_spec topics[MAX_TOPICS];
	int n;

	es_log_init("shopctl", ES_LOG_WARN);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "create-topics") && argc <= 3) {
		n = read_topics(argc == 3 ? argv[2] : "deploy/topics.txt", topics);
		if (n < 0)
			return 1;
		return create_topics(bootstrap, topics, n);
	}
	usage(stderr);
	return 2;
}
