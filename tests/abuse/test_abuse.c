/*
 * HTTP abuse of the front door: order-service started alone as a process
 * (its own schema and topics, tests/e2e/shop.c), then spoken to in raw
 * HTTP/1.1 over sockets the way a hostile or broken client would: bodies
 * that are not JSON, not UTF-8, nested without end or far too big; requests
 * that arrive in pieces, too slowly, or by the hundred at once; SQL in every
 * string a client controls. Each gets the contract's answer (a 4xx problem,
 * or a normal 202 that stores the text verbatim) or is cut off, never a
 * 5xx; and after every case the daemon is still alive (waitpid) and answers
 * GET /livez 200. When it dies (an ASan build reports and exits), its log
 * is printed.
 *
 * Every case prints one line "abuse: <case> -> <answer>" to stdout.
 *
 * Needs KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (tests/infra/with-infra)
 * and ORDER_SERVICE_BIN (ctest sets it).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <jansson.h>

#include "es/http.h"
#include "shop.h"
#include "testkafka.h"
#include "testsupport.h"

#define LIMIT ES_HTTP_DEFAULT_BODY_LIMIT
#define CONN_TIMEOUT_S ES_HTTP_DEFAULT_CONNECTION_TIMEOUT
#define ANSWER_MS 15000 /* an answer that takes longer counts as none (ASan is slow) */
#define PROBLEM(name) "urn:eventshop:problem:" name

#define VALID_HEAD                                                                              \
	"{\"customerId\":\"c-1\",\"customerEmail\":\"ada@example.com\",\"paymentToken\":\"tok_" \
	"visa\","
#define VALID VALID_HEAD "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":2}]}"

static struct shop shop;
static unsigned short port;
static bool daemon_dead;

static void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/* ------------------------------------------------------------------------ */
/* A raw HTTP client: nothing is assumed about the server's answers. */

enum {
	ANS_OK = 0,
	ANS_CLOSED = -1, /* the server closed (or reset) before a whole answer */
	ANS_TIMEOUT = -2, /* no whole answer within the time given */
	ANS_GARBLED = -3, /* bytes that are not an HTTP/1.x answer */
	ANS_CONNECT = -4, /* could not connect at all */
};

static const char *rc_name(int rc)
{
	switch (rc) {
	case ANS_OK:
		return "answered";
	case ANS_CLOSED:
		return "connection closed without an answer";
	case ANS_TIMEOUT:
		return "no answer (timeout)";
	case ANS_GARBLED:
		return "garbled answer";
	default:
		return "connect failed";
	}
}

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

static int conn_open(struct conn *c)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	int one = 1;

	memset(c, 0, sizeof(*c));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return ANS_CONNECT;
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin))) {
		close(c->fd);
		c->fd = -1;
		return ANS_CONNECT;
	}
	/* Small writes leave as separate segments: requests in pieces. */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

/* Closes with a TCP reset instead of a FIN. */
static void conn_reset(struct conn *c)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	conn_close(c);
}

/* 0, or -1 when the server no longer takes data (EPIPE, ECONNRESET). */
static int conn_send(struct conn *c, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int conn_sends(struct conn *c, const char *s)
{
	return conn_send(c, s, strlen(s));
}

/* 1: more bytes; 0: end of stream or reset; ANS_TIMEOUT at the deadline. */
static int conn_fill(struct conn *c, long long deadline)
{
	struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
	ssize_t n;

	for (;;) {
		long long left = deadline - shop_now_ms();
		int rc;

		if (left <= 0)
			return ANS_TIMEOUT;
		rc = poll(&pfd, 1, (int)left);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return 0;
		if (rc > 0)
			break;
	}
	if (c->len + 65536 + 1 > c->cap) {
		c->cap = (c->len + 65536 + 1) * 2;
		c->buf = realloc(c->buf, c->cap);
		ck_assert_ptr_nonnull(c->buf);
	}
	n = recv(c->fd, c->buf + c->len, 65536, 0);
	if (n <= 0)
		return 0;
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	return 1;
}

static void consume(struct conn *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	c->buf[c->len] = '\0';
}

static const char *header_get(const struct resp *r, const char *name, char *out, size_t size)
{
	size_t n = strlen(name);

	if (!r->head)
		return NULL;
	for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line, "\r\n")) {
		line += 2;
		if (!strncasecmp(line, name, n) && line[n] == ':') {
			const char *v = line + n + 1;

			v += strspn(v, " \t");
			snprintf(out, size, "%.*s", (int)strcspn(v, "\r"), v);
			return out;
		}
	}
	return NULL;
}

