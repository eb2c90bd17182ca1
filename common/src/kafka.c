#include "es/kafka.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "es/config.h"
#include "es/log.h"
#include "es/metrics.h"

/* ------------------------------------------------------------ configuration */

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	enum es_log_level lvl;

	/* librdkafka speaks syslog levels: 0..3 error, 4 warning, 5..6 info. */
	if (level <= 3)
		lvl = ES_LOG_ERROR;
	else if (level == 4)
		lvl = ES_LOG_WARN;
	else if (level <= 6)
		lvl = ES_LOG_INFO;
	else
		lvl = ES_LOG_DEBUG;
	/*
	 * Two warnings nobody can act on become info. KAFKA_* variables go to
	 * the producer and the consumer alike, so each ignores the other's
	 * properties and says so (CONFWARN "... is a consumer property and
	 * will be ignored by this producer instance"). And a broker without
	 * Metadata v4, such as the development broker, cannot be asked not to
	 * create topics (AUTOCREATE); topics are made beforehand anyway.
	 */
	if (lvl == ES_LOG_WARN &&
	    ((!strcmp(fac, "CONFWARN") && strstr(buf, "will be ignored by")) ||
	     !strcmp(fac, "AUTOCREATE")))
		lvl = ES_LOG_INFO;
	es_log(lvl, NULL, "rdkafka %s: %s: %s", rk ? rd_kafka_name(rk) : "-", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	/* Most errors here are transient (broker down, reconnecting) and
	 * librdkafka recovers by itself; fatal ones are acted on in poll. */
	es_log(err == RD_KAFKA_RESP_ERR__FATAL ? ES_LOG_ERROR : ES_LOG_WARN, NULL,
	       "kafka %s: %s: %s", rd_kafka_name(rk), rd_kafka_err2name((rd_kafka_resp_err_t)err),
	       reason);
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
		    size_t errstr_size)
{
	char why[256];

	if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
		snprintf(errstr, errstr_size, "kafka property %s=%s: %s", name, value, why);
		return -1;
	}
	return 0;
}

rd_kafka_conf_t *es_kafka_conf_new(const char *bootstrap, const char *client_id, char *errstr,
				   size_t errstr_size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();

	if (conf_set(conf, "bootstrap.servers", bootstrap, errstr, errstr_size) ||
	    conf_set(conf, "client.id", client_id, errstr, errstr_size) ||
	    /* Route librdkafka's log lines through our JSON logger, from
	     * whichever thread emits them (es_log writes whole lines). */
	    conf_set(conf, "log.queue", "false", errstr, errstr_size) ||
	    es_config_kafka_passthrough(conf, errstr, errstr_size) < 0) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	return conf;
}

void es_kafka_replication(int brokers, int replicas, int min_insync, int *out_replicas,
			  int *out_min_insync)
{
	int rf = replicas < 1 ? 1 : replicas;
	int isr = min_insync < 1 ? 1 : min_insync;

	if (brokers >= 1 && rf > brokers)
		rf = brokers;
	if (isr > rf - 1)
		isr = rf > 1 ? rf - 1 : 1;
	*out_replicas = rf;
	*out_min_insync = isr;
}

int es_kafka_broker_count(rd_kafka_t *rk, int timeout_ms, char *errstr, size_t errstr_size)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err;
	int n;

	/* all_topics=0 and no topic: only the brokers, nothing auto-created. */
	err = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);
	if (err) {
		snprintf(errstr, errstr_size, "cluster metadata: %s", rd_kafka_err2str(err));
		return -1;
	}
	n = md->broker_cnt;
	rd_kafka_metadata_destroy(md);
	return n;
}

/* ----------------------------------------------------------------- producer */

struct es_producer {
	rd_kafka_t *rk;
	es_delivery_fn *on_delivery;
	void *arg;
	atomic_uint_fast64_t delivered;
	atomic_uint_fast64_t failed;
};

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
	struct es_producer *p = opaque;

	if (rkm->err) {
		atomic_fetch_add(&p->failed, 1);
		es_log(ES_LOG_WARN, NULL, "delivery to %s failed: %s",
		       rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "?", rd_kafka_err2str(rkm->err));
	} else {
		atomic_fetch_add(&p->delivered, 1);
	}
	if (p->on_delivery)
		p->on_delivery(p->arg, rkm->_private, rkm->err, rkm);
}

