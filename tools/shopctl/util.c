#include "shopctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "es/config.h"
#include "es/kafka.h"

void shopctl_err(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("shopctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int shopctl_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "shopctl %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\ntry 'shopctl %s --help'\n", cmd);
	return SHOPCTL_USAGE;
}

bool shopctl_is_help(const char *s)
{
	return !strcmp(s, "--help") || !strcmp(s, "-h");
}

const char *shopctl_bootstrap(void)
{
	return es_config_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092");
}

rd_kafka_t *shopctl_admin_client(const char *bootstrap)
{
	char err[512];
	rd_kafka_conf_t *conf = es_kafka_conf_new(bootstrap, "shopctl", err, sizeof(err));
	rd_kafka_t *rk;

	if (!conf) {
		shopctl_err("%s", err);
		return NULL;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		shopctl_err("%s", err);
	}
	return rk;
}

rd_kafka_event_t *shopctl_admin_result(rd_kafka_queue_t *q, const char *bootstrap)
{
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);

	if (!ev) {
		shopctl_err("no answer from Kafka at %s in 60 s", bootstrap);
	} else if (rd_kafka_event_error(ev)) {
		shopctl_err("%s", rd_kafka_event_error_string(ev));
		rd_kafka_event_destroy(ev);
		ev = NULL;
	}
	return ev;
}

/* The length of the UTF-8 sequence at p (at most n bytes), or 0 when it
 * is not a valid one. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	uint32_t cp;
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* Overlong forms, UTF-16 surrogates and beyond U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

bool shopctl_utf8_valid(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_seq(p + i, len - i);

		if (!n)
			return false;
		i += n;
	}
	return true;
}

size_t shopctl_utf8_prefix(const void *buf, size_t len, size_t n)
{
	const unsigned char *p = buf;
	size_t i = 0;

	if (!shopctl_utf8_valid(buf, len))
		return len < n ? len : n;
	for (size_t chars = 0; i < len && chars < n; chars++)
		i += utf8_seq(p + i, len - i);
	return i;
}

/* Writes C0 control character c (or DEL). Returns the columns written. */
static size_t put_control(FILE *f, unsigned char c, int flags)
{
	if ((flags & SHOPCTL_ESC_MULTILINE) && (c == '\n' || c == '\t')) {
		fputc(c, f);
		return 1;
	}
	if (c == '\n' || c == '\t' || c == '\r') {
		fputc('\\', f);
		fputc(c == '\n' ? 'n' : c == '\t' ? 't' : 'r', f);
		return 2;
	}
	fprintf(f, "\\x%02x", c);
	return 4;
}

/* Writes the character of len bytes at p, from valid UTF-8. Returns the
 * columns written. */
static size_t put_char(FILE *f, const unsigned char *p, size_t len, int flags)
{
	if (p[0] < 0x20 || p[0] == 0x7f)
		return put_control(f, p[0], flags);
	/* U+0080 to U+009F, the C1 controls: some terminals obey them like
	 * ESC sequences (U+009B is CSI). */
	if (p[0] == 0xc2 && p[1] < 0xa0) {
		fprintf(f, "\\x%02x\\x%02x", p[0], p[1]);
		return 8;
	}
	fwrite(p, 1, len, f);
	return 1;
}

/* Writes byte c of text that is not valid UTF-8, where only printable
 * ASCII stands for itself. Returns the columns written. */
static size_t put_byte(FILE *f, unsigned char c, int flags)
{
	if (c < 0x20 || c == 0x7f)
		return put_control(f, c, flags);
	if (c == '\\') {
		fputs("\\\\", f);
		return 2;
	}
	if (c > 0x7f) {
		fprintf(f, "\\x%02x", c);
		return 4;
	}
	fputc(c, f);
	return 1;
}

bool shopctl_print_escaped(FILE *f, const void *buf, size_t len, int flags, size_t *cols)
{
	const unsigned char *p = buf;
	bool valid = shopctl_utf8_valid(buf, len);
	size_t written = 0;

	for (size_t i = 0; i < len;) {
		size_t n = valid ? utf8_seq(p + i, len - i) : 1;

		written += valid ? put_char(f, p + i, n, flags) : put_byte(f, p[i], flags);
		i += n;
	}
	if (cols)
		*cols = written;
	return valid;
}