static void resp_free(struct resp *r)
{
	free(r->head);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* Reads one answer (HEAD: no body follows). */
static int conn_read(struct conn *c, struct resp *r, int timeout_ms, bool head_only)
{
	long long deadline = shop_now_ms() + timeout_ms;
	char value[64];
	char *end;
	size_t head_len;
	long long length = -1;
	int rc;

	memset(r, 0, sizeof(*r));
	while (!c->buf || !(end = strstr(c->buf, "\r\n\r\n"))) {
		rc = conn_fill(c, deadline);
		if (rc <= 0)
			return rc == ANS_TIMEOUT ? ANS_TIMEOUT
						 : (c->len ? ANS_GARBLED : ANS_CLOSED);
	}
	head_len = (size_t)(end - c->buf) + 4;
	r->head = strndup(c->buf, head_len - 2);
	if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
		return ANS_GARBLED;
	consume(c, head_len);
	if (header_get(r, "Content-Length", value, sizeof(value)))
		length = strtoll(value, NULL, 10);
	if (head_only || r->status / 100 == 1 || r->status == 204 || r->status == 304)
		length = 0;
	if (length >= 0) {
		while (c->len < (size_t)length) {
			rc = conn_fill(c, deadline);
			if (rc <= 0)
				return rc == ANS_TIMEOUT ? ANS_TIMEOUT : ANS_CLOSED;
		}
	} else {
		while ((rc = conn_fill(c, deadline)) > 0)
			;
		if (rc == ANS_TIMEOUT)
			return ANS_TIMEOUT;
		length = (long long)c->len;
	}
	r->body = malloc((size_t)length + 1);
	ck_assert_ptr_nonnull(r->body);
	if (length)
		memcpy(r->body, c->buf, (size_t)length);
	r->body[length] = '\0';
	r->body_len = (size_t)length;
	consume(c, (size_t)length);
	return ANS_OK;
}

/* Waits until the server closes c: 1 closed, 0 still open at the deadline.
 * Whatever it sends meanwhile is dropped. */
static int conn_wait_closed(struct conn *c, int timeout_ms)
{
	long long deadline = shop_now_ms() + timeout_ms;
	int rc;

	while ((rc = conn_fill(c, deadline)) > 0)
		c->len = 0;
	return rc == 0;
}

/* One raw request on a new connection; a failing send is not an error (a
 * server may answer and close before the request is all sent). */
static int exchange(const void *raw, size_t len, struct resp *r, int timeout_ms)
{
	struct conn c;
	int rc;

	memset(r, 0, sizeof(*r));
	if (conn_open(&c))
		return ANS_CONNECT;
	conn_send(&c, raw, len);
	rc = conn_read(&c, r, timeout_ms, len > 5 && !memcmp(raw, "HEAD ", 5));
	conn_close(&c);
	return rc;
}

static int exchanges(const char *raw, struct resp *r)
{
	return exchange(raw, strlen(raw), r, ANSWER_MS);
}

static int get(const char *path, struct resp *r)
{
	char *raw;
	int rc;

	ck_assert_int_gt(
		asprintf(&raw, "GET %s HTTP/1.1\r\nHost: abuse\r\nConnection: close\r\n\r\n", path),
		0);
	rc = exchanges(raw, r);
	free(raw);
	return rc;
}

/* POST with the given Content-Type line (NULL: none) and extra header
 * lines (each ending in CRLF; may hold any bytes but NUL). */
static int post(const char *path, const char *ctype, const char *extra, const void *body,
		size_t len, struct resp *r)
{
	char *head;
	char *raw;
	int n, rc;

	n = asprintf(&head,
		     "POST %s HTTP/1.1\r\nHost: abuse\r\n%s%s%sContent-Length: %zu\r\n"
		     "Connection: close\r\n%s\r\n",
		     path, ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "",
		     len, extra ? extra : "");
	ck_assert_int_gt(n, 0);
	raw = malloc((size_t)n + len);
	ck_assert_ptr_nonnull(raw);
	memcpy(raw, head, (size_t)n);
	if (len)
		memcpy(raw + n, body, len);
	rc = exchange(raw, (size_t)n + len, r, ANSWER_MS);
	free(raw);
	free(head);
	return rc;
}

static int post_order(const void *body, size_t len, const char *extra, struct resp *r)
{
	return post("/orders", "application/json", extra, body, len, r);
}

static int post_orders(const char *body, struct resp *r)
{
	return post_order(body, strlen(body), NULL, r);
}

/* ------------------------------------------------------------------------ */
/* What the answers must be */

/* A printable, shortened copy of a case's label (which may hold raw bytes). */
static const char *printable(const void *data, size_t len, char *out, size_t size)
{
	const unsigned char *p = data;
	size_t o = 0;

	for (size_t i = 0; i < len && o + 8 < size; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			out[o++] = (char)p[i];
		else
			o += (size_t)snprintf(out + o, size - o, "\\x%02x", p[i]);
		if (o > 96 && i + 1 < len) {
			o += (size_t)snprintf(out + o, size - o, "...(%zu bytes)", len);
			break;
		}
	}
	out[o] = '\0';
	return out;
}

static void note(const char *what, int rc, const struct resp *r)
{
	char type[128] = "", problem[160] = "";
	json_t *j;

	if (rc != ANS_OK) {
		printf("abuse: %s -> %s\n", what, rc_name(rc));
		return;
	}
	header_get(r, "Content-Type", type, sizeof(type));
	j = json_loadb(r->body, r->body_len, 0, NULL);
	if (json_is_string(json_object_get(j, "type")))
		snprintf(problem, sizeof(problem), " type=%s",
			 json_string_value(json_object_get(j, "type")));
	json_decref(j);
	printf("abuse: %s -> %d %s%s\n", what, r->status, type, problem);
}

/*
 * An RFC 9457 answer: the status, Content-Type application/problem+json,
 * a JSON object with type (type_want when given), title, status and detail.
 * Returns the problem (caller frees).
 */
static json_t *check_problem(const char *what, int rc, const struct resp *r, int status,
			     const char *type_want)
{
	char type[128];
	json_t *p;
	json_error_t jerr;

	ck_assert_msg(rc == ANS_OK, "%s: %s", what, rc_name(rc));
	ck_assert_msg(r->status == status, "%s: status %d, want %d: %s", what, r->status, status,
		      r->body);
	ck_assert_msg(header_get(r, "Content-Type", type, sizeof(type)) &&
			      !strcmp(type, "application/problem+json"),
		      "%s: Content-Type \"%s\", want application/problem+json", what,
		      header_get(r, "Content-Type", type, sizeof(type)) ? type : "(none)");
	p = json_loadb(r->body, r->body_len, 0, &jerr);
	ck_assert_msg(json_is_object(p), "%s: problem body is not a JSON object (%s): %s", what,
		      jerr.text, r->body);
	ck_assert_msg(json_string_length(json_object_get(p, "type")) > 0, "%s: no type: %s", what,
		      r->body);
	if (type_want)
		ck_assert_msg(!strcmp(json_string_value(json_object_get(p, "type")), type_want),
			      "%s: type %s, want %s", what,
			      json_string_value(json_object_get(p, "type")), type_want);
	ck_assert_msg(json_string_length(json_object_get(p, "title")) > 0, "%s: no title: %s", what,
		      r->body);
	ck_assert_msg(json_integer_value(json_object_get(p, "status")) == status,
		      "%s: status member: %s", what, r->body);
	ck_assert_msg(json_is_string(json_object_get(p, "detail")), "%s: no detail: %s", what,
		      r->body);
	return p;
}

static void expect_problem(const char *what, int rc, struct resp *r, int status,
			   const char *type_want)
{
	note(what, rc, r);
	json_decref(check_problem(what, rc, r, status, type_want));
	resp_free(r);
}

/* The problem's errors[] has one at pointer. */
static bool has_pointer(const json_t *p, const char *pointer)
{
	size_t i;
	json_t *e;

	json_array_foreach(json_object_get(p, "errors"), i, e)
	{
		if (!strcmp(json_string_value(json_object_get(e, "pointer")), pointer))
			return true;
	}
	return false;
}

static void print_log(void)
{
	char path[400], line[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.0.log", shop.dir, shop_names[SHOP_ORDER]);
	f = fopen(path, "r");
	if (!f)
		return;
	fprintf(stderr, "---- %s\n", path);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fprintf(stderr, "---- end of %s\n", path);
	fclose(f);
}

/* Not dead (an ASan build exits on its first error), and serving. */
static void daemon_ok(const char *after)
{
	pid_t pid = shop.pid[SHOP_ORDER][0];
	struct resp r;
	int status, rc = ANS_CONNECT;

	ck_assert_msg(!daemon_dead, "order-service died in an earlier case");
	if (waitpid(pid, &status, WNOHANG) == pid) {
		daemon_dead = true;
		shop.pid[SHOP_ORDER][0] = 0;
		fprintf(stderr, "order-service (pid %d) %s %d after: %s\n", (int)pid,
			WIFSIGNALED(status) ? "was killed by signal" : "exited with status",
			WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), after);
		print_log();
		ck_abort_msg("order-service died after: %s", after);
	}
	/* A freshly refused connection (over the connection limit) is retried. */
	for (int i = 0; i < 20; i++) {
		rc = get("/livez", &r);
		if (rc == ANS_OK)
			break;
		sleep_ms(250);
	}
	ck_assert_msg(rc == ANS_OK && r.status == 200, "GET /livez after %s: %s %d", after,
		      rc_name(rc), r.status);
	resp_free(&r);
}

/* A 202 for an order: its id (37 bytes) from the body, checked against
 * Location. */
static void expect_created(const char *what, int rc, struct resp *r, char *order_id)
{
	char location[128];
	json_t *j;

	note(what, rc, r);
	ck_assert_msg(rc == ANS_OK && r->status == 202, "%s: %s %d: %s", what, rc_name(rc),
		      r->status, r->body ? r->body : "");
	j = json_loadb(r->body, r->body_len, 0, NULL);
	ck_assert_msg(json_is_string(json_object_get(j, "orderId")), "%s: %s", what, r->body);
	ck_assert_str_eq(json_string_value(json_object_get(j, "status")), "PENDING");
	snprintf(order_id, 37, "%s", json_string_value(json_object_get(j, "orderId")));
	ck_assert_ptr_nonnull(header_get(r, "Location", location, sizeof(location)));
	ck_assert_ptr_nonnull(strstr(location, order_id));
	json_decref(j);
	resp_free(r);
}

/* GET /orders/{id}: the order as stored. */
static json_t *get_order(const char *order_id)
{
	char path[128];
	struct resp r;
	json_t *j;
	int rc;

	snprintf(path, sizeof(path), "/orders/%s", order_id);
	rc = get(path, &r);
	ck_assert_msg(rc == ANS_OK && r.status == 200, "GET %s: %s %d", path, rc_name(rc),
		      r.status);
	j = json_loadb(r.body, r.body_len, 0, NULL);
	ck_assert_ptr_nonnull(j);
	resp_free(&r);
	return j;
}

/* A body: tmpl with its "%s" replaced by text (raw bytes, no escaping). */
static char *body_with(const char *tmpl, const char *text)
{
	const char *at = strstr(tmpl, "%s");
	size_t head, tl = strlen(text);
	char *b;

	ck_assert_ptr_nonnull(at);
	head = (size_t)(at - tmpl);
	b = malloc(strlen(tmpl) - 2 + tl + 1);
	ck_assert_ptr_nonnull(b);
	memcpy(b, tmpl, head);
	memcpy(b + head, text, tl);
	strcpy(b + head + tl, at + 2);
	return b;
}

/* ------------------------------------------------------------------------ */
/* Bodies that are not JSON */

START_TEST(malformed_json_is_400)
{
	static const char *const bodies[] = {
		"",
		" \r\n\t",
		"{",
		"}",
		"nope",
		"{\"customerId\":",
		"{'customerId':'c-1'}",
		"{\"customerId\" \"c-1\"}",
		"{\"customerId\":\"c-1\",}",
		"{customerId:\"c-1\"}",
		"[1,2,",
		"{\"a\":1,\"a\":2}",
		"null",
		"[]",
		"\"an order\"",
		"42",
		"{\"customerId\":\"c-1\"}}",
		VALID "xyz",
		VALID VALID,
		"\xef\xbb\xbf" VALID, /* a byte order mark */
		"{\"customerId\":\"c-1\n\"}", /* a raw newline inside a string */
		"{\"customerId\":\"\\x41\"}", /* not a JSON escape */
		"{\"customerId\":\"c-1\",\"customerEmail\":\"ada@example.com\",\"paymentToken\":"
		"\"tok_visa\",\"items\":[{\"sku\":\"mug-classic\",\"quantity\":2}",
		VALID_HEAD
		"\"items\":[{\"sku\":\"mug-classic\",\"quantity\":2}],\"customerId\":\"x\"}",
	};
	char what[256], label[160];

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct resp r;
		int rc = post_orders(bodies[i], &r);

		snprintf(what, sizeof(what), "malformed JSON %s",
			 printable(bodies[i], strlen(bodies[i]), label, sizeof(label)));
		expect_problem(what, rc, &r, 400, PROBLEM("malformed-request"));
	}
	daemon_ok("malformed JSON");
}
END_TEST

