/*
 * Integration tests for inbox.c against a real PostgreSQL (DATABASE_URL):
 * the idempotent consumer claims each event exactly once, also when the
 * claiming transaction rolls back and when two consumers race.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "es/db.h"
#include "es/inbox.h"
#include "es/log.h"
#include "testsupport.h"

#define CONSUMER "payment-service"

static const char *test_conninfo;

static struct es_db *connect_schema(const char *schema)
{
	return es_test_connect(test_conninfo, schema);
}

/* Connects to a new schema with the inbox table in it. */
static struct es_db *connect_migrated(char *schema, size_t size)
{
	char errstr[512];
	struct es_db *db;

	ck_assert_int_eq(es_test_unique_name(schema, size, "s"), 0);
	db = connect_schema(schema);
	ck_assert_msg(es_db_migrate(db, NULL, errstr, sizeof(errstr)) >= 0, "%s", errstr);
	return db;
}

/* One event's claim, as most of these tests make them. */
enum claim {
	CLAIM_NEW,
	CLAIM_DUPLICATE,
	CLAIM_ERROR,
};

static enum claim claim(struct es_db *db, const char *consumer, const char *event_id,
			const char *type, char *errstr, size_t errstr_size)
{
	const char *ids[1] = {event_id}, *types[1] = {type};
	bool is_new;
	long n;

	/* No Check assertions: the race tests call this in threads. */
	n = es_inbox_claim(db, consumer, 1, ids, types, &is_new, errstr, errstr_size);
	if (n < 0 || n != (is_new ? 1 : 0))
		return CLAIM_ERROR;
	return is_new ? CLAIM_NEW : CLAIM_DUPLICATE;
}

static long inbox_count(struct es_db *db, const char *consumer)
{
	char errstr[512];
	long n = es_inbox_count(db, consumer, errstr, sizeof(errstr));

	ck_assert_msg(n >= 0, "%s", errstr);
	return n;
}

/* Claims event_id in a transaction of its own and commits. */
static enum claim claim_committed(struct es_db *db, const char *consumer, const char *event_id)
{
	enum claim r;
	char errstr[512];

	ck_assert_msg(es_db_begin(db, errstr, sizeof(errstr)) == 0, "%s", errstr);
	r = claim(db, consumer, event_id, "OrderPlaced", errstr, sizeof(errstr));
	ck_assert_msg(r != CLAIM_ERROR, "%s", errstr);
	ck_assert_msg(es_db_commit(db, errstr, sizeof(errstr)) == 0, "%s", errstr);
	return r;
}

START_TEST(first_claim_is_new_and_redelivery_is_duplicate)
{
	char schema[64];
	struct es_db *db = connect_migrated(schema, sizeof(schema));

	ck_assert_int_eq(claim_committed(db, CONSUMER, "evt-1"), CLAIM_NEW);
	ck_assert_int_eq(claim_committed(db, CONSUMER, "evt-1"), CLAIM_DUPLICATE);
	ck_assert_int_eq(claim_committed(db, CONSUMER, "evt-1"), CLAIM_DUPLICATE);
	ck_assert_int_eq(inbox_count(db, CONSUMER), 1);

	/* Each consumer keeps its own record of the same event. */
	ck_assert_int_eq(claim_committed(db, "email-service", "evt-1"), CLAIM_NEW);
	ck_assert_int_eq(claim_committed(db, CONSUMER, "evt-2"), CLAIM_NEW);
	ck_assert_int_eq(inbox_count(db, CONSUMER), 2);
	ck_assert_int_eq(inbox_count(db, "email-service"), 1);
	ck_assert_int_eq(inbox_count(db, "nobody"), 0);
	es_db_free(db);
}
END_TEST

