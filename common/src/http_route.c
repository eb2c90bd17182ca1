#include "http_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* Routes                                                                   */
/* ------------------------------------------------------------------------ */

void http_route_release(struct route *r)
{
	free(r->method);
	free(r->pattern);
	free(r->segbuf);
}

static bool method_ok(const char *method)
{
	if (!method || !*method)
		return false;
	for (const char *p = method; *p; p++) {
		if (*p < 'A' || *p > 'Z')
			return false;
	}
	return true;
}

static bool param_name_ok(const char *name)
{
	if (!*name)
		return false;
	for (const char *p = name; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	}
	return true;
}

/* Splits pattern into r's segments. "/" has none. */
static int parse_pattern(struct route *r, const char *pattern, char *errstr, size_t errstr_size)
{
	char *s, *slash;

	if (pattern[0] != '/') {
		snprintf(errstr, errstr_size, "route \"%s\": must start with '/'", pattern);
		return -1;
	}
	r->segbuf = strdup(pattern + 1);
	if (!r->segbuf) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	if (!*r->segbuf)
		return 0;
	for (s = r->segbuf; s; s = slash ? slash + 1 : NULL) {
		size_t len;

		slash = strchr(s, '/');
		if (slash)
			*slash = '\0';
		len = strlen(s);
		if (r->nseg == ES_HTTP_MAX_SEGMENTS) {
			snprintf(errstr, errstr_size, "route \"%s\": more than %d segments",
				 pattern, ES_HTTP_MAX_SEGMENTS);
			return -1;
		}
		if (!len) {
			snprintf(errstr, errstr_size, "route \"%s\": empty segment", pattern);
			return -1;
		}
		if (s[0] == '{' && s[len - 1] == '}') {
			s[len - 1] = '\0';
			s++;
			if (!param_name_ok(s)) {
				snprintf(errstr, errstr_size, "route \"%s\": bad parameter name",
					 pattern);
				return -1;
			}
			for (size_t i = 0; i < r->nseg; i++) {
				if (r->is_param[i] && !strcmp(r->seg[i], s)) {
					snprintf(errstr, errstr_size,
						 "route \"%s\": parameter {%s} given twice",
						 pattern, s);
					return -1;
				}
			}
			r->is_param[r->nseg] = true;
		} else if (strchr(s, '{') || strchr(s, '}')) {
			snprintf(errstr, errstr_size,
				 "route \"%s\": a parameter must be a whole segment", pattern);
			return -1;
		}
		r->seg[r->nseg++] = s;
	}
	return 0;
}

/* Two patterns with the same segments, parameter names aside, could never
 * be told apart. */
static bool same_shape(const struct route *a, const struct route *b)
{
	if (a->nseg != b->nseg)
		return false;
	for (size_t i = 0; i < a->nseg; i++) {
		if (a->is_param[i] != b->is_param[i])
			return false;
		if (!a->is_param[i] && strcmp(a->seg[i], b->seg[i]))
			return false;
	}
	return true;
}

int es_http_route(struct es_http *http, const char *method, const char *pattern, es_http_handler fn,
		  void *arg, char *errstr, size_t errstr_size)
{
	return es_http_route_for(http, ES_HTTP_PUBLIC, method, pattern, fn, arg, errstr,
				 errstr_size);
}

int es_http_route_for(struct es_http *http, enum es_http_access access, const char *method,
		      const char *pattern, es_http_handler fn, void *arg, char *errstr,
		      size_t errstr_size)
{
	struct route r = {0};
	struct route *routes;
	int result = -1;

	if (http->daemon) {
		snprintf(errstr, errstr_size, "routes must be added before the server starts");
		return -1;
	}
	if (!method_ok(method) || !pattern || !fn) {
		snprintf(errstr, errstr_size, "route: bad method, pattern or handler");
		return -1;
	}
	if (parse_pattern(&r, pattern, errstr, errstr_size))
		goto out;
	for (size_t i = 0; i < http->nroutes; i++) {
		if (!strcmp(http->routes[i].method, method) && same_shape(&http->routes[i], &r)) {
			snprintf(errstr, errstr_size, "route %s %s: clashes with %s", method,
				 pattern, http->routes[i].pattern);
			goto out;
		}
	}
	r.method = strdup(method);
	r.pattern = strdup(pattern);
	routes = realloc(http->routes, (http->nroutes + 1) * sizeof(*routes));
	if (!r.method || !r.pattern || !routes) {
		if (routes)
			http->routes = routes;
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	r.fn = fn;
	r.arg = arg;
	r.access = access;
	http->routes = routes;
	http->routes[http->nroutes++] = r;
	result = 0;
out:
	if (result)
		http_route_release(&r);
	return result;
}

/* ------------------------------------------------------------------------ */
/* Requests: routing */

static bool route_matches(const struct route *r, const struct es_http_request *req)
{
	if (req->unroutable || r->nseg != req->nseg)
		return false;
	for (size_t i = 0; i < r->nseg; i++) {
		if (r->is_param[i] ? !*req->seg[i] : !!strcmp(r->seg[i], req->seg[i]))
			return false;
	}
	return true;
}

/* true when a beats b: a literal where b has a parameter, earliest first. */
static bool more_specific(const struct route *a, const struct route *b)
{
	for (size_t i = 0; i < a->nseg && i < b->nseg; i++) {
		if (a->is_param[i] != b->is_param[i])
			return !a->is_param[i];
	}
	return false;
}

const struct route *http_find_route(const struct es_http *http, const struct es_http_request *req,
				    const char *method)
{
	const struct route *best = NULL;

	for (size_t i = 0; i < http->nroutes; i++) {
		const struct route *r = &http->routes[i];

		if (!strcmp(r->method, method) && route_matches(r, req) &&
		    (!best || more_specific(r, best)))
			best = r;
	}
	return best;
}

static void allow_add(char *allow, size_t size, const char *method)
{
	size_t len = strlen(allow);
	const char *p = allow;

	/* Already listed? Methods are whole words separated by ", ". */
	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == strlen(method) && !strncmp(p, method, n))
			return;
		p += n;
		p += strspn(p, ", ");
	}
	snprintf(allow + len, size - len, "%s%s", len ? ", " : "", method);
}

bool http_allowed_methods(const struct es_http *http, struct es_http_request *req, char *allow,
			  size_t size)
{
	bool found = false;

	allow[0] = '\0';
	for (size_t i = 0; i < http->nroutes; i++) {
		const struct route *r = &http->routes[i];

		if (!route_matches(r, req))
			continue;
		if (!found)
			req->route_label = r->pattern;
		found = true;
		allow_add(allow, size, r->method);
		if (!strcmp(r->method, "GET"))
			allow_add(allow, size, "HEAD");
	}
	return found;
}
