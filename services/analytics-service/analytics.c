#include "analytics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "es/clock.h"
#include "es/events.h"
#include "es/dispatch.h"
#include "es/log.h"
#include "stats.h"

/* The gauge is refreshed at most this often, however busy the topics. */
#define GAUGE_REFRESH_MS 1000

struct effect_row {
	const char *type;
	enum analytics_effect effect;
	const char *family; /* ANALYTICS_COUNT */
	const char *name; /* ANALYTICS_COUNT; NULL: the data's template */
};

static const struct effect_row effects[] = {
	{ES_ORDER_PLACED, ANALYTICS_PLACE, NULL, NULL},
	{ES_ORDER_CONFIRMED, ANALYTICS_CONFIRM, NULL, NULL},
	{ES_ORDER_CANCELLED, ANALYTICS_CANCEL, NULL, NULL},
	{ES_PAYMENT_PROCESSED, ANALYTICS_COUNT, "payments", "processed"},
	{ES_PAYMENT_FAILED, ANALYTICS_COUNT, "payments", "failed"},
	{ES_PAYMENT_REFUNDED, ANALYTICS_COUNT, "payments", "refunded"},
	{ES_INVENTORY_RESERVED, ANALYTICS_COUNT, "reservations", "reserved"},
	{ES_INVENTORY_REJECTED, ANALYTICS_COUNT, "reservations", "rejected"},
	{ES_INVENTORY_RELEASED, ANALYTICS_COUNT, "reservations", "released"},
	{ES_EMAIL_SENT, ANALYTICS_COUNT, "emails", NULL},
	{ES_SHIPMENT_CREATED, ANALYTICS_COUNT, "shipments", "created"},
	{ES_SHIPMENT_DISPATCHED, ANALYTICS_COUNT, "shipments", "dispatched"},
	{ES_SHIPMENT_DELIVERED, ANALYTICS_COUNT, "shipments", "delivered"},
	{ES_SHIPMENT_CANCELLED, ANALYTICS_COUNT, "shipments", "cancelled"},
};

enum analytics_effect analytics_effect_of(const struct es_event *ev, const char **family,
					  const char **name)
{
	*family = NULL;
	*name = NULL;
	for (size_t i = 0; i < sizeof(effects) / sizeof(effects[0]); i++) {
		if (strcmp(effects[i].type, ev->type))
			continue;
		if (effects[i].effect == ANALYTICS_COUNT) {
			*family = effects[i].family;
			*name = effects[i].name ? effects[i].name : es_data_str(ev, "template");
			if (!*name)
				return ANALYTICS_NONE;
		}
		return effects[i].effect;
	}
	return ANALYTICS_NONE;
}

