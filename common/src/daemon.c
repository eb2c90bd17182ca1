#include "es/daemon.h"

#include <string.h>

volatile sig_atomic_t es_stop = 0;

static void on_stop_signal(int sig)
{
	(void)sig;
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
