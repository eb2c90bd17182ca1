/*
 * Unit tests of a shipment's domain, without infrastructure: the fold of
 * every stream the service can write (and its refusal of those it cannot),
 * each decision from each state, and the view GET /shipments shows. What
 * these pin is the whole of what a shipment is: the database only stores
 * the events.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "es/events.h"
#include "es/log.h"
#include "shipping.h"

#define ORDER "0b6f2c9e-51d4-4e8a-9c1f-3a7d2e6b8f40"
#define SHIPMENT "6c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"

/* A stream entry as the store keeps it: the CloudEvent's id, type, time
 * and data (the rest of the envelope does not matter to the fold). */
static json_t *entry(const char *type, json_t *data)
{
	return json_pack("{s:s, s:s, s:s, s:o}", "id", "1b0e6f4a-3c2d-4e5f-8a9b-0c1d2e3f4a51",
			 "type", type, "time", "2026-12-02T10:00:00.000Z", "data", data);
}

static json_t *created_data(void)
{
	return json_pack("{s:s, s:s, s:s, s:s}", "orderId", ORDER, "shipmentId", SHIPMENT,
			 "carrier", "DHL", "trackingNumber", "ES0B6F2C9E51D4");
}

/* The stream of a shipment taken through the given types (each with the
 * data the service writes). */
static json_t *stream_of(const char *const *types)
{
	json_t *events = json_array();

	for (; *types; types++) {
		json_t *data = !strcmp(*types, ES_SHIPMENT_CANCELLED)
				       ? json_pack("{s:s, s:s, s:s}", "orderId", ORDER,
						   "shipmentId", SHIPMENT, "reason", "TIMEOUT")
				       : created_data();

		json_array_append_new(events, entry(*types, data));
	}
	return events;
}

static struct shipment folded(const char *const *types)
{
	json_t *events = stream_of(types);
	struct shipment s;
	char err[256] = "";

	shipment_init(&s);
	ck_assert_msg(shipment_fold(&s, events, err, sizeof(err)) == 0, "%s", err);
	json_decref(events);
	return s;
}

START_TEST(no_stream_is_no_shipment)
{
	struct shipment s = folded((const char *const[]){NULL});

	ck_assert_int_eq(s.status, SHIPMENT_NONE);
	ck_assert_int_eq(s.version, 0);
	ck_assert_ptr_null(shipment_status_name(s.status));
}
END_TEST

START_TEST(a_delivered_stream_folds_to_delivered_version_3)
{
	struct shipment s = folded((const char *const[]){
		ES_SHIPMENT_CREATED, ES_SHIPMENT_DISPATCHED, ES_SHIPMENT_DELIVERED, NULL});

	ck_assert_int_eq(s.status, SHIPMENT_DELIVERED);
	ck_assert_int_eq(s.version, 3);
	ck_assert_str_eq(s.shipment_id, SHIPMENT);
	ck_assert_str_eq(s.carrier, "DHL");
	ck_assert_str_eq(s.tracking_number, "ES0B6F2C9E51D4");
	ck_assert_str_eq(shipment_status_name(s.status), "DELIVERED");
}
END_TEST

START_TEST(a_cancelled_stream_keeps_the_reason)
{
	struct shipment s = folded(
		(const char *const[]){ES_SHIPMENT_CREATED, ES_SHIPMENT_CANCELLED, NULL});

	ck_assert_int_eq(s.status, SHIPMENT_CANCELLED);
	ck_assert_int_eq(s.version, 2);
	ck_assert_str_eq(s.cancel_reason, "TIMEOUT");
}
END_TEST

/* Streams this service never writes: the fold refuses them, naming the
 * version, and leaves the state as it was before that event. */