int analytics_check(const struct es_event *ev, long long *time_ms, char *reason, size_t reason_size)
{
	if (!es_event_type_known(ev->type)) {
		snprintf(reason, reason_size, "unknown event type %s", ev->type);
		return -1;
	}
	if (es_event_data_check(ev, reason, reason_size))
		return -1;
	/* The envelope parser checked the time already; an event made in
	 * process (a test, a future producer) may not have been parsed. */
	if (!ev->time || es_time_parse(ev->time, time_ms)) {
		snprintf(reason, reason_size, "%s: attribute 'time' is not an RFC 3339 timestamp",
			 ev->type);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ the effects */

/* The event's time, checked by analytics_check before the transaction. */
static long long event_ms(const struct es_event *ev)
{
	long long ms = 0;

	es_time_parse(ev->time, &ms);
	return ms;
}

/*
 * OrderPlaced: the row (or, if a terminal event came first, its missing
 * placed-side columns) and the lines. The placed event's total wins over
 * OrderConfirmed's, whichever came first, so both orders of arrival give
 * the same row. Lines of one sku are summed: the contract forbids
 * duplicate sku lines, but a sum is what "quantity sold" means anyway.
 */
static enum es_handler_result place(struct es_effect *fx)
{
	const struct es_event *ev = fx->ev;
	char total[32], when[32];
	char *items;
	long n;

	snprintf(total, sizeof(total), "%lld", es_data_int(ev, "totalCents"));
	snprintf(when, sizeof(when), "%lld", event_ms(ev));
	n = es_db_exec(fx->db,
		       "INSERT INTO analytics_orders AS o "
		       "(order_id, total_cents, currency, placed_at) "
		       "VALUES ($1, $2::bigint, $3, "
		       "'epoch'::timestamptz + $4::bigint * interval '1 millisecond') "
		       "ON CONFLICT (order_id) DO UPDATE SET total_cents = EXCLUDED.total_cents, "
		       "currency = EXCLUDED.currency, placed_at = EXCLUDED.placed_at, "
		       "updated_at = now()",
		       4, (const char *[]){ev->subject, total, es_data_str(ev, "currency"), when},
		       fx->reason, sizeof(fx->reason));
	if (n < 0)
		return es_effect_db_failed(fx);

	items = json_dumps(json_object_get(ev->data, "items"), JSON_COMPACT);
	if (!items) {
		snprintf(fx->reason, sizeof(fx->reason), "out of memory");
		return ES_HANDLER_RETRY;
	}
	/* The lines are parsed by PostgreSQL from the checked JSON: one
	 * statement whatever their number. */
	n = es_db_exec(fx->db,
		       "INSERT INTO analytics_order_items (order_id, sku, quantity) "
		       "SELECT $1, i.sku, sum(i.quantity) "
		       "FROM json_to_recordset($2::json) AS i(sku text, quantity bigint) "
		       "GROUP BY i.sku "
		       "ON CONFLICT (order_id, sku) DO NOTHING",
		       2, (const char *[]){ev->subject, items}, fx->reason, sizeof(fx->reason));
	free(items);
	fx->outcome = ANALYTICS_PLACE;
	return n < 0 ? es_effect_db_failed(fx) : ES_HANDLER_OK;
}

/*
 * OrderConfirmed / OrderCancelled: the terminal status, unless the order is
 * terminal already (WHERE o.status = 'PENDING'): the first terminal event
 * wins and nothing changes it again. An order not yet seen gets its row
 * here, which its OrderPlaced completes later.
 */
static enum es_handler_result finish(struct es_effect *fx)
{
	const struct es_event *ev = fx->ev;
	bool confirmed = !strcmp(ev->type, ES_ORDER_CONFIRMED);
	char total[32], when[32];
	long n;

	snprintf(total, sizeof(total), "%lld", es_data_int(ev, "totalCents"));
	snprintf(when, sizeof(when), "%lld", event_ms(ev));
	n = es_db_exec(
		fx->db,
		"INSERT INTO analytics_orders AS o "
		"(order_id, status, total_cents, currency, cancel_reason, terminal_at) "
		"VALUES ($1, $2, $3::bigint, $4, $5, "
		"'epoch'::timestamptz + $6::bigint * interval '1 millisecond') "
		"ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status, "
		"cancel_reason = EXCLUDED.cancel_reason, terminal_at = EXCLUDED.terminal_at, "
		"total_cents = COALESCE(o.total_cents, EXCLUDED.total_cents), "
		"currency = COALESCE(o.currency, EXCLUDED.currency), updated_at = now() "
		"WHERE o.status = 'PENDING'",
		6,
		(const char *[]){ev->subject, confirmed ? "CONFIRMED" : "CANCELLED",
				 confirmed ? total : NULL,
				 confirmed ? es_data_str(ev, "currency") : NULL,
				 confirmed ? NULL : es_data_str(ev, "reason"), when},
		fx->reason, sizeof(fx->reason));
	if (n < 0)
		return es_effect_db_failed(fx);
	if (n == 0)
		es_log(ES_LOG_WARN, &fx->log, "%s for an order already terminal: status kept",
		       ev->type);
	fx->outcome = confirmed ? ANALYTICS_CONFIRM : ANALYTICS_CANCEL;
	return ES_HANDLER_OK;
}

/* Payments, reservations, emails: counted together for the whole batch,
 * by add_counts. */
static enum es_handler_result count(struct es_effect *fx)
{
	fx->outcome = ANALYTICS_COUNT;
	return ES_HANDLER_OK;
}

/* ShipmentDelivered: counted like the others, and its time kept for the
 * time from confirmation to delivery (joined with the order's terminal
 * time when /stats is read, so either may arrive first). */
static enum es_handler_result deliver(struct es_effect *fx)
{
	char when[32];

	snprintf(when, sizeof(when), "%lld", event_ms(fx->ev));
	if (es_db_exec(fx->db,
		       "INSERT INTO analytics_deliveries (order_id, delivered_at) VALUES ($1, "
		       "'epoch'::timestamptz + $2::bigint * interval '1 millisecond') "
		       "ON CONFLICT (order_id) DO NOTHING",
		       2, (const char *[]){fx->ev->subject, when}, fx->reason,
		       sizeof(fx->reason)) < 0)
		return es_effect_db_failed(fx);
	return count(fx);
}

/* The batch's counted events, added to analytics_counts in one statement. */
static int add_counts(struct es_db *db, void *arg, struct es_effect *const *applied, size_t n,
		      char *reason, size_t reason_size)
{
	json_t *rows = json_array();
	char *text;
	long rc;

	for (size_t i = 0; rows && i < n; i++) {
		const char *family, *name;

		if (applied[i]->outcome != ANALYTICS_COUNT ||
		    analytics_effect_of(applied[i]->ev, &family, &name) != ANALYTICS_COUNT)
			continue;
		if (json_array_append_new(
			    rows, json_pack("{s:s, s:s}", "family", family, "name", name))) {
			json_decref(rows);
			rows = NULL;
		}
	}
	if (!rows) {
		snprintf(reason, reason_size, "out of memory");
		return -1;
	}
	if (json_array_size(rows) == 0) {
		json_decref(rows);
		return 0;
	}
	text = json_dumps(rows, JSON_COMPACT);
	json_decref(rows);
	if (!text) {
		snprintf(reason, reason_size, "out of memory");
		return -1;
	}
	rc = es_db_exec(db,
			"INSERT INTO analytics_counts AS c (family, name, n) "
			"SELECT r.family, r.name, count(*) "
			"FROM json_to_recordset($1::json) AS r(family text, name text) "
			"GROUP BY r.family, r.name "
			"ON CONFLICT (family, name) DO UPDATE SET n = c.n + EXCLUDED.n",
			1, (const char *[]){text}, reason, reason_size);
	free(text);
	return rc < 0 ? -1 : 0;
}

/* Everything analytics_check can say before the transaction. */
static enum es_handler_result check(struct es_effect *fx)
{
	long long ms;

	return analytics_check(fx->ev, &ms, fx->reason, sizeof(fx->reason)) ? ES_HANDLER_REJECT
									    : ES_HANDLER_OK;
}

/* An order changed: the gauge is refreshed at the next tick. */
static void committed(struct es_effect *fx)
{
	struct analytics *app = fx->app;

	if (fx->outcome != ANALYTICS_COUNT)
		app->orders_changed = true;
}

static const struct es_dispatch_rule rules[] = {
	{ES_ORDER_PLACED, place},
	{ES_ORDER_CONFIRMED, finish},
	{ES_ORDER_CANCELLED, finish},
	{ES_PAYMENT_PROCESSED, count},
	{ES_PAYMENT_FAILED, count},
	{ES_PAYMENT_REFUNDED, count},
	{ES_INVENTORY_RESERVED, count},
	{ES_INVENTORY_REJECTED, count},
	{ES_INVENTORY_RELEASED, count},
	{ES_EMAIL_SENT, count},
	{ES_SHIPMENT_CREATED, count},
	{ES_SHIPMENT_DISPATCHED, count},
	{ES_SHIPMENT_DELIVERED, deliver},
	{ES_SHIPMENT_CANCELLED, count},
	{NULL, NULL},
};

const struct es_handlers analytics_handlers = {
	.rules = rules,
	.prepare = check,
	.before_commit = add_counts,
	.committed = committed,
};

/* -------------------------------------------------------------- the gauge */

int analytics_refresh_gauge(struct analytics *app, char *errstr, size_t errstr_size)
{
	struct analytics_order_counts c;

	if (analytics_order_counts_load(app->db, &c, errstr, errstr_size))
		return -1;
	es_gauge_set(app->orders_gauge, (const char *[]){"pending"}, (double)c.pending);
	es_gauge_set(app->orders_gauge, (const char *[]){"confirmed"}, (double)c.confirmed);
	es_gauge_set(app->orders_gauge, (const char *[]){"cancelled"}, (double)c.cancelled);
	app->orders_changed = false;
	return 0;
}

int analytics_tick(struct es_service *svc, void *arg, char *errstr, size_t errstr_size)
{
	struct analytics *app = arg;
	long long now = es_monotonic_ms();
	char why[256];

	if (!app->orders_changed || now - app->refreshed_ms < GAUGE_REFRESH_MS)
		return 0;
	app->refreshed_ms = now;
	/* Stale for a while is better than a daemon stopped for a gauge. */
	if (analytics_refresh_gauge(app, why, sizeof(why)))
		es_warn("es_analytics_orders not refreshed: %s", why);
	return 0;
}
