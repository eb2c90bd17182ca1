/*
 * shipment: the domain of a shipment, pure. The fold says what each event
 * does to the state; the decisions say which event a state and a command
 * call for. State is never stored: it is always the fold of the stream
 * (stream.c), so these functions are the whole truth of what a shipment
 * is, and the unit tests pin every branch.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "es/events.h"
#include "shipping.h"

static const char *const status_names[] = {
	[SHIPMENT_CREATED] = "CREATED",
	[SHIPMENT_DISPATCHED] = "DISPATCHED",
	[SHIPMENT_DELIVERED] = "DELIVERED",
	[SHIPMENT_CANCELLED] = "CANCELLED",
};

/* The simulated carriers, as the contract's carrier enum lists them. */
static const char *const carriers[] = {"DHL", "UPS", "DPD"};

void shipment_init(struct shipment *s)
{
	memset(s, 0, sizeof(*s));
}

const char *shipment_status_name(enum shipment_status status)
{
	return status == SHIPMENT_NONE ? NULL : status_names[status];
}

/* Copies data's string field into buf; false when it is absent or does
 * not fit (a stream this code did not write). */
static bool copy_field(const json_t *data, const char *field, char *buf, size_t size)
{
	const char *v = json_string_value(json_object_get(data, field));

	return v && snprintf(buf, size, "%s", v) < (int)size;
}

/* Which state an event of `type` may follow, and which it leads to. */
static const struct transition {
	const char *type;
	enum shipment_status from;
	enum shipment_status to;
} transitions[] = {
	{ES_SHIPMENT_CREATED, SHIPMENT_NONE, SHIPMENT_CREATED},
	{ES_SHIPMENT_DISPATCHED, SHIPMENT_CREATED, SHIPMENT_DISPATCHED},
	{ES_SHIPMENT_DELIVERED, SHIPMENT_DISPATCHED, SHIPMENT_DELIVERED},
	{ES_SHIPMENT_CANCELLED, SHIPMENT_CREATED, SHIPMENT_CANCELLED},
};

int shipment_apply(struct shipment *s, const char *type, const json_t *data, char *errstr,
		   size_t errstr_size)
{
	struct shipment next = *s;
	const struct transition *t = NULL;
	bool ok;

	for (size_t i = 0; i < sizeof(transitions) / sizeof(transitions[0]); i++) {
		if (type && !strcmp(transitions[i].type, type))
			t = &transitions[i];
	}
	if (!t) {
		snprintf(errstr, errstr_size, "%s is not a shipment event", type ? type : "(null)");
		return -1;
	}
	if (s->status != t->from) {
		snprintf(errstr, errstr_size, "%s cannot follow a shipment %s", type,
			 s->status == SHIPMENT_NONE ? "not created" : status_names[s->status]);
		return -1;
	}
	/* Created names the shipment; every later event repeats what it
	 * needs, so the fold checks each against the state. */
	if (t->to == SHIPMENT_CREATED)
		ok = copy_field(data, "shipmentId", next.shipment_id, sizeof(next.shipment_id)) &&
		     copy_field(data, "carrier", next.carrier, sizeof(next.carrier)) &&
		     copy_field(data, "trackingNumber", next.tracking_number,
				sizeof(next.tracking_number));
	else if (t->to == SHIPMENT_CANCELLED)
		ok = copy_field(data, "reason", next.cancel_reason, sizeof(next.cancel_reason));
	else
		ok = true;
	if (!ok) {
		snprintf(errstr, errstr_size, "%s data lacks a field the fold needs", type);
		return -1;
	}
	next.status = t->to;
	next.version++;
	*s = next;
	return 0;
}

int shipment_fold(struct shipment *s, const json_t *events, char *errstr, size_t errstr_size)
{
	char why[256];
	size_t i;
	json_t *ev;

	json_array_foreach(events, i, ev)
	{
		if (shipment_apply(s, json_string_value(json_object_get(ev, "type")),
				   json_object_get(ev, "data"), why, sizeof(why))) {
			snprintf(errstr, errstr_size, "stream version %zu: %s", i + 1, why);
			return -1;
		}
	}
	return 0;
}

/* A hash of the order id picks the carrier: the same order, the same one. */
const char *shipment_carrier_for(const char *order_id)
{
	unsigned h = 5381;

	for (const char *p = order_id; *p; p++)
		h = h * 33 + (unsigned char)*p;
	return carriers[h % (sizeof(carriers) / sizeof(carriers[0]))];
}

