/*
 * Unit tests of lines.c: an order's lines are merged per sku and sorted (the
 * lock order that keeps concurrent reservations from deadlocking), bad
 * input is refused with a pointer to the fault, and the items of the
 * Reserved and Rejected events have the contract's shape.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "es/envelope.h"
#include "es/events.h"
#include "inventory.h"

#define ORDER_ID "5c1a2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

static json_t *load(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);

	ck_assert_msg(j, "%s: %s", text, jerr.text);
	return j;
}

/* Parses text, expecting success. */
static struct inventory_line *parse_ok(json_t *items, size_t *n)
{
	struct inventory_line *lines;
	char errstr[256];

	ck_assert_msg(inventory_lines_parse(items, &lines, n, errstr, sizeof(errstr)) == 0, "%s",
		      errstr);
	return lines;
}

/* Parses text, expecting failure with a message containing want. */
static void parse_fails(const char *text, const char *want)
{
	json_t *items = load(text);
	struct inventory_line *lines;
	char errstr[256] = "";
	size_t n = 42;

	ck_assert_int_eq(inventory_lines_parse(items, &lines, &n, errstr, sizeof(errstr)), -1);
	ck_assert_ptr_null(lines);
	ck_assert_uint_eq(n, 0);
	ck_assert_msg(strstr(errstr, want), "%s: got \"%s\", want \"%s\"", text, errstr, want);
	json_decref(items);
}

START_TEST(lines_are_sorted_by_sku_in_byte_order)
{
	json_t *items = load("[{\"sku\":\"mug-classic\",\"quantity\":2,\"unitPriceCents\":1299},"
			     "{\"sku\":\"Zebra\",\"quantity\":1},"
			     "{\"sku\":\"hoodie-eda\",\"quantity\":3}]");
	struct inventory_line *lines;
	size_t n;

	lines = parse_ok(items, &n);
	ck_assert_uint_eq(n, 3);
	/* Byte order puts upper case first: the same order as the database's
	 * COLLATE "C", whatever the locale. */
	ck_assert_str_eq(lines[0].sku, "Zebra");
	ck_assert_str_eq(lines[1].sku, "hoodie-eda");
	ck_assert_str_eq(lines[2].sku, "mug-classic");
	ck_assert_int_eq(lines[2].quantity, 2);
	ck_assert_int_eq(lines[0].available, 0);
	free(lines);
	json_decref(items);
}
END_TEST

START_TEST(repeated_skus_are_merged_into_one_line)
{
	json_t *items = load("[{\"sku\":\"b\",\"quantity\":2},{\"sku\":\"a\",\"quantity\":1},"
			     "{\"sku\":\"b\",\"quantity\":5},{\"sku\":\"b\",\"quantity\":1}]");
	struct inventory_line *lines;
	size_t n;

	lines = parse_ok(items, &n);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(lines[0].sku, "a");
	ck_assert_int_eq(lines[0].quantity, 1);
	ck_assert_str_eq(lines[1].sku, "b");
	ck_assert_int_eq(lines[1].quantity, 8);
	free(lines);
	json_decref(items);
}
END_TEST

