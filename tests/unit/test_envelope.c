/* Unit tests for the CloudEvents envelope: build, serialize, parse, and
 * reject every malformed attribute with a reason. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "es/envelope.h"

#define ORDER "3f2b8c1e-6a4d-4e3b-9f1a-2c5d7e8f9a0b"

static struct es_event *sample(void)
{
	return es_event_new("order-service", "OrderPlaced", ORDER, NULL, NULL,
			    json_pack("{s:s, s:i}", "orderId", ORDER, "totalCents", 1299));
}

/* A valid serialized event with one attribute replaced (or removed when
 * value is NULL), for the rejection tests. */
static char *with_attr(const char *name, json_t *value)
{
	struct es_event *ev = sample();
	char *text = es_event_serialize(ev);
	json_t *o = json_loads(text, 0, NULL);
	char *out;

	if (value)
		json_object_set_new(o, name, value);
	else
		json_object_del(o, name);
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	free(text);
	es_event_free(ev);
	return out;
}

static void assert_rejected(char *text, const char *expect)
{
	char err[256] = "";
	struct es_event *ev = es_event_parse(text, strlen(text), err, sizeof(err));

	ck_assert_ptr_null(ev);
	ck_assert_msg(strstr(err, expect), "reason \"%s\" lacks \"%s\"", err, expect);
	free(text);
}

START_TEST(new_event_has_every_contract_attribute)
{
	struct es_event *ev = sample();
	long long ms;

	ck_assert(es_uuid_valid(ev->id));
	ck_assert_str_eq(ev->source, "/eventshop/order-service");
	ck_assert_str_eq(ev->type, "OrderPlaced");
	ck_assert_str_eq(ev->subject, ORDER);
	ck_assert_str_eq(ev->partitionkey, ORDER);
	ck_assert_str_eq(ev->correlationid, ORDER);
	ck_assert_ptr_null(ev->causationid);
	ck_assert_str_eq(ev->datacontenttype, "application/json");
	ck_assert_str_eq(ev->dataschema, "urn:eventshop:schema:OrderPlaced:1");
	ck_assert(es_traceparent_valid(ev->traceparent));
	ck_assert_int_eq(strlen(ev->time), ES_TIME_LEN);
	ck_assert_int_eq(ev->time[23], 'Z');
	ck_assert_int_eq(es_time_parse(ev->time, &ms), 0);
	es_event_free(ev);
}
END_TEST

START_TEST(reaction_continues_the_saga_of_its_cause)
{
	struct es_event *cause = sample();
	struct es_event *ev = es_event_new("payment-service", "PaymentProcessed", ORDER, cause,
					   NULL, json_object());

	ck_assert_str_eq(ev->causationid, cause->id);
	ck_assert_str_eq(ev->correlationid, cause->correlationid);
	ck_assert_str_eq(ev->traceparent, cause->traceparent);
	ck_assert_str_ne(ev->id, cause->id);
	es_event_free(ev);
	es_event_free(cause);
}
END_TEST

START_TEST(given_traceparent_is_carried_invalid_one_replaced)
{
	const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	struct es_event *a = es_event_new("order-service", "OrderPlaced", ORDER, NULL, tp,
					  json_object());
	struct es_event *b = es_event_new("order-service", "OrderPlaced", ORDER, NULL,
					  "not-a-traceparent", json_object());

	ck_assert_str_eq(a->traceparent, tp);
	ck_assert(es_traceparent_valid(b->traceparent));
	ck_assert_str_ne(b->traceparent, "not-a-traceparent");
	es_event_free(a);
	es_event_free(b);
}
END_TEST

START_TEST(serialize_then_parse_round_trips)
{
	struct es_event *cause = sample();
	struct es_event *ev = es_event_new("payment-service", "PaymentProcessed", ORDER, cause,
					   NULL, json_pack("{s:s}", "paymentId", "p-1"));
	char *text = es_event_serialize(ev);
	char err[256];
	struct es_event *back = es_event_parse(text, strlen(text), err, sizeof(err));

	ck_assert_msg(back != NULL, "parse failed: %s", err);
	ck_assert_str_eq(back->id, ev->id);
	ck_assert_str_eq(back->causationid, ev->causationid);
	ck_assert_str_eq(back->time, ev->time);
	ck_assert_str_eq(back->traceparent, ev->traceparent);
	ck_assert(json_equal(back->data, ev->data));
	ck_assert_ptr_nonnull(strstr(text, "\"specversion\":\"1.0\""));
	free(text);
	es_event_free(back);
	es_event_free(ev);
	es_event_free(cause);
}
END_TEST

START_TEST(parse_needs_no_nul_terminator)
{
	struct es_event *ev = sample();
	char *text = es_event_serialize(ev);
	size_t len = strlen(text);
	char *copy = malloc(len);
	char err[256];
	struct es_event *back;

	memcpy(copy, text, len); /* no NUL: valgrind/ASan catch any over-read */
	back = es_event_parse(copy, len, err, sizeof(err));
	ck_assert_ptr_nonnull(back);
	es_event_free(back);
	free(copy);
	free(text);
	es_event_free(ev);
}
END_TEST

START_TEST(rejects_garbage_with_reason)
{
	char err[256];

	ck_assert_ptr_null(es_event_parse("", 0, err, sizeof(err)));
	ck_assert_str_eq(err, "empty message");
	ck_assert_ptr_null(es_event_parse("{\"a\":", 5, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "not valid JSON"));
	ck_assert_ptr_null(es_event_parse("[1,2]", 5, err, sizeof(err)));
	ck_assert_str_eq(err, "not a JSON object");
	ck_assert_ptr_null(es_event_parse("{\"specversion\":\"1.0\",\"specversion\":\"1.0\"}", 41,
					  err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "duplicate"));
}
END_TEST

