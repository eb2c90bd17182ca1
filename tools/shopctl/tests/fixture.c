#include "fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SHOPCTL_BIN
#error "SHOPCTL_BIN (the path of the shopctl binary) must be defined"
#endif

static char *slurp(int fd)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t n;

	ck_assert_ptr_nonnull(buf);
	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
	}
	buf[len] = '\0';
	close(fd);
	return buf;
}

/* job_start with the arguments as a va_list. */
static void job_start_va(struct job *j, const char *const *env, va_list ap)
{
	char out_path[] = "/tmp/it_shopctl_out_XXXXXX", err_path[] = "/tmp/it_shopctl_err_XXXXXX";

	j->out = mkstemp(out_path);
	j->err = mkstemp(err_path);
	ck_assert(j->out >= 0 && j->err >= 0);
	unlink(out_path);
	unlink(err_path);
	j->argv[0] = SHOPCTL_BIN;
	j->argc = 1;
	while (j->argc < 31 && (j->argv[j->argc] = va_arg(ap, const char *)))
		j->argc++;
	j->argv[j->argc] = NULL;
	fflush(NULL);
	j->pid = fork();
	ck_assert_int_ge(j->pid, 0);
	if (j->pid == 0) {
		for (size_t i = 0; env && env[i]; i++) {
			const char *eq = strchr(env[i], '=');

			if (eq) {
				char name[128];

				snprintf(name, sizeof(name), "%.*s", (int)(eq - env[i]), env[i]);
				setenv(name, eq + 1, 1);
			} else {
				unsetenv(env[i]);
			}
		}
		if (dup2(j->out, 1) < 0 || dup2(j->err, 2) < 0)
			_exit(126);
		execv(SHOPCTL_BIN, (char *const *)j->argv);
		_exit(127);
	}
}

void job_start(struct job *j, const char *const *env, ...)
{
	va_list ap;

	va_start(ap, env);
	job_start_va(j, env, ap);
	va_end(ap);
}

void job_finish(struct job *j, struct run *r, int timeout_ms)
{
	struct timespec start, now, tick = {0, 10 * 1000000};
	bool timed_out = false;
	int status = 0;
	pid_t got;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while ((got = waitpid(j->pid, &status, WNOHANG)) == 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000 >
		    timeout_ms) {
			kill(j->pid, SIGKILL);
			got = waitpid(j->pid, &status, 0);
			timed_out = true;
			break;
		}
		nanosleep(&tick, NULL);
	}
	ck_assert_int_eq(got, j->pid);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	r->out = slurp(j->out);
	r->err = slurp(j->err);
	/* Shown when an assertion fails, so the output is in the log. */
	printf("$ shopctl");
	for (int i = 1; i < j->argc; i++)
		printf(" %s", j->argv[i]);
	printf("\n[exit %d]\n--- stdout\n%s--- stderr\n%s", r->status, r->out, r->err);
	fflush(stdout);
	ck_assert_msg(!timed_out, "shopctl did not exit within %d ms", timeout_ms);
}

void run_env(struct run *r, const char *const *env, ...)
{
	struct job j;
	va_list ap;

	va_start(ap, env);
	job_start_va(&j, env, ap);
	va_end(ap);
	job_finish(&j, r, 120000);
}

void run_release(struct run *r)
{
	free(r->out);
	free(r->err);
}

int count(const char *haystack, const char *needle)
{
	int n = 0;

	for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

bool job_said(void *arg)
{
	struct job_text *jt = arg;
	char buf[8192];
	ssize_t n = pread(jt->job->err, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, jt->needle) != NULL;
}
