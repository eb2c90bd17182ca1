/*
 * The at-least-once consumer loop with retries and dead letters.
 * See es/kafka.h for the contract; the why of each step is told here.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "es/clock.h"
#include "es/config.h"
#include "es/consumer.h"
#include "es/log.h"
#include "es/metrics.h"

/* A batch in the consumer's hands: the messages as read, and the items
 * (parsed events) handed to the handler. */
struct batch {
	rd_kafka_message_t **msgs;
	struct es_event **evs; /* per message; NULL when unparseable */
	char (*invalid)[256]; /* per message: why it did not parse */
	struct es_batch_item *items;
	size_t *item_of; /* per message: its item, or SIZE_MAX */
	size_t nmsgs, nitems;
};

struct es_consumer {
	rd_kafka_t *rk;
	struct es_producer *dlq; /* owned: dead letters */
	char *group_id;
	char *service;
	char *dlq_topic;
	es_batch_fn *handler;
	void *handler_arg;
	const struct es_kafka_metrics *metrics;
	int retry_initial_ms;
	int retry_max_ms;
	int batch_max;
	struct batch batch; /* the batch in hand; its arrays hold batch_max */
	atomic_bool joined; /* set by the first assignment */
};

/* The outcome of one dead letter, filled by the delivery callback. */
struct dlq_wait {
	int done;
	rd_kafka_resp_err_t err;
};

static void dlq_delivered(void *arg, void *opaque, rd_kafka_resp_err_t err,
			  const rd_kafka_message_t *rkm)
{
	struct dlq_wait *w = opaque;

	if (w) {
		w->err = err;
		w->done = 1;
	}
}

/*
 * The jitter's random numbers. rand() is never seeded, so every daemon
 * would draw the same "random" delays and retry a dead database in
 * lockstep: each thread of each process gets its own generator, seeded
 * afresh whenever the process id changed (after a fork too).
 */
static unsigned jitter_random(void)
{
	static _Thread_local unsigned state;
	static _Thread_local pid_t seeded_by;
	pid_t pid = getpid();

	if (seeded_by != pid) {
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		state = (unsigned)pid * 2654435761u ^ (unsigned)now.tv_nsec ^
			(unsigned)(uintptr_t)&state;
		seeded_by = pid;
	}
	return (unsigned)rand_r(&state);
}

int es_backoff_ms(int attempt, int initial_ms, int max_ms)
{
	long delay = initial_ms;
	long half;

	for (int i = 2; i < attempt && delay < max_ms; i++)
		delay *= 2;
	if (delay > max_ms)
		delay = max_ms;
	/* "Equal jitter": half fixed, half random, so that many consumers
	 * retrying the same dead database do not hit it in lockstep. */
	half = delay / 2;
	return (int)(half + (long)(jitter_random() % (unsigned long)(delay - half + 1)));
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/*
 * The eager assignor's protocol (the default; cooperative-sticky has known
 * bugs in librdkafka 2.0.2): take what is assigned, drop all on a revoke.
 * Offsets stored so far are committed by librdkafka before the revoke
 * completes, so the next owner starts after our last handled message.
 */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct es_consumer *c = opaque;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		es_info("group %s: assigned %d partition(s)", c->group_id, parts->cnt);
		rd_kafka_assign(rk, parts);
		atomic_store(&c->joined, true);
	} else {
		es_info("group %s: %d partition(s) revoked", c->group_id, parts->cnt);
		rd_kafka_assign(rk, NULL);
	}
}

bool es_consumer_joined(struct es_consumer *c)
{
	return atomic_load(&c->joined);
}

/* librdkafka's statistics, every ES_KAFKA_STATS_INTERVAL_MS, on the
 * consumer's thread: es_consumer_lag. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	const struct es_consumer *c = opaque;

	(void)rk;
	es_kafka_stats_lag(c->metrics, json, len);
	return 0; /* librdkafka frees json */
}

static int batch_alloc(struct batch *b, size_t max)
{
	b->msgs = calloc(max, sizeof(*b->msgs));
	b->evs = calloc(max, sizeof(*b->evs));
	b->invalid = calloc(max, sizeof(*b->invalid));
	b->items = calloc(max, sizeof(*b->items));
	b->item_of = calloc(max, sizeof(*b->item_of));
	return b->msgs && b->evs && b->invalid && b->items && b->item_of ? 0 : -1;
}

