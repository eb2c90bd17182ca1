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
 *
 * The cases are in tests/abuse/it_<theme>.c, each file a ctest test of its
 * own (abuse.http.<theme>) with a daemon of its own; this file is what they
 * share (harness.h): the daemon, a raw HTTP client and what the answers
 * must be.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
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

#include "testkafka.h"
#include "testsupport.h"

struct shop shop;
unsigned short port;
static bool daemon_dead;

void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/* ------------------------------------------------------------------------ */
/* A raw HTTP client: nothing is assumed about the server's answers. */

const char *rc_name(int rc)
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

int conn_open(struct conn *c)
{
	return conn_open_from(c, NULL);
}

int conn_open_from(struct conn *c, const char *source)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in from = {.sin_family = AF_INET};
	int one = 1;

	memset(c, 0, sizeof(*c));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return ANS_CONNECT;
	if (source && (inet_pton(AF_INET, source, &from.sin_addr) != 1 ||
		       bind(c->fd, (struct sockaddr *)&from, sizeof(from)))) {
		close(c->fd);
		c->fd = -1;
		return ANS_CONNECT;
	}
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin))) {
		close(c->fd);
		c->fd = -1;
		return ANS_CONNECT;
	}
	/* Small writes leave as separate segments: requests in pieces. */
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	c->len = c->cap = 0;
}

/* Closes with a TCP reset instead of a FIN. */
void conn_reset(struct conn *c)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	conn_close(c);
}

/* 0, or -1 when the server no longer takes data (EPIPE, ECONNRESET). */
int conn_send(struct conn *c, const void *data, size_t len)
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

int conn_sends(struct conn *c, const char *s)
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

const char *header_get(const struct resp *r, const char *name, char *out, size_t size)
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

void resp_free(struct resp *r)
{
	free(r->head);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* Reads one answer (HEAD: no body follows). */
int conn_read(struct conn *c, struct resp *r, int timeout_ms, bool head_only)
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
int conn_wait_closed(struct conn *c, int timeout_ms)
{
	long long deadline = shop_now_ms() + timeout_ms;
	int rc;

	while ((rc = conn_fill(c, deadline)) > 0)
		c->len = 0;
	return rc == 0;
}

/* One raw request on a new connection; a failing send is not an error (a
 * server may answer and close before the request is all sent). */
int exchange(const void *raw, size_t len, struct resp *r, int timeout_ms)
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

int exchanges(const char *raw, struct resp *r)
{
	return exchange(raw, strlen(raw), r, ANSWER_MS);
}

int get(const char *path, struct resp *r)
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
int post(const char *path, const char *ctype, const char *extra, const void *body, size_t len,
	 struct resp *r)
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

int post_order(const void *body, size_t len, const char *extra, struct resp *r)
{
	return post("/orders", "application/json", extra, body, len, r);
}

int post_orders(const char *body, struct resp *r)
{
	return post_order(body, strlen(body), NULL, r);
}

/* ------------------------------------------------------------------------ */
/* What the answers must be */

/* A printable, shortened copy of a case's label (which may hold raw bytes). */
const char *printable(const void *data, size_t len, char *out, size_t size)
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

void note(const char *what, int rc, const struct resp *r)
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
json_t *check_problem(const char *what, int rc, const struct resp *r, int status,
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

void expect_problem(const char *what, int rc, struct resp *r, int status, const char *type_want)
{
	note(what, rc, r);
	json_decref(check_problem(what, rc, r, status, type_want));
	resp_free(r);
}

/* The problem's errors[] has one at pointer. */
bool has_pointer(const json_t *p, const char *pointer)
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
void daemon_ok(const char *after)
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
void expect_created(const char *what, int rc, struct resp *r, char *order_id)
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
json_t *get_order(const char *order_id)
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

/* head, n times unit, tail (caller frees). */
char *repeat(const char *head, const char *unit, size_t n, const char *tail)
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

/* ------------------------------------------------------------------------ */
/* The daemon */

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

int abuse_main(const char *suite, void (*add_tests)(TCase *tc))
{
	const char *bootstrap, *database_url;
	Suite *s = suite_create(suite);
	TCase *tc = tcase_create("order-service");
	SRunner *sr;
	bool tokens;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	/* The daemon inherits it: 1200 sockets need more than 1024 fds. */
	raise_fd_limit();
	bootstrap = es_test_kafka_bootstrap();
	database_url = es_test_database_url();
	if (!bootstrap || !database_url)
		return ES_TEST_SKIP;
	/* shop_init makes the shop ask for tokens, unless a key is exported
	 * already (abuse.http.auth's); the other suites speak raw HTTP with no
	 * token, to an order-service that asks for none. */
	tokens = getenv("AUTH_JWT_KEY_FILE") != NULL;
	if (shop_init(&shop, bootstrap, database_url)) {
		shop_release(&shop);
		return 1;
	}
	if (!tokens)
		unsetenv("AUTH_JWT_KEY_FILE");
	if (shop_start(&shop, SHOP_ORDER, 0)) {
		shop_release(&shop);
		return 1;
	}
	port = shop.port[SHOP_ORDER][0];
	watchdog_start(shop.pid[SHOP_ORDER][0]);
	printf("abuse: order-service pid %d on 127.0.0.1:%u, schema %s_order_service, log in %s\n",
	       (int)shop.pid[SHOP_ORDER][0], port, shop.run, shop.dir);
	fflush(stdout);

	/* One daemon for all cases, watched with waitpid: no forking. */
	tcase_set_timeout(tc, 240);
	add_tests(tc);
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
