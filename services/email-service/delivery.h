/*
 * delivery: where the emails go, configured from the environment.
 *
 *   MAILDIR      ./var/maildir   a Maildir written to when SMTP_URL is unset
 *   SMTP_URL     (unset)         e.g. smtp://127.0.0.1:1025 (a mail catcher)
 *                                or smtps://user:password@mail.example:465
 *   SMTP_TIMEOUT_MS  30000       connect + send limit for one email
 *   EMAIL_FROM   eventshop <shop@eventshop.local>
 *
 * A message is delivered under a name that depends on (order, template)
 * only: the Maildir file new/<orderId>.<template>.eml, the Message-ID
 * <orderId.template@eventshop.local>. Delivering it twice therefore
 * replaces the file, or for SMTP sends a recognisable duplicate.
 */
#ifndef EMAIL_DELIVERY_H
#define EMAIL_DELIVERY_H

#include <stddef.h>

#include "maildir.h"
#include "message.h"

struct email_delivery {
	const char *maildir; /* NULL when smtp_url is set; the environment's */
	const char *smtp_url; /* NULL: deliver to maildir; the environment's */
	const char *from; /* the From header; the environment's or a literal */
	char from_addr[EMAIL_ADDRESS_MAX + 1]; /* from's bare address, for MAIL FROM */
	long smtp_timeout_ms;
	char shown[160]; /* "maildir ./var/maildir" or "smtp://host:port", for logs */
};

/*
 * Reads and checks the variables above and, for a Maildir, creates its
 * directories. Returns 0, or -1 with errstr naming the variable at fault,
 * e.g. "EMAIL_FROM: \"shop\" is not an email address".
 */
int email_delivery_config(struct email_delivery *d, char *errstr, size_t errstr_size);

enum email_delivery_result {
	EMAIL_DELIVERED = 0,
	EMAIL_DELIVERY_RETRY, /* transient: the same delivery may succeed later */
	EMAIL_DELIVERY_REFUSED, /* this message can never be delivered */
};

/*
 * Delivers one rendered message of template t about order_id to to.
 * Returns EMAIL_DELIVERED, or one of the failures with errstr filled. A
 * Maildir delivery is only staged in staged (its file written to tmp/):
 * email_delivery_sync publishes it. staged may be NULL with SMTP.
 */
enum email_delivery_result email_deliver(const struct email_delivery *d,
					 struct email_maildir_staged *staged, const char *order_id,
					 enum email_template t, const char *to, const char *message,
					 size_t len, char *errstr, size_t errstr_size);

/*
 * Makes every delivery staged in staged durable (for a Maildir, two disk
 * flushes however many messages: email_maildir_publish; for SMTP nothing
 * is left to do). Call it before recording a delivery as done. Returns 0,
 * or -1 with errstr filled; staged is empty afterwards either way.
 */
int email_delivery_sync(const struct email_delivery *d, struct email_maildir_staged *staged,
			char *errstr, size_t errstr_size);

/* The Maildir file name of (order, template): "<orderId>.<template>.eml".
 * Returns 0, or -1 when it does not fit. */
int email_maildir_name(const char *order_id, enum email_template t, char *buf, size_t size);

#endif
