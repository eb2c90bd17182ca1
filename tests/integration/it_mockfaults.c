/*
 * Integration tests of the outbox relay and the consumer loop under broker
 * faults that a real broker cannot be scripted to produce.
 *
 * FAULT INJECTION: the Kafka side of these tests is NOT the real broker but
 * librdkafka's mock cluster (rd_kafka_mock_cluster_new, rdkafka_mock.h), an
 * in-process Kafka protocol server hosted by a client of this process, which
 * can be made to fail requests, answer late or refuse connections on demand.
 * The database is the real PostgreSQL of the integration fixture
 * (DATABASE_URL), so the outbox, its relay lock, NOTIFY wake-ups and the
 * inbox are the real thing. What each case injects:
 *
 *   produce errors   retriable Produce (ApiKey 0) errors and a dropped
 *                    connection, pushed in two runs while the relay works;
 *   latency          the broker answers every request 400 ms late;
 *   broker outage    the broker refuses connections for 2 s mid-run while
 *                    rows keep being written;
 *   fetch faults     Fetch (ApiKey 1) errors, latency and an offset reset
 *                    under the consumer loop with an inbox-backed handler.
 *
 * Every outbox row must reach the topic exactly once and in per-key order,
 * be marked published, and the relay must not have failed; every consumed
 * event must have its effect exactly once and the group's offsets must reach
 * the end of the topic.
 *
 * The es clients read every KAFKA_* variable as a librdkafka property, and
 * ctest runs this binary with the real broker's KAFKA_BOOTSTRAP_SERVERS set:
 * main() removes them all so that nothing here talks to the real broker.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "es/db.h"
#include "es/envelope.h"
#include "es/inbox.h"
#include "es/kafka.h"
#include "es/log.h"
#include "es/metrics.h"
#include "es/outbox.h"
#include "testkafka.h"
#include "testsupport.h"

/* After rdkafka.h (which es/kafka.h includes), as it requires. */
#include <librdkafka/rdkafka_mock.h>

/* Kafka protocol ApiKeys (rdkafka_protocol.h, which Debian does not
 * install). */
#define API_PRODUCE 0
#define API_FETCH 1

#define BROKER 1 /* the mock cluster's only broker */
#define PARTITIONS 3
#define KEYS 6 /* orders, i.e. partition keys, per test */
#define MAX_ROWS 400
#define RTT_MS 400
#define OUTAGE_MS 2000
/* A bound, not a speed: the group join alone takes seconds at 300 ms a
 * round trip, more on a loaded machine under ASan. */
#define CONSUME_TIMEOUT_MS 90000

static const char *conninfo;

/* One test's world: a schema of its own in the real database, and a mock
 * cluster with one topic. Rows are written round-robin over the keys, so row
 * i is event number i / KEYS of key i % KEYS. */
struct fixture {
	char schema[64];
	char topic[64];
	struct es_db *db;
	struct es_test_kafka_mock km; /* the mock cluster and its host client */
	char keys[KEYS][ES_UUID_LEN + 1];
	char ids[MAX_ROWS][ES_UUID_LEN + 1];
	int rows;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static void setup(struct fixture *f)
{
	char err[512];

	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(es_test_unique_name(f->schema, sizeof(f->schema), "mf"), 0);
	ck_assert_int_eq(es_test_unique_name(f->topic, sizeof(f->topic), "it_mockfaults"), 0);
	for (int k = 0; k < KEYS; k++)
		es_uuid_new(f->keys[k]);
	f->db = es_db_connect(conninfo, f->schema, 10000, err, sizeof(err));
	ck_assert_msg(f->db != NULL, "%s", err);
	ck_assert_msg(es_db_migrate(f->db, NULL, err, sizeof(err)) >= 0, "%s", err);

	ck_assert_int_eq(es_test_kafka_mock_init(&f->km, 1), 0);
	ck_assert_int_eq(rd_kafka_mock_topic_create(f->km.mc, f->topic, PARTITIONS, 1), 0);
}

static void teardown(struct fixture *f)
{
	es_test_kafka_mock_release(&f->km);
	es_db_free(f->db);
}

/* The next n events, round-robin over the keys, in row order. */
static struct es_event **next_events(struct fixture *f, int n)
{
	struct es_event **evs = calloc((size_t)n, sizeof(*evs));

