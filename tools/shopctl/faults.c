/*
 * shopctl faults: the fault switches of one daemon (es/faults.h), through
 * its admin server (ADMIN_PORT, on 127.0.0.1).
 */
#include <stdlib.h>
#include <string.h>

#include "es/config.h"
#include "httpc.h"
#include "shopctl.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: shopctl faults [--admin URL] list\n"
		   "       shopctl faults [--admin URL] set NAME VALUE\n"
		   "       shopctl faults [--admin URL] clear [NAME]\n"
		   "\n"
		   "The fault switches of one daemon, which break it on purpose while it\n"
		   "runs: pause (its consumer takes nothing), fail_next N (N batches fail\n"
		   "transiently), crash_after_commit (SIGKILL after the next commit), and\n"
		   "its own (payment-service: payment_latency_ms, payment_decline_percent).\n"
		   "Each is off by default; /metrics shows each as es_fault_<name>.\n"
		   "\n"
		   "  list   one line per switch: name, value, off value, range, what it does\n"
		   "  set    sets NAME to VALUE\n"
		   "  clear  sets NAME, or every switch, back to off\n"
		   "\n"
		   "URL is the daemon's admin server (--admin, else ADMIN_URL), e.g.\n"
		   "http://127.0.0.1:9081: a daemon started with ADMIN_PORT=9081 serves its\n"
		   "switches there, to this machine only.\n"
		   "\n"
		   "Exit status: 0 done, 1 failed (no answer, unknown switch, value out of\n"
		   "range), 2 bad command line.\n");
}

static void print_switch(json_t *s)
{
	printf("%-24s %6lld   off %lld, %lld..%lld   %s\n",
	       json_string_value(json_object_get(s, "name")),
	       (long long)json_integer_value(json_object_get(s, "value")),
	       (long long)json_integer_value(json_object_get(s, "off")),
	       (long long)json_integer_value(json_object_get(s, "min")),
	       (long long)json_integer_value(json_object_get(s, "max")),
	       json_string_value(json_object_get(s, "help")));
}

/* One request; prints the switch(es) answered. */
static int request(const char *method, const char *admin, const char *path, const char *body)
{
	struct shopctl_http_reply reply;
	char errstr[512];
	json_t *list;
	size_t i;
	json_t *s;
	int rc = SHOPCTL_FAIL;

	if (shopctl_admin_http(method, admin, path, body, &reply, errstr, sizeof(errstr))) {
		shopctl_err("faults: %s", errstr);
		return SHOPCTL_FAIL;
	}
	if (reply.status != 200 || !reply.json) {
		shopctl_http_print_problem(&reply);
		goto out;
	}
	list = json_object_get(reply.json, "faults");
	if (json_is_array(list)) {
		json_array_foreach(list, i, s) print_switch(s);
	} else {
		print_switch(reply.json);
	}
	rc = SHOPCTL_OK;
out:
	shopctl_http_reply_release(&reply);
	return rc;
}

int shopctl_cmd_faults(int argc, char **argv)
{
	const char *admin = es_config_str("ADMIN_URL", NULL);
	char path[256], body[64];
	long long value;
	int i = 1;

	if (argc > 1 && shopctl_is_help(argv[1])) {
		usage(stdout);
		return SHOPCTL_OK;
	}
	if (argc > 2 && !strcmp(argv[1], "--admin")) {
		admin = argv[2];
		i = 3;
	}
	if (!admin || (strncmp(admin, "http://", 7) && strncmp(admin, "https://", 8)))
		return shopctl_usage_error("faults", "name the daemon's admin server: --admin "
						     "http://127.0.0.1:PORT, or ADMIN_URL");
	if (i >= argc)
		return shopctl_usage_error("faults", "list, set or clear?");
	if (!strcmp(argv[i], "list") && argc == i + 1) {
		return request("GET", admin, "/faults", NULL);
	}
	if (!strcmp(argv[i], "set") && argc == i + 3) {
		if (es_parse_ll(argv[i + 2], -1000000000LL, 1000000000LL, &value))
			return shopctl_usage_error("faults", "VALUE %s is not a whole number",
						   argv[i + 2]);
		snprintf(path, sizeof(path), "/faults/%s", argv[i + 1]);
		snprintf(body, sizeof(body), "{\"value\":%lld}", value);
		return request("PUT", admin, path, body);
	}
	if (!strcmp(argv[i], "clear") && argc <= i + 2) {
		snprintf(path, sizeof(path), "/faults%s%s", argc == i + 2 ? "/" : "",
			 argc == i + 2 ? argv[i + 1] : "");
		return request("DELETE", admin, path, NULL);
	}
	return shopctl_usage_error("faults", "expected list, set NAME VALUE or clear [NAME]");
}