struct es_producer *es_producer_new(const char *bootstrap, const char *client_id,
				    es_delivery_fn *on_delivery, void *arg, char *errstr,
				    size_t errstr_size)
{
	struct es_producer *p = calloc(1, sizeof(*p));
	rd_kafka_conf_t *conf;

	if (!p) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	p->on_delivery = on_delivery;
	p->arg = arg;
	conf = es_kafka_conf_new(bootstrap, client_id, errstr, errstr_size);
	if (!conf)
		goto fail;
	/* Settings the design depends on come after the pass-through, so an
	 * environment variable cannot switch them off by accident. */
	if (conf_set(conf, "enable.idempotence", "true", errstr, errstr_size) ||
	    conf_set(conf, "partitioner", "murmur2_random", errstr, errstr_size) ||
	    conf_set(conf, "linger.ms", "5", errstr, errstr_size)) {
		rd_kafka_conf_destroy(conf);
		goto fail;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
	rd_kafka_conf_set_opaque(conf, p);
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
	if (!p->rk) {
		rd_kafka_conf_destroy(conf);
		goto fail;
	}
	return p;
fail:
	free(p);
	return NULL;
}

void es_producer_free(struct es_producer *p)
{
	if (!p)
		return;
	if (es_producer_flush(p, 10000))
		es_warn("producer closed with %d message(s) undelivered", rd_kafka_outq_len(p->rk));
	rd_kafka_destroy(p->rk);
	free(p);
}

int es_producer_send_raw(struct es_producer *p, const char *topic, const void *key, size_t key_len,
			 const void *value, size_t len, rd_kafka_headers_t *hdrs, void *opaque,
			 char *errstr, size_t errstr_size)
{
	rd_kafka_resp_err_t err;

	/* RD_KAFKA_MSG_F_COPY: the caller's buffers may go away right after. */
	err = rd_kafka_producev(
		p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY((void *)key, key ? key_len : 0),
		RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
	if (err) {
		/* On failure the headers were not taken over. */
		if (hdrs)
			rd_kafka_headers_destroy(hdrs);
		snprintf(errstr, errstr_size, "produce to %s: %s", topic, rd_kafka_err2str(err));
		return (int)err;
	}
	return 0;
}

int es_producer_send_event(struct es_producer *p, const char *topic, const char *key,
			   const char *value, const char *event_id, const char *event_type,
			   const char *event_source, void *opaque, char *errstr, size_t errstr_size)
{
	rd_kafka_headers_t *hdrs = rd_kafka_headers_new(5);

	rd_kafka_header_add(hdrs, "content-type", -1, "application/cloudevents+json; charset=UTF-8",
			    -1);
	rd_kafka_header_add(hdrs, "ce_specversion", -1, "1.0", -1);
	rd_kafka_header_add(hdrs, "ce_id", -1, event_id, -1);
	rd_kafka_header_add(hdrs, "ce_type", -1, event_type, -1);
	rd_kafka_header_add(hdrs, "ce_source", -1, event_source, -1);
	return es_producer_send_raw(p, topic, key, strlen(key), value, strlen(value), hdrs, opaque,
				    errstr, errstr_size);
}

int es_producer_send(struct es_producer *p, const char *topic, const struct es_event *ev,
		     void *opaque, char *errstr, size_t errstr_size)
{
	char *value = es_event_serialize(ev);
	int rc;

	if (!value) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	rc = es_producer_send_event(p, topic, ev->partitionkey, value, ev->id, ev->type, ev->source,
				    opaque, errstr, errstr_size);
	free(value);
	return rc;
}

int es_producer_poll(struct es_producer *p, int timeout_ms, char *errstr, size_t errstr_size)
{
	char why[512];
	rd_kafka_resp_err_t err;

	rd_kafka_poll(p->rk, timeout_ms);
	err = rd_kafka_fatal_error(p->rk, why, sizeof(why));
	if (err) {
		snprintf(errstr, errstr_size, "fatal producer error %s: %s", rd_kafka_err2name(err),
			 why);
		return -1;
	}
	return 0;
}

int es_producer_flush(struct es_producer *p, int timeout_ms)
{
	return rd_kafka_flush(p->rk, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

int es_producer_outq_len(struct es_producer *p)
{
	return rd_kafka_outq_len(p->rk);
}

rd_kafka_t *es_producer_handle(struct es_producer *p)
{
	return p->rk;
}

uint64_t es_producer_delivered(const struct es_producer *p)
{
	return atomic_load(&((struct es_producer *)p)->delivered);
}

uint64_t es_producer_failed(const struct es_producer *p)
{
	return atomic_load(&((struct es_producer *)p)->failed);
}

int es_kafka_metrics_register(struct es_metrics *reg, struct es_kafka_metrics *m, char *errstr,
			      size_t errstr_size)
{
	static const char *const topic_type[] = {"topic", "type", NULL};
	static const char *const topic_type_result[] = {"topic", "type", "result", NULL};
	static const char *const topic[] = {"topic", NULL};
	static const char *const topic_reason[] = {"topic", "reason", NULL};
	static const double batch_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

	m->consumed = es_counter_register(reg, "es_events_consumed_total",
					  "Events read from Kafka, by topic and type.", topic_type,
					  errstr, errstr_size);
	if (!m->consumed)
		return -1;
	m->handled = es_counter_register(reg, "es_events_handled_total",
					 "Events whose handling finished, by final result (ok or "
					 "rejected).",
					 topic_type_result, errstr, errstr_size);
	if (!m->handled)
		return -1;
	m->retried = es_counter_register(
		reg, "es_events_retried_total",
		"Handler calls that asked for a retry (transient failure).", topic, errstr,
		errstr_size);
	if (!m->retried)
		return -1;
	m->dead_lettered = es_counter_register(reg, "es_events_dead_lettered_total",
					       "Messages sent to the dead-letter topic, by source "
					       "topic and reason (invalid or rejected).",
					       topic_reason, errstr, errstr_size);
	if (!m->dead_lettered)
		return -1;
	m->produced = es_counter_register(reg, "es_events_produced_total",
					  "Events acknowledged by the broker, by topic and type.",
					  topic_type, errstr, errstr_size);
	if (!m->produced)
		return -1;
	m->handler_seconds = es_histogram_register(
		reg, "es_handler_duration_seconds",
		"Duration of one handler call, which applies a batch of events.", NULL, NULL, 0,
		errstr, errstr_size);
	if (!m->handler_seconds)
		return -1;
	m->batch_size = es_histogram_register(
		reg, "es_consumer_batch_size", "Events handed to the handler in one call.", NULL,
		batch_buckets, sizeof(batch_buckets) / sizeof(batch_buckets[0]), errstr,
		errstr_size);
	if (!m->batch_size)
		return -1;
	m->lag = es_gauge_register(reg, "es_consumer_lag",
				   "Messages between the group's committed offset and the end of "
				   "the partition, for the partitions this instance consumes.",
				   (const char *const[]){"topic", "partition", NULL}, errstr,
				   errstr_size);
	return m->lag ? 0 : -1;
}

int es_kafka_stats_lag(const struct es_kafka_metrics *m, const char *json, size_t len)
{
	json_t *root = json_loadb(json, len, 0, NULL);
	json_t *topics = json_object_get(root, "topics"), *t;
	const char *topic;
	int n = 0;

	if (!json_is_object(topics)) {
		json_decref(root);
		return -1;
	}
	json_object_foreach(topics, topic, t)
	{
		json_t *parts = json_object_get(t, "partitions"), *p;
		const char *id;

		json_object_foreach(parts, id, p)
		{
			json_t *lag = json_object_get(p, "consumer_lag");
			bool mine = json_is_true(json_object_get(p, "desired"));
			double v;

			if (id[0] == '-') /* -1: librdkafka's unassigned queue */
				continue;
			if (mine && json_is_integer(lag) && json_integer_value(lag) >= 0)
				v = (double)json_integer_value(lag);
			else if (!mine)
				v = 0;
			else
				continue; /* not known yet */
			if (es_gauge_set(m->lag, (const char *const[]){topic, id, NULL}, v) == 0)
				n++;
		}
	}
	json_decref(root);
	return n;
}
