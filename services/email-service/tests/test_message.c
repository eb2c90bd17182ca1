/*
 * Unit tests of message.c: every template renders a real RFC 5322 message
 * (the required headers, CRLF line endings only, a valid Date, the
 * deterministic Message-ID) whose body says what it should, and nothing an
 * event carries can add a header.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "message.h"

#define ORDER "0b6f2c9e-51d4-4e8a-9c1f-3a7d2e6b8f40"
/* Sun, 22 Nov 2026 04:15:10 UTC */
#define WHEN ((time_t)1795320910)

static struct email_message base(enum email_template t)
{
	return (struct email_message){
		.tmpl = t,
		.order_id = ORDER,
		.from = EMAIL_DEFAULT_FROM,
		.to = "ada@example.com",
		.date = WHEN,
		.cents = 1999,
		.currency = "EUR",
		.reason = "OUT_OF_STOCK",
	};
}

static char *render(const struct email_message *m, size_t *len)
{
	char errstr[256] = "";
	char *text = email_message_render(m, len, errstr, sizeof(errstr));

	ck_assert_msg(text, "render failed: %s", errstr);
	ck_assert_uint_eq(strlen(text), *len);
	return text;
}

/* The value of header name (case-sensitive, as we write them) in the
 * header section of text, copied into buf; NULL when absent. */
static const char *header(const char *text, const char *name, char *buf, size_t size)
{
	const char *end = strstr(text, "\r\n\r\n");
	size_t n = strlen(name);

	ck_assert_ptr_nonnull(end);
	for (const char *p = text; p < end;) {
		const char *eol = strstr(p, "\r\n");

		if (!strncmp(p, name, n) && p[n] == ':' && p[n + 1] == ' ') {
			size_t len = (size_t)(eol - (p + n + 2));

			ck_assert_uint_lt(len, size);
			memcpy(buf, p + n + 2, len);
			buf[len] = '\0';
			return buf;
		}
		p = eol + 2;
	}
	return NULL;
}

static const char *body(const char *text)
{
	const char *end = strstr(text, "\r\n\r\n");

	ck_assert_ptr_nonnull(end);
	return end + 4;
}

/* Every LF is preceded by CR, there is no lone CR, no line is over 998
 * bytes, and every byte is 7-bit. */
static void assert_crlf_ascii(const char *text, size_t len)
{
	size_t line = 0;

	ck_assert_uint_gt(len, 2);
	ck_assert_msg(text[len - 2] == '\r' && text[len - 1] == '\n', "must end with CRLF");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		ck_assert_msg(c < 0x80, "byte %zu is not ASCII", i);
		if (c == '\n')
			ck_assert_msg(i > 0 && text[i - 1] == '\r', "bare LF at %zu", i);
		if (c == '\r')
			ck_assert_msg(i + 1 < len && text[i + 1] == '\n', "bare CR at %zu", i);
		line = c == '\n' ? 0 : line + 1;
		ck_assert_uint_le(line, 998);
	}
}

static void assert_common_headers(const char *text, enum email_template t)
{
	char buf[512], want[256];
	struct tm tm;
	const char *end;

	ck_assert_str_eq(header(text, "From", buf, sizeof(buf)), EMAIL_DEFAULT_FROM);
	ck_assert_str_eq(header(text, "To", buf, sizeof(buf)), "ada@example.com");
	ck_assert_ptr_nonnull(header(text, "Subject", buf, sizeof(buf)));
	ck_assert_ptr_nonnull(strstr(buf, ORDER));
	ck_assert_str_eq(header(text, "MIME-Version", buf, sizeof(buf)), "1.0");
	ck_assert_str_eq(header(text, "Content-Type", buf, sizeof(buf)),
			 "text/plain; charset=utf-8");
	snprintf(want, sizeof(want), "<%s.%s@eventshop.local>", ORDER, email_template_name(t));
	ck_assert_str_eq(header(text, "Message-ID", buf, sizeof(buf)), want);

	/* RFC 5322 date-time, parsed back to the instant it was given. */
	ck_assert_ptr_nonnull(header(text, "Date", buf, sizeof(buf)));
	ck_assert_str_eq(buf, "Sun, 22 Nov 2026 04:15:10 +0000");
	memset(&tm, 0, sizeof(tm));
	end = strptime(buf, "%a, %d %b %Y %H:%M:%S %z", &tm);
	ck_assert_msg(end && !*end, "Date \"%s\" does not parse", buf);
	ck_assert_int_eq((long long)timegm(&tm), (long long)WHEN);
}

