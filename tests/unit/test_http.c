/*
 * Unit tests for http: a real server on an ephemeral port on 127.0.0.1,
 * spoken to in raw HTTP/1.1 over a socket, so that malformed, chunked and
 * piecemeal requests can be sent exactly as a hostile client would.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <jansson.h>

#include "es/http.h"
#include "es/log.h"
#include "es/metrics.h"

#define LIMIT ES_HTTP_DEFAULT_BODY_LIMIT
#define RESPONSE_TIMEOUT_MS 15000 /* generous: valgrind is slow */

static struct es_metrics *reg;
static struct es_http *http;
static atomic_bool ready;
static char errstr[256];

/* ------------------------------------------------------------------------ */
/* A raw HTTP client */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

static void client_open_port(struct client *c, unsigned short port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1;

	memset(c, 0, sizeof(*c));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(c->fd, 0);
	ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	/* Small writes leave as separate segments: a piecemeal request. */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void client_open(struct client *c)
{
	client_open_port(c, es_http_port(http));
}

static void client_close(struct client *c)
{
	close(c->fd);
	free(c->buf);
	c->buf = NULL;
}

static void client_send(struct client *c, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		ck_assert_msg(n > 0, "send: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

static void client_sends(struct client *c, const char *s)
{
	client_send(c, s, strlen(s));
}

/* Reads more into the buffer. Returns false at end of stream; fails the
 * test at the deadline. */
static bool client_fill(struct client *c, int64_t deadline)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	ssize_t n;

	for (;;) {
		int64_t left = deadline - now_ms();
		int rc;

		ck_assert_msg(left > 0, "no answer before the deadline");
		rc = poll(&pfd, 1, (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		ck_assert_int_ge(rc, 0);
		if (rc > 0)
			break;
	}
	if (c->len + 4096 + 1 > c->cap) {
		c->cap = (c->len + 4096 + 1) * 2;
		c->buf = realloc(c->buf, c->cap);
		ck_assert_ptr_nonnull(c->buf);
	}
	n = recv(c->fd, c->buf + c->len, 4096, 0);
	if (n <= 0)
		return false; /* EOF, or reset by a server that closed */
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	return true;
}

static void consume(struct client *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	c->buf[c->len] = '\0';
}

/* The value of header name in r, copied into out, or NULL. */
static const char *header_get(const struct resp *r, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);

	for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line, "\r\n")) {
		line += 2;
		if (!strncasecmp(line, name, n) && line[n] == ':') {
			const char *v = line + n + 1;
			size_t len;

			v += strspn(v, " ");
			len = strcspn(v, "\r");
			snprintf(out, size, "%.*s", (int)len, v);
			return out;
		}
	}
	return NULL;
}

/* Reads one response; head_only for an answer to HEAD (no body follows). */
static void client_read(struct client *c, struct resp *r, bool head_only)
{
	int64_t deadline = now_ms() + RESPONSE_TIMEOUT_MS;
	char value[64];
	char *end;
	size_t head_len;
	long long length = -1;

	memset(r, 0, sizeof(*r));
	while (!c->buf || !(end = strstr(c->buf, "\r\n\r\n")))
		ck_assert_msg(client_fill(c, deadline), "connection closed before an answer");
	head_len = (size_t)(end - c->buf) + 4;
	r->head = strndup(c->buf, head_len - 2);
	ck_assert_int_eq(sscanf(r->head, "HTTP/1.%*d %d", &r->status), 1);
	consume(c, head_len);
	if (header_get(r, "Content-Length", value, sizeof(value)))
		length = strtoll(value, NULL, 10);
	if (head_only)
		length = 0;
	if (length >= 0) {
		while (c->len < (size_t)length)
			ck_assert_msg(client_fill(c, deadline), "body cut short");
	} else {
		while (client_fill(c, deadline))
			;
		length = (long long)c->len;
	}
	r->body = strndup(c->buf ? c->buf : "", (size_t)length);
	r->body_len = (size_t)length;
	consume(c, (size_t)length);
}

static void resp_free(struct resp *r)
{
	free(r->head);
	free(r->body);
}

/* Sends one raw request on a new connection and reads the answer. */
static void roundtrip(const char *raw, struct resp *r)
{
	struct client c;

	client_open(&c);
	client_sends(&c, raw);
	client_read(&c, r, !strncmp(raw, "HEAD ", 5));
	client_close(&c);
}

static void get(const char *path, struct resp *r)
{
	char raw[1024];

	snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
	roundtrip(raw, r);
}

static json_t *body_json(const struct resp *r)
{
	json_error_t err;
	json_t *j = json_loadb(r->body, r->body_len, 0, &err);

	ck_assert_msg(j != NULL, "body is not JSON (%s): %s", err.text, r->body);
	return j;
}

/* Checks an RFC 9457 body: content type, status, title and type. */
static json_t *assert_problem(const struct resp *r, int status)
{
	char type[128];
	json_t *p;

	ck_assert_int_eq(r->status, status);
	ck_assert_ptr_nonnull(header_get(r, "Content-Type", type, sizeof(type)));
	ck_assert_str_eq(type, "application/problem+json");
	p = body_json(r);
	ck_assert_int_eq(json_integer_value(json_object_get(p, "status")), status);
	ck_assert_str_eq(json_string_value(json_object_get(p, "type")), "about:blank");
	ck_assert_ptr_nonnull(json_string_value(json_object_get(p, "title")));
	ck_assert_ptr_nonnull(json_string_value(json_object_get(p, "detail")));
	return p;
}

/* ------------------------------------------------------------------------ */
/* Routes of the server under test */

static int get_order(struct es_http_request *req, void *arg)
{
	const char *status = es_http_query(req, "status");
	const char *verbose = es_http_query(req, "verbose");

	return es_http_reply_json(req, 200,
				  json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?}", "orderId",
					    es_http_param(req, "orderId"), "route",
					    es_http_route_pattern(req), "path", es_http_path(req),
					    "status", status, "verbose", verbose, "traceparent",
					    es_http_header(req, "traceparent")));
}

