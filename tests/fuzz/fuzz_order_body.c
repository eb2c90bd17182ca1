/* Fuzz target: order_request_parse() takes the POST /orders body straight
 * from the client (order-service's front door). Whatever the bytes are, it
 * must answer 0 (an order that keeps every rule of the contract), 400 or
 * 422 with a reason, never crash or leak. Built-in catalog (deploy/catalog.json),
 * loaded once. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "order.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct es_catalog cat;
static int loaded;

static void catalog_release(void)
{
	es_catalog_release(&cat);
}

static void catalog_once(void)
{
	char err[256];

	if (loaded)
		return;
	if (es_catalog_load(&cat, err, sizeof(err))) {
		fprintf(stderr, "fuzz_order_body: cannot load the catalog: %s\n", err);
		abort();
	}
	loaded = 1;
	atexit(catalog_release);
}

/* An accepted order keeps every rule the contract gives for 202. */
static void check_accepted(const struct order_request *req, const json_t *errors)
{
	long total = 0;
	struct order_request again;
	json_t *errors2 = NULL;
	char detail[512];

	if (errors || !req->canonical)
		abort();
	if (!req->customer_id[0] || !order_email_valid(req->customer_email) ||
	    !order_token_valid(req->payment_token))
		abort();
	if (req->nlines < 1 || req->nlines > ORDER_MAX_LINES)
		abort();
	for (size_t i = 0; i < req->nlines; i++) {
		const struct order_line *l = &req->lines[i];
		const struct es_product *p = es_catalog_find(&cat, l->sku);

		if (!p || p->price_cents != l->unit_price_cents)
			abort(); /* prices come from the catalog only */
		if (l->quantity < 1 || l->quantity > ORDER_MAX_QUANTITY)
			abort();
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(req->lines[j].sku, l->sku))
				abort(); /* duplicate sku lines are 422 */
		}
		total += l->unit_price_cents * l->quantity;
	}
	if (total != req->total_cents)
		abort();
	/* The canonical form (what Idempotency-Key compares) is an order too,
	 * the same one. */
	if (order_request_parse(&again, req->canonical, strlen(req->canonical), &cat, &errors2,
				detail, sizeof(detail)))
		abort();
	if (again.total_cents != req->total_cents || again.nlines != req->nlines ||
	    strcmp(again.canonical, req->canonical) || strcmp(again.customer_id, req->customer_id))
		abort();
	order_request_release(&again);
}

/* A refused body says why: a detail, and for 422 at least one pointer. */
static void check_refused(unsigned status, const json_t *errors, const char *detail)
{
	size_t i;
	const json_t *e;

	if (status != 400 && status != 422)
		abort();
	if (!detail[0])
		abort();
	if (errors && !json_is_array(errors))
		abort();
	if (status == 422 && json_array_size(errors) == 0)
		abort();
	json_array_foreach(errors, i, e)
	{
		const char *ptr = json_string_value(json_object_get(e, "pointer"));

		if (!ptr || (ptr[0] && ptr[0] != '/') ||
		    !json_string_value(json_object_get(e, "detail")))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct order_request req;
	json_t *errors = NULL;
	char detail[512];
	unsigned status;

	catalog_once();
	detail[0] = '\0';
	status = order_request_parse(&req, (const char *)data, size, &cat, &errors, detail,
				     sizeof(detail));
	if (status == 0)
		check_accepted(&req, errors);
	else
		check_refused(status, errors, detail);
	json_decref(errors);
	order_request_release(&req);
	return 0;
}
