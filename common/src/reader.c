#include "es/reader.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/clock.h"
#include "es/envelope.h"
#include "es/kafka.h"

rd_kafka_t *es_reader_new(const char *bootstrap, const char *client_id, char *errstr,
			  size_t errstr_size)
{
	char uuid[ES_UUID_LEN + 1], group[128];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;

	conf = es_kafka_conf_new(bootstrap, client_id, errstr, errstr_size);
	if (!conf)
		return NULL;
	es_uuid_new(uuid);
	snprintf(group, sizeof(group), "%.64s-%s", client_id, uuid);
	/* After es_kafka_conf_new's KAFKA_* pass-through, so that the caller's
	 * bootstrap wins over KAFKA_BOOTSTRAP_SERVERS and nothing can make the
	 * reader commit or create a topic it was asked to read. */
	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "group.id", group, errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", errstr, errstr_size) ||
	    /* A fetch left waiting for data on an idle partition comes back
	     * after this long: a topic read after another is not held up, and
	     * a new event on a followed topic waits no longer. */
	    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "50", errstr, errstr_size)) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
	if (!rk)
		rd_kafka_conf_destroy(conf);
	return rk;
}

void es_reader_free(rd_kafka_t *rk)
{
	if (!rk)
		return;
	/* Not a member of its group: there is nothing to leave or commit. */
	rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

int es_reader_partitions(rd_kafka_t *rk, const char *topic, int *count, bool *missing, char *errstr,
			 size_t errstr_size)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err;
	rd_kafka_topic_t *rkt;
	int rc = -1;

	if (missing)
		*missing = false;
	rkt = rd_kafka_topic_new(rk, topic, NULL);
	if (!rkt) {
		snprintf(errstr, errstr_size, "topic %s: %s", topic,
			 rd_kafka_err2str(rd_kafka_last_error()));
		return -1;
	}
	err = rd_kafka_metadata(rk, 0, rkt, &md, ES_READER_TIMEOUT_MS);
	if (err) {
		snprintf(errstr, errstr_size, "cannot read the metadata of topic %s: %s", topic,
			 rd_kafka_err2str(err));
	} else if (md->topic_cnt != 1 ||
		   md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
		snprintf(errstr, errstr_size, "topic %s does not exist", topic);
		if (missing)
			*missing = true;
	} else if (md->topics[0].err) {
		snprintf(errstr, errstr_size, "topic %s: %s", topic,
			 rd_kafka_err2str(md->topics[0].err));
	} else if (md->topics[0].partition_cnt < 1) {
		snprintf(errstr, errstr_size, "topic %s has no partitions", topic);
	} else {
		*count = md->topics[0].partition_cnt;
		rc = 0;
	}
	if (md)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
	return rc;
}

