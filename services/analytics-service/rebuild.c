#include "rebuild.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "analytics.h"
#include "es/clock.h"
#include "es/consumer.h"
#include "es/reader.h"

#define PROGRESS_EVERY_MS 10000
#define POLL_MS 100

static void say(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(FILE *out, const char *fmt, ...)
{
	va_list ap;

	if (!out)
		return;
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fflush(out);
}

/*
 * The rebuild's membership of the group, as the rebalance callback saw it.
 * The callback runs inside rd_kafka_consumer_poll() and
 * rd_kafka_consumer_close(), on the rebuild's own thread: no lock needed.
 */
struct member {
	rd_kafka_topic_partition_list_t *assigned; /* owned; NULL while none */
	int join_timeout_ms;
	volatile sig_atomic_t *stop; /* the caller's; NULL: never */
};

/*
 * The eager protocol, as the daemon's consumer (common/src/consumer.c)
 * speaks it: members of one group must agree on it. The partitions are
 * paused as soon as they are ours: the rebuild only has to hold them, so
 * that no other member can consume while it works, not read them.
 */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct member *m = opaque;

	if (m->assigned) {
		rd_kafka_topic_partition_list_destroy(m->assigned);
		m->assigned = NULL;
	}
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		rd_kafka_assign(rk, parts);
		rd_kafka_pause_partitions(rk, parts);
		m->assigned = rd_kafka_topic_partition_list_copy(parts);
	} else {
		rd_kafka_assign(rk, NULL);
	}
}

/*
 * A consumer in `group` that commits by hand only. Its join deadline goes
 * to m: twice the daemons' session timeout (KAFKA_SESSION_TIMEOUT_MS, or
 * librdkafka's default) and 10 s, because the broker may first wait for a
 * crashed daemon's session to expire and then, on the development broker,
 * another session timeout before it assigns the partitions.
 */
