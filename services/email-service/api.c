#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/envelope.h"
#include "es/log.h"
#include "message.h"

/* The rows as the JSON list; NULL when out of memory. */
static json_t *emails_json(const PGresult *res)
{
	json_t *list = json_array();

	for (int i = 0; list && i < PQntuples(res); i++) {
		const char *ms = es_db_get(res, i, "sent_ms");
		char sent_at[ES_TIME_LEN + 1];

		es_time_format(ms ? strtoll(ms, NULL, 10) : 0, sent_at);
		if (json_array_append_new(
			    list, json_pack("{s:s?, s:s?, s:s?, s:s?, s:s}", "orderId",
					    es_db_get(res, i, "order_id"), "template",
					    es_db_get(res, i, "template"), "to",
					    es_db_get(res, i, "recipient"), "messageId",
					    es_db_get(res, i, "message_id"), "sentAt", sent_at))) {
			json_decref(list);
			return NULL;
		}
	}
	return list;
}

static int get_emails(struct es_http_request *req, void *arg)
{
	const char *order_id = es_http_query(req, "orderId");
	const char *params[1] = {order_id};
	PGresult *res = NULL;
	struct es_db *db;
	char errstr[512];
	json_t *list;

	if (!order_id || !*order_id)
		return es_http_reply_problem(req, 400, NULL, NULL,
					     "the query parameter orderId is required", NULL);
	if (!email_order_id_valid(order_id))
		return es_http_reply_problem(req, 400, NULL, NULL, "orderId is not an order id",
					     NULL);
	db = es_http_db(req, errstr, sizeof(errstr));
	if (db)
		res = es_db_query(db,
				  "SELECT order_id, template, recipient, message_id, "
				  "(extract(epoch FROM sent_at) * 1000)::bigint AS sent_ms "
				  "FROM email_sent WHERE order_id = $1 ORDER BY sent_at, template",
				  1, params, errstr, sizeof(errstr));
	if (!res) {
		es_warn("GET /emails: %s", errstr);
		return es_http_reply_problem(req, 503, NULL, NULL, "the database is unreachable",
					     NULL);
	}
	list = emails_json(res);
	PQclear(res);
	/* A NULL body (out of memory) becomes a 500 problem. */
	return es_http_reply_json(req, 200, list ? json_pack("{s:o}", "emails", list) : NULL);
}

int email_api_routes(struct es_http *http, char *errstr, size_t errstr_size)
{
	return es_http_route_for(http, ES_HTTP_OPERATOR, "GET", "/emails", get_emails, NULL, errstr,
				 errstr_size);
}
