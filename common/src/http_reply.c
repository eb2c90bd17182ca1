#include "http_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------ */
/* The request view */

const char *es_http_method(const struct es_http_request *req)
{
	return req->method;
}

const char *es_http_path(const struct es_http_request *req)
{
	return req->path;
}

const char *es_http_route_pattern(const struct es_http_request *req)
{
	return req->route ? req->route->pattern : NULL;
}

const struct es_caller *es_http_caller(const struct es_http_request *req)
{
	return &req->caller;
}

const char *es_http_param(const struct es_http_request *req, const char *name)
{
	const struct route *r = req->route;

	if (!r || !name)
		return NULL;
	for (size_t i = 0; i < r->nseg; i++) {
		if (r->is_param[i] && !strcmp(r->seg[i], name))
			return req->seg[i];
	}
	return NULL;
}

const char *es_http_query(const struct es_http_request *req, const char *name)
{
	const char *value = NULL;
	size_t size = 0;

	if (!name)
		return NULL;
	if (MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name),
					  &value, &size) != MHD_YES)
		return NULL;
	return value ? value : "";
}

const char *es_http_header(const struct es_http_request *req, const char *name)
{
	if (!name)
		return NULL;
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *es_http_body(const struct es_http_request *req, size_t *len)
{
	if (len)
		*len = req->body_len;
	return req->body ? req->body : "";
}

bool es_http_content_type_is(const struct es_http_request *req, const char *media_type)
{
	const char *value = es_http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
	size_t n;

	if (!value || !media_type)
		return false;
	value += strspn(value, " \t");
	n = strlen(media_type);
	if (strncasecmp(value, media_type, n))
		return false;
	value += n;
	value += strspn(value, " \t");
	return *value == '\0' || *value == ';';
}

/* ------------------------------------------------------------------------ */
/* Answers */

static bool header_text_ok(const char *s)
{
	return s && !strpbrk(s, "\r\n");
}

int es_http_add_header(struct es_http_request *req, const char *name, const char *value)
{
	struct header *h;

	if (!req || !header_text_ok(name) || !*name || strpbrk(name, " \t:") ||
	    !header_text_ok(value))
		return -1;
	/* Both belong to the reply itself; a second copy would confuse clients. */
	if (!strcasecmp(name, MHD_HTTP_HEADER_CONTENT_TYPE) ||
	    !strcasecmp(name, MHD_HTTP_HEADER_CONTENT_LENGTH))
		return -1;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -1;
	h->name = strdup(name);
	h->value = strdup(value);
	if (!h->name || !h->value) {
		free(h->name);
		free(h->value);
		free(h);
		return -1;
	}
	*req->headers_tail = h;
	req->headers_tail = &h->next;
	return 0;
}

/* Takes body (malloc'd, freed here on failure). */
static int set_reply(struct es_http_request *req, unsigned int status, const char *content_type,
		     char *body, size_t len)
{
	char *type;

	if (!req || req->replied || !body || status < 100 || status > 999) {
		free(body);
		return -1;
	}
	type = strdup(content_type);
	if (!type) {
		free(body);
		return -1;
	}
	req->status = status;
	req->content_type = type;
	req->resp_body = body;
	req->resp_len = len;
	req->replied = true;
	return 0;
}

static int reply_dump(struct es_http_request *req, unsigned int status, const char *content_type,
		      const json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);

	if (!text)
		return -1;
	return set_reply(req, status, content_type, text, strlen(text));
}

int es_http_reply_json(struct es_http_request *req, unsigned int status, json_t *body)
{
	int result;

	if (!body) {
		es_http_reply_problem(req, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL,
				      "The server could not build its answer.", NULL);
		return -1;
	}
	result = reply_dump(req, status, JSON_TYPE, body);
	json_decref(body);
	return result;
}

int es_http_reply_problem(struct es_http_request *req, unsigned int status, const char *type,
			  const char *title, const char *detail, json_t *errors)
{
	json_t *problem;
	int result;

	if (!title)
		title = MHD_get_reason_phrase_for(status);
	/* A string that is not UTF-8 (a detail quoting client input, say)
	 * makes json_string fail: the member is then left out. */
	problem = json_object();
	json_object_set_new(problem, "type", json_string(type ? type : "about:blank"));
	json_object_set_new(problem, "title", json_string(title));
	json_object_set_new(problem, "status", json_integer(status));
	if (detail)
		json_object_set_new(problem, "detail", json_string(detail));
	if (errors)
		json_object_set_new(problem, "errors", errors);
	/* json_object_set_new consumed errors even when problem is NULL. */
	result = problem ? reply_dump(req, status, PROBLEM_TYPE, problem) : -1;
	json_decref(problem);
	return result;
}

int es_http_errors_add(json_t *errors, const char *pointer, const char *detail)
{
	json_t *item;

	if (!json_is_array(errors) || !pointer || !detail)
		return -1;
	item = json_object();
	if (json_object_set_new(item, "pointer", json_string(pointer)) ||
	    json_object_set_new(item, "detail", json_string(detail))) {
		json_decref(item);
		return -1;
	}
	return json_array_append_new(errors, item);
}

int es_http_reply_body(struct es_http_request *req, unsigned int status, const char *content_type,
		       const void *data, size_t len)
{
	char *copy;

	if (!content_type || (!data && len))
		return -1;
	copy = malloc(len ? len : 1);
	if (!copy)
		return -1;
	if (len)
		memcpy(copy, data, len);
	return set_reply(req, status, content_type, copy, len);
}
