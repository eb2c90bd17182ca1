/*
 * email: email-service's event handler, the rules of which email an event
 * causes, to whom, and once only.
 *
 *   OrderPlaced      -> order-received   (and any email waiting for it)
 *   OrderConfirmed   -> order-confirmed
 *   OrderCancelled   -> order-cancelled  (the reason in words)
 *   PaymentRefunded  -> refund-issued    (the amount with its currency)
 *   ShipmentDispatched -> order-shipped  (the carrier and tracking number)
 *
 * Every other known type needs nothing; an unknown type or data off the
 * contract is rejected (dead letter).
 *
 * Only OrderPlaced carries the customer's address, so it is stored
 * (email_orders). The orders, payments and shipments topics are consumed
 * independently, so another order's event may come first: its email then
 * waits in email_pending and goes out when OrderPlaced arrives. Waiting is
 * never done by answering RETRY, which would pause every partition and so
 * stop the very OrderPlaced we wait for.
 *
 * Each (order, template) is delivered once: email_sent's primary key, with
 * the EmailSent event written to the outbox in the same transaction.
 */
#ifndef EMAIL_EMAIL_H
#define EMAIL_EMAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "delivery.h"
#include "es/db.h"
#include "es/dispatch.h"
#include "es/kafka.h"
#include "es/metrics.h"
#include "message.h"

#define EMAIL_SERVICE "email-service"

/* migrations/NNN_*.sql, embedded by CMake (es_embed_migrations). */
extern const struct es_migration email_migrations[];
extern const size_t email_migrations_count;

/* What the handlers work with; the pointers are borrowed and must outlive
 * it. Fill the public part with email_app_init. */
struct email_orders;

struct email_app {
	const char *topic; /* where EmailSent goes: the notifications topic */
	const struct email_delivery *delivery;
	struct es_counter *sent_total; /* es_emails_sent_total{template}; NULL: none */
	/* The batch's Maildir deliveries, staged until its before_commit
	 * publishes them (delivery.h). */
	struct email_maildir_staged staged;
	/* What the batch in hand knows of its orders: read in two statements
	 * for the whole batch, kept up to date by its effects (email.c). */
	struct email_orders *orders;
};

void email_app_init(struct email_app *app, const char *topic,
		    const struct email_delivery *delivery);

/* Frees what the last batch left in app: its knowledge of its orders,
 * and the deliveries it staged but did not publish (a batch that did not
 * commit). */
void email_app_release(struct email_app *app);

/* Registers es_emails_sent_total{template} in reg and keeps it in app.
 * Returns 0, or -1 with errstr filled. */
int email_metrics_register(struct email_app *app, struct es_metrics *reg, char *errstr,
			   size_t errstr_size);

/*
 * What email-service does with events (es/dispatch.h; the app is a struct
 * email_app): the five events above are mailed, once per (order,
 * template); one whose data cannot be mailed is REJECTed; a mail server
 * that is away makes the batch RETRY. A batch's Maildir deliveries are
 * made durable together, before its transaction commits; then its new
 * orders and its delivered emails are recorded, one statement each.
 */
extern const struct es_handlers email_handlers;

#endif