START_TEST(truncated_json_is_400)
{
	const char *body = VALID;
	size_t len = strlen(body);
	char what[128], order_id[40];
	struct conn c;
	struct resp r;
	int rc;

	/* Every proper prefix of a valid order, sent with its own length. */
	for (size_t n = 0; n < len; n++) {
		rc = post_order(body, n, NULL, &r);
		snprintf(what, sizeof(what), "valid body truncated to %zu of %zu bytes", n, len);
		if (n % 16 == 0 || n == len - 1)
			note(what, rc, &r);
		json_decref(check_problem(what, rc, &r, 400, PROBLEM("malformed-request")));
		resp_free(&r);
	}
	rc = post_orders(body, &r);
	expect_created("the same body whole", rc, &r, order_id);

	/* A Content-Length shorter than what follows: the server reads that
	 * much, answers, and closes (Connection: close). */
	{
		char raw[512];

		snprintf(
			raw, sizeof(raw),
			"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
			"Content-Length: 40\r\nConnection: close\r\n\r\n%s",
			body);
		rc = exchanges(raw, &r);
		expect_problem("Content-Length 40 with a 117-byte body following", rc, &r, 400,
			       PROBLEM("malformed-request"));
	}

	/* A Content-Length longer than what is sent, then the client stops
	 * sending: the server waits for the rest (no answer before it) and
	 * must not take the half for a whole. */
	ck_assert_int_eq(conn_open(&c), 0);
	conn_sends(&c, "POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		       "Content-Length: 500\r\n\r\n");
	conn_sends(&c, body);
	shutdown(c.fd, SHUT_WR);
	rc = conn_read(&c, &r, 3000, false);
	note("Content-Length 500 with 117 bytes sent, then the client half-closes", rc, &r);
	ck_assert_msg(rc != ANS_OK || r.status == 400, "half a body answered %d", r.status);
	resp_free(&r);
	conn_close(&c);
	daemon_ok("truncated JSON");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Bytes that are not text */

START_TEST(invalid_utf8_is_400)
{
	static const char *const bad[] = {
		"\xff",
		"\xfe\xff",
		"\x80",
		"\xc0\xaf",
		"\xe0\x80\xaf",
		"\xed\xa0\x80",
		"\xf4\x90\x80\x80",
		"\xf8\x88\x80\x80\x80",
		"a\xe2\x82",
		"\xc3",
		"\\ud800",
		"\\udc00x",
		"\\ud800\\u0041",
	};
	static const char *const places[] = {
		"{\"customerId\":\"c-%s\",\"customerEmail\":\"ada@example.com\",\"paymentToken\":"
		"\"tok_visa\",\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}]}",
		"{\"customerId\":\"c-1\",\"customerEmail\":\"a%s@example.com\",\"paymentToken\":"
		"\"tok_visa\",\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}]}",
		"{\"customerId\":\"c-1\",\"customerEmail\":\"ada@example.com\",\"paymentToken\":"
		"\"tok_visa%s\",\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}]}",
		VALID_HEAD "\"items\":[{\"sku\":\"mug-classic%s\",\"quantity\":1}]}",
		VALID_HEAD "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1,\"x%s\":1}]}",
	};
	static const char *const field[] = {"customerId", "customerEmail", "paymentToken", "sku",
					    "an object key"};
	char what[256], label[64];
	struct resp r;
	int rc;

	for (size_t p = 0; p < sizeof(places) / sizeof(places[0]); p++) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char *body = body_with(places[p], bad[i]);

			rc = post_orders(body, &r);
			snprintf(what, sizeof(what), "invalid UTF-8 %s in %s",
				 printable(bad[i], strlen(bad[i]), label, sizeof(label)), field[p]);
			expect_problem(what, rc, &r, 400, PROBLEM("malformed-request"));
			free(body);
		}
	}

	/* Outside the body. */
	rc = post_order(VALID, strlen(VALID), "Idempotency-Key: key-\xff\xfe\r\n", &r);
	expect_problem("invalid UTF-8 in Idempotency-Key", rc, &r, 400,
		       PROBLEM("invalid-idempotency-key"));
	rc = get("/orders/%ff%fe%fd", &r);
	expect_problem("invalid UTF-8 (percent-encoded) as path id", rc, &r, 400,
		       PROBLEM("invalid-order-id"));
	rc = get("/orders/\xff\xfe", &r);
	expect_problem("invalid UTF-8 (raw bytes) as path id", rc, &r, 400,
		       PROBLEM("invalid-order-id"));
	rc = post("/orders/%ff%fe/cancel", NULL, NULL, "", 0, &r);
	expect_problem("invalid UTF-8 as cancel path id", rc, &r, 400, PROBLEM("invalid-order-id"));
	rc = get("/orders?status=%ff", &r);
	expect_problem("invalid UTF-8 as ?status=", rc, &r, 400, PROBLEM("invalid-query"));
	rc = get("/orders?limit=%ff", &r);
	expect_problem("invalid UTF-8 as ?limit=", rc, &r, 400, PROBLEM("invalid-query"));

	/* A customerId that is not UTF-8 cannot match any order (every stored
	 * one is UTF-8): an empty list, or a 400; the database refusing the
	 * bytes is no reason for a 5xx. */
	rc = get("/orders?customerId=%ff%fe", &r);
	note("invalid UTF-8 as ?customerId=", rc, &r);
	ck_assert_msg(rc == ANS_OK && (r.status == 200 || r.status == 400),
		      "GET /orders?customerId=%%ff%%fe: %s %d: %s", rc_name(rc), r.status,
		      r.body ? r.body : "");
	if (r.status == 200)
		ck_assert_str_eq(r.body, "{\"orders\":[]}");
	else
		json_decref(check_problem("?customerId=%ff%fe", rc, &r, 400, NULL));
	resp_free(&r);
	daemon_ok("invalid UTF-8");
}
END_TEST

START_TEST(nul_bytes_are_400)
{
	static const char *const places[] = {
		"{\"customerId\":\"c-%s1\",\"customerEmail\":\"ada@example.com\",\"paymentToken\":"
		"\"tok_visa\",\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}]}",
		"{\"customerId\":\"c-1\",\"customerEmail\":\"ada%s@example.com\",\"paymentToken\":"
		"\"tok_visa\",\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}]}",
		"{\"customerId\":\"c-1\",\"customerEmail\":\"ada@example.com\",\"paymentToken\":"
		"\"tok_visa%s\",\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1}]}",
		VALID_HEAD "\"items\":[{\"sku\":\"mug-classic%s\",\"quantity\":1}]}",
		VALID_HEAD "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":1,\"x%s\":1}]}",
	};
	static const char *const field[] = {"customerId", "customerEmail", "paymentToken", "sku",
					    "an object key"};
	char what[256], order_id[40];
	struct resp r;
	int rc;

	for (size_t p = 0; p < sizeof(places) / sizeof(places[0]); p++) {
		/* As a JSON escape. */
		char *body = body_with(places[p], "\\u0000");

		rc = post_orders(body, &r);
		snprintf(what, sizeof(what), "\\u0000 in %s", field[p]);
		expect_problem(what, rc, &r, 400, PROBLEM("malformed-request"));
		free(body);

		/* As a raw byte: the body's length is given, so it travels. */
		body = body_with(places[p], "\x01");
		{
			size_t len = strlen(body);

			*strchr(body, '\x01') = '\0';
			rc = post_order(body, len, NULL, &r);
		}
		snprintf(what, sizeof(what), "raw NUL byte in %s", field[p]);
		expect_problem(what, rc, &r, 400, PROBLEM("malformed-request"));
		free(body);
	}
	{
		static const char between[] = "{\"customerId\":\0\"c-1\"}";
		static const char after[] = VALID "\0";
		static const char only[] = "\0\0\0\0";

		rc = post_order(between, sizeof(between) - 1, NULL, &r);
		expect_problem("raw NUL byte between tokens", rc, &r, 400,
			       PROBLEM("malformed-request"));
		rc = post_order(after, sizeof(after) - 1, NULL, &r);
		expect_problem("raw NUL byte after a valid body", rc, &r, 400,
			       PROBLEM("malformed-request"));
		rc = post_order(only, sizeof(only) - 1, NULL, &r);
		expect_problem("a body of four NUL bytes", rc, &r, 400,
			       PROBLEM("malformed-request"));
	}

	/* In the path: libmicrohttpd decodes %00, and the id is cut there. */
	rc = get("/orders/%00", &r);
	note("%00 as path id", rc, &r);
	json_decref(check_problem("%00 as path id", rc, &r, r.status == 404 ? 404 : 400, NULL));
	resp_free(&r);
	/* The path is a C string: "UUID%00x" reaches the handler as "UUID",
	 * so an unknown id's 404 is as good as the 400 of a malformed one. */
	rc = get("/orders/00000000-0000-4000-8000-000000000000%00x", &r);
	note("UUID%00x as path id", rc, &r);
	json_decref(check_problem("UUID%00x as path id", rc, &r, r.status == 404 ? 404 : 400,
				  r.status == 404 ? PROBLEM("order-not-found")
						  : PROBLEM("invalid-order-id")));
	if (r.status == 404)
		printf("abuse:   NOTE: the id is cut at the NUL and looked up as a UUID\n");
	resp_free(&r);
	rc = get("/orders?customerId=%00&limit=1", &r);
	note("%00 as ?customerId=", rc, &r);
	ck_assert_msg(rc == ANS_OK && r.status == 200, "?customerId=%%00: %d", r.status);
	resp_free(&r);

	/* A NUL byte in a header: refused by the HTTP parser, or the value
	 * ends there ("k" is a valid key). Either way no 5xx. */
	{
		static const char raw[] =
			"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
			"Idempotency-Key: k\0ey\r\nContent-Length: 117\r\nConnection: "
			"close\r\n\r\n" VALID;

		rc = exchange(raw, sizeof(raw) - 1, &r, ANSWER_MS);
		note("raw NUL byte inside the Idempotency-Key header", rc, &r);
		ck_assert_msg(rc != ANS_OK || r.status == 202 || r.status == 400,
			      "NUL in a header: %d %s", r.status, r.body);
		if (rc == ANS_OK && r.status == 202) {
			char *id = strstr(r.body, "\"orderId\":\"");

			ck_assert_ptr_nonnull(id);
			snprintf(order_id, 37, "%s", id + strlen("\"orderId\":\""));
		}
		resp_free(&r);
	}
	daemon_ok("NUL bytes");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Structures and numbers past any sense */

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = malloc(hl + ul * n + tl + 1);
	char *p = s;

	ck_assert_ptr_nonnull(s);
	memcpy(p, head, hl);
	p += hl;
	for (size_t i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, tail, tl + 1);
	return s;
}

