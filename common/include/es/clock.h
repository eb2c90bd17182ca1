/*
 * clock: the one monotonic millisecond clock of the library, the daemons
 * and the tools.
 *
 * Durations, deadlines and backoffs are measured on CLOCK_MONOTONIC, which
 * an NTP step or an operator's `date -s` cannot move; wall-clock time
 * (CLOCK_REALTIME) is for timestamps that leave the process (an event's
 * `time`, a log line), never for measuring how long something took.
 */
#ifndef ES_CLOCK_H
#define ES_CLOCK_H

/* Milliseconds on CLOCK_MONOTONIC since an unspecified start. */
long long es_monotonic_ms(void);

/* Sleeps ms milliseconds (nothing when ms <= 0). A signal may end the sleep
 * early: callers treat that as an early wake-up, never as an error. */
void es_sleep_ms(long long ms);

#endif
