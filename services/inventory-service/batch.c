/*
 * batch: the rows a batch's effects read and change, copied once for the
 * whole batch (struct inventory_batch, used by handler.c).
 *
 * Under the orders' locks, one statement reads what is known of the
 * batch's orders (their reservation, rejection, cancellation) and one
 * locks and reads the stock of every sku the batch may take or give back,
 * in sku order. The effects decide on this copy in delivery order, so an
 * order later in the batch sees the stock an earlier one took or gave
 * back, and they change it only once everything else they do has
 * succeeded. Before the commit, one statement per kind of row writes what
 * they changed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"

static int out_of_memory(char *errstr, size_t errstr_size)
{
	snprintf(errstr, errstr_size, "out of memory");
	return -1;
}

void inventory_batch_release(struct inventory_batch *b)
{
	json_decref(b->orders);
	json_decref(b->stock);
	json_decref(b->reserved);
	json_decref(b->changed);
	json_decref(b->rejected);
	json_decref(b->cancelled);
	memset(b, 0, sizeof(*b));
}

int inventory_batch_start(struct inventory_batch *b, char *errstr, size_t errstr_size)
{
	inventory_batch_release(b);
	b->orders = json_object();
	b->stock = json_object();
	b->reserved = json_array();
	b->changed = json_array();
	b->rejected = json_array();
	b->cancelled = json_array();
	if (!b->orders || !b->stock || !b->reserved || !b->changed || !b->rejected ||
	    !b->cancelled) {
		inventory_batch_release(b);
		return out_of_memory(errstr, errstr_size);
	}
	return 0;
}

int inventory_batch_add_order(struct inventory_batch *b, const char *order_id)
{
	if (json_object_get(b->orders, order_id))
		return 0;
	return json_object_set_new(b->orders, order_id, json_pack("{s:s}", "order_id", order_id));
}

int inventory_batch_want_sku(struct inventory_batch *b, const char *sku)
{
	if (json_object_get(b->stock, sku))
		return 0;
	return json_object_set_new(b->stock, sku,
				   json_pack("{s:s, s:I, s:I, s:b}", "sku", sku, "available",
					     (json_int_t)0, "delta", (json_int_t)0, "found", 0));
}

/* The keys of object as a JSON array text (free()), or NULL. */
static char *keys_json(json_t *object)
{
	json_t *keys = json_array();
	char *text = NULL;
	const char *key;
	json_t *value;

	if (!keys)
		return NULL;
	json_object_foreach(object, key, value)
	{
		if (json_array_append_new(keys, json_string(key)))
			goto out;
	}
	text = json_dumps(keys, JSON_COMPACT);
out:
	json_decref(keys);
	return text;
}

/* Copies one row of the orders read into its order's object. */
static int order_row(json_t *order, const PGresult *res, int r, char *errstr, size_t errstr_size)
{
	const char *kind = es_db_get(res, r, "kind");
	const char *text;
	json_error_t jerr;
	json_t *items;

	if (!strcmp(kind, "rejection"))
		return json_object_set_new(order, "rejected", json_true()) ? -1 : 0;
	if (!strcmp(kind, "cancellation"))
		return json_object_set_new(order, "cancelled", json_true()) ? -1 : 0;
	text = es_db_get(res, r, "items");
	items = text ? json_loads(text, 0, &jerr) : NULL;
	if (!items) {
		/* jsonb is valid JSON: only memory can fail here. */
		snprintf(errstr, errstr_size, "reservation of order %s: items: %s",
			 es_db_get(res, r, "order_id"), text ? jerr.text : "none");
		return -1;
	}
	if (json_object_set_new(order, "items", items) ||
	    json_object_set_new(order, "reservation_id",
				json_string(es_db_get(res, r, "reservation_id"))) ||
	    json_object_set_new(order, "status", json_string(es_db_get(res, r, "status"))))
		return out_of_memory(errstr, errstr_size);
	return 0;
}