START_TEST(merged_quantity_saturates_instead_of_overflowing)
{
	json_t *items = json_pack("[{s:s, s:I}, {s:s, s:I}]", "sku", "a", "quantity",
				  (json_int_t)LLONG_MAX, "sku", "a", "quantity", (json_int_t)5);
	struct inventory_line *lines;
	size_t n;

	lines = parse_ok(items, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert(lines[0].quantity == LLONG_MAX);
	free(lines);
	json_decref(items);
}
END_TEST

START_TEST(bad_items_are_refused_with_where)
{
	parse_fails("{}", "/items must be a non-empty array");
	parse_fails("[]", "/items must be a non-empty array");
	parse_fails("[1]", "/items/0 must be an object");
	parse_fails("[{\"sku\":\"a\",\"quantity\":1},{\"quantity\":1}]",
		    "/items/1/sku must be a non-empty string");
	parse_fails("[{\"sku\":\"\",\"quantity\":1}]", "/items/0/sku must be a non-empty string");
	parse_fails("[{\"sku\":\"a\",\"quantity\":0}]",
		    "/items/0/quantity must be an integer >= 1");
	parse_fails("[{\"sku\":\"a\",\"quantity\":1.5}]",
		    "/items/0/quantity must be an integer >= 1");
	parse_fails("[{\"sku\":\"a\",\"quantity\":\"2\"}]",
		    "/items/0/quantity must be an integer >= 1");
}
END_TEST

START_TEST(too_many_lines_are_refused)
{
	json_t *items = json_array();
	struct inventory_line *lines;
	char errstr[256];
	size_t n;

	for (int i = 0; i <= INVENTORY_MAX_LINES; i++)
		json_array_append_new(items, json_pack("{s:s, s:i}", "sku", "a", "quantity", 1));
	ck_assert_int_eq(inventory_lines_parse(items, &lines, &n, errstr, sizeof(errstr)), -1);
	ck_assert_msg(strstr(errstr, "more than"), "%s", errstr);
	json_array_remove(items, 0);
	lines = parse_ok(items, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(lines[0].quantity, INVENTORY_MAX_LINES);
	free(lines);
	json_decref(items);
}
END_TEST

/* Wraps data in an event of type about ORDER_ID and checks it against the
 * contract's shape. */
static void assert_contract_shape(const char *type, json_t *data)
{
	struct es_event *ev = es_event_new(INVENTORY_SERVICE, type, ORDER_ID, NULL, NULL, data);
	char errstr[256];

	ck_assert_ptr_nonnull(ev);
	ck_assert_msg(es_event_data_check(ev, errstr, sizeof(errstr)) == 0, "%s", errstr);
	es_event_free(ev);
}

START_TEST(reserved_items_carry_sku_and_quantity)
{
	struct inventory_line lines[] = {{"a", 2, 0}, {"b", 1, 7}};
	json_t *items = inventory_lines_reserved_json(lines, 2);

	ck_assert_ptr_nonnull(items);
	ck_assert_uint_eq(json_array_size(items), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 1), "sku")), "b");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(items, 0), "quantity")),
			 2);
	ck_assert_uint_eq(json_object_size(json_array_get(items, 0)), 2);
	assert_contract_shape(ES_INVENTORY_RESERVED,
			      json_pack("{s:s, s:s, s:O}", "orderId", ORDER_ID, "reservationId",
					"r-1", "items", items));
	json_decref(items);
}
END_TEST

START_TEST(rejected_items_carry_requested_and_available)
{
	/* An unknown sku has available 0, which the contract allows. */
	struct inventory_line lines[] = {{"a", 2, 1}, {"nope", 1, 0}, {"z", 3, 10}};
	json_t *items = inventory_lines_rejected_json(lines, 3);
	json_t *first;

	ck_assert_ptr_nonnull(items);
	ck_assert_uint_eq(json_array_size(items), 3);
	first = json_array_get(items, 0);
	ck_assert_str_eq(json_string_value(json_object_get(first, "sku")), "a");
	ck_assert_int_eq(json_integer_value(json_object_get(first, "requested")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(first, "available")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(items, 1), "available")),
			 0);
	assert_contract_shape(ES_INVENTORY_REJECTED,
			      json_pack("{s:s, s:s, s:O}", "orderId", ORDER_ID, "reason",
					"OUT_OF_STOCK", "items", items));
	json_decref(items);
}
END_TEST

static Suite *lines_suite(void)
{
	Suite *s = suite_create("inventory.lines");
	TCase *tc = tcase_create("lines");

	tcase_add_test(tc, lines_are_sorted_by_sku_in_byte_order);
	tcase_add_test(tc, repeated_skus_are_merged_into_one_line);
	tcase_add_test(tc, merged_quantity_saturates_instead_of_overflowing);
	tcase_add_test(tc, bad_items_are_refused_with_where);
	tcase_add_test(tc, too_many_lines_are_refused);
	tcase_add_test(tc, reserved_items_carry_sku_and_quantity);
	tcase_add_test(tc, rejected_items_carry_requested_and_available);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(lines_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
