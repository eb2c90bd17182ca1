#include "email.h"
#include "orders.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "es/events.h"
#include "es/log.h"
#include "es/outbox.h"

void email_app_init(struct email_app *app, const char *topic, const struct email_delivery *delivery)
{
	memset(app, 0, sizeof(*app));
	app->topic = topic;
	app->delivery = delivery;
}

int email_metrics_register(struct email_app *app, struct es_metrics *reg, char *errstr,
			   size_t errstr_size)
{
	static const char *const labels[] = {"template", NULL};

	app->sent_total = es_counter_register(reg, "es_emails_sent_total",
					      "Emails delivered and recorded, by template.", labels,
					      errstr, errstr_size);
	return app->sent_total ? 0 : -1;
}

/* The email an event type causes. Returns 0, or -1 for a type that causes
 * none. */
static int template_of(const char *type, enum email_template *t)
{
	static const struct {
		const char *type;
		enum email_template tmpl;
	} map[] = {
		{ES_ORDER_PLACED, EMAIL_ORDER_RECEIVED},
		{ES_ORDER_CONFIRMED, EMAIL_ORDER_CONFIRMED},
		{ES_ORDER_CANCELLED, EMAIL_ORDER_CANCELLED},
		{ES_PAYMENT_REFUNDED, EMAIL_REFUND_ISSUED},
		{ES_SHIPMENT_DISPATCHED, EMAIL_ORDER_SHIPPED},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (!strcmp(type, map[i].type)) {
			*t = map[i].tmpl;
			return 0;
		}
	}
	return -1;
}

/* Log context of an event: its order, its id, its trace. */
struct ev_log {
	struct es_log_ctx ctx;
	char trace_id[33];
};

static const struct es_log_ctx *ev_log(struct ev_log *l, const struct es_event *ev)
{
	l->ctx.order_id = ev->subject;
	l->ctx.event_id = ev->id;
	l->ctx.trace_id = NULL;
	if (ev->traceparent && es_traceparent_trace_id(ev->traceparent, l->trace_id) == 0)
		l->ctx.trace_id = l->trace_id;
	return &l->ctx;
}

/* ------------------------------------------------------- what is written */

/*
 * What one effect leaves for the batch's statements (fx->state): the
 * order's email_orders row, and the EmailSent of each email it delivered,
 * which says all that email_sent's row needs. record_batch writes them for
 * all the batch's applied events at once, before the commit. Each
 * (order, template) is delivered at most once per effect, so EMAIL_NTEMPLATES
 * is room enough.
 */
struct email_fx {
	bool records_order; /* fx->ev, an OrderPlaced, makes the order's row */
	struct es_event *sent[EMAIL_NTEMPLATES];
	size_t nsent;
};

static void email_fx_clear(struct email_fx *st)
{
	for (size_t i = 0; i < st->nsent; i++)
		es_event_free(st->sent[i]);
	memset(st, 0, sizeof(*st));
}

/* fx's state, emptied: the transaction may run an effect again (dispatch.h),
 * and only what its last run did may be written. NULL when out of memory. */
static struct email_fx *fresh_state(struct es_effect *fx)
{
	if (!fx->state)
		fx->state = calloc(1, sizeof(struct email_fx));
	if (fx->state)
		email_fx_clear(fx->state);
	return fx->state;
}

/* ---------------------------------------------------------------- sending */

/* What template t says, taken from the event it is about. */
static void fill_message(struct email_message *m, enum email_template t, const char *from,
			 const char *to, const struct es_event *cause)
{
	memset(m, 0, sizeof(*m));
	m->tmpl = t;
	m->order_id = cause->subject;
	m->from = from;
	m->to = to;
	m->date = time(NULL);
	switch (t) {
	case EMAIL_ORDER_RECEIVED:
		m->cents = es_data_int(cause, "totalCents");
		m->currency = es_data_str(cause, "currency");
		m->items = json_object_get(cause->data, "items");
		break;
	case EMAIL_ORDER_CONFIRMED:
		m->cents = es_data_int(cause, "totalCents");
		m->currency = es_data_str(cause, "currency");
		break;
	case EMAIL_ORDER_CANCELLED:
		m->reason = es_data_str(cause, "reason");
		m->detail = es_data_str(cause, "detail");
		break;
	case EMAIL_ORDER_SHIPPED:
		m->carrier = es_data_str(cause, "carrier");
		m->tracking_number = es_data_str(cause, "trackingNumber");
		break;
	default:
		m->cents = es_data_int(cause, "amountCents");
		m->currency = es_data_str(cause, "currency");
		break;
	}
}

