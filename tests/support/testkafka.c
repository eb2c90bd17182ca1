#include "testkafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "es/kafka.h"
#include "testsupport.h"

extern char **environ;

const char *es_test_kafka_bootstrap(void)
{
	const char *b = getenv("KAFKA_BOOTSTRAP_SERVERS");

	if (!b || !*b) {
		printf("SKIP: KAFKA_BOOTSTRAP_SERVERS is not set (run through ctest, which starts "
		       "a broker, or start one with tests/infra/kafka start)\n");
		return NULL;
	}
	return b;
}

/*
 * The security settings among the KAFKA_* variables (a broker started with
 * tests/infra/kafka --sasl: KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*,
 * KAFKA_SSL_*), so that the tests' own clients reach it as the daemons do.
 * Nothing else: the tests choose their clients' other settings.
 */
static void with_security(rd_kafka_conf_t *conf)
{
	static const char *const vars[][2] = {
		{"KAFKA_SECURITY_PROTOCOL", "security.protocol"},
		{"KAFKA_SASL_MECHANISM", "sasl.mechanism"},
		{"KAFKA_SASL_USERNAME", "sasl.username"},
		{"KAFKA_SASL_PASSWORD", "sasl.password"},
		{"KAFKA_SSL_CA_LOCATION", "ssl.ca.location"},
	};
	char err[256];

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const char *v = getenv(vars[i][0]);

		if (v && *v && rd_kafka_conf_set(conf, vars[i][1], v, err, sizeof(err)))
			fprintf(stderr, "%s: %s\n", vars[i][0], err);
	}
}

static rd_kafka_t *new_client(rd_kafka_type_t type, const char *bootstrap, const char *group)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];
	rd_kafka_t *rk;

	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
	with_security(conf);
	if (group)
		rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
	rk = rd_kafka_new(type, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "rd_kafka_new: %s\n", err);
		rd_kafka_conf_destroy(conf);
	}
	return rk;
}

int es_test_kafka_create_topic(const char *bootstrap, const char *topic, int partitions)
{
	rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, bootstrap, NULL);
	rd_kafka_NewTopic_t *nt;
	rd_kafka_queue_t *q;
	rd_kafka_event_t *ev;
	char err[256], isr[16];
	int rc = -1, brokers, replicas, min_insync;

	if (!rk)
		return -1;
	/* Replicated as deploy/topics.txt's topics are (shopctl create-topics):
	 * 3 copies and 2 in sync on a cluster, 1 and 1 on a single broker. */
	brokers = es_kafka_broker_count(rk, 30000, err, sizeof(err));
	if (brokers < 1) {
		fprintf(stderr, "CreateTopics %s: %s\n", topic, err);
		rd_kafka_destroy(rk);
		return -1;
	}
	es_kafka_replication(brokers, 3, 2, &replicas, &min_insync);
	snprintf(isr, sizeof(isr), "%d", min_insync);
	nt = rd_kafka_NewTopic_new(topic, partitions, replicas, err, sizeof(err));
	rd_kafka_NewTopic_set_config(nt, "min.insync.replicas", isr);
	q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	ev = rd_kafka_queue_poll(q, 30000);
	if (ev) {
		const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
		size_t n;
		const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);

		if (rd_kafka_event_error(ev))
			fprintf(stderr, "CreateTopics: %s\n", rd_kafka_event_error_string(ev));
		else if (n == 1 && rd_kafka_topic_result_error(tr[0]) &&
			 rd_kafka_topic_result_error(tr[0]) !=
				 RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
			fprintf(stderr, "CreateTopics %s: %s\n", topic,
				rd_kafka_topic_result_error_string(tr[0]));
		else
			rc = 0;
		rd_kafka_event_destroy(ev);
	} else {
		fprintf(stderr, "CreateTopics %s: no answer in 30 s\n", topic);
	}
	/* Wait until the topic's partitions all have a leader. */
	for (int i = 0; rc == 0 && i < 300; i++) {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
		int ready = 0;

		if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
			ready = md->topic_cnt == 1 && !md->topics[0].err &&
				md->topics[0].partition_cnt == partitions;
			for (int p = 0; ready && p < md->topics[0].partition_cnt; p++)
				ready = md->topics[0].partitions[p].leader >= 0;
			rd_kafka_metadata_destroy(md);
		}
		rd_kafka_topic_destroy(rkt);
		if (ready)
			break;
		if (i == 299) {
			fprintf(stderr, "topic %s never became ready\n", topic);
			rc = -1;
		}
		nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
	}
	rd_kafka_NewTopic_destroy(nt);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	return rc;
}

