#include "http_private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "es/clock.h"
#include "es/log.h"

/*
 * Once a body went over the limit we keep reading and dropping the rest:
 * libmicrohttpd cannot answer before the request is complete, and many
 * clients read nothing until they have sent everything. Past this much
 * dropped data the client is not worth the bandwidth: close on it.
 */
#define DRAIN_LIMIT (1024 * 1024)

/* The metrics label for a request that matched no route. */
#define UNMATCHED_ROUTE "unmatched"

/* The largest body_limit accepted: bodies are held in memory. */
#define BODY_LIMIT_MAX ((size_t)1 << 30)

/* At most this many of libmicrohttpd's own messages are logged a second;
 * the others are counted and summed up in one line. */
#define LOG_BURST 5

/* ------------------------------------------------------------------------ */
/* Configuration */

void es_http_conf_init(struct es_http_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	conf->threads = ES_HTTP_DEFAULT_THREADS;
	conf->connection_timeout = ES_HTTP_DEFAULT_CONNECTION_TIMEOUT;
	conf->connection_limit = ES_HTTP_DEFAULT_CONNECTION_LIMIT;
	conf->client_connection_limit = ES_HTTP_DEFAULT_CLIENT_CONNECTION_LIMIT;
	conf->request_timeout = ES_HTTP_DEFAULT_REQUEST_TIMEOUT;
	conf->body_limit = ES_HTTP_DEFAULT_BODY_LIMIT;
}

/* ------------------------------------------------------------------------ */
/* Built-in routes */

