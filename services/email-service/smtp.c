#include "smtp.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "message.h"

int email_smtp_url_check(const char *url, char *shown, size_t shown_size, char *errstr,
			 size_t errstr_size)
{
	char *scheme = NULL, *host = NULL, *port = NULL;
	CURLUcode uc;
	CURLU *u;
	int result = -1;

	u = curl_url();
	if (!u) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	uc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (uc) {
		snprintf(errstr, errstr_size, "\"%s\" is not a URL: %s", url,
			 curl_url_strerror(uc));
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) ||
	    (strcmp(scheme, "smtp") && strcmp(scheme, "smtps"))) {
		snprintf(errstr, errstr_size, "must start with smtp:// or smtps://");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) || !*host) {
		snprintf(errstr, errstr_size, "has no host");
		goto out;
	}
	/* The default port of the scheme when none is given. */
	if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT)) {
		snprintf(errstr, errstr_size, "has no usable port");
		goto out;
	}
	snprintf(shown, shown_size, "%s://%s:%s", scheme, host, port);
	result = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return result;
}

struct upload {
	const char *p;
	size_t left;
};

/* libcurl's read callback: hands out the message in pieces of its size. */
static size_t read_message(char *buf, size_t size, size_t nitems, void *arg)
{
	struct upload *up = arg;
	size_t n = size * nitems;

	if (n > up->left)
		n = up->left;
	memcpy(buf, up->p, n);
	up->p += n;
	up->left -= n;
	return n;
}

/*
 * 5xx replies that speak about the recipient's mailbox or address: the
 * same message will be refused again, so retrying (which pauses the whole
 * consumer) is pointless. Other 5xx replies (530 authentication required,
 * 554 transaction failed, ...) usually mean the server is not yet set up
 * for us: worth retrying once someone fixes it, rather than dead-lettering
 * every email meanwhile.
 */
static bool refused_for_good(long code)
{
	return code == 501 || code == 550 || code == 551 || code == 553;
}

int email_smtp_send(const char *url, const char *from_addr, const char *to, const char *message,
		    size_t len, long timeout_ms, bool *permanent, char *errstr, size_t errstr_size)
{
	char curl_err[CURL_ERROR_SIZE] = "", from[EMAIL_ADDRESS_MAX + 3],
	     rcpt[EMAIL_ADDRESS_MAX + 3];
	struct upload up = {message, len};
	struct curl_slist *rcpts = NULL;
	long code = 0;
	CURLcode rc;
	CURL *curl;
	int result = -1;

	*permanent = false;
	/* Angle brackets: libcurl sends these as the SMTP forward and
	 * reverse paths as they are. */
	if (snprintf(from, sizeof(from), "<%s>", from_addr) >= (int)sizeof(from) ||
	    snprintf(rcpt, sizeof(rcpt), "<%s>", to) >= (int)sizeof(rcpt)) {
		snprintf(errstr, errstr_size, "address too long");
		*permanent = true;
		return -1;
	}
	curl = curl_easy_init();
	rcpts = curl_slist_append(NULL, rcpt);
	if (!curl || !rcpts) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpts);
	curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_message);
	curl_easy_setopt(curl, CURLOPT_READDATA, &up);
	curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	/* No SIGALRM for DNS timeouts: this runs beside other threads. */
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);

	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK) {
		result = 0;
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	*permanent = refused_for_good(code);
	snprintf(errstr, errstr_size, "SMTP delivery to %s failed: %s%s%s (last reply %ld)", to,
		 curl_easy_strerror(rc), *curl_err ? ": " : "", curl_err, code);
out:
	curl_slist_free_all(rcpts);
	if (curl)
		curl_easy_cleanup(curl);
	return result;
}
