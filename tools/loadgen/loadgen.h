/*
 * eventshop-loadgen: places orders on order-service's front door at a fixed
 * rate or as fast as it answers, and measures what came back (HTTP status
 * and latency) and how long each accepted order's saga took to end.
 *
 *   main.c     the command line and the run's story: place, settle, report
 *   client.c   the HTTP side, libcurl's multi interface: POST /orders, and
 *              GET /orders/{id} polling with --no-kafka
 *   follow.c   the Kafka side: a thread reading the orders topic from its
 *              end for OrderConfirmed / OrderCancelled
 *   report.c   the progress line, the final report, the JSON file
 *
 * and the pure parts, in the loadgen_core library and unit-tested: mix.c
 * (what to order), pace.c (when), stats.c (percentiles), orders.c (the
 * run's orders by id), urls.c (--url's list of instances).
 */
#ifndef LG_LOADGEN_H
#define LG_LOADGEN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "mix.h"
#include "orders.h"
#include "pace.h"
#include "stats.h"

#define LG_NAME "eventshop-loadgen"
#define LG_URL_DEFAULT "http://127.0.0.1:8080"
/* The run's token (when the shop asks for one, AUTH_JWT_KEY_FILE) lasts
 * longer than any run. */
#define LG_TOKEN_TTL_S (7L * 86400)
#define LG_URL_MAX 2048
#define LG_URLS_MAX 8 /* order-service instances one run spreads its POSTs over */

enum lg_exit {
	LG_OK = 0, /* every order accepted and settled */
	LG_FAIL = 1, /* an answer other than 202, an unsettled order, no broker... */
	LG_USAGE = 2, /* the command line was wrong: nothing was tried */
};

struct lg_config {
	char url[LG_URL_MAX]; /* --url as given, each URL without a trailing slash */
	char urls[LG_URLS_MAX][LG_URL_MAX]; /* its URLs: POSTs round robin, GETs the first */
	size_t nurls;
	long long rate; /* orders per second; 0: as fast as possible */
	long concurrency; /* POSTs in flight at most */
	long long orders; /* orders to place; 0: until the duration */
	long long duration_s; /* seconds to place orders for; 0: until the count */
	struct lg_mix mix;
	const char *mix_spec;
	bool kafka; /* follow the topic; false: poll GET /orders/{id} */
	const char *bootstrap;
	const char *topic;
	long settle_timeout_s;
	long poll_interval_ms; /* --no-kafka: between two GETs of one order */
	long poll_concurrency; /* --no-kafka: GETs in flight at most */
	long timeout_ms; /* per HTTP request */
	const char *json_path; /* NULL: no JSON file */
	const char *csv_path; /* NULL: no per-order CSV file */
	uint64_t seed;
	bool quiet; /* no progress line */
};

/* Transport failures (no HTTP answer) are counted by libcurl's code. */
#define LG_CURL_CODES 128

struct lg_http;
struct lg_follow;

/* One run: written by the sending loop's thread only, except orders
 * (shared with the follower, which has its own lock). */
struct lg_run {
	const struct lg_config *cfg;
	char id[9]; /* 8 hex digits naming the run */
	char customer_id[32]; /* "loadgen-<id>": the customerId of its orders */
	uint64_t rng;
	struct lg_orders orders;
	struct lg_pacer pacer;
	uint64_t total; /* orders to place; UINT64_MAX: until the duration */

	uint64_t placed; /* POSTs started */
	uint64_t start_failures; /* POSTs that could not even start (no memory) */
	uint64_t inflight; /* POSTs not finished */
	uint64_t answered; /* POSTs that got an HTTP answer */
	uint64_t accepted; /* 202 with an order id */
	uint64_t bad_accepts; /* 202 without a usable id, or an id seen before */
	uint64_t status[600]; /* answers by HTTP status */
	uint64_t curl_errors[LG_CURL_CODES]; /* POSTs without an answer, by CURLcode */
	uint64_t transport_errors;
	uint64_t connects; /* connections the POSTs had to open (not reused) */
	char last_error[256]; /* the last transport error or odd answer */
	struct lg_samples http_us; /* latency of every answered POST */
	int64_t lag_max_us; /* how late the worst POST started (fixed rate) */
	double lag_sum_us;