START_TEST(duplicate_claim_keeps_the_transaction_usable)
{
	char schema[64], errstr[512];
	struct es_db *db = connect_migrated(schema, sizeof(schema));

	ck_assert_int_eq(claim_committed(db, CONSUMER, "evt-1"), CLAIM_NEW);
	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(claim(db, CONSUMER, "evt-1", NULL, errstr, sizeof(errstr)),
			 CLAIM_DUPLICATE);
	/* No unique violation was raised, so the handler may go on. */
	ck_assert_int_eq(claim(db, CONSUMER, "evt-2", NULL, errstr, sizeof(errstr)), CLAIM_NEW);
	ck_assert_msg(es_db_commit(db, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_int_eq(inbox_count(db, CONSUMER), 2);
	es_db_free(db);
}
END_TEST

START_TEST(claim_in_rolled_back_transaction_leaves_no_row)
{
	char schema[64], errstr[512];
	struct es_db *db = connect_migrated(schema, sizeof(schema));

	/* The handler's effect failed after the claim: everything goes. */
	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(claim(db, CONSUMER, "evt-1", "OrderPlaced", errstr, sizeof(errstr)),
			 CLAIM_NEW);
	es_db_rollback(db);
	ck_assert_int_eq(inbox_count(db, CONSUMER), 0);

	/* So the redelivery is processed as the first delivery. */
	ck_assert_int_eq(claim_committed(db, CONSUMER, "evt-1"), CLAIM_NEW);
	ck_assert_int_eq(inbox_count(db, CONSUMER), 1);
	es_db_free(db);
}
END_TEST

START_TEST(claim_outside_a_transaction_is_refused)
{
	char schema[64], errstr[512];
	struct es_db *db = connect_migrated(schema, sizeof(schema));

	ck_assert_int_eq(claim(db, CONSUMER, "evt-1", NULL, errstr, sizeof(errstr)), CLAIM_ERROR);
	ck_assert_msg(strstr(errstr, "outside a transaction"), "%s", errstr);
	ck_assert_int_eq(inbox_count(db, CONSUMER), 0);
	es_db_free(db);
}
END_TEST

START_TEST(claim_rejects_empty_ids_and_keeps_metacharacters_as_data)
{
	const char *odd = "evt'); DELETE FROM es_inbox; --";
	char schema[64], errstr[512];
	struct es_db *db = connect_migrated(schema, sizeof(schema));

	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(claim(db, CONSUMER, "", NULL, errstr, sizeof(errstr)), CLAIM_ERROR);
	ck_assert_int_eq(claim(db, NULL, "evt-1", NULL, errstr, sizeof(errstr)), CLAIM_ERROR);
	ck_assert_int_eq(claim(db, CONSUMER, "evt-1", NULL, errstr, sizeof(errstr)), CLAIM_NEW);
	ck_assert_int_eq(claim(db, CONSUMER, odd, NULL, errstr, sizeof(errstr)), CLAIM_NEW);
	ck_assert_msg(es_db_commit(db, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_int_eq(inbox_count(db, CONSUMER), 2);
	ck_assert_int_eq(claim_committed(db, CONSUMER, odd), CLAIM_DUPLICATE);
	es_db_free(db);
}
END_TEST

/* A batch's claim: one statement, redeliveries and repeats inside the batch
 * recognised, each id new at its first occurrence only. */
START_TEST(batch_claim_knows_redeliveries_and_repeats_in_one_statement)
{
	const char *ids[6] = {"evt-old", "evt-a", "evt-b", "evt-a", "evt-old", "evt-c"};
	const bool want[6] = {false, true, true, false, false, true};
	char schema[64], errstr[512];
	struct es_db *db = connect_migrated(schema, sizeof(schema));
	bool is_new[6];

	ck_assert_int_eq(claim_committed(db, CONSUMER, "evt-old"), CLAIM_NEW);
	ck_assert_int_eq(es_db_begin(db, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(es_inbox_claim(db, CONSUMER, 6, ids, NULL, is_new, errstr, sizeof(errstr)),
			 3);
	for (int i = 0; i < 6; i++)
		ck_assert_msg(is_new[i] == want[i], "%s at %d", ids[i], i);
	/* An event rejected after its claim is forgotten with its effect. */
	ck_assert_int_eq(es_inbox_forget(db, CONSUMER, "evt-b", errstr, sizeof(errstr)), 0);
	ck_assert_msg(es_db_commit(db, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_int_eq(inbox_count(db, CONSUMER), 3);
	ck_assert_int_eq(claim_committed(db, CONSUMER, "evt-b"), CLAIM_NEW);
	es_db_free(db);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Two consumers racing for one event                                       */
/* ------------------------------------------------------------------------ */

struct claimer {
	struct es_db *db;
	const char *event_id;
	enum claim result;
	char errstr[512];
};

/* Begins, claims and commits; no Check assertions in threads. */
static void *claimer_main(void *arg)
{
	struct claimer *c = arg;

	c->result = CLAIM_ERROR;
	if (es_db_begin(c->db, c->errstr, sizeof(c->errstr)))
		return NULL;
	c->result = claim(c->db, CONSUMER, c->event_id, "OrderPlaced", c->errstr,
			  sizeof(c->errstr));
	if (c->result == CLAIM_ERROR || es_db_commit(c->db, c->errstr, sizeof(c->errstr))) {
		c->result = CLAIM_ERROR;
		es_db_rollback(c->db);
	}
	return NULL;
}

/*
 * A claims and holds its transaction open; B claims the same event and must
 * wait for A. Then A finishes (commit or rollback) and B's answer follows.
 */
static enum claim race_against_open_claim(bool first_commits)
{
	char schema[64], errstr[512];
	struct es_db *a = connect_migrated(schema, sizeof(schema));
	struct es_db *b = connect_schema(schema);
	struct es_db *observer = connect_schema(schema);
	struct claimer cb = {.db = b, .event_id = "evt-race"};
	struct es_test_lock_wait blocked = {.observer = observer, .pid = es_db_backend_pid(b)};
	pthread_t tid;

	ck_assert_int_eq(es_db_begin(a, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(claim(a, CONSUMER, "evt-race", NULL, errstr, sizeof(errstr)), CLAIM_NEW);
	ck_assert_int_eq(pthread_create(&tid, NULL, claimer_main, &cb), 0);
	ck_assert_msg(es_test_wait_until(es_test_waits_on_lock, &blocked, 10000),
		      "the second claim should wait for the first transaction");
	if (first_commits)
		ck_assert_msg(es_db_commit(a, errstr, sizeof(errstr)) == 0, "%s", errstr);
	else
		es_db_rollback(a);
	pthread_join(tid, NULL);

	ck_assert_msg(cb.result != CLAIM_ERROR, "%s", cb.errstr);
	ck_assert_int_eq(inbox_count(observer, CONSUMER), 1);
	es_db_free(observer);
	es_db_free(b);
	es_db_free(a);
	return cb.result;
}

START_TEST(claim_racing_a_committed_claim_is_duplicate)
{
	ck_assert_int_eq(race_against_open_claim(true), CLAIM_DUPLICATE);
}
END_TEST

START_TEST(claim_racing_a_rolled_back_claim_is_new)
{
	ck_assert_int_eq(race_against_open_claim(false), CLAIM_NEW);
}
END_TEST

START_TEST(concurrent_claims_of_one_event_make_exactly_one_new)
{
	enum { CLAIMERS = 4, EVENTS = 25 };
	char schema[64];
	struct es_db *db = connect_migrated(schema, sizeof(schema));
	struct es_db *conns[CLAIMERS];

	for (int i = 0; i < CLAIMERS; i++)
		conns[i] = connect_schema(schema);
	for (int e = 0; e < EVENTS; e++) {
		struct claimer c[CLAIMERS];
		pthread_t tid[CLAIMERS];
		char event_id[32];
		int news = 0;

		snprintf(event_id, sizeof(event_id), "evt-%d", e);
		for (int i = 0; i < CLAIMERS; i++) {
			c[i] = (struct claimer){.db = conns[i], .event_id = event_id};
			ck_assert_int_eq(pthread_create(&tid[i], NULL, claimer_main, &c[i]), 0);
		}
		for (int i = 0; i < CLAIMERS; i++)
			pthread_join(tid[i], NULL);
		for (int i = 0; i < CLAIMERS; i++) {
			ck_assert_msg(c[i].result != CLAIM_ERROR, "%s", c[i].errstr);
			news += c[i].result == CLAIM_NEW;
		}
		ck_assert_int_eq(news, 1);
	}
	ck_assert_int_eq(inbox_count(db, CONSUMER), EVENTS);
	for (int i = 0; i < CLAIMERS; i++)
		es_db_free(conns[i]);
	es_db_free(db);
}
END_TEST

static Suite *inbox_suite(void)
{
	Suite *s = suite_create("inbox (PostgreSQL)");
	TCase *claim = tcase_create("claim");
	TCase *race = tcase_create("race");

	tcase_add_test(claim, first_claim_is_new_and_redelivery_is_duplicate);
	tcase_add_test(claim, duplicate_claim_keeps_the_transaction_usable);
	tcase_add_test(claim, claim_in_rolled_back_transaction_leaves_no_row);
	tcase_add_test(claim, claim_outside_a_transaction_is_refused);
	tcase_add_test(claim, claim_rejects_empty_ids_and_keeps_metacharacters_as_data);
	tcase_add_test(claim, batch_claim_knows_redeliveries_and_repeats_in_one_statement);
	suite_add_tcase(s, claim);

	tcase_add_test(race, claim_racing_a_committed_claim_is_duplicate);
	tcase_add_test(race, claim_racing_a_rolled_back_claim_is_new);
	tcase_add_test(race, concurrent_claims_of_one_event_make_exactly_one_new);
	tcase_set_timeout(race, 60);
	suite_add_tcase(s, race);
	return s;
}

int main(void)
{
	if (!es_test_database_url())
		return ES_TEST_SKIP;
	es_log_init("it_inbox", ES_LOG_WARN);
	return es_test_run_with_db(inbox_suite(), &test_conninfo);
}
