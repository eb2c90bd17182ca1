/*
 * faults: the page's panel of fault switches (es/faults.h), through the
 * console.
 *
 * The page never talks to a daemon's admin server itself: those answer
 * only this machine, on ports of their own, and want an operator's token
 * when the shop asks for tokens. The console lists every daemon's
 * switches in the prober's round (console_probe_faults) and passes the
 * page's changes on (POST /api/faults), signing the operator's token as
 * shopctl faults does (shopctl_admin_http: one client for both).
 *
 * Changing a switch breaks the shop on purpose, so that route answers the
 * console's own page only: a peer on this machine, a JSON body (which a
 * page of another site cannot send without the console's consent: the
 * browser would ask first, and the console never consents), and an
 * Origin that is the console itself under a local name (admin.h,
 * console_origin_allowed; docs/auth.md tells why).
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "console.h"
#include "es/log.h"
#include "httpc.h"

/* Lists one service's switches into its cache. */
static void probe_one(struct console *c, struct console_service *s)
{
	struct shopctl_http_reply reply;
	char errstr[512], detail[sizeof(s->faults_detail)];
	json_t *faults = NULL;

	if (!s->admin[0]) {
		snprintf(detail, sizeof(detail), "no admin server configured (CONSOLE_ADMIN)");
	} else if (shopctl_admin_http("GET", s->admin, "/faults", NULL, &reply, errstr,
				      sizeof(errstr))) {
		snprintf(detail, sizeof(detail), "no answer from its admin server (ADMIN_PORT)");
	} else {
		json_t *list = json_object_get(reply.json, "faults");

		if (reply.status == 200 && json_is_array(list)) {
			faults = json_incref(list);
			snprintf(detail, sizeof(detail), "ok");
		} else {
			const char *title = json_string_value(json_object_get(reply.json, "title"));

			snprintf(detail, sizeof(detail), "its admin server answered %ld %s",
				 reply.status, title ? title : "");
		}
		shopctl_http_reply_release(&reply);
	}
	pthread_mutex_lock(&c->status_lock);
	json_decref(s->faults);
	s->faults = faults;
	snprintf(s->faults_detail, sizeof(s->faults_detail), "%s", detail);
	pthread_mutex_unlock(&c->status_lock);
}

void console_probe_faults(struct console *c)
{
	for (size_t i = 0; i < c->nservices; i++)
		probe_one(c, &c->services[i]);
}

/* GET /api/faults: {"services": [{name, admin, detail, faults}]}, from the
 * last round's lists. */
static int handle_list(struct es_http_request *req, void *arg)
{
	struct console *c = arg;
	json_t *services = json_array();

	pthread_mutex_lock(&c->status_lock);
	for (size_t i = 0; i < c->nservices; i++) {
		const struct console_service *s = &c->services[i];

		json_array_append_new(services,
				      json_pack("{s:s, s:b, s:s, s:o}", "name", s->name, "admin",
						s->admin[0] != '\0', "detail", s->faults_detail,
						"faults",
						s->faults ? json_incref(s->faults) : json_array()));
	}
	pthread_mutex_unlock(&c->status_lock);
	return es_http_reply_json(req, 200, json_pack("{s:o}", "services", services));
}

/* Answers (403/415) a request that is not the console's own page's;
 * returns true when it did. */
static bool refused(struct console *c, struct es_http_request *req)
{
	if (!es_http_peer_is_loopback(req)) {
		es_warn("fault switches: refused a change from a non-local address");
		es_http_reply_problem(req, 403, ES_PROBLEM("forbidden"), NULL,
				      "fault switches are set from this machine only", NULL);
		return true;
	}
	if (!es_http_content_type_is(req, "application/json")) {
		es_http_reply_problem(req, 415, NULL, NULL, "send the change as application/json",
				      NULL);
		return true;
	}
	if (!console_origin_allowed(es_http_header(req, "Origin"), es_http_header(req, "Host"),
				    c->bind)) {
		es_warn("fault switches: refused a change whose Origin is not the console's page");
		es_http_reply_problem(req, 403, ES_PROBLEM("forbidden"), NULL,
				      "only the console's own page sets fault switches here (its "
				      "Origin must be the console, by a local name); from a "
				      "terminal, use shopctl faults",
				      NULL);
		return true;
	}
	return false;
}

static struct console_service *find_service(struct console *c, const char *name)
{
	for (size_t i = 0; i < c->nservices; i++) {
		if (!strcmp(c->services[i].name, name))
			return &c->services[i];
	}
	return NULL;
}

/* POST /api/faults (admin.h, struct console_fault_request): passed on to
 * the daemon's admin server, whose answer comes back as it is. */
static int handle_change(struct es_http_request *req, void *arg)
{
	struct console *c = arg;
	struct console_fault_request fr;
	struct console_service *s;
	struct shopctl_http_reply reply;
	char errstr[512], path[128], body[64];
	size_t len;
	const char *text;

	if (refused(c, req))
		return 0;
	text = es_http_body(req, &len);
	if (console_fault_request_parse(text, len, &fr, errstr, sizeof(errstr)))
		return es_http_reply_problem(req, 400, ES_PROBLEM("malformed-request"), NULL,
					     errstr, NULL);
	s = find_service(c, fr.service);
	if (!s)
		return es_http_reply_problem(req, 404, ES_PROBLEM("unknown-service"), NULL,
					     "the console knows no daemon of that name", NULL);
	if (!s->admin[0])
		return es_http_reply_problem(req, 409, ES_PROBLEM("no-admin-server"), NULL,
					     "the console knows no admin server of that daemon "
					     "(CONSOLE_ADMIN)",
					     NULL);
	snprintf(path, sizeof(path), "/faults%s%s", fr.name[0] ? "/" : "", fr.name);
	snprintf(body, sizeof(body), "{\"value\":%lld}", fr.value);
	if (shopctl_admin_http(fr.clear ? "DELETE" : "PUT", s->admin, path, fr.clear ? NULL : body,
			       &reply, errstr, sizeof(errstr))) {
		es_warn("fault switches of %s: %s", s->name, errstr);
		return es_http_reply_problem(req, 502, NULL, NULL,
					     "the daemon's admin server did not answer the console",
					     NULL);
	}
	if (fr.clear)
		es_info("fault switches of %s: clear %s: %ld", s->name,
			fr.name[0] ? fr.name : "all", reply.status);
	else
		es_info("fault switches of %s: set %s to %lld: %ld", s->name, fr.name, fr.value,
			reply.status);
	/* The page lists the switches again at once: let it see the change. */
	probe_one(c, s);
	return console_reply_as(req, &reply);
}

int console_faults_routes(struct console *c, char *errstr, size_t errstr_size)
{
	if (es_http_route(c->http, "GET", "/api/faults", handle_list, c, errstr, errstr_size) ||
	    es_http_route(c->http, "POST", "/api/faults", handle_change, c, errstr, errstr_size))
		return -1;
	return 0;
}
