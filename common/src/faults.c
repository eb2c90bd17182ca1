/*
 * faults: the run-time fault switches and their admin server (see
 * es/faults.h).
 *
 * The table is process-wide, as the switches are the process's: defined
 * before the daemon serves (one thread), read and written afterwards from
 * any thread through atomics only.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "es/config.h"
#include "es/faults.h"
#include "es/log.h"

#define NAME_MAX_LEN 48

struct fault {
	const char *name;
	const char *help;
	long min, max, off;
	atomic_long value;
};

#ifdef ES_FAULT_POINTS
#define CRASH_MAX 1
#else
#define CRASH_MAX 0 /* this build cannot die on purpose: the switch stays off */
#endif

static struct fault faults[ES_FAULTS_MAX] = {
	[ES_FAULT_PAUSE] = {"pause", "1: the consumer loop takes no batch until set back to 0", 0,
			    1, 0, 0},
	[ES_FAULT_FAIL_NEXT] = {"fail_next",
				"N: the next N batches fail transiently (RETRY), as with a "
				"database that is away",
				0, 1000000, 0, 0},
	[ES_FAULT_CRASH_AFTER_COMMIT] = {"crash_after_commit",
					 "1: SIGKILL right after the next batch committed, before "
					 "its offsets are stored",
					 0, CRASH_MAX, 0, 0},
};
static int nfaults = ES_FAULT_BUILTIN_COUNT;

static struct fault *by_id(int id)
{
	return id >= 0 && id < nfaults ? &faults[id] : NULL;
}

static int find(const char *name)
{
	for (int i = 0; i < nfaults; i++) {
		if (!strcmp(faults[i].name, name))
			return i;
	}
	return -1;
}

static bool name_valid(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len > NAME_MAX_LEN)
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == len;
}

int es_fault_define(const char *name, const char *help, long min, long max, long off)
{
	int id;

	if (!name_valid(name) || min > max || off < min || off > max)
		return -1;
	id = find(name);
	if (id >= 0)
		return id;
	if (nfaults == ES_FAULTS_MAX)
		return -1;
	id = nfaults++;
	faults[id].name = name;
	faults[id].help = help ? help : "";
	faults[id].min = min;
	faults[id].max = max;
	faults[id].off = off;
	atomic_store(&faults[id].value, off);
	return id;
}

long es_fault_value(int id)
{
	struct fault *f = by_id(id);

	return f ? atomic_load(&f->value) : 0;
}

bool es_fault_on(int id)
{
	struct fault *f = by_id(id);

	return f && atomic_load(&f->value) != f->off;
}

bool es_fault_take(int id)
{
	struct fault *f = by_id(id);
	long v;

	if (!f)
		return false;
	v = atomic_load(&f->value);
	/* A counter counts down to off; a compare-and-swap so that two
	 * threads never both take the last one. */
	while (v > f->off) {
		if (atomic_compare_exchange_weak(&f->value, &v, v - 1))
			return true;
	}
	return false;
}

int es_fault_set(const char *name, long value)
{
	int id = find(name);

	if (id < 0)
		return -1;
	if (value < faults[id].min || value > faults[id].max)
		return -2;
	atomic_store(&faults[id].value, value);
	es_warn("fault switch %s set to %ld%s", name, value,
		value == faults[id].off ? " (off)" : "");
	return 0;
}

void es_fault_clear_all(void)
{
	for (int i = 0; i < nfaults; i++)
		atomic_store(&faults[i].value, faults[i].off);
}

static json_t *fault_json(const struct fault *f)
{
	return json_pack("{s:s,s:I,s:I,s:I,s:I,s:s}", "name", f->name, "value",
			 (json_int_t)atomic_load(&f->value), "off", (json_int_t)f->off, "min",
			 (json_int_t)f->min, "max", (json_int_t)f->max, "help", f->help);
}

json_t *es_faults_json(void)
{
	json_t *list = json_array();

	for (int i = 0; i < nfaults; i++)
		json_array_append_new(list, fault_json(&faults[i]));
	return json_pack("{s:o}", "faults", list);
}

static int gauge(void *arg, double *value)
{
	*value = (double)atomic_load(&((struct fault *)arg)->value);
	return 0;
}

