/* report: the progress line (stderr), the final report (stdout) and the
 * JSON file of --json. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <curl/curl.h>
#include <jansson.h>

#include "loadgen.h"

#define PROGRESS_US 1000000

static double ms(int64_t us)
{
	return (double)us / 1000.0;
}

static double seconds(int64_t us)
{
	return (double)us / 1e6;
}

void lg_progress(struct lg_run *run, int64_t now_us, bool force)
{
	size_t accepted, settled;
	double dt, rate;

	if (run->cfg->quiet || (!force && now_us < run->progress_next_us))
		return;
	/* The closing line only when the last one is not as good as it. */
	if (force && now_us - run->progress_last_us < PROGRESS_US / 4)
		return;
	lg_orders_counts(&run->orders, &accepted, &settled);
	dt = seconds(now_us - run->progress_last_us);
	rate = dt > 0 ? (double)(run->accepted - run->progress_last_accepted) / dt : 0;
	fprintf(stderr,
		"%s: %6.1f s  placed %llu  accepted %llu  in flight %llu  terminal %zu/%zu  "
		"rate %.1f/s\n",
		LG_NAME, seconds(now_us - run->start_us), (unsigned long long)run->placed,
		(unsigned long long)run->accepted, (unsigned long long)run->inflight, settled,
		accepted, rate);
	run->progress_last_us = now_us;
	run->progress_last_accepted = run->accepted;
	run->progress_next_us = now_us + PROGRESS_US;
}

/* Everything the report says, worked out once for both forms. */
struct figures {
	double placing_s, accepted_per_s, settle_s, lag_mean_ms;
	double ended_s, ended_per_s; /* first POST to the last terminal status */
	struct lg_summary http, saga, saga_confirmed, saga_cancelled;
	struct lg_tally tally;
	int exit_status;
};

static int work_out(struct lg_run *run, struct figures *fig)
{
	struct lg_samples all = {0}, confirmed = {0}, cancelled = {0};
	int64_t end = run->placing_end_us ? run->placing_end_us : run->settle_end_us;
	int rc = 0;

	memset(fig, 0, sizeof(*fig));
	fig->placing_s = seconds(end - run->start_us);
	fig->accepted_per_s = fig->placing_s > 0 ? (double)run->accepted / fig->placing_s : 0;
	fig->settle_s = seconds(run->settle_end_us - end);
	fig->lag_mean_ms = run->placed ? run->lag_sum_us / (double)run->placed / 1000.0 : 0;
	lg_samples_summarize(&run->http_us, &fig->http);
	if (lg_orders_tally(&run->orders, &fig->tally, &all, &confirmed, &cancelled))
		rc = -1;
	if (fig->tally.last_terminal_us > run->start_us) {
		fig->ended_s = seconds(fig->tally.last_terminal_us - run->start_us);
		fig->ended_per_s = (double)(fig->tally.confirmed + fig->tally.cancelled) /
				   fig->ended_s;
	}
	lg_samples_summarize(&all, &fig->saga);
	lg_samples_summarize(&confirmed, &fig->saga_confirmed);
	lg_samples_summarize(&cancelled, &fig->saga_cancelled);
	lg_samples_release(&all);
	lg_samples_release(&confirmed);
	lg_samples_release(&cancelled);
	/* Every order placed must have been accepted, and every accepted
	 * order must have ended: anything else is a failed run. */
	fig->exit_status = LG_OK;
	if (run->answered != run->placed || run->accepted != run->placed || run->bad_accepts ||
	    fig->tally.pending || run->follow_error[0] || rc)
		fig->exit_status = LG_FAIL;
	return rc;
}

static void print_summary(const char *label, const struct lg_summary *s)
{
	if (!s->count) {
		printf("  %-10s no samples\n", label);
		return;
	}
	printf("  %-10s p50 %8.2f  p95 %8.2f  p99 %8.2f  max %8.2f  min %7.2f  mean %8.2f  "
	       "(n=%zu)\n",
	       label, ms(s->p50), ms(s->p95), ms(s->p99), ms(s->max), ms(s->min), s->mean / 1000.0,
	       s->count);
}

