/* What order-service sets up beyond the common daemon frame. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/config.h"
#include "es/log.h"
#include "es/metrics.h"
#include "order.h"

static const double saga_buckets[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

/* Prices start from the catalog; a restart keeps what is in the table. */
static int seed_products(struct es_db *db, const struct es_catalog *cat, char *errstr,
			 size_t errstr_size)
{
	for (size_t i = 0; i < cat->count; i++) {
		char price[24];
		const char *params[4] = {cat->products[i].sku, cat->products[i].name, price,
					 cat->currency};

		snprintf(price, sizeof(price), "%ld", cat->products[i].price_cents);
		if (es_db_exec(db,
			       "INSERT INTO products (sku, name, price_cents, currency)"
			       " VALUES ($1, $2, $3, $4) ON CONFLICT (sku) DO NOTHING",
			       4, params, errstr, errstr_size) < 0)
			return -1;
	}
	return 0;
}

int order_app_init(struct order_app *app, struct es_service *svc, char *errstr, size_t errstr_size)
{
	static const char *const outcome[] = {"outcome", NULL};

	memset(app, 0, sizeof(*app));
	app->svc = svc;
	if (es_config_long("SAGA_TIMEOUT_MS", 30000, 100, 86400000, &app->saga_timeout_ms, errstr,
			   errstr_size))
		return -1;
	if (es_catalog_load(&app->catalog, errstr, errstr_size))
		return -1;
	if (seed_products(svc->db, &app->catalog, errstr, errstr_size))
		goto fail;
	app->saga_seconds = es_histogram_register(
		svc->metrics, "es_saga_duration_seconds",
		"Time from OrderPlaced to the order's terminal status, by outcome.", outcome,
		saga_buckets, sizeof(saga_buckets) / sizeof(saga_buckets[0]), errstr, errstr_size);
	if (!app->saga_seconds)
		goto fail;
	es_info("saga timeout %ld ms, %zu products", app->saga_timeout_ms, app->catalog.count);
	return 0;
fail:
	es_catalog_release(&app->catalog);
	return -1;
}

void order_app_release(struct order_app *app)
{
	es_catalog_release(&app->catalog);
	order_saga_batch_clear(app);
}
