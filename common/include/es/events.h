/*
 * events: the contract's event types and the shape of each one's data.
 *
 * A consumer calls es_event_data_check() before acting on an event: an
 * event whose data does not have the contract's shape (a field missing or
 * of the wrong type, an unknown enum value, orderId not the subject) can
 * never succeed, so the handler REJECTs it with the reason and it goes to
 * the dead-letter topic. schemas/ says the same in JSON Schema.
 */
#ifndef ES_EVENTS_H
#define ES_EVENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "es/envelope.h"

/* Event types (the CloudEvents "type"). */
#define ES_ORDER_PLACED "OrderPlaced"
#define ES_ORDER_CONFIRMED "OrderConfirmed"
#define ES_ORDER_CANCELLED "OrderCancelled"
#define ES_PAYMENT_PROCESSED "PaymentProcessed"
#define ES_PAYMENT_FAILED "PaymentFailed"
#define ES_PAYMENT_REFUNDED "PaymentRefunded"
#define ES_INVENTORY_RESERVED "InventoryReserved"
#define ES_INVENTORY_REJECTED "InventoryRejected"
#define ES_INVENTORY_RELEASED "InventoryReleased"
#define ES_EMAIL_SENT "EmailSent"
#define ES_SHIPMENT_CREATED "ShipmentCreated"
#define ES_SHIPMENT_DISPATCHED "ShipmentDispatched"
#define ES_SHIPMENT_DELIVERED "ShipmentDelivered"
#define ES_SHIPMENT_CANCELLED "ShipmentCancelled"

/* true for the fourteen types above. */
bool es_event_type_known(const char *type);

/*
 * Checks ev->data against the contract's shape for ev->type: every field
 * present with its type, integers in range (quantities >= 1, cents >= 0),
 * enum fields one of their values, items arrays non-empty, and data.orderId
 * equal to ev->subject. Unknown extra fields are allowed (a newer producer
 * may add some). Returns 0, or -1 with a reason such as
 *   "OrderPlaced data: /items/0/quantity must be an integer >= 1"
 */
int es_event_data_check(const struct es_event *ev, char *errstr, size_t errstr_size);

/* Convenience getters for checked data (NULL / -1 when absent). */
const char *es_data_str(const struct es_event *ev, const char *field);
long long es_data_int(const struct es_event *ev, const char *field);

#endif
