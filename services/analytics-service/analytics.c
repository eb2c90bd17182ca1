#include "analytics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "es/events.h"
#include "es/inbox.h"
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

struct effect_arg {
	long long time_ms;
};

static enum es_handler_result db_failed(struct es_db *db)
{
	return es_db_error_is_transient(db) ? ES_HANDLER_RETRY : ES_HANDLER_REJECT;
}

/*
 * OrderPlaced: the row (or, if a terminal event came first, its missing
 * placed-side columns) and the lines. The placed event's total wins over
 * OrderConfirmed's, whichever came first, so both orders of arrival give
 * the same row. Lines of one sku are summed: the contract forbids
 * duplicate sku lines, but a sum is what "quantity sold" means anyway.
 */
static enum es_handler_result place(struct es_db *db, const struct es_event *ev, long long time_ms,
				    char *reason, size_t reason_size)
{
	char total[32], when[32];
	char *items;
	long n;

	snprintf(total, sizeof(total), "%lld", es_data_int(ev, "totalCents"));
	snprintf(when, sizeof(when), "%lld", time_ms);
	n = es_db_exec(db,
		       "INSERT INTO analytics_orders AS o "
		       "(order_id, total_cents, currency, placed_at) "
		       "VALUES ($1, $2::bigint, $3, "
		       "'epoch'::timestamptz + $4::bigint * interval '1 millisecond') "
		       "ON CONFLICT (order_id) DO UPDATE SET total_cents = EXCLUDED.total_cents, "
		       "currency = EXCLUDED.currency, placed_at = EXCLUDED.placed_at, "
		       "updated_at = now()",
		       4, (const char *[]){ev->subject, total, es_data_str(ev, "currency"), when},
		       reason, reason_size);
	if (n < 0)
		return db_failed(db);

	items = json_dumps(json_object_get(ev->data, "items"), JSON_COMPACT);
	if (!items) {
		snprintf(reason, reason_size, "out of memory");
		return ES_HANDLER_RETRY;
	}
	/* The lines are parsed by PostgreSQL from the checked JSON: one
	 * statement whatever their number. */
	n = es_db_exec(db,
		       "INSERT INTO analytics_order_items (order_id, sku, quantity) "
		       "SELECT $1, i.sku, sum(i.quantity) "
		       "FROM json_to_recordset($2::json) AS i(sku text, quantity bigint) "
		       "GROUP BY i.sku "
		       "ON CONFLICT (order_id, sku) DO NOTHING",
		       2, (const char *[]){ev->subject, items}, reason, reason_size);
	free(items);
	return n < 0 ? db_failed(db) : ES_HANDLER_OK;
}

/*
 * OrderConfirmed / OrderCancelled: the terminal status, unless the order is
 * terminal already (WHERE o.status = 'PENDING'): the first terminal event
 * wins and nothing changes it again. An order not yet seen gets its row
 * here, which its OrderPlaced completes later.
 */
static enum es_handler_result finish(struct es_db *db, const struct es_event *ev,
				     const char *status, long long time_ms, char *reason,
				     size_t reason_size)
{
	bool confirmed = !strcmp(status, "CONFIRMED");
	char total[32], when[32];
	long n;

	snprintf(total, sizeof(total), "%lld", es_data_int(ev, "totalCents"));
	snprintf(when, sizeof(when), "%lld", time_ms);
	n = es_db_exec(
		db,
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
		(const char *[]){ev->subject, status, confirmed ? total : NULL,
				 confirmed ? es_data_str(ev, "currency") : NULL,
				 confirmed ? NULL : es_data_str(ev, "reason"), when},
		reason, reason_size);
	if (n < 0)
		return db_failed(db);
	if (n == 0) {
		struct es_log_ctx ctx = {ev->subject, ev->id, NULL};

		es_log(ES_LOG_WARN, &ctx, "%s for an order already terminal: status kept",
		       ev->type);
	}
	return ES_HANDLER_OK;
}

static enum es_handler_result count(struct es_db *db, const char *family, const char *name,
				    char *reason, size_t reason_size)
{
	long n;

	n = es_db_exec(db,
		       "INSERT INTO analytics_counts (family, name, n) VALUES ($1, $2, 1) "
		       "ON CONFLICT (family, name) DO UPDATE SET n = analytics_counts.n + 1",
		       2, (const char *[]){family, name}, reason, reason_size);
	return n < 0 ? db_failed(db) : ES_HANDLER_OK;
}

/* es_effect_fn: runs inside the inbox transaction, once per event id. */
static enum es_handler_result apply(struct es_db *db, const struct es_event *ev, void *arg,
				    char *reason, size_t reason_size)
{
	const struct effect_arg *a = arg;
	const char *family, *name;

	switch (analytics_effect_of(ev, &family, &name)) {
	case ANALYTICS_PLACE:
		return place(db, ev, a->time_ms, reason, reason_size);
	case ANALYTICS_CONFIRM:
		return finish(db, ev, "CONFIRMED", a->time_ms, reason, reason_size);
	case ANALYTICS_CANCEL:
		return finish(db, ev, "CANCELLED", a->time_ms, reason, reason_size);
	case ANALYTICS_COUNT:
		return count(db, family, name, reason, reason_size);
	case ANALYTICS_NONE:
		break;
	}
	snprintf(reason, reason_size, "no read model for event type %s", ev->type);
	return ES_HANDLER_REJECT;
}

enum es_handler_result analytics_handle(void *arg, const struct es_event *ev,
					const struct es_delivery *d, char *reason,
					size_t reason_size)
{
	struct analytics *app = arg;
	const char *family, *name;
	struct effect_arg a;
	enum es_handler_result r;
	bool duplicate;

	if (analytics_check(ev, &a.time_ms, reason, reason_size))
		return ES_HANDLER_REJECT;
	r = es_inbox_process(app->db, ANALYTICS_SERVICE, ev, apply, &a, &duplicate, reason,
			     reason_size);
	if (r == ES_HANDLER_OK && !duplicate &&
	    analytics_effect_of(ev, &family, &name) != ANALYTICS_COUNT)
		app->orders_changed = true;
	return r;
}

/* -------------------------------------------------------------- the gauge */

static long long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
	long long now = monotonic_ms();
	char why[256];

	if (!app->orders_changed || now - app->refreshed_ms < GAUGE_REFRESH_MS)
		return 0;
	app->refreshed_ms = now;
	/* Stale for a while is better than a daemon stopped for a gauge. */
	if (analytics_refresh_gauge(app, why, sizeof(why)))
		es_warn("es_analytics_orders not refreshed: %s", why);
	return 0;
}
