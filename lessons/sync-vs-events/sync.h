/*
 * The synchronous twin of the checkout: the first sequence diagram of the
 * seed lesson, built so that it can be measured beside the event-driven
 * shop (scripts/compare). Four daemons talking HTTP, no Kafka:
 *
 *   client -> sync-order  POST /orders
 *               -> sync-payment    POST /charges        (then answers)
 *               -> sync-inventory  POST /reservations   (then answers)
 *               -> sync-email      POST /emails         (then answers)
 *             <- 201 CONFIRMED | 201 CANCELLED | 503 (a step was away)
 *
 * Each daemon keeps the same state as its event-driven counterpart, in
 * the same tables (the services' own migrations), through the same rules
 * (payment_decide, inventory_stock_reserve, email_message_render): only
 * the way they are wired differs. Where the chain breaks after a step that
 * changed something, the front door undoes it (a refund, a release).
 */
#ifndef SYNC_H
#define SYNC_H

#include <stddef.h>

#include <jansson.h>

#include "es/http.h"

/* Where a problem's type points, as the front door's problems do. */
#define SYNC_PROBLEM(name) "urn:eventshop:problem:" name

/*
 * POSTs body (JSON; not stolen) to base_url followed by path, waiting at
 * most timeout_ms for the whole exchange. Returns the HTTP status with
 * *reply set to the parsed JSON answer (a new reference the caller owns,
 * NULL when the answer was not JSON), or -1 when no answer came (refused,
 * timed out, out of memory), with errstr saying why. Thread-safe: each call
 * has a libcurl handle of its own (curl_global_init must have run: see
 * sync_call_init).
 */
long sync_post(const char *base_url, const char *path, json_t *body, long timeout_ms,
	       json_t **reply, char *errstr, size_t errstr_size);

/* curl_global_init, once, before any thread calls sync_post; and its
 * counterpart at the end. Return 0 or -1. */
int sync_call_init(void);
void sync_call_release(void);

/* A request's JSON body, parsed (a new reference), or NULL after having
 * answered 400/415 to the client (the caller then just returns). */
json_t *sync_body(struct es_http_request *req);

/* 503 with a problem saying why (and Retry-After: 1). */
int sync_unavailable(struct es_http_request *req, const char *why);

#endif