	ck_assert_ptr_nonnull(evs);
	ck_assert_int_le(f->rows + n, MAX_ROWS);
	for (int i = 0; i < n; i++) {
		int row = f->rows + i;
		const char *key = f->keys[row % KEYS];

		evs[i] = es_event_new("order-service", "OrderPlaced", key, NULL, NULL,
				      json_pack("{s:s,s:i}", "orderId", key, "seq", row / KEYS));
		ck_assert_ptr_nonnull(evs[i]);
		snprintf(f->ids[row], sizeof(f->ids[row]), "%s", evs[i]->id);
	}
	f->rows += n;
	return evs;
}

static void free_events(struct es_event **evs, int n)
{
	for (int i = 0; i < n; i++)
		es_event_free(evs[i]);
	free(evs);
}

/* Writes the next n rows into the outbox in one transaction. */
static void put_rows(struct fixture *f, int n)
{
	struct es_event **evs = next_events(f, n);

	es_test_outbox_put_all(f->db, f->topic, evs, n);
	free_events(evs, n);
}

/* ------------------------------------------------------------ the relay */

static struct es_relay *relay_start(struct fixture *f, int batch_size)
{
	struct es_relay_config cfg = {
		.conninfo = conninfo,
		.schema = f->schema,
		.bootstrap = f->km.bootstrap,
		.service = "order-service",
		.poll_interval_ms = 100,
		.batch_size = batch_size,
	};
	char err[512];
	struct es_relay *r = es_relay_new(&cfg, err, sizeof(err));

