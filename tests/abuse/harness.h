/*
 * What the HTTP abuse cases (tests/abuse/it_<theme>.c) share: order-service
 * started alone, a raw HTTP/1.1 client that assumes nothing about the
 * server's answers, and the checks of what the answers must be. See
 * harness.c.
 */
#ifndef ES_TEST_ABUSE_HARNESS_H
#define ES_TEST_ABUSE_HARNESS_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "es/http.h"
#include "shop.h"

#define LIMIT ES_HTTP_DEFAULT_BODY_LIMIT
#define CONN_TIMEOUT_S ES_HTTP_DEFAULT_CONNECTION_TIMEOUT
#define REQUEST_TIMEOUT_S ES_HTTP_DEFAULT_REQUEST_TIMEOUT
#define CLIENT_CONNECTIONS ES_HTTP_DEFAULT_CLIENT_CONNECTION_LIMIT
#define ANSWER_MS 15000 /* an answer that takes longer counts as none (ASan is slow) */

#define VALID_HEAD                                                                              \
	"{\"customerId\":\"c-1\",\"customerEmail\":\"ada@example.com\",\"paymentToken\":\"tok_" \
	"visa\","
#define VALID VALID_HEAD "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":2}]}"

/* The daemon under test and its HTTP port. */
extern struct shop shop;
extern unsigned short port;

void sleep_ms(int ms);

/* ------------------------------------------------------------------------ */
/* A raw HTTP client: nothing is assumed about the server's answers. */

enum {
	ANS_OK = 0,
	ANS_CLOSED = -1, /* the server closed (or reset) before a whole answer */
	ANS_TIMEOUT = -2, /* no whole answer within the time given */
	ANS_GARBLED = -3, /* bytes that are not an HTTP/1.x answer */
	ANS_CONNECT = -4, /* could not connect at all */
};

const char *rc_name(int rc);

struct conn {
	int fd;
	char *buf; /* received, not yet consumed; NUL-terminated */
	size_t len;
	size_t cap;
};

struct resp {
	int status;
	char *head; /* status line and headers */
	char *body; /* NUL-terminated (may contain NULs) */
	size_t body_len;
};

/* A raw HTTP client: conn_open returns 0 or ANS_CONNECT. */
int conn_open(struct conn *c);
/* The same from the local address source ("127.0.0.2": another client, as
 * the daemon sees it). */
int conn_open_from(struct conn *c, const char *source);
void conn_close(struct conn *c);
/* Closes with a TCP reset instead of a FIN. */
void conn_reset(struct conn *c);
/* 0, or -1 when the server no longer takes data (EPIPE, ECONNRESET). */
int conn_send(struct conn *c, const void *data, size_t len);
int conn_sends(struct conn *c, const char *s);
/* Reads one answer (HEAD: no body follows): ANS_OK or what went wrong. */
int conn_read(struct conn *c, struct resp *r, int timeout_ms, bool head_only);
/* Waits until the server closes c: 1 closed, 0 still open at the deadline.
 * Whatever it sends meanwhile is dropped. */
int conn_wait_closed(struct conn *c, int timeout_ms);
const char *header_get(const struct resp *r, const char *name, char *out, size_t size);
void resp_free(struct resp *r);

/* One raw request on a new connection; a failing send is not an error (a
 * server may answer and close before the request is all sent). */
int exchange(const void *raw, size_t len, struct resp *r, int timeout_ms);
int exchanges(const char *raw, struct resp *r);
int get(const char *path, struct resp *r);
/* POST with the given Content-Type line (NULL: none) and extra header
 * lines (each ending in CRLF; may hold any bytes but NUL). */
int post(const char *path, const char *ctype, const char *extra, const void *body, size_t len,
	 struct resp *r);
int post_order(const void *body, size_t len, const char *extra, struct resp *r);
int post_orders(const char *body, struct resp *r);

/* What the answers must be */

/* A printable, shortened copy of a case's label (which may hold raw bytes). */
const char *printable(const void *data, size_t len, char *out, size_t size);
/* Prints the case's line "abuse: <case> -> <answer>". */
void note(const char *what, int rc, const struct resp *r);
/*
 * An RFC 9457 answer: the status, Content-Type application/problem+json,
 * a JSON object with type (type_want when given), title, status and detail.
 * Returns the problem (caller frees).
 */
json_t *check_problem(const char *what, int rc, const struct resp *r, int status,
		      const char *type_want);
/* note, check_problem, and r freed. */
void expect_problem(const char *what, int rc, struct resp *r, int status, const char *type_want);
/* The problem's errors[] has one at pointer. */
bool has_pointer(const json_t *p, const char *pointer);
/* Not dead (an ASan build exits on its first error), and serving. */
void daemon_ok(const char *after);
/* A 202 for an order: its id (37 bytes) from the body, checked against
 * Location. */
void expect_created(const char *what, int rc, struct resp *r, char *order_id);
/* GET /orders/{id}: the order as stored. */
json_t *get_order(const char *order_id);
/* head, n times unit, tail (caller frees). */
char *repeat(const char *head, const char *unit, size_t n, const char *tail);

/*
 * Starts order-service, runs the tests add_tests adds to the tcase as
 * suite `suite` (one daemon for all, no forking), and stops the daemon
 * cleanly: main's exit status (77 when there is no broker or database).
 */
int abuse_main(const char *suite, void (*add_tests)(TCase *tc));

#endif