static void batch_free(struct batch *b)
{
	free(b->msgs);
	free(b->evs);
	free(b->invalid);
	free(b->items);
	free(b->item_of);
}

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Frees c and what it owns, without leaving the group (see
 * es_consumer_free). */
static void consumer_destroy(struct es_consumer *c)
{
	if (c->rk)
		rd_kafka_destroy(c->rk);
	es_producer_free(c->dlq);
	free(c->group_id);
	free(c->service);
	free(c->dlq_topic);
	batch_free(&c->batch);
	free(c);
}

/* fetch.max.bytes as ES_CONSUMER_FETCH_MAX_BYTES, unless message.max.bytes
 * is larger: librdkafka refuses a fetch smaller than the largest message,
 * and sizes it itself, above that, when left alone. Non-zero on error. */
static int set_fetch_max_bytes(rd_kafka_conf_t *conf, char *why, size_t why_size)
{
	char largest[32];
	size_t size = sizeof(largest);

	if (rd_kafka_conf_get(conf, "message.max.bytes", largest, &size) == RD_KAFKA_CONF_OK &&
	    strtol(largest, NULL, 10) > strtol(ES_CONSUMER_FETCH_MAX_BYTES, NULL, 10))
		return 0;
	return rd_kafka_conf_set(conf, "fetch.max.bytes", ES_CONSUMER_FETCH_MAX_BYTES, why,
				 why_size) != RD_KAFKA_CONF_OK;
}

/* With a fetch wait, the broker gathers a whole fetch or waits wait_ms
 * before it answers (ES_CONSUMER_FETCH_WAIT_MIN_BYTES); the KAFKA_*
 * variables of the two properties win. Non-zero on error. */
static int set_fetch_wait(rd_kafka_conf_t *conf, int wait_ms, char *why, size_t why_size)
{
	char wait[16];

	if (wait_ms <= 0)
		return 0;
	snprintf(wait, sizeof(wait), "%d", wait_ms);
	return (!es_config_str("KAFKA_FETCH_WAIT_MAX_MS", NULL) &&
		rd_kafka_conf_set(conf, "fetch.wait.max.ms", wait, why, why_size)) ||
	       (!es_config_str("KAFKA_FETCH_MIN_BYTES", NULL) &&
		rd_kafka_conf_set(conf, "fetch.min.bytes", ES_CONSUMER_FETCH_WAIT_MIN_BYTES, why,
				  why_size));
}