	ck_assert_msg(r != NULL, "%s", err);
	ck_assert_msg(es_relay_start(r, err, sizeof(err)) == 0, "%s", err);
	return r;
}

static bool relay_active(void *arg)
{
	return es_relay_active(arg);
}

struct progress {
	struct es_relay *r;
	unsigned long want;
	bool idle; /* also wait for an empty backlog */
};

/* Also true when the relay failed, so that the caller's assertion on
 * es_relay_failed() reports it at once instead of timing out. */
static bool relay_progressed(void *arg)
{
	struct progress *p = arg;

	if (es_relay_failed(p->r))
		return true;
	return es_relay_published(p->r) >= p->want && (!p->idle || es_relay_backlog(p->r) == 0);
}

static void wait_published(struct es_relay *r, unsigned long want, bool idle, int timeout_ms)
{
	struct progress p = {r, want, idle};

	ck_assert_msg(es_test_wait_until(relay_progressed, &p, timeout_ms),
		      "relay published %lu of %lu row(s) (backlog %ld) in %d ms",
		      es_relay_published(r), want, es_relay_backlog(r), timeout_ms);
	ck_assert_msg(!es_relay_failed(r), "the relay stopped on a fatal error");
}

/* The relay's side of the bargain: it did not fail, and every row is marked
 * published, once. */
static void assert_outbox_drained(struct fixture *f, struct es_relay *r)
{
	wait_published(r, (unsigned long)f->rows, true, 30000);
	ck_assert(!es_relay_failed(r));
	ck_assert_int_eq(es_relay_backlog(r), 0);
	ck_assert_uint_eq(es_relay_published(r), (unsigned long)f->rows);
	ck_assert_int_eq(
		es_test_count(f->db,
			      "SELECT count(*) AS n FROM es_outbox WHERE published_at IS NULL", 0,
			      NULL),
		0);
	ck_assert_int_eq(es_test_count(f->db, "SELECT count(*) AS n FROM es_outbox", 0, NULL),
			 f->rows);
}

static int key_index(const struct fixture *f, const char *key)
{
	for (int k = 0; k < KEYS; k++) {
		if (!strcmp(f->keys[k], key))
			return k;
	}
	return -1;
}

/*
 * The topic holds every row exactly once and, per key, in outbox order: each
 * message must be its key's next event, with the id the row was written
 * with, on the one partition of that key.
 */
static void assert_topic_holds_each_row_once_in_order(struct fixture *f)
{
	bool complete = false;
	struct es_test_batch *b = es_test_kafka_read_all(f->km.bootstrap, f->topic, 20000,
							 &complete);
	int next[KEYS] = {0}, partition[KEYS] = {0};
	char err[256], hdr[64];

	ck_assert_msg(complete, "read %d message(s), short of the topic's end", b->n);
	ck_assert_int_eq(b->n, f->rows);
	for (int i = 0; i < b->n; i++) {
		const rd_kafka_message_t *m = b->msg[i];
		struct es_event *ev = es_event_parse(m->payload, m->len, err, sizeof(err));
		int k, seq;

		ck_assert_msg(ev != NULL, "%s", err);
		k = key_index(f, ev->partitionkey);
		ck_assert_int_ge(k, 0);
		seq = (int)json_integer_value(json_object_get(ev->data, "seq"));
		ck_assert_msg(seq == next[k], "key %d: event %d where %d was due", k, seq, next[k]);
		ck_assert_str_eq(ev->id, f->ids[seq * KEYS + k]);
		ck_assert_ptr_nonnull(es_test_kafka_header(m, "ce_id", hdr, sizeof(hdr)));
		ck_assert_str_eq(hdr, ev->id);
		ck_assert_int_eq((int)m->key_len, (int)strlen(f->keys[k]));
		ck_assert(!memcmp(m->key, f->keys[k], m->key_len));
		if (seq == 0)
			partition[k] = m->partition;
		ck_assert_int_eq(m->partition, partition[k]);
		next[k]++;
		es_event_free(ev);
	}
	for (int k = 0; k < KEYS; k++)
		ck_assert_int_eq(next[k], (f->rows - k + KEYS - 1) / KEYS);
	es_test_kafka_batch_free(b);
}

START_TEST(relay_rides_out_produce_errors)
{
	struct fixture f;
	struct es_relay *r;
	size_t left = 1;

	setup(&f);
	/* Rounds of 50 rows: the errors land on requests of several rounds. */
	r = relay_start(&f, 50);
	ck_assert(es_test_wait_until(relay_active, r, 20000));

	/* Leadership moving, a timed-out request, replicas short, and a
	 * dropped connection: all retriable, so the idempotent producer must
	 * retry without losing, duplicating or reordering anything. They
	 * answer the next six Produce requests, which only the relay sends:
	 * once a row is published, all six were served. */
	rd_kafka_mock_push_request_errors(
		f.km.mc, API_PRODUCE, 6, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
		RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
		RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
		RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
	for (int i = 0; i < 5; i++)
		put_rows(&f, 30);
	wait_published(r, 100, false, 30000);

	/* A second run, mid-stream, on the broker's own error stack, which
	 * can be counted: when it is empty, every error was served to one of
	 * the relay's requests. */
	ck_assert_int_eq(
		rd_kafka_mock_broker_push_request_error_rtts(
			f.km.mc, BROKER, API_PRODUCE, 5, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
			0, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 0,
			RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, 0, RD_KAFKA_RESP_ERR__TRANSPORT, 0,
			RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0),
		RD_KAFKA_RESP_ERR_NO_ERROR);
	for (int i = 0; i < 5; i++)
		put_rows(&f, 30);

	assert_outbox_drained(&f, r);
	ck_assert_int_eq(rd_kafka_mock_broker_error_stack_cnt(f.km.mc, BROKER, API_PRODUCE, &left),
			 RD_KAFKA_RESP_ERR_NO_ERROR);
	ck_assert_msg(left == 0, "%zu injected error(s) never reached a request", left);
	es_relay_free(r);
	assert_topic_holds_each_row_once_in_order(&f);
	teardown(&f);
}
END_TEST

static bool one_row_parked(void *arg)
{
	struct fixture *f = arg;

	return es_test_count(f->db,
			     "SELECT count(*) AS n FROM es_outbox WHERE parked_at IS NOT NULL", 0,
			     NULL) == 1;
}

/*
 * A row the broker refuses for good is parked with its reason and counted;
 * the relay goes on with the other keys and holds back the later row of the
 * parked one's key; once retried, both go out, in their order.
 */
START_TEST(relay_parks_a_row_it_can_never_publish_and_holds_its_key)
{
	struct es_relay_config cfg = {.conninfo = conninfo,
				      .service = "order-service",
				      .poll_interval_ms = 100,
				      .batch_size = 50};
	struct es_metrics *reg = es_metrics_new();
	struct fixture f;
	struct es_relay *r;
	char err[512], *text;
	size_t len;

	setup(&f);
	cfg.schema = f.schema;
	cfg.bootstrap = f.km.bootstrap;
	r = es_relay_new(&cfg, err, sizeof(err));
	ck_assert_msg(r && reg, "%s", err);
	ck_assert_msg(es_relay_register_gauges(r, reg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(es_relay_start(r, err, sizeof(err)) == 0, "%s", err);
	ck_assert(es_test_wait_until(relay_active, r, 20000));

	/* The first Produce request is refused as too large: no retry helps. */
	rd_kafka_mock_push_request_errors(f.km.mc, API_PRODUCE, 1,
					  RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
	put_rows(&f, 1); /* row 0, key 0 */
	ck_assert_msg(es_test_wait_until(one_row_parked, &f, 30000), "row 0 was not parked");
	ck_assert_int_eq(es_test_count(f.db,
				       "SELECT count(*) AS n FROM es_outbox WHERE parked_at IS NOT "
				       "NULL AND park_reason LIKE '%MSG_SIZE_TOO_LARGE%'",
				       0, NULL),
			 1);

	/* Rows 1..KEYS: one of each key, row KEYS of key 0 again. */
	put_rows(&f, KEYS);
	wait_published(r, KEYS - 1, false, 30000);
	ck_assert_int_eq(es_test_count(f.db,
				       "SELECT count(*) AS n FROM es_outbox WHERE published_at IS "
				       "NULL AND parked_at IS NULL AND msg_key = $1",
				       1, (const char *const[]){f.keys[0]}),
			 1);
	ck_assert(!es_relay_failed(r));
	text = es_metrics_render(reg, &len);
	ck_assert_ptr_nonnull(text);
	ck_assert_msg(strstr(text, "es_outbox_parked_total{topic=\"") && strstr(text, "\"} 1\n"),
		      "%s", text);
	free(text);

	/* Mended: the parked row goes out first, then the one behind it. */
	ck_assert_int_eq(es_outbox_retry(f.db, "1", err, sizeof(err)), 1);
	ck_assert_int_eq(es_outbox_retry(f.db, "1", err, sizeof(err)), 0);
	assert_outbox_drained(&f, r);
	es_relay_free(r);
	es_metrics_free(reg);
	assert_topic_holds_each_row_once_in_order(&f);
	teardown(&f);
}
END_TEST

START_TEST(relay_rides_out_broker_latency)
{
	struct fixture f;
	struct es_relay *r;
	long long start, first;

	setup(&f);
	r = relay_start(&f, 50);
	ck_assert(es_test_wait_until(relay_active, r, 20000));

	ck_assert_int_eq(rd_kafka_mock_broker_set_rtt(f.km.mc, BROKER, RTT_MS),
			 RD_KAFKA_RESP_ERR_NO_ERROR);
	start = now_ms();
	for (int i = 0; i < 3; i++)
		put_rows(&f, 50);
	wait_published(r, 1, false, 30000);
	first = now_ms() - start;
	/* No row can be marked before one answer came back: the latency
	 * really was in the way (a little slack for the clocks). */
	ck_assert_msg(first >= RTT_MS - 20, "first row published after %lld ms", first);
	wait_published(r, 100, false, 30000);

	/* The broker is fast again; the rest of the stream follows. */
	for (int i = 0; i < 3; i++)
		put_rows(&f, 50);
	ck_assert_int_eq(rd_kafka_mock_broker_set_rtt(f.km.mc, BROKER, 0),
			 RD_KAFKA_RESP_ERR_NO_ERROR);

	assert_outbox_drained(&f, r);
	es_relay_free(r);
	assert_topic_holds_each_row_once_in_order(&f);
	teardown(&f);
}
END_TEST

START_TEST(relay_rides_out_a_broker_outage)
{
	enum { BEFORE, DOWN, UP } phase = BEFORE;
	struct fixture f;
	struct es_relay *r;
	long long deadline, down_at = 0;
	unsigned long published_while_down = 0;
	int rows_at_down = 0, rows_at_up = 0;

	setup(&f);
	r = relay_start(&f, 20);
	ck_assert(es_test_wait_until(relay_active, r, 20000));

	/* The service keeps writing 2 rows every 25 ms throughout; the broker
	 * goes away once the relay is well under way, and comes back after
	 * OUTAGE_MS. */
	deadline = now_ms() + 30000;
	for (;;) {
		put_rows(&f, 2);
		if (phase == BEFORE && es_relay_published(r) >= 40) {
			ck_assert_int_eq(rd_kafka_mock_broker_set_down(f.km.mc, BROKER),
					 RD_KAFKA_RESP_ERR_NO_ERROR);
			phase = DOWN;
			down_at = now_ms();
			rows_at_down = f.rows;
		} else if (phase == DOWN && now_ms() - down_at >= OUTAGE_MS) {
			published_while_down = es_relay_published(r);
			ck_assert_int_eq(rd_kafka_mock_broker_set_up(f.km.mc, BROKER),
					 RD_KAFKA_RESP_ERR_NO_ERROR);
			phase = UP;
			rows_at_up = f.rows;
		} else if (phase == UP && f.rows >= rows_at_up + 40) {
			break;
		}
		ck_assert_msg(now_ms() < deadline,
			      "relay made no progress (phase %d, %lu published)", phase,
			      es_relay_published(r));
		ck_assert(!es_relay_failed(r));
		sleep_ms(25);
	}

	/* The outage was real: nothing written during it got out during it. */
	ck_assert_int_gt(rows_at_up, rows_at_down);
	ck_assert_uint_le(published_while_down, (unsigned long)rows_at_down);

	assert_outbox_drained(&f, r);
	es_relay_free(r);
	assert_topic_holds_each_row_once_in_order(&f);
	teardown(&f);
}
END_TEST

/* --------------------------------------------------------- the consumer */

/* Per-partition counts of what was produced: the end of each partition. */
struct produced {
	int delivered, failed;
	int64_t end[PARTITIONS];
};

static void count_delivery(void *arg, void *opaque, rd_kafka_resp_err_t err,
			   const rd_kafka_message_t *rkm)
{
	struct produced *p = arg;

	if (err || rkm->partition < 0 || rkm->partition >= PARTITIONS) {
		p->failed++;
		return;
	}
	p->delivered++;
	p->end[rkm->partition]++;
}

/* Produces the next n events straight to the topic (the relay is not what
 * this case is about). */
static void produce_events(struct fixture *f, int n, struct produced *out)
{
	struct es_event **evs = next_events(f, n);
	struct es_producer *p;
	char err[512];

	p = es_producer_new(f->km.bootstrap, "it-mockfaults-producer", count_delivery, out, err,
			    sizeof(err));
	ck_assert_msg(p != NULL, "%s", err);
	/* One message a batch, so that a small fetch carries one message. */
	for (int i = 0; i < n; i++) {
		ck_assert_msg(es_producer_send(p, f->topic, evs[i], NULL, err, sizeof(err)) == 0,
			      "%s", err);
		ck_assert_int_eq(es_producer_flush(p, 20000), 0);
	}
	es_producer_free(p);
	free_events(evs, n);
	ck_assert_int_eq(out->failed, 0);
	ck_assert_int_eq(out->delivered, n);
}

/* true once the consumer's position is the end of every partition. */
static bool consumed_to_end(struct es_consumer *c, const char *topic, const struct produced *p)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(PARTITIONS);
	bool done = true;

	for (int i = 0; i < PARTITIONS; i++)
		rd_kafka_topic_partition_list_add(l, topic, i);
	if (rd_kafka_position(es_consumer_handle(c), l))
		done = false;
	for (int i = 0; done && i < PARTITIONS; i++) {
		if (p->end[i] > 0)
			done = l->elems[i].offset == p->end[i];
	}
	rd_kafka_topic_partition_list_destroy(l);
	return done;
}

static long effects(struct fixture *f)
{
	return es_test_count(f->db, "SELECT count(*) AS n FROM effects", 0, NULL);
}

/* Injected errors still waiting on the broker's stack for ApiKey api. */
static size_t errors_left(struct fixture *f, int16_t api)
{
	size_t left = 0;

	ck_assert_int_eq(rd_kafka_mock_broker_error_stack_cnt(f->km.mc, BROKER, api, &left),
			 RD_KAFKA_RESP_ERR_NO_ERROR);
	return left;
}

struct consume_state {
	struct fixture *f;
	struct es_consumer *c;
	struct es_test_inbox_handler *h;
	const struct produced *p;
	int want_calls;
};

/* Every injected fetch error was served, and want_calls events handled. */
static bool through_the_faults(void *arg)
{
	struct consume_state *s = arg;

	return errors_left(s->f, API_FETCH) == 0 && s->h->calls >= s->want_calls;
}

/* The same, and the consumer is at the end of every partition with every
 * effect applied. */
static bool consumed_all(void *arg)
{
	struct consume_state *s = arg;

	return through_the_faults(s) && consumed_to_end(s->c, s->f->topic, s->p) &&
	       effects(s->f) == s->f->rows;
}

/* Polls the consumer until cond holds; at the deadline the test fails and
 * says how far it got. */
static void consume_until(struct consume_state *s, bool (*cond)(void *), int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	char err[512];

	while (!cond(s)) {
		ck_assert_msg(now_ms() < deadline,
			      "not there after %d ms: %zu fetch errors left, %d handled (%d "
			      "duplicates), %ld of %d effects, at the end: %s",
			      timeout_ms, errors_left(s->f, API_FETCH), s->h->calls,
			      s->h->duplicates, effects(s->f), s->f->rows,
			      consumed_to_end(s->c, s->f->topic, s->p) ? "yes" : "no");
		ck_assert_msg(es_consumer_poll(s->c, 100, NULL, err, sizeof(err)) == 0, "%s", err);
	}
}

START_TEST(consumer_rides_out_fetch_faults_and_applies_each_event_once)
{
	struct fixture f;
	struct produced p = {0};
	struct es_test_inbox_handler h = {.consumer = "it-mockfaults"};
	struct consume_state s;
	struct es_consumer *c;
	const char *topics[2];
	const char *params[1];
	char group[64], dlq[96], err[512], *arr;
	size_t used = 0;
	int handled_before_reset;
	const int n = 180;

	setup(&f);
	ck_assert_int_ge(es_db_exec(f.db, "CREATE TABLE effects (event_id text NOT NULL)", 0, NULL,
				    err, sizeof(err)),
			 0);
	snprintf(dlq, sizeof(dlq), "dlq.%s", f.topic);
	ck_assert_int_eq(rd_kafka_mock_topic_create(f.km.mc, dlq, 1, 1), 0);
	produce_events(&f, n, &p);

	/* A slow broker whose first fetches fail in every retriable way,
	 * one of them by dropping the connection. On the broker's own error
	 * stack, so that we can tell when all were served: no data can reach
	 * the consumer before, as they answer its first five fetches. */
	ck_assert_int_eq(rd_kafka_mock_broker_set_rtt(f.km.mc, BROKER, 300),
			 RD_KAFKA_RESP_ERR_NO_ERROR);
	ck_assert_int_eq(
		rd_kafka_mock_broker_push_request_error_rtts(
			f.km.mc, BROKER, API_FETCH, 5, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
			0, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 0,
			RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, 0, RD_KAFKA_RESP_ERR__TRANSPORT, 0,
			RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, 0),
		RD_KAFKA_RESP_ERR_NO_ERROR);

	ck_assert_int_eq(es_test_unique_name(group, sizeof(group), "it_mockfaults_group"), 0);
	topics[0] = f.topic;
	topics[1] = NULL;
	h.db = f.db;
	/* Fetch one message per partition at a time (one batch: the broker
	 * always returns at least one), so that the consumer cannot have
	 * read the whole topic ahead when the offset reset below comes, on a
	 * loaded machine included: it must come mid-stream to rewind. */
	setenv("KAFKA_MAX_PARTITION_FETCH_BYTES", "1", 1);
	c = es_consumer_new(&(struct es_consumer_config){.bootstrap = f.km.bootstrap,
							 .group_id = group,
							 .topics = topics,
							 .service = "it-mockfaults",
							 .dlq_topic = dlq,
							 .handler = es_test_inbox_handle,
							 .handler_arg = &h,
							 .retry_initial_ms = 10,
							 .retry_max_ms = 100},
			    err, sizeof(err));
	unsetenv("KAFKA_MAX_PARTITION_FETCH_BYTES");
	ck_assert_msg(c != NULL, "%s", err);
	s = (struct consume_state){&f, c, &h, &p, n / 3};
	consume_until(&s, through_the_faults, CONSUME_TIMEOUT_MS);

	/*
	 * Mid-stream, the broker answers that the fetch offsets are out of
	 * range (as after a log truncation or an unclean leader election):
	 * the consumer resets every partition to its earliest offset
	 * (auto.offset.reset) and is handed again all it already applied, so
	 * each of those is delivered twice. The inbox must turn that into no
	 * second effect, and the offsets must still end at the end.
	 */
	handled_before_reset = h.calls;
	ck_assert_int_eq(
		rd_kafka_mock_broker_push_request_error_rtts(
			f.km.mc, BROKER, API_FETCH, 1, RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE, 0),
		RD_KAFKA_RESP_ERR_NO_ERROR);
	ck_assert_int_eq(rd_kafka_mock_broker_set_rtt(f.km.mc, BROKER, 0),
			 RD_KAFKA_RESP_ERR_NO_ERROR);
	s.want_calls = n + handled_before_reset;
	consume_until(&s, consumed_all, CONSUME_TIMEOUT_MS);
	es_consumer_free(c);

	/* Each event's effect exactly once, and only those events. */
	ck_assert_int_eq(effects(&f), n);
	ck_assert_int_eq(
		es_test_count(f.db, "SELECT count(DISTINCT event_id) AS n FROM effects", 0, NULL),
		n);
	arr = malloc((size_t)n * (ES_UUID_LEN + 1) + 3);
	ck_assert_ptr_nonnull(arr);
	arr[used++] = '{';
	for (int i = 0; i < n; i++)
		used += (size_t)sprintf(arr + used, "%s%s", i ? "," : "", f.ids[i]);
	arr[used++] = '}';
	arr[used] = '\0';
	params[0] = arr;
	ck_assert_int_eq(
		es_test_count(f.db,
			      "SELECT count(*) AS n FROM effects WHERE event_id = ANY($1::text[])",
			      1, params),
		n);
	free(arr);
	ck_assert_int_eq(es_inbox_count(f.db, "it-mockfaults", err, sizeof(err)), n);
	/* Every delivery beyond the first of an event was a skipped
	 * duplicate, and the reset did re-deliver what had been applied. */
	ck_assert_int_eq(h.calls, n + h.duplicates);
	ck_assert_int_ge(h.duplicates, handled_before_reset);

	/* The group's committed offsets reached the end of every partition. */
	for (int i = 0; i < PARTITIONS; i++) {
		long long off = es_test_kafka_committed(f.km.bootstrap, group, f.topic, i);

		if (p.end[i] > 0)
			ck_assert_msg(off == p.end[i], "partition %d committed %lld, end %lld", i,
				      off, (long long)p.end[i]);
	}
	teardown(&f);
}
END_TEST

int main(void)
{
	Suite *s;
	TCase *relay, *consumer;

	es_log_init("it-mockfaults", getenv("ES_TEST_VERBOSE") ? ES_LOG_DEBUG : ES_LOG_ERROR);
	if (!es_test_database_url())
		return ES_TEST_SKIP;
	es_test_kafka_forget_environment();
	s = suite_create("mockfaults");
	relay = tcase_create("relay");
	tcase_set_timeout(relay, 120);
	tcase_add_test(relay, relay_rides_out_produce_errors);
	tcase_add_test(relay, relay_parks_a_row_it_can_never_publish_and_holds_its_key);
	tcase_add_test(relay, relay_rides_out_broker_latency);
	tcase_add_test(relay, relay_rides_out_a_broker_outage);
	suite_add_tcase(s, relay);
	consumer = tcase_create("consumer");
	tcase_set_timeout(consumer, 240);
	tcase_add_test(consumer, consumer_rides_out_fetch_faults_and_applies_each_event_once);
	suite_add_tcase(s, consumer);
	return es_test_run_with_db(s, &conninfo);
}