static int handle_livez(struct es_http_request *req, void *arg)
{
	return es_http_reply_json(req, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

static int handle_readyz(struct es_http_request *req, void *arg)
{
	struct es_http *http = arg;
	char reason[256] = "";

	if (!http->conf.ready || http->conf.ready(http->conf.ready_arg, reason, sizeof(reason)))
		return es_http_reply_json(req, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
	reason[sizeof(reason) - 1] = '\0';
	return es_http_reply_problem(req, MHD_HTTP_SERVICE_UNAVAILABLE, NULL, NULL,
				     reason[0] ? reason : "not ready", NULL);
}

static int handle_metrics(struct es_http_request *req, void *arg)
{
	struct es_http *http = arg;
	size_t len;
	char *text;
	int result;

	text = es_metrics_render(http->conf.metrics, &len);
	if (!text)
		return -1;
	result = es_http_reply_body(req, MHD_HTTP_OK, METRICS_TYPE, text, len);
	free(text);
	return result;
}

static int register_metrics(struct es_http *http, char *errstr, size_t errstr_size)
{
	static const char *const count_labels[] = {"method", "route", "status", NULL};
	static const char *const duration_labels[] = {"method", "route", NULL};

	http->requests = es_counter_register(http->conf.metrics, "es_http_requests_total",
					     "HTTP requests answered, by method, route pattern "
					     "and status.",
					     count_labels, errstr, errstr_size);
	if (!http->requests)
		return -1;
	http->duration = es_histogram_register(
		http->conf.metrics, "es_http_request_duration_seconds",
		"Time from a request's headers to its answer, by method and route pattern.",
		duration_labels, NULL, 0, errstr, errstr_size);
	if (!http->duration)
		return -1;
	http->timeouts = es_counter_register(
		http->conf.metrics, "es_http_request_timeouts_total",
		"Connections cut because a request was not complete within the request "
		"deadline (HTTP_REQUEST_TIMEOUT_S): slow or stalled clients.",
		NULL, errstr, errstr_size);
	if (!http->timeouts)
		return -1;
	return 0;
}

struct es_http *es_http_new(const struct es_http_conf *conf, char *errstr, size_t errstr_size)
{
	struct es_http *http;

	if (!conf || conf->threads < 1 || conf->connection_limit < 1) {
		snprintf(errstr, errstr_size, "http: threads and connection_limit must be >= 1");
		return NULL;
	}
	if (conf->body_limit > BODY_LIMIT_MAX) {
		snprintf(errstr, errstr_size, "http: body_limit may be at most %zu bytes",
			 BODY_LIMIT_MAX);
		return NULL;
	}
	http = calloc(1, sizeof(*http));
	if (!http) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	http->conf = *conf;
	http->log_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
	if (http_guard_init(http, errstr, errstr_size))
		goto fail;
	if (es_http_route(http, "GET", "/livez", handle_livez, http, errstr, errstr_size) ||
	    es_http_route(http, "GET", "/readyz", handle_readyz, http, errstr, errstr_size))
		goto fail;
	if (conf->metrics) {
		if (register_metrics(http, errstr, errstr_size) ||
		    es_http_route(http, "GET", "/metrics", handle_metrics, http, errstr,
				  errstr_size))
			goto fail;
	}
	return http;
fail:
	es_http_free(http);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Requests: state */

static void request_free(struct es_http_request *req)
{
	struct header *h, *next;

	for (h = req->headers; h; h = next) {
		next = h->next;
		free(h->name);
		free(h->value);
		free(h);
	}
	free(req->resp_body);
	free(req->content_type);
	free(req->body);
	free(req->pathbuf);
	free(req);
}

/* Bounded label values whatever the client sends as a method. */
static const char *method_label(const char *method)
{
	static const char *const known[] = {"GET",    "HEAD",  "POST",	  "PUT",
					    "DELETE", "PATCH", "OPTIONS", NULL};

	for (size_t i = 0; known[i]; i++) {
		if (!strcmp(method, known[i]))
			return known[i];
	}
	return "OTHER";
}

/* Splits the path into segments, pointing into a private copy. */
static int split_path(struct es_http_request *req)
{
	char *s, *slash;

	if (req->path[0] != '/') {
		req->unroutable = true; /* "*" or an absolute URI */
		return 0;
	}
	req->pathbuf = strdup(req->path + 1);
	if (!req->pathbuf)
		return -1;
	if (!*req->pathbuf)
		return 0;
	for (s = req->pathbuf; s; s = slash ? slash + 1 : NULL) {
		if (req->nseg == ES_HTTP_MAX_SEGMENTS) {
			req->unroutable = true;
			return 0;
		}
		slash = strchr(s, '/');
		if (slash)
			*slash = '\0';
		req->seg[req->nseg++] = s;
	}
	return 0;
}

static struct es_http_request *request_new(struct es_http *http, struct MHD_Connection *conn,
					   const char *url, const char *method)
{
	struct es_http_request *req = calloc(1, sizeof(*req));

	if (!req)
		return NULL;
	clock_gettime(CLOCK_MONOTONIC, &req->started);
	req->http = http;
	req->conn = conn;
	req->method = method;
	req->path = url;
	req->method_label = method_label(method);
	req->route_label = UNMATCHED_ROUTE;
	req->headers_tail = &req->headers;
	if (split_path(req)) {
		request_free(req);
		return NULL;
	}
	return req;
}

/* ------------------------------------------------------------------------ */
/* Requests: answers */

static void record(struct es_http_request *req, unsigned int status)
{
	struct es_http *http = req->http;
	struct timespec now;
	char code[16];
	double seconds;

	if (!http->conf.metrics)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	seconds = (double)(now.tv_sec - req->started.tv_sec) +
		  (double)(now.tv_nsec - req->started.tv_nsec) / 1e9;
	snprintf(code, sizeof(code), "%u", status);
	es_counter_inc(http->requests,
		       (const char *const[]){req->method_label, req->route_label, code});
	es_histogram_observe(http->duration,
			     (const char *const[]){req->method_label, req->route_label}, seconds);
}

static struct MHD_Response *build_response(struct es_http_request *req)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(req->resp_len, req->resp_body,
					       MHD_RESPMEM_MUST_FREE);
	if (!resp)
		return NULL;
	req->resp_body = NULL; /* libmicrohttpd frees it with the response */
	if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, req->content_type) ==
	    MHD_NO) {
		MHD_destroy_response(resp);
		return NULL;
	}
	for (const struct header *h = req->headers; h; h = h->next) {
		if (MHD_add_response_header(resp, h->name, h->value) == MHD_NO)
			es_warn("http: could not add header %s", h->name);
	}
	return resp;
}

/* Hands the answer to libmicrohttpd, or a bare 500 when there is none (the
 * handler did not reply, or memory ran out on the way). */
static enum MHD_Result queue_reply(struct es_http_request *req)
{
	struct MHD_Response *resp = NULL;
	unsigned int status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	enum MHD_Result ret;

	if (req->replied) {
		resp = build_response(req);
		if (resp)
			status = req->status;
	}
	if (!resp) {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
	}
	ret = MHD_queue_response(req->conn, status, resp);
	MHD_destroy_response(resp);
	req->queued = true;
	http_guard_answered(req->http, req->conn);
	if (ret == MHD_YES)
		record(req, status);
	return ret;
}

static enum MHD_Result reject(struct es_http_request *req, unsigned int status, const char *detail)
{
	es_http_reply_problem(req, status, NULL, NULL, detail, NULL);
	return queue_reply(req);
}

static bool content_length_over(const struct es_http_request *req, size_t limit)
{
	const char *value;
	unsigned long long n;
	char *end;

	value = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
					    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (!value)
		return false;
	errno = 0;
	n = strtoull(value, &end, 10);
	if (end == value)
		return false; /* libmicrohttpd rejects it before we get here */
	return errno == ERANGE || n > limit;
}

static enum MHD_Result body_too_large(struct es_http_request *req)
{
	char detail[128];

	snprintf(detail, sizeof(detail), "The request body is larger than the limit of %zu bytes.",
		 req->http->conf.body_limit);
	return reject(req, MHD_HTTP_CONTENT_TOO_LARGE, detail);
}

/*
 * First call, headers in hand: route, and refuse early what we already
 * know we will refuse, so that a big body is never read (libmicrohttpd
 * then skips the 100 Continue and closes after the answer).
 */
/* The bearer token of req, or NULL. */
static const char *bearer_token(const struct es_http_request *req)
{
	const char *v = es_http_header(req, MHD_HTTP_HEADER_AUTHORIZATION);

	if (!v || strncasecmp(v, "Bearer ", 7))
		return NULL;
	v += 7;
	while (*v == ' ')
		v++;
	return *v ? v : NULL;
}

/* The access the route of req asks for: the built-in /metrics is an
 * operator's when the server listens beyond the loopback address. */
static enum es_http_access access_of(const struct es_http_request *req)
{
	const char *bind = req->http->conf.bind_addr;

	if (req->route->fn == handle_metrics && (!bind || strncmp(bind, "127.", 4)))
		return ES_HTTP_OPERATOR;
	return req->route->access;
}

/*
 * Checks the caller of req against its route. Returns true when the
 * handler may run (req->caller filled); otherwise the 401 or 403 problem
 * is the reply. The reason a token was refused goes to the client (it is
 * about the client's own token) but the token itself goes nowhere.
 */
static bool caller_allowed(struct es_http_request *req)
{
	const struct es_auth *auth = req->http->conf.auth;
	enum es_http_access access;
	const char *token;
	char why[256], challenge[400];

	if (!auth)
		return true;
	access = access_of(req);
	if (access == ES_HTTP_PUBLIC)
		return true;
	token = bearer_token(req);
	if (!token) {
		es_http_add_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
				   "Bearer realm=\"eventshop\"");
		es_http_reply_problem(req, MHD_HTTP_UNAUTHORIZED, NULL, "Authentication required",
				      "This resource needs a bearer token: Authorization: Bearer "
				      "<token>.",
				      NULL);
		return false;
	}
	if (es_auth_verify(auth, token, (long long)time(NULL), &req->caller, why, sizeof(why))) {
		snprintf(challenge, sizeof(challenge),
			 "Bearer realm=\"eventshop\", error=\"invalid_token\", "
			 "error_description=\"%s\"",
			 why);
		es_http_add_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE, challenge);
		es_http_reply_problem(req, MHD_HTTP_UNAUTHORIZED, NULL, "Invalid token", why, NULL);
		return false;
	}
	if (access == ES_HTTP_OPERATOR && req->caller.role != ES_AUTH_OPERATOR) {
		es_http_reply_problem(req, MHD_HTTP_FORBIDDEN, NULL, "Operators only",
				      "This resource is for the shop's operators; a customer's "
				      "token does not open it.",
				      NULL);
		return false;
	}
	return true;
}

