#include "stats.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/config.h"

/* Reads column col of row 0 as a number; SQL NULL reads as 0 (a sum over
 * no rows). */
static int get_ll(const PGresult *res, int row, const char *col, long long *out, char *errstr,
		  size_t errstr_size)
{
	const char *v = es_db_get(res, row, col);

	if (!v) {
		*out = 0;
		return 0;
	}
	if (es_parse_ll(v, LLONG_MIN, LLONG_MAX, out)) {
		snprintf(errstr, errstr_size, "stats: column %s is not a whole number: %s", col, v);
		return -1;
	}
	return 0;
}

int analytics_order_counts_load(struct es_db *db, struct analytics_order_counts *c, char *errstr,
				size_t errstr_size)
{
	PGresult *res;
	int rc = -1;

	res = es_db_query(db,
			  "SELECT count(*) AS placed, "
			  "count(*) FILTER (WHERE status = 'CONFIRMED') AS confirmed, "
			  "count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled, "
			  "count(*) FILTER (WHERE status = 'PENDING') AS pending "
			  "FROM analytics_orders",
			  0, NULL, errstr, errstr_size);
	if (!res)
		return -1;
	if (get_ll(res, 0, "placed", &c->placed, errstr, errstr_size) ||
	    get_ll(res, 0, "confirmed", &c->confirmed, errstr, errstr_size) ||
	    get_ll(res, 0, "cancelled", &c->cancelled, errstr, errstr_size) ||
	    get_ll(res, 0, "pending", &c->pending, errstr, errstr_size))
		goto out;
	rc = 0;
out:
	PQclear(res);
	return rc;
}

/* Reads rows of (name, n) into list, which has room for cap entries. */
static int load_named(struct es_db *db, const char *sql, int nparams, const char *const *params,
		      struct analytics_count *list, size_t cap, size_t *count, char *errstr,
		      size_t errstr_size)
{
	PGresult *res;
	int rc = -1;

	res = es_db_query(db, sql, nparams, params, errstr, errstr_size);
	if (!res)
		return -1;
	if ((size_t)PQntuples(res) > cap) {
		snprintf(errstr, errstr_size,
			 "stats: %d distinct names where at most %zu are known", PQntuples(res),
			 cap);
		goto out;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *name = es_db_get(res, i, "name");

		if (!name) {
			snprintf(errstr, errstr_size, "stats: a row without a name");
			goto out;
		}
		if (get_ll(res, i, "n", &list[*count].n, errstr, errstr_size))
			goto out;
		list[*count].name = strdup(name);
		if (!list[*count].name) {
			snprintf(errstr, errstr_size, "out of memory");
			goto out;
		}
		(*count)++;
	}
	rc = 0;
out:
	PQclear(res);
	return rc;
}

static int load_revenue(struct es_db *db, struct analytics_stats *st, char *errstr,
			size_t errstr_size)
{
	PGresult *res;
	int rc;

	res = es_db_query(db,
			  "SELECT sum(total_cents) AS revenue FROM analytics_orders "
			  "WHERE status = 'CONFIRMED'",
			  0, NULL, errstr, errstr_size);
	if (!res)
		return -1;
	rc = get_ll(res, 0, "revenue", &st->revenue_cents, errstr, errstr_size);
	PQclear(res);
	return rc;
}

/*
 * percentile_disc picks a value that occurred, never an interpolation. The
 * aggregate over no rows gives one row of NULLs: that is "no latency yet".
 * Both times come from order-service's clock; GREATEST keeps a stray clock
 * step from turning into a negative latency.
 */
static int load_percentiles(struct es_db *db, const char *durations, bool *known, long long *p50,
			    long long *p95, long long *p99, char *errstr, size_t errstr_size)
{
	char sql[1024];
	PGresult *res;
	int rc = -1;

	snprintf(sql, sizeof(sql),
		 "SELECT percentile_disc(0.50) WITHIN GROUP (ORDER BY ms) AS p50, "
		 "percentile_disc(0.95) WITHIN GROUP (ORDER BY ms) AS p95, "
		 "percentile_disc(0.99) WITHIN GROUP (ORDER BY ms) AS p99 FROM (%s) AS d",
		 durations);
	res = es_db_query(db, sql, 0, NULL, errstr, errstr_size);
	if (!res)
		return -1;
	*known = es_db_get(res, 0, "p50") != NULL;
	if (*known && (get_ll(res, 0, "p50", p50, errstr, errstr_size) ||
		       get_ll(res, 0, "p95", p95, errstr, errstr_size) ||
		       get_ll(res, 0, "p99", p99, errstr, errstr_size)))
		goto out;
	rc = 0;
out:
	PQclear(res);
	return rc;
}

