/*
 * follow: when each order's saga ended, read from the orders topic by a
 * reader (es/reader.h) that follows every partition from its end as of the
 * start: a member of no group, it moves no one's offsets.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "es/envelope.h"
#include "es/events.h"
#include "es/reader.h"
#include "loadgen.h"

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
	es_reader_free(f->rk);
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
	/* Reads only what is produced from now on, and moves no one's
	 * offsets (es/reader.h). */
	f->rk = es_reader_new(run->cfg->bootstrap, LG_NAME, errstr, errstr_size);
	if (!f->rk || es_reader_follow(f->rk, run->cfg->topic, errstr, errstr_size))
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
