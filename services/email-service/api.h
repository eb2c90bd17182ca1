/*
 * api: email-service's HTTP routes.
 *
 *   GET /emails?orderId=<id>
 *     200 {"emails":[{"orderId","template","to","messageId","sentAt"}]}
 *         oldest first; an order with no email yet has an empty list
 *     400 problem: orderId missing or not an order id
 *     503 problem: the database is unreachable
 *
 * HTTP handlers run in libmicrohttpd's pool, beside the consumer thread,
 * so they cannot use the consumer's es_db: each request reaches the
 * database through es_http_db.
 */
#ifndef EMAIL_API_H
#define EMAIL_API_H

#include <stddef.h>

#include "es/http.h"

/* Adds the routes above to http (before es_http_start). Returns 0, or -1
 * with errstr filled. */
int email_api_routes(struct es_http *http, char *errstr, size_t errstr_size);

#endif
