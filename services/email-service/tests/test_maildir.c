/*
 * Unit tests of maildir.c and the delivery names: a delivery lands exactly
 * one file in new/ under the deterministic name, leaves nothing in tmp/,
 * and delivering the same message again still leaves one file. A batch's
 * staged messages stay out of new/ until published together, and a batch
 * discarded or failed leaves nothing in tmp/.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "delivery.h"
#include "maildir.h"

#define ORDER "0b6f2c9e-51d4-4e8a-9c1f-3a7d2e6b8f40"
#define MESSAGE "Subject: hello\r\n\r\nbody\r\n"

static char root[256];

static void make_root(void)
{
	snprintf(root, sizeof(root), "/tmp/email_maildir_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(root));
}

static void remove_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	if (!d) {
		unlink(path);
		return;
	}
	while ((e = readdir(d))) {
		char child[1024];

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(child, sizeof(child), "%s/%s", path, e->d_name);
		remove_tree(child);
	}
	closedir(d);
	rmdir(path);
}

/* The number of entries in dir/sub (without . and ..); the last one's name
 * into last. */
static int count_files(const char *dir, const char *sub, char *last, size_t size)
{
	char path[1024];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, sub);
	d = opendir(path);
	ck_assert_msg(d, "cannot open %s", path);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		n++;
		if (last)
			snprintf(last, size, "%s", e->d_name);
	}
	closedir(d);
	return n;
}

static char *read_file(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "rb");
	size_t n;

	ck_assert_msg(f, "cannot open %s", path);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* Stages one message and publishes it at once. */
static int deliver(const char *name, const char *message, char *errstr, size_t errstr_size)
{
	struct email_maildir_staged staged = {0};

	if (email_maildir_stage(&staged, root, name, message, strlen(message), errstr, errstr_size))
		return -1;
	return email_maildir_publish(&staged, root, errstr, errstr_size);
}

START_TEST(prepare_creates_tmp_new_and_cur_with_parents)
{
	char dir[512], errstr[256];
	struct stat st;

	make_root();
	snprintf(dir, sizeof(dir), "%s/var/maildir", root);
	ck_assert_msg(email_maildir_prepare(dir, errstr, sizeof(errstr)) == 0, "%s", errstr);
	/* Again: everything there already is fine. */
	ck_assert_msg(email_maildir_prepare(dir, errstr, sizeof(errstr)) == 0, "%s", errstr);
	for (int i = 0; i < 3; i++) {
		char sub[600];

		snprintf(sub, sizeof(sub), "%s/%s", dir, (const char *[]){"tmp", "new", "cur"}[i]);
		ck_assert_int_eq(stat(sub, &st), 0);
		ck_assert(S_ISDIR(st.st_mode));
	}
	remove_tree(root);
}
END_TEST

START_TEST(prepare_names_what_it_could_not_create)
{
	char file[512], dir[600], errstr[256];
	FILE *f;

	make_root();
	snprintf(file, sizeof(file), "%s/plainfile", root);
	f = fopen(file, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	snprintf(dir, sizeof(dir), "%s/maildir", file);
	ck_assert_int_eq(email_maildir_prepare(dir, errstr, sizeof(errstr)), -1);
	ck_assert_msg(strstr(errstr, "plainfile"), "%s", errstr);
	remove_tree(root);
}
END_TEST

START_TEST(prepare_removes_what_killed_deliveries_left_in_tmp)
{
	struct timeval old[2] = {{.tv_sec = time(NULL) - EMAIL_MAILDIR_TMP_MAX_AGE - 60},
				 {.tv_sec = time(NULL) - EMAIL_MAILDIR_TMP_MAX_AGE - 60}};
	char path[512], last[256], errstr[256];
	FILE *f;

	make_root();
	ck_assert_int_eq(email_maildir_prepare(root, errstr, sizeof(errstr)), 0);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/tmp/%s", root, i ? "stale" : "young");
		f = fopen(path, "w");
		ck_assert_ptr_nonnull(f);
		fclose(f);
	}
	ck_assert_int_eq(utimes(path, old), 0);
	ck_assert_int_eq(email_maildir_prepare(root, errstr, sizeof(errstr)), 0);
	/* The young one may be a delivery in progress: it stays. */
	ck_assert_int_eq(count_files(root, "tmp", last, sizeof(last)), 1);
	ck_assert_str_eq(last, "young");
	remove_tree(root);
}
END_TEST

