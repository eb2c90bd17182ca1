/*
 * http: the HTTP server every daemon runs, on libmicrohttpd, so that a
 * daemon writes only its routes.
 *
 *   struct es_http_conf conf;
 *   es_http_conf_init(&conf);
 *   conf.port = 8081;
 *   conf.metrics = reg;
 *   conf.ready = payment_ready;
 *   conf.ready_arg = svc;
 *   http = es_http_new(&conf, errstr, sizeof(errstr));
 *   es_http_route(http, "GET", "/payments/{orderId}", get_payment, svc, errstr, ...);
 *   es_http_start(http, errstr, sizeof(errstr));
 *   ... serve until told to stop ...
 *   es_http_free(http);
 *
 * Every server also answers GET /livez (200 {"status":"ok"} while the
 * process runs), GET /readyz (200 {"status":"ok"} when conf.ready says so,
 * else 503 problem) and GET /metrics (conf.metrics in Prometheus text
 * format). An unknown path gets a 404 problem, a known path with another
 * method a 405 problem with an Allow header, a body over conf.body_limit a
 * 413 problem; the handler is not called for any of these. HEAD is served
 * by the GET handler (libmicrohttpd leaves the body out).
 *
 * Body limit: a Content-Length over the limit is answered 413 at once,
 * before any of the body is read (and without "100 Continue"); the
 * connection is then closed. A chunked body is counted as it arrives; once
 * over the limit the rest is read and dropped, and 413 answered when it
 * ends, unless more than another 1 MiB follows: then the connection is
 * closed without an answer.
 *
 * Slow and greedy clients: a connection idle for conf.connection_timeout
 * is closed; one source address may hold at most
 * conf.client_connection_limit connections (more are refused at once), so
 * that one client cannot take all conf.connection_limit of them; and a
 * request must be complete within conf.request_timeout of its start (a
 * new connection's first byte, or a kept-alive connection's request line),
 * or its connection is cut without an answer, so that a client sending a
 * byte now and then (never idle) cannot hold a connection for ever. Once
 * an answer is queued the deadline no longer applies. Cuts are counted in
 * es_http_request_timeouts_total. libmicrohttpd's own messages (e.g. a
 * refused connection) are logged at most a few a second.
 *
 * Every request that got an answer is counted in
 *   es_http_requests_total{method, route, status}
 *   es_http_request_duration_seconds{method, route}   (histogram)
 * where route is the registered pattern ("/orders/{orderId}"), or
 * "unmatched" for a 404, so that raw paths cannot blow up the number of
 * series; a method outside GET HEAD POST PUT DELETE PATCH OPTIONS is
 * counted as "OTHER". The duration runs from the request's headers to its
 * answer being queued.
 *
 * Streams: es_http_reply_stream answers with a body of unknown length that
 * goes on for as long as the handler's owner has something to send (the
 * console's Server-Sent Events). A stream waiting for data is suspended in
 * libmicrohttpd: it holds a connection but no pool thread, so 50 open
 * streams on a pool of 4 threads still leave every thread to the other
 * requests.
 *
 * Threads: handlers, the readiness callback and gauge callbacks run in
 * libmicrohttpd's pool threads, several at once, so they must be
 * thread-safe (a database connection, for one, must not be shared between
 * two handlers running at the same time without a lock).
 */
#ifndef ES_HTTP_H
#define ES_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "es/auth.h"
#include "es/db.h"
#include "es/dbpool.h"
#include "es/metrics.h"

#define ES_HTTP_DEFAULT_THREADS 4
#define ES_HTTP_DEFAULT_CONNECTION_TIMEOUT 30 /* seconds */
#define ES_HTTP_DEFAULT_CONNECTION_LIMIT 1024
#define ES_HTTP_DEFAULT_CLIENT_CONNECTION_LIMIT 128 /* per source address */
#define ES_HTTP_DEFAULT_REQUEST_TIMEOUT 10 /* seconds */
#define ES_HTTP_DEFAULT_BODY_LIMIT 65536 /* bytes; the contract's 64 KiB */

/* The most '/'-separated segments in a route pattern. A request path with
 * more cannot match any route. */
#define ES_HTTP_MAX_SEGMENTS 16

struct es_http; /* a server */
struct es_http_request; /* one request, as handlers see it */

/*
 * A route handler. It answers with one of the es_http_reply_* functions
 * below. Returns 0, or -1 on an internal failure: when it returns without
 * having replied (either way), the client gets a 500 problem.
 */
typedef int (*es_http_handler)(struct es_http_request *req, void *arg);

/*
 * Readiness: returns true when the daemon can do its work (database and
 * Kafka reachable). Otherwise it may write a short reason into reason,
 * which becomes the 503 problem's detail. Called for every GET /readyz,
 * from pool threads: prefer reporting state the daemon already tracks over
 * opening connections here.
 */
typedef bool (*es_http_ready_fn)(void *arg, char *reason, size_t reason_size);

