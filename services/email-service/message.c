#include "message.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A message is a few hundred bytes; anything near this is a bug. */
#define MESSAGE_MAX (64 * 1024)
/* Free text from an event (a cancel detail, a sku) is cut to this. */
#define TEXT_MAX 200

static const char *const template_names[EMAIL_NTEMPLATES] = {
	"order-received", "order-confirmed", "order-cancelled", "refund-issued", "order-shipped",
};

const char *email_template_name(enum email_template t)
{
	return (unsigned)t < EMAIL_NTEMPLATES ? template_names[t] : NULL;
}

bool email_template_has_amount(enum email_template t)
{
	return t != EMAIL_ORDER_CANCELLED && t != EMAIL_ORDER_SHIPPED;
}

int email_template_parse(const char *name, enum email_template *out)
{
	for (int i = 0; name && i < EMAIL_NTEMPLATES; i++) {
		if (!strcmp(name, template_names[i])) {
			*out = (enum email_template)i;
			return 0;
		}
	}
	return -1;
}

/* ------------------------------------------------------------ validation */

static bool is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool email_order_id_valid(const char *id)
{
	size_t n;

	if (!id)
		return false;
	n = strlen(id);
	if (n == 0 || n > EMAIL_ORDER_ID_MAX || id[0] == '.' || id[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];

		if (c == '.' && id[i + 1] == '.')
			return false;
		if (!is_alnum(c) && c != '-' && c != '_' && c != '.')
			return false;
	}
	return true;
}

bool email_address_valid(const char *addr)
{
	const char *at;
	size_t n;

	if (!addr)
		return false;
	n = strlen(addr);
	at = strchr(addr, '@');
	if (n == 0 || n > EMAIL_ADDRESS_MAX || !at || at == addr || !at[1] || strchr(at + 1, '@'))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)addr[i];

		/* Controls (CR, LF above all), space, DEL and non-ASCII could
		 * end a header or an SMTP command; the specials could turn
		 * one address into a group or a route. */
		if (c <= 0x20 || c >= 0x7f || strchr("()<>[]\\,;:\"", c))
			return false;
	}
	return true;
}

