#include "fixture.h"

#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "es/catalog.h"
#include "es/events.h"
#include "testsupport.h"

struct es_db *it_connect(const char *conninfo, const char *schema)
{
	char errstr[512];
	struct es_db *db = es_db_connect(conninfo, schema, 10000, errstr, sizeof(errstr));

	ck_assert_msg(db, "connect to schema %s: %s", schema, errstr);
	return db;
}

void it_fixture_setup(struct it_fixture *f, const char *conninfo, const char *catalog)
{
	struct es_catalog cat;
	char errstr[512];

	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(es_test_unique_name(f->schema, sizeof(f->schema), "inv"), 0);
	f->db = it_connect(conninfo, f->schema);
	ck_assert_msg(es_db_migrate_list(f->db, inventory_migrations, inventory_migrations_count,
					 errstr, sizeof(errstr)) >= 0,
		      "%s", errstr);
	ck_assert_msg(es_catalog_parse(&cat, catalog, errstr, sizeof(errstr)) == 0, "%s", errstr);
	ck_assert_msg(inventory_stock_seed(f->db, &cat, errstr, sizeof(errstr)) == (int)cat.count,
		      "%s", errstr);
	es_catalog_release(&cat);
	f->metrics = es_metrics_new();
	ck_assert_ptr_nonnull(f->metrics);
	ck_assert_msg(inventory_init(&f->inv, IT_TOPIC, f->metrics, errstr, sizeof(errstr)) == 0,
		      "%s", errstr);
}

void it_fixture_teardown(struct it_fixture *f)
{
	es_db_free(f->db);
	es_metrics_free(f->metrics);
}

static struct es_event *order_event(const char *type, const char *order_id, json_t *data)
{
	struct es_event *ev = es_event_new("order-service", type, order_id, NULL, NULL, data);
	char errstr[256];

	ck_assert_ptr_nonnull(ev);
	ck_assert_msg(es_event_data_check(ev, errstr, sizeof(errstr)) == 0, "%s", errstr);
	return ev;
}

struct es_event *it_placed(const char *order_id, const char *items)
{
	json_error_t jerr;
	json_t *lines = json_loads(items, 0, &jerr);
	size_t i;
	json_t *line;

	ck_assert_msg(lines, "%s: %s", items, jerr.text);
	json_array_foreach(lines, i, line)
	{
		json_object_set_new(line, "unitPriceCents", json_integer(100));
	}
	return order_event(ES_ORDER_PLACED, order_id,
			   json_pack("{s:s, s:s, s:s, s:o, s:i, s:s, s:s}", "orderId", order_id,
				     "customerId", "c-1", "customerEmail", "c1@example.com",
				     "items", lines, "totalCents", 100, "currency", "EUR",
				     "paymentToken", "tok_visa"));
}

struct es_event *it_cancelled(const char *order_id, const char *reason)
{
	return order_event(ES_ORDER_CANCELLED, order_id,
			   json_pack("{s:s, s:s, s:s}", "orderId", order_id, "reason", reason,
				     "detail", "test"));
}

struct es_event *it_confirmed(const char *order_id, const char *reservation_id)
{
	return order_event(ES_ORDER_CONFIRMED, order_id,
			   json_pack("{s:s, s:s, s:s, s:i, s:s}", "orderId", order_id, "paymentId",
				     "p-1", "reservationId", reservation_id, "totalCents", 100,
				     "currency", "EUR"));
}

void it_order_id(char out[ES_UUID_LEN + 1])
{
	es_uuid_new(out);
}

long long it_stock(struct es_db *db, const char *sku)
{
	return it_number(db, "SELECT available FROM stock WHERE sku = $1", sku);
}

long long it_number(struct es_db *db, const char *sql, const char *param)
{
	const char *params[1] = {param};
	char errstr[512];
	PGresult *res;
	const char *v;
	long long n;

	res = es_db_query(db, sql, param ? 1 : 0, param ? params : NULL, errstr, sizeof(errstr));
	ck_assert_msg(res, "%s: %s", sql, errstr);
	ck_assert_msg(PQntuples(res) == 1, "%s: %d rows", sql, PQntuples(res));
	v = PQgetvalue(res, 0, 0);
	ck_assert_msg(v && *v, "%s: NULL", sql);
	n = strtoll(v, NULL, 10);
	PQclear(res);
	return n;
}