struct es_http_conf {
	const char *bind_addr; /* IPv4 address to listen on; NULL: all */
	unsigned short port; /* 0: an ephemeral port, see es_http_port */
	unsigned int threads; /* size of the thread pool */
	unsigned int connection_timeout; /* seconds a connection may stay idle; 0: forever */
	unsigned int connection_limit; /* concurrent connections; more are refused */
	unsigned int client_connection_limit; /* the same from one address; 0: no limit */
	unsigned int request_timeout; /* seconds from a request's start to its answer; 0: none */
	size_t body_limit; /* largest request body accepted, bytes (<= 1 GiB) */
	struct es_metrics *metrics; /* not owned; NULL: no /metrics, no counts */
	es_http_ready_fn ready; /* NULL: always ready */
	void *ready_arg;
	struct es_dbpool *db_pool; /* not owned; lends es_http_db's connections */
	const struct es_auth *auth; /* not owned; NULL: every route open to anyone */
};

/* Fills conf with the defaults above, port 0, all interfaces, no metrics,
 * always ready. */
void es_http_conf_init(struct es_http_conf *conf);

/*
 * Creates a server (not yet listening) with the built-in routes, and
 * registers the request metrics in conf->metrics (so one registry serves
 * one server). conf is copied; conf->metrics and conf->bind_addr must
 * outlive the server. Returns the server (free with es_http_free), or NULL
 * with errstr filled.
 */
struct es_http *es_http_new(const struct es_http_conf *conf, char *errstr, size_t errstr_size);

/*
 * Adds a route: method is an upper-case token ("GET", "POST", ...);
 * pattern starts with '/' and is made of literal segments and {name}
 * parameters, e.g. "/orders/{orderId}/cancel" (no empty segments, at most
 * ES_HTTP_MAX_SEGMENTS). A request matches a pattern when it has as many
 * segments and every literal one is equal; a parameter matches any
 * non-empty segment. When several patterns match, the one with a literal
 * segment where the others have a parameter, earliest in the path, wins.
 * Only before es_http_start (routes are read without locks while serving).
 * Returns 0, or -1 with errstr filled (bad pattern, duplicate route,
 * already started, out of memory).
 */
int es_http_route(struct es_http *http, const char *method, const char *pattern, es_http_handler fn,
		  void *arg, char *errstr, size_t errstr_size);

/*
 * Who may call a route. With conf.auth set, a CUSTOMER route needs a valid
 * bearer token (a customer's or an operator's) and an OPERATOR route an
 * operator's: the server checks it before the body is read and the handler
 * called, and answers 401 problem+json with WWW-Authenticate: Bearer (no
 * token, or one that does not verify) or 403 (a customer's token on an
 * operator's route). Without conf.auth every route is open. The built-in
 * /metrics is an OPERATOR route when the server listens beyond 127.0.0.1.
 */
enum es_http_access {
	ES_HTTP_PUBLIC,
	ES_HTTP_CUSTOMER,
	ES_HTTP_OPERATOR,
};

/* es_http_route for a route that only some callers may use. */
int es_http_route_for(struct es_http *http, enum es_http_access access, const char *method,
		      const char *pattern, es_http_handler fn, void *arg, char *errstr,
		      size_t errstr_size);

/* Who is calling: role ES_AUTH_ANYONE on a public route or with auth off;
 * otherwise what the verified token says. Valid for the request. */
const struct es_caller *es_http_caller(const struct es_http_request *req);

/* Starts listening and serving. Returns 0, or -1 with errstr filled (e.g.
 * the port is taken). */
int es_http_start(struct es_http *http, char *errstr, size_t errstr_size);

/* The port the server listens on (the actual one when conf.port was 0),
 * or 0 when not started. */
unsigned short es_http_port(const struct es_http *http);

/* Gives open connections up to 200 ms to end, then stops accepting,
 * closes every connection and waits for running handlers to return. A
 * no-op when not started. */
void es_http_stop(struct es_http *http);

/* Stops the server when running and frees it. NULL is a no-op. */
void es_http_free(struct es_http *http);

/*
 * The request view. Every pointer returned is owned by the request and
 * valid until the handler returns: copy what must live longer. Values are
 * as received, percent-decoded for the path and the query; nothing is
 * validated beyond what HTTP requires, so treat them as untrusted.
 */
const char *es_http_method(const struct es_http_request *req);
const char *es_http_path(const struct es_http_request *req);
/* The pattern of the route that matched, e.g. "/orders/{orderId}". */
const char *es_http_route_pattern(const struct es_http_request *req);
/* The path parameter {name}, or NULL when the pattern has none. */
const char *es_http_param(const struct es_http_request *req, const char *name);
/* The first query parameter called name, or NULL when absent. A parameter
 * without '=' ("?verbose") has the value "". */
