/*
 * daemon: the few process-wide things every daemon does the same way.
 *
 * SIGTERM and SIGINT only set es_stop (a handler may do nothing else
 * safely); loops poll with short timeouts (100 ms) and check it, so
 * shutdown is prompt: finish the batch in hand, leave the group, flush
 * the producer, exit 0. A second SIGTERM or SIGINT during that stop ends
 * the process at once (exit status 128 + the signal), saying so on
 * stderr: nothing is lost, since a daemon may die at any instant.
 */
#ifndef ES_DAEMON_H
#define ES_DAEMON_H

#include <signal.h>

extern volatile sig_atomic_t es_stop;

/* Installs the SIGTERM/SIGINT handlers and ignores SIGPIPE (a client that
 * hangs up must not kill the daemon). Returns 0 or -1. */
int es_daemon_signals(void);

#endif