static enum MHD_Result request_begin(struct es_http_request *req)
{
	struct es_http *http = req->http;
	char allow[256];
	char detail[320];

	req->route = http_find_route(http, req, req->method);
	if (!req->route && !strcmp(req->method, "HEAD"))
		req->route = http_find_route(http, req, "GET");
	if (!req->route) {
		if (!http_allowed_methods(http, req, allow, sizeof(allow)))
			return reject(req, MHD_HTTP_NOT_FOUND,
				      "There is no resource at this path.");
		es_http_add_header(req, MHD_HTTP_HEADER_ALLOW, allow);
		snprintf(detail, sizeof(detail), "This resource allows only: %s.", allow);
		return reject(req, MHD_HTTP_METHOD_NOT_ALLOWED, detail);
	}
	req->route_label = req->route->pattern;
	if (!caller_allowed(req))
		return queue_reply(req);
	if (content_length_over(req, http->conf.body_limit))
		return body_too_large(req);
	return MHD_YES;
}

static int body_append(struct es_http_request *req, const char *data, size_t size)
{
	size_t need = req->body_len + size + 1;

	if (need > req->body_cap) {
		size_t cap = req->body_cap ? req->body_cap * 2 : 4096;
		char *body;

		if (cap < need)
			cap = need;
		if (cap > req->http->conf.body_limit + 1)
			cap = req->http->conf.body_limit + 1;
		body = realloc(req->body, cap);
		if (!body)
			return -1;
		req->body = body;
		req->body_cap = cap;
	}
	memcpy(req->body + req->body_len, data, size);
	req->body_len += size;
	req->body[req->body_len] = '\0';
	return 0;
}

