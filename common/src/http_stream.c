/*
 * http_stream: answers that go on (Server-Sent Events), without holding a
 * pool thread while they wait.
 *
 * libmicrohttpd asks a callback response for more whenever the socket can
 * take it. A callback with nothing to say may not just return 0: in a
 * thread pool that is a busy loop. It suspends the connection instead
 * (MHD_suspend_connection, allowed from the callback), and the owner's
 * es_http_stream_wake resumes it (MHD_resume_connection, from any thread).
 * A wake that comes between fill's "nothing" and the suspension is kept in
 * wake_pending, so that it is not lost.
 *
 * A stream has two references: the response's (dropped by libmicrohttpd's
 * free callback when the connection ends) and the owner's. Its lock
 * guards the flags and is held across the calls into libmicrohttpd that
 * suspend and resume, so that a resume never meets a connection that has
 * gone: the free callback takes the lock to mark the stream closed.
 * Locks are taken in one order: http->streams_lock, then a stream's.
 */
#include "http_private.h"

#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "es/log.h"

/* Bytes libmicrohttpd asks fill for at most, per call. */
#define STREAM_BLOCK 16384

struct es_http_stream {
	pthread_mutex_t lock;
	struct es_http *http; /* the list it is on; NULL once off it */
	struct MHD_Connection *conn;
	es_http_fill_fn fill;
	void *arg;
	int refs;
	bool suspended;
	bool wake_pending;
	bool ending; /* the server stops or the owner let go: end it */
	bool closed; /* the connection ended: never call fill or MHD again */
	struct es_http_stream *prev, *next;
};

static void stream_unref(struct es_http_stream *s)
{
	bool last;

	pthread_mutex_lock(&s->lock);
	last = --s->refs == 0;
	pthread_mutex_unlock(&s->lock);
	if (last) {
		pthread_mutex_destroy(&s->lock);
		free(s);
	}
}

int es_http_reply_stream(struct es_http_request *req, const char *content_type,
			 es_http_fill_fn fill, void *arg, struct es_http_stream **stream)
{
	struct es_http_stream *s;
	char *type;

	*stream = NULL;
	if (!req || req->replied || !fill || !content_type)
		return -1;
	s = calloc(1, sizeof(*s));
	type = strdup(content_type);
	if (!s || !type) {
		free(s);
		free(type);
		return -1;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->conn = req->conn;
	s->fill = fill;
	s->arg = arg;
	s->refs = 2;
	req->stream = s;
	req->status = MHD_HTTP_OK;
	req->content_type = type;
	req->replied = true;
	*stream = s;
	return 0;
}

/* libmicrohttpd's content reader. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct es_http_stream *s = cls;

	(void)pos;
	for (;;) {
		long n;

		pthread_mutex_lock(&s->lock);
		if (s->ending) {
			pthread_mutex_unlock(&s->lock);
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		s->wake_pending = false;
		pthread_mutex_unlock(&s->lock);

		n = s->fill(s->arg, buf, max);
		if (n < 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
		if (n > 0)
			return (ssize_t)(n > (long)max ? (long)max : n);

		pthread_mutex_lock(&s->lock);
		if (!s->wake_pending && !s->ending) {
			s->suspended = true;
			MHD_suspend_connection(s->conn);
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
		pthread_mutex_unlock(&s->lock);
	}
}

/* libmicrohttpd's free callback: the connection ended. */
static void stream_gone(void *cls)
{
	struct es_http_stream *s = cls;
	struct es_http *http;

	pthread_mutex_lock(&s->lock);
	http = s->http;
	pthread_mutex_unlock(&s->lock);
	if (http) {
		pthread_mutex_lock(&http->streams_lock);
		if (s->prev)
			s->prev->next = s->next;
		else
			http->streams = s->next;
		if (s->next)
			s->next->prev = s->prev;
		pthread_mutex_unlock(&http->streams_lock);
	}
	pthread_mutex_lock(&s->lock);
	s->http = NULL;
	s->closed = true;
	s->suspended = false;
	pthread_mutex_unlock(&s->lock);
	stream_unref(s);
}

struct MHD_Response *http_stream_response(struct es_http_request *req)
{
	struct es_http_stream *s = req->stream;
	struct es_http *http = req->http;
	struct MHD_Response *resp;

	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_read, s,
						 stream_gone);
	if (!resp) {
		pthread_mutex_lock(&s->lock);
		s->closed = true;
		pthread_mutex_unlock(&s->lock);
		stream_unref(s);
		return NULL;
	}
	pthread_mutex_lock(&http->streams_lock);
	pthread_mutex_lock(&s->lock);
	s->http = http;
	s->next = http->streams;
	if (s->next)
		s->next->prev = s;
	http->streams = s;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&http->streams_lock);
	return resp;
}

/* Under s->lock. */
static void resume_locked(struct es_http_stream *s)
{
	if (s->closed)
		return;
	if (s->suspended) {
		s->suspended = false;
		MHD_resume_connection(s->conn);
	} else {
		s->wake_pending = true;
	}
}

void es_http_stream_wake(struct es_http_stream *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	resume_locked(s);
	pthread_mutex_unlock(&s->lock);
}

bool es_http_stream_closed(struct es_http_stream *s)
{
	bool closed;

	pthread_mutex_lock(&s->lock);
	closed = s->closed;
	pthread_mutex_unlock(&s->lock);
	return closed;
}

void es_http_stream_release(struct es_http_stream *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	s->ending = true;
	resume_locked(s);
	pthread_mutex_unlock(&s->lock);
	stream_unref(s);
}

void http_streams_end(struct es_http *http)
{
	pthread_mutex_lock(&http->streams_lock);
	for (struct es_http_stream *s = http->streams; s; s = s->next) {
		pthread_mutex_lock(&s->lock);
		s->ending = true;
		resume_locked(s);
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&http->streams_lock);
}