/* The saga: OrderPlaced's time to the terminal event's. */
static int load_latency(struct es_db *db, struct analytics_stats *st, char *errstr,
			size_t errstr_size)
{
	return load_percentiles(db,
				"SELECT GREATEST(0, round(extract(epoch FROM terminal_at - "
				"placed_at) * 1000))::bigint AS ms FROM analytics_orders "
				"WHERE status <> 'PENDING' AND placed_at IS NOT NULL",
				&st->has_latency, &st->p50_ms, &st->p95_ms, &st->p99_ms, errstr,
				errstr_size);
}

/* Shipping: OrderConfirmed's time (order-service's clock) to
 * ShipmentDelivered's (shipping-service's); GREATEST as above. */
static int load_delivery(struct es_db *db, struct analytics_stats *st, char *errstr,
			 size_t errstr_size)
{
	return load_percentiles(
		db,
		"SELECT GREATEST(0, round(extract(epoch FROM d.delivered_at - "
		"o.terminal_at) * 1000))::bigint AS ms "
		"FROM analytics_deliveries d JOIN analytics_orders o USING (order_id) "
		"WHERE o.status = 'CONFIRMED'",
		&st->has_delivery, &st->delivery_p50_ms, &st->delivery_p95_ms, &st->delivery_p99_ms,
		errstr, errstr_size);
}

static int load_counts(struct es_db *db, struct analytics_stats *st, char *errstr,
		       size_t errstr_size)
{
	struct {
		const char *family, *name;
		long long *n;
	} fixed[] = {
		{"payments", "processed", &st->payments_processed},
		{"payments", "failed", &st->payments_failed},
		{"payments", "refunded", &st->payments_refunded},
		{"reservations", "reserved", &st->reservations_reserved},
		{"reservations", "rejected", &st->reservations_rejected},
		{"reservations", "released", &st->reservations_released},
		{"shipments", "created", &st->shipments_created},
		{"shipments", "dispatched", &st->shipments_dispatched},
		{"shipments", "delivered", &st->shipments_delivered},
		{"shipments", "cancelled", &st->shipments_cancelled},
	};
	PGresult *res;
	int rc = -1;

	res = es_db_query(db,
			  "SELECT family, name, n FROM analytics_counts "
			  "WHERE family IN ('payments', 'reservations', 'shipments')",
			  0, NULL, errstr, errstr_size);
	if (!res)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *family = es_db_get(res, i, "family");
		const char *name = es_db_get(res, i, "name");

		for (size_t f = 0; f < sizeof(fixed) / sizeof(fixed[0]); f++) {
			if (family && name && !strcmp(family, fixed[f].family) &&
			    !strcmp(name, fixed[f].name) &&
			    get_ll(res, i, "n", fixed[f].n, errstr, errstr_size))
				goto out;
		}
	}
	rc = 0;
out:
	PQclear(res);
	return rc;
}

struct load {
	struct analytics_stats *st;
};

/* es_db_tx: every read in one snapshot. */
static int load_in_tx(struct es_db *db, void *arg, char *errstr, size_t errstr_size)
{
	struct analytics_stats *st = ((struct load *)arg)->st;
	char limit[16];

	/* A retried transaction starts over from nothing. */
	analytics_stats_release(st);
	snprintf(limit, sizeof(limit), "%d", ANALYTICS_TOP_PRODUCTS);
	if (es_db_exec(db, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL,
		       errstr, errstr_size) < 0 ||
	    analytics_order_counts_load(db, &st->orders, errstr, errstr_size) ||
	    load_revenue(db, st, errstr, errstr_size) ||
	    load_named(db,
		       "SELECT cancel_reason AS name, count(*) AS n FROM analytics_orders "
		       "WHERE status = 'CANCELLED' GROUP BY cancel_reason ORDER BY cancel_reason",
		       0, NULL, st->reasons, ANALYTICS_MAX_NAMES, &st->nreasons, errstr,
		       errstr_size) ||
	    /* Ties broken by sku, so that a rebuild gives the same list. */
	    load_named(db,
		       "SELECT i.sku AS name, sum(i.quantity) AS n "
		       "FROM analytics_order_items i JOIN analytics_orders o USING (order_id) "
		       "WHERE o.status = 'CONFIRMED' GROUP BY i.sku ORDER BY n DESC, i.sku "
		       "LIMIT $1::int",
		       1, (const char *[]){limit}, st->top, ANALYTICS_TOP_PRODUCTS, &st->ntop,
		       errstr, errstr_size) ||
	    load_latency(db, st, errstr, errstr_size) ||
	    load_delivery(db, st, errstr, errstr_size) ||
	    load_counts(db, st, errstr, errstr_size) ||
	    load_named(db,
		       "SELECT name, n FROM analytics_counts WHERE family = 'emails' "
		       "ORDER BY name",
		       0, NULL, st->emails, ANALYTICS_MAX_NAMES, &st->nemails, errstr, errstr_size))
		return -1;
	return 0;
}