/* Notes the delivered email: its EmailSent, for record_batch to record and
 * put in the outbox. */
static enum es_handler_result note_sent(struct es_effect *fx, struct email_order *o,
					enum email_template t, const char *message_id,
					const struct es_event *cause)
{
	struct email_fx *st = fx->state;
	struct es_event *sent;

	/* json_pack's "s" copies; es_event_new steals data even on failure.
	 * EmailSent is caused by the event the email is about, which for a
	 * pending email is not fx->ev. */
	sent = es_event_new(EMAIL_SERVICE, ES_EMAIL_SENT, cause->subject, cause, NULL,
			    json_pack("{s:s, s:s, s:s, s:s}", "orderId", cause->subject, "template",
				      email_template_name(t), "to", o->to, "messageId",
				      message_id));
	if (!sent || st->nsent == EMAIL_NTEMPLATES) {
		es_event_free(sent);
		snprintf(fx->reason, sizeof(fx->reason), "out of memory");
		return ES_HANDLER_RETRY;
	}
	st->sent[st->nsent++] = sent;
	o->sent |= 1u << t;
	return ES_HANDLER_OK;
}

/*
 * Delivers template t about cause's order to the order's recipient, once.
 *
 * Deliver first, then record. The email leaves this process (an SMTP
 * server's 250, or a file in the Maildir's new/) before the transaction
 * that records it in email_sent and writes EmailSent to the outbox
 * commits: a Maildir delivery is staged in tmp/ here and published with
 * the batch's others, durably, just before that commit (before_commit).
 * A crash or a failed commit in between means the event
 * is handled again and the email delivered a second time: at-least-once.
 * The other order (commit, then deliver) would lose the email for good on
 * a crash after the commit, since nothing would ever try again. A
 * duplicate is made harmless instead: the second delivery has the same
 * Maildir file name, so it replaces the first file, and the same
 * Message-ID, so mail readers and an SMTP relay's duplicate check see one
 * message. Once recorded, email_sent's row stops any further delivery of
 * (order, template).
 */
static enum es_handler_result send_email(struct es_effect *fx, struct email_order *o,
					 enum email_template t, const struct es_event *cause)
{
	struct email_app *app = fx->app;
	const char *order_id = cause->subject;
	char message_id[EMAIL_MESSAGE_ID_SIZE];
	enum email_delivery_result dr;
	struct email_message m;
	struct ev_log l;
	char *text;
	size_t len;

	if (o->sent & (1u << t)) {
		es_log(ES_LOG_INFO, ev_log(&l, cause), "%s already delivered: not sent again",
		       email_template_name(t));
		return ES_HANDLER_OK;
	}
	fill_message(&m, t, app->delivery->from, o->to, cause);
	text = email_message_render(&m, &len, fx->reason, sizeof(fx->reason));
	if (!text)
		return ES_HANDLER_REJECT;
	if (email_message_id(order_id, t, message_id, sizeof(message_id))) {
		free(text);
		snprintf(fx->reason, sizeof(fx->reason), "order id too long for a Message-ID");
		return ES_HANDLER_REJECT;
	}
	dr = email_deliver(app->delivery, &app->staged, order_id, t, o->to, text, len, fx->reason,
			   sizeof(fx->reason));
	free(text);
	if (dr == EMAIL_DELIVERY_RETRY)
		return ES_HANDLER_RETRY;
	if (dr == EMAIL_DELIVERY_REFUSED)
		return ES_HANDLER_REJECT;
	return note_sent(fx, o, t, message_id, cause);
}

/* ------------------------------------------------------------ the effects */

/* An email for an order whose OrderPlaced has not come yet: keep the event
 * until it does. A second one of the same template changes nothing, as
 * each (order, template) is sent once. Rare, so written at once: the
 * OrderPlaced that sends it may be in the same batch. */
static enum es_handler_result keep_pending(struct es_effect *fx, struct email_order *o,
					   enum email_template t)
{
	const char *params[3] = {fx->ev->subject, email_template_name(t), NULL};
	char *text;
	long n;

