#include "httpc.h"

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "es/config.h"
#include "shopctl.h"

#define HTTP_TIMEOUT_MS 10000L

struct sink {
	char *data;
	size_t len;
	bool too_large;
};

static size_t collect(char *ptr, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t add = size * n;
	char *grown;

	if (add > SHOPCTL_HTTP_MAX_BODY - s->len) {
		s->too_large = true;
		return 0; /* makes libcurl fail the transfer */
	}
	grown = realloc(s->data, s->len + add + 1);
	if (!grown)
		return 0;
	s->data = grown;
	memcpy(s->data + s->len, ptr, add);
	s->len += add;
	s->data[s->len] = '\0';
	return add;
}

int shopctl_http(const char *method, const char *url, const char *const *headers, const char *body,
		 struct shopctl_http_reply *reply, char *errstr, size_t errstr_size)
{
	char curl_err[CURL_ERROR_SIZE] = "";
	struct curl_slist *list = NULL;
	struct sink sink = {NULL, 0, false};
	char *ctype = NULL;
	CURLcode rc;
	CURL *curl;
	int result = -1;

	memset(reply, 0, sizeof(*reply));
	curl = curl_easy_init();
	if (!curl) {
		snprintf(errstr, errstr_size, "cannot initialise libcurl");
		return -1;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, HTTP_TIMEOUT_MS);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "shopctl");
	if (body) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	for (size_t i = 0; headers && headers[i]; i++) {
		struct curl_slist *grown = curl_slist_append(list, headers[i]);

		if (!grown) {
			snprintf(errstr, errstr_size, "out of memory");
			goto out;
		}
		list = grown;
	}
	if (list)
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK) {
		if (sink.too_large)
			snprintf(errstr, errstr_size, "%s %s: the answer is larger than %d bytes",
				 method, url, SHOPCTL_HTTP_MAX_BODY);
		else
			snprintf(errstr, errstr_size, "%s %s: %s", method, url,
				 curl_err[0] ? curl_err : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply->status);
	curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ctype);
	if (!sink.data) {
		sink.data = calloc(1, 1);
		if (!sink.data) {
			snprintf(errstr, errstr_size, "out of memory");
			goto out;
		}
	}
	reply->body = sink.data;
	reply->len = sink.len;
	sink.data = NULL;
	/* application/json and application/problem+json */
	if (ctype && strstr(ctype, "json"))
		reply->json = json_loadb(reply->body, reply->len, 0, NULL);
	result = 0;
out:
	free(sink.data);
	curl_slist_free_all(list);
	curl_easy_cleanup(curl);
	return result;
}

int shopctl_admin_http(const char *method, const char *admin, const char *path, const char *body,
		       struct shopctl_http_reply *reply, char *errstr, size_t errstr_size)
{
	const char *headers[3] = {NULL, NULL, NULL};
	char url[1024], auth[ES_AUTH_HEADER_MAX], err[256];
	size_t nh = 0;
	int n;

	memset(reply, 0, sizeof(*reply));
	n = snprintf(url, sizeof(url), "%s%s", admin, path);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		snprintf(errstr, errstr_size, "the admin URL is longer than %zu bytes",
			 sizeof(url) - 1);
		return -1;
	}
	if (body)
		headers[nh++] = "Content-Type: application/json";
	/* The switches are an operator's when the shop asks for tokens. */
	if (es_auth_header_from_env(ES_AUTH_OPERATOR, NULL, SHOPCTL_TOKEN_TTL_S, auth, sizeof(auth),
				    err, sizeof(err))) {
		snprintf(errstr, errstr_size, "AUTH_JWT_KEY_FILE: %s", err);
		return -1;
	}
	if (auth[0])
		headers[nh++] = auth;
	return shopctl_http(method, url, headers, body, reply, errstr, errstr_size);
}

void shopctl_http_reply_release(struct shopctl_http_reply *reply)
{
	free(reply->body);
	json_decref(reply->json);
	memset(reply, 0, sizeof(*reply));
}

void shopctl_http_print_problem(const struct shopctl_http_reply *reply)
{
	const char *title = json_string_value(json_object_get(reply->json, "title"));
	const char *detail = json_string_value(json_object_get(reply->json, "detail"));
	json_t *errors = json_object_get(reply->json, "errors");
	json_t *e;
	size_t i;

	fflush(stdout);
	fprintf(stderr, "shopctl: HTTP %ld", reply->status);
	if (title)
		fprintf(stderr, " %s", title);
	if (detail)
		fprintf(stderr, ": %s", detail);
	if (!title && !detail && reply->len) {
		fputs(": ", stderr);
		/* Not ours, maybe a proxy's HTML page: the start is enough. */
		shopctl_print_escaped(stderr, reply->body, reply->len > 500 ? 500 : reply->len, 0,
				      NULL);
	}
	fputc('\n', stderr);
	json_array_foreach(errors, i, e)
	{
		const char *pointer = json_string_value(json_object_get(e, "pointer"));
		const char *what = json_string_value(json_object_get(e, "detail"));

		fprintf(stderr, "  %s: %s\n", pointer && *pointer ? pointer : "(body)",
			what ? what : "?");
	}
}

int shopctl_order_url(const char *flag, char *buf, size_t size, char *errstr, size_t errstr_size)
{
	const char *url = flag ? flag
			       : es_config_str("ORDER_SERVICE_URL", SHOPCTL_ORDER_URL_DEFAULT);
	size_t len = strlen(url);

	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
		snprintf(errstr, errstr_size, "%s \"%s\" is not an http:// or https:// URL",
			 flag ? "--url" : "ORDER_SERVICE_URL", url);
		return -1;
	}
	while (len > 0 && url[len - 1] == '/')
		len--;
	if (len >= size) {
		snprintf(errstr, errstr_size, "the URL is longer than %zu bytes", size - 1);
		return -1;
	}
	memcpy(buf, url, len);
	buf[len] = '\0';
	return 0;
}