static int search_orders(struct es_http_request *req, void *arg)
{
	return es_http_reply_json(req, 200, json_pack("{s:s}", "route", "search"));
}

static int cancel_order(struct es_http_request *req, void *arg)
{
	return es_http_reply_json(req, 202,
				  json_pack("{s:s}", "cancelled", es_http_param(req, "orderId")));
}

/* POST /echo: the JSON body back, as a front door would validate it. */
static int echo(struct es_http_request *req, void *arg)
{
	json_error_t err;
	size_t len;
	const char *body = es_http_body(req, &len);
	json_t *doc, *errors;

	if (!es_http_content_type_is(req, "application/json"))
		return es_http_reply_problem(req, 415, NULL, NULL, "Send application/json.", NULL);
	doc = json_loadb(body, len, 0, &err);
	if (!doc) {
		errors = json_array();
		es_http_errors_add(errors, "", err.text);
		return es_http_reply_problem(req, 400, "https://eventshop.example/problems/json",
					     "Malformed JSON", "The body is not JSON.", errors);
	}
	es_http_add_header(req, "Location", "/echo/1");
	return es_http_reply_json(req, 201, doc);
}

/* POST /size: how many body bytes arrived. */
static int size(struct es_http_request *req, void *arg)
{
	size_t len;
	es_http_body(req, &len);
	return es_http_reply_json(req, 200, json_pack("{s:I}", "length", (json_int_t)len));
}

static int forgets_to_reply(struct es_http_request *req, void *arg)
{
	return 0;
}

static bool is_ready(void *arg, char *reason, size_t reason_size)
{
	if (atomic_load(&ready))
		return true;
	snprintf(reason, reason_size, "database unreachable");
	return false;
}

