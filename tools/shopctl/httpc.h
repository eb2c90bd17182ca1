/*
 * httpc: the little HTTP client of `shopctl place` and `shopctl follow`
 * (libcurl), and how they show order-service's answers; and the one
 * client of the daemons' fault-switch servers (es/faults.h), which
 * `shopctl faults` and eventshop-console share.
 */
#ifndef SHOPCTL_HTTPC_H
#define SHOPCTL_HTTPC_H

#include <stddef.h>

#include <jansson.h>

/* A reply larger than this is not order-service's: the request fails. */
#define SHOPCTL_HTTP_MAX_BODY (1024 * 1024)

#define SHOPCTL_ORDER_URL_DEFAULT "http://127.0.0.1:8080"

struct shopctl_http_reply {
	long status; /* the HTTP status */
	char *body; /* owned, NUL-terminated (also when empty) */
	size_t len;
	json_t *json; /* owned: the body parsed when its type says JSON, else NULL */
};

/*
 * Sends one request (10 s timeout) with the given "Name: value" headers
 * (NULL-terminated, may be NULL) and body (NULL: none) and fills reply
 * (release with shopctl_http_reply_release). Returns 0 when an answer
 * came, whatever its status, or -1 when none did (errstr says why, e.g.
 * "http://127.0.0.1:8080/orders: Couldn't connect to server").
 */
int shopctl_http(const char *method, const char *url, const char *const *headers, const char *body,
		 struct shopctl_http_reply *reply, char *errstr, size_t errstr_size);

void shopctl_http_reply_release(struct shopctl_http_reply *reply);

/*
 * One request to a daemon's fault-switch server (es/faults.h): method on
 * admin (its base URL, e.g. "http://127.0.0.1:9081") followed by path
 * (e.g. "/faults/pause"), with body (NULL: none) sent as JSON, and an
 * operator's token when the shop asks for tokens (AUTH_JWT_KEY_FILE:
 * es_auth_header_from_env). Fills reply as shopctl_http does. Returns 0
 * when an answer came, whatever its status, or -1 (errstr says why).
 */
int shopctl_admin_http(const char *method, const char *admin, const char *path, const char *body,
		       struct shopctl_http_reply *reply, char *errstr, size_t errstr_size);

/*
 * Writes an error answer to stderr: "shopctl: HTTP <status> <title>:
 * <detail>" and one line per entry of an RFC 9457 problem's `errors`
 * ("  /items/0/sku: unknown sku"), or the body itself when it is no
 * problem document.
 */
void shopctl_http_print_problem(const struct shopctl_http_reply *reply);

/*
 * The base URL of order-service: flag (--url) when not NULL, else
 * ORDER_SERVICE_URL, else SHOPCTL_ORDER_URL_DEFAULT, with trailing slashes
 * removed, into buf. Returns 0, or -1 when it is not an http:// or
 * https:// URL or too long (errstr filled).
 */
int shopctl_order_url(const char *flag, char *buf, size_t size, char *errstr, size_t errstr_size);

#endif
