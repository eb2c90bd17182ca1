/*
 * orders: what email-service's batch in hand knows of its orders, read for
 * the whole batch in two statements (email_orders_load) instead of three
 * for every email, and kept up to date by the effects (email.c).
 */
#ifndef EMAIL_ORDERS_H
#define EMAIL_ORDERS_H

#include <stdbool.h>
#include <stddef.h>

#include "es/dispatch.h"
#include "message.h"

struct email_app;

/*
 * What the batch's transaction knows of one of its orders. email_orders_load
 * takes the orders' locks and reads this for the whole batch in two
 * statements, instead of three for every email; the effects then keep it
 * up to date as they deliver, ahead of the rows the batch writes before
 * its commit. An effect that does not finish (RETRY, or a REJECT whose
 * savepoint takes its writes back) puts its order's knowledge back as it
 * found it.
 */
struct email_order {
	char order_id[EMAIL_ORDER_ID_MAX + 1];
	char to[EMAIL_ADDRESS_MAX + 1]; /* "": no OrderPlaced seen yet */
	unsigned sent; /* bit t: template t recorded in email_sent */
	bool pending; /* email_pending may hold emails of the order */
};

struct email_orders {
	struct email_order *o;
	size_t n;
};

/*
 * es_handlers.before_effects: locks the batch's orders (in sorted order,
 * so that two instances taking several cannot deadlock), then reads each
 * one's recipient, sent templates and pending emails into the app (a
 * struct email_app). Returns 0, or -1 with errstr filled.
 */
int email_orders_load(struct es_db *db, void *app, struct es_effect *const *fresh, size_t n,
		      char *errstr, size_t errstr_size);

/* The batch's knowledge of order_id, or NULL when it is not one of the
 * orders email_orders_load read. */
struct email_order *email_order_known(struct email_app *app, const char *order_id);

#endif