/* A piece of the body: keep it while under the limit, drop it after. */
static enum MHD_Result request_upload(struct es_http_request *req, const char *data, size_t size)
{
	if (!req->too_large && !req->queued && size > req->http->conf.body_limit - req->body_len) {
		req->too_large = true;
		free(req->body);
		req->body = NULL;
		req->body_len = req->body_cap = 0;
	}
	if (req->too_large || req->queued) {
		req->discarded += size;
		return req->discarded > DRAIN_LIMIT ? MHD_NO : MHD_YES;
	}
	return body_append(req, data, size) ? MHD_NO : MHD_YES;
}

struct es_db *es_http_db(struct es_http_request *req, char *errstr, size_t errstr_size)
{
	struct es_dbpool *pool = req->http->conf.db_pool;

	if (!pool) {
		snprintf(errstr, errstr_size, "this server lends no database connections");
		return NULL;
	}
	/* A connection that broke is closed (es_dbpool_put keeps only
	 * working ones) and another one borrowed. */
	if (req->db && !es_db_ok(req->db)) {
		es_dbpool_put(pool, req->db);
		req->db = NULL;
	}
	if (!req->db)
		req->db = es_dbpool_get(pool, errstr, errstr_size);
	return req->db;
}

static enum MHD_Result request_dispatch(struct es_http_request *req)
{
	const struct route *r = req->route;
	int rc;

	if (req->too_large)
		return body_too_large(req);
	if (!r)
		return queue_reply(req); /* cannot happen: request_begin answered */
	rc = r->fn(req, r->arg);
	es_dbpool_put(req->http->conf.db_pool, req->db);
	req->db = NULL;
	if (!req->replied) {
		es_error("http: %s %s: handler %s without replying", r->method, r->pattern,
			 rc ? "failed" : "returned");
		es_http_reply_problem(req, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL,
				      "The server could not produce an answer.", NULL);
	}
	return queue_reply(req);
}

/*
 * libmicrohttpd's call protocol: a first call per request with *con_cls
 * NULL (headers only), one call per piece of body with *upload_data_size
 * > 0 (which we must set to what we did not consume: always 0), and a
 * final call with *upload_data_size == 0, the only one after the first in
 * which an answer may be queued.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct es_http_request *req = *con_cls;
	size_t size;

	if (!req) {
		req = request_new(cls, conn, url, method);
		if (!req)
			return MHD_NO;
		*con_cls = req;
		return request_begin(req);
	}
	size = *upload_data_size;
	if (size) {
		*upload_data_size = 0;
		return request_upload(req, upload_data, size);
	}
	if (req->queued)
		return MHD_YES;
	return request_dispatch(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct es_http_request *req = *con_cls;

	http_guard_request_ended(cls, conn);
	if (!req)
		return;
	if (!req->queued)
		es_debug("http: %s %s ended before an answer (code %d)", req->method_label,
			 req->route_label, (int)toe);
	request_free(req);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct es_http *http = cls;
	long long second = es_monotonic_ms() / 1000;
	unsigned long dropped = 0;
	bool log = true;
	char msg[1024];
	size_t len;

	pthread_mutex_lock(&http->log_lock);
	if (second != http->log_second) {
		dropped = http->log_dropped;
		http->log_second = second;
		http->log_count = 0;
		http->log_dropped = 0;
	}
	if (++http->log_count > LOG_BURST) {
		http->log_dropped++;
		log = false;
	}
	pthread_mutex_unlock(&http->log_lock);
	if (dropped)
		es_warn("http: %lu more message(s) of libmicrohttpd in the last second left out",
			dropped);
	if (!log)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	len = strlen(msg);
	while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
		msg[--len] = '\0';
	es_warn("http: %s", msg);
}

/* ------------------------------------------------------------------------ */
/* Server */

