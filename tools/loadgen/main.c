/*
 * eventshop-loadgen: load for order-service's front door, and what it did
 * to the saga. The run's story: read the command line, start following
 * the orders topic from its end, place the orders, wait for every accepted
 * order to end, report.
 */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <curl/curl.h>

#include "es/config.h"
#include "es/envelope.h"
#include "es/log.h"
#include "loadgen.h"

#define DEFAULT_RATE 50
#define DEFAULT_CONCURRENCY 16
#define DEFAULT_DURATION_S 10
#define DEFAULT_SETTLE_S 60
#define DEFAULT_POLL_MS 100
#define DEFAULT_POLL_CONCURRENCY 32
#define DEFAULT_TIMEOUT_MS 10000
#define MAX_CONCURRENCY 10000
#define MAX_WAIT_US 100000 /* the loop looks at the clock at least this often */

static volatile sig_atomic_t stop_signals;

static void on_signal(int sig)
{
	(void)sig;
	stop_signals++;
}

/* LG_MIX_DEFAULT, one entry per line. */
static void print_default_mix(FILE *f)
{
	const char *p = LG_MIX_DEFAULT;

	for (;;) {
		size_t len = strcspn(p, ",");

		fprintf(f, "  %.*s%s\n", (int)len, p, p[len] ? "," : "");
		if (!p[len])
			break;
		p += len + 1;
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " LG_NAME " [--rate N|max] [--concurrency C] [--orders N] [--duration S]\n"
		"                         [--url URL] [--mix SPEC] [--no-kafka] [--bootstrap "
		"SERVERS]\n"
		"                         [--topic NAME] [--settle-timeout S] [--json FILE] ...\n"
		"\n"
		"Places orders on order-service (POST /orders, a unique Idempotency-Key each)\n"
		"at a fixed rate or as fast as it answers, follows every accepted order to\n"
		"CONFIRMED or CANCELLED, and reports accepted/s, HTTP statuses, HTTP latency,\n"
		"saga latency (202 to terminal status) and the outcomes. A progress line goes\n"
		"to stderr every second, the report to stdout.\n"
		"\n"
		"Load:\n"
		"  --rate N|max         orders per second (default %d), on a fixed schedule:\n"
		"                       an order that is due while every slot is busy starts\n"
		"                       as soon as one frees, and how late it started is\n"
		"                       reported as schedule lag; max: keep --concurrency\n"
		"                       POSTs in flight all the time\n"
		"  --concurrency C      POSTs in flight at most (default %d)\n"
		"  --orders N           place N orders\n"
		"  --duration S         place orders for S seconds (default %d when neither\n"
		"                       --orders nor --duration is given; both: whichever ends\n"
		"                       first)\n"
		"  --mix SPEC           what to order: SKU:QTY[+SKU:QTY...]:TOKEN:WEIGHT,...\n"
		"                       each entry an order's lines, its paymentToken and its\n"
		"                       weight (default: see below)\n"
		"  --seed N             seed of the mix's random choices (default: random)\n"
		"  --url URL[,URL...]   order-service (default $ORDER_SERVICE_URL, else\n"
		"                       " LG_URL_DEFAULT "); several instances: the POSTs\n"
		"                       go round robin over them, as a load balancer\n"
		"                       would send them, and GETs to the first\n"
		"                       or the synchronous twin's sync-order\n"
		"                       (lessons/sync-vs-events, with --no-kafka): its 201\n"
		"                       carries the order's end, a saga of 0 ms\n"
		"  --timeout MS         per HTTP request (default %d)\n"
		"\n"
		"Saga:\n"
		"  --bootstrap SERVERS  Kafka (default $KAFKA_BOOTSTRAP_SERVERS, else\n"
		"                       127.0.0.1:9092; other KAFKA_* pass to librdkafka)\n"
		"  --topic NAME         the orders topic (default $TOPIC_ORDERS, else orders):\n"
		"                       read from its end as of the start, in no consumer\n"
		"                       group; an order ends when its OrderConfirmed or\n"
		"                       OrderCancelled is read, and that moment ends its\n"
		"                       saga latency\n"
		"  --no-kafka           poll GET /orders/{id} of each pending order instead\n"
		"  --poll-interval MS   --no-kafka: between two GETs of one order (default %d)\n"
		"  --poll-concurrency N --no-kafka: GETs in flight at most (default %d)\n"
		"  --settle-timeout S   after the last POST, wait at most S seconds for every\n"
		"                       accepted order to end (default %d)\n"
		"\n"
		"Output:\n"
		"  --json FILE          also write every figure to FILE as JSON\n"
		"  --csv FILE           and one line per accepted order to FILE: order_id,\n"
		"                       accepted_ms (since the first POST), http_ms, saga_ms\n"
		"                       (empty while pending), status, reason\n"
		"  --quiet              no progress line\n"
		"\n"
		"Latency percentiles are exact (every sample kept, nearest rank). Every order\n"
		"has customerId loadgen-<run id>. The default mix (weights sum to 100):\n",
		DEFAULT_RATE, DEFAULT_CONCURRENCY, DEFAULT_DURATION_S, DEFAULT_TIMEOUT_MS,
		DEFAULT_POLL_MS, DEFAULT_POLL_CONCURRENCY, DEFAULT_SETTLE_S);
	print_default_mix(f);
	fprintf(f, "\n"
		   "Ctrl-C stops placing orders and goes on to settle; a second one skips the\n"
		   "wait and reports.\n"
		   "\n"
		   "Exit status: 0 every order placed was accepted (202) and ended; 1 anything\n"
		   "else (another status, no answer, an order still pending, Kafka failed);\n"
		   "2 bad command line.\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(LG_NAME ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\ntry '" LG_NAME " --help'\n", stderr);
	return LG_USAGE;
}

