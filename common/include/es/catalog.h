/*
 * catalog: the product seed that order-service (prices) and
 * inventory-service (initial stock) both start from, deploy/catalog.json.
 * It is compiled into the library; CATALOG_FILE names another file to use
 * instead.
 */
#ifndef ES_CATALOG_H
#define ES_CATALOG_H

#include <stddef.h>

#define ES_SKU_MAX 64

struct es_product {
	char sku[ES_SKU_MAX];
	char name[128];
	long price_cents;
	long initial_stock;
};

struct es_catalog {
	char currency[4]; /* ISO 4217 */
	size_t count;
	struct es_product *products; /* owned */
};

/* Loads CATALOG_FILE, or the built-in deploy/catalog.json when unset.
 * Returns 0, or -1 with errstr saying what is wrong and where. */
int es_catalog_load(struct es_catalog *cat, char *errstr, size_t errstr_size);

/* Parses a catalog from JSON text (for tests). */
int es_catalog_parse(struct es_catalog *cat, const char *json, char *errstr, size_t errstr_size);

/* The product with this sku, or NULL. */
const struct es_product *es_catalog_find(const struct es_catalog *cat, const char *sku);

void es_catalog_release(struct es_catalog *cat);

#endif
