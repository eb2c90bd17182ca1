/*
 * Unit tests for stats.c without a database: the JSON GET /stats answers
 * for given figures, and the number parsing of PostgreSQL's output.
 */
#include <check.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "es/log.h"
#include "stats.h"

/* Compares body with the JSON text want, printing both when they differ. */
static void assert_json(json_t *body, const char *want)
{
	json_error_t jerr;
	json_t *expected = json_loads(want, 0, &jerr);
	char *got;

	ck_assert_msg(expected, "bad expected JSON: %s", jerr.text);
	ck_assert_ptr_nonnull(body);
	got = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	ck_assert_msg(json_equal(body, expected), "got %s\nwant %s", got, want);
	free(got);
	json_decref(expected);
	json_decref(body);
}

START_TEST(empty_read_model_gives_zeros_and_null_latency)
{
	struct analytics_stats st;

	memset(&st, 0, sizeof(st));
	assert_json(analytics_stats_json(&st),
		    "{\"orders\":{\"placed\":0,\"confirmed\":0,\"cancelled\":0,\"pending\":0},"
		    "\"revenueCents\":0,\"cancelReasons\":{},\"topProducts\":[],"
		    "\"sagaLatencyMs\":{\"p50\":null,\"p95\":null,\"p99\":null},"
		    "\"payments\":{\"processed\":0,\"failed\":0,\"refunded\":0},"
		    "\"reservations\":{\"reserved\":0,\"rejected\":0,\"released\":0},"
		    "\"emails\":{},"
		    "\"shipments\":{\"created\":0,\"dispatched\":0,\"delivered\":0,\"cancelled\":0,"
		    "\"deliveryMs\":{\"p50\":null,\"p95\":null,\"p99\":null}}}");
}
END_TEST

static char *dup(const char *s)
{
	char *p = strdup(s);

	ck_assert_ptr_nonnull(p);
	return p;
}

START_TEST(figures_become_the_contract_fields_in_order)
{
	struct analytics_stats st;

	memset(&st, 0, sizeof(st));
	st.orders = (struct analytics_order_counts){6, 3, 2, 1};
	st.revenue_cents = 12345;
	st.reasons[st.nreasons++] = (struct analytics_count){dup("OUT_OF_STOCK"), 1};
	st.reasons[st.nreasons++] = (struct analytics_count){dup("PAYMENT_DECLINED"), 1};
	st.top[st.ntop++] = (struct analytics_count){dup("mug-classic"), 4};
	st.top[st.ntop++] = (struct analytics_count){dup("hoodie-eda"), 1};
	st.has_latency = true;
	st.p50_ms = 300;
	st.p95_ms = 500;
	st.p99_ms = 500;
	st.payments_processed = 4;
	st.payments_failed = 1;
	st.payments_refunded = 1;
	st.reservations_reserved = 4;
	st.reservations_rejected = 1;
	st.reservations_released = 1;
	st.emails[st.nemails++] = (struct analytics_count){dup("order-received"), 6};
	st.shipments_created = 3;
	st.shipments_dispatched = 2;
	st.shipments_delivered = 1;
	st.has_delivery = true;
	st.delivery_p50_ms = st.delivery_p95_ms = st.delivery_p99_ms = 4000;
	assert_json(analytics_stats_json(&st),
		    "{\"orders\":{\"placed\":6,\"confirmed\":3,\"cancelled\":2,\"pending\":1},"
		    "\"revenueCents\":12345,"
		    "\"cancelReasons\":{\"OUT_OF_STOCK\":1,\"PAYMENT_DECLINED\":1},"
		    "\"topProducts\":[{\"sku\":\"mug-classic\",\"quantity\":4},"
		    "{\"sku\":\"hoodie-eda\",\"quantity\":1}],"
		    "\"sagaLatencyMs\":{\"p50\":300,\"p95\":500,\"p99\":500},"
		    "\"payments\":{\"processed\":4,\"failed\":1,\"refunded\":1},"
		    "\"reservations\":{\"reserved\":4,\"rejected\":1,\"released\":1},"
		    "\"emails\":{\"order-received\":6},"
		    "\"shipments\":{\"created\":3,\"dispatched\":2,\"delivered\":1,\"cancelled\":0,"
		    "\"deliveryMs\":{\"p50\":4000,\"p95\":4000,\"p99\":4000}}}");
	analytics_stats_release(&st);
	ck_assert_uint_eq(st.nreasons + st.ntop + st.nemails, 0);
}
END_TEST

START_TEST(zero_latency_is_a_value_not_null)
{
	struct analytics_stats st;
	json_t *body;

	memset(&st, 0, sizeof(st));
	st.has_latency = true;
	body = analytics_stats_json(&st);
	ck_assert(json_is_integer(json_object_get(json_object_get(body, "sagaLatencyMs"), "p99")));
	json_decref(body);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("analytics stats");
	TCase *tc = tcase_create("json");
	SRunner *sr;
	int failed;

	es_log_init("unit-analytics", ES_LOG_ERROR);
	tcase_add_test(tc, empty_read_model_gives_zeros_and_null_latency);
	tcase_add_test(tc, figures_become_the_contract_fields_in_order);
	tcase_add_test(tc, zero_latency_is_a_value_not_null);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
