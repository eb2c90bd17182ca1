/* shopctl follow: watch one order's saga through GET /orders/{id}. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "es/config.h"
#include "es/clock.h"
#include "es/envelope.h"
#include "httpc.h"
#include "shopctl.h"

#define POLL_MS 200
#define DEFAULT_TIMEOUT_S 60
#define MAX_TIMEOUT_S 86400

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shopctl follow ORDER_ID [--url URL] [--timeout SECONDS]\n"
		"\n"
		"Watches an order's saga: asks order-service for GET /orders/ORDER_ID every\n"
		"%d ms and prints each new timeline entry as it appears (its time, event\n"
		"type and the service that produced it), then the final status, and the\n"
		"cancelReason of a cancelled order, once the order is CONFIRMED or\n"
		"CANCELLED. Compensation (InventoryReleased, PaymentRefunded) may still\n"
		"follow a cancellation; run follow again to see it.\n"
		"\n"
		"While order-service cannot be reached or answers 5xx, follow keeps trying\n"
		"until the timeout.\n"
		"\n"
		"  --url URL          order-service (default $ORDER_SERVICE_URL, else\n"
		"                     " SHOPCTL_ORDER_URL_DEFAULT ")\n"
		"  --timeout SECONDS  give up after this long (default %d; 0: look once)\n"
		"\n"
		"Exit status: 0 the order is terminal, 1 timeout, unknown order (404) or\n"
		"another error, 2 bad command line.\n",
		POLL_MS, DEFAULT_TIMEOUT_S);
}

/* The timeline entries already printed, by id. */
struct seen {
	char **ids;
	size_t n, cap;
};

static bool seen_has(const struct seen *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++) {
		if (!strcmp(s->ids[i], id))
			return true;
	}
	return false;
}

static int seen_add(struct seen *s, const char *id)
{
	char *copy;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **grown = realloc(s->ids, cap * sizeof(*grown));

		if (!grown)
			return -1;
		s->ids = grown;
		s->cap = cap;
	}
	copy = strdup(id);
	if (!copy)
		return -1;
	s->ids[s->n++] = copy;
	return 0;
}

static void seen_release(struct seen *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->ids[i]);
	free(s->ids);
}

/* A string from order-service, shown safely (it may come from an event). */
static void put(const char *s, int width)
{
	size_t len = s ? strlen(s) : 1;

	shopctl_print_escaped(stdout, s ? s : "?", len, 0, NULL);
	for (int pad = width - (int)len; pad > 0; pad--)
		putchar(' ');
}

/* Prints the entries of the order's timeline not printed before. Entries
 * are keyed by their event id (time, type and source without one). */
static int print_new_entries(const json_t *order, struct seen *seen)
{
	json_t *timeline = json_object_get(order, "timeline");
	json_t *e;
	size_t i;

	json_array_foreach(timeline, i, e)
	{
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *type = json_string_value(json_object_get(e, "type"));
		const char *source = json_string_value(json_object_get(e, "source"));
		const char *t = json_string_value(json_object_get(e, "time"));
		char key[512];

		if (id)
			snprintf(key, sizeof(key), "%s", id);
		else
			snprintf(key, sizeof(key), "%s|%s|%s", t ? t : "", type ? type : "",
				 source ? source : "");
		if (seen_has(seen, key))
			continue;
		if (seen_add(seen, key)) {
			shopctl_err("out of memory");
			return -1;
		}
		put(t, ES_TIME_LEN);
		fputs("  ", stdout);
		put(type, 18);
		fputs("  ", stdout);
		put(source, 0);
		putchar('\n');
	}
	fflush(stdout);
	return 0;
}

static bool is_terminal(const char *status)
{
	return status && (!strcmp(status, "CONFIRMED") || !strcmp(status, "CANCELLED"));
}

static void print_final(const json_t *order)
{
	const char *status = json_string_value(json_object_get(order, "status"));
	const char *reason = json_string_value(json_object_get(order, "cancelReason"));

	fputs("status: ", stdout);
	put(status, 0);
	if (reason) {
		fputs(", cancelReason: ", stdout);
		put(reason, 0);
	}
	putchar('\n');
	fflush(stdout);
}

struct follow {
	const char *order_id;
	char url[2200];
	long long timeout_s;
	struct seen seen;
	char last_status[32]; /* the order's, when known */
	char last_error[2400]; /* the last transient failure */
	bool warned;
	char auth[ES_AUTH_HEADER_MAX]; /* an operator's token line, or "" */
};

/* Remembers a transient failure, and says so once. */
static void transient(struct follow *f, const char *what)
{
	snprintf(f->last_error, sizeof(f->last_error), "%s", what);
	if (!f->warned && f->timeout_s > 0)
		shopctl_err("%s; trying again until the timeout", what);
	f->warned = true;
}

