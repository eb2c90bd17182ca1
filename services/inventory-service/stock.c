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

/* The lines as one JSON parameter: [{"sku": ..., "quantity": ...}, ...].
 * Returns a string to free, or NULL (errstr filled). */
static char *lines_json(const struct inventory_line *lines, size_t n, char *errstr,
			size_t errstr_size)
{
	json_t *arr = json_array();
	char *text = NULL;

	for (size_t i = 0; arr && i < n; i++) {
		if (json_array_append_new(arr,
					  json_pack("{s:s, s:I}", "sku", lines[i].sku, "quantity",
						    (json_int_t)lines[i].quantity))) {
			json_decref(arr);
			arr = NULL;
		}
	}
	if (arr)
		text = json_dumps(arr, JSON_COMPACT);
	json_decref(arr);
	if (!text)
		snprintf(errstr, errstr_size, "out of memory");
	return text;
}

/*
 * All or nothing in two statements, without a savepoint: first lock every
 * line's stock row (in sku order, the order every reservation locks them
 * in, so two of them cannot deadlock) and read its stock; then, only when
 * every line is there, take them all. The lock is what prevents
 * overselling: no other transaction can change the rows between the two.
 */
int inventory_stock_reserve(struct es_db *db, struct inventory_line *lines, size_t n, char *errstr,
			    size_t errstr_size)
{
	char *json = lines_json(lines, n, errstr, errstr_size);
	const char *params[1] = {json};
	PGresult *res;
	int enough = 1;
	long taken;

	if (!json)
		return -1;
	res = es_db_query(db,
			  "SELECT s.sku, s.available FROM stock s"
			  " WHERE s.sku IN (SELECT l.sku FROM json_to_recordset($1::json)"
			  " AS l(sku text, quantity bigint))"
			  " ORDER BY s.sku COLLATE \"C\" FOR UPDATE OF s",
			  1, params, errstr, errstr_size);
	if (!res) {
		free(json);
		return -1;
	}
	/* Both in sku order (byte order): one pass matches them up; a line
	 * whose sku has no row has nothing available. */
	for (size_t i = 0, row = 0; i < n; i++) {
		const char *sku = row < (size_t)PQntuples(res) ? es_db_get(res, (int)row, "sku")
							       : NULL;

		lines[i].available = 0;
		if (sku && !strcmp(sku, lines[i].sku))
			lines[i].available = strtoll(es_db_get(res, (int)row++, "available"), NULL,
						     10);
		enough &= lines[i].available >= lines[i].quantity;
	}
	PQclear(res);
	if (!enough) {
		free(json);
		return 0;
	}
	taken = es_db_exec(
		db,
		"UPDATE stock s SET available = s.available - l.quantity, updated_at = now()"
		" FROM json_to_recordset($1::json) AS l(sku text, quantity bigint)"
		" WHERE s.sku = l.sku",
		1, params, errstr, errstr_size);
	free(json);
	if (taken < 0)
		return -1;
	if ((size_t)taken != n) {
		snprintf(errstr, errstr_size, "reserve: %ld of %zu stock rows taken", taken, n);
		return -1;
	}
	return 1;
}

int inventory_stock_give_back(struct es_db *db, const struct inventory_line *lines, size_t n,
			      char *errstr, size_t errstr_size)
{
	char *json = lines_json(lines, n, errstr, errstr_size);
	const char *params[1] = {json};
	long rows;

	if (!json)
		return -1;
	/* An upsert, so that stock given back is never lost, even if its row
	 * was removed by hand in the meantime; in sku order, as reserve
	 * locks. */
	rows = es_db_exec(db,
			  "INSERT INTO stock AS s (sku, available)"
			  " SELECT l.sku, l.quantity FROM json_to_recordset($1::json)"
			  " AS l(sku text, quantity bigint) ORDER BY l.sku COLLATE \"C\""
			  " ON CONFLICT (sku) DO UPDATE"
			  " SET available = s.available + EXCLUDED.available, updated_at = now()",
			  1, params, errstr, errstr_size);
	free(json);
	return rows < 0 ? -1 : 0;
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
