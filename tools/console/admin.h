/*
 * admin: the pure parts of the console's fault-switch panel (faults.c),
 * apart so that they are unit-tested without a shop: the lists of
 * name=URL the console is configured with, where a daemon's switches are
 * served (its admin server, es/faults.h), what the page asks to change,
 * and whether a request that changes a switch comes from the console's
 * own page.
 */
#ifndef CONSOLE_ADMIN_H
#define CONSOLE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

/* The demo serves each daemon's switches on its HTTP port + 1000. */
#define CONSOLE_ADMIN_PORT_OFFSET 1000

struct console_named_url {
	char name[64];
	char url[256]; /* http(s)://..., no trailing '/' */
};

/*
 * Parses list, "name=url,name=url,..." (empty entries skipped), into out
 * (room for max). var names the setting in the error. Returns the number
 * of entries, or -1 with errstr saying which entry is wrong (not
 * name=http(s)://..., a name over 63 or a URL over 255 bytes, more than
 * max entries).
 */
int console_parse_named_urls(const char *var, const char *list, struct console_named_url *out,
			     size_t max, char *errstr, size_t errstr_size);

/*
 * The admin server of a daemon served at service_url, by the demo's rule:
 * the same scheme and host, its port + offset ("http://127.0.0.1:8081" ->
 * "http://127.0.0.1:9081"), into out. Returns 0, or -1 when service_url
 * names no port, the sum is not a port, or out is too small.
 */
int console_admin_url(const char *service_url, long offset, char *out, size_t size);

/* What POST /api/faults asks (its body, JSON):
 *   {"service": S, "name": N, "value": V}  set switch N of S to V
 *   {"service": S, "name": N, "clear": true}  switch N back to off
 *   {"service": S, "clear": true}  every switch of S back to off */
struct console_fault_request {
	char service[64];
	char name[49]; /* "" with clear: all of them */
	bool clear;
	long long value; /* when !clear */
};

/*
 * Parses and checks body (len bytes, untrusted): a JSON object with only
 * the members above, service a name of 1 to 63 bytes, name of
 * [a-z0-9_]{1,48}, value a whole number within +-1000000000, and either
 * value or "clear": true. Returns 0, or -1 with errstr saying what is
 * wrong (for the 400 answer).
 */
int console_fault_request_parse(const char *body, size_t len, struct console_fault_request *req,
				char *errstr, size_t errstr_size);

/*
 * Whether a request that changes something comes from the console's own
 * page: its Origin (the browser's; NULL when none was sent) is exactly
 * "http://" + its Host, and that host is this machine by name
 * (127.0.0.1, localhost, [::1]) or the address the console is bound to
 * (bind, unless it is a wildcard). A page of another site fails the
 * first test; one that reaches the console through a name of its own
 * resolved to 127.0.0.1 (DNS rebinding) fails the second.
 */
bool console_origin_allowed(const char *origin, const char *host, const char *bind);

#endif
