/*
 * fixture: what the shopctl tests share: running the shopctl binary as a
 * subprocess, the way a person runs it (exit status, stdout and stderr
 * collected, a deadline), and the order and dead-letter values the dlq and
 * watch tests both put on their topics. Failures end the test (Check
 * assertions).
 */
#ifndef SHOPCTL_TEST_FIXTURE_H
#define SHOPCTL_TEST_FIXTURE_H

#include <stdbool.h>
#include <string.h>
#include <sys/types.h>

#include <check.h>

#define ORDER "5c1a2b3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
#define DEAD_VALUE                                                                           \
	"{\"specversion\":\"1.0\",\"id\":\"0b6f2c9e-51d4-4e8a-9c1f-3a7d2e6b8f40\",\"type\":" \
	"\"Bogus\"}"
#define BAD_UTF8_VALUE "\xff\xfe{not json\x01"

struct run {
	int status; /* exit status, or -1 when it did not exit normally */
	char *out; /* stdout, NUL-terminated */
	char *err; /* stderr */
};

/* A shopctl started by job_start, running or done. */
struct job {
	pid_t pid;
	int out, err; /* its stdout and stderr: unlinked temporary files */
	const char *argv[32];
	int argc;
};

/*
 * Starts shopctl with the arguments (NULL-terminated) and env: "NAME=value"
 * entries set, "NAME" entries unset, on top of this process's environment.
 */
void job_start(struct job *j, const char *const *env, ...);

/*
 * Waits for the job to exit, up to timeout_ms (then kills it and the test
 * fails, after showing its output), and collects its status and output.
 */
void job_finish(struct job *j, struct run *r, int timeout_ms);

/* For es_test_wait_until: the job's stderr so far holds the needle. */
struct job_text {
	struct job *job;
	const char *needle;
};
bool job_said(void *arg);

/* Runs shopctl to its end (job_start, then job_finish with 120 s). */
void run_env(struct run *r, const char *const *env, ...);
#define run(r, ...) run_env(r, NULL, __VA_ARGS__)
void run_release(struct run *r);

/* How often needle occurs in haystack. */
int count(const char *haystack, const char *needle);

#define assert_has(text, needle) \
	ck_assert_msg(strstr((text), (needle)) != NULL, "missing \"%s\" in:\n%s", (needle), (text))

#endif