START_TEST(order_received_has_headers_items_and_total)
{
	struct email_message m = base(EMAIL_ORDER_RECEIVED);
	json_t *items = json_pack("[{s:s, s:i, s:i}, {s:s, s:i, s:i}]", "sku", "mug-classic",
				  "quantity", 2, "unitPriceCents", 1299, "sku", "sticker-pack",
				  "quantity", 1, "unitPriceCents", 499);
	size_t len;
	char *text;

	m.cents = 3097;
	m.items = items;
	text = render(&m, &len);
	assert_crlf_ascii(text, len);
	assert_common_headers(text, EMAIL_ORDER_RECEIVED);
	ck_assert_ptr_nonnull(strstr(body(text), ORDER));
	ck_assert_ptr_nonnull(strstr(body(text), "2 x mug-classic at 12.99 EUR\r\n"));
	ck_assert_ptr_nonnull(strstr(body(text), "1 x sticker-pack at 4.99 EUR\r\n"));
	ck_assert_ptr_nonnull(strstr(body(text), "Total: 30.97 EUR\r\n"));
	free(text);
	json_decref(items);
}
END_TEST

START_TEST(order_confirmed_mentions_order_and_amount)
{
	struct email_message m = base(EMAIL_ORDER_CONFIRMED);
	size_t len;
	char *text = render(&m, &len);

	assert_crlf_ascii(text, len);
	assert_common_headers(text, EMAIL_ORDER_CONFIRMED);
	ck_assert_ptr_nonnull(strstr(body(text), ORDER));
	ck_assert_ptr_nonnull(strstr(body(text), "confirmed"));
	ck_assert_ptr_nonnull(strstr(body(text), "19.99 EUR"));
	free(text);
}
END_TEST

