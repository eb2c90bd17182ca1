/*
 * Integration tests of the transactional outbox and its relay against the
 * real broker and the real database: order, marking, the LISTEN wake-up,
 * one active relay per schema, and a relay killed between publish and mark
 * whose rows go out again and are made harmless by the inbox.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "es/db.h"
#include "es/envelope.h"
#include "es/inbox.h"
#include "es/kafka.h"
#include "es/log.h"
#include "es/metrics.h"
#include "es/outbox.h"
#include "testkafka.h"
#include "testsupport.h"

#define ORDER "0b6f2c9e-51d4-4e8a-9c1f-3a7d2e6b8f40"

static const char *bootstrap;
static const char *conninfo;
static const char *self_exe;

/* A schema of its own with the outbox and inbox tables, and a topic. */
struct fixture {
	char schema[64];
	char topic[64];
	struct es_db *db;
};

static void setup(struct fixture *f, int partitions)
{
	char err[512];

	ck_assert_int_eq(es_test_unique_name(f->schema, sizeof(f->schema), "ob"), 0);
	ck_assert_int_eq(es_test_unique_name(f->topic, sizeof(f->topic), "it_outbox"), 0);
	f->db = es_db_connect(conninfo, f->schema, 10000, err, sizeof(err));
	ck_assert_msg(f->db != NULL, "%s", err);
	ck_assert_msg(es_db_migrate(f->db, NULL, err, sizeof(err)) >= 0, "%s", err);
	ck_assert_int_eq(es_test_kafka_create_topic(bootstrap, f->topic, partitions), 0);
}

static void teardown(struct fixture *f)
{
	es_db_free(f->db);
}

/* Writes n OrderPlaced events for ORDER in one transaction; their ids are
 * copied into ids (n slots of ES_UUID_LEN + 1). */
static void put_events(struct fixture *f, int n, char (*ids)[ES_UUID_LEN + 1])
{
	struct es_event **evs = calloc((size_t)n, sizeof(*evs));

	for (int i = 0; i < n; i++) {
		evs[i] = es_event_new("order-service", "OrderPlaced", ORDER, NULL, NULL,
				      json_pack("{s:s,s:i}", "orderId", ORDER, "seq", i));
		ck_assert_ptr_nonnull(evs[i]);
		if (ids)
			snprintf(ids[i], ES_UUID_LEN + 1, "%s", evs[i]->id);
	}
	es_test_outbox_put_all(f->db, f->topic, evs, n);
	for (int i = 0; i < n; i++)
		es_event_free(evs[i]);
	free(evs);
}

static long count(struct es_db *db, const char *sql)
{
	return es_test_count(db, sql, 0, NULL);
}

static long unpublished(struct es_db *db)
{
	return count(db, "SELECT count(*) AS n FROM es_outbox WHERE published_at IS NULL");
}

static struct es_relay *relay(struct fixture *f, int poll_ms, const struct es_kafka_metrics *m)
{
	struct es_relay_config cfg = {
		.conninfo = conninfo,
		.schema = f->schema,
		.bootstrap = bootstrap,
		.service = "order-service",
		.poll_interval_ms = poll_ms,
		.metrics = m,
	};
	char err[512];
	struct es_relay *r = es_relay_new(&cfg, err, sizeof(err));

	ck_assert_msg(r != NULL, "%s", err);
	ck_assert_msg(es_relay_start(r, err, sizeof(err)) == 0, "%s", err);
	return r;
}

struct published_arg {
	struct es_relay *r;
	unsigned long want;
};

static bool relay_published(void *arg)
{
	struct published_arg *a = arg;

	return es_relay_published(a->r) >= a->want && es_relay_backlog(a->r) == 0;
}

static bool relay_active(void *arg)
{
	return es_relay_active(arg);
}

/* The seq field of the event in message i of b. */
static int seq_of(const struct es_test_batch *b, int i)
{
	char err[256];
	struct es_event *ev = es_event_parse(b->msg[i]->payload, b->msg[i]->len, err, sizeof(err));
	int seq;

	ck_assert_msg(ev != NULL, "%s", err);
	seq = (int)json_integer_value(json_object_get(ev->data, "seq"));
	es_event_free(ev);
	return seq;
}

