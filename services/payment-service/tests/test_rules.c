/*
 * Unit tests of payment-service's rules, without infrastructure: every row
 * of the contract's payment simulation (limit first, at its boundary), the
 * handler's answers that need no database (unknown types and malformed
 * data are rejected, OrderConfirmed needs nothing), and the outcome
 * counter's families.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "es/events.h"
#include "es/log.h"
#include "es/metrics.h"
#include "payment.h"

#define ORDER "0b6f2c9e-51d4-4e8a-9c1f-3a7d2e6b8f40"

struct row {
	const char *token;
	long long total_cents;
	enum payment_verdict verdict;
	const char *reason;
};

/* The contract's table, row by row, then the limit's precedence. */
static const struct row table[] = {
	{"tok_visa", 1299, PAYMENT_APPROVED, NULL},
	{"tok_mastercard", 1299, PAYMENT_APPROVED, NULL},
	{"tok_ok", 1299, PAYMENT_APPROVED, NULL},
	{"tok_ok_anything", 1299, PAYMENT_APPROVED, NULL},
	{"tok_okay", 1299, PAYMENT_APPROVED, NULL},
	{"tok_declined", 1299, PAYMENT_CARD_DECLINED, "CARD_DECLINED"},
	{"tok_insufficient_funds", 1299, PAYMENT_INSUFFICIENT_FUNDS, "INSUFFICIENT_FUNDS"},
	{"tok_amex", 1299, PAYMENT_CARD_DECLINED, "CARD_DECLINED"},
	{"tok_", 1299, PAYMENT_CARD_DECLINED, "CARD_DECLINED"},
	{"visa", 1299, PAYMENT_CARD_DECLINED, "CARD_DECLINED"},
	{"", 1299, PAYMENT_CARD_DECLINED, "CARD_DECLINED"},
	{NULL, 1299, PAYMENT_CARD_DECLINED, "CARD_DECLINED"},
	/* Near misses of the approved names are not approved. */
	{"TOK_VISA", 1299, PAYMENT_CARD_DECLINED, "CARD_DECLINED"},
	{"tok_visa ", 1299, PAYMENT_CARD_DECLINED, "CARD_DECLINED"},
	{"tok_o", 1299, PAYMENT_CARD_DECLINED, "CARD_DECLINED"},
	{"xtok_ok", 1299, PAYMENT_CARD_DECLINED, "CARD_DECLINED"},
	{"tok_insufficient_funds_x", 1299, PAYMENT_CARD_DECLINED, "CARD_DECLINED"},
	/* The limit: 500000 is still allowed, one cent more is not. */
	{"tok_visa", 500000, PAYMENT_APPROVED, NULL},
	{"tok_visa", 500001, PAYMENT_LIMIT_EXCEEDED, "LIMIT_EXCEEDED"},
	{"tok_mastercard", 500001, PAYMENT_LIMIT_EXCEEDED, "LIMIT_EXCEEDED"},
	{"tok_ok_big", 500001, PAYMENT_LIMIT_EXCEEDED, "LIMIT_EXCEEDED"},
	/* Above the limit the reason is the limit, whatever the token. */
	{"tok_declined", 500000, PAYMENT_CARD_DECLINED, "CARD_DECLINED"},
	{"tok_declined", 500001, PAYMENT_LIMIT_EXCEEDED, "LIMIT_EXCEEDED"},
	{"tok_insufficient_funds", 500000, PAYMENT_INSUFFICIENT_FUNDS, "INSUFFICIENT_FUNDS"},
	{"tok_insufficient_funds", 500001, PAYMENT_LIMIT_EXCEEDED, "LIMIT_EXCEEDED"},
	{"tok_unknown", 500001, PAYMENT_LIMIT_EXCEEDED, "LIMIT_EXCEEDED"},
	{NULL, 500001, PAYMENT_LIMIT_EXCEEDED, "LIMIT_EXCEEDED"},
	{"tok_visa", 9000000000LL, PAYMENT_LIMIT_EXCEEDED, "LIMIT_EXCEEDED"},
	/* Zero is within the limit. */
	{"tok_visa", 0, PAYMENT_APPROVED, NULL},
};

