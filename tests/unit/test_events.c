/* Unit tests for events: each event type's data shape, as the contract
 * gives it, and the reasons given for what does not fit. */
#include <check.h>
#include <string.h>

#include "es/events.h"

#define ORDER "5c1a2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

static int check_data(const char *type, json_t *data, char *err, size_t size)
{
	struct es_event *ev = es_event_new("unit", type, ORDER, NULL, NULL, data);
	int rc = es_event_data_check(ev, err, size);

	es_event_free(ev);
	return rc;
}

START_TEST(every_contract_event_passes_with_its_fields)
{
	char err[256];

	ck_assert_msg(check_data(ES_ORDER_PLACED,
				 json_pack("{s:s,s:s,s:s,s:[{s:s,s:i,s:i}],s:i,s:s,s:s}", "orderId",
					   ORDER, "customerId", "c", "customerEmail", "a@b.co",
					   "items", "sku", "mug-classic", "quantity", 1,
					   "unitPriceCents", 1299, "totalCents", 1299, "currency",
					   "EUR", "paymentToken", "tok_visa"),
				 err, sizeof(err)) == 0,
		      "%s", err);
	ck_assert_msg(check_data(ES_ORDER_CANCELLED,
				 json_pack("{s:s,s:s,s:s}", "orderId", ORDER, "reason", "TIMEOUT",
					   "detail", "late"),
				 err, sizeof(err)) == 0,
		      "%s", err);
	ck_assert_msg(
		check_data(ES_PAYMENT_FAILED,
			   json_pack("{s:s,s:s,s:i,s:s}", "orderId", ORDER, "reason",
				     "LIMIT_EXCEEDED", "amountCents", 600000, "currency", "EUR"),
			   err, sizeof(err)) == 0,
		"%s", err);
	ck_assert_msg(check_data(ES_INVENTORY_REJECTED,
				 json_pack("{s:s,s:s,s:[{s:s,s:i,s:i}]}", "orderId", ORDER,
					   "reason", "OUT_OF_STOCK", "items", "sku",
					   "poster-limited", "requested", 6, "available", 5),
				 err, sizeof(err)) == 0,
		      "%s", err);
	ck_assert_msg(check_data(ES_EMAIL_SENT,
				 json_pack("{s:s,s:s,s:s,s:s}", "orderId", ORDER, "template",
					   "refund-issued", "to", "a@b.co", "messageId", "<x@y>"),
				 err, sizeof(err)) == 0,
		      "%s", err);
	ck_assert_msg(check_data(ES_SHIPMENT_DISPATCHED,
				 json_pack("{s:s,s:s,s:s,s:s}", "orderId", ORDER, "shipmentId",
					   ORDER, "carrier", "DPD", "trackingNumber", "ES12345678"),
				 err, sizeof(err)) == 0,
		      "%s", err);
	ck_assert_msg(check_data(ES_SHIPMENT_CANCELLED,
				 json_pack("{s:s,s:s,s:s}", "orderId", ORDER, "shipmentId", ORDER,
					   "reason", "CUSTOMER_REQUEST"),
				 err, sizeof(err)) == 0,
		      "%s", err);
	ck_assert(es_event_type_known(ES_INVENTORY_RELEASED));
	ck_assert(es_event_type_known(ES_SHIPMENT_DELIVERED));
	ck_assert(!es_event_type_known("OrderShipped"));
}
END_TEST

START_TEST(a_shipment_needs_a_known_carrier_and_a_uuid)
{
	char err[256];

	ck_assert_int_eq(check_data(ES_SHIPMENT_CREATED,
				    json_pack("{s:s,s:s,s:s,s:s}", "orderId", ORDER, "shipmentId",
					      ORDER, "carrier", "Pigeon", "trackingNumber", "ES1"),
				    err, sizeof(err)),
			 -1);
	ck_assert_msg(strstr(err, "/carrier"), "%s", err);
	ck_assert_int_eq(check_data(ES_SHIPMENT_DELIVERED,
				    json_pack("{s:s,s:s,s:s}", "orderId", ORDER, "shipmentId",
					      "ship-1", "trackingNumber", "ES1"),
				    err, sizeof(err)),
			 -1);
	ck_assert_msg(strstr(err, "/shipmentId"), "%s", err);
}
END_TEST

START_TEST(misfits_are_named_with_a_pointer)
{
	char err[256];

	ck_assert_int_eq(check_data(ES_PAYMENT_PROCESSED,
				    json_pack("{s:s,s:s,s:i,s:s}", "orderId", ORDER, "paymentId",
					      "p", "amountCents", -1, "currency", "EUR"),
				    err, sizeof(err)),
			 -1);
	ck_assert_str_eq(err, "PaymentProcessed data: /amountCents must be an integer >= 0");
	ck_assert_int_eq(
		check_data(ES_INVENTORY_RESERVED,
			   json_pack("{s:s,s:s,s:[{s:s,s:i}]}", "orderId", ORDER, "reservationId",
				     "r", "items", "sku", "mug-classic", "quantity", 0),
			   err, sizeof(err)),
		-1);
	ck_assert_str_eq(err, "InventoryReserved data: /items/0/quantity must be an integer >= 1");
	ck_assert_int_eq(check_data(ES_ORDER_CANCELLED,
				    json_pack("{s:s,s:s}", "orderId", ORDER, "reason", "BORED"),
				    err, sizeof(err)),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "/reason must be one of"));
	ck_assert_int_eq(check_data(ES_INVENTORY_RESERVED,
				    json_pack("{s:s,s:s,s:[]}", "orderId", ORDER, "reservationId",
					      "r", "items"),
				    err, sizeof(err)),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "/items must be a non-empty array"));
	ck_assert_int_eq(
		check_data(ES_ORDER_CONFIRMED,
			   json_pack("{s:s,s:s,s:s,s:i,s:s}", "orderId",
				     "00000000-0000-4000-8000-000000000000", "paymentId", "p",
				     "reservationId", "r", "totalCents", 1, "currency", "EUR"),
			   err, sizeof(err)),
		-1);
	ck_assert_ptr_nonnull(strstr(err, "differs from the event's subject"));
	ck_assert_int_eq(check_data(ES_PAYMENT_PROCESSED,
				    json_pack("{s:s,s:s,s:i,s:s}", "orderId", ORDER, "paymentId",
					      "p", "amountCents", 1, "currency", "eur"),
				    err, sizeof(err)),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "/currency must be a currency code"));
	ck_assert_int_eq(check_data(ES_ORDER_CANCELLED,
				    json_pack("{s:s,s:s}", "orderId", ORDER, "reason", "TIMEOUT"),
				    err, sizeof(err)),
			 -1);
	ck_assert_ptr_nonnull(strstr(err, "/detail must be"));
	ck_assert_int_eq(check_data("OrderShipped", json_object(), err, sizeof(err)), -1);
	ck_assert_str_eq(err, "unknown event type OrderShipped");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("shapes");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, every_contract_event_passes_with_its_fields);
	tcase_add_test(tc, misfits_are_named_with_a_pointer);
	tcase_add_test(tc, a_shipment_needs_a_known_carrier_and_a_uuid);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
