/* Unit tests for log: one valid JSON object per line, with the ids. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "es/log.h"

/* Captures what es_log writes through a pipe and parses the one line. */
static json_t *capture(enum es_log_level level, const struct es_log_ctx *ctx, const char *msg)
{
	int fds[2];
	char buf[8192];
	ssize_t n;
	json_t *line;

	ck_assert_int_eq(pipe(fds), 0);
	es_log_set_fd(fds[1]);
	es_log(level, ctx, "%s", msg);
	es_log_set_fd(2);
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	ck_assert_msg(buf[n - 1] == '\n' && !strchr(buf, '\n')[1], "one line: %s", buf);
	line = json_loads(buf, 0, NULL);
	ck_assert_msg(line != NULL, "not JSON: %s", buf);
	return line;
}

START_TEST(line_is_json_with_service_level_and_ids)
{
	struct es_log_ctx ctx = {"order-1", "event-1", "trace-1"};
	json_t *line;

	es_log_init("payment-service", ES_LOG_INFO);
	line = capture(ES_LOG_WARN, &ctx, "quote \" and newline \n survive");
	ck_assert_str_eq(json_string_value(json_object_get(line, "level")), "warn");
	ck_assert_str_eq(json_string_value(json_object_get(line, "service")), "payment-service");
	ck_assert_str_eq(json_string_value(json_object_get(line, "msg")),
			 "quote \" and newline \n survive");
	ck_assert_str_eq(json_string_value(json_object_get(line, "orderId")), "order-1");
	ck_assert_str_eq(json_string_value(json_object_get(line, "eventId")), "event-1");
	ck_assert_str_eq(json_string_value(json_object_get(line, "traceId")), "trace-1");
	ck_assert_int_eq(strlen(json_string_value(json_object_get(line, "time"))), 24);
	json_decref(line);
}
END_TEST

START_TEST(below_min_level_writes_nothing)
{
	es_log_init("x", ES_LOG_WARN);
	ck_assert_ptr_null(capture(ES_LOG_INFO, NULL, "quiet"));
	es_log_init("x", ES_LOG_INFO);
}
END_TEST

START_TEST(invalid_utf8_message_still_logs_a_line)
{
	json_t *line;

	es_log_init("x", ES_LOG_DEBUG);
	line = capture(ES_LOG_ERROR, NULL, "bad \xff\xfe bytes");
	ck_assert_ptr_nonnull(line);
	ck_assert_str_eq(json_string_value(json_object_get(line, "level")), "error");
	json_decref(line);
}
END_TEST

START_TEST(level_names_parse)
{
	enum es_log_level l;

	ck_assert_int_eq(es_log_level_parse("debug", &l), 0);
	ck_assert_int_eq(l, ES_LOG_DEBUG);
	ck_assert_int_eq(es_log_level_parse("error", &l), 0);
	ck_assert_int_eq(l, ES_LOG_ERROR);
	ck_assert_int_eq(es_log_level_parse("loud", &l), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, line_is_json_with_service_level_and_ids);
	tcase_add_test(tc, below_min_level_writes_nothing);
	tcase_add_test(tc, invalid_utf8_message_still_logs_a_line);
	tcase_add_test(tc, level_names_parse);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
