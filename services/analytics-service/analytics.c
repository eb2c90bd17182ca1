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

/*
 * Every effect only notes what its event does (fx->outcome); write_batch
 * then writes what the batch's applied events do, one statement per kind
 * of write whatever their number. The transaction may run more than once
 * (dispatch.h): the rows come from the events applied in the run that
 * commits, never from anything an earlier run left behind.
 */
static enum es_handler_result note(struct es_effect *fx)
{
	const char *family, *name;

	fx->outcome = analytics_effect_of(fx->ev, &family, &name);
	return ES_HANDLER_OK;
}

/* The event's time, checked by analytics_check before the transaction. */
static json_int_t event_ms(const struct es_event *ev)
{
	long long ms = 0;

	es_time_parse(ev->time, &ms);
	return ms;
}

/* The batch's rows, one JSON array per statement. Each order's row keeps
 * its event's place in the batch (seq), so that a statement can pick the
 * event that one at a time would have left in force. */
struct rows {
	json_t *placed, *ended, *delivered, *counted;
};

/* Adds fx's rows (fx is the batch's seq-th applied event); -1 when out of
 * memory. json_pack's "s" copies, "O" takes a reference. */
static int add_rows(struct rows *r, json_int_t seq, const struct es_effect *fx)
{
	const struct es_event *ev = fx->ev;
	bool confirmed = fx->outcome == ANALYTICS_CONFIRM;
	const char *family, *name;
	json_t *row;

	switch (fx->outcome) {
	case ANALYTICS_PLACE:
		row = json_pack("{s:I, s:s, s:I, s:s, s:I, s:O}", "seq", seq, "order_id",
				ev->subject, "total_cents", es_data_int(ev, "totalCents"),
				"currency", es_data_str(ev, "currency"), "at", event_ms(ev),
				"items", json_object_get(ev->data, "items"));
		return json_array_append_new(r->placed, row);
	case ANALYTICS_CONFIRM:
	case ANALYTICS_CANCEL:
		row = json_pack(
			"{s:I, s:s, s:s, s:o?, s:s?, s:s?, s:I}", "seq", seq, "order_id",
			ev->subject, "status", confirmed ? "CONFIRMED" : "CANCELLED", "total_cents",
			confirmed ? json_integer(es_data_int(ev, "totalCents")) : NULL, "currency",
			confirmed ? es_data_str(ev, "currency") : NULL, "cancel_reason",
			confirmed ? NULL : es_data_str(ev, "reason"), "at", event_ms(ev));
		return json_array_append_new(r->ended, row);
	case ANALYTICS_COUNT:
		analytics_effect_of(ev, &family, &name);
		row = json_pack("{s:s, s:s}", "family", family, "name", name);
		if (json_array_append_new(r->counted, row))
			return -1;
		if (strcmp(ev->type, ES_SHIPMENT_DELIVERED))
			return 0;
		row = json_pack("{s:I, s:s, s:I}", "seq", seq, "order_id", ev->subject, "at",
				event_ms(ev));
		return json_array_append_new(r->delivered, row);
	default:
		return 0;
	}
}

/*
 * OrderPlaced: the row (or, if a terminal event came first, its missing
 * placed-side columns). The placed event's total wins over OrderConfirmed's,
 * whichever came first, so both orders of arrival give the same row; of two
 * OrderPlaced of one order the later one's, as one at a time (DISTINCT ON
 * keeps one row per order: an upsert may not touch a row twice).
 */
static const char place_sql[] =
	"INSERT INTO analytics_orders AS o (order_id, total_cents, currency, placed_at)"
	" SELECT DISTINCT ON (r.order_id) r.order_id, r.total_cents, r.currency,"
	" 'epoch'::timestamptz + r.at * interval '1 millisecond'"
	" FROM json_to_recordset($1::json)"
	" AS r(seq bigint, order_id text, total_cents bigint, currency text, at bigint)"
	" ORDER BY r.order_id, r.seq DESC"
	" ON CONFLICT (order_id) DO UPDATE SET total_cents = EXCLUDED.total_cents,"
	" currency = EXCLUDED.currency, placed_at = EXCLUDED.placed_at, updated_at = now()";

/*
 * OrderPlaced's lines, parsed by PostgreSQL from the checked JSON. Lines
 * of one sku are summed: the contract forbids duplicate sku lines, but a
 * sum is what "quantity sold" means anyway. An order's lines are written
 * once: of two OrderPlaced the first one's stay, as one at a time.
 */
static const char items_sql[] =
	"INSERT INTO analytics_order_items (order_id, sku, quantity)"
	" SELECT DISTINCT ON (l.order_id, l.sku) l.order_id, l.sku, l.quantity"
	" FROM (SELECT r.seq, r.order_id, i.sku, sum(i.quantity) AS quantity"
	" FROM json_to_recordset($1::json) AS r(seq bigint, order_id text, items json),"
	" json_to_recordset(r.items) AS i(sku text, quantity bigint)"
	" GROUP BY r.seq, r.order_id, i.sku) AS l"
	" ORDER BY l.order_id, l.sku, l.seq"
	" ON CONFLICT (order_id, sku) DO NOTHING";

