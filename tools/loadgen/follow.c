/*
 * follow: when each order's saga ended, read from the orders topic.
 *
 * The follower is a consumer that is a member of no group: it assigns
 * every partition by hand at its high watermark as of the start (so it
 * reads only what is produced from then on, and moves no one's offsets),
 * under a throwaway group id that it never commits to.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "es/envelope.h"
#include "es/events.h"
#include "es/kafka.h"
#include "loadgen.h"

#define KAFKA_TIMEOUT_MS 10000

struct lg_follow {
	rd_kafka_t *rk;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	atomic_bool failed;
	char error[512]; /* written before failed is set */
	atomic_uint_fast64_t read, invalid;
	struct lg_orders *orders; /* borrowed from the run */
	char customer_id[32];
};

static rd_kafka_t *new_consumer(const struct lg_config *cfg, char *errstr, size_t errstr_size)
{
	char uuid[ES_UUID_LEN + 1], group[64];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;

	conf = es_kafka_conf_new(cfg->bootstrap, LG_NAME, errstr, errstr_size);
	if (!conf)
		return NULL;
	es_uuid_new(uuid);
	snprintf(group, sizeof(group), "loadgen-%s", uuid);
	/* After es_kafka_conf_new's KAFKA_* pass-through: --bootstrap wins
	 * over KAFKA_BOOTSTRAP_SERVERS, and nothing can make us commit. */
	if ((cfg->bootstrap_given &&
	     rd_kafka_conf_set(conf, "bootstrap.servers", cfg->bootstrap, errstr, errstr_size)) ||
	    rd_kafka_conf_set(conf, "group.id", group, errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "enable.partition.eof", "false", errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", errstr, errstr_size) ||
	    /* An idle partition's fetch comes back after this long, so a
	     * new event on it waits no longer for the next fetch. */
	    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "100", errstr, errstr_size)) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
	if (!rk)
		rd_kafka_conf_destroy(conf);
	return rk;
}

static int partition_count(rd_kafka_t *rk, const char *topic, int *count, char *errstr,
			   size_t errstr_size)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	int rc = -1;

	if (!rkt) {
		snprintf(errstr, errstr_size, "topic %s: %s", topic,
			 rd_kafka_err2str(rd_kafka_last_error()));
		return -1;
	}
	err = rd_kafka_metadata(rk, 0, rkt, &md, KAFKA_TIMEOUT_MS);
	if (err)
		snprintf(errstr, errstr_size, "cannot read the metadata of topic %s: %s", topic,
			 rd_kafka_err2str(err));
	else if (md->topic_cnt != 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
		snprintf(errstr, errstr_size, "topic %s does not exist", topic);
	else if (md->topics[0].err)
		snprintf(errstr, errstr_size, "topic %s: %s", topic,
			 rd_kafka_err2str(md->topics[0].err));
	else if (md->topics[0].partition_cnt < 1)
		snprintf(errstr, errstr_size, "topic %s has no partitions", topic);
	else {
		*count = md->topics[0].partition_cnt;
		rc = 0;
	}
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	return rc;
}

/* Assigns every partition at its high watermark, asked for explicitly:
 * RD_KAFKA_OFFSET_END would be resolved later, when the fetcher starts,
 * and could skip events produced meanwhile. */
static int assign_at_end(rd_kafka_t *rk, const char *topic, char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_resp_err_t err;
	int n, rc = -1;

	if (partition_count(rk, topic, &n, errstr, errstr_size))
		return -1;
	parts = rd_kafka_topic_partition_list_new(n);
	for (int32_t p = 0; p < n; p++) {
		int64_t low, high;

		err = rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, KAFKA_TIMEOUT_MS);
		if (err) {
			snprintf(errstr, errstr_size, "offsets of %s [%" PRId32 "]: %s", topic, p,
				 rd_kafka_err2str(err));
			goto out;
		}
		rd_kafka_topic_partition_list_add(parts, topic, p)->offset = high;
	}
	err = rd_kafka_assign(rk, parts);
	if (err) {
		snprintf(errstr, errstr_size, "assigning the partitions of %s: %s", topic,
			 rd_kafka_err2str(err));
		goto out;
	}
	rc = 0;