START_TEST(deep_nesting_is_400_or_413)
{
	struct {
		const char *what;
		char *body;
		int status;
		const char *type;
	} cases[] = {
		{"60000 '[' (under the body limit)", repeat("", "[", 60000, ""), 400,
		 PROBLEM("malformed-request")},
		{"60000 '[' closed again", NULL, 400, PROBLEM("malformed-request")},
		{"10000 nested {\"a\": objects", repeat("", "{\"a\":", 10000, "1"), 400,
		 PROBLEM("malformed-request")},
		{"items nested 30000 arrays deep", repeat(VALID_HEAD "\"items\":", "[", 30000, ""),
		 400, PROBLEM("malformed-request")},
		{"items[0] nested 2000 arrays deep, well-formed", NULL, 400,
		 PROBLEM("malformed-request")},
		{"100000 '[' (over the body limit)", repeat("", "[", 100000, ""), 413,
		 "about:blank"},
	};
	char *open = repeat("", "[", 30000, "");
	char *closed = repeat(open, "]", 30000, "");
	char *inner_open = repeat(VALID_HEAD "\"items\":[", "[", 2000, "");
	char *inner = repeat(inner_open, "]", 2000, "]}");

	cases[1].body = closed;
	cases[4].body = inner;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct resp r;
		int rc = post_orders(cases[i].body, &r);

		note(cases[i].what, rc, &r);
		json_t *p = check_problem(cases[i].what, rc, &r, cases[i].status, cases[i].type);

		if (i == 4)
			ck_assert_msg(has_pointer(p, "/items/0"), "%s: %s", cases[i].what, r.body);
		json_decref(p);
		resp_free(&r);
		free(cases[i].body);
		daemon_ok(cases[i].what);
	}
	free(open);
	free(inner_open);
}
END_TEST

START_TEST(huge_numbers_are_400_or_422)
{
	static const struct {
		const char *quantity;
		int status;
	} cases[] = {
		{"1e400", 400},
		{"-1e400", 400},
		{"1e-400", 400},
		{"99999999999999999999999", 400},
		{"-99999999999999999999999", 400},
		{"9223372036854775808", 400},
		{"9223372036854775807", 422},
		{"-9223372036854775808", 422},
		{"4294967297", 422}, /* 2^32 + 1: would be 1 as an int */
		{"2147483649", 422},
		{"0", 422},
		{"-1", 422},
		{"101", 422},
		{"1.0", 400},
		{"1e2", 400},
		{"0x10", 400},
		{"NaN", 400},
		{"Infinity", 400},
		{"01", 400},
		{"100", 202},
	};
	char what[128], order_id[40];
	struct resp r;
	int rc;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *body = body_with(VALID_HEAD
				       "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":%s}]}",
				       cases[i].quantity);

		rc = post_orders(body, &r);
		snprintf(what, sizeof(what), "quantity %s", cases[i].quantity);
		if (cases[i].status == 202) {
			json_t *o;

			expect_created(what, rc, &r, order_id);
			o = get_order(order_id);
			ck_assert_int_eq(json_integer_value(json_object_get(o, "totalCents")),
					 100 * 1299);
			json_decref(o);
		} else {
			json_t *p;

			note(what, rc, &r);
			p = check_problem(what, rc, &r, cases[i].status,
					  cases[i].status == 400 ? PROBLEM("malformed-request")
								 : PROBLEM("invalid-order"));
			if (cases[i].status == 422)
				ck_assert_msg(has_pointer(p, "/items/0/quantity"), "%s: %s", what,
					      r.body);
			json_decref(p);
			resp_free(&r);
		}
		free(body);
	}
	{
		char *digits = repeat("", "9", 5000, "");
		char *body = body_with(VALID_HEAD
				       "\"items\":[{\"sku\":\"mug-classic\",\"quantity\":%s}]}",
				       digits);

		rc = post_orders(body, &r);
		expect_problem("quantity of 5000 nines", rc, &r, 400, PROBLEM("malformed-request"));
		free(body);
		free(digits);
	}
	rc = post_orders("{\"customerId\":1e400,\"customerEmail\":\"ada@example.com\","
			 "\"paymentToken\":\"tok_visa\",\"items\":[{\"sku\":\"mug-classic\","
			 "\"quantity\":1}]}",
			 &r);
	expect_problem("customerId 1e400", rc, &r, 400, PROBLEM("malformed-request"));
	rc = post_orders("{\"customerId\":123456789012345678901234567890,\"customerEmail\":"
			 "\"ada@example.com\",\"paymentToken\":\"tok_visa\",\"items\":[{\"sku\":"
			 "\"mug-classic\",\"quantity\":1}]}",
			 &r);
	expect_problem("customerId 123456789012345678901234567890", rc, &r, 400,
		       PROBLEM("malformed-request"));
	daemon_ok("huge numbers");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Bodies too big */

START_TEST(content_length_over_limit_is_413_at_once)
{
	static const char *const lengths[] = {"65537", "70000", "1073741824",
					      "18446744073709551615", "99999999999999999999999"};
	char raw[512], what[160], order_id[40];
	struct conn c;
	struct resp r;
	long long t0;
	int rc;

	for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		for (int expect100 = 0; expect100 < 2; expect100++) {
			json_t *p;

			/* Headers only: the answer must come before any body. */
			snprintf(raw, sizeof(raw),
				 "POST /orders HTTP/1.1\r\nHost: abuse\r\n"
				 "Content-Type: application/json\r\nContent-Length: %s\r\n%s\r\n",
				 lengths[i], expect100 ? "Expect: 100-continue\r\n" : "");
			ck_assert_int_eq(conn_open(&c), 0);
			conn_sends(&c, raw);
			t0 = shop_now_ms();
			rc = conn_read(&c, &r, 5000, false);
			snprintf(what, sizeof(what),
				 "Content-Length: %s%s, headers only (answer in %lld ms)",
				 lengths[i], expect100 ? " with Expect: 100-continue" : "",
				 shop_now_ms() - t0);
			note(what, rc, &r);
			/* libmicrohttpd itself refuses a length it cannot hold,
			 * with its own (empty, untyped) answer. */
			if (rc == ANS_OK && (r.status == 400 || r.status == 413) &&
			    strlen(lengths[i]) >= 20 &&
			    !header_get(&r, "Content-Type", what, sizeof(what))) {
				printf("abuse:   NOTE: this %d comes from libmicrohttpd's parser, "
				       "not a problem\n",
				       r.status);
				resp_free(&r);
				conn_close(&c);
				continue;
			}
			p = check_problem(what, rc, &r, 413, "about:blank");
			ck_assert_msg(strstr(json_string_value(json_object_get(p, "detail")),
					     "65536") != NULL,
				      "%s: %s", what, r.body);
			json_decref(p);
			resp_free(&r);
			/* And the connection is closed after it. */
			ck_assert_msg(conn_wait_closed(&c, 5000), "%s: connection left open", what);
			conn_close(&c);
		}
	}

	/* The whole oversized body sent anyway, in one go. */
	{
		size_t len = LIMIT + 1;
		char *body = repeat("", " ", len, "");

		rc = post_order(body, len, NULL, &r);
		note("65537-byte body sent whole with its Content-Length", rc, &r);
		ck_assert_msg(rc == ANS_CLOSED || (rc == ANS_OK && r.status == 413), "%s %d",
			      rc_name(rc), r.status);
		if (rc == ANS_OK)
			json_decref(check_problem("65537-byte body", rc, &r, 413, NULL));
		resp_free(&r);
		free(body);
	}

	/* Exactly at the limit is accepted: a valid order padded with spaces. */
	{
		char *body = malloc(LIMIT);

		ck_assert_ptr_nonnull(body);
		memset(body, ' ', LIMIT);
		memcpy(body, VALID, strlen(VALID));
		rc = post_order(body, LIMIT, NULL, &r);
		expect_created("valid order padded to exactly 65536 bytes", rc, &r, order_id);
		free(body);
	}
	daemon_ok("Content-Length over the limit");
}
END_TEST

/* Sends a chunked POST /orders of total bytes (a valid order, then spaces)
 * in chunks of chunk bytes, then the last chunk. Returns 0, or -1 when the
 * server stopped taking data; *sent the body bytes sent. */
