/*
 * Fault injection (harness.c), 3: payment-service and inventory-service
 * re-read the whole orders topic (their groups' offsets reset to the
 * beginning): their inboxes skip every event, and no new event, stock or
 * statistic comes of it; then the seven invariants.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "es/envelope.h"
#include "es/events.h"
#include "harness.h"
#include "invariants.h"
#include "testkafka.h"

/* ------------------------- 3. a whole topic delivered again to two groups */

/* A client of `group` that never subscribes: it only reads and commits the
 * group's offsets (as analytics-service --rebuild does; the broker takes
 * the commit only while the group has no members). */
static rd_kafka_t *group_client(const char *group)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];
	rd_kafka_t *rk;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", err, sizeof(err))) {
		fprintf(stderr, "group client: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "group client: %s\n", err);
		rd_kafka_conf_destroy(conf);
	}
	return rk;
}

static void group_client_free(rd_kafka_t *rk)
{
	/* Not a member: closing would only wait. */
	rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

/* Commits the low watermark of every partition of topic as group's offset
 * and reads it back. Returns 0 or -1 (printed). */
static int reset_group(const char *group, const char *topic, int partitions)
{
	rd_kafka_t *rk = group_client(group);
	rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(partitions);
	rd_kafka_topic_partition_list_t *back = NULL;
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
	int rc = -1;

	if (!rk)
		goto out;
	for (int p = 0; p < partitions; p++) {
		int64_t low, high;

		err = rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, 10000);
		if (err)
			goto out;
		rd_kafka_topic_partition_list_add(offsets, topic, p)->offset = low;
	}
	/* The group may still be settling after its members left. */
	for (int attempt = 0; attempt < 20; attempt++) {
		err = rd_kafka_commit(rk, offsets, 0);
		if (!err)
			break;
		sleep_ms(500);
	}
	if (err)
		goto out;
	back = rd_kafka_topic_partition_list_copy(offsets);
	err = rd_kafka_committed(rk, back, 10000);
	if (err)
		goto out;
	for (int i = 0; i < back->cnt; i++) {
		if (back->elems[i].offset != offsets->elems[i].offset) {
			fprintf(stderr, "%s: %s[%d] committed %" PRId64 ", not %" PRId64 "\n",
				group, topic, back->elems[i].partition, back->elems[i].offset,
				offsets->elems[i].offset);
			goto out;
		}
	}
	rc = 0;
out:
	if (err)
		fprintf(stderr, "resetting %s on %s: %s\n", group, topic, rd_kafka_err2str(err));
	if (back)
		rd_kafka_topic_partition_list_destroy(back);
	rd_kafka_topic_partition_list_destroy(offsets);
	if (rk)
		group_client_free(rk);
	return rc;
}

/* The group's lag on topic (high watermark - committed offset, summed over
 * the partitions), or -1 when it cannot be read. */
static long long group_lag(const char *group, const char *topic, int partitions)
{
	rd_kafka_t *rk = group_client(group);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
	long long lag = 0;

	if (!rk) {
		rd_kafka_topic_partition_list_destroy(l);
		return -1;
	}
	for (int p = 0; p < partitions; p++)
		rd_kafka_topic_partition_list_add(l, topic, p);
	if (rd_kafka_committed(rk, l, 10000)) {
		lag = -1;
	} else {
		for (int p = 0; p < partitions && lag >= 0; p++) {
			int64_t low, high, at = l->elems[p].offset;

			if (rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, 10000))
				lag = -1;
			else
				lag += high - (at < 0 ? low : at);
		}
	}
	rd_kafka_topic_partition_list_destroy(l);
	group_client_free(rk);
	return lag;
}

/* Messages a topic holds (sum of high - low watermarks), -1 on error. */
static long long topic_size(const char *topic, int partitions)
{
	rd_kafka_t *rk = group_client("fault-watermarks");
	long long n = 0;

	if (!rk)
		return -1;
	for (int p = 0; p < partitions && n >= 0; p++) {
		int64_t low, high;

		if (rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, 10000))
			n = -1;
		else
			n += high - low;
	}
	group_client_free(rk);
	return n;
}

