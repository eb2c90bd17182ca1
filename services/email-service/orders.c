#include "orders.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "email.h"
#include "message.h"

void email_app_release(struct email_app *app)
{
	email_maildir_discard(&app->staged);
	if (!app->orders)
		return;
	free(app->orders->o);
	free(app->orders);
	app->orders = NULL;
}

struct email_order *email_order_known(struct email_app *app, const char *order_id)
{
	struct email_orders *b = app->orders;

	for (size_t i = 0; b && i < b->n; i++) {
		if (!strcmp(b->o[i].order_id, order_id))
			return &b->o[i];
	}
	return NULL;
}

static int compare_ids(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The batch's distinct order ids in sorted order, as a JSON array (the
 * parameter of email_orders_load's read). NULL when out of memory. */
static char *sorted_ids(struct es_effect *const *fresh, size_t n)
{
	const char **ids = calloc(n ? n : 1, sizeof(*ids));
	json_t *arr = json_array();
	char *text = NULL;

	if (!ids || !arr)
		goto out;
	for (size_t i = 0; i < n; i++)
		ids[i] = fresh[i]->ev->subject;
	qsort(ids, n, sizeof(*ids), compare_ids);
	for (size_t i = 0; i < n; i++) {
		if ((i == 0 || strcmp(ids[i], ids[i - 1])) &&
		    json_array_append_new(arr, json_string(ids[i])))
			goto out;
	}
	text = json_dumps(arr, JSON_COMPACT);
out:
	free(ids);
	json_decref(arr);
	return text;
}

/* Copies the row's knowledge of one order into o. */
static void order_from_row(struct email_order *o, const PGresult *res, int row)
{
	const char *to = es_db_get(res, row, "email");
	const char *sent = es_db_get(res, row, "sent");
	const char *pending = es_db_get(res, row, "pending");

	memset(o, 0, sizeof(*o));
	snprintf(o->order_id, sizeof(o->order_id), "%s", es_db_get(res, row, "order_id"));
	snprintf(o->to, sizeof(o->to), "%s", to ? to : "");
	for (int t = 0; sent && t < EMAIL_NTEMPLATES; t++) {
		const char *name = email_template_name(t);
		const char *at = strstr(sent, name);

		/* sent is a comma-separated list of template names. */
		while (at && ((at != sent && at[-1] != ',') ||
			      (at[strlen(name)] && at[strlen(name)] != ',')))
			at = strstr(at + 1, name);
		if (at)
			o->sent |= 1u << t;
	}
	o->pending = pending && !strcmp(pending, "t");
}

int email_orders_load(struct es_db *db, void *arg, struct es_effect *const *fresh, size_t n,
		      char *errstr, size_t errstr_size)
{
	struct email_app *app = arg;
	const char *params[1] = {NULL};
	struct email_orders *b;
	PGresult *res;
	char *ids;
	int rc = -1;

	email_app_release(app);
	if (n == 0)
		return 0;
	ids = sorted_ids(fresh, n);
	b = calloc(1, sizeof(*b));
	if (!ids || !b) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	params[0] = ids;
	/*
	 * The locks serialize the handling of one order's events until the
	 * transaction ends. Two instances of the service may handle one
	 * order's OrderPlaced (orders topic) and PaymentRefunded (payments
	 * topic) at the same moment; without the lock each could miss the
	 * other's uncommitted row, the refund would wait in email_pending and
	 * OrderPlaced would not see it, and that email would never go. With
	 * it, the second one in sees the first one's committed rows (read
	 * committed: the read below sees what committed before it began). A
	 * hash collision only makes two orders take turns.
	 */
	if (es_dispatch_lock_orders(db, EMAIL_SERVICE ":order", fresh, n, errstr, errstr_size))
		goto out;
	res = es_db_query(db,
			  ES_DB_PLAN_EACH_RUN
			  "SELECT i.order_id,"
			  " (SELECT e.email FROM email_orders e WHERE e.order_id = i.order_id)"
			  "  AS email,"
			  " (SELECT string_agg(s.template, ',') FROM email_sent s"
			  "  WHERE s.order_id = i.order_id) AS sent,"
			  " EXISTS (SELECT 1 FROM email_pending p WHERE p.order_id = i.order_id)"
			  "  AS pending"
			  " FROM json_array_elements_text($1::json) AS i(order_id)",
			  1, params, errstr, errstr_size);
	if (!res)
		goto out;
	b->o = calloc((size_t)PQntuples(res) + 1, sizeof(*b->o));
	if (!b->o) {
		PQclear(res);
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	for (int i = 0; i < PQntuples(res); i++)
		order_from_row(&b->o[b->n++], res, i);
	PQclear(res);
	app->orders = b;
	b = NULL;
	rc = 0;
out:
	free(ids);
	if (b)
		free(b->o);
	free(b);
	return rc;
}