START_TEST(relay_publishes_in_order_and_marks_rows)
{
	struct fixture f;
	struct es_metrics *reg = es_metrics_new();
	struct es_kafka_metrics m;
	struct es_relay *r;
	struct es_test_batch *b;
	char err[512], line[256], *text;
	const int n = 50;

	setup(&f, 3);
	ck_assert_int_eq(es_kafka_metrics_register(reg, &m, err, sizeof(err)), 0);
	put_events(&f, n, NULL);
	ck_assert_int_eq(unpublished(f.db), n);

	r = relay(&f, 200, &m);
	ck_assert_int_eq(es_relay_register_gauges(r, reg, err, sizeof(err)), 0);
	ck_assert(es_test_wait_until(relay_published, &(struct published_arg){r, n}, 30000));
	ck_assert_int_eq(unpublished(f.db), 0);
	ck_assert_uint_eq(es_relay_published(r), n);

	/* One key, so one partition, in the order the rows were written. */
	b = es_test_kafka_read(bootstrap, f.topic, n, 20000);
	ck_assert_int_eq(b->n, n);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(seq_of(b, i), i);
		ck_assert_int_eq(b->msg[i]->partition, b->msg[0]->partition);
	}
	es_test_kafka_batch_free(b);

	snprintf(line, sizeof(line),
		 "es_events_produced_total{topic=\"%s\",type=\"OrderPlaced\"} %d", f.topic, n);
	text = es_metrics_render(reg, NULL);
	ck_assert_msg(strstr(text, line) != NULL, "no \"%s\" in:\n%s", line, text);
	ck_assert_msg(strstr(text, "\nes_outbox_backlog 0\n") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "\nes_outbox_relay_active 1\n") != NULL, "%s", text);
	free(text);

	es_relay_free(r);
	es_metrics_free(reg);
	teardown(&f);
}
END_TEST

struct index_use {
	struct fixture *f;
	long fetched; /* rows found through es_outbox_unpublished one by one */
};

static bool unpublished_index_fetched(void *arg)
{
	struct index_use *u = arg;

	u->fetched = es_test_count(
		u->f->db,
		"SELECT idx_tup_fetch AS n FROM pg_stat_user_indexes"
		" WHERE schemaname = $1 AND indexrelname = 'es_outbox_unpublished'",
		1, (const char *const[]){u->f->schema});
	return u->fetched > 0;
}

/* The relay reads the head of its queue with a plain index scan, the only
 * plan that stops after a round's rows and marks the index entries of rows
 * it finds published as dead (outbox_relay.c says why). A bitmap scan
 * fetches no row one by one, and a sequential scan does not touch the
 * index: either would leave the index's fetch count at zero. */
START_TEST(the_relay_reads_its_queue_with_an_index_scan)
{
	struct fixture f;
	struct index_use use = {&f, 0};
	struct es_relay *r;
	const int n = 400;

	setup(&f, 1);
	put_events(&f, n, NULL);
	r = relay(&f, 200, NULL);
	ck_assert(es_test_wait_until(relay_published, &(struct published_arg){r, n}, 30000));
	/* One more row, behind the entries of the rows just published. */
	put_events(&f, 1, NULL);
	ck_assert(es_test_wait_until(relay_published, &(struct published_arg){r, n + 1}, 30000));
	ck_assert_msg(es_test_wait_until(unpublished_index_fetched, &use, 15000),
		      "no row was fetched through es_outbox_unpublished (idx_tup_fetch %ld)",
		      use.fetched);
	es_relay_free(r);
	teardown(&f);
}
END_TEST