	text = es_event_serialize(fx->ev);
	if (!text) {
		snprintf(fx->reason, sizeof(fx->reason), "out of memory");
		return ES_HANDLER_RETRY;
	}
	params[2] = text;
	n = es_db_exec(fx->db,
		       "INSERT INTO email_pending (order_id, template, event) VALUES ($1, $2, $3) "
		       "ON CONFLICT (order_id, template) DO NOTHING",
		       3, params, fx->reason, sizeof(fx->reason));
	free(text);
	if (n < 0)
		return es_effect_db_failed(fx);
	o->pending = true;
	es_log(ES_LOG_INFO, &fx->log, "%s waits for the order's OrderPlaced",
	       email_template_name(t));
	return ES_HANDLER_OK;
}

/* Sends what waited for the order's OrderPlaced, then forgets it. */
static enum es_handler_result send_pending(struct es_effect *fx, struct email_order *o)
{
	const char *params[1] = {o->order_id};
	enum es_handler_result r = ES_HANDLER_OK;
	PGresult *res;

	if (!o->pending) /* the common case: nothing waited */
		return ES_HANDLER_OK;
	res = es_db_query(fx->db,
			  "SELECT template, event FROM email_pending WHERE order_id = $1 "
			  "ORDER BY created_at, template",
			  1, params, fx->reason, sizeof(fx->reason));
	if (!res)
		return es_effect_db_failed(fx);
	for (int i = 0; i < PQntuples(res) && r == ES_HANDLER_OK; i++) {
		const char *name = es_db_get(res, i, "template");
		const char *text = es_db_get(res, i, "event");
		enum email_template t;
		struct es_event *cause;
		char why[256];

		cause = text ? es_event_parse(text, strlen(text), why, sizeof(why)) : NULL;
		if (!cause || email_template_parse(name, &t)) {
			/* We wrote it ourselves, so this is a bug; keeping the
			 * row would not make it sendable either. */
			es_log(ES_LOG_ERROR, &fx->log, "dropping unreadable pending %s: %s",
			       name ? name : "email", cause ? "unknown template" : why);
			es_event_free(cause);
			continue;
		}
		r = send_email(fx, o, t, cause);
		es_event_free(cause);
	}
	PQclear(res);
	if (r != ES_HANDLER_OK)
		return r;
	if (es_db_exec(fx->db, "DELETE FROM email_pending WHERE order_id = $1", 1, params,
		       fx->reason, sizeof(fx->reason)) < 0)
		return es_effect_db_failed(fx);
	o->pending = false;
	return ES_HANDLER_OK;
}

/* OrderPlaced: the order's address kept, its email, and those that waited
 * for it. A second OrderPlaced of one order (another event id) keeps the
 * first one's address: an order's emails all go to one place. */
static enum es_handler_result order_placed(struct es_effect *fx, struct email_order *o)
{
	struct email_fx *st = fx->state;
	enum es_handler_result r;

	if (!o->to[0]) {
		snprintf(o->to, sizeof(o->to), "%s", es_data_str(fx->ev, "customerEmail"));
		st->records_order = true;
	}
	r = send_email(fx, o, EMAIL_ORDER_RECEIVED, fx->ev);
	if (r != ES_HANDLER_OK)
		return r;
	return send_pending(fx, o);
}

/* The email of t about fx->ev's order, or its keeping until the order's
 * OrderPlaced comes. */
static enum es_handler_result mail(struct es_effect *fx, struct email_order *o,
				   enum email_template t)
{
	if (!fresh_state(fx)) {
		snprintf(fx->reason, sizeof(fx->reason), "out of memory");
		return ES_HANDLER_RETRY;
	}
	if (t == EMAIL_ORDER_RECEIVED)
		return order_placed(fx, o);
	if (!o->to[0])
		return keep_pending(fx, o, t);
	return send_email(fx, o, t, fx->ev);
}

/* The effect of every event that causes an email. It works from what the
 * batch knows of the order (email_orders_load, under the order's lock) and
 * writes little itself: record_batch writes what the applied effects left
 * in their state. */
static enum es_handler_result effect(struct es_effect *fx)
{
	struct email_order *o = email_order_known(fx->app, fx->ev->subject);
	struct email_order before;
	enum es_handler_result r;
	enum email_template t;

	if (template_of(fx->ev->type, &t)) /* the table only sends us these */
		return ES_HANDLER_OK;
	if (!o) { /* email_orders_load reads every order of the batch */
		snprintf(fx->reason, sizeof(fx->reason), "order %s not read for the batch",
			 fx->ev->subject);
		return ES_HANDLER_RETRY;
	}
	before = *o;
	r = mail(fx, o, t);
	/* What it wrote is rolled back (its savepoint, or the whole batch),
	 * so what it noted of the order goes too. */
	if (r != ES_HANDLER_OK)
		*o = before;
	return r;
}

