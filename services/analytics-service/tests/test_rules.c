/*
 * Unit tests for analytics.c without a database: which read model each of
 * the contract's events feeds, and which events are dead-lettered before
 * the database is touched.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"
#include "es/events.h"
#include "es/log.h"

#define ORDER_ID "9b2f6c1e-4d3a-4f5b-8e7c-1a2b3c4d5e6f"

static struct es_event *event(const char *type, json_t *data)
{
	struct es_event *ev = es_event_new("test", type, ORDER_ID, NULL, NULL, data);

	ck_assert_ptr_nonnull(ev);
	return ev;
}

static struct es_event *placed(void)
{
	return event(ES_ORDER_PLACED,
		     json_pack("{s:s, s:s, s:s, s:[{s:s, s:i, s:i}], s:i, s:s, s:s}", "orderId",
			       ORDER_ID, "customerId", "c-1", "customerEmail", "a@example.com",
			       "items", "sku", "mug-classic", "quantity", 2, "unitPriceCents", 1299,
			       "totalCents", 2598, "currency", "EUR", "paymentToken", "tok_visa"));
}

static void assert_counter(struct es_event *ev, const char *family, const char *name)
{
	const char *f, *n;

	ck_assert_int_eq(analytics_effect_of(ev, &f, &n), ANALYTICS_COUNT);
	ck_assert_str_eq(f, family);
	ck_assert_str_eq(n, name);
	es_event_free(ev);
}

START_TEST(orders_topic_events_feed_the_order_row)
{
	const char *f, *n;
	struct es_event *ev = placed();

	ck_assert_int_eq(analytics_effect_of(ev, &f, &n), ANALYTICS_PLACE);
	ck_assert_ptr_null(f);
	es_event_free(ev);
	ev = event(ES_ORDER_CONFIRMED, json_pack("{s:s}", "orderId", ORDER_ID));
	ck_assert_int_eq(analytics_effect_of(ev, &f, &n), ANALYTICS_CONFIRM);
	es_event_free(ev);
	ev = event(ES_ORDER_CANCELLED, json_pack("{s:s}", "orderId", ORDER_ID));
	ck_assert_int_eq(analytics_effect_of(ev, &f, &n), ANALYTICS_CANCEL);
	es_event_free(ev);
}
END_TEST

START_TEST(other_topics_events_each_count_in_their_family)
{
	json_t *d = json_pack("{s:s}", "orderId", ORDER_ID);

	assert_counter(event(ES_PAYMENT_PROCESSED, json_deep_copy(d)), "payments", "processed");
	assert_counter(event(ES_PAYMENT_FAILED, json_deep_copy(d)), "payments", "failed");
	assert_counter(event(ES_PAYMENT_REFUNDED, json_deep_copy(d)), "payments", "refunded");
	assert_counter(event(ES_INVENTORY_RESERVED, json_deep_copy(d)), "reservations", "reserved");
	assert_counter(event(ES_INVENTORY_REJECTED, json_deep_copy(d)), "reservations", "rejected");
	assert_counter(event(ES_INVENTORY_RELEASED, json_deep_copy(d)), "reservations", "released");
	json_decref(d);
}
END_TEST

START_TEST(email_sent_counts_per_template)
{
	assert_counter(event(ES_EMAIL_SENT, json_pack("{s:s, s:s}", "orderId", ORDER_ID, "template",
						      "refund-issued")),
		       "emails", "refund-issued");
}
END_TEST

START_TEST(unknown_type_has_no_effect)
{
	const char *f = "x", *n = "x";
	struct es_event *ev = event("OrderShipped", json_pack("{s:s}", "orderId", ORDER_ID));

	ck_assert_int_eq(analytics_effect_of(ev, &f, &n), ANALYTICS_NONE);
	ck_assert_ptr_null(f);
	ck_assert_ptr_null(n);
	es_event_free(ev);
}
END_TEST

START_TEST(check_accepts_a_contract_event_and_reads_its_time)
{
	struct es_event *ev = placed();
	char reason[256];
	long long ms = 0;

	free(ev->time);
	ev->time = strdup("2026-01-02T03:04:05.678Z");
	ck_assert_int_eq(analytics_check(ev, &ms, reason, sizeof(reason)), 0);
	ck_assert_int_eq(ms, 1767323045678LL);
	es_event_free(ev);
}
END_TEST

START_TEST(check_rejects_unknown_type_bad_data_and_bad_time)
{
	struct es_event *ev = event("OrderShipped", json_pack("{s:s}", "orderId", ORDER_ID));
	char reason[256];
	long long ms;

	ck_assert_int_eq(analytics_check(ev, &ms, reason, sizeof(reason)), -1);
	ck_assert_msg(strstr(reason, "OrderShipped"), "%s", reason);
	es_event_free(ev);

	/* OrderPlaced without its lines. */
	ev = placed();
	json_object_del(ev->data, "items");
	ck_assert_int_eq(analytics_check(ev, &ms, reason, sizeof(reason)), -1);
	ck_assert_msg(strstr(reason, "/items"), "%s", reason);
	es_event_free(ev);

	/* A cancel reason outside the contract's values. */
	ev = event(ES_ORDER_CANCELLED,
		   json_pack("{s:s, s:s}", "orderId", ORDER_ID, "reason", "BORED"));
	ck_assert_int_eq(analytics_check(ev, &ms, reason, sizeof(reason)), -1);
	ck_assert_msg(strstr(reason, "/reason"), "%s", reason);
	es_event_free(ev);

	ev = placed();
	free(ev->time);
	ev->time = strdup("yesterday");
	ck_assert_int_eq(analytics_check(ev, &ms, reason, sizeof(reason)), -1);
	ck_assert_msg(strstr(reason, "time"), "%s", reason);
	es_event_free(ev);
}
END_TEST

START_TEST(handler_rejects_before_touching_the_database)
{
	/* db NULL: a handler that reached the database would crash. */
	struct analytics app = {.db = NULL};
	struct es_dispatch d = {.consumer = ANALYTICS_SERVICE,
				.db = NULL,
				.handlers = &analytics_handlers,
				.app = &app};
	struct es_event *ev = event("OrderShipped", json_pack("{s:s}", "orderId", ORDER_ID));
	char reason[256];

	ck_assert_int_eq(es_dispatch_one(&d, ev, reason, sizeof(reason)), ES_HANDLER_REJECT);
	ck_assert(!app.orders_changed);
	es_event_free(ev);

	ev = event(ES_EMAIL_SENT,
		   json_pack("{s:s, s:s}", "orderId", ORDER_ID, "template", "order-received"));
	ck_assert_int_eq(es_dispatch_one(&d, ev, reason, sizeof(reason)), ES_HANDLER_REJECT);
	ck_assert_msg(strstr(reason, "/to"), "%s", reason);
	es_event_free(ev);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("analytics rules");
	TCase *tc = tcase_create("rules");
	SRunner *sr;
	int failed;

	es_log_init("unit-analytics", ES_LOG_ERROR);
	tcase_add_test(tc, orders_topic_events_feed_the_order_row);
	tcase_add_test(tc, other_topics_events_each_count_in_their_family);
	tcase_add_test(tc, email_sent_counts_per_template);
	tcase_add_test(tc, unknown_type_has_no_effect);
	tcase_add_test(tc, check_accepts_a_contract_event_and_reads_its_time);
	tcase_add_test(tc, check_rejects_unknown_type_bad_data_and_bad_time);
	tcase_add_test(tc, handler_rejects_before_touching_the_database);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
