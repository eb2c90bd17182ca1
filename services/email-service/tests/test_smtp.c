/*
 * Unit tests of smtp.c against a tiny SMTP responder in a thread of the
 * test itself (no mail server to install): the libcurl path sends the
 * envelope sender and recipient and the whole message, dot-stuffed; a
 * refused mailbox is a permanent failure, an unreachable server or a 4xx
 * reply a transient one.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "delivery.h"
#include "message.h"
#include "smtp.h"

#define ORDER "0b6f2c9e-51d4-4e8a-9c1f-3a7d2e6b8f40"
#define TIMEOUT_MS 10000

/* One SMTP session's worth of server: accepts one connection, answers
 * RCPT with rcpt_reply, and records what the client sent. */
struct responder {
	int listen_fd;
	unsigned short port;
	const char *rcpt_reply; /* e.g. "250 OK" or "550 no such user" */
	pthread_t tid;

	char inbuf[8192]; /* bytes read, not yet consumed as lines */
	size_t inlen;

	char mail_from[2048];
	char rcpt_to[2048];
	char *data; /* the message as received, dot-stuffing undone */
	size_t data_len;
	bool got_quit;
};

/* Reads one line without its CRLF into line. Returns 0, or -1 at EOF. */
static int read_line(struct responder *r, int fd, char *line, size_t size)
{
	for (;;) {
		char *eol = memchr(r->inbuf, '\n', r->inlen);
		ssize_t n;

		if (eol) {
			size_t len = (size_t)(eol - r->inbuf) + 1;
			size_t keep = len >= 2 && eol[-1] == '\r' ? len - 2 : len - 1;

			if (keep >= size)
				keep = size - 1;
			memcpy(line, r->inbuf, keep);
			line[keep] = '\0';
			memmove(r->inbuf, r->inbuf + len, r->inlen - len);
			r->inlen -= len;
			return 0;
		}
		if (r->inlen == sizeof(r->inbuf))
			return -1;
		n = recv(fd, r->inbuf + r->inlen, sizeof(r->inbuf) - r->inlen, 0);
		if (n <= 0)
			return -1;
		r->inlen += (size_t)n;
	}
}

static void say(int fd, const char *reply)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "%s\r\n", reply);

	(void)!send(fd, buf, (size_t)n, MSG_NOSIGNAL);
}

static void append_data(struct responder *r, const char *line)
{
	size_t len = strlen(line);
	char *p = realloc(r->data, r->data_len + len + 3);

	if (!p)
		return;
	r->data = p;
	memcpy(r->data + r->data_len, line, len);
	memcpy(r->data + r->data_len + len, "\r\n", 3);
	r->data_len += len + 2;
}

static void *responder_main(void *arg)
{
	struct responder *r = arg;
	char line[2048];
	int fd = accept(r->listen_fd, NULL, NULL);

	if (fd < 0)
		return NULL;
	say(fd, "220 test.local ESMTP ready");
	while (read_line(r, fd, line, sizeof(line)) == 0) {
		if (!strncasecmp(line, "EHLO", 4) || !strncasecmp(line, "HELO", 4)) {
			say(fd, "250 test.local");
		} else if (!strncasecmp(line, "MAIL FROM:", 10)) {
			snprintf(r->mail_from, sizeof(r->mail_from), "%s", line + 10);
			say(fd, "250 OK");
		} else if (!strncasecmp(line, "RCPT TO:", 8)) {
			snprintf(r->rcpt_to, sizeof(r->rcpt_to), "%s", line + 8);
			say(fd, r->rcpt_reply);
		} else if (!strcasecmp(line, "DATA")) {
			say(fd, "354 end with <CRLF>.<CRLF>");
			while (read_line(r, fd, line, sizeof(line)) == 0 && strcmp(line, "."))
				append_data(r, line[0] == '.' ? line + 1 : line);
			say(fd, "250 queued");
		} else if (!strcasecmp(line, "QUIT")) {
			r->got_quit = true;
			say(fd, "221 bye");
			break;
		} else if (!strcasecmp(line, "RSET") || !strcasecmp(line, "NOOP")) {
			say(fd, "250 OK");
		} else {
			say(fd, "502 not implemented");
		}
	}
	close(fd);
	return NULL;
}