struct es_consumer *es_consumer_new(const struct es_consumer_config *cfg, char *errstr,
				    size_t errstr_size)
{
	struct es_consumer *c = calloc(1, sizeof(*c));
	rd_kafka_conf_t *conf = NULL;
	rd_kafka_topic_partition_list_t *topics = NULL;
	char why[256];
	rd_kafka_resp_err_t err;
	const char *client_id = cfg->client_id ? cfg->client_id : cfg->group_id;

	if (!c) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	c->group_id = xstrdup(cfg->group_id);
	c->service = xstrdup(cfg->service ? cfg->service : cfg->group_id);
	c->dlq_topic = xstrdup(cfg->dlq_topic);
	c->handler = cfg->handler;
	c->handler_arg = cfg->handler_arg;
	c->metrics = cfg->metrics;
	c->retry_initial_ms = cfg->retry_initial_ms > 0 ? cfg->retry_initial_ms : 100;
	c->retry_max_ms = cfg->retry_max_ms > 0 ? cfg->retry_max_ms : 5000;
	c->batch_max = cfg->batch_max > 0 ? cfg->batch_max : ES_CONSUMER_BATCH_MAX;
	if (batch_alloc(&c->batch, (size_t)c->batch_max)) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	if (!c->group_id || !c->service || !c->dlq_topic || !c->handler) {
		snprintf(errstr, errstr_size, "consumer needs group_id, dlq_topic and a handler");
		goto fail;
	}

	c->dlq = es_producer_new(cfg->bootstrap, client_id, dlq_delivered, c, errstr, errstr_size);
	if (!c->dlq)
		goto fail;

	conf = es_kafka_conf_new(cfg->bootstrap, client_id, errstr, errstr_size);
	if (!conf)
		goto fail;
	/* We store each offset ourselves after the handler's transaction
	 * committed; librdkafka commits what is stored every 5 s and on
	 * close. earliest: a new group reads the topic from its start, so
	 * nothing produced before the first start is missed. The session
	 * timeout is ours unless KAFKA_SESSION_TIMEOUT_MS says otherwise (see
	 * ES_CONSUMER_SESSION_TIMEOUT_MS), and so are the prefetch and the
	 * size of a fetch (ES_CONSUMER_PREFETCH_KBYTES,
	 * ES_CONSUMER_FETCH_MAX_BYTES). */
	if (rd_kafka_conf_set(conf, "group.id", cfg->group_id, why, sizeof(why)) ||
	    (cfg->instance_id &&
	     rd_kafka_conf_set(conf, "group.instance.id", cfg->instance_id, why, sizeof(why))) ||
	    rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", why, sizeof(why)) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "true", why, sizeof(why)) ||
	    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", why, sizeof(why)) ||
	    (!es_config_str("KAFKA_SESSION_TIMEOUT_MS", NULL) &&
	     rd_kafka_conf_set(conf, "session.timeout.ms", ES_CONSUMER_SESSION_TIMEOUT_MS, why,
			       sizeof(why))) ||
	    (!es_config_str("KAFKA_QUEUED_MAX_MESSAGES_KBYTES", NULL) &&
	     rd_kafka_conf_set(conf, "queued.max.messages.kbytes", ES_CONSUMER_PREFETCH_KBYTES, why,
			       sizeof(why))) ||
	    (!es_config_str("KAFKA_FETCH_MAX_BYTES", NULL) &&
	     set_fetch_max_bytes(conf, why, sizeof(why))) ||
	    set_fetch_wait(conf, cfg->fetch_wait_ms, why, sizeof(why))) {
		snprintf(errstr, errstr_size, "consumer configuration: %s", why);
		goto fail;
	}
	if (c->metrics) {
		if (rd_kafka_conf_set(conf, "statistics.interval.ms", ES_KAFKA_STATS_INTERVAL_MS,
				      why, sizeof(why))) {
			snprintf(errstr, errstr_size, "consumer configuration: %s", why);
			goto fail;
		}
		rd_kafka_conf_set_stats_cb(conf, stats_cb);
	}
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rd_kafka_conf_set_opaque(conf, c);
	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
	if (!c->rk)
		goto fail;
	conf = NULL; /* now owned by c->rk */
	rd_kafka_poll_set_consumer(c->rk);

	topics = rd_kafka_topic_partition_list_new(4);
	for (size_t i = 0; cfg->topics && cfg->topics[i]; i++)
		rd_kafka_topic_partition_list_add(topics, cfg->topics[i], RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(c->rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (err) {
		snprintf(errstr, errstr_size, "subscribe: %s", rd_kafka_err2str(err));
		goto fail;
	}
	if (cfg->instance_id)
		es_info("group %s: joining as static member %s", c->group_id, cfg->instance_id);
	else
		es_info("group %s: joining as a dynamic member", c->group_id);
	return c;
fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	consumer_destroy(c);
	return NULL;
}

void es_consumer_free(struct es_consumer *c)
{
	rd_kafka_resp_err_t err;

	if (!c)
		return;
	/* Leaves the group at once (no wait for session timeout on the
	 * others) and commits the offsets we stored. */
	err = rd_kafka_consumer_close(c->rk);
	if (err)
		es_warn("consumer close: %s", rd_kafka_err2str(err));
	consumer_destroy(c);
}

rd_kafka_t *es_consumer_handle(struct es_consumer *c)
{
	return c->rk;
}

static void set_paused(struct es_consumer *c, int pause)
{
	rd_kafka_topic_partition_list_t *parts = NULL;

	if (rd_kafka_assignment(c->rk, &parts) || !parts)
		return;
	if (pause)
		rd_kafka_pause_partitions(c->rk, parts);
	else
		rd_kafka_resume_partitions(c->rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
}

/*
 * Waits ms while staying a live group member: the partitions are paused, so
 * polling fetches nothing, but it tells the group we are alive. A message
 * that still arrives (a rebalance resets pausing) is put back by seeking to
 * it, so order within its partition is kept. Returns -1 if *stop was set.
 */
static int backoff_wait(struct es_consumer *c, int ms, volatile sig_atomic_t *stop)
{
	long long start = es_monotonic_ms();
	char errstr[256];

	for (;;) {
		rd_kafka_message_t *rkm;
		long long elapsed;

		if (stop && *stop)
			return -1;
		elapsed = es_monotonic_ms() - start;
		if (elapsed >= ms)
			return 0;
		set_paused(c, 1);
		rkm = rd_kafka_consumer_poll(c->rk, (int)(ms - elapsed < 100 ? ms - elapsed : 100));
		if (rkm) {
			if (!rkm->err) {
				rd_kafka_topic_partition_list_t *l =
					rd_kafka_topic_partition_list_new(1);
				rd_kafka_error_t *error;

				rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(rkm->rkt),
								  rkm->partition)
					->offset = rkm->offset;
				error = rd_kafka_seek_partitions(c->rk, l, 5000);
				if (error)
					rd_kafka_error_destroy(error);
				rd_kafka_topic_partition_list_destroy(l);
			}
			rd_kafka_message_destroy(rkm);
		}
		es_producer_poll(c->dlq, 0, errstr, sizeof(errstr));
	}
}

/* Produces the dead letter and waits for its delivery report. Returns 0
 * once the broker has it, -1 otherwise (reason filled). */
static int dead_letter(struct es_consumer *c, const rd_kafka_message_t *rkm, const char *reason,
		       int attempts, volatile sig_atomic_t *stop, char *why, size_t why_size)
{
	rd_kafka_headers_t *orig = NULL, *hdrs;
	struct dlq_wait wait = {0};
	char num[32], when[ES_TIME_LEN + 1];

	if (rd_kafka_message_headers(rkm, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig)
		hdrs = rd_kafka_headers_copy(orig);
	else
		hdrs = rd_kafka_headers_new(7);
	rd_kafka_header_add(hdrs, ES_DLQ_HDR_ERROR, -1, reason, -1);
	rd_kafka_header_add(hdrs, ES_DLQ_HDR_TOPIC, -1, rd_kafka_topic_name(rkm->rkt), -1);
	snprintf(num, sizeof(num), "%" PRId32, rkm->partition);
	rd_kafka_header_add(hdrs, ES_DLQ_HDR_PARTITION, -1, num, -1);
	snprintf(num, sizeof(num), "%" PRId64, rkm->offset);
	rd_kafka_header_add(hdrs, ES_DLQ_HDR_OFFSET, -1, num, -1);
	snprintf(num, sizeof(num), "%d", attempts);
	rd_kafka_header_add(hdrs, ES_DLQ_HDR_ATTEMPTS, -1, num, -1);
	rd_kafka_header_add(hdrs, ES_DLQ_HDR_SERVICE, -1, c->service, -1);
	es_time_now(when);
	rd_kafka_header_add(hdrs, ES_DLQ_HDR_TIME, -1, when, -1);

	if (es_producer_send_raw(c->dlq, c->dlq_topic, rkm->key, rkm->key_len, rkm->payload,
				 rkm->len, hdrs, &wait, why, why_size))
		return -1;
	while (!wait.done) {
		if (es_producer_poll(c->dlq, 100, why, why_size))
			return -1;
		if (stop && *stop && !wait.done) {
			/* Shutting down: wait the bounded flush for it. */
			es_producer_flush(c->dlq, 5000);
			if (!wait.done) {
				snprintf(why, why_size,
					 "shutdown before the dead letter was delivered");
				return -1;
			}
		}
	}
	if (wait.err) {
		snprintf(why, why_size, "dead letter not delivered: %s",
			 rd_kafka_err2str(wait.err));
		return -1;
	}
	return 0;
}

/* Reads one batch: the first poll waits up to timeout_ms, the others only
 * take what is already fetched. Returns -1 on a fatal consumer error. */
static int read_batch(struct es_consumer *c, struct batch *b, int timeout_ms, char *errstr,
		      size_t errstr_size)
{
	b->nmsgs = 0;
	for (int wait_ms = timeout_ms; b->nmsgs < (size_t)c->batch_max; wait_ms = 0) {
		rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, wait_ms);

		if (!rkm)
			break;
		if (rkm->err) {
			int fatal = rkm->err == RD_KAFKA_RESP_ERR__FATAL;

			/* Consumer errors are informational (broker down,
			 * topic not yet created): librdkafka keeps trying by
			 * itself. */
			if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				es_log(fatal ? ES_LOG_ERROR : ES_LOG_WARN, NULL, "consumer: %s",
				       rd_kafka_message_errstr(rkm));
			if (fatal)
				snprintf(errstr, errstr_size, "fatal consumer error: %s",
					 rd_kafka_message_errstr(rkm));
			rd_kafka_message_destroy(rkm);
			if (fatal)
				return -1;
			continue;
		}
		b->msgs[b->nmsgs++] = rkm;
	}
	return 0;
}

/* Parses the batch's messages and lines up the parseable ones as items. */
static void parse_batch(struct es_consumer *c, struct batch *b)
{
	const struct es_kafka_metrics *m = c->metrics;

	b->nitems = 0;
	for (size_t i = 0; i < b->nmsgs; i++) {
		rd_kafka_message_t *rkm = b->msgs[i];
		const char *topic = rd_kafka_topic_name(rkm->rkt);
		struct es_batch_item *it;

		b->item_of[i] = SIZE_MAX;
		b->evs[i] = es_event_parse(rkm->payload, rkm->len, b->invalid[i],
					   sizeof(b->invalid[i]));
		if (m)
			es_counter_inc(
				m->consumed,
				(const char *[]){topic, b->evs[i] ? b->evs[i]->type : "invalid"});
		if (!b->evs[i])
			continue;
		b->item_of[i] = b->nitems;
		it = &b->items[b->nitems++];
		memset(it, 0, sizeof(*it));
		it->ev = b->evs[i];
		it->d = (struct es_delivery){topic, rkm->partition, rkm->offset, 1, rkm};
	}
}

/* Stores the offsets past every message of the batch, for each partition
 * the highest one (messages of a partition come in order). */
static void store_offsets(struct es_consumer *c, const struct batch *b)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)b->nmsgs);
	rd_kafka_resp_err_t err;

	for (size_t i = 0; i < b->nmsgs; i++) {
		const rd_kafka_message_t *rkm = b->msgs[i];
		const char *topic = rd_kafka_topic_name(rkm->rkt);
		rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(l, topic,
										   rkm->partition);

		/* The committed offset is the next one to read: offset + 1. */
		if (!p)
			p = rd_kafka_topic_partition_list_add(l, topic, rkm->partition);
		if (rkm->offset + 1 > p->offset)
			p->offset = rkm->offset + 1;
	}
	err = rd_kafka_offsets_store(c->rk, l);
	for (int i = 0; i < l->cnt; i++) {
		rd_kafka_resp_err_t e = err ? err : l->elems[i].err;

		/* The partition was revoked while we worked: its new owner
		 * reads the messages again, and the inbox makes that
		 * harmless. */
		if (e)
			es_warn("offset %s[%" PRId32 "]@%" PRId64 " not stored: %s",
				l->elems[i].topic, l->elems[i].partition, l->elems[i].offset - 1,
				rd_kafka_err2str(e));
	}
	rd_kafka_topic_partition_list_destroy(l);
}

