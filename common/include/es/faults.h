/*
 * faults: switches that break a daemon on purpose while it runs, so that a
 * lesson or a test can show what the shop does when a part misbehaves,
 * and then switch it back, without signals or restarts (as the
 * OpenTelemetry demo's feature flags do).
 *
 * Every daemon has the library's three:
 *
 *   pause               0|1   the consumer loop takes no batch (it stays in
 *                             its group: librdkafka keeps the heartbeats
 *                             going, for up to max.poll.interval.ms, 300 s)
 *   fail_next           N     the next N batches answer RETRY, as a
 *                             database that is away would make them
 *   crash_after_commit  0|1   the process is SIGKILLed right after the next
 *                             batch committed, before its offsets are
 *                             stored: its events come again after the
 *                             restart, and the inbox skips them (only with
 *                             the ES_FAULT_POINTS build option, as the
 *                             tests' and the demo's builds have it)
 *
 * and a service defines its own (es_fault_define), e.g. payment-service's
 * payment_latency_ms and payment_decline_percent. Every switch is off by
 * default, each has a value in a fixed range, and /metrics shows each one
 * as es_fault_<name>.
 *
 * The switches are set over HTTP on a server of their own, never on the
 * daemon's public port (es_faults_admin_new):
 *
 *   GET    /faults          {"faults": [{name, value, off, min, max, help}]}
 *   PUT    /faults/{name}   {"value": N}: 200 with the switch; 404 unknown;
 *                           422 out of range
 *   DELETE /faults/{name}   back to off
 *   DELETE /faults          every switch back to off
 *
 * It runs only when ADMIN_PORT is set (0: a port of the kernel's choice),
 * binds ADMIN_BIND (default 127.0.0.1), and answers 403 to any peer that
 * is not on the loopback interface, also when bound elsewhere.
 * `shopctl faults list|set|clear` is its client.
 *
 * Values are read and written atomically: the consumer thread and the
 * HTTP threads share them without a lock.
 */
#ifndef ES_FAULTS_H
#define ES_FAULTS_H

#include <stdbool.h>
#include <stddef.h>

#include "es/http.h"
#include "es/metrics.h"

/* The library's switches: ids of es_fault_value and es_fault_take. */
enum {
	ES_FAULT_PAUSE = 0,
	ES_FAULT_FAIL_NEXT,
	ES_FAULT_CRASH_AFTER_COMMIT,
	ES_FAULT_BUILTIN_COUNT,
};

/* Most switches one process has (the library's and its service's). */
#define ES_FAULTS_MAX 16

/*
 * Defines a service's switch: name is [a-z0-9_]{1,48}; its value lies in
 * [min, max] and is off at off (which must lie in that range). Call before
 * the daemon serves (es_service_start); defining a name again returns
 * the same switch. name and help must outlive the process (literals).
 * Returns the switch's id, or -1 (bad name or range, no room).
 */
int es_fault_define(const char *name, const char *help, long min, long max, long off);

/* The switch's value now (its off value for an unknown id). */
long es_fault_value(int id);

/* true when the switch is not at its off value. */
bool es_fault_on(int id);

/*
 * For a switch that counts down (fail_next) or fires once
 * (crash_after_commit): when it is on, takes one from it (back to off at
 * the last) and returns true; else false. Two threads never both take the
 * last one.
 */
bool es_fault_take(int id);

/* Sets a switch by name. Returns 0, -1 when there is no such switch, or
 * -2 when value is out of its range. */
int es_fault_set(const char *name, long value);

/* Every switch back to its off value. */
void es_fault_clear_all(void);

/* The switches as GET /faults shows them (a new reference). */
json_t *es_faults_json(void);

/* Registers es_fault_<name> for every switch defined so far, each read
 * when /metrics is scraped. Returns 0, or -1 with errstr filled. */
int es_faults_register_metrics(struct es_metrics *reg, char *errstr, size_t errstr_size);

/*
 * The switches' own HTTP server, when ADMIN_PORT is set: bound to
 * ADMIN_BIND (default 127.0.0.1), not yet started (es_http_start). Returns
 * the server (the caller frees it with es_http_free), or NULL: with
 * errstr "" when ADMIN_PORT is unset (the switches cannot be set: that is
 * the default), else errstr saying what is wrong with ADMIN_PORT or
 * ADMIN_BIND. public_port is the daemon's public HTTP_PORT, which the
 * admin port may not be. With auth (the daemon's AUTH_JWT_KEY_FILE; not
 * owned, NULL: none) the switches are an operator's routes (es/auth.h).
 */
struct es_http *es_faults_admin_new(unsigned short public_port, const struct es_auth *auth,
				    char *errstr, size_t errstr_size);

#endif
