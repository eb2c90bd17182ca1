/*
 * http streams (es_http_reply_stream): a streamed answer sends what its
 * owner wakes it for, a waiting stream holds no pool thread (many open
 * streams on a pool of 2 leave the server answering), a stream notices
 * its client left, fill's end ends the answer, and es_http_stop ends the
 * streams still open instead of failing on them.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/clock.h"
#include "http_fixture.h"

#define NFEEDS 60

/* What one stream sends next, set by the test, taken by fill. */
struct feed {
	pthread_mutex_t lock;
	char data[256];
	bool end;
	struct es_http_stream *s;
};

static struct feed feeds[NFEEDS];
static int nfeeds;
static pthread_mutex_t feeds_lock = PTHREAD_MUTEX_INITIALIZER;
static struct es_http *server;

static long fill(void *arg, char *buf, size_t size)
{
	struct feed *f = arg;
	size_t n;

	pthread_mutex_lock(&f->lock);
	if (f->end) {
		pthread_mutex_unlock(&f->lock);
		return -1;
	}
	n = strlen(f->data);
	if (n > size)
		n = size;
	memcpy(buf, f->data, n);
	memmove(f->data, f->data + n, strlen(f->data + n) + 1);
	pthread_mutex_unlock(&f->lock);
	return (long)n;
}

static int handle_stream(struct es_http_request *req, void *arg)
{
	struct feed *f;

	(void)arg;
	pthread_mutex_lock(&feeds_lock);
	ck_assert_int_lt(nfeeds, NFEEDS);
	f = &feeds[nfeeds];
	pthread_mutex_init(&f->lock, NULL);
	f->data[0] = '\0';
	f->end = false;
	es_http_add_header(req, "Cache-Control", "no-store");
	if (es_http_reply_stream(req, "text/event-stream", fill, f, &f->s)) {
		pthread_mutex_unlock(&feeds_lock);
		return -1;
	}
	nfeeds++;
	pthread_mutex_unlock(&feeds_lock);
	return 0;
}

static void setup(void)
{
	struct es_http_conf conf;

	nfeeds = 0;
	es_http_conf_init(&conf);
	conf.bind_addr = "127.0.0.1";
	conf.threads = 2;
	server = es_http_new(&conf, errstr, sizeof(errstr));
	ck_assert_msg(server != NULL, "%s", errstr);
	ck_assert_int_eq(es_http_route(server, "GET", "/stream", handle_stream, NULL, errstr,
				       sizeof(errstr)),
			 0);
	ck_assert_int_eq(es_http_start(server, errstr, sizeof(errstr)), 0);
}

static void teardown(void)
{
	es_http_free(server);
	for (int i = 0; i < nfeeds; i++) {
		es_http_stream_release(feeds[i].s);
		pthread_mutex_destroy(&feeds[i].lock);
	}
	server = NULL;
}

static void feed(int i, const char *text)
{
	pthread_mutex_lock(&feeds[i].lock);
	snprintf(feeds[i].data + strlen(feeds[i].data),
		 sizeof(feeds[i].data) - strlen(feeds[i].data), "%s", text);
	pthread_mutex_unlock(&feeds[i].lock);
	es_http_stream_wake(feeds[i].s);
}

/* Reads until the buffer holds text (the test fails at the deadline). */
static void await_text(struct client *c, const char *text)
{
	int64_t deadline = now_ms() + RESPONSE_TIMEOUT_MS;

	while (!c->buf || !strstr(c->buf, text))
		ck_assert_msg(client_fill(c, deadline), "closed before \"%s\"", text);
}

