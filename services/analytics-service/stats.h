/*
 * stats: what GET /stats answers, read from the read models in one
 * consistent snapshot and turned into JSON:
 *
 *   {"orders":{"placed":6,"confirmed":3,"cancelled":2,"pending":1},
 *    "revenueCents":12345,
 *    "cancelReasons":{"OUT_OF_STOCK":1,"PAYMENT_DECLINED":1},
 *    "topProducts":[{"sku":"mug-classic","quantity":4}, ...],
 *    "sagaLatencyMs":{"p50":300,"p95":500,"p99":500},
 *    "payments":{"processed":3,"failed":1,"refunded":0},
 *    "reservations":{"reserved":4,"rejected":1,"released":1},
 *    "emails":{"order-received":6,...},
 *    "shipments":{"created":3,"dispatched":3,"delivered":2,"cancelled":0,
 *                 "deliveryMs":{"p50":4000,"p95":4100,"p99":4100}}}
 *
 * "placed" counts every order the read model knows; confirmed + cancelled +
 * pending = placed. cancelReasons lists only reasons seen. topProducts has
 * the quantities of CONFIRMED orders, largest first, ties by sku, at most
 * ANALYTICS_TOP_PRODUCTS. sagaLatencyMs is terminal time minus placed time
 * over terminal orders (PostgreSQL percentile_disc, whole ms); with no
 * terminal order yet its three values are null, never a made-up 0.
 * "payments", "reservations", "emails" and "shipments" go beyond the
 * contract's fields: the counts of the other topics' events; deliveryMs is
 * ShipmentDelivered's time minus OrderConfirmed's over delivered orders
 * (null while none is).
 */
#ifndef ANALYTICS_STATS_H
#define ANALYTICS_STATS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "es/db.h"

#define ANALYTICS_TOP_PRODUCTS 5
/* More distinct names than the contract has values for a field is a sign
 * of corrupt data, never silently cut. */
#define ANALYTICS_MAX_NAMES 16

struct analytics_count {
	char *name; /* owned */
	long long n;
};

struct analytics_order_counts {
	long long placed, confirmed, cancelled, pending;
};

struct analytics_stats {
	struct analytics_order_counts orders;
	long long revenue_cents;
	struct analytics_count reasons[ANALYTICS_MAX_NAMES];
	size_t nreasons;
	struct analytics_count top[ANALYTICS_TOP_PRODUCTS]; /* name = sku */
	size_t ntop;
	bool has_latency; /* false: no terminal order yet */
	long long p50_ms, p95_ms, p99_ms;
	long long payments_processed, payments_failed, payments_refunded;
	long long reservations_reserved, reservations_rejected, reservations_released;
	struct analytics_count emails[ANALYTICS_MAX_NAMES]; /* name = template */
	size_t nemails;
	long long shipments_created, shipments_dispatched, shipments_delivered;
	long long shipments_cancelled;
	bool has_delivery; /* false: no confirmed order delivered yet */
	long long delivery_p50_ms, delivery_p95_ms, delivery_p99_ms;
};

/*
 * Reads every figure in one REPEATABLE READ, READ ONLY transaction, so that
 * the numbers agree with each other. *st is overwritten (release it with
 * analytics_stats_release, also after a failure). Returns 0, or -1 with
 * errstr filled (es_db_error_is_transient tells whether to try again).
 */
int analytics_stats_load(struct es_db *db, struct analytics_stats *st, char *errstr,
			 size_t errstr_size);

void analytics_stats_release(struct analytics_stats *st);

/* The JSON above for st. Returns a new reference, or NULL on OOM. */
json_t *analytics_stats_json(const struct analytics_stats *st);

/* analytics_stats_load + analytics_stats_json: the body of GET /stats.
 * Returns a new reference, or NULL with errstr filled. */
json_t *analytics_stats_build(struct es_db *db, char *errstr, size_t errstr_size);

/* The orders by status alone (for the gauge). Returns 0 or -1. */
int analytics_order_counts_load(struct es_db *db, struct analytics_order_counts *c, char *errstr,
				size_t errstr_size);

#endif