static struct es_http *server_new(unsigned int timeout)
{
	struct es_http_conf conf;
	struct es_http *h;

	es_http_conf_init(&conf);
	conf.bind_addr = "127.0.0.1";
	conf.threads = 2;
	conf.connection_timeout = timeout;
	conf.metrics = reg;
	conf.ready = is_ready;
	h = es_http_new(&conf, errstr, sizeof(errstr));
	ck_assert_msg(h != NULL, "%s", errstr);
	ck_assert_int_eq(es_http_route(h, "GET", "/orders/{orderId}", get_order, NULL, errstr,
				       sizeof(errstr)),
			 0);
	ck_assert_int_eq(es_http_route(h, "GET", "/orders/search", search_orders, NULL, errstr,
				       sizeof(errstr)),
			 0);
	ck_assert_int_eq(es_http_route(h, "POST", "/orders/{orderId}/cancel", cancel_order, NULL,
				       errstr, sizeof(errstr)),
			 0);
	ck_assert_int_eq(es_http_route(h, "POST", "/echo", echo, NULL, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(es_http_route(h, "PUT", "/echo", echo, NULL, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(es_http_route(h, "POST", "/size", size, NULL, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(
		es_http_route(h, "GET", "/broken", forgets_to_reply, NULL, errstr, sizeof(errstr)),
		0);
	ck_assert_msg(es_http_start(h, errstr, sizeof(errstr)) == 0, "%s", errstr);
	return h;
}

static void setup(void)
{
	/* Keep the expected warnings (a handler that did not reply) quiet. */
	es_log_init("test-http", (enum es_log_level)(ES_LOG_ERROR + 1));
	signal(SIGPIPE, SIG_IGN);
	atomic_store(&ready, true);
	reg = es_metrics_new();
	ck_assert_ptr_nonnull(reg);
	http = server_new(ES_HTTP_DEFAULT_CONNECTION_TIMEOUT);
}

static void teardown(void)
{
	es_http_free(http);
	http = NULL;
	es_metrics_free(reg);
	reg = NULL;
}

/* ------------------------------------------------------------------------ */
/* Tests */

START_TEST(server_listens_on_an_ephemeral_port)
{
	ck_assert_uint_ne(es_http_port(http), 0);
}
END_TEST

START_TEST(livez_answers_ok)
{
	struct resp r;
	char type[64];
	json_t *j;

	get("/livez", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(header_get(&r, "Content-Type", type, sizeof(type)), "application/json");
	j = body_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "ok");
	json_decref(j);
	resp_free(&r);
}
END_TEST

START_TEST(head_is_served_by_the_get_route_without_body)
{
	struct resp r;

	roundtrip("HEAD /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, 0);
	resp_free(&r);
}
END_TEST

START_TEST(readyz_follows_the_readiness_callback)
{
	struct resp r;
	json_t *p;

	get("/readyz", &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);

	atomic_store(&ready, false);
	get("/readyz", &r);
	p = assert_problem(&r, 503);
	ck_assert_str_eq(json_string_value(json_object_get(p, "detail")), "database unreachable");
	json_decref(p);
	resp_free(&r);

	atomic_store(&ready, true);
	get("/readyz", &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
}
END_TEST

START_TEST(path_params_query_params_and_headers_reach_the_handler)
{
	struct resp r;
	json_t *j;

	roundtrip("GET /orders/o-42?status=PENDING%20X&verbose&status=second HTTP/1.1\r\n"
		  "Host: t\r\ntraceparent: 00-abc-def-01\r\nConnection: close\r\n\r\n",
		  &r);
	ck_assert_int_eq(r.status, 200);
	j = body_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "orderId")), "o-42");
	ck_assert_str_eq(json_string_value(json_object_get(j, "route")), "/orders/{orderId}");
	ck_assert_str_eq(json_string_value(json_object_get(j, "path")), "/orders/o-42");
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "PENDING X");
	ck_assert_str_eq(json_string_value(json_object_get(j, "verbose")), "");
	ck_assert_str_eq(json_string_value(json_object_get(j, "traceparent")), "00-abc-def-01");
	json_decref(j);
	resp_free(&r);
}
END_TEST

START_TEST(literal_segment_wins_over_parameter)
{
	struct resp r;
	json_t *j;

	get("/orders/search", &r);
	ck_assert_int_eq(r.status, 200);
	j = body_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "route")), "search");
	json_decref(j);
	resp_free(&r);
}
END_TEST

START_TEST(unknown_path_is_404_problem)
{
	static const char *const paths[] = {"/nope",	   "/",	      "/orders", "/orders/",
					    "/orders/a/b", "//livez", "/livez/"};
	struct resp r;
	json_t *p;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		get(paths[i], &r);
		ck_assert_msg(r.status == 404, "%s: %d", paths[i], r.status);
		p = assert_problem(&r, 404);
		ck_assert_str_eq(json_string_value(json_object_get(p, "title")), "Not Found");
		json_decref(p);
		resp_free(&r);
	}
}
END_TEST

