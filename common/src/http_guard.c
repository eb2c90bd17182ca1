/*
 * http_guard: the deadline that keeps a slow client from holding a
 * connection for ever.
 *
 * libmicrohttpd closes a connection that has been idle for
 * conf.connection_timeout, but a client that sends one byte of its headers
 * (or of its body) every few seconds is never idle: with enough such
 * connections it holds every slot the server has, and nobody else is
 * answered (the "slowloris" attack). libmicrohttpd 0.9.75 has no deadline
 * for a whole request, so the guard adds one:
 *
 *   - a new connection must have its first request answered within
 *     conf.request_timeout seconds;
 *   - on a kept-alive connection, the clock of the next request starts
 *     when its request line arrives (libmicrohttpd's URI callback), and the
 *     wait for that line is bounded by the idle timeout plus the deadline;
 *   - once an answer is queued there is no deadline: a long answer (a
 *     stream) is not cut, and libmicrohttpd's idle timeout still applies.
 *
 * A thread of the guard looks at the open connections a few times a second
 * and shuts down the socket of each one past its deadline; libmicrohttpd
 * then sees the connection end and closes it as it would any other. The
 * socket is shut down, never closed, under the same lock that the
 * connection's "closed" notification takes, and libmicrohttpd notifies
 * before it closes the descriptor: the guard can never touch a descriptor
 * that has been reused for another connection.
 */
#include "http_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "es/clock.h"
#include "es/log.h"

/* How often the guard looks at the connections: a request is cut at most
 * this much after its deadline. */
#define GUARD_TICK_MS 250

/* One open connection (libmicrohttpd's socket context). */
struct http_watch {
	struct http_watch *prev;
	struct http_watch *next;
	int fd;
	long long deadline_ms; /* es_monotonic_ms(); 0: none */
};

static long long request_ms(const struct es_http *http)
{
	return (long long)http->conf.request_timeout * 1000;
}

static struct http_watch *watch_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *info = MHD_get_connection_info(
		conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info ? info->socket_context : NULL;
}

/* Sets the deadline of conn's connection under the guard's lock; with
 * only_earlier, only when that brings it forward (or there was none). */
static void set_deadline(struct es_http *http, struct MHD_Connection *conn, long long deadline,
			 bool only_earlier)
{
	struct http_watch *w;

	if (!http->conf.request_timeout)
		return;
	pthread_mutex_lock(&http->guard_lock);
	w = watch_of(conn);
	if (w && (!only_earlier || !w->deadline_ms || deadline < w->deadline_ms))
		w->deadline_ms = deadline;
	pthread_mutex_unlock(&http->guard_lock);
}

void http_guard_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			      enum MHD_ConnectionNotificationCode code)
{
	struct es_http *http = cls;
	struct http_watch *w;

	if (!http->conf.request_timeout)
		return;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *info = MHD_get_connection_info(
			conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		/* Without memory the connection is simply not watched: the
		 * idle timeout still applies to it. */
		w = calloc(1, sizeof(*w));
		if (!w || !info) {
			free(w);
			return;
		}
		w->fd = info->connect_fd;
		w->deadline_ms = es_monotonic_ms() + request_ms(http);
		pthread_mutex_lock(&http->guard_lock);
		w->next = http->watches;
		if (w->next)
			w->next->prev = w;
		http->watches = w;
		pthread_mutex_unlock(&http->guard_lock);
		*socket_context = w;
		return;
	}
	w = *socket_context;
	if (!w)
		return;
	pthread_mutex_lock(&http->guard_lock);
	if (w->prev)
		w->prev->next = w->next;
	else
		http->watches = w->next;
	if (w->next)
		w->next->prev = w->prev;
	pthread_mutex_unlock(&http->guard_lock);
	free(w);
	*socket_context = NULL;
}

void *http_guard_on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct es_http *http = cls;

	(void)uri;
	set_deadline(http, conn, es_monotonic_ms() + request_ms(http), true);
	/* What libmicrohttpd passes as the request's first *con_cls: on_request
	 * takes NULL to mean "a new request". */
	return NULL;
}

void http_guard_answered(struct es_http *http, struct MHD_Connection *conn)
{
	set_deadline(http, conn, 0, false);
}

void http_guard_request_ended(struct es_http *http, struct MHD_Connection *conn)
{
	long long wait = (long long)http->conf.connection_timeout * 1000 + request_ms(http);

	set_deadline(http, conn, es_monotonic_ms() + wait, false);
}

/* Shuts down every connection past its deadline; returns how many. */
static unsigned int cut_late(struct es_http *http)
{
	long long now = es_monotonic_ms();
	unsigned int cut = 0;

	pthread_mutex_lock(&http->guard_lock);
	for (struct http_watch *w = http->watches; w; w = w->next) {
		if (!w->deadline_ms || now < w->deadline_ms)
			continue;
		w->deadline_ms = 0;
		/* Counted first: whoever sees the connection end sees the count. */
		if (http->timeouts)
			es_counter_inc(http->timeouts, NULL);
		shutdown(w->fd, SHUT_RDWR);
		cut++;
	}
	pthread_mutex_unlock(&http->guard_lock);
	return cut;
}

static void *guard_main(void *arg)
{
	struct es_http *http = arg;

	pthread_mutex_lock(&http->guard_lock);
	while (!http->guard_stop) {
		struct timespec until;
		unsigned int cut;

		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += GUARD_TICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&http->guard_wake, &http->guard_lock, &until);
		if (http->guard_stop)
			break;
		pthread_mutex_unlock(&http->guard_lock);
		cut = cut_late(http);
		if (cut)
			es_debug("http: %u connection(s) cut at the %u s request deadline", cut,
				 http->conf.request_timeout);
		pthread_mutex_lock(&http->guard_lock);
	}
	pthread_mutex_unlock(&http->guard_lock);
	return NULL;
}

int http_guard_init(struct es_http *http, char *errstr, size_t errstr_size)
{
	pthread_condattr_t attr;

	if (pthread_mutex_init(&http->guard_lock, NULL)) {
		snprintf(errstr, errstr_size, "http: cannot create the guard's lock");
		return -1;
	}
	if (pthread_condattr_init(&attr) || pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) ||
	    pthread_cond_init(&http->guard_wake, &attr)) {
		pthread_mutex_destroy(&http->guard_lock);
		snprintf(errstr, errstr_size, "http: cannot create the guard's condition");
		return -1;
	}
	pthread_condattr_destroy(&attr);
	http->guard_ready = true;
	return 0;
}

int http_guard_start(struct es_http *http, char *errstr, size_t errstr_size)
{
	int err;

	if (!http->conf.request_timeout)
		return 0;
	http->guard_stop = false;
	err = pthread_create(&http->guard_thread, NULL, guard_main, http);
	if (err) {
		snprintf(errstr, errstr_size,
			 "http: cannot start the request deadline's thread: %s", strerror(err));
		return -1;
	}
	http->guard_running = true;
	return 0;
}

void http_guard_stop(struct es_http *http)
{
	if (!http->guard_running)
		return;
	pthread_mutex_lock(&http->guard_lock);
	http->guard_stop = true;
	pthread_cond_signal(&http->guard_wake);
	pthread_mutex_unlock(&http->guard_lock);
	pthread_join(http->guard_thread, NULL);
	http->guard_running = false;
}

void http_guard_release(struct es_http *http)
{
	if (!http->guard_ready)
		return;
	http_guard_stop(http);
	pthread_cond_destroy(&http->guard_wake);
	pthread_mutex_destroy(&http->guard_lock);
	http->guard_ready = false;
}