/* RFC 5322 atext, plus space and dot, which a display name may hold. */
static bool is_name_char(unsigned char c)
{
	return is_alnum(c) || c == ' ' || c == '.' || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

int email_from_parse(const char *from, char *addr, size_t addr_size, char *errstr,
		     size_t errstr_size)
{
	const char *lt, *gt;
	size_t n;

	if (!from || !*from) {
		snprintf(errstr, errstr_size, "is empty");
		return -1;
	}
	lt = strchr(from, '<');
	if (!lt) {
		if (!email_address_valid(from)) {
			snprintf(errstr, errstr_size, "\"%s\" is not an email address", from);
			return -1;
		}
		n = strlen(from);
	} else {
		for (const char *p = from; p < lt; p++) {
			if (!is_name_char((unsigned char)*p)) {
				snprintf(errstr, errstr_size,
					 "the display name may hold letters, digits, spaces and "
					 "RFC 5322 atext only: \"%s\"",
					 from);
				return -1;
			}
		}
		gt = strchr(lt, '>');
		if (!gt || gt[1]) {
			snprintf(errstr, errstr_size,
				 "expected \"Name <address>\" with nothing after '>': \"%s\"",
				 from);
			return -1;
		}
		from = lt + 1;
		n = (size_t)(gt - from);
	}
	if (n >= addr_size) {
		snprintf(errstr, errstr_size, "the address is longer than %zu bytes",
			 addr_size - 1);
		return -1;
	}
	memcpy(addr, from, n);
	addr[n] = '\0';
	if (!email_address_valid(addr)) {
		snprintf(errstr, errstr_size, "\"%s\" is not an email address", addr);
		return -1;
	}
	return 0;
}

bool email_currency_valid(const char *c)
{
	return c && strlen(c) == 3 && c[0] >= 'A' && c[0] <= 'Z' && c[1] >= 'A' && c[1] <= 'Z' &&
	       c[2] >= 'A' && c[2] <= 'Z';
}

/* ---------------------------------------------------------------- formats */

int email_message_id(const char *order_id, enum email_template t, char *buf, size_t size)
{
	int n = snprintf(buf, size, "<%s.%s@%s>", order_id, email_template_name(t),
			 EMAIL_MESSAGE_ID_DOMAIN);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int email_format_money(long long cents, const char *currency, char *buf, size_t size)
{
	/* Through unsigned, so that even LLONG_MIN has a magnitude. */
	unsigned long long mag = cents < 0 ? 0ULL - (unsigned long long)cents
					   : (unsigned long long)cents;
	int n = snprintf(buf, size, "%s%llu.%02llu %s", cents < 0 ? "-" : "", mag / 100, mag % 100,
			 currency);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int email_format_date(time_t t, char *buf, size_t size)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	int n;

	if (!gmtime_r(&t, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
	    tm.tm_mon > 11)
		return -1;
	n = snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
		     tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		     tm.tm_sec);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

const char *email_cancel_reason_words(const char *reason)
{
	static const struct {
		const char *code;
		const char *words;
	} reasons[] = {
		{"PAYMENT_DECLINED", "your payment was declined"},
		{"OUT_OF_STOCK", "an item you ordered is out of stock"},
		{"CUSTOMER_REQUEST", "you asked us to cancel it"},
		{"TIMEOUT", "we could not confirm it in time"},
	};

	for (size_t i = 0; reason && i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (!strcmp(reason, reasons[i].code))
			return reasons[i].words;
	}
	return NULL;
}

/* Copies free text from an event as printable ASCII (anything else, CR and
 * LF included, becomes '?'), cut to TEXT_MAX bytes with "..." after. */
static void clean_text(const char *in, char *out, size_t size)
{
	size_t i = 0;

	for (; in[i] && i < TEXT_MAX && i + 4 < size; i++) {
		unsigned char c = (unsigned char)in[i];

		out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	out[i] = '\0';
	if (in[i] && i + 3 < size)
		memcpy(out + i, "...", 4);
}

/* ------------------------------------------------------------- the buffer */

/* A growing message with a hard limit; after a failure every append is a
 * no-op and ok stays false, so the renderer checks once at the end. */
struct mbuf {
	char *data;
	size_t len;
	size_t cap;
	bool ok;
};

__attribute__((format(printf, 2, 3))) static void mbuf_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!b->ok)
		return;
	for (;;) {
		size_t avail = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->data ? b->data + b->len : NULL, avail, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->ok = false;
			return;
		}
		if ((size_t)n < avail) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 1024;
		char *p;

		while (cap < b->len + (size_t)n + 1)
			cap *= 2;
		if (cap > MESSAGE_MAX) {
			b->ok = false;
			return;
		}
		p = realloc(b->data, cap);
		if (!p) {
			b->ok = false;
			return;
		}
		b->data = p;
		b->cap = cap;
	}
}

/* One line of text with its CRLF. */
#define LINE(b, ...)                         \
	do {                                 \
		mbuf_printf(b, __VA_ARGS__); \
		mbuf_printf(b, "\r\n");      \
	} while (0)
#define BLANK(b) mbuf_printf(b, "\r\n")

/* ------------------------------------------------------------- the bodies */

static void body_items(struct mbuf *b, const struct email_message *m)
{
	size_t i;
	json_t *item;

	if (!json_is_array(m->items) || json_array_size(m->items) == 0)
		return;
	json_array_foreach((json_t *)m->items, i, item)
	{
		const char *sku = json_string_value(json_object_get(item, "sku"));
		json_t *qty = json_object_get(item, "quantity");
		json_t *price = json_object_get(item, "unitPriceCents");
		char clean[TEXT_MAX + 4], money[64];

		if (!sku || !json_is_integer(qty) || !json_is_integer(price) ||
		    email_format_money(json_integer_value(price), m->currency, money,
				       sizeof(money)))
			continue;
		clean_text(sku, clean, sizeof(clean));
		LINE(b, "  %lld x %s at %s", (long long)json_integer_value(qty), clean, money);
	}
	BLANK(b);
}

static int render_body(struct mbuf *b, const struct email_message *m, const char *money,
		       char *errstr, size_t errstr_size)
{
	char detail[TEXT_MAX + 4], carrier[TEXT_MAX + 4], tracking[TEXT_MAX + 4];
	const char *words;

	LINE(b, "Hello,");
	BLANK(b);
	switch (m->tmpl) {
	case EMAIL_ORDER_RECEIVED:
		LINE(b, "thank you for your order %s.", m->order_id);
		LINE(b, "We have received it and are now taking your payment and reserving");
		LINE(b, "your items.");
		BLANK(b);
		body_items(b, m);
		LINE(b, "Total: %s", money);
		BLANK(b);
		LINE(b, "We will write again as soon as your order is confirmed.");
		break;
	case EMAIL_ORDER_CONFIRMED:
		LINE(b, "good news: your order %s is confirmed.", m->order_id);
		LINE(b, "Your payment of %s was accepted and your items are reserved", money);
		LINE(b, "for you.");
		break;
	case EMAIL_ORDER_CANCELLED:
		words = email_cancel_reason_words(m->reason);
		if (!words) {
			snprintf(errstr, errstr_size, "unknown cancel reason \"%s\"",
				 m->reason ? m->reason : "(none)");
			return -1;
		}
		LINE(b, "we are sorry: your order %s was cancelled", m->order_id);
		LINE(b, "because %s.", words);
		if (m->detail && *m->detail) {
			clean_text(m->detail, detail, sizeof(detail));
			LINE(b, "Details: %s", detail);
		}
		BLANK(b);
		LINE(b, "Anything you were charged for this order will be refunded.");
		break;
	case EMAIL_REFUND_ISSUED:
		LINE(b, "we have refunded %s for your order %s.", money, m->order_id);
		LINE(b, "Depending on your bank it may take a few days to appear on your");
		LINE(b, "statement.");
		break;
	case EMAIL_ORDER_SHIPPED:
		/* Both come from an event: cleaned like any text shown. */
		clean_text(m->carrier ? m->carrier : "", carrier, sizeof(carrier));
		clean_text(m->tracking_number ? m->tracking_number : "", tracking,
			   sizeof(tracking));
		if (!*carrier || !*tracking) {
			snprintf(errstr, errstr_size,
				 "order-shipped needs a carrier and a tracking "
				 "number");
			return -1;
		}
		LINE(b, "your order %s is on its way.", m->order_id);
		LINE(b, "Carrier: %s", carrier);
		LINE(b, "Tracking number: %s", tracking);
		break;
	default:
		snprintf(errstr, errstr_size, "unknown template %d", (int)m->tmpl);
		return -1;
	}
	BLANK(b);
	/* "-- " with its space is the signature separator mail readers know. */
	LINE(b, "-- ");
	LINE(b, "eventshop");
	return 0;
}

static void write_subject(struct mbuf *b, const struct email_message *m, const char *money)
{
	switch (m->tmpl) {
	case EMAIL_ORDER_RECEIVED:
		LINE(b, "Subject: Your eventshop order %s was received", m->order_id);
		break;
	case EMAIL_ORDER_CONFIRMED:
		LINE(b, "Subject: Your eventshop order %s is confirmed", m->order_id);
		break;
	case EMAIL_ORDER_CANCELLED:
		LINE(b, "Subject: Your eventshop order %s was cancelled", m->order_id);
		break;
	case EMAIL_ORDER_SHIPPED:
		LINE(b, "Subject: Your eventshop order %s has shipped", m->order_id);
		break;
	default:
		LINE(b, "Subject: Refund of %s for your eventshop order %s", money, m->order_id);
		break;
	}
}

/* Checks what goes into the headers; the body's own fields are checked
 * where they are used. */
static int check_message(const struct email_message *m, char *errstr, size_t errstr_size)
{
	char addr[EMAIL_ADDRESS_MAX + 1], why[256];

	if (!email_template_name(m->tmpl)) {
		snprintf(errstr, errstr_size, "unknown template %d", (int)m->tmpl);
		return -1;
	}
	if (!email_order_id_valid(m->order_id)) {
		snprintf(errstr, errstr_size, "order id \"%s\" cannot go into a Message-ID",
			 m->order_id ? m->order_id : "(none)");
		return -1;
	}
	if (!email_address_valid(m->to)) {
		snprintf(errstr, errstr_size, "recipient \"%s\" is not an email address",
			 m->to ? m->to : "(none)");
		return -1;
	}
	if (email_from_parse(m->from, addr, sizeof(addr), why, sizeof(why))) {
		snprintf(errstr, errstr_size, "From %s", why);
		return -1;
	}
	if (email_template_has_amount(m->tmpl) && !email_currency_valid(m->currency)) {
		snprintf(errstr, errstr_size, "currency \"%s\" is not an ISO 4217 code",
			 m->currency ? m->currency : "(none)");
		return -1;
	}
	return 0;
}

char *email_message_render(const struct email_message *m, size_t *len, char *errstr,
			   size_t errstr_size)
{
	struct mbuf b = {.ok = true};
	char date[64], msgid[EMAIL_MESSAGE_ID_SIZE], money[64] = "";

	if (check_message(m, errstr, errstr_size))
		return NULL;
	if (email_format_date(m->date, date, sizeof(date)) ||
	    email_message_id(m->order_id, m->tmpl, msgid, sizeof(msgid)) ||
	    (email_template_has_amount(m->tmpl) &&
	     email_format_money(m->cents, m->currency, money, sizeof(money)))) {
		snprintf(errstr, errstr_size, "cannot format the date, Message-ID or amount");
		return NULL;
	}

	LINE(&b, "Date: %s", date);
	LINE(&b, "From: %s", m->from);
	LINE(&b, "To: %s", m->to);
	write_subject(&b, m, money);
	LINE(&b, "Message-ID: %s", msgid);
	LINE(&b, "MIME-Version: 1.0");
	LINE(&b, "Content-Type: text/plain; charset=utf-8");
	LINE(&b, "Content-Transfer-Encoding: 7bit");
	LINE(&b, "X-Eventshop-Order-Id: %s", m->order_id);
	LINE(&b, "X-Eventshop-Template: %s", email_template_name(m->tmpl));
	BLANK(&b);
	if (render_body(&b, m, money, errstr, errstr_size))
		goto fail;
	if (!b.ok) {
		snprintf(errstr, errstr_size, "out of memory or message over %d bytes",
			 MESSAGE_MAX);
		goto fail;
	}
	*len = b.len;
	return b.data;
fail:
	free(b.data);
	return NULL;
}
