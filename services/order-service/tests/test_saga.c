/* Unit tests for the saga's rule: confirm on both successes, cancel on the
 * first failure, never touch a terminal order. */
#include <check.h>

#include "es/events.h"
#include "order.h"

static enum saga_action decide(const char *status, bool paid, bool reserved, const char *type,
			       const char **reason)
{
	return order_saga_decide(status, paid, reserved, type, reason);
}

START_TEST(confirms_only_when_both_succeeded)
{
	const char *r;

	ck_assert_int_eq(decide("PENDING", false, false, ES_PAYMENT_PROCESSED, &r), SAGA_REMEMBER);
	ck_assert_int_eq(decide("PENDING", false, false, ES_INVENTORY_RESERVED, &r), SAGA_REMEMBER);
	ck_assert_int_eq(decide("PENDING", false, true, ES_PAYMENT_PROCESSED, &r), SAGA_CONFIRM);
	ck_assert_int_eq(decide("PENDING", true, false, ES_INVENTORY_RESERVED, &r), SAGA_CONFIRM);
	ck_assert_ptr_null(r);
}
END_TEST

START_TEST(first_failure_cancels_with_its_reason)
{
	const char *r;

	ck_assert_int_eq(decide("PENDING", false, true, ES_PAYMENT_FAILED, &r), SAGA_CANCEL);
	ck_assert_str_eq(r, "PAYMENT_DECLINED");
	ck_assert_int_eq(decide("PENDING", true, false, ES_INVENTORY_REJECTED, &r), SAGA_CANCEL);
	ck_assert_str_eq(r, "OUT_OF_STOCK");
}
END_TEST

START_TEST(terminal_orders_never_change)
{
	static const char *const types[] = {ES_PAYMENT_PROCESSED,  ES_PAYMENT_FAILED,
					    ES_INVENTORY_RESERVED, ES_INVENTORY_REJECTED,
					    ES_PAYMENT_REFUNDED,   ES_INVENTORY_RELEASED};
	const char *r;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		ck_assert_int_eq(decide("CONFIRMED", true, true, types[i], &r), SAGA_NOTHING);
		ck_assert_int_eq(decide("CANCELLED", false, false, types[i], &r), SAGA_NOTHING);
	}
}
END_TEST

START_TEST(compensations_are_only_recorded)
{
	const char *r;

	ck_assert_int_eq(decide("PENDING", true, false, ES_PAYMENT_REFUNDED, &r), SAGA_NOTHING);
	ck_assert_int_eq(decide("PENDING", false, true, ES_INVENTORY_RELEASED, &r), SAGA_NOTHING);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("order.saga");
	TCase *tc = tcase_create("decide");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, confirms_only_when_both_succeeded);
	tcase_add_test(tc, first_failure_cancels_with_its_reason);
	tcase_add_test(tc, terminal_orders_never_change);
	tcase_add_test(tc, compensations_are_only_recorded);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
