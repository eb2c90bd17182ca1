/*
 * http_private: what the three files of the http module share and nobody
 * else sees (es/http.h is the module's interface).
 *
 *   http.c         the server: libmicrohttpd's callbacks, a request's life
 *                  from its first byte to its answer, the built-in routes
 *   http_route.c   routes: patterns like /orders/{id}, matching, Allow
 *   http_reply.c   what a handler sees of its request and how it answers
 *   http_stream.c  streamed answers: suspended while they wait for data
 */
#ifndef ES_HTTP_PRIVATE_H
#define ES_HTTP_PRIVATE_H

#include <stdbool.h>
#include <pthread.h>
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
};

struct es_http {
	struct es_http_conf conf;
	struct MHD_Daemon *daemon; /* NULL when not serving */
	unsigned short port;
	struct route *routes;
	size_t nroutes;
	struct es_counter *requests;
	struct es_histogram *duration;
	pthread_mutex_t streams_lock; /* guards streams (the list only) */
	struct es_http_stream *streams; /* open ones, for es_http_stop */
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
	struct es_http_stream *stream; /* a streamed answer: no resp_body */
};

/* Frees what es_http_route allocated for r. */
void http_route_release(struct route *r);

/* The most specific route of method for req's path, or NULL. */
const struct route *http_find_route(const struct es_http *http, const struct es_http_request *req,
				    const char *method);

/* The methods routed for req's path, for a 405's Allow header. Returns
 * false when no route has this path at all (a 404). */
bool http_allowed_methods(const struct es_http *http, struct es_http_request *req, char *allow,
			  size_t size);

/* The response of req's stream, with the server's reference handed to it;
 * NULL on failure (the stream then counts as closed). */
struct MHD_Response *http_stream_response(struct es_http_request *req);

/* Ends every open stream of http (resuming the suspended ones), so that
 * libmicrohttpd can stop: it refuses to with suspended connections. */
void http_streams_end(struct es_http *http);

#endif
