/*
 * Unit tests of delivery.c's configuration: the defaults work, and every
 * bad value stops the start with an error that names its variable.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "delivery.h"

static char root[256];
static char maildir[512];

/* Every variable unset, and MAILDIR in a fresh temporary directory. */
static void setup(void)
{
	unsetenv("EMAIL_FROM");
	unsetenv("SMTP_URL");
	unsetenv("SMTP_TIMEOUT_MS");
	snprintf(root, sizeof(root), "/tmp/email_config_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
	snprintf(maildir, sizeof(maildir), "%s/mail", root);
	setenv("MAILDIR", maildir, 1);
}

static void teardown(void)
{
	static const char *const subs[] = {"tmp", "new", "cur"};
	char path[600];

	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", maildir, subs[i]);
		rmdir(path);
	}
	rmdir(maildir);
	snprintf(path, sizeof(path), "%s/file", root);
	unlink(path);
	rmdir(root);
}

/* Expects the configuration to fail with errstr starting with prefix. */
static void assert_refused(const char *prefix)
{
	struct email_delivery d;
	char errstr[512] = "";

	ck_assert_int_eq(email_delivery_config(&d, errstr, sizeof(errstr)), -1);
	ck_assert_msg(!strncmp(errstr, prefix, strlen(prefix)), "\"%s\" should start with %s",
		      errstr, prefix);
}

START_TEST(defaults_deliver_to_a_created_maildir)
{
	struct email_delivery d;
	char errstr[512], path[600];
	struct stat st;

	ck_assert_msg(email_delivery_config(&d, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_ptr_null(d.smtp_url);
	ck_assert_str_eq(d.maildir, maildir);
	ck_assert_str_eq(d.from, "eventshop <shop@eventshop.local>");
	ck_assert_str_eq(d.from_addr, "shop@eventshop.local");
	ck_assert_int_eq(d.smtp_timeout_ms, 30000);
	snprintf(path, sizeof(path), "%s/new", maildir);
	ck_assert_int_eq(stat(path, &st), 0);
}
END_TEST

START_TEST(smtp_url_selects_smtp_and_hides_the_password)
{
	struct email_delivery d;
	char errstr[512];

	setenv("SMTP_URL", "smtp://user:secret@127.0.0.1:1025", 1);
	ck_assert_msg(email_delivery_config(&d, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_ptr_null(d.maildir);
	ck_assert_str_eq(d.shown, "smtp://127.0.0.1:1025");
	ck_assert_ptr_null(strstr(d.shown, "secret"));

	setenv("SMTP_URL", "smtps://mail.example.com", 1);
	ck_assert_msg(email_delivery_config(&d, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_str_eq(d.shown, "smtps://mail.example.com:465");
}
END_TEST

START_TEST(bad_smtp_url_names_smtp_url)
{
	setenv("SMTP_URL", "http://127.0.0.1:1025", 1);
	assert_refused("SMTP_URL: ");
	setenv("SMTP_URL", "smtp://", 1);
	assert_refused("SMTP_URL: ");
	setenv("SMTP_URL", "not a url", 1);
	assert_refused("SMTP_URL: ");
}
END_TEST

START_TEST(bad_email_from_names_email_from)
{
	setenv("EMAIL_FROM", "shop", 1);
	assert_refused("EMAIL_FROM: ");
	setenv("EMAIL_FROM", "Shop <shop@example.com", 1);
	assert_refused("EMAIL_FROM: ");
	setenv("EMAIL_FROM", "Shop\r\nBcc: x@example.com <shop@example.com>", 1);
	assert_refused("EMAIL_FROM: ");
}
END_TEST

START_TEST(custom_email_from_is_used)
{
	struct email_delivery d;
	char errstr[512];

	setenv("EMAIL_FROM", "Kafka Shop <orders@shop.example>", 1);
	ck_assert_msg(email_delivery_config(&d, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_str_eq(d.from, "Kafka Shop <orders@shop.example>");
	ck_assert_str_eq(d.from_addr, "orders@shop.example");
}
END_TEST

START_TEST(uncreatable_maildir_names_maildir)
{
	char file[512], dir[600];
	FILE *f;

	snprintf(file, sizeof(file), "%s/file", root);
	f = fopen(file, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	snprintf(dir, sizeof(dir), "%s/mail", file);
	setenv("MAILDIR", dir, 1);
	assert_refused("MAILDIR: ");
}
END_TEST

START_TEST(bad_smtp_timeout_names_smtp_timeout_ms)
{
	setenv("SMTP_TIMEOUT_MS", "soon", 1);
	assert_refused("SMTP_TIMEOUT_MS");
	setenv("SMTP_TIMEOUT_MS", "0", 1);
	assert_refused("SMTP_TIMEOUT_MS");
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("email configuration");
	TCase *tc = tcase_create("config");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, defaults_deliver_to_a_created_maildir);
	tcase_add_test(tc, smtp_url_selects_smtp_and_hides_the_password);
	tcase_add_test(tc, bad_smtp_url_names_smtp_url);
	tcase_add_test(tc, bad_email_from_names_email_from);
	tcase_add_test(tc, custom_email_from_is_used);
	tcase_add_test(tc, uncreatable_maildir_names_maildir);
	tcase_add_test(tc, bad_smtp_timeout_names_smtp_timeout_ms);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
