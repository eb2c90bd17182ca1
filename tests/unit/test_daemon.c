/* Unit tests for daemon: the signals a daemon reacts to only set the stop
 * flag, and a peer hanging up (SIGPIPE) does not kill the process. */
#include <check.h>
#include <signal.h>
#include <unistd.h>

#include "es/daemon.h"

START_TEST(sigterm_and_sigint_only_set_the_stop_flag)
{
	ck_assert_int_eq(es_daemon_signals(), 0);
	es_stop = 0;
	ck_assert_int_eq(raise(SIGTERM), 0);
	ck_assert_int_eq(es_stop, 1);
	es_stop = 0;
	ck_assert_int_eq(raise(SIGINT), 0);
	ck_assert_int_eq(es_stop, 1);
	es_stop = 0;
}
END_TEST

START_TEST(sigpipe_is_ignored)
{
	int fds[2];

	ck_assert_int_eq(es_daemon_signals(), 0);
	ck_assert_int_eq(pipe(fds), 0);
	close(fds[0]);
	/* Writing to a pipe nobody reads fails with EPIPE instead of killing. */
	ck_assert_int_eq(write(fds[1], "x", 1), -1);
	close(fds[1]);
	ck_assert_int_eq(es_stop, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("daemon");
	TCase *tc = tcase_create("signals");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, sigterm_and_sigint_only_set_the_stop_flag);
	tcase_add_test(tc, sigpipe_is_ignored);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
