/*
 * unit.tools.console.sse: SSE framing. A newline inside data never ends
 * the event early, ids and event names cannot carry one, comments are
 * single lines, and Last-Event-ID is honoured only from this boot.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

static char *frame(const char *id, const char *event, const char *data)
{
	size_t len = 0;
	char *f = console_sse_event(id, event, data, strlen(data), &len);

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(len, strlen(f));
	return f;
}

START_TEST(one_line)
{
	char *f = frame("b.1", "kafka", "{\"a\":1}");

	ck_assert_str_eq(f, "id: b.1\nevent: kafka\ndata: {\"a\":1}\n\n");
	free(f);
}
END_TEST

START_TEST(no_id_no_event)
{
	char *f = frame(NULL, NULL, "x");

	ck_assert_str_eq(f, "data: x\n\n");
	free(f);
}
END_TEST

START_TEST(multi_line_data)
{
	char *f = frame("b.2", NULL, "one\ntwo\r\nthree\rfour");

	ck_assert_str_eq(f, "id: b.2\ndata: one\ndata: two\ndata: three\ndata: four\n\n");
	free(f);
}
END_TEST

START_TEST(empty_lines_kept)
{
	char *f = frame(NULL, NULL, "a\n\nb\n");

	/* A browser joins data lines with \n: "a\n\nb\n" comes back whole. */
	ck_assert_str_eq(f, "data: a\ndata: \ndata: b\ndata: \n\n");
	free(f);
	f = frame(NULL, NULL, "");
	ck_assert_str_eq(f, "data: \n\n");
	free(f);
}
END_TEST

START_TEST(injection_in_data_cannot_forge_an_event)
{
	char *f = frame("b.3", "kafka", "x\n\nid: b.999\nevent: hello\ndata: forged");

	/* Every line is a data line of the one event. */
	ck_assert_str_eq(f, "id: b.3\nevent: kafka\ndata: x\ndata: \ndata: id: b.999\n"
			    "data: event: hello\ndata: data: forged\n\n");
	free(f);
}
END_TEST

START_TEST(line_breaks_in_id_or_event_refused)
{
	ck_assert_ptr_null(console_sse_event("b.1\nevent: x", NULL, "d", 1, NULL));
	ck_assert_ptr_null(console_sse_event(NULL, "kafka\r", "d", 1, NULL));
}
END_TEST

START_TEST(comment)
{
	size_t len;
	char *c = console_sse_comment("keep-alive", &len);

	ck_assert_str_eq(c, ": keep-alive\n\n");
	ck_assert_uint_eq(len, 14);
	free(c);
	c = console_sse_comment("a\nb\rc", &len);
	ck_assert_str_eq(c, ": a b c\n\n");
	free(c);
}
END_TEST

START_TEST(ids_and_resume)
{
	char id[64];
	unsigned long long seq = 0;

	console_sse_id(id, sizeof(id), "0123abcd", 42);
	ck_assert_str_eq(id, "0123abcd.42");
	ck_assert(console_sse_resume_after(id, "0123abcd", &seq));
	ck_assert_uint_eq(seq, 42);
	/* Another boot, or anything malformed: start again from the ring. */
	ck_assert(!console_sse_resume_after("ffff0000.42", "0123abcd", &seq));
	ck_assert(!console_sse_resume_after(NULL, "0123abcd", &seq));
	ck_assert(!console_sse_resume_after("0123abcd", "0123abcd", &seq));
	ck_assert(!console_sse_resume_after("0123abcd.", "0123abcd", &seq));
	ck_assert(!console_sse_resume_after("0123abcd.-1", "0123abcd", &seq));
	ck_assert(!console_sse_resume_after("0123abcd.1x", "0123abcd", &seq));
	ck_assert(!console_sse_resume_after("0123abcdef.1", "0123abcd", &seq));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tools.console.sse");
	TCase *tc = tcase_create("sse");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, one_line);
	tcase_add_test(tc, no_id_no_event);
	tcase_add_test(tc, multi_line_data);
	tcase_add_test(tc, empty_lines_kept);
	tcase_add_test(tc, injection_in_data_cannot_forge_an_event);
	tcase_add_test(tc, line_breaks_in_id_or_event_refused);
	tcase_add_test(tc, comment);
	tcase_add_test(tc, ids_and_resume);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
