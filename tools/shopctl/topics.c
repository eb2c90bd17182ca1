/* shopctl create-topics: the topics of deploy/topics.txt (or another file). */
#include <stdio.h>
#include <string.h>

#include "es/kafka.h"
#include "shopctl.h"

#define MAX_TOPICS 64

struct topic_spec {
	char name[250];
	int partitions;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: shopctl create-topics [FILE]\n"
		   "\n"
		   "Creates the topics listed in FILE (default deploy/topics.txt, relative to\n"
		   "the current directory): one \"name partitions\" per line, # starts a\n"
		   "comment. Topics that exist already are kept as they are (\"exists\").\n"
		   "\n"
		   "Kafka: KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092); every other\n"
		   "KAFKA_* variable is passed to librdkafka as for the daemons.\n");
}

/* Reads "name partitions" lines. Returns the count, or -1 (message printed). */
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
		char name[250];
		int parts;
		char *hash = strchr(line, '#');

		lineno++;
		if (hash)
			*hash = '\0';
		if (sscanf(line, "%249s %d", name, &parts) != 2) {
			if (sscanf(line, "%249s", name) == 1) {
				shopctl_err("%s:%d: want \"name partitions\"", path, lineno);
				fclose(f);
				return -1;
			}
			continue;
		}
		if (parts < 1 || parts > 1000 || n == MAX_TOPICS) {
			shopctl_err("%s:%d: bad partition count or too many topics", path, lineno);
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

static int report(rd_kafka_event_t *ev)
{
	const rd_kafka_topic_result_t **res;
	int failed = 0;
	size_t cnt;

	res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
	for (size_t i = 0; i < cnt; i++) {
		rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);

		if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
			printf("created %s\n", rd_kafka_topic_result_name(res[i]));
		} else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
			printf("exists  %s\n", rd_kafka_topic_result_name(res[i]));
		} else {
			shopctl_err("%s: %s", rd_kafka_topic_result_name(res[i]),
				    rd_kafka_topic_result_error_string(res[i]));
			failed = 1;
		}
	}
	return failed;
}

static int create_topics(const char *bootstrap, const struct topic_spec *t, int n)
{
	rd_kafka_NewTopic_t *nt[MAX_TOPICS];
	rd_kafka_conf_t *conf;
	rd_kafka_queue_t *q = NULL;
	rd_kafka_event_t *ev = NULL;
	rd_kafka_t *rk = NULL;
	char err[512];
	int made = 0, failed = 1;

	conf = es_kafka_conf_new(bootstrap, "shopctl", err, sizeof(err));
	if (!conf) {
		shopctl_err("%s", err);
		return SHOPCTL_FAIL;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		shopctl_err("%s", err);
		return SHOPCTL_FAIL;
	}
	for (made = 0; made < n; made++) {
		nt[made] = rd_kafka_NewTopic_new(t[made].name, t[made].partitions, 1, err,
						 sizeof(err));
		if (!nt[made]) {
			shopctl_err("topic %s: %s", t[made].name, err);
			goto out;
		}
	}
	q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, nt, (size_t)n, NULL, q);
	ev = rd_kafka_queue_poll(q, 60000);
	if (!ev)
		shopctl_err("no answer from Kafka at %s in 60 s", bootstrap);
	else if (rd_kafka_event_error(ev))
		shopctl_err("%s", rd_kafka_event_error_string(ev));
	else
		failed = report(ev);
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