static void print_text(struct lg_run *run, const struct figures *fig)
{
	const struct lg_config *cfg = run->cfg;
	const struct lg_tally *t = &fig->tally;
	bool first = true;

	printf("%s run %s: %s, ", LG_NAME, run->id, cfg->url);
	if (cfg->rate)
		printf("rate %lld/s", cfg->rate);
	else
		printf("rate max");
	printf(", concurrency %ld", cfg->concurrency);
	if (cfg->orders)
		printf(", %lld orders", cfg->orders);
	if (cfg->duration_s)
		printf(", %lld s", cfg->duration_s);
	printf("\nmix %s, seed %llu\n\n",
	       strcmp(cfg->mix_spec, LG_MIX_DEFAULT) ? cfg->mix_spec : "(the default)",
	       (unsigned long long)cfg->seed);
	printf("placing       %.2f s: placed %llu, accepted %llu, %.1f accepted/s\n",
	       fig->placing_s, (unsigned long long)run->placed, (unsigned long long)run->accepted,
	       fig->accepted_per_s);
	if (cfg->rate)
		printf("schedule lag  max %.2f ms, mean %.3f ms (how late POSTs started against "
		       "the fixed-rate schedule)\n",
		       ms(run->lag_max_us), fig->lag_mean_ms);
	printf("http status  ");
	for (int s = 0; s < 600; s++) {
		if (run->status[s])
			printf(" %d: %llu", s, (unsigned long long)run->status[s]);
	}
	for (int c = 0; c < LG_CURL_CODES; c++) {
		if (run->curl_errors[c])
			printf(" no answer (%s): %llu", curl_easy_strerror((CURLcode)c),
			       (unsigned long long)run->curl_errors[c]);
	}
	if (run->bad_accepts)
		printf(" 202 without a usable orderId: %llu", (unsigned long long)run->bad_accepts);
	printf("\n\n");
	printf("latency ms, exact over all samples (nearest rank):\n");
	print_summary("http", &fig->http);
	print_summary("saga", &fig->saga);
	print_summary(" confirmed", &fig->saga_confirmed);
	print_summary(" cancelled", &fig->saga_cancelled);
	printf("  http: POST /orders, libcurl's total time of the transfer (%llu connections\n"
	       "        opened for %llu POSTs: kept alive and reused in between).\n",
	       (unsigned long long)run->connects, (unsigned long long)run->placed);
	if (cfg->kafka)
		printf("  saga: from the 202 to the moment the follower read the order's\n"
		       "        OrderConfirmed/OrderCancelled from topic %s.\n",
		       cfg->topic);
	else
		printf("  saga: from the 202 to the GET /orders/{id} that first showed it "
		       "terminal\n"
		       "        (polled every %ld ms: up to that much late).\n",
		       cfg->poll_interval_ms);
	printf("\n");
	printf("outcomes      CONFIRMED %zu, CANCELLED %zu", t->confirmed, t->cancelled);
	for (int r = LG_REASON_PAYMENT_DECLINED; r < LG_REASON_COUNT; r++) {
		if (t->reasons[r]) {
			printf("%s%s %zu", first ? " (" : ", ", lg_reason_name((enum lg_reason)r),
			       t->reasons[r]);
			first = false;
		}
	}
	printf("%s, still pending %zu\n", first ? "" : ")", t->pending);
	printf("settling      %.2f s after the last POST%s\n", fig->settle_s,
	       run->settle_timed_out ? " (gave up: --settle-timeout)" : "");
	printf("sagas ended   %zu, the last %.2f s after the first POST: %.1f ended/s\n",
	       t->confirmed + t->cancelled, fig->ended_s, fig->ended_per_s);
	if (t->unacknowledged)
		printf("unanswered    %zu orders were placed (OrderPlaced read) but their 202 "
		       "never "
		       "came\n",
		       t->unacknowledged);
	if (cfg->kafka)
		printf("kafka         %llu messages read from %s (%llu not valid events)\n",
		       (unsigned long long)run->follow_read, cfg->topic,
		       (unsigned long long)run->follow_invalid);
	else
		printf("polling       %llu GET /orders/{id}, %llu failed\n",
		       (unsigned long long)run->polls, (unsigned long long)run->poll_errors);
	if (run->follow_error[0])
		printf("follower      failed: %s\n", run->follow_error);
	if (*run->stop)
		printf("interrupted   placing stopped early by a signal%s\n",
		       *run->stop > 1 ? ", settling skipped" : "");
	if (fig->exit_status != LG_OK && run->last_error[0])
		printf("last error    %s\n", run->last_error);
	printf("result        %s\n", fig->exit_status == LG_OK
					     ? "ok: every order accepted and settled"
					     : "FAILED: not every order was accepted and settled");
	fflush(stdout);
}

