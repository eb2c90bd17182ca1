#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"

int inventory_order_lock(struct es_db *db, const char *order_id, char *errstr, size_t errstr_size)
{
	return es_db_lock_keys(db, INVENTORY_LOCK_SPACE, &order_id, 1, errstr, errstr_size);
}

static bool is_true(const PGresult *res, const char *col)
{
	const char *v = es_db_get(res, 0, col);

	return v && !strcmp(v, "t");
}

enum inventory_order_state inventory_order_state(struct es_db *db, const char *order_id,
						 char *errstr, size_t errstr_size)
{
	const char *params[1] = {order_id};
	enum inventory_order_state state;
	PGresult *res;

	res = es_db_query(db,
			  "SELECT EXISTS (SELECT 1 FROM reservations WHERE order_id = $1)"
			  " OR EXISTS (SELECT 1 FROM rejections WHERE order_id = $1) AS decided,"
			  " EXISTS (SELECT 1 FROM cancellations WHERE order_id = $1) AS cancelled",
			  1, params, errstr, errstr_size);
	if (!res)
		return INVENTORY_ORDER_ERROR;
	if (is_true(res, "decided"))
		state = INVENTORY_ORDER_DECIDED;
	else if (is_true(res, "cancelled"))
		state = INVENTORY_ORDER_CANCELLED;
	else
		state = INVENTORY_ORDER_NEW;
	PQclear(res);
	return state;
}

/* Runs an INSERT with the JSON text of items as its last parameter. */
static int insert_with_items(struct es_db *db, const char *sql, int nparams, const char **params,
			     json_t *items, char *errstr, size_t errstr_size)
{
	char *text = json_dumps(items, JSON_COMPACT);
	int rc;

	if (!text) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	params[nparams - 1] = text;
	rc = es_db_exec_one(db, sql, nparams, params, errstr, errstr_size);
	free(text);
	return rc;
}

int inventory_reservation_insert(struct es_db *db, const char *order_id, const char *reservation_id,
				 json_t *items, char *errstr, size_t errstr_size)
{
	const char *params[3] = {order_id, reservation_id, NULL};

	return insert_with_items(
		db,
		"INSERT INTO reservations (order_id, reservation_id, items, status)"
		" VALUES ($1, $2::uuid, $3::jsonb, 'RESERVED')",
		3, params, items, errstr, errstr_size);
}

int inventory_rejection_insert(struct es_db *db, const char *order_id, json_t *items, char *errstr,
			       size_t errstr_size)
{
	const char *params[2] = {order_id, NULL};

	return insert_with_items(db,
				 "INSERT INTO rejections (order_id, items) VALUES ($1, $2::jsonb)",
				 2, params, items, errstr, errstr_size);
}

int inventory_cancellation_insert(struct es_db *db, const char *order_id, const char *reason,
				  char *errstr, size_t errstr_size)
{
	const char *params[2] = {order_id, reason};

	if (es_db_exec(db,
		       "INSERT INTO cancellations (order_id, reason) VALUES ($1, $2)"
		       " ON CONFLICT (order_id) DO NOTHING",
		       2, params, errstr, errstr_size) < 0)
		return -1;
	return 0;
}

/* Parses the items column (jsonb as text). Returns a new reference or
 * NULL with errstr filled. */
static json_t *items_load(const PGresult *res, char *errstr, size_t errstr_size)
{
	const char *text = es_db_get(res, 0, "items");
	json_error_t jerr;
	json_t *items;

	if (!text) {
		snprintf(errstr, errstr_size, "reservation without items");
		return NULL;
	}
	items = json_loads(text, 0, &jerr);
	if (!items)
		snprintf(errstr, errstr_size, "reservation items: %s", jerr.text);
	return items;
}

int inventory_reservation_give_back(struct es_db *db, const char *order_id,
				    char reservation_id[ES_UUID_LEN + 1], json_t **items,
				    char *errstr, size_t errstr_size)
{
	const char *params[1] = {order_id};
	int result = -1;
	PGresult *res;
	const char *rid;

	*items = NULL;
	/* The status condition makes the release happen once, whoever asks
	 * again later. */
	res = es_db_query(db,
			  "UPDATE reservations SET status = 'RELEASED', updated_at = now()"
			  " WHERE order_id = $1 AND status = 'RESERVED'"
			  " RETURNING reservation_id::text AS reservation_id, items::text AS items",
			  1, params, errstr, errstr_size);
	if (!res)
		return -1;
	if (PQntuples(res) == 0) {
		result = 0;
		goto out;
	}
	rid = es_db_get(res, 0, "reservation_id");
	snprintf(reservation_id, ES_UUID_LEN + 1, "%s", rid ? rid : "");
	*items = items_load(res, errstr, errstr_size);
	if (*items)
		result = 1;
out:
	PQclear(res);
	return result;
}

int inventory_reservation_get(struct es_db *db, const char *order_id, json_t **out, char *errstr,
			      size_t errstr_size)
{
	const char *params[1] = {order_id};
	const char *rid, *status;
	int result = -1;
	json_t *items;
	PGresult *res;

	*out = NULL;
	res = es_db_query(db,
			  "SELECT reservation_id::text AS reservation_id, status,"
			  " items::text AS items FROM reservations WHERE order_id = $1",
			  1, params, errstr, errstr_size);
	if (!res)
		return -1;
	if (PQntuples(res) == 0) {
		result = 0;
		goto out;
	}
	items = items_load(res, errstr, errstr_size);
	if (!items)
		goto out;
	rid = es_db_get(res, 0, "reservation_id");
	status = es_db_get(res, 0, "status");
	*out = json_pack("{s:s, s:s, s:s, s:o}", "orderId", order_id, "reservationId",
			 rid ? rid : "", "status", status ? status : "", "items", items);
	if (!*out) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	result = 1;
out:
	PQclear(res);
	return result;
}
