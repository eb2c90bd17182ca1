/* Unit tests for shopctl's escaping (util.c): what a terminal is shown of
 * bytes shopctl did not write, the columns that takes, and where a cut
 * after n characters falls. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shopctl.h"

struct shown {
	char *out; /* what was written, NUL-terminated; malloc'd */
	size_t cols;
	bool valid;
};

static void show(struct shown *s, const char *buf, size_t len, int flags)
{
	size_t size = 0;
	FILE *f;

	s->out = NULL;
	f = open_memstream(&s->out, &size);
	ck_assert_ptr_nonnull(f);
	s->valid = shopctl_print_escaped(f, buf, len, flags, &s->cols);
	ck_assert_int_eq(fclose(f), 0);
}

/* Shows the string s, checks the output, its columns and validity. */
static void check_shown(const char *s, int flags, const char *want, size_t cols, bool valid)
{
	struct shown got;

	show(&got, s, strlen(s), flags);
	ck_assert_str_eq(got.out, want);
	ck_assert_uint_eq(got.cols, cols);
	ck_assert(got.valid == valid);
	free(got.out);
}

START_TEST(control_characters_are_escaped_in_valid_utf8)
{
	check_shown("plain \\ text", 0, "plain \\ text", 12, true);
	check_shown("a\nb\tc\rd", 0, "a\\nb\\tc\\rd", 10, true);
	check_shown("\033[2J\a\x7f", 0, "\\x1b[2J\\x07\\x7f", 15, true);
	check_shown("a\nb\tc\r", SHOPCTL_ESC_MULTILINE, "a\nb\tc\\r", 7, true);
	/* Other characters stand for themselves, one column each. */
	check_shown("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82", 0,
		    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82", 8, true);
}
END_TEST

START_TEST(c1_control_characters_are_escaped_like_esc)
{
	/* U+009B is CSI: some terminals take it for ESC [. */
	check_shown("x\xc2\x9b"
		    "2Jy",
		    0, "x\\xc2\\x9b2Jy", 12, true);
	check_shown("\xc2\x80\xc2\x9f", SHOPCTL_ESC_MULTILINE, "\\xc2\\x80\\xc2\\x9f", 16, true);
	/* U+00A0 and up are printable. */
	check_shown("\xc2\xa0\xc2\xa9", 0, "\xc2\xa0\xc2\xa9", 2, true);
}
END_TEST

START_TEST(invalid_utf8_is_escaped_byte_by_byte)
{
	static const char key[] = {'k', (char)0x80};
	struct shown got;

	check_shown("\xff\xfe{not json\x01", 0, "\\xff\\xfe{not json\\x01", 21, false);
	/* Then a backslash is escaped too, so the output reads back. */
	check_shown("\\\xc3\xa9\xc0", 0, "\\\\\\xc3\\xa9\\xc0", 14, false);
	show(&got, key, sizeof(key), 0);
	ck_assert_str_eq(got.out, "k\\x80");
	ck_assert_uint_eq(got.cols, 5);
	ck_assert(!got.valid);
	free(got.out);
	/* Overlongs and surrogates are not valid either. */
	check_shown("\xc0\xaf", 0, "\\xc0\\xaf", 8, false);
	check_shown("\xed\xa0\x80", 0, "\\xed\\xa0\\x80", 12, false);
}
END_TEST

START_TEST(columns_are_optional)
{
	size_t size = 0;
	char *out = NULL;
	FILE *f = open_memstream(&out, &size);

	ck_assert_ptr_nonnull(f);
	ck_assert(shopctl_print_escaped(f, "a\x01", 2, 0, NULL));
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_str_eq(out, "a\\x01");
	free(out);
}
END_TEST

START_TEST(a_prefix_of_n_characters_ends_between_characters)
{
	const char *s = "\xc3\xa9t\xc3\xa9 \xf0\x9f\x99\x82!";

	ck_assert_uint_eq(shopctl_utf8_prefix(s, strlen(s), 0), 0);
	ck_assert_uint_eq(shopctl_utf8_prefix(s, strlen(s), 1), 2);
	ck_assert_uint_eq(shopctl_utf8_prefix(s, strlen(s), 3), 5);
	ck_assert_uint_eq(shopctl_utf8_prefix(s, strlen(s), 5), 10);
	ck_assert_uint_eq(shopctl_utf8_prefix(s, strlen(s), 6), strlen(s));
	ck_assert_uint_eq(shopctl_utf8_prefix(s, strlen(s), 100), strlen(s));
	ck_assert_uint_eq(shopctl_utf8_prefix("x\xc2\x9by", 4, 2), 3);
	/* Not valid UTF-8: bytes, as they are escaped one by one. */
	ck_assert_uint_eq(shopctl_utf8_prefix("\xff\xc3\xa9z", 4, 2), 2);
	ck_assert_uint_eq(shopctl_utf8_prefix("\xff\xc3", 2, 8), 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tools.shopctl.util");
	TCase *tc = tcase_create("escape");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, control_characters_are_escaped_in_valid_utf8);
	tcase_add_test(tc, c1_control_characters_are_escaped_like_esc);
	tcase_add_test(tc, invalid_utf8_is_escaped_byte_by_byte);
	tcase_add_test(tc, columns_are_optional);
	tcase_add_test(tc, a_prefix_of_n_characters_ends_between_characters);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