static rd_kafka_t *group_client(const char *bootstrap, const char *group, struct member *m,
				char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	char session[32];
	size_t size = sizeof(session);
	long daemon_ms;

	conf = es_kafka_conf_new(bootstrap, ANALYTICS_SERVICE "-rebuild", errstr, errstr_size);
	if (!conf)
		return NULL;
	/* No allow.auto.create.topics=false: it is a consumer's default
	 * already, and setting it only makes librdkafka warn on brokers whose
	 * Metadata request cannot carry it (the development broker). */
	if (rd_kafka_conf_set(conf, "group.id", group, errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size))
		goto fail;
	/* The daemons' session timeout, given the same environment: ours
	 * too. Sessions of different lengths in one group are the
	 * development broker's weak spot: it expires a member that waits in
	 * JoinGroup longer than the newest member's session, and that
	 * JoinGroup never gets an answer (we give up at the deadline). */
	if (!getenv("KAFKA_SESSION_TIMEOUT_MS") &&
	    rd_kafka_conf_set(conf, "session.timeout.ms", ES_CONSUMER_SESSION_TIMEOUT_MS, errstr,
			      errstr_size))
		goto fail;
	if (rd_kafka_conf_get(conf, "session.timeout.ms", session, &size) != RD_KAFKA_CONF_OK)
		snprintf(session, sizeof(session), "%s", ES_CONSUMER_SESSION_TIMEOUT_MS);
	daemon_ms = strtol(session, NULL, 10);
	if (daemon_ms <= 0 || daemon_ms > 3600000)
		daemon_ms = strtol(ES_CONSUMER_SESSION_TIMEOUT_MS, NULL, 10);
	m->join_timeout_ms = 2 * (int)daemon_ms + 10000;
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rd_kafka_conf_set_opaque(conf, m);
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
	if (!rk)
		goto fail;
	return rk;
fail:
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/*
 * Adds (topic, partition, low watermark) to offsets for every partition of
 * topic. A topic that does not exist adds nothing and counts as missing.
 */
static int add_low_marks(rd_kafka_t *rk, const char *topic,
			 rd_kafka_topic_partition_list_t *offsets, FILE *out,
			 struct analytics_rebuild_report *rep, char *errstr, size_t errstr_size)
{
	long long messages = 0;
	bool missing;
	int n;

	if (es_reader_partitions(rk, topic, &n, &missing, errstr, errstr_size)) {
		if (!missing)
			return -1;
		say(out, "topic %s: does not exist, nothing to replay\n", topic);
		rep->missing_topics++;
		return 0;
	}
	for (int32_t p = 0; p < n; p++) {
		int64_t low, high;

		if (es_reader_watermarks(rk, topic, p, &low, &high, errstr, errstr_size))
			return -1;
		rd_kafka_topic_partition_list_add(offsets, topic, p)->offset = low;
		messages += high - low;
	}
	say(out, "topic %s: %d partitions, %lld messages to replay\n", topic, n, messages);
	rep->topics++;
	rep->partitions += n;
	rep->replay_messages += messages;
	return 0;
}

/* How many partitions of want are not in have. */
static int not_held(const rd_kafka_topic_partition_list_t *want,
		    const rd_kafka_topic_partition_list_t *have)
{
	int missing = 0;

	for (int i = 0; i < want->cnt; i++) {
		if (!rd_kafka_topic_partition_list_find(have, want->elems[i].topic,
							want->elems[i].partition))
			missing++;
	}
	return missing;
}

/*
 * Subscribes to the topics of offsets and polls until the group assigns
 * partitions to us. Every partition of those topics means that we are the
 * group's only member; fewer means that another member holds the rest.
 * Returns 0 when we hold them all, or -1 with errstr filled (nothing was
 * changed).
 */
static int join_group(rd_kafka_t *rk, struct member *m, const char *group,
		      const rd_kafka_topic_partition_list_t *offsets, FILE *out, char *errstr,
		      size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(8);
	long long start = es_monotonic_ms(), next_say = start + PROGRESS_EVERY_MS;
	rd_kafka_resp_err_t err;
	int missing, rc = -1;

	for (int i = 0; i < offsets->cnt; i++) {
		if (!rd_kafka_topic_partition_list_find(topics, offsets->elems[i].topic,
							RD_KAFKA_PARTITION_UA))
			rd_kafka_topic_partition_list_add(topics, offsets->elems[i].topic,
							  RD_KAFKA_PARTITION_UA);
	}
	err = rd_kafka_subscribe(rk, topics);
	if (err) {
		snprintf(errstr, errstr_size, "consumer group %s: subscribe: %s", group,
			 rd_kafka_err2str(err));
		goto out;
	}
	say(out, "joining consumer group %s to reset its offsets...\n", group);
	while (!m->assigned) {
		rd_kafka_message_t *rkm;
		long long now = es_monotonic_ms();

		if (m->stop && *m->stop) {
			snprintf(errstr, errstr_size,
				 "interrupted while joining consumer group %s; nothing was changed",
				 group);
			goto out;
		}
		if (now - start >= m->join_timeout_ms) {
			snprintf(errstr, errstr_size,
				 "consumer group %s: no partitions assigned within %d s; is "
				 "analytics-service still running? stop every instance first (on "
				 "the development broker, also give the rebuild the daemons' "
				 "KAFKA_SESSION_TIMEOUT_MS)",
				 group, m->join_timeout_ms / 1000);
			goto out;
		}
		if (now >= next_say) {
			/* The broker waits for members that left or died to
			 * time out before it assigns anything: say so. */
			say(out,
			    "still waiting for consumer group %s to assign its partitions "
			    "(%lld s)...\n",
			    group, (now - start) / 1000);
			next_say += PROGRESS_EVERY_MS;
		}
		/* Paused partitions deliver no messages; this serves the
		 * rebalance callback and drops error events (the deadline
		 * covers a group that never forms). */
		rkm = rd_kafka_consumer_poll(rk, POLL_MS);
		if (rkm)
			rd_kafka_message_destroy(rkm);
	}
	missing = not_held(offsets, m->assigned);
	if (missing) {
		snprintf(errstr, errstr_size,
			 "consumer group %s has another member holding %d of its %d partitions; "
			 "is analytics-service still running? stop every instance first",
			 group, missing, offsets->cnt);
		goto out;
	}
	say(out, "consumer group %s: joined, holding all %d partitions\n", group, offsets->cnt);
	rc = 0;
out:
	rd_kafka_topic_partition_list_destroy(topics);
	return rc;
}

/* Reads the group's committed offsets back: each must be what we wrote. */
static int check_committed(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *want,
			   char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *got = rd_kafka_topic_partition_list_copy(want);
	rd_kafka_resp_err_t err;
	int rc = -1;

	for (int i = 0; i < got->cnt; i++)
		got->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
	err = rd_kafka_committed(rk, got, ES_READER_TIMEOUT_MS);
	if (err) {
		snprintf(errstr, errstr_size, "reading the committed offsets back: %s",
			 rd_kafka_err2str(err));
		goto out;
	}
	for (int i = 0; i < got->cnt; i++) {
		if (got->elems[i].err || got->elems[i].offset != want->elems[i].offset) {
			snprintf(errstr, errstr_size,
				 "%s [%" PRId32 "]: committed offset is %" PRId64 ", not %" PRId64
				 " (%s)",
				 got->elems[i].topic, got->elems[i].partition, got->elems[i].offset,
				 want->elems[i].offset, rd_kafka_err2str(got->elems[i].err));
			goto out;
		}
	}
	rc = 0;
out:
	rd_kafka_topic_partition_list_destroy(got);
	return rc;
}

/*
 * Commits offsets as the group's member (synchronously) and reads them
 * back. A member that joined after us makes the broker refuse the commit
 * (a rebalance is in progress) or wait for us to leave: either way no
 * other member consumes before we are done.
 */
static int commit_offsets(rd_kafka_t *rk, const char *group,
			  const rd_kafka_topic_partition_list_t *offsets, FILE *out, char *errstr,
			  size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *copy = rd_kafka_topic_partition_list_copy(offsets);
	rd_kafka_resp_err_t err;
	int rc = -1;

	err = rd_kafka_commit(rk, copy, 0);
	for (int i = 0; !err && i < copy->cnt; i++)
		err = copy->elems[i].err;
	if (err) {
		snprintf(errstr, errstr_size,
			 "consumer group %s: the broker refused the offsets (%s); is "
			 "analytics-service still running? stop every instance first",
			 group, rd_kafka_err2str(err));
		goto out;
	}
	if (check_committed(rk, offsets, errstr, errstr_size))
		goto out;
	say(out, "consumer group %s: offsets of %d partitions reset to the beginning\n", group,
	    offsets->cnt);
	rc = 0;
out:
	rd_kafka_topic_partition_list_destroy(copy);
	return rc;
}

struct wipe {
	struct analytics_rebuild_report *rep;
};

/* es_db_tx: the read models and the inbox go together or not at all. */
static int wipe_in_tx(struct es_db *db, void *arg, char *errstr, size_t errstr_size)
{
	struct analytics_rebuild_report *rep = ((struct wipe *)arg)->rep;

	rep->items = es_db_exec(db, "DELETE FROM analytics_order_items", 0, NULL, errstr,
				errstr_size);
	if (rep->items < 0)
		return -1;
	rep->orders = es_db_exec(db, "DELETE FROM analytics_orders", 0, NULL, errstr, errstr_size);
	if (rep->orders < 0)
		return -1;
	rep->counts = es_db_exec(db, "DELETE FROM analytics_counts", 0, NULL, errstr, errstr_size);
	if (rep->counts < 0)
		return -1;
	rep->deliveries = es_db_exec(db, "DELETE FROM analytics_deliveries", 0, NULL, errstr,
				     errstr_size);
	if (rep->deliveries < 0)
		return -1;
	rep->inbox = es_db_exec(db, "DELETE FROM es_inbox WHERE consumer = $1", 1,
				(const char *[]){ANALYTICS_SERVICE}, errstr, errstr_size);
	return rep->inbox < 0 ? -1 : 0;
}

/* Deletes the read models, once the offsets are at the beginning. */
static int wipe(struct es_db *db, struct analytics_rebuild_report *rep, FILE *out,
		volatile sig_atomic_t *stop, char *errstr, size_t errstr_size)
{
	struct wipe w = {.rep = rep};
	char why[512];

	/* Ctrl-C only sets the stop flag; stopping here leaves the safe half. */
	if (stop && *stop) {
		snprintf(errstr, errstr_size,
			 "interrupted after the offsets were reset; the read models were kept "
			 "(the next start replays harmlessly; run the rebuild again to finish it)");
		return -1;
	}
	if (es_db_tx(db, wipe_in_tx, &w, why, sizeof(why))) {
		snprintf(errstr, errstr_size,
			 "offsets were reset but the read models were not deleted: %s (the next "
			 "start replays harmlessly; run the rebuild again to finish it)",
			 why);
		return -1;
	}
	say(out,
	    "read models deleted: %ld orders, %ld order lines, %ld counters, %ld deliveries; %ld "
	    "inbox rows of %s\n",
	    rep->orders, rep->items, rep->counts, rep->deliveries, rep->inbox, ANALYTICS_SERVICE);
	return 0;
}

int analytics_rebuild(struct es_db *db, const char *bootstrap, const char *group,
		      const char *const *topics, FILE *out, volatile sig_atomic_t *stop,
		      struct analytics_rebuild_report *rep, char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(32);
	struct analytics_rebuild_report local;
	struct member m = {.stop = stop};
	rd_kafka_t *rk;
	int rc = -1;

	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	rk = group_client(bootstrap, group, &m, errstr, errstr_size);
	if (!rk)
		goto out;
	for (size_t i = 0; topics[i]; i++) {
		if (add_low_marks(rk, topics[i], offsets, out, rep, errstr, errstr_size))
			goto out;
	}
	if (offsets->cnt == 0) {
		say(out, "consumer group %s: no partitions to reset\n", group);
	} else if (join_group(rk, &m, group, offsets, out, errstr, errstr_size) ||
		   commit_offsets(rk, group, offsets, out, errstr, errstr_size)) {
		goto out;
	}
	/* Still a member holding every partition: a daemon started now
	 * waits at the group's door until we leave, so it cannot consume
	 * between the new offsets and the deletion. */
	if (wipe(db, rep, out, stop, errstr, errstr_size))
		goto out;
	rc = 0;
out:
	if (rk) {
		/* Leaves the group at once (a daemon need not wait for our
		 * session to time out); commits nothing, auto-commit is off. */
		rd_kafka_consumer_close(rk);
		rd_kafka_destroy(rk);
	}
	if (m.assigned)
		rd_kafka_topic_partition_list_destroy(m.assigned);
	rd_kafka_topic_partition_list_destroy(offsets);
	if (rc == 0)
		say(out, "done: the next start of %s replays %lld messages from %d topics\n",
		    ANALYTICS_SERVICE, rep->replay_messages, rep->topics);
	return rc;
}