START_TEST(delivery_lands_one_file_in_new_under_its_name)
{
	char name[128], last[256], path[1024], errstr[256];

	make_root();
	ck_assert_int_eq(email_maildir_prepare(root, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(email_maildir_name(ORDER, EMAIL_ORDER_RECEIVED, name, sizeof(name)), 0);
	ck_assert_str_eq(name, ORDER ".order-received.eml");
	ck_assert_msg(deliver(name, MESSAGE, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_int_eq(count_files(root, "new", last, sizeof(last)), 1);
	ck_assert_str_eq(last, name);
	ck_assert_int_eq(count_files(root, "tmp", NULL, 0), 0);
	ck_assert_int_eq(count_files(root, "cur", NULL, 0), 0);
	snprintf(path, sizeof(path), "%s/new/%s", root, name);
	ck_assert_str_eq(read_file(path), MESSAGE);
	remove_tree(root);
}
END_TEST

START_TEST(delivering_the_same_message_twice_leaves_one_file)
{
	char name[128], last[256], path[1024], errstr[256];
	const char *again = "Subject: hello\r\n\r\nbody, delivered again\r\n";

	make_root();
	ck_assert_int_eq(email_maildir_prepare(root, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(email_maildir_name(ORDER, EMAIL_REFUND_ISSUED, name, sizeof(name)), 0);
	ck_assert_int_eq(deliver(name, MESSAGE, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(deliver(name, again, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(count_files(root, "new", last, sizeof(last)), 1);
	ck_assert_str_eq(last, ORDER ".refund-issued.eml");
	ck_assert_int_eq(count_files(root, "tmp", NULL, 0), 0);
	/* The later delivery replaced the earlier file whole. */
	snprintf(path, sizeof(path), "%s/new/%s", root, name);
	ck_assert_str_eq(read_file(path), again);
	remove_tree(root);
}
END_TEST

START_TEST(different_templates_are_different_files)
{
	char name[128], errstr[256];

	make_root();
	ck_assert_int_eq(email_maildir_prepare(root, errstr, sizeof(errstr)), 0);
	for (int i = 0; i < EMAIL_NTEMPLATES; i++) {
		ck_assert_int_eq(email_maildir_name(ORDER, i, name, sizeof(name)), 0);
		ck_assert_int_eq(deliver(name, MESSAGE, errstr, sizeof(errstr)), 0);
	}
	ck_assert_int_eq(count_files(root, "new", NULL, 0), EMAIL_NTEMPLATES);
	ck_assert_int_eq(count_files(root, "tmp", NULL, 0), 0);
	remove_tree(root);
}
END_TEST

START_TEST(a_failed_delivery_leaves_nothing_behind)
{
	char path[512], errstr[256];

	make_root();
	ck_assert_int_eq(email_maildir_prepare(root, errstr, sizeof(errstr)), 0);
	/* new/ gone: the rename fails after tmp/ was written. */
	snprintf(path, sizeof(path), "%s/new", root);
	ck_assert_int_eq(rmdir(path), 0);
	ck_assert_int_eq(deliver("x.eml", MESSAGE, errstr, sizeof(errstr)), -1);
	ck_assert_msg(strstr(errstr, "cannot move"), "%s", errstr);
	ck_assert_int_eq(count_files(root, "tmp", NULL, 0), 0);
	remove_tree(root);
}
END_TEST

START_TEST(a_batch_is_published_together)
{
	struct email_maildir_staged staged = {0};
	char name[128], errstr[256];

	make_root();
	ck_assert_int_eq(email_maildir_prepare(root, errstr, sizeof(errstr)), 0);
	for (int i = 0; i < EMAIL_NTEMPLATES; i++) {
		ck_assert_int_eq(email_maildir_name(ORDER, i, name, sizeof(name)), 0);
		ck_assert_msg(email_maildir_stage(&staged, root, name, MESSAGE, strlen(MESSAGE),
						  errstr, sizeof(errstr)) == 0,
			      "%s", errstr);
	}
	/* Staged: written, not yet in new/ for a reader to see. */
	ck_assert_int_eq(count_files(root, "tmp", NULL, 0), EMAIL_NTEMPLATES);
	ck_assert_int_eq(count_files(root, "new", NULL, 0), 0);
	ck_assert_msg(email_maildir_publish(&staged, root, errstr, sizeof(errstr)) == 0, "%s",
		      errstr);
	ck_assert_int_eq(count_files(root, "new", NULL, 0), EMAIL_NTEMPLATES);
	ck_assert_int_eq(count_files(root, "tmp", NULL, 0), 0);
	ck_assert_uint_eq(staged.n, 0);
	/* Nothing staged: nothing to do. */
	ck_assert_int_eq(email_maildir_publish(&staged, root, errstr, sizeof(errstr)), 0);
	remove_tree(root);
}
END_TEST

START_TEST(a_discarded_batch_leaves_nothing_behind)
{
	struct email_maildir_staged staged = {0};
	char tmpdir[512], errstr[256];

	make_root();
	ck_assert_int_eq(email_maildir_prepare(root, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(email_maildir_stage(&staged, root, "a.eml", MESSAGE, strlen(MESSAGE),
					     errstr, sizeof(errstr)),
			 0);
	ck_assert_int_eq(email_maildir_stage(&staged, root, "b.eml", MESSAGE, strlen(MESSAGE),
					     errstr, sizeof(errstr)),
			 0);
	email_maildir_discard(&staged);
	ck_assert_uint_eq(staged.n, 0);
	ck_assert_int_eq(count_files(root, "tmp", NULL, 0), 0);
	ck_assert_int_eq(count_files(root, "new", NULL, 0), 0);
	/* A staging that fails leaves nothing either: tmp/ is gone. */
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", root);
	ck_assert_int_eq(rmdir(tmpdir), 0);
	ck_assert_int_eq(email_maildir_stage(&staged, root, "c.eml", MESSAGE, strlen(MESSAGE),
					     errstr, sizeof(errstr)),
			 -1);
	ck_assert_msg(strstr(errstr, "cannot open"), "%s", errstr);
	ck_assert_uint_eq(staged.n, 0);
	remove_tree(root);
}
END_TEST

START_TEST(names_that_leave_new_are_refused)
{
	char errstr[256];

	make_root();
	ck_assert_int_eq(email_maildir_prepare(root, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(deliver("../escape.eml", MESSAGE, errstr, sizeof(errstr)), -1);
	ck_assert_int_eq(deliver(".hidden", MESSAGE, errstr, sizeof(errstr)), -1);
	ck_assert_int_eq(deliver("", MESSAGE, errstr, sizeof(errstr)), -1);
	ck_assert_int_eq(count_files(root, "new", NULL, 0), 0);
	ck_assert_int_eq(count_files(root, "tmp", NULL, 0), 0);
	remove_tree(root);
}
END_TEST

static Suite *maildir_suite(void)
{
	Suite *s = suite_create("email maildir");
	TCase *tc = tcase_create("deliver");

	tcase_add_test(tc, prepare_creates_tmp_new_and_cur_with_parents);
	tcase_add_test(tc, prepare_names_what_it_could_not_create);
	tcase_add_test(tc, prepare_removes_what_killed_deliveries_left_in_tmp);
	tcase_add_test(tc, delivery_lands_one_file_in_new_under_its_name);
	tcase_add_test(tc, delivering_the_same_message_twice_leaves_one_file);
	tcase_add_test(tc, different_templates_are_different_files);
	tcase_add_test(tc, a_failed_delivery_leaves_nothing_behind);
	tcase_add_test(tc, a_batch_is_published_together);
	tcase_add_test(tc, a_discarded_batch_leaves_nothing_behind);
	tcase_add_test(tc, names_that_leave_new_are_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(maildir_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
