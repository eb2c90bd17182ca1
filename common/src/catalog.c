#include "es/catalog.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/config.h"

/* deploy/catalog.json, embedded at build time (common/CMakeLists.txt). */
extern const char es_builtin_catalog[];

int es_catalog_parse(struct es_catalog *cat, const char *json, char *errstr, size_t errstr_size)
{
	json_error_t jerr;
	json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
	json_t *products, *p;
	const char *currency;
	size_t i;
	int result = -1;

	memset(cat, 0, sizeof(*cat));
	if (!root) {
		snprintf(errstr, errstr_size, "catalog: %s (line %d)", jerr.text, jerr.line);
		return -1;
	}
	currency = json_string_value(json_object_get(root, "currency"));
	products = json_object_get(root, "products");
	if (!currency || strlen(currency) != 3 || !json_is_array(products) ||
	    json_array_size(products) == 0) {
		snprintf(errstr, errstr_size,
			 "catalog: needs \"currency\" (3 letters) and a non-empty \"products\" "
			 "array");
		goto out;
	}
	snprintf(cat->currency, sizeof(cat->currency), "%s", currency);
	cat->products = calloc(json_array_size(products), sizeof(*cat->products));
	if (!cat->products) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	json_array_foreach(products, i, p)
	{
		struct es_product *prod = &cat->products[i];
		const char *sku = json_string_value(json_object_get(p, "sku"));
		const char *name = json_string_value(json_object_get(p, "name"));
		json_t *price = json_object_get(p, "priceCents");
		json_t *stock = json_object_get(p, "initialStock");

		if (!sku || !*sku || strlen(sku) >= sizeof(prod->sku) || !name ||
		    strlen(name) >= sizeof(prod->name) || !json_is_integer(price) ||
		    json_integer_value(price) < 0 || !json_is_integer(stock) ||
		    json_integer_value(stock) < 0) {
			snprintf(errstr, errstr_size,
				 "catalog: product %zu needs sku, name, priceCents >= 0 and "
				 "initialStock >= 0",
				 i);
			goto out;
		}
		if (es_catalog_find(cat, sku)) {
			snprintf(errstr, errstr_size, "catalog: sku %s is listed twice", sku);
			goto out;
		}
		snprintf(prod->sku, sizeof(prod->sku), "%s", sku);
		snprintf(prod->name, sizeof(prod->name), "%s", name);
		prod->price_cents = (long)json_integer_value(price);
		prod->initial_stock = (long)json_integer_value(stock);
		cat->count++;
	}
	result = 0;
out:
	json_decref(root);
	if (result)
		es_catalog_release(cat);
	return result;
}

int es_catalog_load(struct es_catalog *cat, char *errstr, size_t errstr_size)
{
	const char *path = es_config_str("CATALOG_FILE", NULL);
	char *text;
	long size;
	FILE *f;
	int rc;

	if (!path)
		return es_catalog_parse(cat, es_builtin_catalog, errstr, errstr_size);
	f = fopen(path, "r");
	if (!f) {
		snprintf(errstr, errstr_size, "CATALOG_FILE: cannot open %s", path);
		return -1;
	}
	if (fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || size > 1 << 20 ||
	    fseek(f, 0, SEEK_SET)) {
		fclose(f);
		snprintf(errstr, errstr_size, "CATALOG_FILE: %s unreadable or over 1 MiB", path);
		return -1;
	}
	text = calloc(1, (size_t)size + 1);
	if (!text || fread(text, 1, (size_t)size, f) != (size_t)size) {
		free(text);
		fclose(f);
		snprintf(errstr, errstr_size, "CATALOG_FILE: cannot read %s", path);
		return -1;
	}
	fclose(f);
	rc = es_catalog_parse(cat, text, errstr, errstr_size);
	free(text);
	return rc;
}

const struct es_product *es_catalog_find(const struct es_catalog *cat, const char *sku)
{
	for (size_t i = 0; i < cat->count; i++) {
		if (!strcmp(cat->products[i].sku, sku))
			return &cat->products[i];
	}
	return NULL;
}

void es_catalog_release(struct es_catalog *cat)
{
	free(cat->products);
	memset(cat, 0, sizeof(*cat));
}