START_TEST(wrong_method_is_405_problem_with_allow)
{
	struct resp r;
	char allow[64];
	json_t *p;

	roundtrip("DELETE /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
	p = assert_problem(&r, 405);
	ck_assert_str_eq(header_get(&r, "Allow", allow, sizeof(allow)), "POST, PUT");
	json_decref(p);
	resp_free(&r);

	roundtrip("POST /livez HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
		  "Connection: close\r\n\r\n{}",
		  &r);
	p = assert_problem(&r, 405);
	ck_assert_str_eq(header_get(&r, "Allow", allow, sizeof(allow)), "GET, HEAD");
	json_decref(p);
	resp_free(&r);

	roundtrip("BREW /orders/1/cancel HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
	p = assert_problem(&r, 405);
	ck_assert_str_eq(header_get(&r, "Allow", allow, sizeof(allow)), "POST");
	json_decref(p);
	resp_free(&r);
}
END_TEST

START_TEST(json_post_is_echoed_with_location)
{
	static const char body[] = "{\"customerId\":\"c-1\",\"items\":[{\"sku\":\"mug-classic\"}]}";
	char raw[512];
	char location[64];
	struct resp r;
	json_t *sent, *got;

	snprintf(raw, sizeof(raw),
		 "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json; "
		 "charset=utf-8\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
		 strlen(body), body);
	roundtrip(raw, &r);
	ck_assert_int_eq(r.status, 201);
	ck_assert_str_eq(header_get(&r, "Location", location, sizeof(location)), "/echo/1");
	sent = json_loads(body, 0, NULL);
	got = body_json(&r);
	ck_assert(json_equal(sent, got));
	json_decref(sent);
	json_decref(got);
	resp_free(&r);
}
END_TEST

START_TEST(malformed_json_gets_problem_with_errors_array)
{
	struct resp r;
	json_t *p, *e;

	roundtrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
		  "Content-Length: 5\r\nConnection: close\r\n\r\n{\"a\":",
		  &r);
	ck_assert_int_eq(r.status, 400);
	p = body_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(p, "type")),
			 "https://eventshop.example/problems/json");
	ck_assert_str_eq(json_string_value(json_object_get(p, "title")), "Malformed JSON");
	ck_assert_int_eq(json_integer_value(json_object_get(p, "status")), 400);
	e = json_array_get(json_object_get(p, "errors"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(e, "pointer")), "");
	ck_assert_ptr_nonnull(json_string_value(json_object_get(e, "detail")));
	json_decref(p);
	resp_free(&r);

	roundtrip("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\n"
		  "Content-Length: 2\r\nConnection: close\r\n\r\n{}",
		  &r);
	p = assert_problem(&r, 415);
	json_decref(p);
	resp_free(&r);
}
END_TEST

