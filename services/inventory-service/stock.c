#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"

int inventory_stock_seed(struct es_db *db, const struct es_catalog *cat, char *errstr,
			 size_t errstr_size)
{
	int added = 0;

	for (size_t i = 0; i < cat->count; i++) {
		const struct es_product *p = &cat->products[i];
		char stock[32];
		const char *params[2] = {p->sku, stock};
		long n;

		snprintf(stock, sizeof(stock), "%ld", p->initial_stock);
		/* DO NOTHING: stock that exists has been sold from since; a
		 * restart must not hand it out again. */
		n = es_db_exec(db,
			       "INSERT INTO stock (sku, available) VALUES ($1, $2::bigint)"
			       " ON CONFLICT (sku) DO NOTHING",
			       2, params, errstr, errstr_size);
		if (n < 0)
			return -1;
		added += (int)n;
	}
	return added;
}

int inventory_stock_get(struct es_db *db, const char *sku, long long *available, char *errstr,
			size_t errstr_size)
{
	const char *params[1] = {sku};
	PGresult *res;
	const char *v;

	res = es_db_query(db, "SELECT available FROM stock WHERE sku = $1", 1, params, errstr,
			  errstr_size);
	if (!res)
		return -1;
	v = PQntuples(res) == 1 ? es_db_get(res, 0, "available") : NULL;
	*available = v ? strtoll(v, NULL, 10) : 0;
	PQclear(res);
	return 0;
}

/* Takes quantity of sku if that much is there. Returns 1 taken, 0 short or
 * unknown sku, -1 on error. The condition in the WHERE clause is what
 * prevents overselling: a concurrent transaction that updated the row
 * first makes PostgreSQL re-check it against the committed row. */
static int take(struct es_db *db, const struct inventory_line *line, char *errstr,
		size_t errstr_size)
{
	char quantity[32];
	const char *params[2] = {line->sku, quantity};
	long n;

	snprintf(quantity, sizeof(quantity), "%lld", line->quantity);
	n = es_db_exec(db,
		       "UPDATE stock SET available = available - $2::bigint, updated_at = now()"
		       " WHERE sku = $1 AND available >= $2::bigint",
		       2, params, errstr, errstr_size);
	if (n < 0)
		return -1;
	return n == 1;
}

int inventory_stock_reserve(struct es_db *db, struct inventory_line *lines, size_t n, char *errstr,
			    size_t errstr_size)
{
	int taken = 1;
	size_t i;

	/* The savepoint lets a short line undo the lines taken before it
	 * while the transaction (with its inbox claim) goes on. */
	if (es_db_exec(db, "SAVEPOINT inventory_reserve", 0, NULL, errstr, errstr_size) < 0)
		return -1;
	for (i = 0; i < n && taken == 1; i++)
		taken = take(db, &lines[i], errstr, errstr_size);
	if (taken < 0)
		return -1;
	if (taken) {
		if (es_db_exec(db, "RELEASE SAVEPOINT inventory_reserve", 0, NULL, errstr,
			       errstr_size) < 0)
			return -1;
		return 1;
	}
	if (es_db_exec(db, "ROLLBACK TO SAVEPOINT inventory_reserve", 0, NULL, errstr,
		       errstr_size) < 0 ||
	    es_db_exec(db, "RELEASE SAVEPOINT inventory_reserve", 0, NULL, errstr, errstr_size) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (inventory_stock_get(db, lines[i].sku, &lines[i].available, errstr, errstr_size))
			return -1;
	}
	return 0;
}

int inventory_stock_give_back(struct es_db *db, const struct inventory_line *lines, size_t n,
			      char *errstr, size_t errstr_size)
{
	for (size_t i = 0; i < n; i++) {
		char quantity[32];
		const char *params[2] = {lines[i].sku, quantity};
		long rows;

		snprintf(quantity, sizeof(quantity), "%lld", lines[i].quantity);
		/* An upsert, so that stock given back is never lost, even if
		 * its row was removed by hand in the meantime. */
		rows = es_db_exec(db,
				  "INSERT INTO stock (sku, available) VALUES ($1, $2::bigint)"
				  " ON CONFLICT (sku) DO UPDATE"
				  " SET available = stock.available + EXCLUDED.available,"
				  " updated_at = now()",
				  2, params, errstr, errstr_size);
		if (rows < 0)
			return -1;
	}
	return 0;
}

json_t *inventory_stock_list(struct es_db *db, char *errstr, size_t errstr_size)
{
	json_t *stock = NULL;
	PGresult *res;

	/* COLLATE "C": byte order, the same as the lines' strcmp. */
	res = es_db_query(db, "SELECT sku, available FROM stock ORDER BY sku COLLATE \"C\"", 0,
			  NULL, errstr, errstr_size);
	if (!res)
		return NULL;
	stock = json_array();
	for (int i = 0; stock && i < PQntuples(res); i++) {
		const char *sku = es_db_get(res, i, "sku");
		const char *available = es_db_get(res, i, "available");

		if (json_array_append_new(
			    stock, json_pack("{s:s, s:I}", "sku", sku ? sku : "", "available",
					     (json_int_t)strtoll(available ? available : "0", NULL,
								 10)))) {
			json_decref(stock);
			stock = NULL;
		}
	}
	PQclear(res);
	if (!stock) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	return json_pack("{s:o}", "stock", stock);
}
