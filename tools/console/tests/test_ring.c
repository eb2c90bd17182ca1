/*
 * unit.tools.console.ring: the console's memory stays within its frame and
 * byte bounds whatever is pushed, numbers frames without gaps, and a
 * reader that fell behind skips to the oldest frame still held.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

static unsigned long long push(struct console_ring *r, const char *text)
{
	return console_ring_push(r, strdup(text), strlen(text));
}

START_TEST(numbers_and_reads_in_order)
{
	struct console_ring *r = console_ring_new(4, 1000);
	unsigned long long seq;
	size_t len;
	char *f;

	ck_assert_ptr_null(console_ring_get(r, 1, &seq, &len));
	ck_assert_uint_eq(console_ring_next_seq(r), 1);
	ck_assert_uint_eq(push(r, "a"), 1);
	ck_assert_uint_eq(push(r, "bb"), 2);
	f = console_ring_get(r, 2, &seq, &len);
	ck_assert_str_eq(f, "bb");
	ck_assert_uint_eq(seq, 2);
	ck_assert_uint_eq(len, 2);
	free(f);
	ck_assert_ptr_null(console_ring_get(r, 3, &seq, &len));
	console_ring_free(r);
}
END_TEST

START_TEST(frame_bound)
{
	struct console_ring *r = console_ring_new(3, 1 << 20);
	unsigned long long seq;
	size_t frames, bytes, len;
	char text[32], *f;

	for (int i = 1; i <= 1000; i++) {
		snprintf(text, sizeof(text), "frame %d", i);
		ck_assert_uint_eq(push(r, text), (unsigned long long)i);
		console_ring_usage(r, &frames, &bytes);
		ck_assert_uint_le(frames, 3);
	}
	/* A reader at 1 fell behind: it gets the oldest held, 998. */
	f = console_ring_get(r, 1, &seq, &len);
	ck_assert_str_eq(f, "frame 998");
	ck_assert_uint_eq(seq, 998);
	free(f);
	console_ring_free(r);
}
END_TEST

START_TEST(byte_bound)
{
	struct console_ring *r = console_ring_new(1000, 100);
	char big[41];
	size_t frames, bytes;

	memset(big, 'x', 40);
	big[40] = '\0';
	for (int i = 0; i < 50; i++) {
		ck_assert_uint_ne(push(r, big), 0);
		console_ring_usage(r, &frames, &bytes);
		ck_assert_uint_le(bytes, 100);
	}
	ck_assert_uint_eq(frames, 2);
	/* A frame larger than the whole budget is refused, not kept. */
	{
		char *huge = malloc(102);

		memset(huge, 'y', 101);
		huge[101] = '\0';
		ck_assert_uint_eq(console_ring_push(r, huge, 101), 0);
	}
	console_ring_usage(r, &frames, &bytes);
	ck_assert_uint_eq(frames, 2);
	console_ring_free(r);
}
END_TEST

START_TEST(zero_capacity_refused)
{
	ck_assert_ptr_null(console_ring_new(0, 100));
	console_ring_free(NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tools.console.ring");
	TCase *tc = tcase_create("ring");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, numbers_and_reads_in_order);
	tcase_add_test(tc, frame_bound);
	tcase_add_test(tc, byte_bound);
	tcase_add_test(tc, zero_capacity_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