/*
 * Hands the batch's events to the handler until it answers something other
 * than RETRY. Returns 0, or -1 when asked to stop meanwhile (the offsets
 * then stay unstored and the batch is read again after the restart).
 */
static int handle_batch(struct es_consumer *c, struct batch *b, int *paused,
			volatile sig_atomic_t *stop)
{
	const struct es_kafka_metrics *m = c->metrics;
	char reason[512];

	if (!b->nitems)
		return 0;
	if (m)
		es_histogram_observe(m->batch_size, NULL, (double)b->nitems);
	for (int attempt = 1;; attempt++) {
		enum es_handler_result r;
		struct timespec t0;

		for (size_t i = 0; i < b->nitems; i++) {
			b->items[i].d.attempt = attempt;
			b->items[i].result = ES_HANDLER_OK;
			b->items[i].reason[0] = '\0';
		}
		reason[0] = '\0';
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = c->handler(c->handler_arg, b->items, b->nitems, reason, sizeof(reason));
		if (m)
			es_histogram_observe(m->handler_seconds, NULL, seconds_since(&t0));
		if (r != ES_HANDLER_RETRY)
			return 0;
		if (m) {
			for (size_t i = 0; i < b->nitems; i++)
				es_counter_inc(m->retried, (const char *[]){b->items[i].d.topic});
		}
		es_warn("a batch of %zu event(s) from %s[%" PRId32 "]@%" PRId64
			" on, attempt %d, will be retried: %s",
			b->nitems, b->items[0].d.topic, b->items[0].d.partition,
			b->items[0].d.offset, attempt, reason);
		*paused = 1;
		if (backoff_wait(c,
				 es_backoff_ms(attempt + 1, c->retry_initial_ms, c->retry_max_ms),
				 stop))
			return -1;
	}
}

