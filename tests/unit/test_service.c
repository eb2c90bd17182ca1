/* Unit tests for service: a daemon refuses a bad configuration at start
 * with an error that names the variable, before connecting anywhere. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "es/log.h"

#include "es/service.h"

static const struct es_service_spec spec = {.name = "unit-service", .http_port = 8089};

static void expect_refusal(const char *var, const char *value)
{
	struct es_service svc;
	char err[512];

	setenv(var, value, 1);
	ck_assert_int_eq(es_service_init(&svc, &spec, err, sizeof(err)), -1);
	ck_assert_msg(!strncmp(err, var, strlen(var)), "%s=%s: %s", var, value, err);
	unsetenv(var);
}

START_TEST(bad_settings_are_refused_by_name)
{
	expect_refusal("HTTP_PORT", "80x");
	expect_refusal("HTTP_PORT", "70000");
	expect_refusal("HTTP_THREADS", "0");
	expect_refusal("LOG_LEVEL", "loud");
	expect_refusal("DATABASE_CONNECT_TIMEOUT_MS", "-1");
	expect_refusal("DATABASE_SCHEMA",
		       "a_schema_name_that_is_much_longer_than_sixty_four_bytes_allowed_here");
	expect_refusal("INSTANCE_ID", "pay ment/1");
}
END_TEST

/* The consumer's group.instance.id: stable across restarts, one per
 * instance, none where nothing stable is known (es_service_instance_id). */
START_TEST(instance_id_is_stable_per_host_and_port)
{
	char id[250], err[256];
	char long_id[300];

	ck_assert_int_eq(es_service_instance_id(NULL, "payment-service", "shop-7f9c", 8081, id,
						sizeof(id), err, sizeof(err)),
			 0);
	ck_assert_str_eq(id, "payment-service.shop-7f9c.8081");
	/* A hostname's other characters become '-'. */
	ck_assert_int_eq(es_service_instance_id(NULL, "payment-service", "a:b@c", 8081, id,
						sizeof(id), err, sizeof(err)),
			 0);
	ck_assert_str_eq(id, "payment-service.a-b-c.8081");
	/* HTTP_PORT=0: the port changes with every start, so no static id. */
	ck_assert_int_eq(es_service_instance_id(NULL, "payment-service", "h", 0, id, sizeof(id),
						err, sizeof(err)),
			 0);
	ck_assert_str_eq(id, "");
	ck_assert_int_eq(es_service_instance_id("payment-2", "payment-service", "h", 0, id,
						sizeof(id), err, sizeof(err)),
			 0);
	ck_assert_str_eq(id, "payment-2");
	ck_assert_int_eq(es_service_instance_id("none", "payment-service", "h", 8081, id,
						sizeof(id), err, sizeof(err)),
			 0);
	ck_assert_str_eq(id, "");
	ck_assert_int_eq(es_service_instance_id("a/b", "payment-service", "h", 8081, id, sizeof(id),
						err, sizeof(err)),
			 -1);
	ck_assert_msg(strstr(err, "INSTANCE_ID") != NULL, "%s", err);
	memset(long_id, 'x', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	ck_assert_int_eq(es_service_instance_id(long_id, "payment-service", "h", 8081, id,
						sizeof(id), err, sizeof(err)),
			 -1);
}
END_TEST

START_TEST(defaults_name_the_schema_after_the_service)
{
	char path[] = "/tmp/es-service-log-XXXXXX";
	int fd = mkstemp(path);
	struct es_service svc;
	char err[512], text[4096] = "";
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	unsetenv("DATABASE_SCHEMA");
	/* Nothing listens on port 1: init reads the configuration, logs it,
	 * then fails at the database. */
	setenv("DATABASE_URL", "host=127.0.0.1 port=1", 1);
	setenv("DATABASE_CONNECT_TIMEOUT_MS", "0", 1);
	es_log_set_fd(fd);
	ck_assert_int_eq(es_service_init(&svc, &spec, err, sizeof(err)), -1);
	es_log_set_fd(2);
	ck_assert_msg(!strncmp(err, "DATABASE_URL", 12), "%s", err);
	n = pread(fd, text, sizeof(text) - 1, 0);
	ck_assert_int_gt(n, 0);
	ck_assert_msg(strstr(text, "database schema unit_service,") != NULL, "%s", text);
	close(fd);
	unlink(path);
	unsetenv("DATABASE_URL");
	unsetenv("DATABASE_CONNECT_TIMEOUT_MS");
}
END_TEST

START_TEST(topics_default_to_the_contract_and_can_be_renamed)
{
	struct es_topics t;
	char err[256];

	unsetenv("TOPIC_ORDERS");
	setenv("TOPIC_PAYMENTS", "shop.payments", 1);
	ck_assert_int_eq(es_service_topics(&t, err, sizeof(err)), 0);
	ck_assert_str_eq(t.orders, "orders");
	ck_assert_str_eq(t.payments, "shop.payments");
	ck_assert_str_eq(t.inventory, "inventory");
	ck_assert_str_eq(t.notifications, "notifications");
	unsetenv("TOPIC_PAYMENTS");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("service");
	TCase *tc = tcase_create("config");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, bad_settings_are_refused_by_name);
	tcase_add_test(tc, defaults_name_the_schema_after_the_service);
	tcase_add_test(tc, topics_default_to_the_contract_and_can_be_renamed);
	tcase_add_test(tc, instance_id_is_stable_per_host_and_port);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
