/*
 * clients: GET /events, one Server-Sent Events stream per open page, fed
 * from the ring.
 *
 * Each stream has a cursor, the sequence number of the next frame it
 * wants, and the frame it is sending (a copy: the ring may drop the frame
 * meanwhile). A stream with nothing to send is suspended by the server
 * (es_http_reply_stream): 50 open pages hold 50 connections, not 50
 * threads. The main thread wakes them all when the ring got something (at
 * most every 50 ms: main.c, WAKE_MS) and every CONSOLE_KEEPALIVE_MS; a
 * stream quiet that long sends a comment.
 *
 * A page that reconnects sends Last-Event-ID (sse.h): with this boot's id
 * it goes on after it; otherwise it gets the whole ring again and drops
 * what it already drew.
 */
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "es/clock.h"
#include "es/log.h"

/* How long a page waits before it reconnects after the stream broke. */
#define RETRY_MS 1000

struct console_client {
	struct console *c;
	struct es_http_stream *stream;
	unsigned long long next; /* the next frame's sequence number */
	char *frame; /* being sent */
	size_t len, off;
	bool greeted;
	long long last_sent_ms; /* monotonic */
	struct console_client *next_client; /* under clients_lock */
};

/* The greeting: how long to wait before reconnecting, and this boot's id
 * (the page tells a restart of the console by it). */
static char *greeting(const struct console_client *cl, size_t *len)
{
	char text[128];
	int n = snprintf(text, sizeof(text), "retry: %d\n\n", RETRY_MS);
	char *hello, *out;
	size_t hello_len;

	hello = console_sse_event(NULL, "hello", cl->c->boot, strlen(cl->c->boot), &hello_len);
	if (!hello)
		return NULL;
	out = malloc((size_t)n + hello_len + 1);
	if (out) {
		memcpy(out, text, (size_t)n);
		memcpy(out + n, hello, hello_len + 1);
		*len = (size_t)n + hello_len;
	}
	free(hello);
	return out;
}

/* The next frame to send into cl->frame, or false when there is none:
 * the greeting first, then the ring's frames in order, and a keep-alive
 * comment when the stream was quiet for CONSOLE_KEEPALIVE_MS. */
static bool next_frame(struct console_client *cl, long long now)
{
	unsigned long long seq;

	cl->off = 0;
	if (!cl->greeted) {
		cl->frame = greeting(cl, &cl->len);
		cl->greeted = true;
	} else if ((cl->frame = console_ring_get(cl->c->ring, cl->next, &seq, &cl->len))) {
		cl->next = seq + 1;
	} else if (now - cl->last_sent_ms >= CONSOLE_KEEPALIVE_MS) {
		cl->frame = console_sse_comment("keep-alive", &cl->len);
	}
	return cl->frame != NULL;
}

/* es_http_fill_fn: runs in a pool thread, one at a time per stream. As
 * many frames as fit: one chunk, one write, for a burst of events. */
static long fill(void *arg, char *buf, size_t size)
{
	struct console_client *cl = arg;
	long long now = es_monotonic_ms();
	size_t used = 0;

	while (used < size && (cl->frame || next_frame(cl, now))) {
		size_t n = cl->len - cl->off;

		if (n > size - used)
			n = size - used;
		memcpy(buf + used, cl->frame + cl->off, n);
		used += n;
		cl->off += n;
		if (cl->off == cl->len) {
			free(cl->frame);
			cl->frame = NULL;
		}
	}
	if (used)
		cl->last_sent_ms = now;
	return (long)used;
}

static void client_free(struct console_client *cl)
{
	es_http_stream_release(cl->stream);
	free(cl->frame);
	free(cl);
}

static int handle_events(struct es_http_request *req, void *arg)
{
	struct console *c = arg;
	struct console_client *cl = calloc(1, sizeof(*cl));
	unsigned long long after;

	if (!cl)
		return -1;
	cl->c = c;
	cl->next = 1;
	if (console_sse_resume_after(es_http_header(req, "Last-Event-ID"), c->boot, &after))
		cl->next = after + 1;
	cl->last_sent_ms = es_monotonic_ms();
	es_http_add_header(req, "Cache-Control", "no-store");
	es_http_add_header(req, "X-Accel-Buffering", "no");
	if (es_http_reply_stream(req, "text/event-stream; charset=utf-8", fill, cl, &cl->stream)) {
		free(cl);
		return -1;
	}
	pthread_mutex_lock(&c->clients_lock);
	cl->next_client = c->clients;
	c->clients = cl;
	c->nclients++;
	pthread_mutex_unlock(&c->clients_lock);
	return 0;
}

int console_events_route(struct console *c, char *errstr, size_t errstr_size)
{
	return es_http_route(c->http, "GET", "/events", handle_events, c, errstr, errstr_size);
}

void console_clients_wake(struct console *c)
{
	struct console_client **p, *gone = NULL;

	pthread_mutex_lock(&c->clients_lock);
	for (p = &c->clients; *p;) {
		struct console_client *cl = *p;

		if (es_http_stream_closed(cl->stream)) {
			*p = cl->next_client;
			cl->next_client = gone;
			gone = cl;
			c->nclients--;
			continue;
		}
		es_http_stream_wake(cl->stream);
		p = &cl->next_client;
	}
	pthread_mutex_unlock(&c->clients_lock);
	while (gone) {
		struct console_client *next = gone->next_client;

		client_free(gone);
		gone = next;
	}
}

void console_clients_release(struct console *c)
{
	pthread_mutex_lock(&c->clients_lock);
	while (c->clients) {
		struct console_client *next = c->clients->next_client;

		client_free(c->clients);
		c->clients = next;
	}
	c->nclients = 0;
	pthread_mutex_unlock(&c->clients_lock);
}

size_t console_clients_count(struct console *c)
{
	size_t n;

	pthread_mutex_lock(&c->clients_lock);
	n = c->nclients;
	pthread_mutex_unlock(&c->clients_lock);
	return n;
}