/* Events of `type` on topic (-1 when it could not be read in 30 s). */
static int count_type(const char *topic, const char *type)
{
	bool complete;
	struct es_test_batch *b = es_test_kafka_read_all(bootstrap, topic, 30000, &complete);
	int n = 0;

	for (int i = 0; i < b->n; i++) {
		char err[128];
		struct es_event *ev = es_event_parse(b->msg[i]->payload, b->msg[i]->len, err,
						     sizeof(err));

		n += ev && !strcmp(ev->type, type);
		es_event_free(ev);
	}
	es_test_kafka_batch_free(b);
	return complete ? n : -1;
}

/* GET url as text (caller frees), NULL unless 200. */
static char *get_text(const struct shop *shop, enum shop_service s, const char *path)
{
	char url[200], *text = NULL;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", shop->port[s][0], path);
	if (shop_get_text(url, &text) != 200) {
		free(text);
		return NULL;
	}
	return text;
}

/* /stats without sagaLatencyMs (which is a histogram of wall time and may
 * be computed from a moving window), as compact sorted JSON. */
static char *stats_counts(const struct shop *shop)
{
	char url[200], *text;
	json_t *stats = NULL;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/stats", shop->port[SHOP_ANALYTICS][0]);
	if (shop_http("GET", url, NULL, NULL, &stats) != 200 || !stats) {
		json_decref(stats);
		return NULL;
	}
	json_object_del(stats, "sagaLatencyMs");
	text = json_dumps(stats, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(stats);
	return text;
}

static bool same_text(const char *what, const char *before, const char *after)
{
	if (before && after && !strcmp(before, after))
		return true;
	fprintf(stderr, "CHANGED by the replay: %s\n  before: %s\n  after:  %s\n", what,
		before ? before : "(none)", after ? after : "(none)");
	return false;
}

/* What the replay must not change: the messages on payments and
 * inventory, the stock, and the statistics. */
struct unchanged {
	long long payments, inventory;
	char *stock, *stats;
};

static void unchanged_read(const struct shop *shop, struct unchanged *u)
{
	u->payments = topic_size(shop->topic_payments, TOPIC_PARTITIONS);
	u->inventory = topic_size(shop->topic_inventory, TOPIC_PARTITIONS);
	u->stock = get_text(shop, SHOP_INVENTORY, "/stock");
	u->stats = stats_counts(shop);
}

/* Prints what changed. */
static bool unchanged_same(const struct unchanged *before, const struct unchanged *after)
{
	bool ok = true;

	if (after->payments != before->payments || after->inventory != before->inventory) {
		fprintf(stderr, "CHANGED by the replay: new events on payments or inventory\n");
		ok = false;
	}
	ok &= same_text("GET /stock", before->stock, after->stock);
	ok &= same_text("GET /stats", before->stats, after->stats);
	return ok;
}

static void unchanged_free(struct unchanged *u)
{
	free(u->stock);
	free(u->stats);
}

/* Each event a service acts on is skipped by its inbox once: payment acts
 * on OrderPlaced and OrderCancelled, inventory on all three. Returns the
 * OrderPlaced events on the orders topic. */
static int duplicates_due(const struct shop *shop, const struct unchanged *before, int *want_dup)
{
	int placed = count_type(shop->topic_orders, ES_ORDER_PLACED);
	int confirmed = count_type(shop->topic_orders, ES_ORDER_CONFIRMED);
	int cancelled = count_type(shop->topic_orders, ES_ORDER_CANCELLED);

	want_dup[0] = placed + cancelled;
	want_dup[1] = placed + confirmed + cancelled;
	fprintf(stderr,
		"replay: orders topic holds %d OrderPlaced, %d OrderConfirmed, %d OrderCancelled; "
		"payments %lld, inventory %lld messages\n",
		placed, confirmed, cancelled, before->payments, before->inventory);
	return placed;
}

/* The replayed services' daemons stopped, their groups' offsets on the
 * orders topic set back to the beginning, the daemons started again.
 * dup_before: the duplicates each had skipped until then. */
static int rewind_groups(struct shop *shop, const enum shop_service *replayed, int *dup_before,
			 long long *lag)
{
	for (int i = 0; i < 2; i++) {
		char group[160];

		dup_before[i] = log_count(shop, replayed[i], "already processed");
		if (shop_signal(shop, replayed[i], 0, SIGTERM))
			return -1;
		snprintf(group, sizeof(group), "%s.%s", shop->run, shop_names[replayed[i]]);
		if (reset_group(group, shop->topic_orders, TOPIC_PARTITIONS))
			return -1;
		lag[i] = group_lag(group, shop->topic_orders, TOPIC_PARTITIONS);
		fprintf(stderr, "replay: %s stopped, group %s reset to the beginning (lag %lld)\n",
			shop_names[replayed[i]], group, lag[i]);
	}
	for (int i = 0; i < 2; i++) {
		if (shop_start(shop, replayed[i], 0))
			return -1;
	}
	return 0;
}

/* Until both groups have read (and committed) the whole topic again, 90 s
 * at most. */
static void wait_reread(const struct shop *shop, const enum shop_service *replayed, long long *lag)
{
	long long deadline = shop_now_ms() + 90000;

	do {
		for (int i = 0; i < 2; i++) {
			char group[160];

			snprintf(group, sizeof(group), "%s.%s", shop->run, shop_names[replayed[i]]);
			lag[i] = group_lag(group, shop->topic_orders, TOPIC_PARTITIONS);
		}
		if (lag[0] == 0 && lag[1] == 0)
			break;
		sleep_ms(500);
	} while (shop_now_ms() < deadline);
}

START_TEST(redelivering_a_whole_topic_changes_nothing)
{
	static const enum shop_service replayed[] = {SHOP_PAYMENT, SHOP_INVENTORY};
	struct shop shop;
	struct load l;
	struct invariants_report rep = {0};
	struct unchanged before = {-1, -1, NULL, NULL}, after = {-1, -1, NULL, NULL};
	long long t0 = shop_now_ms(), lag[2] = {-1, -1};
	int dup_before[2] = {0}, dup_after[2] = {0}, want_dup[2] = {0}, placed;
	int violations = -1, exits = 0, crashes = 0;
	bool failed = true, loaded = false, ok;

	if (start_shop(&shop))
		goto out;
	/* 4 clients x 50 orders, one every 100 ms each: 200 in ~5 s. */
	load_init(&l, &shop, 4, 50, 100);
	loaded = true;
	load_join(&l, load_start(&l));
	load_print("replay", &l);
	if (wait_quiet(&shop, 120000, &exits, &crashes))
		goto out;

	unchanged_read(&shop, &before);
	placed = duplicates_due(&shop, &before, want_dup);
	if (rewind_groups(&shop, replayed, dup_before, lag))
		goto out;
	wait_reread(&shop, replayed, lag);
	fprintf(stderr, "replay: lag payment-service %lld, inventory-service %lld after %.1f s\n",
		lag[0], lag[1], secs_since(t0));
	wait_quiet(&shop, 60000, &exits, &crashes);
	violations = shop_check_invariants(&shop, l.acc.ids, l.acc.n, 60000, &rep);

	unchanged_read(&shop, &after);
	for (int i = 0; i < 2; i++)
		dup_after[i] = log_count(&shop, replayed[i], "already processed");
	fprintf(stderr,
		"replay: payments topic %lld -> %lld messages, inventory topic %lld -> %lld; "
		"duplicates skipped by payment-service %d (expected %d), inventory-service %d "
		"(expected %d); %d dead letters, %d violation(s), %.1f s\n",
		before.payments, after.payments, before.inventory, after.inventory,
		dup_after[0] - dup_before[0], want_dup[0], dup_after[1] - dup_before[1],
		want_dup[1], rep.dead_letters, violations, secs_since(t0));
	ok = violations == 0 && lag[0] == 0 && lag[1] == 0 && exits == 0;
	ok &= unchanged_same(&before, &after);
	for (int i = 0; i < 2; i++) {
		if (dup_after[i] - dup_before[i] < want_dup[i]) {
			fprintf(stderr, "%s skipped %d duplicates, expected at least %d\n",
				shop_names[replayed[i]], dup_after[i] - dup_before[i], want_dup[i]);
			ok = false;
		}
	}
	failed = !ok || placed < 150;
out:
	release(&shop, failed);
	if (loaded)
		load_free(&l);
	unchanged_free(&before);
	unchanged_free(&after);
	ck_assert_msg(!failed, "replay: %d violation(s), lag %lld/%lld", violations, lag[0],
		      lag[1]);
}
END_TEST

int main(void)
{
	struct fault_case cases[] = {
		{"redelivering_a_whole_topic_changes_nothing",
		 redelivering_a_whole_topic_changes_nothing},
	};

	return fault_main("fault.injection.replay", cases, sizeof(cases) / sizeof(cases[0]));
}
