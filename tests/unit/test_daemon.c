/* Unit tests for daemon: the signals a daemon reacts to only set the stop
 * flag, a second one ends the process at once, and a peer hanging up
 * (SIGPIPE) does not kill the process. */
#include <check.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
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

START_TEST(a_second_stop_signal_exits_at_once_and_says_so)
{
	int fds[2], status;
	char out[256] = "";
	ssize_t n;
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		es_stop = 0;
		if (es_daemon_signals() || raise(SIGINT) || !es_stop)
			_exit(1);
		raise(SIGTERM); /* does not return */
		_exit(2);
	}
	close(fds[1]);
	n = read(fds[0], out, sizeof(out) - 1);
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 128 + SIGTERM);
	ck_assert_int_gt(n, 0);
	ck_assert_msg(strstr(out, "a second stop signal: exiting at once"), "%s", out);
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
	tcase_add_test(tc, a_second_stop_signal_exits_at_once_and_says_so);
	tcase_add_test(tc, sigpipe_is_ignored);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