int inventory_batch_read_orders(struct es_db *db, struct inventory_batch *b, char *errstr,
				size_t errstr_size)
{
	/* The ids as a list the planner probes each table's key with
	 * (ES_DB_ROWS_PARAMS); these tables grow with every order. */
	static const char sql[] = ES_DB_PLAN_EACH_RUN
		"SELECT order_id, 'reservation' AS kind, reservation_id::text AS reservation_id,"
		" status, items::text AS items FROM reservations"
		" WHERE order_id = ANY (ARRAY(SELECT json_array_elements_text($1::json)))"
		" UNION ALL SELECT order_id, 'rejection', NULL, NULL, NULL FROM rejections"
		" WHERE order_id = ANY (ARRAY(SELECT json_array_elements_text($1::json)))"
		" UNION ALL SELECT order_id, 'cancellation', NULL, NULL, NULL FROM cancellations"
		" WHERE order_id = ANY (ARRAY(SELECT json_array_elements_text($1::json)))";
	char *ids;
	PGresult *res;
	int rc = 0;

	if (!json_object_size(b->orders))
		return 0;
	ids = keys_json(b->orders);
	if (!ids)
		return out_of_memory(errstr, errstr_size);
	res = es_db_query(db, sql, 1, (const char *const[]){ids}, errstr, errstr_size);
	free(ids);
	if (!res)
		return -1;
	for (int r = 0; rc == 0 && r < PQntuples(res); r++) {
		json_t *order = json_object_get(b->orders, es_db_get(res, r, "order_id"));

		if (order && order_row(order, res, r, errstr, errstr_size))
			rc = -1;
	}
	PQclear(res);
	return rc;
}

int inventory_batch_read_stock(struct es_db *db, struct inventory_batch *b, char *errstr,
			       size_t errstr_size)
{
	char *skus;
	PGresult *res;

	if (!json_object_size(b->stock))
		return 0;
	skus = keys_json(b->stock);
	if (!skus)
		return out_of_memory(errstr, errstr_size);
	/* In sku order, the order every transaction locks stock rows in, so
	 * two batches cannot deadlock. stock holds the catalog's skus and
	 * does not grow: its plan can be kept. */
	res = es_db_query(db,
			  "SELECT sku, available FROM stock"
			  " WHERE sku = ANY (ARRAY(SELECT json_array_elements_text($1::json)))"
			  " ORDER BY sku COLLATE \"C\" FOR UPDATE",
			  1, (const char *const[]){skus}, errstr, errstr_size);
	free(skus);
	if (!res)
		return -1;
	for (int r = 0; r < PQntuples(res); r++) {
		json_t *row = json_object_get(b->stock, es_db_get(res, r, "sku"));

		if (row && (json_object_set_new(row, "available",
						json_integer(strtoll(es_db_get(res, r, "available"),
								     NULL, 10))) ||
			    json_object_set_new(row, "found", json_true()))) {
			PQclear(res);
			return out_of_memory(errstr, errstr_size);
		}
	}
	PQclear(res);
	return 0;
}

json_t *inventory_batch_order(struct inventory_batch *b, const char *order_id)
{
	return json_object_get(b->orders, order_id);
}

long long inventory_batch_available(struct inventory_batch *b, const char *sku)
{
	return json_integer_value(json_object_get(json_object_get(b->stock, sku), "available"));
}

/* Adds v to the integer at key in object. 0, or -1 when out of memory. */
static int add_to(json_t *object, const char *key, long long v)
{
	long long now = json_integer_value(json_object_get(object, key));

	return json_object_set_new(object, key, json_integer(now + v));
}

int inventory_batch_stock_add(struct inventory_batch *b, const char *sku, long long quantity)
{
	json_t *row;

	if (inventory_batch_want_sku(b, sku))
		return -1;
	row = json_object_get(b->stock, sku);
	if (add_to(row, "available", quantity) || add_to(row, "delta", quantity))
		return -1;
	return 0;
}

int inventory_batch_reserve(struct inventory_batch *b, json_t *order, const char *reservation_id,
			    json_t *items)
{
	if (json_object_set_new(order, "reservation_id", json_string(reservation_id)) ||
	    json_object_set_new(order, "status", json_string("RESERVED")) ||
	    json_object_set(order, "items", items) ||
	    json_object_set_new(order, "new", json_true()))
		return -1;
	return json_array_append(b->reserved, order);
}

int inventory_batch_set_status(struct inventory_batch *b, json_t *order, const char *status)
{
	if (json_object_set_new(order, "status", json_string(status)))
		return -1;
	/* A reservation made by this batch is inserted as it ends up; one
	 * read is updated, once. */
	if (json_is_true(json_object_get(order, "new")) ||
	    json_is_true(json_object_get(order, "changed")))
		return 0;
	if (json_object_set_new(order, "changed", json_true()))
		return -1;
	return json_array_append(b->changed, order);
}

