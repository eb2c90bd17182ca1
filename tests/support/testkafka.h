/*
 * testkafka: helpers for integration tests against the real broker that
 * tests/infra/kafka starts (KAFKA_BOOTSTRAP_SERVERS).
 */
#ifndef ES_TESTKAFKA_H
#define ES_TESTKAFKA_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>
/* After rdkafka.h, as it requires. */
#include <librdkafka/rdkafka_mock.h>

/* KAFKA_BOOTSTRAP_SERVERS, or NULL after printing why the test skips. */
const char *es_test_kafka_bootstrap(void);

/* Creates topic with `partitions` partitions, replicated as shopctl
 * create-topics replicates deploy/topics.txt's (es_kafka_replication: 1
 * copy on a single broker, 3 with min.insync.replicas 2 on a cluster), and
 * waits until its metadata is visible. Returns 0 or -1 (message printed). */
int es_test_kafka_create_topic(const char *bootstrap, const char *topic, int partitions);

/*
 * Messages read by es_test_kafka_read. librdkafka's messages belong to the
 * client that fetched them and must be destroyed before it, so the batch
 * keeps that client and es_test_kafka_batch_free destroys both in order.
 */
struct es_test_batch {
	rd_kafka_t *rk;
	rd_kafka_message_t **msg;
	int n;
};

/*
 * Reads topic from the beginning with a manually assigned consumer that
 * never commits, until `want` messages arrived or timeout_ms passed.
 * Never returns NULL; check ->n.
 */
struct es_test_batch *es_test_kafka_read(const char *bootstrap, const char *topic, int want,
					 int timeout_ms);
void es_test_kafka_batch_free(struct es_test_batch *b);

/* Reads everything the topic holds now (up to its high watermarks at the
 * time of the call), waiting at most timeout_ms. Never returns NULL; ->n
 * may be short of the total if the time ran out (then *complete is false). */
struct es_test_batch *es_test_kafka_read_all(const char *bootstrap, const char *topic,
					     int timeout_ms, bool *complete);

/* The value of header `name` of rkm as a NUL-terminated copy in buf, or
 * NULL when absent. */
const char *es_test_kafka_header(const rd_kafka_message_t *rkm, const char *name, char *buf,
				 size_t size);

/* The committed offset of group on topic/partition, or -1001 (none). */
long long es_test_kafka_committed(const char *bootstrap, const char *group, const char *topic,
				  int partition);

/*
 * librdkafka's mock cluster (rdkafka_mock.h): an in-process Kafka protocol
 * server for the tests a real broker cannot serve (scripted faults, the
 * development broker's engine), hosted by a client of this process that
 * never connects anywhere.
 */
struct es_test_kafka_mock {
	rd_kafka_t *host; /* the client that hosts the cluster */
	rd_kafka_mock_cluster_t *mc;
	const char *bootstrap; /* the cluster's; valid until the release */
};

/* Starts a cluster of `brokers` brokers and fills m (release with
 * es_test_kafka_mock_release). Returns 0 or -1 (message printed). */
int es_test_kafka_mock_init(struct es_test_kafka_mock *m, int brokers);
void es_test_kafka_mock_release(struct es_test_kafka_mock *m);

/*
 * Removes every KAFKA_* variable from the environment. The es clients read
 * each as a librdkafka property, and ctest runs the integration tests with
 * the real broker's KAFKA_BOOTSTRAP_SERVERS: a test on the mock cluster
 * calls this first, so that nothing of it reaches the real broker.
 */
void es_test_kafka_forget_environment(void);

#endif
