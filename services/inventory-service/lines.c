#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"

static int by_sku(const void *a, const void *b)
{
	const struct inventory_line *x = a, *y = b;

	return strcmp(x->sku, y->sku);
}

/* A quantity no stock can hold is simply out of stock: saturating keeps it
 * so instead of wrapping around into a small (or negative) number. */
static long long add_saturating(long long a, long long b)
{
	return a > LLONG_MAX - b ? LLONG_MAX : a + b;
}

/* Reads element i of items into *line. Returns 0 or -1 (errstr filled). */
static int line_read(json_t *items, size_t i, struct inventory_line *line, char *errstr,
		     size_t errstr_size)
{
	json_t *item = json_array_get(items, i);
	json_t *sku = json_object_get(item, "sku");
	json_t *quantity = json_object_get(item, "quantity");

	if (!json_is_object(item)) {
		snprintf(errstr, errstr_size, "/items/%zu must be an object", i);
		return -1;
	}
	if (!json_is_string(sku) || !json_string_length(sku)) {
		snprintf(errstr, errstr_size, "/items/%zu/sku must be a non-empty string", i);
		return -1;
	}
	if (!json_is_integer(quantity) || json_integer_value(quantity) < 1) {
		snprintf(errstr, errstr_size, "/items/%zu/quantity must be an integer >= 1", i);
		return -1;
	}
	line->sku = json_string_value(sku);
	line->quantity = (long long)json_integer_value(quantity);
	line->available = 0;
	return 0;
}

int inventory_lines_parse(json_t *items, struct inventory_line **lines, size_t *n, char *errstr,
			  size_t errstr_size)
{
	struct inventory_line *out = NULL;
	size_t count, i, merged = 0;
	int result = -1;

	*lines = NULL;
	*n = 0;
	if (!json_is_array(items) || !json_array_size(items)) {
		snprintf(errstr, errstr_size, "/items must be a non-empty array");
		goto out;
	}
	count = json_array_size(items);
	if (count > INVENTORY_MAX_LINES) {
		snprintf(errstr, errstr_size, "/items has %zu lines, more than %d", count,
			 INVENTORY_MAX_LINES);
		goto out;
	}
	out = calloc(count, sizeof(*out));
	if (!out) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	for (i = 0; i < count; i++) {
		if (line_read(items, i, &out[i], errstr, errstr_size))
			goto out;
	}
	qsort(out, count, sizeof(*out), by_sku);
	/* Sorted, so repeats of a sku are neighbours: fold them into one. */
	for (i = 0; i < count; i++) {
		if (merged && !strcmp(out[merged - 1].sku, out[i].sku))
			out[merged - 1].quantity = add_saturating(out[merged - 1].quantity,
								  out[i].quantity);
		else
			out[merged++] = out[i];
	}
	*lines = out;
	*n = merged;
	out = NULL;
	result = 0;
out:
	free(out);
	return result;
}

json_t *inventory_lines_reserved_json(const struct inventory_line *lines, size_t n)
{
	json_t *items = json_array();

	for (size_t i = 0; items && i < n; i++) {
		if (json_array_append_new(items,
					  json_pack("{s:s, s:I}", "sku", lines[i].sku, "quantity",
						    (json_int_t)lines[i].quantity))) {
			json_decref(items);
			return NULL;
		}
	}
	return items;
}

json_t *inventory_lines_rejected_json(const struct inventory_line *lines, size_t n)
{
	json_t *items = json_array();

	for (size_t i = 0; items && i < n; i++) {
		if (json_array_append_new(items,
					  json_pack("{s:s, s:I, s:I}", "sku", lines[i].sku,
						    "requested", (json_int_t)lines[i].quantity,
						    "available", (json_int_t)lines[i].available))) {
			json_decref(items);
			return NULL;
		}
	}
	return items;
}