/* Headers only: the server must answer without waiting for the body. */
static void assert_refused_up_front(const char *extra_headers)
{
	char raw[512];
	struct client c;
	struct resp r;
	json_t *p;

	snprintf(raw, sizeof(raw),
		 "POST /size HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
		 "Content-Length: %d\r\n%s\r\n",
		 LIMIT + 1, extra_headers);
	client_open(&c);
	client_sends(&c, raw);
	client_read(&c, &r, false);
	p = assert_problem(&r, 413);
	ck_assert_msg(strstr(json_string_value(json_object_get(p, "detail")), "65536") != NULL,
		      "%s", r.body);
	json_decref(p);
	resp_free(&r);
	client_close(&c);
}

START_TEST(content_length_over_limit_is_413_without_reading_body)
{
	assert_refused_up_front("");
	/* No "100 Continue" first: the client is told not to send at all. */
	assert_refused_up_front("Expect: 100-continue\r\n");
}
END_TEST

START_TEST(huge_content_length_is_413)
{
	struct resp r;

	roundtrip("POST /size HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999\r\n"
		  "Connection: close\r\n\r\n",
		  &r);
	/* libmicrohttpd may refuse a length it cannot represent itself. */
	ck_assert_msg(r.status == 413 || r.status == 400, "%d", r.status);
	resp_free(&r);
}
END_TEST

static long long posted_length(const struct resp *r)
{
	json_t *j = body_json(r);
	long long n = json_integer_value(json_object_get(j, "length"));

	json_decref(j);
	return n;
}

