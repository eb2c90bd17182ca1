/*
 * call: one service calling another over HTTP, with libcurl (the client
 * the project already uses for SMTP and in the load generator), and the
 * small things every twin's handler does with a request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "es/log.h"
#include "sync.h"

/* No answer of the twins comes near this; more is a broken peer. */
#define REPLY_MAX (1024 * 1024)

struct buf {
	char *data; /* owned */
	size_t len;
	bool too_large;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf *b = arg;
	size_t n = size * nmemb;
	char *p;

	if (b->len + n > REPLY_MAX) {
		b->too_large = true;
		return 0; /* libcurl ends the transfer with an error */
	}
	p = realloc(b->data, b->len + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->len, ptr, n);
	b->data = p;
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

int sync_call_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void sync_call_release(void)
{
	curl_global_cleanup();
}

long sync_post(const char *base_url, const char *path, json_t *body, long timeout_ms,
	       json_t **reply, char *errstr, size_t errstr_size)
{
	struct curl_slist *headers = NULL;
	struct buf b = {0};
	char url[1024], *text = NULL;
	long status = -1;
	CURLcode rc;
	CURL *curl;

	*reply = NULL;
	snprintf(url, sizeof(url), "%s%s", base_url, path);
	curl = curl_easy_init();
	text = json_dumps(body, JSON_COMPACT);
	headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (!curl || !text || !headers) {
		snprintf(errstr, errstr_size, "POST %s: out of memory", url);
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM */
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK) {
		snprintf(errstr, errstr_size, "POST %s: %s", url,
			 b.too_large ? "answer over 1 MiB" : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (b.data)
		*reply = json_loadb(b.data, b.len, 0, NULL);
out:
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);
	free(text);
	free(b.data);
	return status;
}

json_t *sync_body(struct es_http_request *req)
{
	size_t len;
	const char *body = es_http_body(req, &len);
	json_error_t jerr;
	json_t *json;

	if (!es_http_content_type_is(req, "application/json")) {
		es_http_reply_problem(req, 415, SYNC_PROBLEM("unsupported-media-type"), NULL,
				      "send the body as Content-Type: application/json", NULL);
		return NULL;
	}
	json = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json || !json_is_object(json)) {
		json_decref(json);
		es_http_reply_problem(req, 400, SYNC_PROBLEM("malformed-request"),
				      "Malformed request", "the body is not a JSON object", NULL);
		return NULL;
	}
	return json;
}

int sync_unavailable(struct es_http_request *req, const char *why)
{
	es_warn("%s %s: %s", es_http_method(req), es_http_path(req), why);
	es_http_add_header(req, "Retry-After", "1");
	return es_http_reply_problem(req, 503, SYNC_PROBLEM("unavailable"), "Service Unavailable",
				     why, NULL);
}
