/*
 * shopctl watch: every topic of the shop as one stream, one line per event,
 * in the order things happened.
 *
 * The events of one order travel on different topics (OrderPlaced on
 * orders, InventoryReserved on inventory), and a consumer fetches each
 * partition at its own pace: read raw, a reaction can show up before its
 * cause. watch therefore holds each event for a short window after it
 * arrived, in a heap ordered by event time, and prints it once the window
 * has passed; an event that arrives late but happened earlier overtakes the
 * ones still held.
 *
 * Reading is es/reader.h's: partitions assigned by hand under a throwaway group
 * id, nothing ever committed, so watching moves no daemon's offsets.
 *
 * This file reads and runs the loop; the other parts are in watch.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "es/clock.h"
#include "es/daemon.h"
#include "es/reader.h"
#include "shopctl.h"
#include "watch.h"

#define POLL_MS 100
/*
 * While the history is read (--from-beginning) every event is held, so that
 * all of it comes out sorted; beyond this many the earliest is printed
 * early, so that a huge history cannot take all memory (it then comes out
 * sorted in runs).
 */
#define MAX_HELD 200000

/* Where one partition stands. */
struct part {
	int64_t end; /* the high watermark when the watch started */
	bool done; /* read up to end */
};

struct topic {
	const char *name; /* struct shopctl_watch_opts's */
	const char *color; /* of its role in the shop, NULL for others */
	int n;
	struct part *parts;
};

struct watch {
	const struct shopctl_watch_opts *o;
	rd_kafka_t *rk;
	struct topic topics[SHOPCTL_WATCH_MAX_TOPICS];
	int ntopics;
	int remaining; /* partitions not yet read up to their end */
	struct shopctl_watch_reorder held;
	long long progress_ms; /* monotonic: the last message or end reached */
	char last_error[512];
};

/* ------------------------------------------------------ the held events */

static bool count_reached(const struct watch *w)
{
	return w->o->count && w->held.printed >= w->o->count;
}

/*
 * Prints the held events whose window has passed (all of them when all is
 * true), earliest first; while the history is still being read, none. An
 * event still in its window holds back the later ones behind it. Returns
 * 0, or -1 when stdout cannot be written (errno set).
 */
static int release(struct watch *w, bool all)
{
	long long now = es_monotonic_ms();
	bool any = false;

	while (w->held.n > 0 && !count_reached(w)) {
		if (!all && (w->remaining > 0 || shopctl_watch_reorder_due(&w->held) > now))
			break;
		shopctl_watch_reorder_print_next(&w->held);
		any = true;
	}
	if (any && fflush(stdout) == EOF)
		return -1;
	return 0;
}

/* How long the poll may wait without delaying the next release. */
static int poll_timeout(const struct watch *w)
{
	long long wait;

	if (w->held.n == 0 || w->remaining > 0)
		return POLL_MS;
	wait = shopctl_watch_reorder_due(&w->held) - es_monotonic_ms();
	if (wait < 0)
		return 0;
	return wait < POLL_MS ? (int)wait : POLL_MS;
}

/* ------------------------------------------------------------ reading */

static struct topic *find_topic(struct watch *w, const rd_kafka_message_t *rkm)
{
	const char *name = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : NULL;

	for (int i = 0; name && i < w->ntopics; i++) {
		if (!strcmp(w->topics[i].name, name))
			return &w->topics[i];
	}
	return NULL;
}

/* Live, a learner wants to know that what comes next is new. Not when
 * watch stops at a count: how much of it was history then depends on
 * timing, and the same command should print the same thing each time. */
static void say_history_read(const struct watch *w)
{
	if (w->o->from_beginning && !w->o->exit_at_end && w->o->count == 0)
		fprintf(stderr,
			"shopctl: watch: history read (%llu event%s); watching for new ones\n",
			w->held.seq, w->held.seq == 1 ? "" : "s");
}

static void partition_done(struct watch *w, struct part *p)
{
	if (p->done)
		return;
	p->done = true;
	if (--w->remaining == 0)
		say_history_read(w);
}

/* The order id, or its first characters: the lines show only those. */
static bool order_matches(const struct watch *w, const struct shopctl_watch_view *v)
{
	size_t len;

	if (!w->o->order)
		return true;
	len = strlen(w->o->order);
	return v->order && v->order_len >= len && !memcmp(v->order, w->o->order, len);
}