START_TEST(the_fold_refuses_events_out_of_order)
{
	static const char *const bad[][4] = {
		{ES_SHIPMENT_DISPATCHED, NULL},
		{ES_SHIPMENT_CREATED, ES_SHIPMENT_CREATED, NULL},
		{ES_SHIPMENT_CREATED, ES_SHIPMENT_DELIVERED, NULL},
		{ES_SHIPMENT_CREATED, ES_SHIPMENT_DISPATCHED, ES_SHIPMENT_CANCELLED, NULL},
		{ES_ORDER_CONFIRMED, NULL},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *events = stream_of(bad[i]);
		struct shipment s;
		char err[256] = "";

		shipment_init(&s);
		ck_assert_int_eq(shipment_fold(&s, events, err, sizeof(err)), -1);
		ck_assert_msg(strstr(err, "stream version"), "%s", err);
		ck_assert_int_eq(s.version, (int)json_array_size(events) - 1);
		json_decref(events);
	}
}
END_TEST

START_TEST(a_created_event_without_its_tracking_number_does_not_fold)
{
	json_t *data = json_pack("{s:s, s:s, s:s}", "orderId", ORDER, "shipmentId", SHIPMENT,
				 "carrier", "DHL");
	struct shipment s;
	char err[256] = "";

	shipment_init(&s);
	ck_assert_int_eq(shipment_apply(&s, ES_SHIPMENT_CREATED, data, err, sizeof(err)), -1);
	ck_assert_int_eq(s.status, SHIPMENT_NONE);
	json_decref(data);
}
END_TEST

START_TEST(a_confirmed_order_gets_one_shipment)
{
	struct shipment none = folded((const char *const[]){NULL});
	struct shipment created = folded((const char *const[]){ES_SHIPMENT_CREATED, NULL});
	const char *type, *why;
	char err[256] = "";
	json_t *data;

	type = shipment_decide_confirmed(&none, ORDER, SHIPMENT, &data, &why);
	ck_assert_str_eq(type, ES_SHIPMENT_CREATED);
	ck_assert_str_eq(json_string_value(json_object_get(data, "shipmentId")), SHIPMENT);
	ck_assert_str_eq(json_string_value(json_object_get(data, "carrier")),
			 shipment_carrier_for(ORDER));
	/* What was decided folds: the decision and the fold agree. */
	ck_assert_msg(shipment_apply(&none, type, data, err, sizeof(err)) == 0, "%s", err);
	json_decref(data);

	/* The same OrderConfirmed again (or another one): nothing. */
	ck_assert_ptr_null(shipment_decide_confirmed(&created, ORDER, SHIPMENT, &data, &why));
	ck_assert_ptr_null(data);
	ck_assert_str_eq(why, "the order already has its shipment");
}
END_TEST

START_TEST(a_cancel_stops_only_a_shipment_not_yet_dispatched)
{
	static const struct {
		const char *stream[4];
		bool stops;
	} rows[] = {
		{{NULL}, false},
		{{ES_SHIPMENT_CREATED, NULL}, true},
		{{ES_SHIPMENT_CREATED, ES_SHIPMENT_DISPATCHED, NULL}, false},
		{{ES_SHIPMENT_CREATED, ES_SHIPMENT_DISPATCHED, ES_SHIPMENT_DELIVERED}, false},
		{{ES_SHIPMENT_CREATED, ES_SHIPMENT_CANCELLED, NULL}, false},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct shipment s = folded(rows[i].stream);
		const char *type, *why;
		json_t *data;

		type = shipment_decide_cancelled(&s, ORDER, "CUSTOMER_REQUEST", &data, &why);
		ck_assert_msg((type != NULL) == rows[i].stops, "row %zu: %s", i, why);
		if (type) {
			ck_assert_str_eq(type, ES_SHIPMENT_CANCELLED);
			ck_assert_str_eq(json_string_value(json_object_get(data, "reason")),
					 "CUSTOMER_REQUEST");
		}
		json_decref(data);
	}
}
END_TEST