START_TEST(order_cancelled_says_the_reason_in_words)
{
	static const struct {
		const char *code;
		const char *words;
	} cases[] = {
		{"PAYMENT_DECLINED", "your payment was declined"},
		{"OUT_OF_STOCK", "an item you ordered is out of stock"},
		{"CUSTOMER_REQUEST", "you asked us to cancel it"},
		{"TIMEOUT", "we could not confirm it in time"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct email_message m = base(EMAIL_ORDER_CANCELLED);
		size_t len;
		char *text;

		m.reason = cases[i].code;
		m.currency = NULL; /* a cancellation needs no amount */
		text = render(&m, &len);
		assert_crlf_ascii(text, len);
		assert_common_headers(text, EMAIL_ORDER_CANCELLED);
		ck_assert_ptr_nonnull(strstr(body(text), ORDER));
		ck_assert_msg(strstr(body(text), cases[i].words), "%s: no \"%s\" in\n%s",
			      cases[i].code, cases[i].words, body(text));
		ck_assert_ptr_null(strstr(text, cases[i].code));
		free(text);
	}
}
END_TEST

START_TEST(order_cancelled_detail_cannot_break_lines)
{
	struct email_message m = base(EMAIL_ORDER_CANCELLED);
	char buf[512];
	size_t len;
	char *text;

	m.detail = "sku poster-limited\r\nBcc: victim@example.com\n\xc3\xa9";
	text = render(&m, &len);
	assert_crlf_ascii(text, len);
	ck_assert_ptr_null(header(text, "Bcc", buf, sizeof(buf)));
	ck_assert_ptr_nonnull(
		strstr(body(text), "Details: sku poster-limited??Bcc: victim@example.com???\r\n"));
	free(text);
}
END_TEST

/* The tracking number comes from another service's event: shown, never
 * able to add a header or a line. */
START_TEST(order_shipped_shows_carrier_and_tracking_number_cleaned)
{
	struct email_message m = base(EMAIL_ORDER_SHIPPED);
	char buf[512], errstr[256];
	size_t len;
	char *text;

	m.currency = NULL; /* no amount in this mail */
	m.carrier = "DHL";
	m.tracking_number = "ES0B6F2C9E51D4\r\nBcc: victim@example.com";
	text = render(&m, &len);
	assert_crlf_ascii(text, len);
	assert_common_headers(text, EMAIL_ORDER_SHIPPED);
	ck_assert_ptr_null(header(text, "Bcc", buf, sizeof(buf)));
	ck_assert_ptr_nonnull(strstr(body(text), "Carrier: DHL\r\n"));
	ck_assert_ptr_nonnull(
		strstr(body(text), "Tracking number: ES0B6F2C9E51D4??Bcc: victim@example.com\r\n"));
	free(text);
	m.tracking_number = NULL;
	ck_assert_ptr_null(email_message_render(&m, &len, errstr, sizeof(errstr)));
	ck_assert_msg(strstr(errstr, "tracking number"), "%s", errstr);
}
END_TEST

START_TEST(refund_issued_formats_the_amount_from_cents)
{
	struct email_message m = base(EMAIL_REFUND_ISSUED);
	char buf[512];
	size_t len;
	char *text = render(&m, &len);

	assert_crlf_ascii(text, len);
	assert_common_headers(text, EMAIL_REFUND_ISSUED);
	ck_assert_ptr_nonnull(strstr(body(text), "refunded 19.99 EUR"));
	ck_assert_ptr_nonnull(strstr(body(text), ORDER));
	ck_assert_ptr_nonnull(strstr(header(text, "Subject", buf, sizeof(buf)), "19.99 EUR"));
	free(text);
}
END_TEST

START_TEST(money_is_formatted_from_integer_cents)
{
	char buf[64];

	ck_assert_int_eq(email_format_money(1999, "EUR", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "19.99 EUR");
	ck_assert_int_eq(email_format_money(0, "EUR", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "0.00 EUR");
	ck_assert_int_eq(email_format_money(5, "EUR", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "0.05 EUR");
	ck_assert_int_eq(email_format_money(500000, "USD", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "5000.00 USD");
	ck_assert_int_eq(email_format_money(-150, "EUR", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "-1.50 EUR");
	ck_assert_int_eq(email_format_money(1999, "EUR", buf, 5), -1);
}
END_TEST

START_TEST(message_id_depends_on_order_and_template_only)
{
	struct email_message m = base(EMAIL_ORDER_CONFIRMED);
	char a[512], b[512];
	size_t len;
	char *first = render(&m, &len);
	char *second;

	m.date = WHEN + 3600; /* delivered again an hour later */
	second = render(&m, &len);
	ck_assert_str_eq(header(first, "Message-ID", a, sizeof(a)),
			 header(second, "Message-ID", b, sizeof(b)));
	ck_assert_str_eq(a, "<" ORDER ".order-confirmed@eventshop.local>");
	free(first);
	free(second);
}
END_TEST

START_TEST(unsafe_fields_are_refused)
{
	struct email_message m;
	char errstr[256];
	size_t len;

	m = base(EMAIL_ORDER_CONFIRMED);
	m.to = "ada@example.com\r\nBcc: victim@example.com";
	ck_assert_ptr_null(email_message_render(&m, &len, errstr, sizeof(errstr)));
	ck_assert_ptr_nonnull(strstr(errstr, "recipient"));

	m = base(EMAIL_ORDER_CONFIRMED);
	m.order_id = "../../etc/passwd";
	ck_assert_ptr_null(email_message_render(&m, &len, errstr, sizeof(errstr)));

	m = base(EMAIL_REFUND_ISSUED);
	m.currency = "eur";
	ck_assert_ptr_null(email_message_render(&m, &len, errstr, sizeof(errstr)));

	m = base(EMAIL_ORDER_CANCELLED);
	m.reason = "BORED";
	ck_assert_ptr_null(email_message_render(&m, &len, errstr, sizeof(errstr)));
	ck_assert_ptr_nonnull(strstr(errstr, "BORED"));
}
END_TEST

START_TEST(order_ids_and_addresses_are_checked)
{
	ck_assert(email_order_id_valid(ORDER));
	ck_assert(email_order_id_valid("ord_42.a"));
	ck_assert(!email_order_id_valid(""));
	ck_assert(!email_order_id_valid("."));
	ck_assert(!email_order_id_valid(".."));
	ck_assert(!email_order_id_valid("a..b"));
	ck_assert(!email_order_id_valid("a/b"));
	ck_assert(!email_order_id_valid("a@b"));
	ck_assert(!email_order_id_valid("a b"));

	ck_assert(email_address_valid("ada@example.com"));
	ck_assert(email_address_valid("ada+shop@mail.example.co.uk"));
	ck_assert(!email_address_valid("ada"));
	ck_assert(!email_address_valid("@example.com"));
	ck_assert(!email_address_valid("ada@"));
	ck_assert(!email_address_valid("a@b@c"));
	ck_assert(!email_address_valid("ada @example.com"));
	ck_assert(!email_address_valid("<ada@example.com>"));
	ck_assert(!email_address_valid("ada@example.com\n"));
}
END_TEST

START_TEST(from_values_give_their_bare_address)
{
	char addr[EMAIL_ADDRESS_MAX + 1], errstr[256];

	ck_assert_int_eq(
		email_from_parse(EMAIL_DEFAULT_FROM, addr, sizeof(addr), errstr, sizeof(errstr)),
		0);
	ck_assert_str_eq(addr, "shop@eventshop.local");
	ck_assert_int_eq(
		email_from_parse("shop@example.com", addr, sizeof(addr), errstr, sizeof(errstr)),
		0);
	ck_assert_str_eq(addr, "shop@example.com");
	ck_assert_int_eq(email_from_parse("", addr, sizeof(addr), errstr, sizeof(errstr)), -1);
	ck_assert_int_eq(email_from_parse("shop", addr, sizeof(addr), errstr, sizeof(errstr)), -1);
	ck_assert_int_eq(email_from_parse("Shop <shop@example.com", addr, sizeof(addr), errstr,
					  sizeof(errstr)),
			 -1);
	ck_assert_int_eq(email_from_parse("Shop <shop@example.com> x", addr, sizeof(addr), errstr,
					  sizeof(errstr)),
			 -1);
	ck_assert_int_eq(email_from_parse("Sh\"op <shop@example.com>", addr, sizeof(addr), errstr,
					  sizeof(errstr)),
			 -1);
	ck_assert_int_eq(email_from_parse("Shop\r\nBcc: x <shop@example.com>", addr, sizeof(addr),
					  errstr, sizeof(errstr)),
			 -1);
}
END_TEST

START_TEST(template_names_round_trip)
{
	enum email_template t;

	for (int i = 0; i < EMAIL_NTEMPLATES; i++) {
		ck_assert_int_eq(email_template_parse(email_template_name(i), &t), 0);
		ck_assert_int_eq(t, i);
	}
	ck_assert_int_eq(email_template_parse("welcome", &t), -1);
	ck_assert_ptr_null(email_template_name(EMAIL_NTEMPLATES));
}
END_TEST

static Suite *message_suite(void)
{
	Suite *s = suite_create("email message");
	TCase *tc = tcase_create("render");

	tcase_add_test(tc, order_received_has_headers_items_and_total);
	tcase_add_test(tc, order_confirmed_mentions_order_and_amount);
	tcase_add_test(tc, order_cancelled_says_the_reason_in_words);
	tcase_add_test(tc, order_cancelled_detail_cannot_break_lines);
	tcase_add_test(tc, order_shipped_shows_carrier_and_tracking_number_cleaned);
	tcase_add_test(tc, refund_issued_formats_the_amount_from_cents);
	tcase_add_test(tc, money_is_formatted_from_integer_cents);
	tcase_add_test(tc, message_id_depends_on_order_and_template_only);
	tcase_add_test(tc, unsafe_fields_are_refused);
	tcase_add_test(tc, order_ids_and_addresses_are_checked);
	tcase_add_test(tc, from_values_give_their_bare_address);
	tcase_add_test(tc, template_names_round_trip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(message_suite());
	int failures;

	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failures ? 1 : 0;
}