/* Renders rkm and holds it. Returns 0, or -1 when out of memory. */
static int hold(struct watch *w, const struct topic *t, const rd_kafka_message_t *rkm)
{
	struct shopctl_watch_view v;
	char *line;
	int rc = 0;

	shopctl_watch_view_read(&v, rkm);
	if (order_matches(w, &v)) {
		line = shopctl_watch_render(&v, rkm, t->name, t->color, w->o->color);
		if (!line || shopctl_watch_reorder_add(&w->held, v.time_ms,
						       es_monotonic_ms() + w->o->window_ms, line))
			rc = -1;
	}
	shopctl_watch_view_release(&v);
	return rc;
}

/* Handles what the poll returned. Returns 0, or -1 when out of memory. */
static int on_message(struct watch *w, const rd_kafka_message_t *rkm)
{
	struct topic *t = find_topic(w, rkm);
	struct part *p;

	if (rkm->err && rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
		/* Mostly transient (a broker restarting): librdkafka retries.
		 * Said once per new error, not once per poll. */
		if (strcmp(w->last_error, rd_kafka_message_errstr(rkm))) {
			snprintf(w->last_error, sizeof(w->last_error), "%s",
				 rd_kafka_message_errstr(rkm));
			if (!w->o->exit_at_end)
				shopctl_err("watch: %s (still trying)", w->last_error);
		}
		return 0;
	}
	w->progress_ms = es_monotonic_ms();
	if (!t || rkm->partition < 0 || rkm->partition >= t->n)
		return 0;
	p = &t->parts[rkm->partition];
	if (rkm->err) {
		partition_done(w, p);
		return 0;
	}
	/* With -e, what came after the start is left for another run. */
	if (w->o->exit_at_end && rkm->offset >= p->end)
		return 0;
	if (hold(w, t, rkm))
		return -1;
	if (rkm->offset >= p->end - 1)
		partition_done(w, p);
	return 0;
}

/* Adds topic t's partitions to parts at their starting offsets. */
static int open_topic(struct watch *w, struct topic *t, rd_kafka_topic_partition_list_t *parts,
		      char *errstr, size_t errstr_size)
{
	t->parts = calloc((size_t)t->n, sizeof(*t->parts));
	if (!t->parts) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	for (int32_t i = 0; i < t->n; i++) {
		int64_t low, high, start;

		if (es_reader_watermarks(w->rk, t->name, i, &low, &high, errstr, errstr_size))
			return -1;
		start = w->o->from_beginning ? low : high;
		t->parts[i].end = high;
		t->parts[i].done = start >= high;
		if (!t->parts[i].done)
			w->remaining++;
		/* With -e a partition read to its end needs no fetching. */
		if (!w->o->exit_at_end || !t->parts[i].done)
			rd_kafka_topic_partition_list_add(parts, t->name, i)->offset = start;
	}
	return 0;
}

/*
 * Finds the topics that exist, skipping the others with a notice, and
 * assigns their partitions. Returns 0, or -1 with errstr filled: Kafka
 * does not answer, or none of the topics exists.
 */
static int open_topics(struct watch *w, char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
	const struct shopctl_watch_opts *o = w->o;
	rd_kafka_resp_err_t err;
	char why[512];
	int rc = -1, nparts = 0;

	for (int i = 0; i < o->ntopics; i++) {
		struct topic *t = &w->topics[w->ntopics];
		bool missing;

		t->name = o->topics[i];
		if (es_reader_partitions(w->rk, t->name, &t->n, &missing, why, sizeof(why))) {
			if (missing) {
				fprintf(stderr,
					"shopctl: watch: topic %s does not exist (yet): "
					"skipped\n",
					t->name);
				continue;
			}
			snprintf(errstr, errstr_size, "Kafka at %s: %s", shopctl_bootstrap(), why);
			goto out;
		}
		t->color = shopctl_watch_topic_color(t->name);
		w->ntopics++;
		if (open_topic(w, t, parts, why, sizeof(why))) {
			snprintf(errstr, errstr_size, "Kafka at %s: %s", shopctl_bootstrap(), why);
			goto out;
		}
		nparts += t->n;
	}
	if (w->ntopics == 0) {
		snprintf(errstr, errstr_size, "none of the %d topic%s exists on Kafka at %s",
			 o->ntopics, o->ntopics == 1 ? "" : "s", shopctl_bootstrap());
		goto out;
	}
	err = rd_kafka_assign(w->rk, parts);
	if (err) {
		snprintf(errstr, errstr_size, "assigning %d partitions: %s", parts->cnt,
			 rd_kafka_err2str(err));
		goto out;
	}
	if (!o->exit_at_end)
		fprintf(stderr,
			"shopctl: watching %d topic%s (%d partition%s) from %s; Ctrl-C stops\n",
			w->ntopics, w->ntopics == 1 ? "" : "s", nparts, nparts == 1 ? "" : "s",
			o->from_beginning ? "the beginning" : "now on");
	if (w->remaining == 0)
		say_history_read(w);
	rc = 0;
out:
	rd_kafka_topic_partition_list_destroy(parts);
	return rc;
}