START_TEST(simulation_follows_the_contract_table)
{
	const struct row *r = &table[_i];
	enum payment_verdict v = payment_decide(r->token, r->total_cents);
	const char *reason = payment_verdict_reason(v);

	ck_assert_msg(v == r->verdict, "token %s, total %lld: verdict %d, expected %d",
		      r->token ? r->token : "(null)", r->total_cents, v, r->verdict);
	if (r->reason)
		ck_assert_str_eq(reason, r->reason);
	else
		ck_assert_ptr_null(reason);
}
END_TEST

START_TEST(limit_is_500000_cents)
{
	ck_assert_int_eq(PAYMENT_LIMIT_CENTS, 500000);
	ck_assert_int_eq(payment_decide("tok_visa", PAYMENT_LIMIT_CENTS), PAYMENT_APPROVED);
	ck_assert_int_eq(payment_decide("tok_visa", PAYMENT_LIMIT_CENTS + 1),
			 PAYMENT_LIMIT_EXCEEDED);
}
END_TEST

START_TEST(every_failure_reason_is_one_the_contract_allows)
{
	struct es_event *ev;
	char reason[256];

	/* Each reason must pass the PaymentFailed shape check consumers run. */
	for (int v = PAYMENT_CARD_DECLINED; v <= PAYMENT_LIMIT_EXCEEDED; v++) {
		ev = es_event_new(PAYMENT_SERVICE, ES_PAYMENT_FAILED, ORDER, NULL, NULL,
				  json_pack("{s:s, s:s, s:i, s:s}", "orderId", ORDER, "reason",
					    payment_verdict_reason((enum payment_verdict)v),
					    "amountCents", 1299, "currency", "EUR"));
		ck_assert_ptr_nonnull(ev);
		ck_assert_msg(es_event_data_check(ev, reason, sizeof(reason)) == 0, "%s", reason);
		es_event_free(ev);
	}
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The handler's answers that need no database (app.db is NULL: a test that */
/* reached the inbox would fail, not pass).                                 */
/* ------------------------------------------------------------------------ */

static enum es_handler_result handle(const char *type, json_t *data, char *reason, size_t size)
{
	struct payment_app app;
	struct es_event *ev = es_event_new("order-service", type, ORDER, NULL, NULL, data);
	enum es_handler_result r;

	ck_assert_ptr_nonnull(ev);
	payment_app_init(&app, "payments", 0);
	r = es_dispatch_one(&(struct es_dispatch){.consumer = PAYMENT_SERVICE,
						  .db = NULL,
						  .handlers = &payment_handlers,
						  .app = &app},
			    ev, reason, size);
	es_event_free(ev);
	return r;
}

START_TEST(unknown_type_is_rejected_with_its_name)
{
	char reason[256];

	ck_assert_int_eq(handle("OrderShipped", json_pack("{s:s}", "orderId", ORDER), reason,
				sizeof(reason)),
			 ES_HANDLER_REJECT);
	ck_assert_msg(strstr(reason, "OrderShipped"), "%s", reason);
}
END_TEST

START_TEST(malformed_order_placed_is_rejected_with_the_field)
{
	char reason[256];

	/* totalCents a string: can never be charged. */
	ck_assert_int_eq(handle(ES_ORDER_PLACED,
				json_pack("{s:s, s:s, s:s, s:[{s:s, s:i, s:i}], s:s, s:s, s:s}",
					  "orderId", ORDER, "customerId", "c1", "customerEmail",
					  "a@example.com", "items", "sku", "mug-classic",
					  "quantity", 1, "unitPriceCents", 1299, "totalCents",
					  "1299", "currency", "EUR", "paymentToken", "tok_visa"),
				reason, sizeof(reason)),
			 ES_HANDLER_REJECT);
	ck_assert_msg(strstr(reason, "totalCents"), "%s", reason);
}
END_TEST

START_TEST(malformed_order_cancelled_is_rejected)
{
	char reason[256];

	ck_assert_int_eq(handle(ES_ORDER_CANCELLED,
				json_pack("{s:s, s:s}", "orderId", ORDER, "reason", "BORED"),
				reason, sizeof(reason)),
			 ES_HANDLER_REJECT);
	ck_assert_msg(strstr(reason, "reason"), "%s", reason);
}
END_TEST

START_TEST(order_confirmed_needs_nothing)
{
	char reason[256];

	ck_assert_int_eq(
		handle(ES_ORDER_CONFIRMED,
		       json_pack("{s:s, s:s, s:s, s:i, s:s}", "orderId", ORDER, "paymentId", "p",
				 "reservationId", "r", "totalCents", 1299, "currency", "EUR"),
		       reason, sizeof(reason)),
		ES_HANDLER_OK);
}
END_TEST

START_TEST(outcome_counter_starts_at_zero_for_each_outcome)
{
	struct es_metrics *reg = es_metrics_new();
	struct payment_app app;
	char err[256], *text;

	payment_app_init(&app, "payments", 0);
	ck_assert_msg(payment_metrics_register(&app, reg, err, sizeof(err)) == 0, "%s", err);
	ck_assert_ptr_nonnull(app.counter);
	text = es_metrics_render(reg, NULL);
	ck_assert_ptr_nonnull(strstr(text, "# TYPE es_payments_total counter\n"));
	ck_assert_ptr_nonnull(strstr(text, "es_payments_total{outcome=\"charged\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(text, "es_payments_total{outcome=\"declined\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(text, "es_payments_total{outcome=\"refunded\"} 0\n"));
	free(text);
	es_metrics_free(reg);
}
END_TEST

/* The payment_decline_percent switch: 0 declines none, 100 all, and a
 * share in between picks the same orders every time. */
START_TEST(decline_switch_takes_its_share_of_orders_the_same_each_time)
{
	char id[ES_UUID_LEN + 1];
	int declined = 0;

	for (int i = 0; i < 1000; i++) {
		es_uuid_new(id);
		ck_assert(!payment_fault_declines(id, 0));
		ck_assert(payment_fault_declines(id, 100));
		if (payment_fault_declines(id, 30)) {
			declined++;
			ck_assert(payment_fault_declines(id, 30));
		}
	}
	ck_assert_int_gt(declined, 200);
	ck_assert_int_lt(declined, 400);
}
END_TEST

static Suite *rules_suite(void)
{
	Suite *s = suite_create("payment rules");
	TCase *sim = tcase_create("simulation");
	TCase *handler = tcase_create("handler");

	tcase_add_loop_test(sim, simulation_follows_the_contract_table, 0,
			    (int)(sizeof(table) / sizeof(table[0])));
	tcase_add_test(sim, limit_is_500000_cents);
	tcase_add_test(sim, every_failure_reason_is_one_the_contract_allows);
	tcase_add_test(sim, decline_switch_takes_its_share_of_orders_the_same_each_time);
	suite_add_tcase(s, sim);

	tcase_add_test(handler, unknown_type_is_rejected_with_its_name);
	tcase_add_test(handler, malformed_order_placed_is_rejected_with_the_field);
	tcase_add_test(handler, malformed_order_cancelled_is_rejected);
	tcase_add_test(handler, order_confirmed_needs_nothing);
	tcase_add_test(handler, outcome_counter_starts_at_zero_for_each_outcome);
	suite_add_tcase(s, handler);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rules_suite());
	int failures;

	es_log_init("test_payment_rules", ES_LOG_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
