#include "rebuild.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "analytics.h"
#include "es/daemon.h"
#include "es/kafka.h"

#define KAFKA_TIMEOUT_MS 10000

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
 * A consumer in `group` that never subscribes: it only commits offsets
 * and reads them back. Without a subscription it is no member of the
 * group, which is what makes the broker refuse its commit while members
 * are there.
 */
static rd_kafka_t *group_client(const char *bootstrap, const char *group, char *errstr,
				size_t errstr_size)
{
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;

	conf = es_kafka_conf_new(bootstrap, ANALYTICS_SERVICE "-rebuild", errstr, errstr_size);
	if (!conf)
		return NULL;
	if (rd_kafka_conf_set(conf, "group.id", group, errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", errstr, errstr_size)) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
	if (!rk)
		rd_kafka_conf_destroy(conf);
	return rk;
}

/*
 * Adds (topic, partition, low watermark) to offsets for every partition of
 * topic. A topic that does not exist adds nothing and counts as missing.
 */
static int add_low_marks(rd_kafka_t *rk, const char *topic,
			 rd_kafka_topic_partition_list_t *offsets, FILE *out,
			 struct analytics_rebuild_report *rep, char *errstr, size_t errstr_size)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt;
	rd_kafka_resp_err_t err;
	long long messages = 0;
	int rc = -1;

	rkt = rd_kafka_topic_new(rk, topic, NULL);
	if (!rkt) {
		snprintf(errstr, errstr_size, "topic %s: %s", topic,
			 rd_kafka_err2str(rd_kafka_last_error()));
		return -1;
	}
	err = rd_kafka_metadata(rk, 0, rkt, &md, KAFKA_TIMEOUT_MS);
	if (err) {
		snprintf(errstr, errstr_size, "metadata of topic %s: %s", topic,
			 rd_kafka_err2str(err));
		goto out;
	}
	if (md->topic_cnt != 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
		say(out, "topic %s: does not exist, nothing to replay\n", topic);
		rep->missing_topics++;
		rc = 0;
		goto out;
	}
	if (md->topics[0].err) {
		snprintf(errstr, errstr_size, "metadata of topic %s: %s", topic,
			 rd_kafka_err2str(md->topics[0].err));
		goto out;
	}
	for (int i = 0; i < md->topics[0].partition_cnt; i++) {
		int32_t p = md->topics[0].partitions[i].id;
		int64_t low, high;

		err = rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, KAFKA_TIMEOUT_MS);
		if (err) {
			snprintf(errstr, errstr_size, "watermarks of %s [%" PRId32 "]: %s", topic,
				 p, rd_kafka_err2str(err));
			goto out;
		}
		rd_kafka_topic_partition_list_add(offsets, topic, p)->offset = low;
		messages += high - low;
	}
	say(out, "topic %s: %d partitions, %lld messages to replay\n", topic,
	    md->topics[0].partition_cnt, messages);
	rep->topics++;
	rep->partitions += md->topics[0].partition_cnt;
	rep->replay_messages += messages;
	rc = 0;
out:
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
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
	err = rd_kafka_committed(rk, got, KAFKA_TIMEOUT_MS);
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

static int reset_offsets(const char *bootstrap, const char *group, const char *const *topics,
			 FILE *out, struct analytics_rebuild_report *rep, char *errstr,
			 size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(32);
	rd_kafka_resp_err_t err;
	rd_kafka_t *rk;
	int rc = -1;

	rk = group_client(bootstrap, group, errstr, errstr_size);
	if (!rk)
		goto out;
	for (size_t i = 0; topics[i]; i++) {
		if (add_low_marks(rk, topics[i], offsets, out, rep, errstr, errstr_size))
			goto out;
	}
	if (offsets->cnt == 0) {
		say(out, "consumer group %s: no partitions to reset\n", group);
		rc = 0;
		goto out;
	}
	err = rd_kafka_commit(rk, offsets, 0);
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
	rd_kafka_topic_partition_list_destroy(offsets);
	if (rk) {
		/* Not a member, so closing leaves and commits nothing. */
		rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	}
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
	rep->inbox = es_db_exec(db, "DELETE FROM es_inbox WHERE consumer = $1", 1,
				(const char *[]){ANALYTICS_SERVICE}, errstr, errstr_size);
	return rep->inbox < 0 ? -1 : 0;
}

int analytics_rebuild(struct es_db *db, const char *bootstrap, const char *group,
		      const char *const *topics, FILE *out, struct analytics_rebuild_report *rep,
		      char *errstr, size_t errstr_size)
{
	struct analytics_rebuild_report local;
	struct wipe w;
	char why[512];

	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	w.rep = rep;
	if (reset_offsets(bootstrap, group, topics, out, rep, errstr, errstr_size))
		return -1;
	/* Ctrl-C only sets es_stop; stopping here leaves the safe half. */
	if (es_stop) {
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
	    "read models deleted: %ld orders, %ld order lines, %ld counters; %ld inbox rows of "
	    "%s\n",
	    rep->orders, rep->items, rep->counts, rep->inbox, ANALYTICS_SERVICE);
	say(out, "done: the next start of %s replays %lld messages from %d topics\n",
	    ANALYTICS_SERVICE, rep->replay_messages, rep->topics);
	return 0;
}