	uint64_t polls, poll_errors; /* --no-kafka GETs, and those that failed */

	int64_t start_us; /* the first POST */
	int64_t placing_end_us; /* the last POST finished; 0 before */
	int64_t settle_end_us; /* the run ended */
	bool settle_timed_out;
	volatile sig_atomic_t *stop; /* SIGINT/SIGTERM count */
	char follow_error[512]; /* the follower's fatal error, if any */
	uint64_t follow_read, follow_invalid; /* messages read, not events */

	struct lg_http *http;
	struct lg_follow *follow;

	int64_t progress_next_us, progress_last_us;
	uint64_t progress_last_accepted;
};

/* --url's value: one order-service URL, or several separated by commas
 * (instances behind no load balancer: the POSTs go round robin). Fills
 * cfg->urls, cfg->nurls and cfg->url (the list again, without trailing
 * slashes). Returns 0, or -1 with errstr filled. */
int lg_urls_parse(struct lg_config *cfg, const char *list, char *errstr, size_t errstr_size);

/* CLOCK_MONOTONIC in microseconds: every time of a run is one of these. */
int64_t lg_now_us(void);

/* ---------------------------------------------------------------- client.c */

/* Sets up libcurl's multi handle and the request bodies of the mix.
 * Returns 0, or -1 with errstr filled. */
int lg_http_init(struct lg_run *run, char *errstr, size_t errstr_size);
void lg_http_release(struct lg_run *run);

/* Starts the POST of order number n (picks its mix entry, its key is
 * "<run id>-<n>"). Returns 0, or -1 when out of memory. */
int lg_http_post(struct lg_run *run, uint64_t n, int64_t now_us);

/* --no-kafka: starts the GETs that are due, as far as
 * --poll-concurrency allows. */
void lg_http_poll_due(struct lg_run *run, int64_t now_us);

/* When the next GET is due (INT64_MAX when none is waiting, or when no
 * GET could start now anyway). */
int64_t lg_http_poll_next_us(const struct lg_run *run);

/* Drives the transfers and handles those that finished. */
void lg_http_perform(struct lg_run *run);

/* Waits up to timeout_ms for network activity. */
void lg_http_wait(struct lg_run *run, int timeout_ms);

/* ---------------------------------------------------------------- follow.c */

/*
 * Starts the follower: a consumer in no group (manual assignment) on
 * cfg->topic at each partition's end offset as of now, so that it reads
 * only events produced from now on, on a thread of its own. It records
 * OrderPlaced of run->customer_id (lg_orders_seen) and every
 * OrderConfirmed / OrderCancelled (lg_orders_terminal) with the time it
 * read it. Returns 0, or -1 with errstr filled (no broker, no topic).
 */
int lg_follow_start(struct lg_run *run, char *errstr, size_t errstr_size);

/* true, with the reason in run->follow_error, once the follower hit an
 * error it cannot get over (the topic was deleted, a fatal error). */
bool lg_follow_failed(struct lg_run *run);

/* Stops the thread, keeps its counts in run->follow_read and
 * run->follow_invalid, and destroys the consumer. No follower: no-op. */
void lg_follow_stop(struct lg_run *run);

/* ---------------------------------------------------------------- report.c */

/* Writes the progress line to stderr when a second has passed; force:
 * the closing line, unless the last one is less than 250 ms old. */
void lg_progress(struct lg_run *run, int64_t now_us, bool force);

/*
 * Writes the final report to stdout and, with --json and --csv, the JSON
 * file and the per-order CSV file.
 * Returns the exit status the figures call for (LG_OK or LG_FAIL).
 */
int lg_report(struct lg_run *run);

#endif