struct es_test_batch *es_test_kafka_read(const char *bootstrap, const char *topic, int want,
					 int timeout_ms)
{
	struct es_test_batch *b = calloc(1, sizeof(*b));
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_topic_t *rkt;
	struct timespec start, now;
	char group[64], err[256];

	b->msg = calloc((size_t)want + 1, sizeof(*b->msg));
	/* librdkafka's consumer wants a group id even for a manual
	 * assignment; this one never joins it and never commits. */
	es_test_unique_name(group, sizeof(group), "es_test_reader");
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
	with_security(conf);
	rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
	rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
	b->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!b->rk) {
		fprintf(stderr, "rd_kafka_new: %s\n", err);
		rd_kafka_conf_destroy(conf);
		goto out;
	}
	rkt = rd_kafka_topic_new(b->rk, topic, NULL);
	if (rd_kafka_metadata(b->rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
	    md->topic_cnt == 1) {
		for (int p = 0; p < md->topics[0].partition_cnt; p++)
			rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
				RD_KAFKA_OFFSET_BEGINNING;
	}
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_assign(b->rk, parts);
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (b->n < want) {
		rd_kafka_message_t *rkm = rd_kafka_consumer_poll(b->rk, 100);

		if (rkm && !rkm->err)
			b->msg[b->n++] = rkm;
		else if (rkm)
			rd_kafka_message_destroy(rkm);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >
		    timeout_ms)
			break;
	}
	rd_kafka_assign(b->rk, NULL);
out:
	rd_kafka_topic_partition_list_destroy(parts);
	return b;
}

struct es_test_batch *es_test_kafka_read_all(const char *bootstrap, const char *topic,
					     int timeout_ms, bool *complete)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const struct rd_kafka_metadata *md = NULL;
	struct es_test_batch *b;
	rd_kafka_topic_t *rkt;
	rd_kafka_t *rk;
	char err[256];
	long long total = 0;

	/* Count what is there now, then read that many. */
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
	with_security(conf);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (rk) {
		rkt = rd_kafka_topic_new(rk, topic, NULL);
		if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
		    md->topic_cnt == 1) {
			for (int p = 0; p < md->topics[0].partition_cnt; p++) {
				int64_t lo = 0, hi = 0;

				if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi,
								     10000) ==
				    RD_KAFKA_RESP_ERR_NO_ERROR)
					total += hi - lo;
			}
		}
		if (md)
			rd_kafka_metadata_destroy(md);
		rd_kafka_topic_destroy(rkt);
		rd_kafka_destroy(rk);
	} else {
		rd_kafka_conf_destroy(conf);
	}
	b = es_test_kafka_read(bootstrap, topic, (int)total, timeout_ms);
	*complete = b->n == total;
	return b;
}

void es_test_kafka_batch_free(struct es_test_batch *b)
{
	if (!b)
		return;
	for (int i = 0; i < b->n; i++)
		rd_kafka_message_destroy(b->msg[i]);
	free(b->msg);
	if (b->rk) {
		rd_kafka_consumer_close(b->rk);
		rd_kafka_destroy(b->rk);
	}
	free(b);
}

const char *es_test_kafka_header(const rd_kafka_message_t *rkm, const char *name, char *buf,
				 size_t size)
{
	rd_kafka_headers_t *hdrs;
	const void *value;
	size_t len;

	if (rd_kafka_message_headers(rkm, &hdrs) ||
	    rd_kafka_header_get_last(hdrs, name, &value, &len))
		return NULL;
	snprintf(buf, size, "%.*s", (int)len, (const char *)value);
	return buf;
}

long long es_test_kafka_committed(const char *bootstrap, const char *group, const char *topic,
				  int partition)
{
	rd_kafka_t *rk = new_client(RD_KAFKA_CONSUMER, bootstrap, group);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	long long off = -1001;

	rd_kafka_topic_partition_list_add(l, topic, partition);
	if (rk && rd_kafka_committed(rk, l, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
		off = l->elems[0].offset;
	rd_kafka_topic_partition_list_destroy(l);
	if (rk)
		rd_kafka_destroy(rk);
	return off;
}

int es_test_kafka_mock_init(struct es_test_kafka_mock *m, int brokers)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[512];

	memset(m, 0, sizeof(*m));
	/* Only errors: the host client itself has nothing to say. */
	rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
	m->host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!m->host) {
		fprintf(stderr, "rd_kafka_new: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	m->mc = rd_kafka_mock_cluster_new(m->host, brokers);
	if (!m->mc) {
		fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
		rd_kafka_destroy(m->host);
		memset(m, 0, sizeof(*m));
		return -1;
	}
	m->bootstrap = rd_kafka_mock_cluster_bootstraps(m->mc);
	return 0;
}

void es_test_kafka_mock_release(struct es_test_kafka_mock *m)
{
	if (m->mc)
		rd_kafka_mock_cluster_destroy(m->mc);
	if (m->host)
		rd_kafka_destroy(m->host);
	memset(m, 0, sizeof(*m));
}

void es_test_kafka_forget_environment(void)
{
	char name[256];

	/* unsetenv rearranges environ: after each removal, scan it again. */
	for (char **e = environ; e && *e;) {
		const char *eq = strchr(*e, '=');
		size_t len = eq ? (size_t)(eq - *e) : 0;

		if (strncmp(*e, "KAFKA_", 6) || !eq || len >= sizeof(name)) {
			e++;
			continue;
		}
		snprintf(name, sizeof(name), "%.*s", (int)len, *e);
		if (unsetenv(name))
			return;
		e = environ;
	}
}