/* ------------------------------------------------------------ the hooks */

/* What the contract's shape check leaves to us: values that go into a
 * header, a file name or an amount. Data that fails can never be mailed. */
static enum es_handler_result check_mailable(struct es_effect *fx)
{
	const struct es_event *ev = fx->ev;
	enum email_template t;
	const char *s;

	if (template_of(ev->type, &t))
		return ES_HANDLER_OK;
	if (!email_order_id_valid(ev->subject)) {
		snprintf(fx->reason, sizeof(fx->reason),
			 "%s: orderId is not usable in a Message-ID or a file name (1 to %d of "
			 "A-Z a-z 0-9 - _ and single inner dots)",
			 ev->type, EMAIL_ORDER_ID_MAX);
		return ES_HANDLER_REJECT;
	}
	s = es_data_str(ev, "customerEmail");
	if (t == EMAIL_ORDER_RECEIVED && !email_address_valid(s)) {
		snprintf(fx->reason, sizeof(fx->reason),
			 "%s data: /customerEmail is not a mailable address", ev->type);
		return ES_HANDLER_REJECT;
	}
	s = es_data_str(ev, "currency");
	if (email_template_has_amount(t) && !email_currency_valid(s)) {
		snprintf(fx->reason, sizeof(fx->reason),
			 "%s data: /currency must be an ISO 4217 code such as EUR", ev->type);
		return ES_HANDLER_REJECT;
	}
	return ES_HANDLER_OK;
}

/* The rows in email_orders of the batch's new orders (the caller's
 * reference); NULL when out of memory. */
static json_t *order_rows(struct es_effect *const *applied, size_t n)
{
	json_t *rows = json_array();

	for (size_t i = 0; rows && i < n; i++) {
		const struct email_fx *st = applied[i]->state;
		const struct es_event *ev = applied[i]->ev;

		if (st && st->records_order &&
		    json_array_append_new(rows,
					  json_pack("{s:s, s:s, s:I, s:s}", "order_id", ev->subject,
						    "email", es_data_str(ev, "customerEmail"),
						    "total_cents",
						    (json_int_t)es_data_int(ev, "totalCents"),
						    "currency", es_data_str(ev, "currency")))) {
			json_decref(rows);
			rows = NULL;
		}
	}
	return rows;
}

/* The batch's new orders into email_orders, in one statement. */
static int record_orders(struct es_db *db, struct es_effect *const *applied, size_t n, char *reason,
			 size_t reason_size)
{
	json_t *rows = order_rows(applied, n);
	long rc;

	if (!rows) {
		snprintf(reason, reason_size, "out of memory");
		return -1;
	}
	rc = es_db_exec_rows(db,
			     "INSERT INTO email_orders (order_id, email, total_cents, currency)"
			     " SELECT r.order_id, r.email, r.total_cents, r.currency"
			     " FROM json_to_recordset($1::json)"
			     " AS r(order_id text, email text, total_cents bigint, currency text)"
			     " ON CONFLICT (order_id) DO NOTHING",
			     rows, 0, NULL, reason, reason_size);
	json_decref(rows);
	return rc < 0 ? -1 : 0;
}

/* The batch's delivered emails as email_sent's rows, taken from their
 * EmailSent events (the caller's reference); NULL when out of memory. */
static json_t *sent_rows(struct es_effect *const *applied, size_t n)
{
	json_t *rows = json_array();

	for (size_t i = 0; rows && i < n; i++) {
		const struct email_fx *st = applied[i]->state;

		for (size_t k = 0; st && rows && k < st->nsent; k++) {
			const struct es_event *sent = st->sent[k];

			if (json_array_append_new(
				    rows, json_pack("{s:s, s:s, s:s, s:s, s:s}", "order_id",
						    sent->subject, "template",
						    es_data_str(sent, "template"), "recipient",
						    es_data_str(sent, "to"), "message_id",
						    es_data_str(sent, "messageId"),
						    "cause_event_id", sent->causationid))) {
				json_decref(rows);
				rows = NULL;
			}
		}
	}
	return rows;
}

/* true when res (order_id, template rows) holds sent's email. */
static bool recorded(const PGresult *res, const struct es_event *sent)
{
	for (int i = 0; i < PQntuples(res); i++) {
		if (!strcmp(es_db_get(res, i, "order_id"), sent->subject) &&
		    !strcmp(es_db_get(res, i, "template"), es_data_str(sent, "template")))
			return true;
	}
	return false;
}