static void responder_start(struct responder *r, const char *rcpt_reply)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t alen = sizeof(addr);

	memset(r, 0, sizeof(*r));
	r->rcpt_reply = rcpt_reply;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(r->listen_fd, 0);
	ck_assert_int_eq(bind(r->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(listen(r->listen_fd, 1), 0);
	ck_assert_int_eq(getsockname(r->listen_fd, (struct sockaddr *)&addr, &alen), 0);
	r->port = ntohs(addr.sin_port);
	ck_assert_int_eq(pthread_create(&r->tid, NULL, responder_main, r), 0);
}

/* Waits for the session to end (the client quit or hung up). */
static void responder_join(struct responder *r)
{
	pthread_join(r->tid, NULL);
	close(r->listen_fd);
}

static void responder_free(struct responder *r)
{
	free(r->data);
	r->data = NULL;
}

static void url_of(const struct responder *r, char *buf, size_t size)
{
	snprintf(buf, size, "smtp://127.0.0.1:%u", r->port);
}

START_TEST(delivery_sends_envelope_headers_and_body)
{
	struct email_delivery d = {.from = EMAIL_DEFAULT_FROM, .smtp_timeout_ms = TIMEOUT_MS};
	struct email_message m = {
		.tmpl = EMAIL_REFUND_ISSUED,
		.order_id = ORDER,
		.from = EMAIL_DEFAULT_FROM,
		.to = "ada@example.com",
		.date = 1795320910,
		.cents = 1999,
		.currency = "EUR",
	};
	struct responder r;
	char url[64], errstr[512];
	char *text;
	size_t len;

	responder_start(&r, "250 OK");
	url_of(&r, url, sizeof(url));
	d.smtp_url = url;
	snprintf(d.from_addr, sizeof(d.from_addr), "shop@eventshop.local");
	text = email_message_render(&m, &len, errstr, sizeof(errstr));
	ck_assert_msg(text, "%s", errstr);
	ck_assert_msg(email_deliver(&d, NULL, ORDER, EMAIL_REFUND_ISSUED, "ada@example.com", text,
				    len, errstr, sizeof(errstr)) == EMAIL_DELIVERED,
		      "%s", errstr);
	responder_join(&r);

	ck_assert_str_eq(r.mail_from, "<shop@eventshop.local>");
	ck_assert_str_eq(r.rcpt_to, "<ada@example.com>");
	ck_assert_ptr_nonnull(r.data);
	/* Byte for byte what was rendered: headers, CRLFs and body. */
	ck_assert_uint_eq(r.data_len, len);
	ck_assert_int_eq(memcmp(r.data, text, len), 0);
	ck_assert_ptr_nonnull(strstr(r.data, "\r\nTo: ada@example.com\r\n"));
	ck_assert_ptr_nonnull(strstr(r.data, "\r\nFrom: eventshop <shop@eventshop.local>\r\n"));
	ck_assert_ptr_nonnull(
		strstr(r.data, "\r\nMessage-ID: <" ORDER ".refund-issued@eventshop.local>\r\n"));
	ck_assert_ptr_nonnull(strstr(r.data, "refunded 19.99 EUR"));
	ck_assert(r.got_quit);
	free(text);
	responder_free(&r);
}
END_TEST

START_TEST(lines_starting_with_a_dot_arrive_whole)
{
	const char *msg = "Subject: dots\r\n\r\n.leading dot\r\n.\r\nlast\r\n";
	struct responder r;
	char url[64], errstr[512];
	bool permanent;

	responder_start(&r, "250 OK");
	url_of(&r, url, sizeof(url));
	ck_assert_msg(email_smtp_send(url, "shop@eventshop.local", "ada@example.com", msg,
				      strlen(msg), TIMEOUT_MS, &permanent, errstr,
				      sizeof(errstr)) == 0,
		      "%s", errstr);
	responder_join(&r);
	/* A lone "." line would have ended DATA early without stuffing. */
	ck_assert_ptr_nonnull(r.data);
	ck_assert_str_eq(r.data, msg);
	responder_free(&r);
}
END_TEST

START_TEST(refused_mailbox_is_permanent)
{
	struct responder r;
	char url[64], errstr[512];
	bool permanent = false;

	responder_start(&r, "550 5.1.1 no such user");
	url_of(&r, url, sizeof(url));
	ck_assert_int_eq(email_smtp_send(url, "shop@eventshop.local", "nobody@example.com",
					 "Subject: x\r\n\r\nx\r\n", 17, TIMEOUT_MS, &permanent,
					 errstr, sizeof(errstr)),
			 -1);
	responder_join(&r);
	ck_assert(permanent);
	ck_assert_msg(strstr(errstr, "550"), "%s", errstr);
	ck_assert_ptr_null(r.data);
	responder_free(&r);
}
END_TEST

START_TEST(temporary_refusal_is_transient)
{
	struct email_delivery d = {.from = EMAIL_DEFAULT_FROM, .smtp_timeout_ms = TIMEOUT_MS};
	struct responder r;
	char url[64], errstr[512];

	responder_start(&r, "451 4.3.0 try again later");
	url_of(&r, url, sizeof(url));
	d.smtp_url = url;
	snprintf(d.from_addr, sizeof(d.from_addr), "shop@eventshop.local");
	ck_assert_int_eq(email_deliver(&d, NULL, ORDER, EMAIL_ORDER_RECEIVED, "ada@example.com",
				       "Subject: x\r\n\r\nx\r\n", 17, errstr, sizeof(errstr)),
			 EMAIL_DELIVERY_RETRY);
	responder_join(&r);
	responder_free(&r);
}
END_TEST

START_TEST(unreachable_server_is_transient)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t alen = sizeof(addr);
	char url[64], errstr[512];
	bool permanent = true;
	int fd;

	/* A port that was free a moment ago and has no listener now. */
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
	close(fd);
	snprintf(url, sizeof(url), "smtp://127.0.0.1:%u", ntohs(addr.sin_port));
	ck_assert_int_eq(email_smtp_send(url, "shop@eventshop.local", "ada@example.com",
					 "Subject: x\r\n\r\nx\r\n", 17, TIMEOUT_MS, &permanent,
					 errstr, sizeof(errstr)),
			 -1);
	ck_assert(!permanent);
	ck_assert_msg(strstr(errstr, "ada@example.com"), "%s", errstr);
}
END_TEST

static Suite *smtp_suite(void)
{
	Suite *s = suite_create("email smtp");
	TCase *tc = tcase_create("send");

	tcase_add_test(tc, delivery_sends_envelope_headers_and_body);
	tcase_add_test(tc, lines_starting_with_a_dot_arrive_whole);
	tcase_add_test(tc, refused_mailbox_is_permanent);
	tcase_add_test(tc, temporary_refusal_is_transient);
	tcase_add_test(tc, unreachable_server_is_transient);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failures;

	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return 1;
	sr = srunner_create(smtp_suite());
	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	curl_global_cleanup();
	return failures ? 1 : 0;
}