static json_t *summary_json(const struct lg_summary *s)
{
	return json_pack("{s:I,s:f,s:f,s:f,s:f,s:f,s:f}", "count", (json_int_t)s->count, "min",
			 ms(s->min), "p50", ms(s->p50), "p95", ms(s->p95), "p99", ms(s->p99), "max",
			 ms(s->max), "mean", s->mean / 1000.0);
}

static json_t *http_json(const struct lg_run *run, const struct figures *fig)
{
	json_t *status = json_object(), *errors = json_object();
	char key[8];

	for (int s = 0; s < 600; s++) {
		if (run->status[s]) {
			snprintf(key, sizeof(key), "%d", s);
			json_object_set_new(status, key, json_integer((json_int_t)run->status[s]));
		}
	}
	for (int c = 0; c < LG_CURL_CODES; c++) {
		if (run->curl_errors[c])
			json_object_set_new(errors, curl_easy_strerror((CURLcode)c),
					    json_integer((json_int_t)run->curl_errors[c]));
	}
	return json_pack("{s:o,s:o,s:I,s:I,s:o,s:s}", "status", status, "noAnswer", errors,
			 "acceptedWithoutOrderId", (json_int_t)run->bad_accepts,
			 "connectionsOpened", (json_int_t)run->connects, "latencyMs",
			 summary_json(&fig->http), "latencyMethod",
			 "exact: every sample kept, nearest-rank percentiles; libcurl's total "
			 "transfer time");
}

static json_t *outcomes_json(const struct figures *fig)
{
	const struct lg_tally *t = &fig->tally;
	json_t *reasons = json_object();

	for (int r = LG_REASON_PAYMENT_DECLINED; r < LG_REASON_COUNT; r++) {
		if (t->reasons[r])
			json_object_set_new(reasons, lg_reason_name((enum lg_reason)r),
					    json_integer((json_int_t)t->reasons[r]));
	}
	return json_pack("{s:I,s:I,s:o,s:I,s:I}", "CONFIRMED", (json_int_t)t->confirmed,
			 "CANCELLED", (json_int_t)t->cancelled, "cancelReasons", reasons, "pending",
			 (json_int_t)t->pending, "placedWithout202", (json_int_t)t->unacknowledged);
}

