/*
 * Unit tests for outbox: the relay's configuration and its gauges before
 * it has a database. Publishing, marking, the LISTEN wake-up, the relay
 * lock and the crash between publish and mark are tested against the real
 * broker and database in tests/integration/it_outbox.c.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "es/envelope.h"
#include "es/log.h"
#include "es/metrics.h"
#include "es/outbox.h"

START_TEST(a_new_relay_is_idle_with_an_unknown_backlog)
{
	struct es_relay_config cfg = {
		.conninfo = "postgresql://127.0.0.1:1/none",
		.schema = "orders",
		.bootstrap = "127.0.0.1:1",
		.service = "order-service",
	};
	struct es_metrics *reg = es_metrics_new();
	struct es_relay *r;
	char err[256], *text;

	r = es_relay_new(&cfg, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	ck_assert_int_eq(es_relay_backlog(r), -1);
	ck_assert(!es_relay_active(r));
	ck_assert(!es_relay_failed(r));
	ck_assert_uint_eq(es_relay_published(r), 0);

	ck_assert_int_eq(es_relay_register_gauges(r, reg, err, sizeof(err)), 0);
	text = es_metrics_render(reg, NULL);
	/* An unknown backlog is left out rather than reported as 0. */
	ck_assert_ptr_null(strstr(text, "\nes_outbox_backlog "));
	ck_assert_ptr_nonnull(strstr(text, "\nes_outbox_relay_active 0\n"));
	free(text);
	/* The same gauges cannot be registered twice in one registry. */
	ck_assert_int_eq(es_relay_register_gauges(r, reg, err, sizeof(err)), -1);

	es_relay_free(r); /* never started: nothing to join */
	es_metrics_free(reg);
}
END_TEST

START_TEST(relay_without_a_database_is_never_active_and_frees_cleanly)
{
	struct es_relay_config cfg = {
		.conninfo = "host=127.0.0.1 port=1 dbname=none connect_timeout=1",
		.schema = "orders",
		.bootstrap = "127.0.0.1:1",
		.service = "order-service",
		.poll_interval_ms = 50,
	};
	char err[256];
	struct es_relay *r = es_relay_new(&cfg, err, sizeof(err));

	ck_assert_msg(r != NULL, "%s", err);
	ck_assert_msg(es_relay_start(r, err, sizeof(err)) == 0, "%s", err);
	ck_assert(!es_relay_active(r));
	ck_assert(!es_relay_failed(r));
	es_relay_free(r);
}
END_TEST

/* An event Kafka would refuse never gets into the outbox, where the relay
 * would retry it forever: es_outbox_put says why before any SQL (so no
 * database is needed here). */
START_TEST(an_event_larger_than_message_max_bytes_is_refused)
{
	struct es_event *ev;
	char errstr[256], *big = malloc(1100 * 1000);

	ck_assert_ptr_nonnull(big);
	memset(big, 'x', 1100 * 1000 - 1);
	big[1100 * 1000 - 1] = '\0';
	ev = es_event_new("unit", "OrderPlaced", "7d1e4c2a-9b3f-4e6d-8a5c-1f2e3d4c5b6a", NULL, NULL,
			  json_pack("{s:s}", "note", big));
	free(big);
	ck_assert_ptr_nonnull(ev);
	unsetenv("KAFKA_MESSAGE_MAX_BYTES");
	ck_assert_int_eq(es_outbox_put(NULL, "orders", ev, errstr, sizeof(errstr)), -1);
	ck_assert_msg(strstr(errstr, "too large for Kafka") && strstr(errstr, "1000000"), "%s",
		      errstr);
	es_event_free(ev);

	/* The limit is the producer's: KAFKA_MESSAGE_MAX_BYTES when set. */
	ev = es_event_new("unit", "OrderPlaced", "7d1e4c2a-9b3f-4e6d-8a5c-1f2e3d4c5b6a", NULL, NULL,
			  json_pack("{s:s}", "note", "a few hundred bytes with the envelope"));
	ck_assert_ptr_nonnull(ev);
	setenv("KAFKA_MESSAGE_MAX_BYTES", "1000", 1);
	ck_assert_int_eq(es_outbox_put(NULL, "orders", ev, errstr, sizeof(errstr)), -1);
	ck_assert_msg(strstr(errstr, "message.max.bytes is 1000 "), "%s", errstr);
	unsetenv("KAFKA_MESSAGE_MAX_BYTES");
	es_event_free(ev);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("outbox");
	TCase *tc = tcase_create("relay");
	SRunner *sr;
	int failed;

	es_log_init("unit-outbox", ES_LOG_ERROR);
	tcase_add_test(tc, a_new_relay_is_idle_with_an_unknown_backlog);
	tcase_add_test(tc, relay_without_a_database_is_never_active_and_frees_cleanly);
	tcase_add_test(tc, an_event_larger_than_message_max_bytes_is_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