/* Stops waiting for the partitions still behind: their events are then
 * released by their window like new ones. */
static void give_up_history(struct watch *w)
{
	for (int i = 0; i < w->ntopics; i++) {
		for (int32_t p = 0; p < w->topics[i].n; p++)
			partition_done(w, &w->topics[i].parts[p]);
	}
}

/*
 * Reads until Ctrl-C, --count, or with -e the end. The history must come
 * in without a pause longer than the Kafka timeout: with -e a longer one
 * fails, without -e it ends the wait for the history. Returns an exit
 * status.
 */
static int run(struct watch *w)
{
	long long timeout_ms = ES_READER_TIMEOUT_MS;

	w->progress_ms = es_monotonic_ms();
	while (!es_stop && !count_reached(w) && !(w->o->exit_at_end && w->remaining == 0)) {
		rd_kafka_message_t *rkm = rd_kafka_consumer_poll(w->rk, poll_timeout(w));

		if (rkm) {
			int rc = on_message(w, rkm);

			rd_kafka_message_destroy(rkm);
			if (rc) {
				shopctl_err("watch: out of memory");
				return SHOPCTL_FAIL;
			}
		} else if (w->remaining > 0 && es_monotonic_ms() - w->progress_ms > timeout_ms) {
			if (w->o->exit_at_end) {
				shopctl_err(
					"watch: Kafka at %s: %d partition%s not read to the end: "
					"nothing came for %lld s (%s)",
					shopctl_bootstrap(), w->remaining,
					w->remaining == 1 ? "" : "s", timeout_ms / 1000,
					w->last_error[0] ? w->last_error : "no answer");
				return SHOPCTL_FAIL;
			}
			shopctl_err("watch: the history did not come in %lld s (%s): printing "
				    "events as they come",
				    timeout_ms / 1000,
				    w->last_error[0] ? w->last_error : "no answer");
			give_up_history(w);
		}
		/* Past MAX_HELD, the earliest goes out before its time. */
		while (w->held.n > MAX_HELD)
			shopctl_watch_reorder_print_next(&w->held);
		if (release(w, false))
			return -1;
	}
	return release(w, true) ? -1 : SHOPCTL_OK;
}

int shopctl_cmd_watch(int argc, char **argv)
{
	struct watch w = {0};
	struct shopctl_watch_opts *o = calloc(1, sizeof(*o));
	char err[1024];
	int rc = SHOPCTL_FAIL;

	if (!o) {
		shopctl_err("out of memory");
		return SHOPCTL_FAIL;
	}
	rc = shopctl_watch_opts_parse(o, argc, argv);
	if (rc) {
		rc = rc < 0 ? SHOPCTL_OK : rc;
		goto out;
	}
	rc = SHOPCTL_FAIL;
	w.o = o;
	w.held.last_day = shopctl_watch_local_day(shopctl_watch_wall_ms());
	if (es_daemon_signals()) {
		shopctl_err("watch: cannot install signal handlers");
		goto out;
	}
	w.rk = es_reader_new(shopctl_bootstrap(), "shopctl", err, sizeof(err));
	if (!w.rk) {
		shopctl_err("watch: %s", err);
		goto out;
	}
	if (open_topics(&w, err, sizeof(err))) {
		shopctl_err("watch: %s", err);
		goto out;
	}
	rc = run(&w);
	if (rc < 0) {
		/* Whoever read our output has gone (| head): nothing to say. */
		if (errno == EPIPE) {
			rc = SHOPCTL_OK;
		} else {
			shopctl_err("watch: writing the output: %s", strerror(errno));
			rc = SHOPCTL_FAIL;
		}
	}
out:
	shopctl_watch_reorder_release(&w.held);
	es_reader_free(w.rk);
	for (int i = 0; i < w.ntopics; i++)
		free(w.topics[i].parts);
	free(o);
	return rc;
}
