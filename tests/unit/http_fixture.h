/*
 * What the unit tests of http (tests/unit/test_http_*.c) share: a real
 * server on an ephemeral port on 127.0.0.1, started afresh for every test,
 * spoken to in raw HTTP/1.1 over a socket, so that malformed, chunked and
 * piecemeal requests can be sent exactly as a hostile client would.
 *
 * The server's routes: GET /orders/{orderId} (its path and query
 * parameters, route and traceparent back as JSON), GET /orders/search,
 * POST /orders/{orderId}/cancel (202), POST and PUT /echo (the JSON body
 * back, 201 with a Location; 415 and 400 problems), POST /size (how many
 * body bytes arrived) and GET /broken (a handler that does not reply);
 * /readyz follows the flag `ready`.
 */
#ifndef ES_TEST_HTTP_FIXTURE_H
#define ES_TEST_HTTP_FIXTURE_H

#include <check.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "es/http.h"
#include "es/metrics.h"

#define LIMIT ES_HTTP_DEFAULT_BODY_LIMIT
#define RESPONSE_TIMEOUT_MS 15000 /* generous: valgrind is slow */

/* The server under test and its registry (setup makes them, teardown frees
 * them), what its readiness callback answers, and the last error text. */
extern struct es_metrics *reg;
extern struct es_http *http;
extern atomic_bool ready;
extern char errstr[256];

struct client {
	int fd;
	char *buf; /* received, not yet consumed */
	size_t len;
	size_t cap;
};

struct resp {
	int status;
	char *head; /* status line and headers, NUL-terminated */
	char *body; /* NUL-terminated */
	size_t body_len;
};

/* A raw HTTP client; its calls fail the test when the socket does. */
int64_t now_ms(void);
void client_open_port(struct client *c, unsigned short port);
/* The same from the local address source (e.g. "127.0.0.2": another
 * client, as the server sees it); NULL: the system's choice. */
void client_open_from(struct client *c, unsigned short port, const char *source);
/* Connects to the server under test. */
void client_open(struct client *c);
void client_close(struct client *c);
void client_send(struct client *c, const void *data, size_t len);
void client_sends(struct client *c, const char *s);
/* Reads more into the buffer. Returns false at end of stream; fails the
 * test at the deadline. */
bool client_fill(struct client *c, int64_t deadline);
/* Reads one response; head_only for an answer to HEAD (no body follows). */
void client_read(struct client *c, struct resp *r, bool head_only);
/* The value of header name in r, copied into out, or NULL. */
const char *header_get(const struct resp *r, const char *name, char *out, size_t size);
void resp_free(struct resp *r);
/* Sends one raw request on a new connection and reads the answer. */
void roundtrip(const char *raw, struct resp *r);
void get(const char *path, struct resp *r);
json_t *body_json(const struct resp *r);
/* Checks an RFC 9457 body: content type, status, title and type. */
json_t *assert_problem(const struct resp *r, int status);
/* What POST /size answered: the body bytes it got. */
long long posted_length(const struct resp *r);

/* Another server like the one under test, with the given connection
 * timeout, registering its metrics in reg. */
struct es_http *server_new(unsigned int timeout);
/* The configuration server_new starts from, and a server with the routes
 * above started on conf (a test's own variant of it). */
void server_conf(struct es_http_conf *conf, unsigned int timeout);
struct es_http *server_start(const struct es_http_conf *conf);

/* Runs the tests add_tests adds to the tcase, each on a fresh server, as
 * suite `suite`: main's exit status. */
int http_fixture_run(const char *suite, void (*add_tests)(TCase *tc));

#endif