/* Dead-letters message i of the batch with reason; retries until the
 * broker has it. Returns -1 when asked to stop meanwhile. */
static int dead_letter_message(struct es_consumer *c, const struct batch *b, size_t i,
			       const char *reason, int attempts, int *paused,
			       volatile sig_atomic_t *stop)
{
	const rd_kafka_message_t *rkm = b->msgs[i];
	const struct es_event *ev = b->evs[i];
	struct es_log_ctx ctx = {ev ? ev->subject : NULL, ev ? ev->id : NULL, NULL};
	char why[512];

	es_log(ES_LOG_WARN, &ctx, "dead-lettering %s[%" PRId32 "]@%" PRId64 " to %s: %s",
	       rd_kafka_topic_name(rkm->rkt), rkm->partition, rkm->offset, c->dlq_topic, reason);
	/* The dead letter must be safe before the offset moves on: otherwise
	 * a crash in between would lose the message. */
	for (int attempt = 2; dead_letter(c, rkm, reason, attempts, stop, why, sizeof(why));
	     attempt++) {
		es_warn("%s; retrying", why);
		*paused = 1;
		if (backoff_wait(c, es_backoff_ms(attempt, c->retry_initial_ms, c->retry_max_ms),
				 stop))
			return -1;
	}
	if (c->metrics)
		es_counter_inc(c->metrics->dead_lettered,
			       (const char *[]){rd_kafka_topic_name(rkm->rkt),
						ev ? "rejected" : "invalid"});
	return 0;
}