int es_faults_register_metrics(struct es_metrics *reg, char *errstr, size_t errstr_size)
{
	char name[NAME_MAX_LEN + 16], help[256];

	for (int i = 0; i < nfaults; i++) {
		snprintf(name, sizeof(name), "es_fault_%s", faults[i].name);
		snprintf(help, sizeof(help), "Fault switch %s (off at %ld): %s", faults[i].name,
			 faults[i].off, faults[i].help);
		if (es_gauge_register_fn(reg, name, help, gauge, &faults[i], errstr, errstr_size))
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ admin server */

/* Only this machine may flip a switch, whatever address the server is on. */
static int refused(struct es_http_request *req)
{
	if (es_http_peer_is_loopback(req))
		return 0;
	es_warn("fault switches: refused a request from a non-local address");
	es_http_reply_problem(req, 403, ES_PROBLEM("forbidden"), NULL,
			      "fault switches are set from this machine only", NULL);
	return 1;
}

static int list(struct es_http_request *req, void *arg)
{
	if (refused(req))
		return 0;
	return es_http_reply_json(req, 200, es_faults_json());
}

static int set(struct es_http_request *req, void *arg)
{
	const char *name = es_http_param(req, "name");
	json_t *body, *value;
	char detail[256];
	size_t len;
	const char *text = es_http_body(req, &len);
	int id, rc;

	if (refused(req))
		return 0;
	id = find(name);
	if (id < 0)
		return es_http_reply_problem(
			req, 404, ES_PROBLEM("unknown-fault"), NULL,
			"no fault switch of that name (GET /faults lists them)", NULL);
	body = json_loadb(text, len, 0, NULL);
	value = json_object_get(body, "value");
	if (!json_is_integer(value)) {
		json_decref(body);
		return es_http_reply_problem(req, 400, ES_PROBLEM("malformed-request"), NULL,
					     "send {\"value\": N}, a whole number", NULL);
	}
	rc = es_fault_set(name, (long)json_integer_value(value));
	json_decref(body);
	if (rc == -2) {
		snprintf(detail, sizeof(detail), "%s takes a value from %ld to %ld", name,
			 faults[id].min, faults[id].max);
		return es_http_reply_problem(req, 422, ES_PROBLEM("fault-value-out-of-range"), NULL,
					     detail, NULL);
	}
	return es_http_reply_json(req, 200, fault_json(&faults[id]));
}

static int clear(struct es_http_request *req, void *arg)
{
	const char *name = es_http_param(req, "name");
	int id;

	if (refused(req))
		return 0;
	if (!name) {
		es_fault_clear_all();
		es_warn("fault switches: all cleared");
		return es_http_reply_json(req, 200, es_faults_json());
	}
	id = find(name);
	if (id < 0)
		return es_http_reply_problem(
			req, 404, ES_PROBLEM("unknown-fault"), NULL,
			"no fault switch of that name (GET /faults lists them)", NULL);
	es_fault_set(name, faults[id].off);
	return es_http_reply_json(req, 200, fault_json(&faults[id]));
}

struct es_http *es_faults_admin_new(unsigned short public_port, const struct es_auth *auth,
				    char *errstr, size_t errstr_size)
{
	struct es_http_conf conf;
	struct es_http *http;
	long port;

	errstr[0] = '\0';
	if (!es_config_str("ADMIN_PORT", NULL))
		return NULL;
	if (es_config_long("ADMIN_PORT", 0, 0, 65535, &port, errstr, errstr_size))
		return NULL;
	if (port && port == public_port) {
		snprintf(errstr, errstr_size,
			 "ADMIN_PORT: %ld is HTTP_PORT; the fault switches never share the "
			 "public port",
			 port);
		return NULL;
	}
	es_http_conf_init(&conf);
	conf.bind_addr = es_config_str("ADMIN_BIND", "127.0.0.1");
	conf.port = (unsigned short)port;
	conf.threads = 2; /* libmicrohttpd ignores (and warns about) a pool of one */
	conf.auth = auth;
	http = es_http_new(&conf, errstr, errstr_size);
	if (!http)
		return NULL;
	if (es_http_route_for(http, ES_HTTP_OPERATOR, "GET", "/faults", list, NULL, errstr,
			      errstr_size) ||
	    es_http_route_for(http, ES_HTTP_OPERATOR, "DELETE", "/faults", clear, NULL, errstr,
			      errstr_size) ||
	    es_http_route_for(http, ES_HTTP_OPERATOR, "PUT", "/faults/{name}", set, NULL, errstr,
			      errstr_size) ||
	    es_http_route_for(http, ES_HTTP_OPERATOR, "DELETE", "/faults/{name}", clear, NULL,
			      errstr, errstr_size)) {
		es_http_free(http);
		return NULL;
	}
	return http;
}
