/* shopctl place: POST /orders to order-service. */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "es/config.h"
#include "httpc.h"
#include "shopctl.h"

#define KEY_HEADER_MAX 300

static void usage(FILE *f)
{
	fprintf(f, "usage: shopctl place --sku SKU[:QTY] [--sku SKU[:QTY]]... [--url URL]\n"
		   "                     [--token TOKEN] [--email ADDRESS] [--customer ID]\n"
		   "                     [--key IDEMPOTENCY_KEY]\n"
		   "\n"
		   "Places an order: POST /orders to order-service, one line per --sku\n"
		   "(QTY defaults to 1). On 202 Accepted it prints the order id on the first\n"
		   "line and order-service's answer on the second, so that\n"
		   "\n"
		   "  id=$(shopctl place --sku mug-classic:2 | head -n 1)\n"
		   "  shopctl follow \"$id\"\n"
		   "\n"
		   "watches the saga. On an error it prints the problem's title, detail and\n"
		   "the fields at fault to stderr and exits 1.\n"
		   "\n"
		   "  --sku SKU[:QTY]   an order line, e.g. mug-classic:2 (repeat for more)\n"
		   "  --url URL         order-service (default $ORDER_SERVICE_URL, else\n"
		   "                    " SHOPCTL_ORDER_URL_DEFAULT ")\n"
		   "  --token TOKEN     paymentToken (default tok_visa; tok_declined and\n"
		   "                    tok_insufficient_funds fail the payment)\n"
		   "  --email ADDRESS   customerEmail (default customer@example.com)\n"
		   "  --customer ID     customerId (default shopctl)\n"
		   "  --key KEY         Idempotency-Key: the same key and body again returns\n"
		   "                    the first answer and creates nothing new\n"
		   "\n"
		   "Exit status: 0 accepted, 1 refused or unreachable, 2 bad command line.\n");
}

/* Appends {"sku", "quantity"} for "SKU[:QTY]" to items. Returns 0, or -1
 * after printing a usage error. */
static int add_line(json_t *items, const char *arg)
{
	const char *colon = strrchr(arg, ':');
	size_t sku_len = colon ? (size_t)(colon - arg) : strlen(arg);
	long long qty = 1;
	json_t *line;

	if (sku_len == 0) {
		shopctl_usage_error("place", "--sku %s: the SKU is empty", arg);
		return -1;
	}
	/* Any whole number: order-service says which ones it takes. */
	if (colon && es_parse_ll(colon + 1, INT_MIN, INT_MAX, &qty)) {
		shopctl_usage_error("place", "--sku %s: the quantity is not a whole number", arg);
		return -1;
	}
	line = json_pack("{s:s%,s:I}", "sku", arg, sku_len, "quantity", (json_int_t)qty);
	if (!line) {
		shopctl_usage_error("place", "--sku %s: not valid UTF-8", arg);
		return -1;
	}
	json_array_append_new(items, line);
	return 0;
}

struct place_args {
	const char *url;
	const char *token;
	const char *email;
	const char *customer;
	const char *key;
	json_t *items; /* owned */
};

/* Returns SHOPCTL_OK, or the exit status of a usage error (printed) or of
 * --help (SHOPCTL_OK with *done). */