static int send_chunked(struct conn *c, size_t total, size_t chunk, size_t *sent)
{
	char *data = malloc(chunk);
	char line[32];
	int rc = 0;

	ck_assert_ptr_nonnull(data);
	memset(data, ' ', chunk);
	*sent = 0;
	if (conn_sends(c,
		       "POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		       "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")) {
		free(data);
		return -1;
	}
	while (*sent < total) {
		size_t n = total - *sent < chunk ? total - *sent : chunk;
		const char *p = data;

		/* The order itself goes first, in the first chunks. */
		if (*sent < strlen(VALID)) {
			n = n < strlen(VALID) - *sent ? n : strlen(VALID) - *sent;
			p = VALID + *sent;
		}
		snprintf(line, sizeof(line), "%zx\r\n", n);
		if (conn_sends(c, line) || conn_send(c, p, n) || conn_sends(c, "\r\n")) {
			rc = -1;
			break;
		}
		*sent += n;
	}
	if (!rc && conn_sends(c, "0\r\n\r\n"))
		rc = -1;
	free(data);
	return rc;
}

START_TEST(chunked_bodies)
{
	char what[160], order_id[40];
	struct conn c;
	struct resp r;
	size_t sent;
	int rc;

	/* A valid order in 10-byte chunks is a valid order. */
	ck_assert_int_eq(conn_open(&c), 0);
	ck_assert_int_eq(send_chunked(&c, strlen(VALID), 10, &sent), 0);
	rc = conn_read(&c, &r, ANSWER_MS, false);
	expect_created("valid order in 10-byte chunks", rc, &r, order_id);
	conn_close(&c);

	/* Over the limit, but not far: read to the end, then 413. */
	static const size_t totals[] = {LIMIT + 1, 3 * LIMIT, 900 * 1024};
	for (size_t i = 0; i < sizeof(totals) / sizeof(totals[0]); i++) {
		ck_assert_int_eq(conn_open(&c), 0);
		rc = send_chunked(&c, totals[i], 7000, &sent);
		ck_assert_msg(rc == 0, "chunked %zu bytes: cut after %zu", totals[i], sent);
		rc = conn_read(&c, &r, ANSWER_MS, false);
		snprintf(what, sizeof(what), "chunked body of %zu bytes", totals[i]);
		expect_problem(what, rc, &r, 413, "about:blank");
		conn_close(&c);
		daemon_ok(what);
	}

	/* Far over: cut off (a 413 may come first), never read to the end. */
	ck_assert_int_eq(conn_open(&c), 0);
	rc = send_chunked(&c, (size_t)64 << 20, 16384, &sent);
	snprintf(what, sizeof(what), "chunked body of 64 MiB (server stopped reading after %zu)",
		 sent);
	ck_assert_msg(rc == -1 && sent < ((size_t)8 << 20),
		      "the server read %zu bytes of an endless body", sent);
	rc = conn_read(&c, &r, 3000, false);
	note(what, rc, &r);
	ck_assert_msg(rc != ANS_OK || r.status == 413, "%s: %d", what, r.status);
	resp_free(&r);
	conn_close(&c);
	daemon_ok("chunked body far over the limit");

	/* Broken chunk framing. */
	{
		static const char *const raws[] = {
			"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
			"Transfer-Encoding: chunked\r\nConnection: "
			"close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
			"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
			"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
			"ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
			"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
			"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
			"7fffffffffffffff\r\n{}\r\n0\r\n\r\n",
			"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
			"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
			"-1\r\n{}\r\n0\r\n\r\n",
		};
		for (size_t i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
			struct conn k;
			char label[200];

			ck_assert_int_eq(conn_open(&k), 0);
			conn_sends(&k, raws[i]);
			shutdown(k.fd, SHUT_WR);
			rc = conn_read(&k, &r, 5000, false);
			snprintf(what, sizeof(what), "broken chunk framing %s",
				 printable(strstr(raws[i], "\r\n\r\n") + 4,
					   strnlen(strstr(raws[i], "\r\n\r\n") + 4, 24), label,
					   sizeof(label)));
			note(what, rc, &r);
			ck_assert_msg(rc != ANS_OK || (r.status >= 400 && r.status < 500), "%s: %d",
				      what, r.status);
			resp_free(&r);
			conn_close(&k);
			daemon_ok(what);
		}
	}
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Slow and many clients */

struct slow {
	long long closed_after_ms; /* since its last byte; -1: still open */
	bool send_failed;
	atomic_bool stop;
	int sent;
};

/* Sends the start of a request, then nothing: the next byte would come
 * later than the connection timeout. */
static void *stalled_client(void *arg)
{
	struct slow *s = arg;
	static const char part[] = "GET /livez HTTP/1.1\r\nHost: ab";
	struct conn c;
	long long last;

	s->closed_after_ms = -1;
	if (conn_open(&c))
		return NULL;
	for (size_t i = 0; i < sizeof(part) - 1; i++) {
		conn_send(&c, part + i, 1);
		s->sent++;
		sleep_ms(20);
	}
	last = shop_now_ms();
	if (conn_wait_closed(&c, (CONN_TIMEOUT_S + 30) * 1000))
		s->closed_after_ms = shop_now_ms() - last;
	/* The next byte, now far too late. */
	s->send_failed = conn_send(&c, "u", 1) != 0 || conn_wait_closed(&c, 100);
	conn_close(&c);
	return NULL;
}

/* Sends a header one byte every 2 s (within the idle timeout), for ever. */
static void *trickling_client(void *arg)
{
	struct slow *s = arg;
	struct conn c;
	long long start = shop_now_ms();
	static const char head[] = "GET /livez HTTP/1.1\r\nHost: abuse\r\nX-Slow: ";

	s->closed_after_ms = -1;
	if (conn_open(&c))
		return NULL;
	conn_sends(&c, head);
	while (!atomic_load(&s->stop)) {
		struct pollfd pfd = {.fd = c.fd, .events = POLLIN};

		if (conn_send(&c, "a", 1) ||
		    (poll(&pfd, 1, 2000) == 1 && recv(c.fd, (char[64]){0}, 64, 0) <= 0)) {
			s->closed_after_ms = shop_now_ms() - start;
			break;
		}
		s->sent++;
	}
	conn_close(&c);
	return NULL;
}

START_TEST(slow_clients_are_cut_off_and_others_served)
{
	struct slow stalled = {0}, trickle = {0};
	pthread_t t1, t2;
	long long start = shop_now_ms(), worst = 0;
	int served = 0, orders = 0;
	char what[200];

	ck_assert_int_eq(pthread_create(&t1, NULL, stalled_client, &stalled), 0);
	ck_assert_int_eq(pthread_create(&t2, NULL, trickling_client, &trickle), 0);
	/* Meanwhile everyone else is served as usual. */
	while (shop_now_ms() - start < (CONN_TIMEOUT_S + 8) * 1000) {
		struct resp r;
		long long t0 = shop_now_ms();
		int rc = get("/livez", &r);

		ck_assert_msg(rc == ANS_OK && r.status == 200,
			      "GET /livez while slow clients hang on: %s %d", rc_name(rc),
			      r.status);
		resp_free(&r);
		if (shop_now_ms() - t0 > worst)
			worst = shop_now_ms() - t0;
		served++;
		if (served % 10 == 0) {
			rc = post_orders(VALID, &r);
			ck_assert_msg(rc == ANS_OK && r.status == 202, "POST /orders meanwhile: %d",
				      r.status);
			resp_free(&r);
			orders++;
		}
		sleep_ms(500);
	}
	atomic_store(&trickle.stop, true);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	snprintf(what, sizeof(what),
		 "meanwhile: %d GET /livez all 200 (slowest %lld ms), %d POST /orders all 202",
		 served, worst, orders);
	printf("abuse: %s\n", what);
	snprintf(what, sizeof(what),
		 "client stalling after %d header bytes (next byte later than the %d s timeout)",
		 stalled.sent, CONN_TIMEOUT_S);
	if (stalled.closed_after_ms >= 0)
		printf("abuse: %s -> closed by the server %lld ms after its last byte\n", what,
		       stalled.closed_after_ms);
	else
		printf("abuse: %s -> still open after %d s\n", what, CONN_TIMEOUT_S + 30);
	ck_assert_msg(stalled.closed_after_ms >= (CONN_TIMEOUT_S - 2) * 1000 &&
			      stalled.closed_after_ms <= (CONN_TIMEOUT_S + 15) * 1000,
		      "stalled client: closed after %lld ms, want about %d s",
		      stalled.closed_after_ms, CONN_TIMEOUT_S);
	ck_assert_msg(stalled.send_failed, "stalled client: the late byte was taken");
	/* Not a requirement: libmicrohttpd's timeout is an idle timeout. */
	if (trickle.closed_after_ms >= 0)
		printf("abuse: client trickling a header byte every 2 s -> closed by the server "
		       "after %lld ms (%d bytes)\n",
		       trickle.closed_after_ms, trickle.sent);
	else
		printf("abuse: client trickling a header byte every 2 s -> still connected after "
		       "%d bytes / %lld ms (the idle timeout never fires; not a failure)\n",
		       trickle.sent, shop_now_ms() - start);
	daemon_ok("slow clients");
}
END_TEST

/* Opens n connections; with_partial sends half a request on every other. */
static int *open_many(int n, bool with_partial, int *opened)
{
	int *fds = malloc(sizeof(int) * (size_t)n);

	ck_assert_ptr_nonnull(fds);
	*opened = 0;
	for (int i = 0; i < n; i++) {
		struct conn c;

		fds[i] = -1;
		if (conn_open(&c))
			continue;
		if (with_partial && i % 2)
			conn_sends(&c, "POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Le");
		fds[i] = c.fd;
		(*opened)++;
	}
	return fds;
}

static void close_many(int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
	}
	free(fds);
}

START_TEST(many_connections_at_once)
{
	char what[200], order_id[40];
	struct resp r;
	int opened, rc, *fds;
	int ok = 0, refused = 0;

	/* 500 idle connections (half of them with half a request). */
	fds = open_many(500, true, &opened);
	ck_assert_int_eq(opened, 500);
	sleep_ms(500);
	for (int attempt = 0; attempt < 20; attempt++) {
		rc = get("/livez", &r);
		if (rc == ANS_OK && r.status == 200) {
			resp_free(&r);
			ok++;
			break;
		}
		resp_free(&r);
		refused++;
		sleep_ms(250);
	}
	snprintf(what, sizeof(what),
		 "500 idle connections open, then GET /livez -> 200 after %d refused attempt(s)",
		 refused);
	printf("abuse: %s\n", what);
	ck_assert_msg(ok, "GET /livez never answered with 500 idle connections open");
	rc = post_orders(VALID, &r);
	expect_created("POST /orders with 500 idle connections open", rc, &r, order_id);
	rc = get("/products", &r);
	note("GET /products with 500 idle connections open", rc, &r);
	ck_assert_msg(rc == ANS_OK && r.status == 200, "GET /products: %d", r.status);
	resp_free(&r);
	close_many(fds, 500);
	daemon_ok("500 idle connections");

	/* Past the connection limit (1024): refused cleanly, then served
	 * again once the crowd has gone. */
	fds = open_many(ES_HTTP_DEFAULT_CONNECTION_LIMIT + 176, false, &opened);
	sleep_ms(1000);
	ok = refused = 0;
	{
		char outcomes[256] = "";
		size_t used = 0;

		for (int attempt = 0; attempt < 5; attempt++) {
			long long t0 = shop_now_ms();

			rc = get("/livez", &r);
			if (rc == ANS_OK && r.status == 200)
				ok++;
			else
				refused++;
			used += (size_t)snprintf(outcomes + used, sizeof(outcomes) - used,
						 "%s%s in %lld ms", attempt ? "; " : "",
						 rc == ANS_OK ? "200" : rc_name(rc),
						 shop_now_ms() - t0);
			resp_free(&r);
		}
		printf("abuse: %d connections opened (limit %d), then 5 x GET /livez -> %d "
		       "answered 200, %d not (%s)\n",
		       opened, ES_HTTP_DEFAULT_CONNECTION_LIMIT, ok, refused, outcomes);
	}
	close_many(fds, ES_HTTP_DEFAULT_CONNECTION_LIMIT + 176);
	daemon_ok("connections over the limit");
}
END_TEST

START_TEST(partial_requests_are_dropped)
{
	static const char *const partial[] = {
		"G",
		"GET /livez HTT",
		"GET /livez HTTP/1.1\r\nHost: abuse\r\n",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Content-Length: 117\r\n\r\n{\"customerId\":\"c-",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Transfer-Encoding: chunked\r\n\r\n75\r\n{\"custo",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Transfer-Encoding: chunked\r\n\r\n10\r\n{\"customerId\":\"\r\n",
	};
	char what[200], label[160];

	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
		for (int how = 0; how < 3; how++) {
			struct conn c;
			struct resp r;
			int rc = ANS_CLOSED;

			ck_assert_int_eq(conn_open(&c), 0);
			conn_sends(&c, partial[i]);
			snprintf(what, sizeof(what), "partial request %s, then %s",
				 printable(partial[i], strlen(partial[i]), label, sizeof(label)),
				 how == 0   ? "close"
				 : how == 1 ? "reset"
					    : "half-close");
			if (how == 0) {
				conn_close(&c);
			} else if (how == 1) {
				conn_reset(&c);
			} else {
				shutdown(c.fd, SHUT_WR);
				rc = conn_read(&c, &r, 2000, false);
				ck_assert_msg(rc != ANS_OK || (r.status >= 400 && r.status < 500),
					      "%s: %d", what, r.status);
				resp_free(&r);
				conn_close(&c);
			}
			if (how == 2)
				printf("abuse: %s -> %s%s\n", what, rc_name(rc),
				       rc == ANS_TIMEOUT ? " (waits for the rest)" : "");
			daemon_ok(what);
		}
	}
	printf("abuse: partial requests closed or reset mid-way -> daemon alive, /livez 200\n");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* SQL in every string a client controls */

/* customerId values: SQL, quotes, escapes, format strings, Unicode. */
static const char *const sql_texts[] = {
	"'; DROP TABLE orders; --",
	"Robert'); DROP TABLE order_items;--",
	"' OR '1'='1",
	"\" OR \"\"=\"",
	"1; SELECT pg_sleep(10); --",
	"'||(SELECT pg_sleep(10))||'",
	"$1 $2 $$ $tag$x$tag$",
	"\\'; \\\\ \\x27 \\0",
	"%s%n%x%p%%_",
	"E'\\x27' /* comment */ -- tail",
	"c\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x9b\x92 \xe2\x80\xa8",
	"`backticks`; [brackets]; {braces}",
	"\t\b\f\x01\x1f",
};

static char *order_json(const char *cid, const char *email, const char *token, const char *sku)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:[{s:s,s:i}]}", "customerId", cid, "customerEmail",
			      email, "paymentToken", token, "items", "sku", sku, "quantity", 1);
	char *s;

	ck_assert_ptr_nonnull(o);
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* Percent-encodes every byte but unreserved ones. */
static void url_encode(const char *s, char *out, size_t size)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && o + 4 < size; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p))
			out[o++] = (char)*p;
		else
			o += (size_t)snprintf(out + o, size - o, "%%%02X", *p);
	}
	out[o] = '\0';
}

