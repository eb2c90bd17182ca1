/*
 * admin: the pure parts of the fault-switch panel (admin.h).
 */
#include "admin.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "es/config.h"

#define VALUE_LIMIT 1000000000LL

static bool is_http_url(const char *s, size_t len)
{
	return (len > 7 && !strncmp(s, "http://", 7)) || (len > 8 && !strncmp(s, "https://", 8));
}

int console_parse_named_urls(const char *var, const char *list, struct console_named_url *out,
			     size_t max, char *errstr, size_t errstr_size)
{
	size_t n = 0;

	while (*list) {
		size_t len = strcspn(list, ","), name_len, url_len;
		const char *eq = memchr(list, '=', len);

		if (len == 0) {
			list++;
			continue;
		}
		name_len = eq ? (size_t)(eq - list) : 0;
		url_len = eq ? len - name_len - 1 : 0;
		while (url_len && eq[url_len] == '/')
			url_len--;
		if (!eq || name_len == 0 || name_len >= sizeof(out->name) ||
		    url_len >= sizeof(out->url) || !is_http_url(eq + 1, url_len) || n == max) {
			snprintf(errstr, errstr_size,
				 "%s: \"%.*s\" is not name=http://host:port (at most %zu of them)",
				 var, (int)(len > 100 ? 100 : len), list, max);
			return -1;
		}
		memcpy(out[n].name, list, name_len);
		out[n].name[name_len] = '\0';
		memcpy(out[n].url, eq + 1, url_len);
		out[n].url[url_len] = '\0';
		n++;
		list += len + (list[len] == ',');
	}
	return (int)n;
}

int console_admin_url(const char *service_url, long offset, char *out, size_t size)
{
	const char *host = strstr(service_url, "://"), *end, *colon, *bracket;
	char digits[8];
	long long port;
	int n;

	if (!host)
		return -1;
	host += 3;
	end = host + strcspn(host, "/?#");
	colon = NULL;
	for (const char *p = host; p < end; p++) {
		if (*p == ':')
			colon = p;
	}
	bracket = memchr(host, ']', (size_t)(end - host));
	/* "[::1]" has colons but no port; "[::1]:8081" has one after ']'. */
	if (!colon || (bracket && colon < bracket) || (size_t)(end - colon - 1) >= sizeof(digits))
		return -1;
	memcpy(digits, colon + 1, (size_t)(end - colon - 1));
	digits[end - colon - 1] = '\0';
	if (es_parse_ll(digits, 1, 65535, &port) || port + offset < 1 || port + offset > 65535)
		return -1;
	n = snprintf(out, size, "%.*s:%lld", (int)(colon - service_url), service_url,
		     port + offset);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

static bool fault_name_valid(const char *name)
{
	size_t len = strlen(name);

	return len >= 1 && len <= 48 &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == len;
}

int console_fault_request_parse(const char *body, size_t len, struct console_fault_request *req,
				char *errstr, size_t errstr_size)
{
	json_error_t jerr;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	json_t *service, *name, *value, *clear;
	const char *key;
	json_t *member;
	int rc = -1;

	memset(req, 0, sizeof(*req));
	if (!json_is_object(root)) {
		snprintf(errstr, errstr_size,
			 "send a JSON object {\"service\", \"name\", \"value\"}");
		goto out;
	}
	json_object_foreach(root, key, member)
	{
		if (strcmp(key, "service") && strcmp(key, "name") && strcmp(key, "value") &&
		    strcmp(key, "clear")) {
			snprintf(errstr, errstr_size,
				 "unknown member (service, name, value and clear are known)");
			goto out;
		}
	}
	service = json_object_get(root, "service");
	name = json_object_get(root, "name");
	value = json_object_get(root, "value");
	clear = json_object_get(root, "clear");
	if (!json_is_string(service) || json_string_length(service) == 0 ||
	    json_string_length(service) >= sizeof(req->service) ||
	    strlen(json_string_value(service)) != json_string_length(service)) {
		snprintf(errstr, errstr_size, "service: the daemon's name, 1 to %zu characters",
			 sizeof(req->service) - 1);
		goto out;
	}
	snprintf(req->service, sizeof(req->service), "%s", json_string_value(service));
	if (name && (!json_is_string(name) || json_string_length(name) >= sizeof(req->name) ||
		     !fault_name_valid(json_string_value(name)))) {
		snprintf(errstr, errstr_size,
			 "name: a switch's name, [a-z0-9_], 1 to 48 characters");
		goto out;
	}
	if (name)
		snprintf(req->name, sizeof(req->name), "%s", json_string_value(name));
	if (clear && !json_is_true(clear)) {
		snprintf(errstr, errstr_size, "clear: true, or leave it out");
		goto out;
	}
	req->clear = clear != NULL;
	if (req->clear == (value != NULL)) {
		snprintf(errstr, errstr_size, "either value (set) or \"clear\": true");
		goto out;
	}
	if (!req->clear) {
		if (!name) {
			snprintf(errstr, errstr_size, "name: which switch to set");
			goto out;
		}
		if (!json_is_integer(value) || json_integer_value(value) < -VALUE_LIMIT ||
		    json_integer_value(value) > VALUE_LIMIT) {
			snprintf(errstr, errstr_size, "value: a whole number");
			goto out;
		}
		req->value = (long long)json_integer_value(value);
	}
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* The host part of a Host header: "127.0.0.1" of "127.0.0.1:8085",
 * "[::1]" of "[::1]:8085", into out. */
static void host_name(const char *host, char *out, size_t size)
{
	size_t len = host[0] == '[' ? strcspn(host, "]") + (host[strcspn(host, "]")] == ']')
				    : strcspn(host, ":");

	snprintf(out, size, "%.*s", (int)len, host);
}

bool console_origin_allowed(const char *origin, const char *host, const char *bind)
{
	static const char *const local[] = {"127.0.0.1", "localhost", "[::1]"};
	char name[256];

	if (!origin || !host || !*host || strncmp(origin, "http://", 7) ||
	    strcasecmp(origin + 7, host) || strlen(host) >= sizeof(name))
		return false;
	host_name(host, name, sizeof(name));
	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		if (!strcasecmp(name, local[i]))
			return true;
	}
	return bind && strcmp(bind, "0.0.0.0") && strcmp(bind, "::") && !strcasecmp(name, bind);
}
