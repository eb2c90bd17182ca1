/*
 * smtp: delivery to an SMTP server through libcurl, for a real mail relay
 * or a mail catcher (SMTP_URL=smtp://127.0.0.1:1025).
 *
 * curl_global_init() must have been called (main does it) before the first
 * send: it is not thread-safe, so it cannot be done here.
 */
#ifndef EMAIL_SMTP_H
#define EMAIL_SMTP_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Checks an SMTP URL: smtp:// or smtps://, a host, optionally a port,
 * user:password (for AUTH) and a path (the EHLO name, as libcurl reads
 * it). Writes "scheme://host:port" (never the password) into
 * shown, for logs. Returns 0, or -1 with errstr saying what is wrong.
 */
int email_smtp_url_check(const char *url, char *shown, size_t shown_size, char *errstr,
			 size_t errstr_size);

/*
 * Sends len bytes of message (an RFC 5322 message with CRLF line endings;
 * libcurl does the SMTP dot-stuffing) from from_addr to to (bare
 * addresses), giving up after timeout_ms. Returns 0 once the server
 * accepted the message, or -1 with errstr filled and *permanent telling
 * whether the server refused the recipient for good (a 5xx reply about the
 * mailbox), as opposed to a failure worth retrying (connection refused or
 * lost, timeout, a 4xx reply, a server misconfigured for us).
 */
int email_smtp_send(const char *url, const char *from_addr, const char *to, const char *message,
		    size_t len, long timeout_ms, bool *permanent, char *errstr, size_t errstr_size);

#endif