START_TEST(sql_metacharacters_are_refused_or_stored_verbatim)
{
	char what[1200], label[160], order_id[40], path[1024], enc[900];
	char first_id[40] = "";
	struct resp r;
	long long t0;
	int rc;

	/* customerId takes any text: 202, stored and found verbatim. */
	for (size_t i = 0; i < sizeof(sql_texts) / sizeof(sql_texts[0]); i++) {
		char *body = order_json(sql_texts[i], "ada@example.com", "tok_visa", "mug-classic");
		json_t *o, *list;

		t0 = shop_now_ms();
		rc = post_orders(body, &r);
		snprintf(what, sizeof(what), "customerId %s",
			 printable(sql_texts[i], strlen(sql_texts[i]), label, sizeof(label)));
		expect_created(what, rc, &r, order_id);
		ck_assert_msg(shop_now_ms() - t0 < 5000, "%s: took %lld ms", what,
			      shop_now_ms() - t0);
		if (!first_id[0])
			snprintf(first_id, sizeof(first_id), "%s", order_id);
		o = get_order(order_id);
		ck_assert_msg(
			!strcmp(json_string_value(json_object_get(o, "customerId")), sql_texts[i]),
			"%s: stored as %s", what,
			json_string_value(json_object_get(o, "customerId")));
		json_decref(o);
		/* The same text as a query parameter finds that order, only it. */
		url_encode(sql_texts[i], enc, sizeof(enc));
		snprintf(path, sizeof(path), "/orders?customerId=%s&limit=100", enc);
		t0 = shop_now_ms();
		rc = get(path, &r);
		ck_assert_msg(rc == ANS_OK && r.status == 200, "GET %s: %s %d", path, rc_name(rc),
			      r.status);
		ck_assert_msg(shop_now_ms() - t0 < 5000, "GET %s: took %lld ms", path,
			      shop_now_ms() - t0);
		list = json_object_get(o = json_loadb(r.body, r.body_len, 0, NULL), "orders");
		ck_assert_msg(json_array_size(list) == 1 &&
				      !strcmp(json_string_value(json_object_get(
						      json_array_get(list, 0), "orderId")),
					      order_id),
			      "GET %s: %s", path, r.body);
		json_decref(o);
		resp_free(&r);
		free(body);
	}
	printf("abuse: %zu SQL/quote/escape customerIds -> 202 each, GET /orders/{id} and "
	       "?customerId= return them verbatim, only them\n",
	       sizeof(sql_texts) / sizeof(sql_texts[0]));

	/* customerEmail: quotes are legal in an address, the rest is 422. */
	{
		static const char *const ok[] = {"o'brien@example.com", "x'or'1'='1@example.com",
						 "'--@example.com",
						 "a$1$$%_*+=?^`{|}~#&!/@example.com"};
		static const char *const bad[] = {
			"'; DROP TABLE orders; --@example.com",
			"a\"@example.com",
			"a;b@example.com",
			"a@example.com'); DROP TABLE orders;--",
			"a@b.co\r\nBcc: victim@example.com",
			"a\\@example.com",
		};
		for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
			char *body = order_json("c-email", ok[i], "tok_visa", "mug-classic");
			json_t *o;

			rc = post_orders(body, &r);
			snprintf(what, sizeof(what), "customerEmail %s", ok[i]);
			expect_created(what, rc, &r, order_id);
			o = get_order(order_id);
			ck_assert_str_eq(json_string_value(json_object_get(o, "customerEmail")),
					 ok[i]);
			json_decref(o);
			free(body);
		}
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char *body = order_json("c-email", bad[i], "tok_visa", "mug-classic");
			json_t *p;

			rc = post_orders(body, &r);
			snprintf(what, sizeof(what), "customerEmail %s",
				 printable(bad[i], strlen(bad[i]), label, sizeof(label)));
			note(what, rc, &r);
			p = check_problem(what, rc, &r, 422, PROBLEM("invalid-order"));
			ck_assert(has_pointer(p, "/customerEmail"));
			json_decref(p);
			resp_free(&r);
			free(body);
		}
	}

	/* paymentToken and sku: closed vocabularies, so 422. */
	for (size_t i = 0; i < sizeof(sql_texts) / sizeof(sql_texts[0]); i++) {
		char *token, *body;
		json_t *p;

		ck_assert_int_gt(asprintf(&token, "tok_visa%s", sql_texts[i]), 0);
		body = order_json("c-token", "ada@example.com", token, "mug-classic");
		rc = post_orders(body, &r);
		snprintf(what, sizeof(what), "paymentToken %s",
			 printable(token, strlen(token), label, sizeof(label)));
		note(what, rc, &r);
		p = check_problem(what, rc, &r, 422, PROBLEM("invalid-order"));
		ck_assert(has_pointer(p, "/paymentToken"));
		json_decref(p);
		resp_free(&r);
		free(body);
		free(token);

		ck_assert_int_gt(asprintf(&token, "mug-classic%s", sql_texts[i]), 0);
		body = order_json("c-sku", "ada@example.com", "tok_visa", token);
		rc = post_orders(body, &r);
		snprintf(what, sizeof(what), "sku %s",
			 printable(token, strlen(token), label, sizeof(label)));
		note(what, rc, &r);
		p = check_problem(what, rc, &r, 422, PROBLEM("invalid-order"));
		ck_assert(has_pointer(p, "/items/0/sku"));
		json_decref(p);
		resp_free(&r);
		free(body);
		free(token);
	}

	/* Idempotency-Key: visible ASCII is a key like any other. */
	{
		static const char *const keys[] = {
			"';DROP/**/TABLE/**/idempotency_keys;--",
			"'OR'1'='1",
			"%s%n%x\\'\"$1",
		};
		static const char *const bad_keys[] = {
			"'; DROP TABLE idempotency_keys; --", /* spaces */
			"key\x7f",
		};
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			char hdr[400], again_id[40];
			char *body = order_json("c-key", "ada@example.com", "tok_visa",
						"mug-classic");

			snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s\r\n", keys[i]);
			rc = post_order(body, strlen(body), hdr, &r);
			snprintf(what, sizeof(what), "Idempotency-Key %s", keys[i]);
			expect_created(what, rc, &r, order_id);
			rc = post_order(body, strlen(body), hdr, &r);
			snprintf(what, sizeof(what), "Idempotency-Key %s, same body again",
				 keys[i]);
			expect_created(what, rc, &r, again_id);
			ck_assert_str_eq(again_id, order_id);
			free(body);
			body = order_json("c-key-2", "ada@example.com", "tok_visa", "mug-classic");
			rc = post_order(body, strlen(body), hdr, &r);
			snprintf(what, sizeof(what), "Idempotency-Key %s, another body", keys[i]);
			expect_problem(what, rc, &r, 422, PROBLEM("idempotency-key-reused"));
			free(body);
		}
		for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
			char hdr[400];

			snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s\r\n", bad_keys[i]);
			rc = post_order(VALID, strlen(VALID), hdr, &r);
			snprintf(what, sizeof(what), "Idempotency-Key %s",
				 printable(bad_keys[i], strlen(bad_keys[i]), label, sizeof(label)));
			expect_problem(what, rc, &r, 400, PROBLEM("invalid-idempotency-key"));
		}
		{
			char hdr[400];
			char *key = repeat("", "'", 256, "");

			snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s\r\n", key);
			rc = post_order(VALID, strlen(VALID), hdr, &r);
			expect_problem("Idempotency-Key of 256 quotes", rc, &r, 400,
				       PROBLEM("invalid-idempotency-key"));
			free(key);
		}
	}

	/* traceparent is replaced when it is not one; the order goes through. */
	rc = post_order(VALID, strlen(VALID), "traceparent: 00-'; DROP TABLE outbox; --\r\n", &r);
	expect_created("traceparent '; DROP TABLE outbox; --", rc, &r, order_id);

	/* Path ids and query parameters. */
	{
		static const char *const ids[] = {
			"'%20OR%20'1'='1",
			"1';DROP%20TABLE%20orders;--",
			"00000000-0000-4000-8000-000000000000'--",
			"00000000-0000-4000-8000-00000000000'",
			"%27%3B%20DROP%20TABLE%20orders%3B%20--",
			"$1",
		};
		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			snprintf(path, sizeof(path), "/orders/%s", ids[i]);
			rc = get(path, &r);
			snprintf(what, sizeof(what), "GET %s", path);
			expect_problem(what, rc, &r, 400, PROBLEM("invalid-order-id"));
			snprintf(path, sizeof(path), "/orders/%s/cancel", ids[i]);
			rc = post(path, NULL, NULL, "", 0, &r);
			snprintf(what, sizeof(what), "POST %s", path);
			expect_problem(what, rc, &r, 400, PROBLEM("invalid-order-id"));
		}
		rc = get("/orders/00000000-0000-4000-8000-000000000000", &r);
		expect_problem("GET an unknown (valid) order id", rc, &r, 404,
			       PROBLEM("order-not-found"));
		rc = post("/orders/00000000-0000-4000-8000-000000000000/cancel", NULL, NULL, "", 0,
			  &r);
		expect_problem("POST cancel of an unknown (valid) order id", rc, &r, 404,
			       PROBLEM("order-not-found"));
	}
	{
		static const char *const queries[] = {
			"status=PENDING'%20OR%20'1'='1",
			"status=%27%3B%20DROP%20TABLE%20orders%3B--",
			"limit=1;DROP%20TABLE%20orders",
			"limit=1%20OR%201=1",
			"limit=-1",
			"limit=0",
			"limit=101",
			"limit=99999999999999999999999",
			"limit=",
			"limit=1e2",
		};
		for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
			snprintf(path, sizeof(path), "/orders?%s", queries[i]);
			rc = get(path, &r);
			snprintf(what, sizeof(what), "GET %s", path);
			expect_problem(what, rc, &r, 400, PROBLEM("invalid-query"));
		}
		static const char *const empty[] = {
			"customerId=zz'%20OR%20'1'='1",
			"customerId=x'%20OR%201=1%20--",
			"customerId='%20OR%20''='",
			"customerId=%25",
			"customerId=_",
			"customerId=*",
		};
		for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
			snprintf(path, sizeof(path), "/orders?%s", empty[i]);
			rc = get(path, &r);
			snprintf(what, sizeof(what), "GET %s", path);
			note(what, rc, &r);
			ck_assert_msg(rc == ANS_OK && r.status == 200 &&
					      !strcmp(r.body, "{\"orders\":[]}"),
				      "%s: %d %s", what, r.status, r.body);
			resp_free(&r);
		}
	}

	/* Everything is still there. */
	rc = get("/products", &r);
	note("GET /products after all of it", rc, &r);
	ck_assert_msg(rc == ANS_OK && r.status == 200, "GET /products: %d", r.status);
	{
		json_t *p = json_loadb(r.body, r.body_len, 0, NULL);

		ck_assert_int_eq(json_array_size(p), 5);
		json_decref(p);
	}
	resp_free(&r);
	json_decref(get_order(first_id));
	daemon_ok("SQL metacharacters");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Methods, paths, media types */