out:
	rd_kafka_topic_partition_list_destroy(parts);
	return rc;
}

static void fail(struct lg_follow *f, const char *what)
{
	if (atomic_load(&f->failed))
		return;
	snprintf(f->error, sizeof(f->error), "%s", what);
	atomic_store(&f->failed, true);
}

/* One message from the topic, read at t_us. */
static void handle(struct lg_follow *f, const rd_kafka_message_t *rkm, int64_t t_us)
{
	struct es_event *ev;
	char why[256];

	atomic_fetch_add(&f->read, 1);
	ev = es_event_parse(rkm->payload, rkm->len, why, sizeof(why));
	if (!ev) {
		atomic_fetch_add(&f->invalid, 1);
		return;
	}
	if (!strcmp(ev->type, ES_ORDER_PLACED)) {
		const char *customer = es_data_str(ev, "customerId");

		/* Ours: its terminal event may come before its 202 is read. */
		if (customer && !strcmp(customer, f->customer_id) &&
		    lg_orders_seen(f->orders, ev->subject))
			fail(f, "out of memory");
	} else if (!strcmp(ev->type, ES_ORDER_CONFIRMED)) {
		lg_orders_terminal(f->orders, ev->subject, LG_CONFIRMED, LG_REASON_NONE, t_us);
	} else if (!strcmp(ev->type, ES_ORDER_CANCELLED)) {
		lg_orders_terminal(f->orders, ev->subject, LG_CANCELLED,
				   lg_reason_parse(es_data_str(ev, "reason")), t_us);
	}
	es_event_free(ev);
}

static void *run_thread(void *arg)
{
	struct lg_follow *f = arg;
	char why[512];

	while (!atomic_load(&f->stop)) {
		rd_kafka_message_t *rkm = rd_kafka_consumer_poll(f->rk, 100);
		/* The moment the event reached us: what saga latency ends on. */
		int64_t t_us = lg_now_us();

		if (!rkm)
			continue;
		if (!rkm->err) {
			handle(f, rkm, t_us);
		} else if (rkm->err == RD_KAFKA_RESP_ERR__FATAL ||
			   rkm->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
			   rkm->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
			snprintf(why, sizeof(why), "reading %s: %s",
				 rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "the topic",
				 rd_kafka_message_errstr(rkm));
			fail(f, why);
		}
		/* Anything else is transient (a broker restarting, a leader
		 * moving): librdkafka retries on its own. */
		rd_kafka_message_destroy(rkm);
	}
	return NULL;
}

static void free_follow(struct lg_follow *f)
{
	if (!f)
		return;
	if (f->rk)
		/* In no group: nothing to leave, nothing to commit. */
		rd_kafka_destroy_flags(f->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	free(f);
}

int lg_follow_start(struct lg_run *run, char *errstr, size_t errstr_size)
{
	struct lg_follow *f = calloc(1, sizeof(*f));

	if (!f) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	f->orders = &run->orders;
	snprintf(f->customer_id, sizeof(f->customer_id), "%s", run->customer_id);
	f->rk = new_consumer(run->cfg, errstr, errstr_size);
	if (!f->rk || assign_at_end(f->rk, run->cfg->topic, errstr, errstr_size))
		goto fail;
	if (pthread_create(&f->thread, NULL, run_thread, f)) {
		snprintf(errstr, errstr_size, "cannot start the follower's thread");
		goto fail;
	}
	f->started = true;
	run->follow = f;
	return 0;
fail:
	free_follow(f);
	return -1;
}

bool lg_follow_failed(struct lg_run *run)
{
	struct lg_follow *f = run->follow;

	if (!f || !atomic_load(&f->failed))
		return false;
	snprintf(run->follow_error, sizeof(run->follow_error), "%s", f->error);
	return true;
}

void lg_follow_stop(struct lg_run *run)
{
	struct lg_follow *f = run->follow;

	if (!f)
		return;
	atomic_store(&f->stop, true);
	if (f->started)
		pthread_join(f->thread, NULL);
	run->follow_read = atomic_load(&f->read);
	run->follow_invalid = atomic_load(&f->invalid);
	free_follow(f);
	run->follow = NULL;
}