START_TEST(rejects_each_missing_required_attribute)
{
	static const char *const required[] = {
		"specversion",	   "id",
		"source",	   "type",
		"subject",	   "time",
		"datacontenttype", "dataschema",
		"partitionkey",	   "correlationid",
		"traceparent",	   "data",
	};

	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		char expect[64];

		snprintf(expect, sizeof(expect), "'%s'", required[i]);
		assert_rejected(with_attr(required[i], NULL), expect);
	}
}
END_TEST

START_TEST(rejects_ill_typed_and_malformed_attributes)
{
	assert_rejected(with_attr("specversion", json_string("0.3")), "'specversion'");
	assert_rejected(with_attr("id", json_integer(7)), "'id' is not a string");
	assert_rejected(with_attr("id", json_string("1234")), "'id' is not a UUID");
	assert_rejected(with_attr("id", json_string("")), "'id' is empty");
	assert_rejected(with_attr("time", json_string("2026-02-30T00:00:00Z")),
			"'time' is not an RFC 3339");
	assert_rejected(with_attr("time", json_string("yesterday")), "'time'");
	assert_rejected(with_attr("traceparent", json_string("00-0-0-01")), "'traceparent'");
	assert_rejected(with_attr("causationid", json_string("x")), "'causationid'");
	assert_rejected(with_attr("causationid", json_null()), "'causationid' is not a string");
	assert_rejected(with_attr("datacontenttype", json_string("text/xml")), "'datacontenttype'");
	assert_rejected(with_attr("partitionkey", json_string("other")), "'partitionkey'");
	assert_rejected(with_attr("data", json_string("x")), "'data' is not a JSON object");
	assert_rejected(with_attr("source", json_string("has space")), "'source'");
	assert_rejected(with_attr("Bad-Name", json_string("x")), "not lower-case");
}
END_TEST

START_TEST(rejects_oversized_message_before_parsing)
{
	char err[256];
	size_t len = ES_EVENT_MAX_BYTES + 1;
	char *big = calloc(1, len);

	ck_assert_ptr_null(es_event_parse(big, len, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "exceeds"));
	free(big);
}
END_TEST

START_TEST(time_parse_handles_offsets_and_fractions)
{
	long long ms;

	ck_assert_int_eq(es_time_parse("1970-01-01T00:00:00Z", &ms), 0);
	ck_assert_int_eq(ms, 0);
	ck_assert_int_eq(es_time_parse("1970-01-01T01:00:00.250+01:00", &ms), 0);
	ck_assert_int_eq(ms, 250);
	ck_assert_int_eq(es_time_parse("2024-02-29T12:00:00.5Z", &ms), 0);
	ck_assert_int_eq(es_time_parse("2023-02-29T12:00:00Z", &ms), -1);
	ck_assert_int_eq(es_time_parse("2024-13-01T12:00:00Z", &ms), -1);
	ck_assert_int_eq(es_time_parse("2024-01-01T12:00:00", &ms), -1);
	ck_assert_int_eq(es_time_parse("2024-01-01T12:00:00Zjunk", &ms), -1);
	ck_assert_int_eq(es_time_parse("2024-01-01 12:00:00Z", &ms), -1);
	/* Truncated offsets: nothing past the end of the string is read. */
	ck_assert_int_eq(es_time_parse("2024-01-01T12:00:00.123-", &ms), -1);
	ck_assert_int_eq(es_time_parse("2024-01-01T12:00:00+01", &ms), -1);
	ck_assert_int_eq(es_time_parse("2024-01-01T12:00:00+01:0", &ms), -1);
}
END_TEST

START_TEST(time_format_is_rfc3339_utc_millis)
{
	char out[ES_TIME_LEN + 1];

	es_time_format(1700000000123LL, out);
	ck_assert_str_eq(out, "2023-11-14T22:13:20.123Z");
}
END_TEST

START_TEST(traceparent_rules)
{
	char tp[ES_TRACEPARENT_LEN + 1], id[33];

	es_traceparent_new(tp);
	ck_assert(es_traceparent_valid(tp));
	ck_assert_int_eq(es_traceparent_trace_id(tp, id), 0);
	ck_assert_int_eq(strlen(id), 32);
	/* all-zero ids and upper case are invalid per W3C */
	ck_assert(!es_traceparent_valid("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
	ck_assert(!es_traceparent_valid("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
	ck_assert(!es_traceparent_valid(NULL));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("envelope");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, new_event_has_every_contract_attribute);
	tcase_add_test(tc, reaction_continues_the_saga_of_its_cause);
	tcase_add_test(tc, given_traceparent_is_carried_invalid_one_replaced);
	tcase_add_test(tc, serialize_then_parse_round_trips);
	tcase_add_test(tc, parse_needs_no_nul_terminator);
	tcase_add_test(tc, rejects_garbage_with_reason);
	tcase_add_test(tc, rejects_each_missing_required_attribute);
	tcase_add_test(tc, rejects_ill_typed_and_malformed_attributes);
	tcase_add_test(tc, rejects_oversized_message_before_parsing);
	tcase_add_test(tc, time_parse_handles_offsets_and_fractions);
	tcase_add_test(tc, time_format_is_rfc3339_utc_millis);
	tcase_add_test(tc, traceparent_rules);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