START_TEST(unknown_methods_and_paths_are_404_or_405)
{
	static const struct {
		const char *raw_start; /* request line */
		int status;
	} cases[] = {
		{"GET /nope HTTP/1.1", 404},
		{"GET / HTTP/1.1", 404},
		{"GET /orders/ HTTP/1.1", 404},
		{"GET //orders HTTP/1.1", 404},
		{"GET /orders/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s HTTP/1.1", 404},
		{"GET /ORDERS HTTP/1.1", 404},
		{"GET /products/../orders HTTP/1.1", 404},
		{"GET * HTTP/1.1", 404},
		{"GET http://abuse/livez HTTP/1.1", 404},
		{"DELETE /orders HTTP/1.1", 405},
		{"PUT /orders HTTP/1.1", 405},
		{"PATCH /orders HTTP/1.1", 405},
		{"DELETE /orders/00000000-0000-4000-8000-000000000000 HTTP/1.1", 405},
		{"GET /orders/00000000-0000-4000-8000-000000000000/cancel HTTP/1.1", 405},
		{"POST /products HTTP/1.1", 405},
		{"POST /livez HTTP/1.1", 405},
		{"PUT /readyz HTTP/1.1", 405},
		{"DELETE /metrics HTTP/1.1", 405},
		{"OPTIONS /orders HTTP/1.1", 405},
		{"TRACE /orders HTTP/1.1", 405},
		{"CONNECT /orders HTTP/1.1", 405},
		{"BREW /orders HTTP/1.1", 405},
		{"get /livez HTTP/1.1", 405},
		{"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX /orders HTTP/1.1",
		 405},
	};
	char raw[512], allow[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct resp r;
		int rc;
		json_t *p;

		snprintf(raw, sizeof(raw),
			 "%s\r\nHost: abuse\r\nContent-Length: 0\r\n"
			 "Connection: close\r\n\r\n",
			 cases[i].raw_start);
		rc = exchanges(raw, &r);
		note(cases[i].raw_start, rc, &r);
		p = check_problem(cases[i].raw_start, rc, &r, cases[i].status, "about:blank");
		if (cases[i].status == 405)
			ck_assert_msg(header_get(&r, "Allow", allow, sizeof(allow)) && allow[0],
				      "%s: 405 without Allow", cases[i].raw_start);
		json_decref(p);
		resp_free(&r);
	}
	daemon_ok("unknown methods and paths");
}
END_TEST

