/*
 * orders: the orders of one run, by id, and how each one ended.
 *
 * Two threads write here: the sending loop records each 202 (accepted),
 * and whoever watches the saga (the Kafka follower's thread, or the
 * sending loop itself when it polls GET /orders/{id}) records the terminal
 * status. Either may come first: the saga can finish on the topic before
 * the sending loop has read its 202, so the follower also records the
 * OrderPlaced events of this run's customer (lg_orders_seen) and then the
 * terminal event of such an order before its 202 is known. Every call
 * takes the table's lock.
 */
#ifndef LG_ORDERS_H
#define LG_ORDERS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats.h"

#define LG_ORDER_ID_LEN 36

enum lg_status {
	LG_PENDING = 0,
	LG_CONFIRMED,
	LG_CANCELLED,
};

/* OrderCancelled reasons from the contract, and anything else. */
enum lg_reason {
	LG_REASON_NONE = 0,
	LG_REASON_PAYMENT_DECLINED,
	LG_REASON_OUT_OF_STOCK,
	LG_REASON_CUSTOMER_REQUEST,
	LG_REASON_TIMEOUT,
	LG_REASON_OTHER, /* absent or not one of the contract's */
	LG_REASON_COUNT,
};

struct lg_order {
	char id[LG_ORDER_ID_LEN + 1];
	int64_t accepted_us; /* when the 202 came (valid when accepted) */
	int64_t http_us; /* how long the POST took (valid when accepted) */
	int64_t terminal_us; /* when the terminal status was seen */
	unsigned char status; /* enum lg_status */
	unsigned char reason; /* enum lg_reason, for LG_CANCELLED */
	bool accepted; /* we got its 202 */
	bool seen; /* its OrderPlaced was read (Kafka follower only) */
};

struct lg_orders {
	pthread_mutex_t lock;
	struct lg_order *v; /* owned; indices are stable, addresses are not */
	size_t n, cap;
	uint32_t *slots; /* owned: open addressing, index + 1, 0 empty */
	size_t nslots; /* a power of two, at least twice n */
	size_t accepted; /* orders with accepted */
	size_t settled; /* orders with accepted and a terminal status */
};

int lg_orders_init(struct lg_orders *t);
void lg_orders_release(struct lg_orders *t);

/*
 * A 202 for id at t_us, after a POST of http_us. Returns the order's index,
 * or -1 when out of memory or when id was accepted before (order-service
 * handed out one id twice: *duplicate set true).
 */
long lg_orders_accept(struct lg_orders *t, const char *id, int64_t t_us, int64_t http_us,
		      bool *duplicate);

/* An OrderPlaced of this run's customer was read. Returns 0, or -1 when
 * out of memory. */
int lg_orders_seen(struct lg_orders *t, const char *id);

/*
 * id reached status (LG_CONFIRMED or LG_CANCELLED, with reason) at t_us.
 * Returns 1 when that is news about one of this run's orders (accepted or
 * seen), 0 when the id is unknown or the order was terminal already (the
 * first status wins: a terminal order never changes).
 */
int lg_orders_terminal(struct lg_orders *t, const char *id, enum lg_status status,
		       enum lg_reason reason, int64_t t_us);

/* Copies order i (an index from lg_orders_accept). Returns 0, or -1. */
int lg_orders_get(struct lg_orders *t, size_t i, struct lg_order *out);

/* The two counters, read together. */
void lg_orders_counts(struct lg_orders *t, size_t *accepted, size_t *settled);

struct lg_tally {
	size_t accepted;
	size_t confirmed;
	size_t cancelled;
	size_t reasons[LG_REASON_COUNT]; /* of the cancelled ones */
	size_t pending; /* accepted, not terminal */
	size_t unacknowledged; /* OrderPlaced seen on the topic, no 202 */
	int64_t last_terminal_us; /* the latest terminal_us of those; 0: none */
};

/*
 * Counts the accepted orders by outcome and appends each settled one's
 * saga latency (terminal_us - accepted_us, 0 when the terminal status was
 * seen first) to all and to confirmed or cancelled (any may be NULL).
 * Returns 0, or -1 when a sample could not be stored (out of memory).
 */
int lg_orders_tally(struct lg_orders *t, struct lg_tally *tally, struct lg_samples *all,
		    struct lg_samples *confirmed, struct lg_samples *cancelled);

/* Calls fn for every order, in the order they were added, under the
 * table's lock (fn must not call back into the table). Stops at and
 * returns fn's first non-zero result; 0 when all were visited. */
int lg_orders_each(struct lg_orders *t, int (*fn)(void *arg, const struct lg_order *o), void *arg);

enum lg_reason lg_reason_parse(const char *s);
const char *lg_reason_name(enum lg_reason r);

#endif
