#include "delivery.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "es/config.h"
#include "maildir.h"
#include "smtp.h"

/* Room left in PATH_MAX for "/new/<orderId>.<template>.eml" and the
 * unique names under tmp/. */
#define MAILDIR_PATH_MAX (PATH_MAX - 256)

int email_maildir_name(const char *order_id, enum email_template t, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%s.%s.eml", order_id, email_template_name(t));

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

int email_delivery_config(struct email_delivery *d, char *errstr, size_t errstr_size)
{
	char why[512];

	memset(d, 0, sizeof(*d));
	d->from = es_config_str("EMAIL_FROM", EMAIL_DEFAULT_FROM);
	if (email_from_parse(d->from, d->from_addr, sizeof(d->from_addr), why, sizeof(why))) {
		snprintf(errstr, errstr_size, "EMAIL_FROM: %s", why);
		return -1;
	}
	if (es_config_long("SMTP_TIMEOUT_MS", 30000, 100, 600000, &d->smtp_timeout_ms, errstr,
			   errstr_size))
		return -1;

	d->smtp_url = es_config_str("SMTP_URL", NULL);
	if (d->smtp_url) {
		if (email_smtp_url_check(d->smtp_url, d->shown, sizeof(d->shown), why,
					 sizeof(why))) {
			snprintf(errstr, errstr_size, "SMTP_URL: %s", why);
			return -1;
		}
		return 0;
	}

	d->maildir = es_config_str("MAILDIR", "./var/maildir");
	if (strlen(d->maildir) > MAILDIR_PATH_MAX) {
		snprintf(errstr, errstr_size, "MAILDIR: longer than %d bytes", MAILDIR_PATH_MAX);
		return -1;
	}
	if (email_maildir_prepare(d->maildir, why, sizeof(why))) {
		snprintf(errstr, errstr_size, "MAILDIR: %s", why);
		return -1;
	}
	snprintf(d->shown, sizeof(d->shown), "maildir %s", d->maildir);
	return 0;
}

enum email_delivery_result email_deliver(const struct email_delivery *d,
					 struct email_maildir_staged *staged, const char *order_id,
					 enum email_template t, const char *to, const char *message,
					 size_t len, char *errstr, size_t errstr_size)
{
	char name[EMAIL_ORDER_ID_MAX + 32];
	bool permanent;

	if (d->smtp_url) {
		if (email_smtp_send(d->smtp_url, d->from_addr, to, message, len, d->smtp_timeout_ms,
				    &permanent, errstr, errstr_size) == 0)
			return EMAIL_DELIVERED;
		return permanent ? EMAIL_DELIVERY_REFUSED : EMAIL_DELIVERY_RETRY;
	}
	if (email_maildir_name(order_id, t, name, sizeof(name))) {
		snprintf(errstr, errstr_size, "order id too long for a file name");
		return EMAIL_DELIVERY_REFUSED;
	}
	/* A full disk or a permission problem heals when someone acts. */
	if (email_maildir_stage(staged, d->maildir, name, message, len, errstr, errstr_size))
		return EMAIL_DELIVERY_RETRY;
	return EMAIL_DELIVERED;
}

int email_delivery_sync(const struct email_delivery *d, struct email_maildir_staged *staged,
			char *errstr, size_t errstr_size)
{
	/* An SMTP server's 250 is its promise already. */
	if (d->smtp_url)
		return 0;
	return email_maildir_publish(staged, d->maildir, errstr, errstr_size);
}
