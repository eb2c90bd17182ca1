/*
 * it_saga: a hand-made set of saga events for the integration tests, as
 * the other four services would produce them: six orders, three
 * CONFIRMED, two CANCELLED (PAYMENT_DECLINED, OUT_OF_STOCK), one PENDING,
 * with their payments, reservations and emails, and fixed event times so
 * that the saga latencies are known (100 to 500 ms).
 */
#ifndef ANALYTICS_IT_SAGA_H
#define ANALYTICS_IT_SAGA_H

#include <stddef.h>

#include "es/envelope.h"

enum it_topic { IT_ORDERS, IT_PAYMENTS, IT_INVENTORY, IT_NOTIFICATIONS, IT_SHIPMENTS, IT_NTOPICS };

#define IT_SAGA_MAX 64

struct it_saga {
	/* Per topic, in the order the producing service wrote them. */
	struct es_event *ev[IT_NTOPICS][IT_SAGA_MAX];
	size_t n[IT_NTOPICS];
	size_t total;
};

/* The contract's topic names, for messages. */
extern const char *const it_topic_names[IT_NTOPICS];

/* Builds the events with new order ids (Check assertions on failure). */
void it_saga_build(struct it_saga *s);
void it_saga_free(struct it_saga *s);

/* GET /stats for exactly these events, as JSON text. */
extern const char it_saga_expected_stats[];

#endif