/*
 * OrderConfirmed / OrderCancelled: the terminal status, unless the order is
 * terminal already (WHERE o.status = 'PENDING'): the first terminal event
 * wins and nothing changes it again, in the batch too (DISTINCT ON keeps
 * each order's first). An order not yet seen gets its row here, which its
 * OrderPlaced completes later. Placed and terminal columns do not depend
 * on each other, so this statement may follow place_sql whatever the
 * events' order in the batch.
 */
static const char end_sql[] =
	"INSERT INTO analytics_orders AS o"
	" (order_id, status, total_cents, currency, cancel_reason, terminal_at)"
	" SELECT DISTINCT ON (r.order_id) r.order_id, r.status, r.total_cents, r.currency,"
	" r.cancel_reason, 'epoch'::timestamptz + r.at * interval '1 millisecond'"
	" FROM json_to_recordset($1::json) AS r(seq bigint, order_id text, status text,"
	" total_cents bigint, currency text, cancel_reason text, at bigint)"
	" ORDER BY r.order_id, r.seq"
	" ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status,"
	" cancel_reason = EXCLUDED.cancel_reason, terminal_at = EXCLUDED.terminal_at,"
	" total_cents = COALESCE(o.total_cents, EXCLUDED.total_cents),"
	" currency = COALESCE(o.currency, EXCLUDED.currency), updated_at = now()"
	" WHERE o.status = 'PENDING'";

/* ShipmentDelivered: its time, kept for the time from confirmation to
 * delivery (joined with the order's terminal time when /stats is read, so
 * either may arrive first). The first one of an order stays. */
static const char deliver_sql[] =
	"INSERT INTO analytics_deliveries (order_id, delivered_at)"
	" SELECT DISTINCT ON (r.order_id) r.order_id,"
	" 'epoch'::timestamptz + r.at * interval '1 millisecond'"
	" FROM json_to_recordset($1::json) AS r(seq bigint, order_id text, at bigint)"
	" ORDER BY r.order_id, r.seq"
	" ON CONFLICT (order_id) DO NOTHING";

/* Payments, reservations, emails, shipments: each counter once per event. */
static const char count_sql[] = "INSERT INTO analytics_counts AS c (family, name, n)"
				" SELECT r.family, r.name, count(*)"
				" FROM json_to_recordset($1::json) AS r(family text, name text)"
				" GROUP BY r.family, r.name"
				" ON CONFLICT (family, name) DO UPDATE SET n = c.n + EXCLUDED.n";

/* The batch's applied events into the read models: before_commit. */
static int write_batch(struct es_db *db, void *arg, struct es_effect *const *applied, size_t n,
		       char *reason, size_t reason_size)
{
	struct rows r = {json_array(), json_array(), json_array(), json_array()};
	long ended;
	int rc = -1;

	if (!r.placed || !r.ended || !r.delivered || !r.counted)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		if (add_rows(&r, (json_int_t)i, applied[i]))
			goto oom;
	}
	if (es_db_exec_rows(db, place_sql, r.placed, 0, NULL, reason, reason_size) < 0 ||
	    es_db_exec_rows(db, items_sql, r.placed, 0, NULL, reason, reason_size) < 0)
		goto out;
	ended = es_db_exec_rows(db, end_sql, r.ended, 0, NULL, reason, reason_size);
	if (ended < 0 ||
	    es_db_exec_rows(db, deliver_sql, r.delivered, 0, NULL, reason, reason_size) < 0 ||
	    es_db_exec_rows(db, count_sql, r.counted, 0, NULL, reason, reason_size) < 0)
		goto out;
	if ((size_t)ended < json_array_size(r.ended))
		es_warn("%zu OrderConfirmed/OrderCancelled of the batch for orders already "
			"terminal: status kept",
			json_array_size(r.ended) - (size_t)ended);
	rc = 0;
	goto out;
oom:
	snprintf(reason, reason_size, "out of memory");
out:
	json_decref(r.placed);
	json_decref(r.ended);
	json_decref(r.delivered);
	json_decref(r.counted);
	return rc;
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

	if (fx->outcome == ANALYTICS_PLACE || fx->outcome == ANALYTICS_CONFIRM ||
	    fx->outcome == ANALYTICS_CANCEL)
		app->orders_changed = true;
}

static const struct es_dispatch_rule rules[] = {
	{ES_ORDER_PLACED, note},
	{ES_ORDER_CONFIRMED, note},
	{ES_ORDER_CANCELLED, note},
	{ES_PAYMENT_PROCESSED, note},
	{ES_PAYMENT_FAILED, note},
	{ES_PAYMENT_REFUNDED, note},
	{ES_INVENTORY_RESERVED, note},
	{ES_INVENTORY_REJECTED, note},
	{ES_INVENTORY_RELEASED, note},
	{ES_EMAIL_SENT, note},
	{ES_SHIPMENT_CREATED, note},
	{ES_SHIPMENT_DISPATCHED, note},
	{ES_SHIPMENT_DELIVERED, note},
	{ES_SHIPMENT_CANCELLED, note},
	{NULL, NULL},
};

const struct es_handlers analytics_handlers = {
	.rules = rules,
	.prepare = check,
	.before_commit = write_batch,
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