START_TEST(a_batch_of_rows_goes_in_with_one_statement_in_order)
{
	struct es_outbox_batch *b = es_outbox_batch_new();
	struct es_event *evs[4];
	struct fixture f;
	char err[512];
	char *big;
	PGresult *res;

	setup(&f, 1);
	ck_assert_ptr_nonnull(b);
	for (int i = 0; i < 4; i++) {
		evs[i] = es_event_new("order-service", "OrderPlaced", ORDER, NULL, NULL,
				      json_pack("{s:s,s:i}", "orderId", ORDER, "seq", i));
		ck_assert_ptr_nonnull(evs[i]);
	}
	/* Three rows, then a fourth taken back (an effect's savepoint). */
	for (int i = 0; i < 4; i++)
		ck_assert_msg(es_outbox_batch_add(b, f.topic, evs[i], err, sizeof(err)) == 0, "%s",
			      err);
	ck_assert_int_eq(es_outbox_batch_len(b), 4);
	es_outbox_batch_truncate(b, 3);
	ck_assert_int_eq(es_outbox_batch_len(b), 3);

	/* An event Kafka would refuse is refused here, and nothing is added. */
	big = calloc(1100000, 1);
	memset(big, 'x', 1099999);
	struct es_event *huge = es_event_new("order-service", "OrderPlaced", ORDER, NULL, NULL,
					     json_pack("{s:s,s:s}", "orderId", ORDER, "pad", big));
	free(big);
	ck_assert_ptr_nonnull(huge);
	ck_assert_int_eq(es_outbox_batch_add(b, f.topic, huge, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "too large for Kafka"), "%s", err);
	ck_assert_int_eq(es_outbox_batch_len(b), 3);
	es_event_free(huge);

	ck_assert_int_eq(es_db_begin(f.db, err, sizeof(err)), 0);
	ck_assert_int_eq(es_outbox_batch_insert(f.db, b, err, sizeof(err)), 3);
	ck_assert_int_eq(es_db_commit(f.db, err, sizeof(err)), 0);
	ck_assert_int_eq(es_outbox_batch_len(b), 0);
	ck_assert_int_eq(es_outbox_batch_insert(f.db, b, err, sizeof(err)), 0);

	/* The ids follow the order the rows were added in; each row is the
	 * event as es_outbox_put would have stored it. */
	res = es_db_query(
		f.db,
		"SELECT string_agg(payload::json->'data'->>'seq', ',' ORDER BY id) AS seqs,"
		" bool_and(msg_key = $1 AND event_type = 'OrderPlaced') AS shape,"
		" string_agg(event_id, ',' ORDER BY id) AS ids FROM es_outbox",
		1, (const char *const[]){ORDER}, err, sizeof(err));
	ck_assert_msg(res != NULL, "%s", err);
	ck_assert_str_eq(es_db_get(res, 0, "seqs"), "0,1,2");
	ck_assert_str_eq(es_db_get(res, 0, "shape"), "t");
	ck_assert_ptr_nonnull(strstr(es_db_get(res, 0, "ids"), evs[2]->id));
	PQclear(res);
	for (int i = 0; i < 4; i++)
		es_event_free(evs[i]);
	es_outbox_batch_free(b);
	teardown(&f);
}
END_TEST

/* No trigger NOTIFYs any more: a connection without the commit hook
 * leaves its rows to the poll interval. */
static bool notify_trigger_gone(struct fixture *f)
{
	return count(f->db, "SELECT count(*) AS n FROM pg_trigger t JOIN pg_class c"
			    " ON c.oid = t.tgrelid WHERE c.relname = 'es_outbox'"
			    " AND c.relnamespace = current_schema()::regnamespace") == 0;
}

START_TEST(a_commit_wakes_its_own_relay_long_before_its_poll_interval)
{
	struct fixture f;
	struct es_relay *r;

	setup(&f, 1);
	ck_assert(notify_trigger_gone(&f));
	/* A poll interval far beyond the deadline below: only the commit
	 * hook, in this process, can make the relay publish in time. */
	r = relay(&f, 600000, NULL);
	es_db_set_commit_hook(f.db, es_relay_commit_hook, r);
	ck_assert(es_test_wait_until(relay_active, r, 20000));
	ck_assert(es_test_wait_until(relay_published, &(struct published_arg){r, 0}, 20000));
	put_events(&f, 1, NULL);
	ck_assert(es_test_wait_until(relay_published, &(struct published_arg){r, 1}, 20000));
	put_events(&f, 2, NULL);
	ck_assert(es_test_wait_until(relay_published, &(struct published_arg){r, 3}, 20000));
	ck_assert_int_eq(unpublished(f.db), 0);
	es_relay_free(r);
	teardown(&f);
}
END_TEST

