/*
 * Integration tests for retention.c against a real PostgreSQL
 * (DATABASE_URL): old published outbox rows and old inbox rows go, in
 * bounded batches; unpublished rows and rows inside the window stay, so a
 * redelivery inside the window is still recognised.
 *
 * Rows are aged by moving their timestamps back, not by waiting.
 */
#include <stdio.h>

#include <check.h>

#include "es/db.h"
#include "es/inbox.h"
#include "es/log.h"
#include "es/retention.h"
#include "testsupport.h"

#define CONNECT_TIMEOUT_MS 10000
#define CONSUMER "payment-service"
#define HOUR 3600L

static const char *test_conninfo;

static struct es_db *connect_migrated(void)
{
	char schema[64], errstr[512];
	struct es_db *db;

	ck_assert_int_eq(es_test_unique_name(schema, sizeof(schema), "s"), 0);
	db = es_db_connect(test_conninfo, schema, CONNECT_TIMEOUT_MS, errstr, sizeof(errstr));
	ck_assert_msg(db, "connect to schema %s: %s", schema, errstr);
	ck_assert_msg(es_db_migrate(db, NULL, errstr, sizeof(errstr)) >= 0, "%s", errstr);
	return db;
}

static void exec(struct es_db *db, const char *sql, int nparams, const char *const *params)
{
	char errstr[512];

	ck_assert_msg(es_db_exec(db, sql, nparams, params, errstr, sizeof(errstr)) >= 0, "%s: %s",
		      sql, errstr);
}