const char *es_http_query(const struct es_http_request *req, const char *name);
/* The request header called name (case-insensitive), or NULL. */
const char *es_http_header(const struct es_http_request *req, const char *name);
/*
 * The request's database connection: the one way a handler reaches the
 * database. Handlers run in libmicrohttpd's pool, several at once, and an
 * es_db is not thread-safe, so each request borrows a connection of its
 * own from the server's pool (es_http_conf.db_pool), on the first call;
 * the server gives it back when the handler returns, so a handler never
 * does. A handler that lost the connection (es_db_ok() false after a
 * failed statement) may call again for a new one. Returns NULL with errstr
 * filled when none can be had now (the database is away, or the server has
 * no pool): answer 503.
 */
struct es_db *es_http_db(struct es_http_request *req, char *errstr, size_t errstr_size);
/* The body, NUL-terminated (for convenience; it may also contain NULs),
 * never NULL: "" with *len 0 when there is none. len may be NULL. */
const char *es_http_body(const struct es_http_request *req, size_t *len);
/* true when the client's address is a loopback one (127.0.0.0/8, ::1):
 * the request comes from this machine. */
bool es_http_peer_is_loopback(const struct es_http_request *req);
/* true when Content-Type is media_type, ignoring case and parameters:
 * es_http_content_type_is(req, "application/json") accepts
 * "Application/JSON; charset=utf-8". */
bool es_http_content_type_is(const struct es_http_request *req, const char *media_type);

/*
 * Answers. A request gets one answer: a second call returns -1 and
 * changes nothing. Return 0, or -1 (also when out of memory; the client
 * then gets a 500 problem).
 */

/* Adds a header to the answer, e.g. Location; name and value are copied,
 * and may not contain CR or LF. Content-Type and Content-Length are the
 * reply's own and refused here. Call before or after the reply itself. */
int es_http_add_header(struct es_http_request *req, const char *name, const char *value);

/* application/json. Steals the reference to body (NULL: a 500 problem, so
 * that a failed json_pack needs no check of its own). */
int es_http_reply_json(struct es_http_request *req, unsigned int status, json_t *body);

/*
 * RFC 9457 application/problem+json:
 *   {"type": type, "title": title, "status": status, "detail": detail,
 *    "errors": [{"pointer": "/items/0/sku", "detail": "unknown sku"}]}
 * type NULL gives "about:blank" and title NULL the status's reason phrase.
 * detail may be NULL (left out). errors is a JSON array built with
 * es_http_errors_add, or NULL (left out); the reference is stolen.
 * The shop's own types are ES_PROBLEM("name"), the contract's URNs.
 */
#define ES_PROBLEM(name) "urn:eventshop:problem:" name
int es_http_reply_problem(struct es_http_request *req, unsigned int status, const char *type,
			  const char *title, const char *detail, json_t *errors);

/* Appends {"pointer": pointer, "detail": detail} to the array errors.
 * pointer is an RFC 6901 JSON pointer into the request body. Returns 0 or
 * -1. */
int es_http_errors_add(json_t *errors, const char *pointer, const char *detail);

/* Any bytes with the given Content-Type (copied). data may be NULL when
 * len is 0. For /metrics: "text/plain; version=0.0.4; charset=utf-8". */
int es_http_reply_body(struct es_http_request *req, unsigned int status, const char *content_type,
		       const void *data, size_t len);

/*
 * Streams (see the top). fill is called from a pool thread whenever the
 * connection can take more: it writes at most size bytes into buf and
 * returns how many; 0 when it has nothing now (the connection then waits,
 * using no thread, until es_http_stream_wake); -1 to end the answer.
 * fill runs for one stream on one thread at a time, never after the
 * stream closed.
 */
typedef long (*es_http_fill_fn)(void *arg, char *buf, size_t size);

struct es_http_stream; /* one streamed answer, shared by its owner and the server */

/*
 * Answers req with a stream of content_type, status 200, fed by fill(arg)
 * (headers added with es_http_add_header apply). *stream is the owner's
 * handle: wake it when there is something new, ask it whether it closed,
 * and release it once done with arg (the server keeps its own reference
 * until the connection ends; arg must live until the stream closed or was
 * released, whichever comes last). es_http_stop ends every open stream.
 * Returns 0, or -1 (no stream; the client gets a 500).
 */
int es_http_reply_stream(struct es_http_request *req, const char *content_type,
			 es_http_fill_fn fill, void *arg, struct es_http_stream **stream);

/* Has fill called again soon, from a pool thread; from any thread. A no-op
 * on a closed stream. */
void es_http_stream_wake(struct es_http_stream *s);

/* true once the connection ended (client gone, fill returned -1, server
 * stopped): fill will not be called again. */
bool es_http_stream_closed(struct es_http_stream *s);

/* Drops the owner's reference: it will call nothing on s again. A stream
 * released while open is ended. NULL is a no-op. */
void es_http_stream_release(struct es_http_stream *s);

#endif
