/* Unit tests for config: defaults, validation errors that name the
 * variable, and the KAFKA_* pass-through. */
#include <limits.h>

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "es/config.h"

START_TEST(unset_variable_takes_default)
{
	long n = 0;
	bool b = false;
	char err[256];

	unsetenv("ES_T_PORT");
	ck_assert_int_eq(es_config_long("ES_T_PORT", 8080, 1, 65535, &n, err, sizeof(err)), 0);
	ck_assert_int_eq(n, 8080);
	ck_assert_str_eq(es_config_str("ES_T_PORT", "dflt"), "dflt");
	setenv("ES_T_PORT", "", 1); /* empty counts as unset */
	ck_assert_str_eq(es_config_str("ES_T_PORT", "dflt"), "dflt");
	ck_assert_int_eq(es_config_bool("ES_T_FLAG", true, &b, err, sizeof(err)), 0);
	ck_assert(b);
}
END_TEST

START_TEST(bad_number_names_the_variable)
{
	static const char *const bad[] = {"80x", "0", "70000", "-1", " 1", "99999999999999999999"};
	long n = 0;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("ES_T_PORT", bad[i], 1);
		ck_assert_int_eq(es_config_long("ES_T_PORT", 8080, 1, 65535, &n, err, sizeof(err)),
				 -1);
		ck_assert_msg(!strncmp(err, "ES_T_PORT: ", 11), "got %s", err);
	}
	setenv("ES_T_PORT", "8443", 1);
	ck_assert_int_eq(es_config_long("ES_T_PORT", 8080, 1, 65535, &n, err, sizeof(err)), 0);
	ck_assert_int_eq(n, 8443);
}
END_TEST

START_TEST(numbers_are_digits_only_within_bounds)
{
	long long v = 42;

	ck_assert_int_eq(es_parse_ll("0", 0, 10, &v), 0);
	ck_assert_int_eq(v, 0);
	ck_assert_int_eq(es_parse_ll("-17", -20, 0, &v), 0);
	ck_assert_int_eq(v, -17);
	ck_assert_int_eq(es_parse_ll("9223372036854775807", 0, LLONG_MAX, &v), 0);
	ck_assert(v == LLONG_MAX);

	v = 42;
	ck_assert_int_eq(es_parse_ll(NULL, 0, 10, &v), -1);
	ck_assert_int_eq(es_parse_ll("", 0, 10, &v), -1);
	ck_assert_int_eq(es_parse_ll(" 5", 0, 10, &v), -1);
	ck_assert_int_eq(es_parse_ll("+5", 0, 10, &v), -1);
	ck_assert_int_eq(es_parse_ll("-", -10, 10, &v), -1);
	ck_assert_int_eq(es_parse_ll("5 ", 0, 10, &v), -1);
	ck_assert_int_eq(es_parse_ll("12.5", 0, 100, &v), -1);
	ck_assert_int_eq(es_parse_ll("0x10", 0, 100, &v), -1);
	ck_assert_int_eq(es_parse_ll("11", 0, 10, &v), -1);
	ck_assert_int_eq(es_parse_ll("-1", 0, 10, &v), -1);
	ck_assert_int_eq(es_parse_ll("9223372036854775808", 0, LLONG_MAX, &v), -1);
	ck_assert_int_eq(v, 42); /* untouched by every refusal */
}
END_TEST

START_TEST(booleans_and_enums)
{
	static const char *const modes[] = {"maildir", "smtp", NULL};
	const char *mode = NULL;
	bool b = true;
	char err[256];

	setenv("ES_T_FLAG", "off", 1);
	ck_assert_int_eq(es_config_bool("ES_T_FLAG", true, &b, err, sizeof(err)), 0);
	ck_assert(!b);
	setenv("ES_T_FLAG", "perhaps", 1);
	ck_assert_int_eq(es_config_bool("ES_T_FLAG", true, &b, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "ES_T_FLAG"));

	unsetenv("ES_T_MODE");
	ck_assert_int_eq(es_config_enum("ES_T_MODE", "maildir", modes, &mode, err, sizeof(err)), 0);
	ck_assert_str_eq(mode, "maildir");
	setenv("ES_T_MODE", "pigeon", 1);
	ck_assert_int_eq(es_config_enum("ES_T_MODE", "maildir", modes, &mode, err, sizeof(err)),
			 -1);
	ck_assert_str_eq(err, "ES_T_MODE: \"pigeon\" is not one of: maildir smtp");
}
END_TEST

START_TEST(kafka_passthrough_maps_names)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256], value[64];
	size_t size = sizeof(value);

	setenv("KAFKA_SOCKET_KEEPALIVE_ENABLE", "true", 1);
	setenv("KAFKA_STATISTICS_INTERVAL_MS", "5000", 1);
	ck_assert_int_eq(es_config_kafka_passthrough(conf, err, sizeof(err)), 2);
	ck_assert_int_eq(rd_kafka_conf_get(conf, "statistics.interval.ms", value, &size),
			 RD_KAFKA_CONF_OK);
	ck_assert_str_eq(value, "5000");
	rd_kafka_conf_destroy(conf);
}
END_TEST

START_TEST(kafka_passthrough_rejects_unknown_property)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];

	setenv("KAFKA_NO_SUCH_THING", "1", 1);
	ck_assert_int_eq(es_config_kafka_passthrough(conf, err, sizeof(err)), -1);
	ck_assert_msg(!strncmp(err, "KAFKA_NO_SUCH_THING: ", 21), "got %s", err);
	unsetenv("KAFKA_NO_SUCH_THING");
	rd_kafka_conf_destroy(conf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	/* Start from a clean slate of KAFKA_* variables. */
	unsetenv("KAFKA_BOOTSTRAP_SERVERS");
	tcase_add_test(tc, unset_variable_takes_default);
	tcase_add_test(tc, bad_number_names_the_variable);
	tcase_add_test(tc, numbers_are_digits_only_within_bounds);
	tcase_add_test(tc, booleans_and_enums);
	tcase_add_test(tc, kafka_passthrough_maps_names);
	tcase_add_test(tc, kafka_passthrough_rejects_unknown_property);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