/*
 * The batch's delivered emails into email_sent in one statement, and the
 * EmailSent of each row it wrote into the outbox: the key, not the batch's
 * look at email_sent, decides (a row there already means another
 * transaction recorded that email first). The batch never delivers one
 * (order, template) twice, so a row is one EmailSent.
 */
static int record_sent(struct es_db *db, struct email_app *app, struct es_effect *const *applied,
		       size_t n, char *reason, size_t reason_size)
{
	json_t *rows = sent_rows(applied, n);
	char *text = rows && json_array_size(rows) ? json_dumps(rows, JSON_COMPACT) : NULL;
	bool none = rows && json_array_size(rows) == 0;
	PGresult *res;

	json_decref(rows);
	if (none)
		return 0;
	if (!text) {
		snprintf(reason, reason_size, "out of memory");
		return -1;
	}
	res = es_db_query(
		db,
		"INSERT INTO email_sent (order_id, template, recipient, message_id,"
		" cause_event_id)"
		" SELECT r.order_id, r.template, r.recipient, r.message_id, r.cause_event_id"
		" FROM json_to_recordset($1::json) AS r(order_id text, template text,"
		" recipient text, message_id text, cause_event_id text)"
		" ON CONFLICT (order_id, template) DO NOTHING"
		" RETURNING order_id, template",
		1, (const char *[]){text}, reason, reason_size);
	free(text);
	if (!res)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct es_effect *fx = applied[i];
		const struct email_fx *st = fx->state;
		enum email_template t;

		for (size_t k = 0; st && k < st->nsent; k++) {
			if (!recorded(res, st->sent[k]))
				continue;
			if (es_effect_put(fx, app->topic, st->sent[k]) != ES_HANDLER_OK) {
				snprintf(reason, reason_size, "%s", fx->reason);
				PQclear(res);
				return -1;
			}
			if (!email_template_parse(es_data_str(st->sent[k], "template"), &t))
				fx->outcome |= 1 << t; /* counted once the batch has committed */
		}
	}
	PQclear(res);
	return 0;
}

/*
 * es_handlers.before_commit: the batch's deliveries made durable (for a
 * Maildir, two disk flushes whatever their number) before they are recorded
 * as sent, then the applied effects' orders and emails written, one
 * statement each. The effects are done: what the batch knew of its orders
 * goes.
 */
static int record_batch(struct es_db *db, void *arg, struct es_effect *const *applied, size_t n,
			char *reason, size_t reason_size)
{
	struct email_app *app = arg;

	if (email_delivery_sync(app->delivery, &app->staged, reason, reason_size))
		return -1;
	email_app_release(app);
	if (record_orders(db, applied, n, reason, reason_size) ||
	    record_sent(db, app, applied, n, reason, reason_size))
		return -1;
	return 0;
}

static void release_state(struct es_effect *fx)
{
	email_fx_clear(fx->state);
	free(fx->state);
	fx->state = NULL;
}

/* After the commit: each email the effect delivered and recorded, logged
 * and counted. */
static void count_sent(struct es_effect *fx)
{
	struct email_app *app = fx->app;
	const struct email_fx *st = fx->state;
	enum email_template t;

	for (size_t k = 0; st && k < st->nsent; k++) {
		const struct es_event *sent = st->sent[k];

		if (email_template_parse(es_data_str(sent, "template"), &t) ||
		    !(fx->outcome & (1 << t)))
			continue;
		es_log(ES_LOG_INFO, &fx->log, "delivered %s %s to %s", email_template_name(t),
		       es_data_str(sent, "messageId"), es_data_str(sent, "to"));
		if (app->sent_total)
			es_counter_inc(app->sent_total,
				       (const char *const[]){email_template_name(t)});
	}
}

/* Every other known type causes no email. */
static const struct es_dispatch_rule rules[] = {
	{ES_ORDER_PLACED, effect},	  {ES_ORDER_CONFIRMED, effect},
	{ES_ORDER_CANCELLED, effect},	  {ES_PAYMENT_REFUNDED, effect},
	{ES_SHIPMENT_DISPATCHED, effect}, {NULL, NULL},
};

const struct es_handlers email_handlers = {
	.rules = rules,
	.prepare = check_mailable,
	.before_effects = email_orders_load,
	.before_commit = record_batch,
	.committed = count_sent,
	.release = release_state,
};
