/*
 * daemon: the few process-wide things every daemon does the same way.
 *
 * SIGTERM and SIGINT only set es_stop (a handler may do nothing else
 * safely); loops poll with short timeouts (100 ms) and check it, so
 * shutdown is prompt: finish the message in hand, leave the group, flush
 * the producer, exit 0.
 */
#ifndef ES_DAEMON_H
#define ES_DAEMON_H

#include <signal.h>

extern volatile sig_atomic_t es_stop;

/* Installs the SIGTERM/SIGINT handlers and ignores SIGPIPE (a client that
 * hangs up must not kill the daemon). Returns 0 or -1. */
int es_daemon_signals(void);

#endif
