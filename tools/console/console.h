/*
 * eventshop-console: a web page that shows the shop's choreography live.
 *
 * The console owns no business data and joins no consumer group: one
 * es/reader.h reader follows every topic of the shop, dead letters
 * included, from a bounded tail of each partition (and a topic created
 * later from its first message, found within seconds: main.c); each
 * message becomes one Server-Sent Event (event.h, sse.h) kept in a
 * bounded ring (ring.h) from which every open page is fed (clients.c). The page (page/,
 * embedded at build time) places orders through the console, which passes
 * them on to order-service (api.c: same origin, so order-service needs no
 * CORS), reads a status panel (api.c: each daemon's /readyz, the dead
 * letters, events per second per topic), and shows and sets the daemons'
 * fault switches (faults.c: through their admin servers, es/faults.h).
 *
 * Threads: the main thread reads Kafka and pushes into the ring; a prober
 * thread asks the daemons' /readyz and lists their fault switches;
 * libmicrohttpd's pool serves the routes and the streams. What they share
 * is below, each part with its lock.
 */
#ifndef CONSOLE_H
#define CONSOLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "es/http.h"
#include "ring.h"
#include "sse.h"

#define CONSOLE_HTTP_PORT 8085
#define CONSOLE_MAX_TOPICS 32
#define CONSOLE_MAX_SERVICES 16
/* The tokens the storefront signs for its orders (when the shop asks for
 * tokens) need last only as long as the request. */
#define CONSOLE_TOKEN_TTL_S 300
/* A stream quiet for this long gets a comment, so that nothing between
 * the page and the console (nor the server's idle timeout) closes it. */
#define CONSOLE_KEEPALIVE_MS 15000

struct console_topic {
	char name[256];
	bool dlq;
	int partitions; /* how many the reader follows (the main thread's) */
	/* Under console.status_lock: */
	long long count; /* messages read in the current second */
	double rate; /* messages per second over the last full second */
	long long retained; /* dlq: messages the topic holds; -1: unknown */
	json_t *last_reason; /* dlq: the last dead letter's dlq.error */
};

struct console_service {
	char name[64];
	char url[256]; /* base URL, no trailing '/' */
	char admin[256]; /* its fault switches' server (es/faults.h); "": none */
	/* Under console.status_lock: */
	bool ready;
	char detail[256];
	json_t *faults; /* the switches as its admin server last listed them */
	char faults_detail[128]; /* "ok", or why there are none */
};

/* A consumer group of the shop and its lag per topic: the sum over the
 * topic's partitions of the high watermark less the group's committed
 * offset, for the partitions it committed. */
struct console_group {
	char name[256];
	/* Under console.status_lock: */
	bool known; /* the broker answered */
	long long lag[CONSOLE_MAX_TOPICS]; /* by topic index; -1: no commit */
};

struct console_client; /* one open /events stream (clients.c) */

struct console {
	char boot[CONSOLE_SSE_BOOT_LEN + 1];
	struct console_ring *ring;
	struct es_http *http;
	rd_kafka_t *rk; /* the reader: the main thread polls it, the prober
			 * asks it for watermarks (librdkafka allows both) */
	char order_url[256]; /* order-service, where the page's orders go */
	char bind[64]; /* HTTP_BIND: a name the page may reach the console by */

	struct console_topic topics[CONSOLE_MAX_TOPICS];
	size_t ntopics;
	struct console_service services[CONSOLE_MAX_SERVICES];
	size_t nservices;
	struct console_group groups[CONSOLE_MAX_SERVICES];
	size_t ngroups;
	pthread_mutex_t status_lock;

	pthread_mutex_t clients_lock;
	struct console_client *clients;
	size_t nclients;
};

/* clients.c: GET /events, and what the main thread does for the streams. */
int console_events_route(struct console *c, char *errstr, size_t errstr_size);
/* Wakes every open stream (something new, or a keep-alive is due) and
 * forgets the ones whose page went away. */
void console_clients_wake(struct console *c);
/* Forgets every stream: after the server stopped. */
void console_clients_release(struct console *c);
size_t console_clients_count(struct console *c);

/* api.c: the page, the order proxy and the status panel. */
int console_api_routes(struct console *c, char *errstr, size_t errstr_size);
/* Answers req with a daemon's reply as it came (status and body; a
 * problem stays a problem) and releases the reply. Returns 0 or -1. */
struct shopctl_http_reply;
int console_reply_as(struct es_http_request *req, struct shopctl_http_reply *reply);
/* Asks every service's /readyz once (the prober thread's round). */
void console_probe_services(struct console *c);

/* faults.c: the fault-switch panel: GET and POST /api/faults. */
int console_faults_routes(struct console *c, char *errstr, size_t errstr_size);
/* Lists every service's switches once (the prober thread's round). */
void console_probe_faults(struct console *c);

#endif
