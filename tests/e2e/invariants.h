/*
 * invariants: the contract's seven invariants and shipping's, checked from
 * the outside
 * (the REST APIs, the topics, the maildir), so that any test can call it
 * after any mix of load, kills, restarts and duplicate deliveries:
 *
 *   1. every order that got a 202 is CONFIRMED or CANCELLED;
 *   2. a CONFIRMED order has exactly one PaymentProcessed and one
 *      InventoryReserved, and no PaymentRefunded or InventoryReleased;
 *   3. a CANCELLED order is charged nothing net and holds no stock;
 *   4. per sku: stock = initial - quantities of CONFIRMED orders, >= 0;
 *   5. each (order, template) email is delivered once;
 *   6. analytics' counts equal the order service's;
 *   7. a redelivered event has its effect once (2-5 and 8 count distinct
 *      event ids, and a second effect would show as a second event);
 *   8. a CONFIRMED order has exactly one shipment, created, dispatched and
 *      delivered once each (and its order-shipped email, in 5); a
 *      CANCELLED order has no shipment that was dispatched.
 *
 * Eventual consistency: the check is repeated until it passes or the time
 * runs out, and only the last attempt's violations are reported.
 */
#ifndef ES_INVARIANTS_H
#define ES_INVARIANTS_H

#include <stddef.h>

#include "shop.h"

struct invariants_report {
	int orders; /* orders found on the orders topic */
	int confirmed, cancelled, pending;
	int emails; /* distinct EmailSent */
	int dead_letters; /* messages on the five DLQ topics */
	int shipped; /* CONFIRMED orders whose shipment was delivered */
	int violations; /* 0 when all eight hold */
};

/*
 * accepted: the ids of the orders that got a 202 (n of them; each must
 * exist and be terminal). Prints every violation with the order ids
 * involved. Returns the number of violations (0: all hold).
 */
int shop_check_invariants(const struct shop *shop, char (*accepted)[37], size_t n, int timeout_ms,
			  struct invariants_report *report);

#endif