static int parse_args(int argc, char **argv, struct place_args *a, bool *done)
{
	static const struct option opts[] = {
		{"url", required_argument, NULL, 'u'},	    {"sku", required_argument, NULL, 's'},
		{"token", required_argument, NULL, 't'},    {"email", required_argument, NULL, 'e'},
		{"customer", required_argument, NULL, 'c'}, {"key", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},	    {NULL, 0, NULL, 0},
	};
	int c;

	*done = false;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			a->url = optarg;
			break;
		case 's':
			if (add_line(a->items, optarg))
				return SHOPCTL_USAGE;
			break;
		case 't':
			a->token = optarg;
			break;
		case 'e':
			a->email = optarg;
			break;
		case 'c':
			a->customer = optarg;
			break;
		case 'k':
			a->key = optarg;
			break;
		case 'h':
			usage(stdout);
			*done = true;
			return SHOPCTL_OK;
		case ':':
			return shopctl_usage_error(argv[0], "%s needs a value", argv[optind - 1]);
		default:
			return shopctl_usage_error(argv[0], "unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return shopctl_usage_error(argv[0], "unexpected argument %s", argv[optind]);
	if (json_array_size(a->items) == 0)
		return shopctl_usage_error(argv[0], "give at least one --sku SKU[:QTY]");
	if (a->key && strlen(a->key) > KEY_HEADER_MAX - 20)
		return shopctl_usage_error(argv[0], "--key is too long");
	return SHOPCTL_OK;
}

/* The 202's body: the order id on one line, the answer on the next. */
static int print_accepted(const struct shopctl_http_reply *reply)
{
	const char *id = json_string_value(json_object_get(reply->json, "orderId"));

	if (!id) {
		shopctl_err("HTTP %ld without an orderId in the answer: %s", reply->status,
			    reply->body);
		return SHOPCTL_FAIL;
	}
	printf("%s\n%s\n", id, reply->body);
	return SHOPCTL_OK;
}

static int post(const struct place_args *a, const char *base)
{
	const char *headers[4] = {"Content-Type: application/json", NULL, NULL, NULL};
	struct shopctl_http_reply reply;
	char url[2100], key_header[KEY_HEADER_MAX], err[2400], auth[ES_AUTH_HEADER_MAX];
	size_t nh = 1;
	json_t *order;
	char *body;
	int rc;

	order = json_pack("{s:s,s:s,s:s,s:O}", "customerId", a->customer, "customerEmail", a->email,
			  "paymentToken", a->token, "items", a->items);
	if (!order) {
		shopctl_err("--customer, --email and --token must be valid UTF-8");
		return SHOPCTL_USAGE;
	}
	body = json_dumps(order, JSON_COMPACT);
	json_decref(order);
	if (!body) {
		shopctl_err("out of memory");
		return SHOPCTL_FAIL;
	}
	if (a->key) {
		snprintf(key_header, sizeof(key_header), "Idempotency-Key: %s", a->key);
		headers[nh++] = key_header;
	}
	/* With the shop's key at hand, the customer's own token. */
	if (es_auth_header_from_env(ES_AUTH_CUSTOMER, a->customer, SHOPCTL_TOKEN_TTL_S, auth,
				    sizeof(auth), err, sizeof(err))) {
		shopctl_err("AUTH_JWT_KEY_FILE: %s", err);
		free(body);
		return SHOPCTL_FAIL;
	}
	if (auth[0])
		headers[nh++] = auth;
	snprintf(url, sizeof(url), "%s/orders", base);
	if (shopctl_http("POST", url, headers, body, &reply, err, sizeof(err))) {
		shopctl_err("%s (is order-service running? --url or ORDER_SERVICE_URL)", err);
		free(body);
		return SHOPCTL_FAIL;
	}
	free(body);
	if (reply.status >= 200 && reply.status < 300) {
		rc = print_accepted(&reply);
	} else {
		shopctl_http_print_problem(&reply);
		rc = SHOPCTL_FAIL;
	}
	shopctl_http_reply_release(&reply);
	return rc;
}

int shopctl_cmd_place(int argc, char **argv)
{
	struct place_args a = {
		.token = "tok_visa",
		.email = "customer@example.com",
		.customer = "shopctl",
		.items = json_array(),
	};
	char base[2048], err[2200];
	bool done;
	int rc;

	rc = parse_args(argc, argv, &a, &done);
	if (rc || done)
		goto out;
	if (shopctl_order_url(a.url, base, sizeof(base), err, sizeof(err))) {
		rc = shopctl_usage_error(argv[0], "%s", err);
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		shopctl_err("cannot initialise libcurl");
		rc = SHOPCTL_FAIL;
		goto out;
	}
	rc = post(&a, base);
	curl_global_cleanup();
out:
	json_decref(a.items);
	return rc;
}
