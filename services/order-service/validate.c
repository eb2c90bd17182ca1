/*
 * The POST /orders body: parsed strictly, validated against the catalog.
 * Two kinds of error, as the contract says: the body is not what a client
 * of this API could mean (malformed JSON, wrong types) -> 400; it is well
 * formed but not acceptable (unknown sku, quantities, missing fields,
 * formats) -> 422. Both list every fault found, with a JSON pointer.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "order.h"

bool order_email_valid(const char *s)
{
	const char *at = strchr(s, '@');
	const char *dot;
	size_t len = strlen(s);

	if (!at || at == s || len > ORDER_EMAIL_MAX || strchr(at + 1, '@'))
		return false;
	for (const char *p = s; *p; p++) {
		/* ASCII only, and nothing that means something in a mail
		 * header or an SMTP command (email-service refuses the same). */
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f ||
		    strchr("()<>[]\\,;:\"", *p))
			return false;
	}
	/* The domain: at least one dot, not at either end. */
	dot = strrchr(at + 1, '.');
	return dot && dot > at + 1 && dot[1] != '\0';
}

bool order_token_valid(const char *s)
{
	size_t len = strlen(s);

	if (len < 5 || len > ORDER_TOKEN_MAX || strncmp(s, "tok_", 4))
		return false;
	for (const char *p = s + 4; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '_')
			return false;
	}
	return true;
}

/* One fault: appended to errors; the worst status seen wins (400 > 422). */
struct faults {
	json_t *errors;
	unsigned status;
};

static void fault(struct faults *f, unsigned status, const char *pointer, const char *detail)
{
	es_http_errors_add(f->errors, pointer, detail);
	if (f->status != 400)
		f->status = status;
}

/* A required string field: wrong type -> 400, missing or empty -> 422. */
static const char *string_field(struct faults *f, json_t *obj, const char *name,
				const char *pointer)
{
	json_t *v = json_object_get(obj, name);

	if (!v) {
		fault(f, 422, pointer, "is required");
		return NULL;
	}
	if (!json_is_string(v)) {
		fault(f, 400, pointer, "must be a string");
		return NULL;
	}
	if (json_string_length(v) == 0) {
		fault(f, 422, pointer, "must not be empty");
		return NULL;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		fault(f, 400, pointer, "must not contain NUL characters");
		return NULL;
	}
	return json_string_value(v);
}

static void parse_line(struct order_request *req, struct faults *f, json_t *item, size_t i,
		       const struct es_catalog *cat)
{
	char ptr[64], ptr_q[64];
	const char *sku;
	json_t *q;
	const struct es_product *prod;

	snprintf(ptr, sizeof(ptr), "/items/%zu", i);
	if (!json_is_object(item)) {
		fault(f, 400, ptr, "must be an object");
		return;
	}
	snprintf(ptr, sizeof(ptr), "/items/%zu/sku", i);
	snprintf(ptr_q, sizeof(ptr_q), "/items/%zu/quantity", i);
	sku = string_field(f, item, "sku", ptr);
	q = json_object_get(item, "quantity");
	if (!q)
		fault(f, 422, ptr_q, "is required");
	else if (!json_is_integer(q))
		fault(f, 400, ptr_q, "must be an integer");
	else if (json_integer_value(q) < 1 || json_integer_value(q) > ORDER_MAX_QUANTITY)
		fault(f, 422, ptr_q, "must be between 1 and 100");
	if (!sku)
		return;
	prod = es_catalog_find(cat, sku);
	if (!prod) {
		fault(f, 422, ptr, "unknown sku");
		return;
	}
	for (size_t j = 0; j < req->nlines; j++) {
		if (!strcmp(req->lines[j].sku, sku)) {
			fault(f, 422, ptr,
			      "sku listed twice; give one line with the total quantity");
			return;
		}
	}
	if (!json_is_integer(q) || json_integer_value(q) < 1 ||
	    json_integer_value(q) > ORDER_MAX_QUANTITY)
		return;
	snprintf(req->lines[req->nlines].sku, sizeof(req->lines[0].sku), "%s", sku);
	req->lines[req->nlines].quantity = (int)json_integer_value(q);
	req->lines[req->nlines].unit_price_cents = prod->price_cents;
	req->total_cents += prod->price_cents * json_integer_value(q);
	req->nlines++;
}

static void parse_fields(struct order_request *req, struct faults *f, json_t *root,
			 const struct es_catalog *cat)
{
	const char *s;
	json_t *items;

	s = string_field(f, root, "customerId", "/customerId");
	if (s && strlen(s) > ORDER_ID_MAX)
		fault(f, 422, "/customerId", "must be at most 128 characters");
	else if (s)
		snprintf(req->customer_id, sizeof(req->customer_id), "%s", s);

	s = string_field(f, root, "customerEmail", "/customerEmail");
	if (s && !order_email_valid(s))
		fault(f, 422, "/customerEmail", "is not an email address");
	else if (s)
		snprintf(req->customer_email, sizeof(req->customer_email), "%s", s);

	s = string_field(f, root, "paymentToken", "/paymentToken");
	if (s && !order_token_valid(s))
		fault(f, 422, "/paymentToken",
		      "must look like tok_<letters, digits, _> (at most 64 characters)");
	else if (s)
		snprintf(req->payment_token, sizeof(req->payment_token), "%s", s);

	items = json_object_get(root, "items");
	if (!items) {
		fault(f, 422, "/items", "is required");
	} else if (!json_is_array(items)) {
		fault(f, 400, "/items", "must be an array");
	} else if (json_array_size(items) == 0) {
		fault(f, 422, "/items", "must have at least one line");
	} else if (json_array_size(items) > ORDER_MAX_LINES) {
		fault(f, 422, "/items", "must have at most 50 lines");
	} else {
		for (size_t i = 0; i < json_array_size(items); i++)
			parse_line(req, f, json_array_get(items, i), i, cat);
	}
}

unsigned order_request_parse(struct order_request *req, const char *body, size_t len,
			     const struct es_catalog *cat, json_t **errors, char *detail,
			     size_t detail_size)
{
	struct faults f = {json_array(), 0};
	json_error_t jerr;
	json_t *root;

	memset(req, 0, sizeof(*req));
	*errors = NULL;
	root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(detail, detail_size, "the body is not valid JSON: %s (line %d, column %d)",
			 jerr.text, jerr.line, jerr.column);
		json_decref(f.errors);
		return 400;
	}
	if (!json_is_object(root)) {
		snprintf(detail, detail_size, "the body must be a JSON object");
		fault(&f, 400, "", "must be an object");
	} else {
		parse_fields(req, &f, root, cat);
		if (f.status)
			snprintf(detail, detail_size, "%zu field(s) are not acceptable; see errors",
				 json_array_size(f.errors));
	}
	if (!f.status) {
		req->canonical = json_dumps(root, JSON_SORT_KEYS | JSON_COMPACT);
		if (!req->canonical) {
			snprintf(detail, detail_size, "out of memory");
			f.status = 500;
		}
	}
	json_decref(root);
	if (f.status) {
		*errors = f.errors;
		return f.status;
	}
	json_decref(f.errors);
	return 0;
}

void order_request_release(struct order_request *req)
{
	free(req->canonical);
	req->canonical = NULL;
}