/* --url, else ORDER_SERVICE_URL, else the default. */
static int set_url(struct lg_config *cfg, const char *flag)
{
	const char *list = flag ? flag : es_config_str("ORDER_SERVICE_URL", LG_URL_DEFAULT);
	char err[256];

	if (lg_urls_parse(cfg, list, err, sizeof(err)))
		return usage_error("%s: %s", flag ? "--url" : "ORDER_SERVICE_URL", err);
	return 0;
}

enum {
	OPT_NO_KAFKA = 256,
	OPT_SETTLE,
	OPT_POLL_INTERVAL,
	OPT_POLL_CONCURRENCY,
};

/* A numeric option: "--name VALUE: not a whole number from min to max". */
#define NUMBER(field, min, max)                                                           \
	do {                                                                              \
		long long v_;                                                             \
		if (es_parse_ll(optarg, (min), (max), &v_))                               \
			return usage_error("%s %s: not a whole number from %lld to %lld", \
					   argv[optind - 1], optarg, (long long)(min),    \
					   (long long)(max));                             \
		field = v_;                                                               \
	} while (0)

/* Returns 0, LG_USAGE (message printed), or -1 after --help. */
static int parse_args(int argc, char **argv, struct lg_config *cfg)
{
	static const struct option opts[] = {
		{"url", required_argument, NULL, 'u'},
		{"rate", required_argument, NULL, 'r'},
		{"concurrency", required_argument, NULL, 'c'},
		{"orders", required_argument, NULL, 'n'},
		{"duration", required_argument, NULL, 'd'},
		{"mix", required_argument, NULL, 'm'},
		{"seed", required_argument, NULL, 's'},
		{"timeout", required_argument, NULL, 't'},
		{"bootstrap", required_argument, NULL, 'b'},
		{"topic", required_argument, NULL, 'T'},
		{"no-kafka", no_argument, NULL, OPT_NO_KAFKA},
		{"poll-interval", required_argument, NULL, OPT_POLL_INTERVAL},
		{"poll-concurrency", required_argument, NULL, OPT_POLL_CONCURRENCY},
		{"settle-timeout", required_argument, NULL, OPT_SETTLE},
		{"json", required_argument, NULL, 'j'},
		{"csv", required_argument, NULL, 'C'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *url = NULL;
	char err[512];
	long long seed;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hq", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			url = optarg;
			break;
		case 'r':
			if (!strcmp(optarg, "max"))
				cfg->rate = 0;
			else if (es_parse_ll(optarg, 1, LG_RATE_MAX, &cfg->rate))
				return usage_error("--rate %s: not max or a whole number from 1 "
						   "to %d",
						   optarg, LG_RATE_MAX);
			break;
		case 'c':
			NUMBER(cfg->concurrency, 1, MAX_CONCURRENCY);
			break;
		case 'n':
			NUMBER(cfg->orders, 1, 1000000000);
			break;
		case 'd':
			NUMBER(cfg->duration_s, 1, 86400);
			break;
		case 'm':
			cfg->mix_spec = optarg;
			break;
		case 's':
			NUMBER(seed, 0, INT64_MAX);
			cfg->seed = (uint64_t)seed;
			break;
		case 't':
			NUMBER(cfg->timeout_ms, 1, 3600000);
			break;
		case 'b':
			cfg->bootstrap = optarg;
			break;
		case 'T':
			cfg->topic = optarg;
			break;
		case OPT_NO_KAFKA:
			cfg->kafka = false;
			break;
		case OPT_POLL_INTERVAL:
			NUMBER(cfg->poll_interval_ms, 1, 60000);
			break;
		case OPT_POLL_CONCURRENCY:
			NUMBER(cfg->poll_concurrency, 1, MAX_CONCURRENCY);
			break;
		case OPT_SETTLE:
			NUMBER(cfg->settle_timeout_s, 0, 86400);
			break;
		case 'j':
			cfg->json_path = optarg;
			break;
		case 'C':
			cfg->csv_path = optarg;
			break;
		case 'q':
			cfg->quiet = true;
			break;
		case 'h':
			usage(stdout);
			return -1;
		case ':':
			return usage_error("%s needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument %s", argv[optind]);
	if (!cfg->orders && !cfg->duration_s)
		cfg->duration_s = DEFAULT_DURATION_S;
	if (!*cfg->topic)
		return usage_error("--topic is empty");
	if (lg_mix_parse(&cfg->mix, cfg->mix_spec, err, sizeof(err)))
		return usage_error("--mix: %s", err);
	return set_url(cfg, url);
}

static int run_init(struct lg_run *run, const struct lg_config *cfg)
{
	char uuid[ES_UUID_LEN + 1];

	memset(run, 0, sizeof(*run));
	run->cfg = cfg;
	es_uuid_new(uuid);
	memcpy(run->id, uuid, 8);
	run->id[8] = '\0';
	snprintf(run->customer_id, sizeof(run->customer_id), "loadgen-%s", run->id);
	run->rng = cfg->seed;
	run->stop = &stop_signals;
	run->total = lg_pacer_total(cfg->rate, cfg->orders, cfg->duration_s);
	return lg_orders_init(&run->orders);
}

static void run_release(struct lg_run *run)
{
	lg_follow_stop(run);
	lg_http_release(run);
	lg_samples_release(&run->http_us);
	lg_orders_release(&run->orders);
}

/* Starts every POST that is due and has a free slot. */
static void place_due(struct lg_run *run, int64_t now)
{
	uint64_t due = lg_pacer_due_count(&run->pacer, now);

	if (due > run->total)
		due = run->total;
	while (run->placed < due && run->inflight < (uint64_t)run->cfg->concurrency) {
		int64_t lag = run->cfg->rate ? now - lg_pacer_due_us(&run->pacer, run->placed) : 0;

		if (lg_http_post(run, run->placed, now)) {
			run->start_failures++;
			snprintf(run->last_error, sizeof(run->last_error),
				 "cannot start a POST (out of memory)");
			return;
		}
		if (lag > run->lag_max_us)
			run->lag_max_us = lag;
		run->lag_sum_us += (double)lag;
	}
}

static bool placing_over(const struct lg_run *run, int64_t now)
{
	const struct lg_config *cfg = run->cfg;

	return run->placed >= run->total || run->start_failures || stop_signals > 0 ||
	       (cfg->duration_s && now >= run->start_us + cfg->duration_s * 1000000);
}

/* How long the loop may sleep: until the next POST or GET is due, the
 * next progress line, or MAX_WAIT_US. */
static int wait_ms(struct lg_run *run, bool placing, int64_t now)
{
	int64_t wake = now + MAX_WAIT_US, t;

	if (placing && run->cfg->rate && run->inflight < (uint64_t)run->cfg->concurrency) {
		t = lg_pacer_due_us(&run->pacer, run->placed);
		if (t < wake)
			wake = t;
	}
	if (!run->cfg->quiet && run->progress_next_us < wake)
		wake = run->progress_next_us;
	if (!run->cfg->kafka) {
		t = lg_http_poll_next_us(run);
		if (t < wake)
			wake = t;
	}
	return wake <= now ? 0 : (int)((wake - now + 999) / 1000);
}

/* Places the orders, then waits for them to settle. */
static void place_and_settle(struct lg_run *run)
{
	const struct lg_config *cfg = run->cfg;
	int64_t now = lg_now_us(), settle_deadline = 0;
	bool placing = true, told = false;
	size_t accepted, settled;

	run->start_us = now;
	run->progress_last_us = now;
	run->progress_next_us = now + 1000000;
	lg_pacer_init(&run->pacer, cfg->rate, now);
	for (;;) {
		if (placing)
			place_due(run, now);
		if (!cfg->kafka)
			lg_http_poll_due(run, now);
		lg_http_perform(run);
		now = lg_now_us();
		lg_progress(run, now, false);
		if (stop_signals && !told && !cfg->quiet) {
			fprintf(stderr,
				"%s: stopping: no new orders; settling the accepted ones "
				"(interrupt again to skip)\n",
				LG_NAME);
			told = true;
		}
		if (placing && placing_over(run, now))
			placing = false;
		if (!placing && run->inflight == 0 && !run->placing_end_us) {
			run->placing_end_us = now;
			settle_deadline = now + cfg->settle_timeout_s * 1000000;
		}
		if (run->placing_end_us) {
			lg_orders_counts(&run->orders, &accepted, &settled);
			if (settled >= accepted || stop_signals > 1)
				break;
			if (now >= settle_deadline) {
				run->settle_timed_out = true;
				break;
			}
		}
		if (cfg->kafka && lg_follow_failed(run)) {
			fprintf(stderr, "%s: %s\n", LG_NAME, run->follow_error);
			if (!run->placing_end_us)
				run->placing_end_us = now;
			break;
		}
		lg_http_wait(run, wait_ms(run, placing, now));
		now = lg_now_us();
	}
	run->settle_end_us = now;
	lg_progress(run, now, true);
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static void announce(const struct lg_run *run)
{
	const struct lg_config *cfg = run->cfg;

	if (cfg->quiet)
		return;
	fprintf(stderr, "%s: run %s: ", LG_NAME, run->id);
	if (cfg->orders)
		fprintf(stderr, "%lld orders", cfg->orders);
	if (cfg->orders && cfg->duration_s)
		fprintf(stderr, " or ");
	if (cfg->duration_s)
		fprintf(stderr, "%lld s", cfg->duration_s);
	if (cfg->rate)
		fprintf(stderr, " at %lld/s", cfg->rate);
	else
		fprintf(stderr, " as fast as possible");
	fprintf(stderr, " (%ld in flight at most) to %s; saga via %s %s\n", cfg->concurrency,
		cfg->url, cfg->kafka ? "topic" : "GET", cfg->kafka ? cfg->topic : "/orders/{id}");
}

int main(int argc, char **argv)
{
	struct lg_config cfg = {
		.rate = DEFAULT_RATE,
		.concurrency = DEFAULT_CONCURRENCY,
		.mix_spec = LG_MIX_DEFAULT,
		.kafka = true,
		.bootstrap = es_config_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
		.topic = es_config_str("TOPIC_ORDERS", "orders"),
		.settle_timeout_s = DEFAULT_SETTLE_S,
		.poll_interval_ms = DEFAULT_POLL_MS,
		.poll_concurrency = DEFAULT_POLL_CONCURRENCY,
		.timeout_ms = DEFAULT_TIMEOUT_MS,
	};
	enum es_log_level level = ES_LOG_WARN;
	struct lg_run run;
	char err[1024];
	int rc;

	if (getrandom(&cfg.seed, sizeof(cfg.seed), 0) != (ssize_t)sizeof(cfg.seed))
		cfg.seed = (uint64_t)lg_now_us();
	/* What --seed takes, so that the report's seed replays the run. */
	cfg.seed &= (uint64_t)INT64_MAX;
	rc = parse_args(argc, argv, &cfg);
	if (rc) {
		lg_mix_release(&cfg.mix);
		return rc < 0 ? LG_OK : rc;
	}
	/* librdkafka's complaints go to stderr as JSON lines, as the
	 * daemons' do. */
	if (es_log_level_parse(es_config_str("LOG_LEVEL", "warn"), &level)) {
		lg_mix_release(&cfg.mix);
		return usage_error("LOG_LEVEL is not one of debug, info, warn, error");
	}
	es_log_init(LG_NAME, level);
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		fprintf(stderr, "%s: cannot initialise libcurl\n", LG_NAME);
		lg_mix_release(&cfg.mix);
		return LG_FAIL;
	}
	rc = LG_FAIL;
	if (run_init(&run, &cfg)) {
		fprintf(stderr, "%s: out of memory\n", LG_NAME);
		goto out;
	}
	if (lg_http_init(&run, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", LG_NAME, err);
		goto out_run;
	}
	if (cfg.kafka && lg_follow_start(&run, err, sizeof(err))) {
		fprintf(stderr,
			"%s: %s (--bootstrap and --topic name the orders topic; --no-kafka "
			"polls GET /orders/{id} instead)\n",
			LG_NAME, err);
		goto out_run;
	}
	install_signals();
	announce(&run);
	place_and_settle(&run);
	/* Stopped before reporting, so that its counts are final. */
	lg_follow_stop(&run);
	rc = lg_report(&run);
out_run:
	run_release(&run);
out:
	curl_global_cleanup();
	lg_mix_release(&cfg.mix);
	return rc;
}