START_TEST(a_standby_instance_wakes_the_active_relay_with_notify)
{
	struct fixture f;
	struct es_relay *active, *standby;

	setup(&f, 1);
	active = relay(&f, 600000, NULL);
	ck_assert(es_test_wait_until(relay_active, active, 20000));
	ck_assert(es_test_wait_until(relay_published, &(struct published_arg){active, 0}, 20000));
	/* A second instance: its relay stands by, so its commits NOTIFY the
	 * active one, whose poll interval is far beyond the deadline. */
	standby = relay(&f, 600000, NULL);
	es_db_set_commit_hook(f.db, es_relay_commit_hook, standby);
	put_events(&f, 2, NULL);
	ck_assert(es_test_wait_until(relay_published, &(struct published_arg){active, 2}, 20000));
	ck_assert(!es_relay_active(standby));
	/* A rolled-back transaction wakes nobody and leaves nothing. */
	{
		char err[256];

		ck_assert_int_eq(es_db_begin(f.db, err, sizeof(err)), 0);
		es_db_after_commit(f.db);
		es_db_rollback(f.db);
	}
	ck_assert_int_eq(unpublished(f.db), 0);
	es_relay_free(standby);
	es_relay_free(active);
	teardown(&f);
}
END_TEST

START_TEST(one_relay_is_active_and_a_standby_takes_over)
{
	struct fixture f;
	struct es_relay *a, *b;

	setup(&f, 1);
	a = relay(&f, 100, NULL);
	ck_assert(es_test_wait_until(relay_active, a, 20000));
	b = relay(&f, 100, NULL);
	put_events(&f, 5, NULL);
	ck_assert(es_test_wait_until(relay_published, &(struct published_arg){a, 5}, 20000));
	/* b has had many chances to take the lock by now. */
	ck_assert(!es_relay_active(b));
	ck_assert_uint_eq(es_relay_published(b), 0);

	es_relay_free(a);
	ck_assert(es_test_wait_until(relay_active, b, 20000));
	put_events(&f, 3, NULL);
	ck_assert(es_test_wait_until(relay_published, &(struct published_arg){b, 3}, 20000));
	ck_assert_int_eq(unpublished(f.db), 0);
	es_relay_free(b);
	ck_assert_int_eq(count(f.db, "SELECT count(*) AS n FROM es_outbox"), 8);
	teardown(&f);
}
END_TEST

/* Runs the relay in a child process (this binary, re-executed) that dies
 * with the fault hook right after the broker acknowledged its first round
 * and before marking it. */
static void run_relay_that_dies_before_mark(struct fixture *f)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setenv("ES_FAULT_RELAY_EXIT_BEFORE_MARK", "1", 1);
		execl(self_exe, self_exe, "--relay-child", conninfo, f->schema, bootstrap,
		      (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 77,
		      "the relay child did not die at the fault point (status %d)", status);
}

