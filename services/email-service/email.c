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

/* ------------------------------------------------------------- statements */

/*
 * Serializes the handling of one order's events until the transaction
 * ends. Two instances of the service may handle one order's OrderPlaced
 * (orders topic) and PaymentRefunded (payments topic) at the same moment;
 * without the lock each could miss the other's uncommitted row, the refund
 * would wait in email_pending and OrderPlaced would not see it, and that
 * email would never go. With it, the second one in sees the first one's
 * committed rows (read committed: every statement sees what committed
 * before it began). A hash collision only makes two orders take turns.
 */
static int lock_order(struct es_db *db, const char *order_id, char *errstr, size_t errstr_size)
{
	char key[EMAIL_ORDER_ID_MAX + 32];
	const char *params[1] = {key};
	PGresult *res;

	snprintf(key, sizeof(key), "%s:%s", EMAIL_SERVICE, order_id);
	res = es_db_query(db, "SELECT pg_advisory_xact_lock(hashtext($1))", 1, params, errstr,
			  errstr_size);
	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

/* The address of the order's customer into to. Returns 1 when the order is
 * known, 0 when its OrderPlaced has not arrived yet, -1 on error. */
static int find_recipient(struct es_db *db, const char *order_id, char *to, size_t to_size,
			  char *errstr, size_t errstr_size)
{
	const char *params[1] = {order_id};
	const char *email;
	PGresult *res;
	int found = 0;

	res = es_db_query(db, "SELECT email FROM email_orders WHERE order_id = $1", 1, params,
			  errstr, errstr_size);
	if (!res)
		return -1;
	email = es_db_get(res, 0, "email");
	if (email) {
		snprintf(to, to_size, "%s", email);
		found = 1;
	}
	PQclear(res);
	return found;
}

/* Returns 1 when (order, template) was delivered and recorded before, 0
 * when not, -1 on error. */
static int already_sent(struct es_db *db, const char *order_id, enum email_template t, char *errstr,
			size_t errstr_size)
{
	const char *params[2] = {order_id, email_template_name(t)};
	PGresult *res;
	int sent;

	res = es_db_query(db, "SELECT 1 FROM email_sent WHERE order_id = $1 AND template = $2", 2,
			  params, errstr, errstr_size);
	if (!res)
		return -1;
	sent = PQntuples(res) > 0;
	PQclear(res);
	return sent;
}

/* The order's recipient into to: 1 when known, 0 when its OrderPlaced has
 * not come yet, -1 on error. */
static int recipient(struct es_effect *fx, char *to, size_t to_size)
{
	struct email_order *o = email_order_known(fx->app, fx->ev->subject);

	if (!o)
		return find_recipient(fx->db, fx->ev->subject, to, to_size, fx->reason,
				      sizeof(fx->reason));
	snprintf(to, to_size, "%s", o->to);
	return o->to[0] != '\0';
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

/* Records the delivered email and writes its EmailSent, in the transaction
 * in hand. */
static enum es_handler_result record_sent(struct es_effect *fx, enum email_template t,
					  const char *to, const char *message_id,
					  const struct es_event *cause)
{
	struct email_app *app = fx->app;
	const char *name = email_template_name(t);
	const char *params[5] = {cause->subject, name, to, message_id, cause->id};
	struct email_order *o;
	enum es_handler_result r;
	struct es_event *sent;
	long n;

	n = es_db_exec(fx->db,
		       "INSERT INTO email_sent (order_id, template, recipient, message_id, "
		       "cause_event_id) VALUES ($1, $2, $3, $4, $5) "
		       "ON CONFLICT (order_id, template) DO NOTHING",
		       5, params, fx->reason, sizeof(fx->reason));
	if (n < 0)
		return es_effect_db_failed(fx);
	if ((o = email_order_known(app, cause->subject)))
		o->sent |= 1u << t;
	if (n == 0) /* recorded already: the key, not our earlier look, decides */
		return ES_HANDLER_OK;
	/* json_pack's "s" copies; es_event_new steals data even on failure.
	 * EmailSent is caused by the event the email is about, which for a
	 * pending email is not fx->ev. */
	sent = es_event_new(EMAIL_SERVICE, ES_EMAIL_SENT, cause->subject, cause, NULL,
			    json_pack("{s:s, s:s, s:s, s:s}", "orderId", cause->subject, "template",
				      name, "to", to, "messageId", message_id));
	if (!sent) {
		snprintf(fx->reason, sizeof(fx->reason), "out of memory");
		return ES_HANDLER_RETRY;
	}
	r = es_effect_put(fx, app->topic, sent);
	es_event_free(sent);
	if (r == ES_HANDLER_OK)
		fx->outcome |= 1 << t; /* counted once the batch has committed */
	return r;
}

/*
 * Delivers template t about cause's order to `to`, once.
 *
 * Deliver first, then record. The email leaves this process (a file
 * renamed into new/, or an SMTP server's 250) before the transaction that
 * records it in email_sent and writes EmailSent to the outbox commits; a
 * Maildir's new/ is made durable once per batch, just before that commit
 * (before_commit). A crash or a failed commit in between means the event
 * is handled again and the email delivered a second time: at-least-once.
 * The other order (commit, then deliver) would lose the email for good on
 * a crash after the commit, since nothing would ever try again. A
 * duplicate is made harmless instead: the second delivery has the same
 * Maildir file name, so it replaces the first file, and the same
 * Message-ID, so mail readers and an SMTP relay's duplicate check see one
 * message. Once recorded, email_sent's row stops any further delivery of
 * (order, template).
 */
static enum es_handler_result send_email(struct es_effect *fx, enum email_template t,
					 const char *to, const struct es_event *cause)
{
	struct email_app *app = fx->app;
	const char *order_id = cause->subject;
	char message_id[EMAIL_MESSAGE_ID_SIZE];
	enum email_delivery_result dr;
	struct email_message m;
	struct email_order *o;
	struct ev_log l;
	char *text;
	size_t len;
	int sent;

	o = email_order_known(app, order_id);
	sent = o ? (int)((o->sent >> t) & 1u)
		 : already_sent(fx->db, order_id, t, fx->reason, sizeof(fx->reason));
	if (sent < 0)
		return es_effect_db_failed(fx);
	if (sent) {
		es_log(ES_LOG_INFO, ev_log(&l, cause), "%s already delivered: not sent again",
		       email_template_name(t));
		return ES_HANDLER_OK;
	}
	fill_message(&m, t, app->delivery->from, to, cause);
	text = email_message_render(&m, &len, fx->reason, sizeof(fx->reason));
	if (!text)
		return ES_HANDLER_REJECT;
	if (email_message_id(order_id, t, message_id, sizeof(message_id))) {
		free(text);
		snprintf(fx->reason, sizeof(fx->reason), "order id too long for a Message-ID");
		return ES_HANDLER_REJECT;
	}
	dr = email_deliver(app->delivery, order_id, t, to, text, len, fx->reason,
			   sizeof(fx->reason));
	free(text);
	if (dr == EMAIL_DELIVERY_RETRY)
		return ES_HANDLER_RETRY;
	if (dr == EMAIL_DELIVERY_REFUSED)
		return ES_HANDLER_REJECT;
	app->unsynced = true;
	es_log(ES_LOG_INFO, ev_log(&l, cause), "delivered %s %s to %s", email_template_name(t),
	       message_id, to);
	return record_sent(fx, t, to, message_id, cause);
}

/* ------------------------------------------------------------ the effects */

/* An email for an order whose OrderPlaced has not come yet: keep the event
 * until it does. A second one of the same template changes nothing, as
 * each (order, template) is sent once. */
static enum es_handler_result keep_pending(struct es_effect *fx, enum email_template t)
{
	const char *params[3] = {fx->ev->subject, email_template_name(t), NULL};
	struct email_order *o;
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
	if ((o = email_order_known(fx->app, fx->ev->subject)))
		o->pending = true;
	es_log(ES_LOG_INFO, &fx->log, "%s waits for the order's OrderPlaced",
	       email_template_name(t));
	return ES_HANDLER_OK;
}

/* Sends what waited for the order's OrderPlaced, then forgets it. */
static enum es_handler_result send_pending(struct es_effect *fx, const char *to)
{
	const char *order_id = fx->ev->subject;
	const char *params[1] = {order_id};
	struct email_order *o = email_order_known(fx->app, order_id);
	enum es_handler_result r = ES_HANDLER_OK;
	PGresult *res;

	if (o && !o->pending) /* the common case: nothing waited */
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
		r = send_email(fx, t, to, cause);
		es_event_free(cause);
	}
	PQclear(res);
	if (r != ES_HANDLER_OK)
		return r;
	if (es_db_exec(fx->db, "DELETE FROM email_pending WHERE order_id = $1", 1, params,
		       fx->reason, sizeof(fx->reason)) < 0)
		return es_effect_db_failed(fx);
	if ((o = email_order_known(fx->app, order_id)))
		o->pending = false;
	return ES_HANDLER_OK;
}

static enum es_handler_result order_placed(struct es_effect *fx)
{
	const struct es_event *ev = fx->ev;
	char to[EMAIL_ADDRESS_MAX + 1], total[32];
	const char *params[4] = {ev->subject, es_data_str(ev, "customerEmail"), total,
				 es_data_str(ev, "currency")};
	struct email_order *o = email_order_known(fx->app, ev->subject);
	enum es_handler_result r;
	int found;

	snprintf(total, sizeof(total), "%lld", es_data_int(ev, "totalCents"));
	/* A second OrderPlaced of one order (another event id) keeps the
	 * first one's address: an order's emails all go to one place. */
	if (es_db_exec(fx->db,
		       "INSERT INTO email_orders (order_id, email, total_cents, currency) "
		       "VALUES ($1, $2, $3::bigint, $4) ON CONFLICT (order_id) DO NOTHING",
		       4, params, fx->reason, sizeof(fx->reason)) < 0)
		return es_effect_db_failed(fx);
	/* Under the order's lock, an order the batch did not know had no row:
	 * this insert made it. */
	if (o && !o->to[0])
		snprintf(o->to, sizeof(o->to), "%s", params[1]);
	found = recipient(fx, to, sizeof(to));
	if (found < 0)
		return es_effect_db_failed(fx);
	if (!found) {
		snprintf(fx->reason, sizeof(fx->reason), "order %s vanished from email_orders",
			 ev->subject);
		return ES_HANDLER_RETRY;
	}
	r = send_email(fx, EMAIL_ORDER_RECEIVED, to, ev);
	if (r != ES_HANDLER_OK)
		return r;
	return send_pending(fx, to);
}

/* The email of t about fx->ev's order, or its keeping until the order's
 * OrderPlaced comes. */
static enum es_handler_result mail(struct es_effect *fx, enum email_template t)
{
	char to[EMAIL_ADDRESS_MAX + 1];
	int found;

	/* email_orders_load locked the batch's orders; an effect run on its own
	 * takes its order's lock here. */
	if (!email_order_known(fx->app, fx->ev->subject) &&
	    lock_order(fx->db, fx->ev->subject, fx->reason, sizeof(fx->reason)))
		return es_effect_db_failed(fx);
	if (t == EMAIL_ORDER_RECEIVED)
		return order_placed(fx);
	found = recipient(fx, to, sizeof(to));
	if (found < 0)
		return es_effect_db_failed(fx);
	if (!found)
		return keep_pending(fx, t);
	return send_email(fx, t, to, fx->ev);
}

/* The effect of every event that causes an email. */
static enum es_handler_result effect(struct es_effect *fx)
{
	struct email_order *o = email_order_known(fx->app, fx->ev->subject);
	enum es_handler_result r;
	enum email_template t;

	if (template_of(fx->ev->type, &t)) /* the table only sends us these */
		return ES_HANDLER_OK;
	r = mail(fx, t);
	/* What it wrote may be rolled back while what it noted stays. */
	if (r != ES_HANDLER_OK && o)
		o->stale = true;
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

/* The batch's deliveries made durable (one fsync of the Maildir's new/,
 * whatever their number) before the commit records them as sent. The
 * effects are done: what the batch knew of its orders goes. */
static int sync_deliveries(struct es_db *db, void *arg, struct es_effect *const *applied, size_t n,
			   char *reason, size_t reason_size)
{
	struct email_app *app = arg;

	email_app_release(app);
	if (!app->unsynced)
		return 0;
	if (email_delivery_sync(app->delivery, reason, reason_size))
		return -1;
	app->unsynced = false;
	return 0;
}

static void count_sent(struct es_effect *fx)
{
	struct email_app *app = fx->app;

	for (int t = 0; t < EMAIL_NTEMPLATES; t++) {
		if (fx->outcome & (1 << t) && app->sent_total)
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
	.before_commit = sync_deliveries,
	.committed = count_sent,
};