int inventory_batch_reject(struct inventory_batch *b, json_t *order, json_t *items)
{
	json_t *id = json_object_get(order, "order_id");

	if (json_object_set_new(order, "rejected", json_true()))
		return -1;
	return json_array_append_new(b->rejected,
				     json_pack("{s:O, s:O}", "order_id", id, "items", items));
}

int inventory_batch_cancel(struct inventory_batch *b, json_t *order, const char *reason)
{
	json_t *id = json_object_get(order, "order_id");

	if (json_is_true(json_object_get(order, "cancelled")))
		return 0; /* the first reason stays */
	if (json_object_set_new(order, "cancelled", json_true()))
		return -1;
	return json_array_append_new(b->cancelled,
				     json_pack("{s:O, s:s}", "order_id", id, "reason", reason));
}

/* The stock rows whose available changed: rows read (found) or not. */
static int stock_changes(struct inventory_batch *b, json_t *found, json_t *missing)
{
	const char *sku;
	json_t *row;

	json_object_foreach(b->stock, sku, row)
	{
		if (json_integer_value(json_object_get(row, "delta")) == 0)
			continue;
		if (json_array_append(json_is_true(json_object_get(row, "found")) ? found : missing,
				      row))
			return -1;
	}
	return 0;
}

int inventory_batch_write(struct es_db *db, struct inventory_batch *b, char *errstr,
			  size_t errstr_size)
{
	json_t *found = json_array(), *missing = json_array();
	int rc = -1;

	if (!found || !missing || stock_changes(b, found, missing)) {
		out_of_memory(errstr, errstr_size);
		goto out;
	}
	/* Rows this batch holds locked (read FOR UPDATE): what its effects
	 * took and gave back, added up per sku. The CHECK on available is
	 * the last line of defence: a batch that would oversell fails. */
	if (es_db_exec_rows_all(
		    db,
		    "UPDATE stock s SET available = s.available + r.delta, updated_at = now()"
		    " FROM json_to_recordset($1::json) AS r(sku text, delta bigint)"
		    " WHERE s.sku = r.sku",
		    found, errstr, errstr_size))
		goto out;
	/* Stock given back to a sku whose row is gone (removed by hand) is
	 * not lost: the row comes back. Nothing can be taken from a missing
	 * row, so these only add. */
	if (es_db_exec_rows(db,
			    "INSERT INTO stock AS s (sku, available)"
			    " SELECT r.sku, r.delta FROM json_to_recordset($1::json)"
			    " AS r(sku text, delta bigint) ORDER BY r.sku COLLATE \"C\""
			    " ON CONFLICT (sku) DO UPDATE"
			    " SET available = s.available + EXCLUDED.available, updated_at = now()",
			    missing, 0, NULL, errstr, errstr_size) < 0)
		goto out;
	/* No ON CONFLICT below: under the orders' locks no other transaction
	 * can have written these orders' rows meanwhile; if one did without
	 * the lock, the unique violation retries the batch, which then reads
	 * them. */
	if (es_db_exec_rows(db,
			    "INSERT INTO reservations (order_id, reservation_id, items, status)"
			    " SELECT r.order_id, r.reservation_id::uuid, r.items, r.status"
			    " FROM json_to_recordset($1::json) AS r(order_id text,"
			    " reservation_id text, items jsonb, status text)",
			    b->reserved, 0, NULL, errstr, errstr_size) < 0 ||
	    es_db_exec_rows_all(
		    db,
		    ES_DB_PLAN_EACH_RUN
		    "UPDATE reservations t SET status = r.status, updated_at = now()"
		    " FROM json_to_recordset($1::json) AS r(order_id text, status text)"
		    " WHERE t.order_id = r.order_id AND t.order_id = ANY (ARRAY("
		    "SELECT k.order_id FROM json_to_recordset($1::json) AS k(order_id text)))",
		    b->changed, errstr, errstr_size) ||
	    es_db_exec_rows(db,
			    "INSERT INTO rejections (order_id, items)"
			    " SELECT r.order_id, r.items FROM json_to_recordset($1::json)"
			    " AS r(order_id text, items jsonb)",
			    b->rejected, 0, NULL, errstr, errstr_size) < 0 ||
	    es_db_exec_rows(db,
			    "INSERT INTO cancellations (order_id, reason)"
			    " SELECT r.order_id, r.reason FROM json_to_recordset($1::json)"
			    " AS r(order_id text, reason text)",
			    b->cancelled, 0, NULL, errstr, errstr_size) < 0)
		goto out;
	rc = 0;
out:
	json_decref(found);
	json_decref(missing);
	inventory_batch_release(b);
	return rc;
}