/* Claims event_id in a transaction of its own: true when it was new. */
static bool claim(struct es_db *db, const char *event_id)
{
	const char *ids[1] = {event_id}, *types[1] = {"OrderPlaced"};
	char errstr[512];
	bool is_new;

	ck_assert_msg(es_db_begin(db, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_msg(
		es_inbox_claim(db, CONSUMER, 1, ids, types, &is_new, errstr, sizeof(errstr)) >= 0,
		"%s", errstr);
	ck_assert_msg(es_db_commit(db, errstr, sizeof(errstr)) == 0, "%s", errstr);
	return is_new;
}

/* Moves the inbox row of event_id `hours` back in time. */
static void age_inbox(struct es_db *db, const char *event_id, const char *hours)
{
	exec(db,
	     "UPDATE es_inbox SET processed_at = now() - make_interval(hours => $2::int) "
	     "WHERE event_id = $1",
	     2, (const char *const[]){event_id, hours});
}

/* An outbox row; published `hours` ago, or not published when NULL. */
static void outbox_row(struct es_db *db, const char *event_id, const char *hours)
{
	exec(db,
	     "INSERT INTO es_outbox (topic, msg_key, event_id, event_type, payload, "
	     "published_at) VALUES ('orders', 'k', $1, 'OrderPlaced', '{}', "
	     "now() - make_interval(hours => $2::int))",
	     2, (const char *const[]){event_id, hours});
}

static long count(struct es_db *db, const char *sql)
{
	return es_test_count(db, sql, 0, NULL);
}

static struct es_retention_report prune(struct es_db *db, long inbox_keep_s, long outbox_keep_s,
					long batch, long budget_ms)
{
	struct es_retention_config cfg = {inbox_keep_s, outbox_keep_s, batch, budget_ms};
	struct es_retention_report rep;
	char errstr[512];

	ck_assert_msg(es_retention_prune(db, &cfg, &rep, errstr, sizeof(errstr)) == 0, "%s",
		      errstr);
	return rep;
}

START_TEST(redelivery_inside_the_window_is_still_a_duplicate)
{
	struct es_db *db = connect_migrated();
	struct es_retention_report rep;

	ck_assert(claim(db, "evt-recent"));
	ck_assert(claim(db, "evt-old"));
	age_inbox(db, "evt-recent", "23");
	age_inbox(db, "evt-old", "25");

	rep = prune(db, 24 * HOUR, HOUR, 100, 1000);
	ck_assert_int_eq(rep.inbox, 1);
	ck_assert_int_eq(rep.caught_up, 1);
	/* Inside the window: the redelivery is recognised, no second effect. */
	ck_assert(!claim(db, "evt-recent"));
	/* Outside it the row is gone: that is why the window must outlast the
	 * topic's retention (es/retention.h). */
	ck_assert_int_eq(count(db, "SELECT count(*) AS n FROM es_inbox WHERE event_id = 'evt-old'"),
			 0);
	es_db_free(db);
}
END_TEST

START_TEST(only_published_outbox_rows_past_the_window_go)
{
	struct es_db *db = connect_migrated();
	struct es_retention_report rep;

	outbox_row(db, "old-published", "2");
	outbox_row(db, "new-published", "0");
	exec(db,
	     "INSERT INTO es_outbox (topic, msg_key, event_id, event_type, payload) "
	     "VALUES ('orders', 'k', 'unpublished', 'OrderPlaced', '{}')",
	     0, NULL);
	exec(db, "UPDATE es_outbox SET created_at = now() - interval '3 hours'", 0, NULL);

	rep = prune(db, 24 * HOUR, HOUR, 100, 1000);
	ck_assert_int_eq(rep.outbox, 1);
	ck_assert_int_eq(count(db, "SELECT count(*) AS n FROM es_outbox WHERE event_id IN "
				   "('new-published', 'unpublished')"),
			 2);
	es_db_free(db);
}
END_TEST

START_TEST(batches_are_bounded_and_a_later_pass_goes_on)
{
	struct es_db *db = connect_migrated();
	struct es_retention_report rep;

	for (int i = 0; i < 12; i++) {
		char id[32];

		snprintf(id, sizeof(id), "evt-%d", i);
		ck_assert(claim(db, id));
	}
	exec(db, "UPDATE es_inbox SET processed_at = now() - interval '2 days'", 0, NULL);

	/* A budget of 0 ms: one batch of 5, then the pass yields. */
	rep = prune(db, 24 * HOUR, HOUR, 5, 0);
	ck_assert_int_eq(rep.inbox, 5);
	ck_assert_int_eq(rep.caught_up, 0);
	ck_assert_int_eq(count(db, "SELECT count(*) AS n FROM es_inbox"), 7);
	rep = prune(db, 24 * HOUR, HOUR, 5, 1000);
	ck_assert_int_eq(rep.inbox, 7);
	ck_assert_int_eq(rep.caught_up, 1);
	ck_assert_int_eq(count(db, "SELECT count(*) AS n FROM es_inbox"), 0);
	es_db_free(db);
}
END_TEST

START_TEST(zero_keeps_everything)
{
	struct es_db *db = connect_migrated();
	struct es_retention_report rep;

	ck_assert(claim(db, "evt-1"));
	age_inbox(db, "evt-1", "10000");
	outbox_row(db, "old-published", "10000");
	rep = prune(db, 0, 0, 100, 1000);
	ck_assert_int_eq(rep.inbox + rep.outbox, 0);
	ck_assert_int_eq(rep.caught_up, 1);
	ck_assert_int_eq(count(db, "SELECT count(*) AS n FROM es_inbox"), 1);
	es_db_free(db);
}
END_TEST

static Suite *retention_suite(void)
{
	Suite *s = suite_create("retention");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, redelivery_inside_the_window_is_still_a_duplicate);
	tcase_add_test(tc, only_published_outbox_rows_past_the_window_go);
	tcase_add_test(tc, batches_are_bounded_and_a_later_pass_goes_on);
	tcase_add_test(tc, zero_keeps_everything);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (!es_test_database_url())
		return ES_TEST_SKIP;
	es_log_init("it_retention", ES_LOG_WARN);
	return es_test_run_with_db(retention_suite(), &test_conninfo);
}
