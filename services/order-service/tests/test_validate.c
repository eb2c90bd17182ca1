/* Unit tests for the POST /orders body: what is 400, what is 422, and
 * that prices come from the catalog. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "order.h"

static struct es_catalog cat;

static unsigned parse(const char *body, struct order_request *req, json_t **errors)
{
	char detail[256];

	return order_request_parse(req, body, strlen(body), &cat, errors, detail, sizeof(detail));
}

/* The status for body, and that errors points at `pointer` (if given). */
static void expect(const char *body, unsigned status, const char *pointer)
{
	struct order_request req;
	json_t *errors = NULL;
	unsigned got = parse(body, &req, &errors);

	ck_assert_msg(got == status, "%s: got %u, want %u", body, got, status);
	if (pointer) {
		bool found = false;
		size_t i;
		json_t *e;

		json_array_foreach(errors, i, e)
		{
			found |= !strcmp(json_string_value(json_object_get(e, "pointer")), pointer);
		}
		ck_assert_msg(found, "%s: no error at %s", body, pointer);
	}
	json_decref(errors);
	order_request_release(&req);
}

#define VALID_HEAD                                                                              \
	"{\"customerId\":\"c-1\",\"customerEmail\":\"ada@example.com\",\"paymentToken\":\"tok_" \
	"visa\","

START_TEST(valid_order_is_priced_from_the_catalog)
{
	struct order_request req;
	json_t *errors = NULL;

	ck_assert_uint_eq(parse(VALID_HEAD "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":2},"
					   "{\"sku\":\"poster-limited\",\"quantity\":1,"
					   "\"unitPriceCents\":1}]}",
				&req, &errors),
			  0);
	ck_assert_ptr_null(errors);
	ck_assert_uint_eq(req.nlines, 2);
	ck_assert_int_eq(req.lines[0].unit_price_cents, 1299);
	ck_assert_int_eq(req.total_cents, 2 * 1299 + 1999);
	ck_assert_str_eq(req.customer_email, "ada@example.com");
	ck_assert_ptr_nonnull(strstr(req.canonical, "\"customerEmail\""));
	order_request_release(&req);
}
END_TEST

START_TEST(malformed_json_and_wrong_types_are_400)
{
	expect("{\"customerId\":", 400, NULL);
	expect("[]", 400, "");
	expect("{\"a\":1,\"a\":2}", 400, NULL);
	expect(VALID_HEAD "\"items\":{}}", 400, "/items");
	expect(VALID_HEAD "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":\"2\"}]}", 400,
	       "/items/0/quantity");
	expect(VALID_HEAD "\"items\":[{\"sku\":7,\"quantity\":1}]}", 400, "/items/0/sku");
	expect(VALID_HEAD "\"items\":[3]}", 400, "/items/0");
	expect("{\"customerId\":5,\"customerEmail\":\"a@b.co\",\"paymentToken\":\"tok_visa\","
	       "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}]}",
	       400, "/customerId");
	expect(VALID_HEAD "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1.5}]}", 400,
	       "/items/0/quantity");
}
END_TEST

START_TEST(semantic_errors_are_422)
{
	expect(VALID_HEAD "\"items\":[{\"sku\":\"no-such\",\"quantity\":1}]}", 422, "/items/0/sku");
	expect(VALID_HEAD "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":0}]}", 422,
	       "/items/0/quantity");
	expect(VALID_HEAD "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":101}]}", 422,
	       "/items/0/quantity");
	expect(VALID_HEAD "\"items\":[]}", 422, "/items");
	expect(VALID_HEAD "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1},"
			  "{\"sku\":\"mug-classic\",\"quantity\":2}]}",
	       422, "/items/1/sku");
	expect("{\"customerEmail\":\"a@b.co\",\"paymentToken\":\"tok_visa\","
	       "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}]}",
	       422, "/customerId");
	expect("{\"customerId\":\"c\",\"customerEmail\":\"not-an-email\",\"paymentToken\":"
	       "\"tok_visa\",\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}]}",
	       422, "/customerEmail");
	expect("{\"customerId\":\"c\",\"customerEmail\":\"a@b.co\",\"paymentToken\":\"visa\","
	       "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}]}",
	       422, "/paymentToken");
	expect(VALID_HEAD "\"items\":[{\"quantity\":1}]}", 422, "/items/0/sku");
}
END_TEST

START_TEST(more_than_fifty_lines_is_422)
{
	char body[4096];
	size_t used = (size_t)snprintf(body, sizeof(body), VALID_HEAD "\"items\":[");

	for (int i = 0; i < 51; i++)
		used += (size_t)snprintf(body + used, sizeof(body) - used,
					 "%s{\"sku\":\"mug-classic\",\"quantity\":1}",
					 i ? "," : "");
	snprintf(body + used, sizeof(body) - used, "]}");
	expect(body, 422, "/items");
}
END_TEST

START_TEST(email_and_token_formats)
{
	ck_assert(order_email_valid("ada@example.com"));
	ck_assert(order_email_valid("a.b+c@mail.example.org"));
	ck_assert(!order_email_valid("ada@example"));
	ck_assert(!order_email_valid("@example.com"));
	ck_assert(!order_email_valid("a@b@example.com"));
	ck_assert(!order_email_valid("a b@example.com"));
	ck_assert(!order_email_valid("ada@example.com."));
	ck_assert(!order_email_valid("a<b>@example.com"));
	ck_assert(!order_email_valid("a(b)@example.com"));
	ck_assert(!order_email_valid("a:b@example.com"));
	ck_assert(!order_email_valid("\xc3\xa9@example.com"));
	ck_assert(order_token_valid("tok_visa"));
	ck_assert(order_token_valid("tok_ok_123"));
	ck_assert(!order_token_valid("tok_"));
	ck_assert(!order_token_valid("card_visa"));
	ck_assert(!order_token_valid("tok_vi sa"));
	ck_assert(!order_token_valid("tok_'; DROP TABLE orders;--"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("order.validate");
	TCase *tc = tcase_create("body");
	SRunner *sr;
	char err[256];
	int failed;

	if (es_catalog_load(&cat, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	tcase_add_test(tc, valid_order_is_priced_from_the_catalog);
	tcase_add_test(tc, malformed_json_and_wrong_types_are_400);
	tcase_add_test(tc, semantic_errors_are_422);
	tcase_add_test(tc, more_than_fifty_lines_is_422);
	tcase_add_test(tc, email_and_token_formats);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	es_catalog_release(&cat);
	return failed ? 1 : 0;
}
