/*
 * http_private: what the three files of the http module share and nobody
 * else sees (es/http.h is the module's interface).
 *
 *   http.c         the server: libmicrohttpd's callbacks, a request's life
 *                  from its first byte to its answer, the built-in routes
 *   http_route.c   routes: patterns like /orders/{id}, matching, Allow
 *   http_reply.c   what a handler sees of its request and how it answers
 *   http_guard.c   the whole-request deadline that cuts off slow clients
 */
#ifndef ES_HTTP_PRIVATE_H
#define ES_HTTP_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <microhttpd.h>

#include "es/http.h"

#define JSON_TYPE "application/json"
#define PROBLEM_TYPE "application/problem+json"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct route {
	char *method;
	char *pattern; /* as registered: the "route" label */
	char *segbuf; /* the pattern's copy that seg[] points into */
	const char *seg[ES_HTTP_MAX_SEGMENTS]; /* literal text, or the parameter name */
	bool is_param[ES_HTTP_MAX_SEGMENTS];
	size_t nseg;
	es_http_handler fn;
	void *arg;
	enum es_http_access access;
};

struct http_watch; /* http_guard.c's, one per open connection */

struct es_http {
	struct es_http_conf conf;
	struct MHD_Daemon *daemon; /* NULL when not serving */
	unsigned short port;
	struct route *routes;
	size_t nroutes;
	struct es_counter *requests;
	struct es_histogram *duration;

	/* http_guard.c's: the open connections and their deadlines, under
	 * guard_lock, and the thread that enforces them. */
	pthread_mutex_t guard_lock;
	pthread_cond_t guard_wake;
	struct http_watch *watches;
	pthread_t guard_thread;
	bool guard_ready; /* lock and condition made */
	bool guard_running; /* thread started */
	bool guard_stop;
	struct es_counter *timeouts;

	/* on_mhd_log's: at most LOG_BURST of libmicrohttpd's messages a
	 * second (a flood of refused connections would flood the log). */
	pthread_mutex_t log_lock;
	long long log_second;
	unsigned int log_count;
	unsigned long log_dropped;
};

struct header {
	struct header *next;
	char *name;
	char *value;
};

struct es_http_request {
	struct es_http *http;
	struct MHD_Connection *conn;
	const char *method; /* libmicrohttpd's, valid for the request */
	const char *path; /* libmicrohttpd's, percent-decoded */
	const char *method_label;
	const char *route_label;
	const struct route *route;
	struct timespec started;
	struct es_db *db; /* es_http_db's, given back after the handler */
	struct es_caller caller; /* who the token says is calling (es_http_caller) */

	char *pathbuf; /* the path's copy that seg[] points into */
	const char *seg[ES_HTTP_MAX_SEGMENTS];
	size_t nseg;
	bool unroutable; /* no leading '/', or too many segments */

	char *body; /* NUL-terminated; NULL until the first byte */
	size_t body_len;
	size_t body_cap;
	bool too_large;
	size_t discarded;

	/* The answer, kept until it is queued after the handler returns. */
	bool replied;
	unsigned int status;
	char *content_type;
	char *resp_body;
	size_t resp_len;
	struct header *headers;
	struct header **headers_tail;
	bool queued;
};

/* The guard (http_guard.c). init makes its lock and condition (before
 * the server starts), start and stop its thread (stop after libmicrohttpd
 * has stopped), release undoes init; the others are libmicrohttpd's
 * connection and request-line callbacks and the moments a request is
 * answered and ended. */
int http_guard_init(struct es_http *http, char *errstr, size_t errstr_size);
int http_guard_start(struct es_http *http, char *errstr, size_t errstr_size);
void http_guard_stop(struct es_http *http);
void http_guard_release(struct es_http *http);
void http_guard_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			      enum MHD_ConnectionNotificationCode code);
void *http_guard_on_request_line(void *cls, const char *uri, struct MHD_Connection *conn);
void http_guard_answered(struct es_http *http, struct MHD_Connection *conn);
void http_guard_request_ended(struct es_http *http, struct MHD_Connection *conn);

/* Frees what es_http_route allocated for r. */
void http_route_release(struct route *r);

/* The most specific route of method for req's path, or NULL. */
const struct route *http_find_route(const struct es_http *http, const struct es_http_request *req,
				    const char *method);

/* The methods routed for req's path, for a 405's Allow header. Returns
 * false when no route has this path at all (a 404). */
bool http_allowed_methods(const struct es_http *http, struct es_http_request *req, char *allow,
			  size_t size);

#endif
