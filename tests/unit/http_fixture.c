/*
 * The test server and the raw HTTP client of tests/unit/test_http_*.c (see
 * http_fixture.h).
 */
#include "http_fixture.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "es/log.h"

struct es_metrics *reg;
struct es_http *http;
atomic_bool ready;
char errstr[256];

/* ------------------------------------------------------------------------ */
/* A raw HTTP client */

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void client_open_port(struct client *c, unsigned short port)
{
	client_open_from(c, port, NULL);
}

void client_open_from(struct client *c, unsigned short port, const char *source)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1;

	memset(c, 0, sizeof(*c));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(c->fd, 0);
	if (source) {
		struct sockaddr_in from = {.sin_family = AF_INET};

		ck_assert_int_eq(inet_pton(AF_INET, source, &from.sin_addr), 1);
		ck_assert_msg(bind(c->fd, (struct sockaddr *)&from, sizeof(from)) == 0,
			      "bind to %s: %s", source, strerror(errno));
	}
	ck_assert_int_eq(connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	/* Small writes leave as separate segments: a piecemeal request. */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

void client_open(struct client *c)
{
	client_open_port(c, es_http_port(http));
}

void client_close(struct client *c)
{
	close(c->fd);
	free(c->buf);
	c->buf = NULL;
}

void client_send(struct client *c, const void *data, size_t len)
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

void client_sends(struct client *c, const char *s)
{
	client_send(c, s, strlen(s));
}

/* Reads more into the buffer. Returns false at end of stream; fails the
 * test at the deadline. */
bool client_fill(struct client *c, int64_t deadline)
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
const char *header_get(const struct resp *r, const char *name, char *out, size_t size)
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
void client_read(struct client *c, struct resp *r, bool head_only)
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

void resp_free(struct resp *r)
{
	free(r->head);
	free(r->body);
}

/* Sends one raw request on a new connection and reads the answer. */
void roundtrip(const char *raw, struct resp *r)
{
	struct client c;

	client_open(&c);
	client_sends(&c, raw);
	client_read(&c, r, !strncmp(raw, "HEAD ", 5));
	client_close(&c);
}

void get(const char *path, struct resp *r)
{
	char raw[1024];

	snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
	roundtrip(raw, r);
}

json_t *body_json(const struct resp *r)
{
	json_error_t err;
	json_t *j = json_loadb(r->body, r->body_len, 0, &err);

	ck_assert_msg(j != NULL, "body is not JSON (%s): %s", err.text, r->body);
	return j;
}

/* Checks an RFC 9457 body: content type, status, title and type. */
json_t *assert_problem(const struct resp *r, int status)
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

void server_conf(struct es_http_conf *conf, unsigned int timeout)
{
	es_http_conf_init(conf);
	conf->bind_addr = "127.0.0.1";
	conf->threads = 2;
	conf->connection_timeout = timeout;
	conf->metrics = reg;
	conf->ready = is_ready;
}

struct es_http *server_new(unsigned int timeout)
{
	struct es_http_conf conf;

	server_conf(&conf, timeout);
	return server_start(&conf);
}

struct es_http *server_start(const struct es_http_conf *conf)
{
	struct es_http *h;

	h = es_http_new(conf, errstr, sizeof(errstr));
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

long long posted_length(const struct resp *r)
{
	json_t *j = body_json(r);
	long long n = json_integer_value(json_object_get(j, "length"));

	json_decref(j);
	return n;
}

/* One suite of a single tcase "server", whose every test gets a fresh
 * server (setup, teardown); add_tests adds the tests. */
int http_fixture_run(const char *suite, void (*add_tests)(TCase *tc))
{
	Suite *s = suite_create(suite);
	TCase *tc = tcase_create("server");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	add_tests(tc);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