int es_reader_watermarks(rd_kafka_t *rk, const char *topic, int32_t p, int64_t *low, int64_t *high,
			 char *errstr, size_t errstr_size)
{
	rd_kafka_resp_err_t err;

	err = rd_kafka_query_watermark_offsets(rk, topic, p, low, high, ES_READER_TIMEOUT_MS);
	if (err) {
		snprintf(errstr, errstr_size, "offsets of %s [%" PRId32 "]: %s", topic, p,
			 rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

/* Assigns parts (partitions of topic at their offsets). Returns 0, or -1
 * with errstr filled. */
static int assign(rd_kafka_t *rk, const char *topic, const rd_kafka_topic_partition_list_t *parts,
		  char *errstr, size_t errstr_size)
{
	rd_kafka_resp_err_t err = rd_kafka_assign(rk, parts);

	if (err) {
		snprintf(errstr, errstr_size, "assigning the partitions of %s: %s", topic,
			 rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

int es_reader_follow(rd_kafka_t *rk, const char *topic, char *errstr, size_t errstr_size)
{
	const char *const topics[] = {topic, NULL};
	int n = es_reader_follow_topics(rk, topics, 0, NULL, 0, errstr, errstr_size);

	if (n == 0)
		snprintf(errstr, errstr_size, "topic %s does not exist", topic);
	return n > 0 ? 0 : -1;
}

/* Appends name to the comma-separated list in buf. */
static void list_append(char *buf, size_t size, const char *name)
{
	size_t len;

	if (!buf || !size)
		return;
	len = strlen(buf);
	snprintf(buf + len, size - len, "%s%s", len ? "," : "", name);
}

int es_reader_follow_topics(rd_kafka_t *rk, const char *const *topics, long long tail,
			    char *skipped, size_t skipped_size, char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
	int rc = -1;

	if (skipped && skipped_size)
		skipped[0] = '\0';
	for (size_t i = 0; topics[i]; i++) {
		bool missing;
		int n;

		if (es_reader_partitions(rk, topics[i], &n, &missing, errstr, errstr_size)) {
			if (!missing)
				goto out;
			list_append(skipped, skipped_size, topics[i]);
			continue;
		}
		for (int32_t p = 0; p < n; p++) {
			int64_t low, high, start;

			if (es_reader_watermarks(rk, topics[i], p, &low, &high, errstr,
						 errstr_size))
				goto out;
			start = tail > 0 && high - low > tail ? high - tail : tail > 0 ? low : high;
			rd_kafka_topic_partition_list_add(parts, topics[i], p)->offset = start;
		}
	}
	if (parts->cnt > 0 && assign(rk, parts->elems[0].topic, parts, errstr, errstr_size))
		goto out;
	rc = parts->cnt;
out:
	rd_kafka_topic_partition_list_destroy(parts);
	return rc;
}

/* What es_reader_read_all keeps track of. */
struct read_state {
	int64_t *end; /* per partition: the high watermark at the start */
	bool *done;
	int remaining; /* partitions not yet read to their end */
	long long count;
};

static void partition_done(struct read_state *st, int32_t p)
{
	if (!st->done[p]) {
		st->done[p] = true;
		st->remaining--;
	}
}

/* Assigns every non-empty partition at its low watermark. */
static int assign_all(rd_kafka_t *rk, const char *topic, int n, struct read_state *st, char *errstr,
		      size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
	int rc = -1;

	for (int32_t p = 0; p < n; p++) {
		int64_t low, high;

		if (es_reader_watermarks(rk, topic, p, &low, &high, errstr, errstr_size))
			goto out;
		st->end[p] = high;
		if (high > low) {
			rd_kafka_topic_partition_list_add(parts, topic, p)->offset = low;
			st->remaining++;
		} else {
			st->done[p] = true;
		}
	}
	if (st->remaining == 0) {
		rc = 0;
		goto out;
	}
	rc = assign(rk, topic, parts, errstr, errstr_size);
out:
	rd_kafka_topic_partition_list_destroy(parts);
	return rc;
}

/* Consumes until every assigned partition reached its end. */
static int consume(rd_kafka_t *rk, const char *topic, int n, struct read_state *st,
		   es_reader_fn *fn, void *arg, char *errstr, size_t errstr_size)
{
	long long deadline = es_monotonic_ms() + ES_READER_TIMEOUT_MS;
	char last_error[512] = "no answer";

	while (st->remaining > 0) {
		rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);
		int32_t p;

		if (!rkm) {
			if (es_monotonic_ms() > deadline) {
				snprintf(errstr, errstr_size,
					 "reading %s: nothing new for %d s (%s)", topic,
					 ES_READER_TIMEOUT_MS / 1000, last_error);
				return -1;
			}
			continue;
		}
		p = rkm->partition;
		if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			if (p >= 0 && p < n)
				partition_done(st, p);
		} else if (rkm->err) {
			/* Mostly transient (a broker restarting): librdkafka
			 * retries; the deadline ends a lasting one. */
			snprintf(last_error, sizeof(last_error), "%s",
				 rd_kafka_message_errstr(rkm));
		} else if (p >= 0 && p < n && !st->done[p]) {
			deadline = es_monotonic_ms() + ES_READER_TIMEOUT_MS;
			if (rkm->offset < st->end[p]) {
				st->count++;
				if (fn(arg, rkm)) {
					rd_kafka_message_destroy(rkm);
					snprintf(errstr, errstr_size, "reading %s: stopped", topic);
					return -1;
				}
			}
			if (rkm->offset >= st->end[p] - 1)
				partition_done(st, p);
		}
		rd_kafka_message_destroy(rkm);
	}
	return 0;
}

long long es_reader_read_all(rd_kafka_t *rk, const char *topic, es_reader_fn *fn, void *arg,
			     bool *missing, char *errstr, size_t errstr_size)
{
	struct read_state st = {0};
	long long result = -1;
	int n;

	if (es_reader_partitions(rk, topic, &n, missing, errstr, errstr_size))
		return -1;
	st.end = calloc((size_t)n + 1, sizeof(*st.end));
	st.done = calloc((size_t)n + 1, sizeof(*st.done));
	if (!st.end || !st.done) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	if (assign_all(rk, topic, n, &st, errstr, errstr_size))
		goto out;
	if (consume(rk, topic, n, &st, fn, arg, errstr, errstr_size) == 0)
		result = st.count;
	rd_kafka_assign(rk, NULL);
out:
	free(st.end);
	free(st.done);
	return result;
}

static void describe_range(char *buf, size_t size, int64_t low, int64_t high)
{
	if (high <= low)
		snprintf(buf, size, "it is empty");
	else
		snprintf(buf, size, "it holds offsets %" PRId64 " to %" PRId64, low, high - 1);
}

/* Polls the assigned partition for the message at offset. */
static rd_kafka_message_t *await_offset(rd_kafka_t *rk, const char *topic, int32_t partition,
					int64_t offset, char *errstr, size_t errstr_size)
{
	long long deadline = es_monotonic_ms() + ES_READER_TIMEOUT_MS;
	char last_error[512] = "no answer";

	while (es_monotonic_ms() < deadline) {
		rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);

		if (!rkm)
			continue;
		if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			rd_kafka_message_destroy(rkm);
			snprintf(errstr, errstr_size,
				 "no message at offset %" PRId64 " of %s [%" PRId32 "]", offset,
				 topic, partition);
			return NULL;
		}
		if (rkm->err) {
			snprintf(last_error, sizeof(last_error), "%s",
				 rd_kafka_message_errstr(rkm));
		} else if (rkm->offset == offset) {
			return rkm;
		} else if (rkm->offset > offset) {
			/* A transaction marker or a compacted record was there. */
			snprintf(errstr, errstr_size,
				 "no message at offset %" PRId64 " of %s [%" PRId32
				 "] (the next one is at %" PRId64 ")",
				 offset, topic, partition, rkm->offset);
			rd_kafka_message_destroy(rkm);
			return NULL;
		}
		rd_kafka_message_destroy(rkm);
	}
	snprintf(errstr, errstr_size,
		 "reading %s [%" PRId32 "] @ %" PRId64 ": nothing came in %d s (%s)", topic,
		 partition, offset, ES_READER_TIMEOUT_MS / 1000, last_error);
	return NULL;
}

rd_kafka_message_t *es_reader_read_one(rd_kafka_t *rk, const char *topic, int32_t partition,
				       int64_t offset, char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *parts;
	rd_kafka_message_t *rkm = NULL;
	rd_kafka_resp_err_t err;
	int64_t low, high;
	char range[96];
	int n;

	if (es_reader_partitions(rk, topic, &n, NULL, errstr, errstr_size))
		return NULL;
	if (partition >= n) {
		snprintf(errstr, errstr_size,
			 "topic %s has no partition %" PRId32 " (it has partitions 0 to %d)", topic,
			 partition, n - 1);
		return NULL;
	}
	if (es_reader_watermarks(rk, topic, partition, &low, &high, errstr, errstr_size))
		return NULL;
	if (offset < low || offset >= high) {
		describe_range(range, sizeof(range), low, high);
		snprintf(errstr, errstr_size,
			 "no message at offset %" PRId64 " of %s [%" PRId32 "]: %s", offset, topic,
			 partition, range);
		return NULL;
	}
	parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(parts, topic, partition)->offset = offset;
	err = rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	if (err) {
		snprintf(errstr, errstr_size, "assigning %s [%" PRId32 "]: %s", topic, partition,
			 rd_kafka_err2str(err));
		return NULL;
	}
	rkm = await_offset(rk, topic, partition, offset, errstr, errstr_size);
	rd_kafka_assign(rk, NULL);
	return rkm;
}