/* User plus system CPU time of this process so far. */
static double cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int write_json(struct lg_run *run, const struct figures *fig)
{
	const struct lg_config *cfg = run->cfg;
	json_t *config, *root, *saga;
	int rc;

	config = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:s,s:I,s:s,s:s?,s:I,s:I}", "run", run->id,
			   "url", cfg->url, "rate", (json_int_t)cfg->rate, "concurrency",
			   (json_int_t)cfg->concurrency, "orders", (json_int_t)cfg->orders,
			   "durationSeconds", (json_int_t)cfg->duration_s, "mix", cfg->mix_spec,
			   "seed", (json_int_t)cfg->seed, "sagaSource",
			   cfg->kafka ? "kafka" : "poll", "topic", cfg->kafka ? cfg->topic : NULL,
			   "settleTimeoutSeconds", (json_int_t)cfg->settle_timeout_s,
			   "pollIntervalMs", (json_int_t)cfg->poll_interval_ms);
	saga = json_pack("{s:o,s:o,s:o,s:s,s:f,s:b,s:f,s:f}", "latencyMs", summary_json(&fig->saga),
			 "confirmedLatencyMs", summary_json(&fig->saga_confirmed),
			 "cancelledLatencyMs", summary_json(&fig->saga_cancelled), "latencyMethod",
			 cfg->kafka ? "202 to the terminal event read from the topic; exact"
				    : "202 to the first GET showing a terminal status; exact",
			 "settleSeconds", fig->settle_s, "settleTimedOut", run->settle_timed_out,
			 "lastEndedSeconds", fig->ended_s, "endedPerSecond", fig->ended_per_s);
	root = json_pack("{s:o,s:{s:f,s:I,s:I,s:I,s:f,s:f,s:f,s:b},s:o,s:o,s:o,s:{s:I,s:I,s:I,s:I,"
			 "s:s?},s:i}",
			 "config", config, "placing", "seconds", fig->placing_s, "placed",
			 (json_int_t)run->placed, "answered", (json_int_t)run->answered, "accepted",
			 (json_int_t)run->accepted, "acceptedPerSecond", fig->accepted_per_s,
			 "scheduleLagMaxMs", ms(run->lag_max_us), "scheduleLagMeanMs",
			 fig->lag_mean_ms, "interrupted", *run->stop > 0, "http",
			 http_json(run, fig), "saga", saga, "outcomes", outcomes_json(fig), "watch",
			 "kafkaMessagesRead", (json_int_t)run->follow_read, "kafkaInvalid",
			 (json_int_t)run->follow_invalid, "polls", (json_int_t)run->polls,
			 "pollErrors", (json_int_t)run->poll_errors, "error",
			 run->follow_error[0] ? run->follow_error : NULL, "exitStatus",
			 fig->exit_status);
	if (!root) {
		fprintf(stderr, "%s: cannot build the JSON report\n", LG_NAME);
		return -1;
	}
	/* What the load generator itself cost: it shares the machine with
	 * what it measures. */
	json_object_set_new(root, "cpuSeconds", json_real(cpu_seconds()));
	rc = json_dump_file(root, cfg->json_path,
			    JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(10));
	json_decref(root);
	if (rc) {
		fprintf(stderr, "%s: cannot write %s\n", LG_NAME, cfg->json_path);
		return -1;
	}
	return 0;
}

struct csv {
	FILE *f;
	int64_t start_us;
};

static const char *status_name(unsigned char status)
{
	return status == LG_CONFIRMED	? "CONFIRMED"
	       : status == LG_CANCELLED ? "CANCELLED"
					: "PENDING";
}

static int csv_line(void *arg, const struct lg_order *o)
{
	struct csv *c = arg;

	if (!o->accepted)
		return 0;
	fprintf(c->f, "%s,%.3f,%.3f,", o->id, ms(o->accepted_us - c->start_us), ms(o->http_us));
	if (o->status != LG_PENDING)
		fprintf(c->f, "%.3f",
			ms(o->terminal_us > o->accepted_us ? o->terminal_us - o->accepted_us : 0));
	fprintf(c->f, ",%s,%s\n", status_name(o->status),
		lg_reason_name((enum lg_reason)o->reason));
	return 0;
}

static int write_csv(struct lg_run *run)
{
	struct csv c = {.f = fopen(run->cfg->csv_path, "w"), .start_us = run->start_us};

	if (!c.f) {
		fprintf(stderr, "%s: cannot write %s: %s\n", LG_NAME, run->cfg->csv_path,
			strerror(errno));
		return -1;
	}
	fprintf(c.f, "order_id,accepted_ms,http_ms,saga_ms,status,reason\n");
	lg_orders_each(&run->orders, csv_line, &c);
	if (fclose(c.f)) {
		fprintf(stderr, "%s: cannot write %s: %s\n", LG_NAME, run->cfg->csv_path,
			strerror(errno));
		return -1;
	}
	return 0;
}

int lg_report(struct lg_run *run)
{
	struct figures fig;
	int rc;

	if (work_out(run, &fig))
		fprintf(stderr, "%s: out of memory: some saga samples are missing\n", LG_NAME);
	print_text(run, &fig);
	rc = fig.exit_status;
	if (run->cfg->json_path && write_json(run, &fig))
		rc = LG_FAIL;
	if (run->cfg->csv_path && write_csv(run))
		rc = LG_FAIL;
	return rc;
}