START_TEST(progress_goes_created_dispatched_delivered_then_stops)
{
	struct shipment s = folded((const char *const[]){ES_SHIPMENT_CREATED, NULL});
	const char *expect[] = {ES_SHIPMENT_DISPATCHED, ES_SHIPMENT_DELIVERED};
	const char *type, *why;
	char err[256] = "";
	json_t *data;

	for (int i = 0; i < 2; i++) {
		type = shipment_decide_progress(&s, ORDER, &data, &why);
		ck_assert_str_eq(type, expect[i]);
		ck_assert_str_eq(json_string_value(json_object_get(data, "trackingNumber")),
				 "ES0B6F2C9E51D4");
		ck_assert_msg(shipment_apply(&s, type, data, err, sizeof(err)) == 0, "%s", err);
		json_decref(data);
	}
	ck_assert_int_eq(s.version, 3);
	ck_assert_ptr_null(shipment_decide_progress(&s, ORDER, &data, &why));
	s = folded((const char *const[]){ES_SHIPMENT_CREATED, ES_SHIPMENT_CANCELLED, NULL});
	ck_assert_ptr_null(shipment_decide_progress(&s, ORDER, &data, &why));
	s = folded((const char *const[]){NULL});
	ck_assert_ptr_null(shipment_decide_progress(&s, ORDER, &data, &why));
}
END_TEST

START_TEST(carrier_and_tracking_number_come_from_the_order_id)
{
	char a[16], b[16];

	shipment_tracking_number_for(ORDER, a, sizeof(a));
	shipment_tracking_number_for(ORDER, b, sizeof(b));
	ck_assert_str_eq(a, "ES0B6F2C9E51D4");
	ck_assert_str_eq(a, b);
	ck_assert_str_eq(shipment_carrier_for(ORDER), shipment_carrier_for(ORDER));
	/* A buffer too small is cut, never overrun. */
	shipment_tracking_number_for(ORDER, a, 5);
	ck_assert_str_eq(a, "ES0B");
}
END_TEST

START_TEST(the_view_shows_the_fold_and_its_stream)
{
	json_t *events = stream_of((const char *const[]){ES_SHIPMENT_CREATED, NULL});
	struct shipment s = folded((const char *const[]){ES_SHIPMENT_CREATED, NULL});
	json_t *view = shipment_to_json(&s, ORDER, events);
	json_t *first;

	ck_assert_ptr_nonnull(view);
	ck_assert_str_eq(json_string_value(json_object_get(view, "status")), "CREATED");
	ck_assert_int_eq(json_integer_value(json_object_get(view, "version")), 1);
	ck_assert(json_is_null(json_object_get(view, "cancelReason")));
	first = json_array_get(json_object_get(view, "stream"), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(first, "version")), 1);
	ck_assert_str_eq(json_string_value(json_object_get(first, "type")), ES_SHIPMENT_CREATED);
	json_decref(view);
	json_decref(events);
}
END_TEST

static Suite *shipment_suite(void)
{
	Suite *s = suite_create("shipping.shipment");
	TCase *fold = tcase_create("fold");
	TCase *decide = tcase_create("decide");

	tcase_add_test(fold, no_stream_is_no_shipment);
	tcase_add_test(fold, a_delivered_stream_folds_to_delivered_version_3);
	tcase_add_test(fold, a_cancelled_stream_keeps_the_reason);
	tcase_add_test(fold, the_fold_refuses_events_out_of_order);
	tcase_add_test(fold, a_created_event_without_its_tracking_number_does_not_fold);
	tcase_add_test(fold, the_view_shows_the_fold_and_its_stream);
	suite_add_tcase(s, fold);

	tcase_add_test(decide, a_confirmed_order_gets_one_shipment);
	tcase_add_test(decide, a_cancel_stops_only_a_shipment_not_yet_dispatched);
	tcase_add_test(decide, progress_goes_created_dispatched_delivered_then_stops);
	tcase_add_test(decide, carrier_and_tracking_number_come_from_the_order_id);
	suite_add_tcase(s, decide);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(shipment_suite());
	int failures;

	es_log_init("test_shipping_shipment", ES_LOG_ERROR);
	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
