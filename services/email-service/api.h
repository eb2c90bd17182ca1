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
 * so they cannot use the consumer's es_db: each request borrows a
 * connection from the api's es_dbpool (es/dbpool.h).
 */
#ifndef EMAIL_API_H
#define EMAIL_API_H

#include <stddef.h>

#include "es/db.h"
#include "es/http.h"

struct es_dbpool;

struct email_api {
	struct es_dbpool *pool; /* the handlers' connections */
};

/* Copies conninfo and schema; connects nothing yet. Returns 0 or -1. */
int email_api_init(struct email_api *api, const char *conninfo, const char *schema, char *errstr,
		   size_t errstr_size);

/* Adds the routes above to http (before es_http_start). The api must
 * outlive the server. Returns 0, or -1 with errstr filled. */
int email_api_routes(struct email_api *api, struct es_http *http, char *errstr, size_t errstr_size);

/* Closes the connections; call after the server has stopped. */
void email_api_release(struct email_api *api);

#endif