int es_http_start(struct es_http *http, char *errstr, size_t errstr_size)
{
	struct sockaddr_in sin = {0};
	struct MHD_OptionItem extra[] = {
		{MHD_OPTION_END, 0, NULL},
		{MHD_OPTION_END, 0, NULL},
		{MHD_OPTION_END, 0, NULL},
	};
	size_t nextra = 0;
	const union MHD_DaemonInfo *info;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;

	if (http->daemon) {
		snprintf(errstr, errstr_size, "http: already started");
		return -1;
	}
	if (http->conf.bind_addr) {
		sin.sin_family = AF_INET;
		sin.sin_port = htons(http->conf.port);
		if (inet_pton(AF_INET, http->conf.bind_addr, &sin.sin_addr) != 1) {
			snprintf(errstr, errstr_size, "http: \"%s\" is not an IPv4 address",
				 http->conf.bind_addr);
			return -1;
		}
		extra[nextra++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &sin};
	}
	if (http->conf.client_connection_limit)
		extra[nextra++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT,
							  http->conf.client_connection_limit, NULL};
	if (http_guard_start(http, errstr, errstr_size))
		return -1;

	/* The logger goes first, so that option errors are logged through it. */
	http->daemon = MHD_start_daemon(
		flags, http->conf.port, NULL, NULL, on_request, http, MHD_OPTION_EXTERNAL_LOGGER,
		on_mhd_log, http, MHD_OPTION_NOTIFY_COMPLETED, on_completed, http,
		MHD_OPTION_NOTIFY_CONNECTION, http_guard_on_connection, http,
		MHD_OPTION_URI_LOG_CALLBACK, http_guard_on_request_line, http,
		MHD_OPTION_THREAD_POOL_SIZE, http->conf.threads, MHD_OPTION_CONNECTION_TIMEOUT,
		http->conf.connection_timeout, MHD_OPTION_CONNECTION_LIMIT,
		http->conf.connection_limit, MHD_OPTION_ARRAY, extra, MHD_OPTION_END);
	if (!http->daemon) {
		http_guard_stop(http);
		snprintf(errstr, errstr_size, "http: cannot listen on %s:%u (see the log above)",
			 http->conf.bind_addr ? http->conf.bind_addr : "*", http->conf.port);
		return -1;
	}
	info = MHD_get_daemon_info(http->daemon, MHD_DAEMON_INFO_BIND_PORT);
	http->port = info ? info->port : http->conf.port;
	return 0;
}

unsigned short es_http_port(const struct es_http *http)
{
	return http && http->daemon ? http->port : 0;
}

/*
 * Gives the connections still open up to DRAIN_MS to end before the daemon
 * stops. libmicrohttpd 0.9.75 can crash inside MHD_stop_daemon when it
 * tears down connections it had answered with its own error reply (a
 * malformed request) and whose clients have gone; once it has closed them
 * itself, the stop has nothing left to tear down. unit.http_connections'
 * garbage test, run many times in one process, crashed about one run in
 * six without this and not once in 150 with it.
 */
#define DRAIN_MS 200
static void drain(struct es_http *http)
{
	long long deadline = es_monotonic_ms() + DRAIN_MS;

	while (es_monotonic_ms() < deadline) {
		const union MHD_DaemonInfo *info = MHD_get_daemon_info(
			http->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

		if (!info || info->num_connections == 0)
			return;
		es_sleep_ms(5);
	}
}

void es_http_stop(struct es_http *http)
{
	if (!http || !http->daemon)
		return;
	drain(http);
	MHD_stop_daemon(http->daemon);
	http_guard_stop(http);
	http->daemon = NULL;
	http->port = 0;
}

void es_http_free(struct es_http *http)
{
	if (!http)
		return;
	es_http_stop(http);
	http_guard_release(http);
	pthread_mutex_destroy(&http->log_lock);
	for (size_t i = 0; i < http->nroutes; i++)
		http_route_release(&http->routes[i]);
	free(http->routes);
	free(http);
}