/* "ES" and the order id's first 12 hex digits, upper case. */
void shipment_tracking_number_for(const char *order_id, char *tracking, size_t size)
{
	size_t n = 0;

	if (size < 3) {
		if (size)
			tracking[0] = '\0';
		return;
	}
	tracking[n++] = 'E';
	tracking[n++] = 'S';
	for (const char *p = order_id; *p && n < 14 && n + 1 < size; p++) {
		if (isxdigit((unsigned char)*p))
			tracking[n++] = (char)toupper((unsigned char)*p);
	}
	tracking[n] = '\0';
}

const char *shipment_decide_confirmed(const struct shipment *s, const char *order_id,
				      const char *new_shipment_id, json_t **data, const char **why)
{
	char tracking[16];

	*data = NULL;
	if (s->status != SHIPMENT_NONE) {
		*why = "the order already has its shipment";
		return NULL;
	}
	shipment_tracking_number_for(order_id, tracking, sizeof(tracking));
	*data = json_pack("{s:s, s:s, s:s, s:s}", "orderId", order_id, "shipmentId",
			  new_shipment_id, "carrier", shipment_carrier_for(order_id),
			  "trackingNumber", tracking);
	*why = "a confirmed order is shipped";
	return ES_SHIPMENT_CREATED;
}

const char *shipment_decide_cancelled(const struct shipment *s, const char *order_id,
				      const char *reason, json_t **data, const char **why)
{
	*data = NULL;
	switch (s->status) {
	case SHIPMENT_NONE:
		*why = "no shipment to stop";
		return NULL;
	case SHIPMENT_CREATED:
		*data = json_pack("{s:s, s:s, s:s}", "orderId", order_id, "shipmentId",
				  s->shipment_id, "reason", reason);
		*why = "the order was cancelled before its shipment left";
		return ES_SHIPMENT_CANCELLED;
	case SHIPMENT_DISPATCHED:
	case SHIPMENT_DELIVERED:
		*why = "the shipment has already left: a cancellation no longer stops it";
		return NULL;
	case SHIPMENT_CANCELLED:
		break;
	}
	*why = "the shipment is already cancelled";
	return NULL;
}

const char *shipment_decide_progress(const struct shipment *s, const char *order_id, json_t **data,
				     const char **why)
{
	*data = NULL;
	switch (s->status) {
	case SHIPMENT_CREATED:
		*data = json_pack("{s:s, s:s, s:s, s:s}", "orderId", order_id, "shipmentId",
				  s->shipment_id, "carrier", s->carrier, "trackingNumber",
				  s->tracking_number);
		*why = "the carrier picked the parcel up";
		return ES_SHIPMENT_DISPATCHED;
	case SHIPMENT_DISPATCHED:
		*data = json_pack("{s:s, s:s, s:s}", "orderId", order_id, "shipmentId",
				  s->shipment_id, "trackingNumber", s->tracking_number);
		*why = "the carrier delivered the parcel";
		return ES_SHIPMENT_DELIVERED;
	case SHIPMENT_NONE:
	case SHIPMENT_DELIVERED:
	case SHIPMENT_CANCELLED:
		break;
	}
	*why = "nothing left to do: the shipment has ended or never began";
	return NULL;
}

/* A JSON string, or null for an empty one. */
static json_t *string_or_null(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

json_t *shipment_to_json(const struct shipment *s, const char *order_id, const json_t *events)
{
	json_t *stream = json_array();
	size_t i;
	json_t *ev;

	if (!stream)
		return NULL;
	json_array_foreach(events, i, ev)
	{
		json_array_append_new(stream, json_pack("{s:I, s:O, s:O, s:O, s:O}", "version",
							(json_int_t)(i + 1), "id",
							json_object_get(ev, "id"), "type",
							json_object_get(ev, "type"), "time",
							json_object_get(ev, "time"), "data",
							json_object_get(ev, "data")));
	}
	if (json_array_size(stream) != json_array_size(events)) {
		json_decref(stream);
		return NULL;
	}
	return json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:o, s:o}", "orderId", order_id,
			 "shipmentId", s->shipment_id, "status", shipment_status_name(s->status),
			 "version", s->version, "carrier", s->carrier, "trackingNumber",
			 s->tracking_number, "cancelReason", string_or_null(s->cancel_reason),
			 "stream", stream);
}