START_TEST(body_exactly_at_limit_is_accepted)
{
	char *raw = malloc(256 + LIMIT);
	int n;
	struct resp r;

	n = snprintf(raw, 256,
		     "POST /size HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
		     "Connection: close\r\n\r\n",
		     LIMIT);
	memset(raw + n, 'x', LIMIT);
	raw[n + LIMIT] = '\0';
	roundtrip(raw, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(posted_length(&r), LIMIT);
	resp_free(&r);
	free(raw);
}
END_TEST

/* Sends total bytes as chunks of chunk bytes, then the last chunk. */
static void send_chunked(struct client *c, size_t total, size_t chunk)
{
	char *data = malloc(chunk);
	char line[32];

	memset(data, 'y', chunk);
	client_sends(c, "POST /size HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
			"Connection: close\r\n\r\n");
	for (size_t sent = 0; sent < total; sent += chunk) {
		size_t n = total - sent < chunk ? total - sent : chunk;

		snprintf(line, sizeof(line), "%zx\r\n", n);
		client_sends(c, line);
		client_send(c, data, n);
		client_sends(c, "\r\n");
	}
	client_sends(c, "0\r\n\r\n");
	free(data);
}

START_TEST(chunked_body_over_limit_is_413)
{
	struct client c;
	struct resp r;
	json_t *p;

	client_open(&c);
	send_chunked(&c, LIMIT + 1, 1000);
	client_read(&c, &r, false);
	p = assert_problem(&r, 413);
	json_decref(p);
	resp_free(&r);
	client_close(&c);

	client_open(&c);
	send_chunked(&c, 3 * LIMIT, 7000);
	client_read(&c, &r, false);
	ck_assert_int_eq(r.status, 413);
	resp_free(&r);
	client_close(&c);
}
END_TEST

/* A client that never stops sending is not drained for ever. */
START_TEST(endless_chunked_body_is_cut_off)
{
	static const size_t give_up = (size_t)64 << 20;
	struct timeval tv = {.tv_sec = RESPONSE_TIMEOUT_MS / 1000};
	char frame[4096 + 16];
	struct client c;
	struct resp r;
	size_t sent = 0;
	int n;

	n = snprintf(frame, sizeof(frame), "%x\r\n", 4096);
	memset(frame + n, 'z', 4096);
	memcpy(frame + n + 4096, "\r\n", 2);
	n += 4096 + 2;

	client_open(&c);
	setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	client_sends(&c, "POST /size HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
	while (sent < give_up) {
		ssize_t k = send(c.fd, frame, (size_t)n, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			ck_assert_msg(errno == EPIPE || errno == ECONNRESET, "send: %s",
				      strerror(errno));
			break;
		}
		sent += (size_t)k;
	}
	ck_assert_msg(sent < give_up, "the server kept reading");
	client_close(&c);

	get("/livez", &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
}
END_TEST

START_TEST(chunked_body_at_limit_is_accepted)
{
	struct client c;
	struct resp r;

	client_open(&c);
	send_chunked(&c, LIMIT, 1000);
	client_read(&c, &r, false);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(posted_length(&r), LIMIT);
	resp_free(&r);
	client_close(&c);
}
END_TEST

START_TEST(keep_alive_connection_serves_requests_in_turn)
{
	struct client c;
	struct resp r;
	json_t *j;

	client_open(&c);
	/* Pipelined: both requests are on the wire before any answer. */
	client_sends(&c, "POST /size HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
			 "GET /orders/o-7 HTTP/1.1\r\nHost: t\r\n\r\n");
	client_read(&c, &r, false);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(posted_length(&r), 3);
	resp_free(&r);
	client_read(&c, &r, false);
	ck_assert_int_eq(r.status, 200);
	j = body_json(&r);
	ck_assert_str_eq(json_string_value(json_object_get(j, "orderId")), "o-7");
	json_decref(j);
	resp_free(&r);
	client_close(&c);
}
END_TEST

START_TEST(request_arriving_byte_by_byte_is_served)
{
	static const char raw[] = "POST /orders/o-9/cancel HTTP/1.1\r\nHost: t\r\n"
				  "Content-Length: 0\r\nConnection: close\r\n\r\n";
	struct client c;
	struct resp r;

	client_open(&c);
	for (size_t i = 0; i < strlen(raw); i++)
		client_send(&c, raw + i, 1);
	client_read(&c, &r, false);
	ck_assert_int_eq(r.status, 202);
	resp_free(&r);
	client_close(&c);
}
END_TEST

START_TEST(handler_without_reply_gives_500_problem)
{
	struct resp r;
	json_t *p;

	get("/broken", &r);
	p = assert_problem(&r, 500);
	json_decref(p);
	resp_free(&r);
}
END_TEST

/* Requests that are whole and ask for the connection to close: each must
 * get a well-formed answer (from us, or from libmicrohttpd's parser). */
START_TEST(odd_but_framed_requests_get_an_answer)
{
	static const struct {
		const char *raw;
		int status;
	} cases[] = {
		{"GET /orders/%00%ff HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 404},
		{"GET /orders/%ff%fe HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 500},
		{"GET /orders/x?%zz=%&&==&a=%G0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
		 200},
		{"GET * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 404},
		{"GET http://x/livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 404},
		{"GET /a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t HTTP/1.1\r\nHost: t\r\n"
		 "Connection: close\r\n\r\n",
		 404},
		{"GET /livez HTTP/1.0\r\n\r\n", 200}, /* closes by default */
	};
	struct resp r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		roundtrip(cases[i].raw, &r);
		ck_assert_msg(r.status == cases[i].status, "case %zu: %d", i, r.status);
		resp_free(&r);
	}
}
END_TEST

/* Unframed or malformed bytes: the server may answer, close or wait for
 * more, but must keep serving everyone else. */
START_TEST(garbage_requests_do_not_stop_the_server)
{
	static const char *const garbage[] = {
		"\r\n\r\n",
		"NOT-HTTP\r\n\r\n",
		"GET\r\n\r\n",
		"GET /livez HTTP/9.9\r\n\r\n",
		"GET /livez HTTP/1.1\r\nNo colon here\r\n\r\n",
		"GET /livez HTTP/1.1\r\nHost: t\r\n\x01\x02\xff: \xfe\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n",
		"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		("POST /size HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "ffffffffffffffffff\r\nabc\r\n"),
		"POST /size HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nshort",
	};
	enum { N = sizeof(garbage) / sizeof(garbage[0]) };
	struct client c[N];
	struct resp r;

	for (size_t i = 0; i < N; i++) {
		client_open(&c[i]);
		client_sends(&c[i], garbage[i]);
		shutdown(c[i].fd, SHUT_WR); /* no more is coming */
	}
	get("/livez", &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
	for (size_t i = 0; i < N; i++)
		client_close(&c[i]);
	get("/livez", &r);
	ck_assert_int_eq(r.status, 200);
	resp_free(&r);
}
END_TEST

START_TEST(metrics_count_requests_by_route_pattern)
{
	struct resp r;
	char type[128];

	get("/livez", &r);
	resp_free(&r);
	get("/orders/a", &r);
	resp_free(&r);
	get("/orders/b", &r);
	resp_free(&r);
	get("/nope", &r);
	resp_free(&r);
	roundtrip("POST /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
	resp_free(&r);

	get("/metrics", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(header_get(&r, "Content-Type", type, sizeof(type)),
			 "text/plain; version=0.0.4; charset=utf-8");
	ck_assert_ptr_nonnull(strstr(r.body, "# TYPE es_http_requests_total counter\n"));
	ck_assert_ptr_nonnull(strstr(r.body,
				     "es_http_requests_total{method=\"GET\",route=\"/livez\","
				     "status=\"200\"} 1\n"));
	ck_assert_ptr_nonnull(
		strstr(r.body, "es_http_requests_total{method=\"GET\",route=\"/orders/{orderId}\","
			       "status=\"200\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(r.body,
				     "es_http_requests_total{method=\"GET\",route=\"unmatched\","
				     "status=\"404\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(r.body,
				     "es_http_requests_total{method=\"POST\",route=\"/livez\","
				     "status=\"405\"} 1\n"));
	ck_assert_ptr_nonnull(
		strstr(r.body, "# TYPE es_http_request_duration_seconds histogram\n"));
	ck_assert_ptr_nonnull(strstr(r.body,
				     "es_http_request_duration_seconds_bucket{method=\"GET\","
				     "route=\"/orders/{orderId}\",le=\"+Inf\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(r.body,
				     "es_http_request_duration_seconds_count{method=\"GET\","
				     "route=\"/orders/{orderId}\"} 2\n"));
	/* Raw paths never become labels. */
	ck_assert_ptr_null(strstr(r.body, "/orders/a"));
	ck_assert_ptr_null(strstr(r.body, "/nope"));
	resp_free(&r);
}
END_TEST

START_TEST(unknown_methods_are_counted_as_other)
{
	struct resp r;

	roundtrip("FROBNICATE /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 405);
	resp_free(&r);
	get("/metrics", &r);
	ck_assert_ptr_nonnull(strstr(r.body,
				     "es_http_requests_total{method=\"OTHER\",route=\"/livez\","
				     "status=\"405\"} 1\n"));
	ck_assert_ptr_null(strstr(r.body, "FROBNICATE"));
	resp_free(&r);
}
END_TEST

START_TEST(idle_connection_is_closed_after_timeout)
{
	struct es_metrics *own = reg;
	struct es_http *short_lived;
	struct client c;
	int64_t start, deadline;

	/* A second server needs its own registry for its metrics. */
	reg = es_metrics_new();
	short_lived = server_new(1);
	client_open_port(&c, es_http_port(short_lived));
	client_sends(&c, "GET /livez HTTP/1.1\r\n"); /* and then nothing */
	start = now_ms();
	deadline = start + RESPONSE_TIMEOUT_MS;
	while (client_fill(&c, deadline))
		;
	ck_assert_int_ge(now_ms() - start, 900);
	client_close(&c);
	es_http_free(short_lived);
	es_metrics_free(reg);
	reg = own;
}
END_TEST

static int nop(struct es_http_request *req, void *arg)
{
	return 0;
}

START_TEST(bad_routes_are_refused)
{
	static const char *const bad[] = {"orders",    "/orders/", "//x",      "/a/{}",
					  "/a/{b}{c}", "/a/x{id}", "/a/{b-c}", "/a/{id}/{id}"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(
			es_http_route(http, "GET", bad[i], nop, NULL, errstr, sizeof(errstr)) == -1,
			"%s accepted", bad[i]);
	ck_assert_int_eq(es_http_route(http, "get", "/x", nop, NULL, errstr, sizeof(errstr)), -1);
}
END_TEST

START_TEST(routes_cannot_be_added_while_serving_or_twice)
{
	struct es_http_conf conf;
	struct es_http *h;

	ck_assert_int_eq(es_http_route(http, "GET", "/late", nop, NULL, errstr, sizeof(errstr)),
			 -1);
	ck_assert_ptr_nonnull(strstr(errstr, "before"));

	es_http_conf_init(&conf);
	h = es_http_new(&conf, errstr, sizeof(errstr));
	ck_assert_ptr_nonnull(h);
	ck_assert_int_eq(es_http_route(h, "GET", "/a/{x}", nop, NULL, errstr, sizeof(errstr)), 0);
	ck_assert_int_eq(es_http_route(h, "GET", "/a/{y}", nop, NULL, errstr, sizeof(errstr)), -1);
	ck_assert_int_eq(es_http_route(h, "GET", "/livez", nop, NULL, errstr, sizeof(errstr)), -1);
	ck_assert_int_eq(es_http_route(h, "POST", "/a/{y}", nop, NULL, errstr, sizeof(errstr)), 0);
	ck_assert_uint_eq(es_http_port(h), 0);
	es_http_free(h);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("server");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, server_listens_on_an_ephemeral_port);
	tcase_add_test(tc, livez_answers_ok);
	tcase_add_test(tc, head_is_served_by_the_get_route_without_body);
	tcase_add_test(tc, readyz_follows_the_readiness_callback);
	tcase_add_test(tc, path_params_query_params_and_headers_reach_the_handler);
	tcase_add_test(tc, literal_segment_wins_over_parameter);
	tcase_add_test(tc, unknown_path_is_404_problem);
	tcase_add_test(tc, wrong_method_is_405_problem_with_allow);
	tcase_add_test(tc, json_post_is_echoed_with_location);
	tcase_add_test(tc, malformed_json_gets_problem_with_errors_array);
	tcase_add_test(tc, content_length_over_limit_is_413_without_reading_body);
	tcase_add_test(tc, huge_content_length_is_413);
	tcase_add_test(tc, body_exactly_at_limit_is_accepted);
	tcase_add_test(tc, chunked_body_over_limit_is_413);
	tcase_add_test(tc, endless_chunked_body_is_cut_off);
	tcase_add_test(tc, chunked_body_at_limit_is_accepted);
	tcase_add_test(tc, keep_alive_connection_serves_requests_in_turn);
	tcase_add_test(tc, request_arriving_byte_by_byte_is_served);
	tcase_add_test(tc, handler_without_reply_gives_500_problem);
	tcase_add_test(tc, odd_but_framed_requests_get_an_answer);
	tcase_add_test(tc, garbage_requests_do_not_stop_the_server);
	tcase_add_test(tc, metrics_count_requests_by_route_pattern);
	tcase_add_test(tc, unknown_methods_are_counted_as_other);
	tcase_add_test(tc, idle_connection_is_closed_after_timeout);
	tcase_add_test(tc, bad_routes_are_refused);
	tcase_add_test(tc, routes_cannot_be_added_while_serving_or_twice);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