int analytics_stats_load(struct es_db *db, struct analytics_stats *st, char *errstr,
			 size_t errstr_size)
{
	struct load l = {st};

	memset(st, 0, sizeof(*st));
	return es_db_tx(db, load_in_tx, &l, errstr, errstr_size);
}

void analytics_stats_release(struct analytics_stats *st)
{
	for (size_t i = 0; i < st->nreasons; i++)
		free(st->reasons[i].name);
	for (size_t i = 0; i < st->ntop; i++)
		free(st->top[i].name);
	for (size_t i = 0; i < st->nemails; i++)
		free(st->emails[i].name);
	memset(st, 0, sizeof(*st));
}

/* {"name": n, ...} */
static json_t *named_object(const struct analytics_count *list, size_t n)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < n; i++)
		json_object_set_new(o, list[i].name, json_integer(list[i].n));
	return o;
}

static json_t *latency_value(bool known, long long ms)
{
	return known ? json_integer(ms) : json_null();
}

/* The shipments' counts and their delivery time after confirmation. */
static json_t *shipments_json(const struct analytics_stats *st)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:{s:o, s:o, s:o}}", "created",
			 (json_int_t)st->shipments_created, "dispatched",
			 (json_int_t)st->shipments_dispatched, "delivered",
			 (json_int_t)st->shipments_delivered, "cancelled",
			 (json_int_t)st->shipments_cancelled, "deliveryMs", "p50",
			 latency_value(st->has_delivery, st->delivery_p50_ms), "p95",
			 latency_value(st->has_delivery, st->delivery_p95_ms), "p99",
			 latency_value(st->has_delivery, st->delivery_p99_ms));
}

json_t *analytics_stats_json(const struct analytics_stats *st)
{
	json_t *top = json_array();

	for (size_t i = 0; top && i < st->ntop; i++)
		json_array_append_new(top, json_pack("{s:s, s:I}", "sku", st->top[i].name,
						     "quantity", (json_int_t)st->top[i].n));
	/* json_pack's "o" steals each reference, also when it fails. */
	return json_pack(
		"{s:{s:I, s:I, s:I, s:I}, s:I, s:o, s:o, s:{s:o, s:o, s:o}, s:{s:I, s:I, s:I}, "
		"s:{s:I, s:I, s:I}, s:o, s:o}",
		"orders", "placed", (json_int_t)st->orders.placed, "confirmed",
		(json_int_t)st->orders.confirmed, "cancelled", (json_int_t)st->orders.cancelled,
		"pending", (json_int_t)st->orders.pending, "revenueCents",
		(json_int_t)st->revenue_cents, "cancelReasons",
		named_object(st->reasons, st->nreasons), "topProducts", top, "sagaLatencyMs", "p50",
		latency_value(st->has_latency, st->p50_ms), "p95",
		latency_value(st->has_latency, st->p95_ms), "p99",
		latency_value(st->has_latency, st->p99_ms), "payments", "processed",
		(json_int_t)st->payments_processed, "failed", (json_int_t)st->payments_failed,
		"refunded", (json_int_t)st->payments_refunded, "reservations", "reserved",
		(json_int_t)st->reservations_reserved, "rejected",
		(json_int_t)st->reservations_rejected, "released",
		(json_int_t)st->reservations_released, "emails",
		named_object(st->emails, st->nemails), "shipments", shipments_json(st));
}

json_t *analytics_stats_build(struct es_db *db, char *errstr, size_t errstr_size)
{
	struct analytics_stats st;
	json_t *body = NULL;

	if (analytics_stats_load(db, &st, errstr, errstr_size))
		goto out;
	body = analytics_stats_json(&st);
	if (!body)
		snprintf(errstr, errstr_size, "out of memory");
out:
	analytics_stats_release(&st);
	return body;
}