#define GO_ON (-1) /* poll_once: not decided yet */

/* One GET. Returns GO_ON, or an exit status. */
static int poll_once(struct follow *f)
{
	struct shopctl_http_reply reply;
	char err[2400];
	const char *status;
	int rc = GO_ON;

	const char *headers[2] = {f->auth[0] ? f->auth : NULL, NULL};

	if (shopctl_http("GET", f->url, headers, NULL, &reply, err, sizeof(err))) {
		transient(f, err);
		return GO_ON;
	}
	if (reply.status == 404) {
		shopctl_err("order %s not found (HTTP 404 from %s)", f->order_id, f->url);
		rc = SHOPCTL_FAIL;
	} else if (reply.status >= 500) {
		snprintf(err, sizeof(err), "GET %s: HTTP %ld", f->url, reply.status);
		transient(f, err);
	} else if (reply.status != 200 || !json_is_object(reply.json)) {
		shopctl_http_print_problem(&reply);
		rc = SHOPCTL_FAIL;
	} else if (print_new_entries(reply.json, &f->seen)) {
		rc = SHOPCTL_FAIL;
	} else {
		status = json_string_value(json_object_get(reply.json, "status"));
		snprintf(f->last_status, sizeof(f->last_status), "%s", status ? status : "?");
		if (is_terminal(status)) {
			print_final(reply.json);
			rc = SHOPCTL_OK;
		}
	}
	shopctl_http_reply_release(&reply);
	return rc;
}

static int follow_order(struct follow *f)
{
	long long deadline = es_monotonic_ms() + f->timeout_s * 1000;

	for (;;) {
		/* Every POLL_MS from the start of one request to the next. */
		long long next = es_monotonic_ms() + POLL_MS, now;
		int rc = poll_once(f);

		if (rc != GO_ON)
			return rc;
		now = es_monotonic_ms();
		if (now >= deadline)
			break;
		es_sleep_ms((next < deadline ? next : deadline) - now);
	}
	if (f->last_status[0])
		shopctl_err("timed out after %lld s: order %s is still %s", f->timeout_s,
			    f->order_id, f->last_status);
	else
		shopctl_err("timed out after %lld s: %s", f->timeout_s, f->last_error);
	return SHOPCTL_FAIL;
}

int shopctl_cmd_follow(int argc, char **argv)
{
	static const struct option opts[] = {
		{"url", required_argument, NULL, 'u'},
		{"timeout", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct follow f = {.timeout_s = DEFAULT_TIMEOUT_S};
	const char *url_flag = NULL;
	char base[2048], err[2200];
	int c, rc;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			url_flag = optarg;
			break;
		case 't':
			if (es_parse_ll(optarg, 0, MAX_TIMEOUT_S, &f.timeout_s))
				return shopctl_usage_error(argv[0],
							   "--timeout %s: not a whole number of "
							   "seconds from 0 to %d",
							   optarg, MAX_TIMEOUT_S);
			break;
		case 'h':
			usage(stdout);
			return SHOPCTL_OK;
		case ':':
			return shopctl_usage_error(argv[0], "%s needs a value", argv[optind - 1]);
		default:
			return shopctl_usage_error(argv[0], "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return shopctl_usage_error(argv[0], "which order? give its ORDER_ID");
	if (optind + 1 < argc)
		return shopctl_usage_error(argv[0], "unexpected argument %s", argv[optind + 1]);
	f.order_id = argv[optind];
	/* Order ids are UUIDs; anything else could also leave the path. */
	if (!es_uuid_valid(f.order_id))
		return shopctl_usage_error(argv[0], "ORDER_ID \"%s\" is not a UUID", f.order_id);
	if (shopctl_order_url(url_flag, base, sizeof(base), err, sizeof(err)))
		return shopctl_usage_error(argv[0], "%s", err);
	snprintf(f.url, sizeof(f.url), "%s/orders/%s", base, f.order_id);
	/* Following is an operator's look at any order: with the shop's key at
	 * hand, an operator's token. */
	if (es_auth_header_from_env(ES_AUTH_OPERATOR, NULL, SHOPCTL_TOKEN_TTL_S, f.auth,
				    sizeof(f.auth), err, sizeof(err))) {
		shopctl_err("AUTH_JWT_KEY_FILE: %s", err);
		return SHOPCTL_FAIL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		shopctl_err("cannot initialise libcurl");
		return SHOPCTL_FAIL;
	}
	rc = follow_order(&f);
	seen_release(&f.seen);
	curl_global_cleanup();
	return rc;
}
