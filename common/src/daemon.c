#include "es/daemon.h"

#include <string.h>
#include <unistd.h>

volatile sig_atomic_t es_stop = 0;

/*
 * The first signal asks for a graceful stop. A second one, while that stop
 * is under way (a slow broker, a database that is away), ends the process
 * at once: crash-only, so nothing is lost, the work in hand is simply done
 * again after the restart. Only async-signal-safe calls here, so the line
 * is written whole with write(2), without a time.
 */
static void on_stop_signal(int sig)
{
	static const char line[] = "{\"level\":\"warn\",\"msg\":\"a second stop signal: exiting at "
				   "once; the work in hand is done again after the restart\"}\n";

	if (es_stop) {
		ssize_t written = write(STDERR_FILENO, line, sizeof(line) - 1);

		(void)written;
		_exit(128 + sig);
	}
	es_stop = 1;
}

int es_daemon_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop_signal;
	if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL))
		return -1;
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGPIPE, &sa, NULL);
}