START_TEST(relay_killed_between_publish_and_mark_republishes_and_inbox_dedupes)
{
	struct fixture f;
	struct es_relay *r;
	struct es_test_batch *b;
	struct es_test_inbox_handler h = {.consumer = "it-consumer"};
	struct es_consumer *c;
	char group[64], dlq[96], err[512];
	char ids[10][ES_UUID_LEN + 1];
	const char *topics[2];
	const int n = 10;

	setup(&f, 2);
	ck_assert_int_ge(
		es_db_exec(
			f.db,
			"CREATE TABLE effects (id bigserial PRIMARY KEY, event_id text NOT NULL)",
			0, NULL, err, sizeof(err)),
		0);
	put_events(&f, n, ids);

	run_relay_that_dies_before_mark(&f);
	/* On the broker, not marked. */
	b = es_test_kafka_read(bootstrap, f.topic, n, 20000);
	ck_assert_int_eq(b->n, n);
	es_test_kafka_batch_free(b);
	ck_assert_int_eq(unpublished(f.db), n);

	/* After the restart the same rows go out again, and are marked. */
	r = relay(&f, 100, NULL);
	ck_assert(es_test_wait_until(relay_published, &(struct published_arg){r, n}, 30000));
	es_relay_free(r);
	ck_assert_int_eq(unpublished(f.db), 0);
	b = es_test_kafka_read(bootstrap, f.topic, 2 * n, 20000);
	ck_assert_int_eq(b->n, 2 * n);
	es_test_kafka_batch_free(b);

	/* A consumer sees every event twice and applies each once. */
	es_test_unique_name(group, sizeof(group), "it_outbox_group");
	snprintf(dlq, sizeof(dlq), "dlq.%s", f.topic);
	topics[0] = f.topic;
	topics[1] = NULL;
	h.db = f.db;
	c = es_consumer_new(&(struct es_consumer_config){.bootstrap = bootstrap,
							 .group_id = group,
							 .topics = topics,
							 .service = "it-consumer",
							 .dlq_topic = dlq,
							 .handler = es_test_inbox_handle,
							 .handler_arg = &h},
			    err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	for (int i = 0; i < 300 && h.calls < 2 * n; i++)
		ck_assert_int_eq(es_consumer_poll(c, 100, NULL, err, sizeof(err)), 0);
	es_consumer_free(c);
	ck_assert_int_eq(h.calls, 2 * n);
	ck_assert_int_eq(h.duplicates, n);
	ck_assert_int_eq(count(f.db, "SELECT count(*) AS n FROM effects"), n);
	ck_assert_int_eq(count(f.db, "SELECT count(DISTINCT event_id) AS n FROM effects"), n);
	for (int i = 0; i < n; i++) {
		const char *params[1] = {ids[i]};
		PGresult *res = es_db_query(f.db,
					    "SELECT count(*) AS n FROM effects WHERE event_id = $1",
					    1, params, err, sizeof(err));

		ck_assert_msg(res != NULL, "%s", err);
		ck_assert_str_eq(es_db_get(res, 0, "n"), "1");
		PQclear(res);
	}
	teardown(&f);
}
END_TEST

/* The child of run_relay_that_dies_before_mark: relays until the fault
 * hook ends the process. */
static int relay_child(const char *ci, const char *schema, const char *bs)
{
	struct es_relay_config cfg = {
		.conninfo = ci,
		.schema = schema,
		.bootstrap = bs,
		.service = "order-service",
		.poll_interval_ms = 100,
	};
	char err[512];
	struct es_relay *r = es_relay_new(&cfg, err, sizeof(err));

	if (!r || es_relay_start(r, err, sizeof(err))) {
		fprintf(stderr, "relay child: %s\n", err);
		return 1;
	}
	/* The fault hook exits with 77; give up after 60 s. */
	sleep(60);
	es_relay_free(r);
	return 2;
}

int main(int argc, char **argv)
{
	Suite *s;
	TCase *tc;

	es_log_init("it-outbox", ES_LOG_WARN);
	if (argc == 5 && !strcmp(argv[1], "--relay-child"))
		return relay_child(argv[2], argv[3], argv[4]);
	self_exe = "/proc/self/exe";
	bootstrap = es_test_kafka_bootstrap();
	if (!bootstrap || !es_test_database_url())
		return ES_TEST_SKIP;
	s = suite_create("outbox");
	tc = tcase_create("relay");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, relay_publishes_in_order_and_marks_rows);
	tcase_add_test(tc, a_batch_of_rows_goes_in_with_one_statement_in_order);
	tcase_add_test(tc, the_relay_reads_its_queue_with_an_index_scan);
	tcase_add_test(tc, a_commit_wakes_its_own_relay_long_before_its_poll_interval);
	tcase_add_test(tc, a_standby_instance_wakes_the_active_relay_with_notify);
	tcase_add_test(tc, one_relay_is_active_and_a_standby_takes_over);
#ifdef ES_FAULT_POINTS
	tcase_add_test(tc, relay_killed_between_publish_and_mark_republishes_and_inbox_dedupes);
#endif
	suite_add_tcase(s, tc);
	return es_test_run_with_db(s, &conninfo);
}
