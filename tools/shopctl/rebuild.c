/*
 * shopctl rebuild-analytics: runs `analytics-service --rebuild`, the one
 * implementation of the rebuild (services/analytics-service/rebuild.c),
 * rather than a second copy that could drift from the daemon's schema,
 * consumer group and topic configuration.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shopctl.h"

#define BIN_VAR "ANALYTICS_SERVICE_BIN"
/* From build/tools/shopctl/shopctl to build/services/analytics-service/. */
#define BIN_FROM_SHOPCTL "../../services/analytics-service/analytics-service"

static void usage(FILE *f)
{
	fprintf(f, "usage: shopctl rebuild-analytics\n"
		   "\n"
		   "Rebuilds analytics-service's read models from the topics: runs\n"
		   "\n"
		   "  analytics-service --rebuild\n"
		   "\n"
		   "with this environment (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL,\n"
		   "DATABASE_SCHEMA, CONSUMER_GROUP, TOPIC_*, KAFKA_* as the daemon reads\n"
		   "them), which resets the consumer group's offsets to the beginning of\n"
		   "every topic, then deletes the read models and their inbox rows. The\n"
		   "next start of analytics-service replays everything and computes the\n"
		   "numbers again.\n"
		   "\n"
		   "Stop every analytics-service instance first. The rebuild joins the\n"
		   "consumer group to move its offsets; when another member holds some of\n"
		   "the partitions it leaves again and stops before it deletes anything.\n"
		   "Joining takes the broker's rebalance delay: a few seconds, on the\n"
		   "development broker up to KAFKA_SESSION_TIMEOUT_MS after the daemon\n"
		   "stopped (it says so while it waits).\n"
		   "\n"
		   "The program is $" BIN_VAR " when set, else\n"
		   "  <the shopctl binary's directory>/" BIN_FROM_SHOPCTL "\n"
		   "(its place in the build tree).\n"
		   "\n"
		   "Exit status: 0 rebuilt, 1 the rebuild failed (its output says why, and\n"
		   "whether running it again is needed), 2 bad command line.\n");
}

/* The analytics-service binary into buf. Returns 0, or -1 (printed). */
static int find_binary(char *buf, size_t size)
{
	const char *env = getenv(BIN_VAR);
	char self[PATH_MAX], *dir;
	ssize_t len;

	if (env && *env) {
		if (access(env, X_OK)) {
			shopctl_err("%s=%s: %s", BIN_VAR, env, strerror(errno));
			return -1;
		}
		snprintf(buf, size, "%s", env);
		return 0;
	}
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len < 0) {
		shopctl_err("cannot find the shopctl binary (/proc/self/exe: %s); set %s",
			    strerror(errno), BIN_VAR);
		return -1;
	}
	self[len] = '\0';
	dir = dirname(self);
	if ((size_t)snprintf(buf, size, "%s/%s", dir, BIN_FROM_SHOPCTL) >= size ||
	    access(buf, X_OK)) {
		shopctl_err("no analytics-service at %s/%s; set %s to its path", dir,
			    BIN_FROM_SHOPCTL, BIN_VAR);
		return -1;
	}
	/* Shown to the user: without the "../..". */
	if (realpath(buf, self))
		snprintf(buf, size, "%s", self);
	return 0;
}

/* Runs bin --rebuild and waits. Returns its wait status, or -1. */
static int run(const char *bin)
{
	struct sigaction ignore = {.sa_handler = SIG_IGN}, old_int, old_quit;
	int status = -1;
	pid_t pid;

	fflush(NULL);
	/* Like system(3): Ctrl-C reaches the child, which stops at a safe
	 * point and says so; we stay to report it. */
	sigemptyset(&ignore.sa_mask);
	sigaction(SIGINT, &ignore, &old_int);
	sigaction(SIGQUIT, &ignore, &old_quit);
	pid = fork();
	if (pid < 0) {
		shopctl_err("fork: %s", strerror(errno));
	} else if (pid == 0) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGQUIT, &old_quit, NULL);
		execl(bin, bin, "--rebuild", (char *)NULL);
		shopctl_err("cannot run %s: %s", bin, strerror(errno));
		_exit(127);
	} else {
		while (waitpid(pid, &status, 0) < 0) {
			if (errno != EINTR) {
				shopctl_err("waitpid: %s", strerror(errno));
				status = -1;
				break;
			}
		}
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	return status;
}

/* path relative to the current directory when it is below it, as a
 * learner in the repository would type it (build/services/...). */
static const char *shown(const char *path)
{
	char cwd[PATH_MAX];
	size_t len;

	if (!getcwd(cwd, sizeof(cwd)))
		return path;
	len = strlen(cwd);
	if (len > 1 && !strncmp(path, cwd, len) && path[len] == '/')
		return path + len + 1;
	return path;
}

int shopctl_cmd_rebuild_analytics(int argc, char **argv)
{
	char bin[PATH_MAX];
	int status;

	if (argc >= 2 && shopctl_is_help(argv[1])) {
		usage(stdout);
		return SHOPCTL_OK;
	}
	if (argc > 1)
		return shopctl_usage_error(argv[0], "unexpected argument %s", argv[1]);
	if (find_binary(bin, sizeof(bin)))
		return SHOPCTL_FAIL;
	printf("shopctl: running %s --rebuild\n", shown(bin));
	status = run(bin);
	if (status == -1)
		return SHOPCTL_FAIL;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		printf("shopctl: rebuild done; start analytics-service to replay the topics\n");
		return SHOPCTL_OK;
	}
	if (WIFEXITED(status))
		shopctl_err("analytics-service --rebuild failed (exit status %d)",
			    WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		shopctl_err("analytics-service --rebuild was killed by signal %d",
			    WTERMSIG(status));
	return SHOPCTL_FAIL;
}
