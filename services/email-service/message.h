/*
 * message: the four emails of the contract, rendered as RFC 5322 messages.
 *
 * A message is plain ASCII text with CRLF line endings: From, To, Subject,
 * Date, Message-ID, MIME-Version, Content-Type text/plain; charset=utf-8,
 * Content-Transfer-Encoding 7bit, then the body. Everything taken from an
 * event (order id, address, sku, cancel detail) is checked or cleaned here
 * first, so that no event can add a header or break a line.
 *
 * The Message-ID is a function of (order, template) only:
 *   <0b6f2c9e-51d4-4e8a-9c1f-3a7d2e6b8f40.order-received@eventshop.local>
 * so that an email delivered a second time (after a crash between delivery
 * and commit) is recognisably the same message to any mail reader.
 */
#ifndef EMAIL_MESSAGE_H
#define EMAIL_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

#define EMAIL_DEFAULT_FROM "eventshop <shop@eventshop.local>"
#define EMAIL_MESSAGE_ID_DOMAIN "eventshop.local"

/* The longest order id we put into a header and a file name. */
#define EMAIL_ORDER_ID_MAX 64
/* RFC 5321's limit on a forward path. */
#define EMAIL_ADDRESS_MAX 254
/* "<" + id + "." + template + "@" + domain + ">" + NUL, with room. */
#define EMAIL_MESSAGE_ID_SIZE 128

enum email_template {
	EMAIL_ORDER_RECEIVED = 0,
	EMAIL_ORDER_CONFIRMED,
	EMAIL_ORDER_CANCELLED,
	EMAIL_REFUND_ISSUED,
	EMAIL_ORDER_SHIPPED,
	EMAIL_NTEMPLATES,
};

/* The contract's name of a template ("order-received"...). */
const char *email_template_name(enum email_template t);

/* true for the templates that state an amount (with its currency). */
bool email_template_has_amount(enum email_template t);

/* Looks up a name. Returns 0 with *out set, or -1 when it is none. */
int email_template_parse(const char *name, enum email_template *out);

/* What one message says. Strings are borrowed for the render call. */
struct email_message {
	enum email_template tmpl;
	const char *order_id; /* checked with email_order_id_valid */
	const char *from; /* the From header value, checked with email_from_parse */
	const char *to; /* a bare address, checked with email_address_valid */
	time_t date; /* the Date header */
	long long cents; /* order-received/-confirmed: total; refund-issued: amount */
	const char *currency; /* with cents */
	const char *reason; /* order-cancelled: the contract's reason code */
	const char *detail; /* order-cancelled: optional free text (cleaned) */
	const json_t *items; /* order-received: optional OrderPlaced items (borrowed) */
	const char *carrier; /* order-shipped: ShipmentDispatched's (cleaned) */
	const char *tracking_number; /* order-shipped: likewise */
};

/*
 * Renders m into a malloc'd NUL-terminated message that the caller frees,
 * with its length in *len. Returns NULL with errstr filled when a field is
 * missing or unsafe (then the event carrying it can never be mailed).
 */
char *email_message_render(const struct email_message *m, size_t *len, char *errstr,
			   size_t errstr_size);

/* "<orderId.template@eventshop.local>" into buf. Returns 0, or -1 when it
 * does not fit. */
int email_message_id(const char *order_id, enum email_template t, char *buf, size_t size);

/* Formats minor units as "19.99 EUR" (two decimals, the ISO 4217 code
 * after). Returns 0, or -1 when buf is too small. */
int email_format_money(long long cents, const char *currency, char *buf, size_t size);

/* RFC 5322 date-time in UTC, e.g. "Sun, 22 Nov 2026 04:15:10 +0000"
 * (English names whatever the locale). Returns 0 or -1. */
int email_format_date(time_t t, char *buf, size_t size);

/* The contract's cancel reason in words, or NULL for an unknown code. */
const char *email_cancel_reason_words(const char *reason);

/*
 * true when id can go into a Message-ID, a Subject and a file name as it
 * is: 1 to EMAIL_ORDER_ID_MAX of [A-Za-z0-9_-] and dots, no dot first,
 * last or next to another (an RFC 5322 dot-atom, never "." or "..").
 */
bool email_order_id_valid(const char *id);

/*
 * true for a bare address that is safe in a header and an SMTP command:
 * local@domain in printable ASCII, at most EMAIL_ADDRESS_MAX bytes, one
 * '@', no spaces and none of ()<>[]\,;:" . Deliberately lenient beyond
 * that: the order service validated the address; we only refuse what could
 * break the message.
 */
bool email_address_valid(const char *addr);

/* true for an ISO 4217 alphabetic code: three upper-case letters. */
bool email_currency_valid(const char *currency);

/*
 * Checks a From value, either "addr" or "Display Name <addr>" (the name
 * made of letters, digits, spaces and RFC 5322 atext), and copies the bare
 * address (for SMTP's MAIL FROM) into addr. Returns 0, or -1 with errstr
 * saying what is wrong.
 */
int email_from_parse(const char *from, char *addr, size_t addr_size, char *errstr,
		     size_t errstr_size);

#endif