START_TEST(wrong_media_types_are_415)
{
	static const char *const types[] = {
		NULL,
		"text/plain",
		"application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x",
		"application/jsonx",
		"application/json-patch+json",
		"json",
		"",
		"application/problem+json",
		"'; DROP TABLE orders; --",
	};
	char what[200], order_id[40];
	struct resp r;
	int rc;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		rc = post("/orders", types[i], NULL, VALID, strlen(VALID), &r);
		snprintf(what, sizeof(what), "Content-Type %s", types[i] ? types[i] : "(none)");
		expect_problem(what, rc, &r, 415, PROBLEM("unsupported-media-type"));
	}
	rc = post("/orders", "Application/JSON; charset=utf-8", NULL, VALID, strlen(VALID), &r);
	expect_created("Content-Type Application/JSON; charset=utf-8", rc, &r, order_id);
	daemon_ok("media types");
}
END_TEST

/* Bytes that are not HTTP: libmicrohttpd's parser answers (its own
 * bodies, not problems) or closes. The daemon must carry on. */
START_TEST(protocol_garbage_is_refused)
{
	static const char *const raws[] = {
		"\r\n\r\n",
		"NOT-HTTP\r\n\r\n",
		"GET\r\n\r\n",
		"GET /livez\r\n\r\n",
		"GET /livez HTTP/9.9\r\nHost: abuse\r\n\r\n",
		"GET /livez HTTP/1.1\r\n\r\n",
		"GET /livez HTTP/1.1\r\nHost: abuse\r\nNo colon here\r\n\r\n",
		"GET /livez HTTP/1.1\r\nHost: abuse\r\n\x01\x02\xff: \xfe\r\n\r\n",
		"GET /livez HTTP/1.1\r\nHost: abuse\r\n folded: header\r\n\r\n",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Content-Length: -5\r\n\r\n",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Content-Length: 5\r\nContent-Length: 7\r\n\r\n{}",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		"Content-Length: 0x10\r\n\r\n",
	};
	char what[200], label[160];

	for (size_t i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
		struct conn c;
		struct resp r;
		char type[128] = "";
		int rc;

		ck_assert_int_eq(conn_open(&c), 0);
		conn_sends(&c, raws[i]);
		shutdown(c.fd, SHUT_WR);
		rc = conn_read(&c, &r, 5000, false);
		snprintf(what, sizeof(what), "garbage %s",
			 printable(raws[i], strlen(raws[i]), label, sizeof(label)));
		if (rc == ANS_OK)
			header_get(&r, "Content-Type", type, sizeof(type));
		note(what, rc, &r);
		ck_assert_msg(rc != ANS_OK || r.status / 100 == 4 || r.status == 505 ||
				      r.status == 200 || r.status == 415,
			      "%s: %d", what, r.status);
		if (rc == ANS_OK && r.status / 100 == 4 && strcmp(type, "application/problem+json"))
			printf("abuse:   NOTE: this %d comes from libmicrohttpd's parser, "
			       "Content-Type \"%s\", not a problem\n",
			       r.status, type);
		resp_free(&r);
		conn_close(&c);
		daemon_ok(what);
	}

	/* Too big for the parser's buffers: header and URL. */
	{
		char *big_header = repeat("GET /livez HTTP/1.1\r\nHost: abuse\r\nX-Big: ", "a",
					  200000, "\r\nConnection: close\r\n\r\n");
		char *big_url = repeat("GET /orders/", "a", 200000,
				       " HTTP/1.1\r\nHost: abuse\r\nConnection: close\r\n\r\n");
		char *many_headers = repeat("GET /livez HTTP/1.1\r\nHost: abuse\r\n", "X-A: b\r\n",
					    20000, "Connection: close\r\n\r\n");
		char *big_query = repeat("GET /orders?", "customerId=x&", 20000,
					 " HTTP/1.1\r\nHost: abuse\r\nConnection: close\r\n\r\n");
		const struct {
			const char *what;
			char *raw;
		} big[] = {
			{"a 200 KB header", big_header},
			{"a 200 KB URL", big_url},
			{"20000 headers", many_headers},
			{"20000 query parameters", big_query},
		};
		for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
			struct resp r;
			char type[128] = "";
			int rc = exchanges(big[i].raw, &r);

			if (rc == ANS_OK)
				header_get(&r, "Content-Type", type, sizeof(type));
			note(big[i].what, rc, &r);
			ck_assert_msg(rc != ANS_OK || r.status / 100 == 4, "%s: %d", big[i].what,
				      r.status);
			if (rc == ANS_OK && strcmp(type, "application/problem+json"))
				printf("abuse:   NOTE: this %d comes from libmicrohttpd's parser, "
				       "Content-Type \"%s\", not a problem\n",
				       r.status, type);
			resp_free(&r);
			free(big[i].raw);
			daemon_ok(big[i].what);
		}
	}
}
END_TEST

START_TEST(pipelined_requests_are_answered_in_turn)
{
	char raw[2048];
	struct conn c;
	struct resp r;
	int rc;

	/* A bad order, a good one and a 404 on one connection. */
	snprintf(raw, sizeof(raw),
		 "POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		 "Content-Length: 5\r\n\r\n{\"a\":"
		 "POST /orders HTTP/1.1\r\nHost: abuse\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\n\r\n%s"
		 "GET /nope HTTP/1.1\r\nHost: abuse\r\nConnection: close\r\n\r\n",
		 strlen(VALID), VALID);
	ck_assert_int_eq(conn_open(&c), 0);
	ck_assert_int_eq(conn_sends(&c, raw), 0);
	rc = conn_read(&c, &r, ANSWER_MS, false);
	expect_problem("pipelined #1: truncated body", rc, &r, 400, PROBLEM("malformed-request"));
	rc = conn_read(&c, &r, ANSWER_MS, false);
	note("pipelined #2: valid order", rc, &r);
	ck_assert_msg(rc == ANS_OK && r.status == 202, "pipelined #2: %s %d", rc_name(rc),
		      r.status);
	resp_free(&r);
	rc = conn_read(&c, &r, ANSWER_MS, false);
	expect_problem("pipelined #3: GET /nope", rc, &r, 404, "about:blank");
	conn_close(&c);
	daemon_ok("pipelining");
}
END_TEST

/* ------------------------------------------------------------------------ */

/*
 * Should this process die before it stopped the daemon (a failed check in
 * an ASan build aborts, ctest's timeout kills), a watchdog process kills
 * the daemon: it waits on a pipe that only this process writes to, and
 * takes end-of-file without a byte as its cue.
 */
static int watchdog_fd = -1;
static pid_t watchdog_pid;

static void watchdog_start(pid_t daemon)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		return;
	watchdog_pid = fork();
	if (watchdog_pid == 0) {
		char c;
		ssize_t n;

		close(p[1]);
		do
			n = read(p[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			kill(daemon, SIGKILL);
		_exit(0);
	}
	close(p[0]);
	if (watchdog_pid < 0) {
		close(p[1]);
		return;
	}
	watchdog_fd = p[1];
}

static void watchdog_stop(void)
{
	if (watchdog_fd < 0)
		return;
	if (write(watchdog_fd, "x", 1) != 1)
		perror("watchdog");
	close(watchdog_fd);
	waitpid(watchdog_pid, NULL, 0);
	watchdog_fd = -1;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(void)
{
	const char *bootstrap, *database_url;
	Suite *s = suite_create("abuse.http");
	TCase *tc = tcase_create("order-service");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	/* The daemon inherits it: 1200 sockets need more than 1024 fds. */
	raise_fd_limit();
	bootstrap = es_test_kafka_bootstrap();
	database_url = es_test_database_url();
	if (!bootstrap || !database_url)
		return ES_TEST_SKIP;
	if (shop_init(&shop, bootstrap, database_url) || shop_start(&shop, SHOP_ORDER, 0)) {
		shop_release(&shop);
		return 1;
	}
	port = shop.port[SHOP_ORDER][0];
	watchdog_start(shop.pid[SHOP_ORDER][0]);
	printf("abuse: order-service pid %d on 127.0.0.1:%u, schema %s_order, log in %s\n",
	       (int)shop.pid[SHOP_ORDER][0], port, shop.run, shop.dir);
	fflush(stdout);

	/* One daemon for all cases, watched with waitpid: no forking. */
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, malformed_json_is_400);
	tcase_add_test(tc, truncated_json_is_400);
	tcase_add_test(tc, invalid_utf8_is_400);
	tcase_add_test(tc, nul_bytes_are_400);
	tcase_add_test(tc, deep_nesting_is_400_or_413);
	tcase_add_test(tc, huge_numbers_are_400_or_422);
	tcase_add_test(tc, content_length_over_limit_is_413_at_once);
	tcase_add_test(tc, chunked_bodies);
	tcase_add_test(tc, sql_metacharacters_are_refused_or_stored_verbatim);
	tcase_add_test(tc, unknown_methods_and_paths_are_404_or_405);
	tcase_add_test(tc, wrong_media_types_are_415);
	tcase_add_test(tc, protocol_garbage_is_refused);
	tcase_add_test(tc, pipelined_requests_are_answered_in_turn);
	tcase_add_test(tc, partial_requests_are_dropped);
	tcase_add_test(tc, many_connections_at_once);
	tcase_add_test(tc, slow_clients_are_cut_off_and_others_served);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	/* A clean stop: exit 0 on SIGTERM (an ASan build also reports leaks
	 * then). */
	if (!daemon_dead && shop_signal(&shop, SHOP_ORDER, 0, SIGTERM)) {
		fprintf(stderr, "order-service did not stop cleanly\n");
		failed++;
	}
	watchdog_stop();
	shop_release(&shop);
	return failed ? 1 : 0;
}