/* Opens a stream and waits for its headers; returns its feed's index. */
static int open_stream(struct client *c)
{
	int64_t deadline = now_ms() + RESPONSE_TIMEOUT_MS;
	int before;

	pthread_mutex_lock(&feeds_lock);
	before = nfeeds;
	pthread_mutex_unlock(&feeds_lock);
	client_open_port(c, es_http_port(server));
	client_sends(c, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
	await_text(c, "\r\n\r\n");
	ck_assert_ptr_nonnull(strstr(c->buf, "200 OK"));
	ck_assert_ptr_nonnull(strstr(c->buf, "text/event-stream"));
	ck_assert_ptr_nonnull(strstr(c->buf, "Cache-Control: no-store"));
	while (now_ms() < deadline) {
		pthread_mutex_lock(&feeds_lock);
		if (nfeeds > before) {
			pthread_mutex_unlock(&feeds_lock);
			return before;
		}
		pthread_mutex_unlock(&feeds_lock);
		es_sleep_ms(5);
	}
	ck_abort_msg("the handler did not run");
	return -1;
}

START_TEST(sends_what_it_is_woken_for)
{
	struct client c = {0};
	int i = open_stream(&c);

	feed(i, "data: one\n\n");
	await_text(&c, "data: one\n\n");
	feed(i, "data: two\n\n");
	await_text(&c, "data: two\n\n");
	client_close(&c);
}
END_TEST

START_TEST(waiting_streams_hold_no_thread)
{
	enum { N = 50 };
	static struct client cs[N];
	struct resp r;
	int idx[N];

	memset(cs, 0, sizeof(cs));
	for (int k = 0; k < N; k++)
		idx[k] = open_stream(&cs[k]);
	/* 50 streams wait on a pool of 2 threads: another request is served. */
	{
		struct client c = {0};

		client_open_port(&c, es_http_port(server));
		client_sends(&c, "GET /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
		client_read(&c, &r, false);
		ck_assert_int_eq(r.status, 200);
		resp_free(&r);
		client_close(&c);
	}
	for (int k = 0; k < N; k++)
		feed(idx[k], "data: all\n\n");
	for (int k = 0; k < N; k++) {
		await_text(&cs[k], "data: all\n\n");
		client_close(&cs[k]);
	}
}
END_TEST

START_TEST(notices_its_client_left)
{
	struct client c = {0};
	int i = open_stream(&c);
	int64_t deadline = now_ms() + RESPONSE_TIMEOUT_MS;

	client_close(&c);
	ck_assert(!es_http_stream_closed(feeds[i].s));
	/* The owner writes on; the server finds the connection gone. */
	while (!es_http_stream_closed(feeds[i].s)) {
		ck_assert_msg(now_ms() < deadline, "the stream did not close");
		feed(i, "data: anyone?\n\n");
		es_sleep_ms(20);
	}
	/* Waking a closed stream does nothing. */
	es_http_stream_wake(feeds[i].s);
}
END_TEST

START_TEST(fill_ends_the_answer)
{
	struct client c = {0};
	int i = open_stream(&c);
	int64_t deadline = now_ms() + RESPONSE_TIMEOUT_MS;

	feed(i, "data: last\n\n");
	await_text(&c, "data: last");
	pthread_mutex_lock(&feeds[i].lock);
	feeds[i].end = true;
	pthread_mutex_unlock(&feeds[i].lock);
	es_http_stream_wake(feeds[i].s);
	/* The chunked body's last chunk. */
	await_text(&c, "\r\n0\r\n\r\n");
	while (!es_http_stream_closed(feeds[i].s)) {
		ck_assert_msg(now_ms() < deadline, "the stream did not close");
		es_sleep_ms(10);
	}
	client_close(&c);
}
END_TEST

START_TEST(stop_ends_open_streams)
{
	struct client cs[5] = {0};

	for (int k = 0; k < 5; k++)
		open_stream(&cs[k]);
	es_http_stop(server);
	for (int k = 0; k < 5; k++) {
		int64_t deadline = now_ms() + RESPONSE_TIMEOUT_MS;

		ck_assert(es_http_stream_closed(feeds[k].s));
		while (client_fill(&cs[k], deadline))
			;
		client_close(&cs[k]);
	}
}
END_TEST

START_TEST(released_while_open_ends_it)
{
	struct client c = {0};
	int i = open_stream(&c);

	es_http_stream_release(feeds[i].s);
	feeds[i].s = NULL;
	await_text(&c, "\r\n0\r\n\r\n");
	client_close(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("http_streams");
	TCase *tc = tcase_create("streams");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, sends_what_it_is_woken_for);
	tcase_add_test(tc, waiting_streams_hold_no_thread);
	tcase_add_test(tc, notices_its_client_left);
	tcase_add_test(tc, fill_ends_the_answer);
	tcase_add_test(tc, stop_ends_open_streams);
	tcase_add_test(tc, released_while_open_ends_it);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
