/*
 * unit.tools.console.event: any Kafka message becomes valid JSON for the
 * page: a CloudEvent with its attributes and data, a dead letter with its
 * reason, poison (not JSON, not UTF-8, too large, no value) with why and
 * its first bytes as text, never a crash.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "es/consumer.h"
#include "es/envelope.h"
#include "event.h"

static json_t *view(const void *value, size_t len, rd_kafka_headers_t *hdrs)
{
	struct console_msg m = {
		.topic = "payments",
		.partition = 3,
		.offset = 17,
		.key = "k-1",
		.key_len = 3,
		.value = value,
		.value_len = len,
		.timestamp_ms = 1764637365000,
		.headers = hdrs,
	};
	json_t *j = console_event_json(&m);
	char *text;

	ck_assert_ptr_nonnull(j);
	/* Whatever came in, what goes out is valid JSON. */
	text = json_dumps(j, JSON_COMPACT);
	ck_assert_ptr_nonnull(text);
	free(text);
	return j;
}

static char *placed_event(const char *customer)
{
	struct es_event *ev = es_event_new(
		"order-service", "OrderPlaced", "6a1c2d3e-0000-4000-8000-000000000001", NULL, NULL,
		json_pack("{s:s, s:s}", "orderId", "6a1c2d3e-0000-4000-8000-000000000001",
			  "customerId", customer));
	char *text = es_event_serialize(ev);

	es_event_free(ev);
	return text;
}

START_TEST(cloud_event)
{
	char *value = placed_event("<img src=x onerror=alert(1)>");
	json_t *j = view(value, strlen(value), NULL);

	ck_assert_str_eq(json_string_value(json_object_get(j, "topic")), "payments");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "partition")), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(j, "offset")), 17);
	ck_assert_str_eq(json_string_value(json_object_get(j, "key")), "k-1");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "ce"), "type")),
			 "OrderPlaced");
	/* Kept as text: escaping is the page's business (textContent). */
	ck_assert_str_eq(
		json_string_value(json_object_get(json_object_get(j, "data"), "customerId")),
		"<img src=x onerror=alert(1)>");
	ck_assert_ptr_null(json_object_get(j, "poison"));
	json_decref(j);
	free(value);
}
END_TEST

START_TEST(not_json_is_poison)
{
	json_t *j = view("not json {", 10, NULL);

	ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "poison")));
	ck_assert_str_eq(json_string_value(json_object_get(j, "raw")), "not json {");
	ck_assert_ptr_null(json_object_get(j, "ce"));
	json_decref(j);
}
END_TEST

START_TEST(invalid_utf8_is_replaced)
{
	static const char bad[] = {'a', (char)0xff, 'b',	(char)0xc3, 0,
				   'c', (char)0xed, (char)0xa0, (char)0x80};
	json_t *j = view(bad, sizeof(bad), NULL);

	/* Each bad byte and the NUL become U+FFFD. */
	ck_assert_str_eq(json_string_value(json_object_get(j, "raw")),
			 "a\xef\xbf\xbd"
			 "b\xef\xbf\xbd\xef\xbf\xbd"
			 "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	json_decref(j);
}
END_TEST

START_TEST(raw_is_bounded)
{
	size_t n = CONSOLE_RAW_MAX_BYTES * 4;
	char *big = malloc(n);
	json_t *j;

	memset(big, 'z', n);
	j = view(big, n, NULL);
	ck_assert_uint_eq(strlen(json_string_value(json_object_get(j, "raw"))),
			  CONSOLE_RAW_MAX_BYTES);
	json_decref(j);
	free(big);
}
END_TEST

START_TEST(too_large_and_tombstone)
{
	size_t n = CONSOLE_EVENT_MAX_BYTES + 1;
	char *big = calloc(1, n);
	json_t *j;

	j = view(big, n, NULL);
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(j, "poison")), "bytes"));
	json_decref(j);
	free(big);
	j = view(NULL, 0, NULL);
	ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "poison")));
	ck_assert_ptr_null(json_object_get(j, "raw"));
	json_decref(j);
}
END_TEST

START_TEST(dead_letter_reason)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(4);
	json_t *j, *dlq;

	rd_kafka_header_add(h, ES_DLQ_HDR_ERROR, -1, "not a CloudEvent: \xff", -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_SERVICE, -1, "payment-service", -1);
	rd_kafka_header_add(h, ES_DLQ_HDR_TOPIC, -1, "orders", -1);
	j = view("garbage", 7, h);
	dlq = json_object_get(j, "dlq");
	ck_assert_str_eq(json_string_value(json_object_get(dlq, "error")),
			 "not a CloudEvent: \xef\xbf\xbd");
	ck_assert_str_eq(json_string_value(json_object_get(dlq, "service")), "payment-service");
	ck_assert_str_eq(json_string_value(json_object_get(dlq, "originalTopic")), "orders");
	json_decref(j);
	rd_kafka_headers_destroy(h);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tools.console.event");
	TCase *tc = tcase_create("event");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, cloud_event);
	tcase_add_test(tc, not_json_is_poison);
	tcase_add_test(tc, invalid_utf8_is_replaced);
	tcase_add_test(tc, raw_is_bounded);
	tcase_add_test(tc, too_large_and_tombstone);
	tcase_add_test(tc, dead_letter_reason);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