/* Handles a batch read: effects, dead letters, then the offsets. */
static void handle_messages(struct es_consumer *c, struct batch *b, volatile sig_atomic_t *stop)
{
	const struct es_kafka_metrics *m = c->metrics;
	int paused = 0;

	parse_batch(c, b);
	if (handle_batch(c, b, &paused, stop))
		goto out;
	for (size_t i = 0; i < b->nmsgs; i++) {
		const struct es_batch_item *it = b->item_of[i] == SIZE_MAX
							 ? NULL
							 : &b->items[b->item_of[i]];
		bool rejected = !it || it->result == ES_HANDLER_REJECT;
		char reason[512];

		if (!it)
			snprintf(reason, sizeof(reason), "invalid CloudEvent: %s", b->invalid[i]);
		else
			snprintf(reason, sizeof(reason), "%s",
				 it->reason[0] ? it->reason : "rejected by the handler");
		if (rejected &&
		    dead_letter_message(c, b, i, reason, it ? it->d.attempt : 1, &paused, stop))
			goto out;
		if (m && it)
			es_counter_inc(m->handled, (const char *[]){it->d.topic, it->ev->type,
								    rejected ? "rejected" : "ok"});
	}
	store_offsets(c, b);
out:
	if (paused)
		set_paused(c, 0);
}

int es_consumer_poll(struct es_consumer *c, int timeout_ms, volatile sig_atomic_t *stop,
		     char *errstr, size_t errstr_size)
{
	int rc = 0;

	if (es_producer_poll(c->dlq, 0, errstr, errstr_size))
		return -1;
	if (read_batch(c, &c->batch, timeout_ms, errstr, errstr_size))
		rc = -1;
	if (c->batch.nmsgs)
		handle_messages(c, &c->batch, stop);
	for (size_t i = 0; i < c->batch.nmsgs; i++) {
		es_event_free(c->batch.evs[i]);
		rd_kafka_message_destroy(c->batch.msgs[i]);
	}
	c->batch.nmsgs = 0;
	return rc;
}

int es_consumer_run(struct es_consumer *c, volatile sig_atomic_t *stop, char *errstr,
		    size_t errstr_size)
{
	while (!*stop) {
		if (es_consumer_poll(c, 100, stop, errstr, errstr_size))
			return -1;
	}
	return 0;
}
