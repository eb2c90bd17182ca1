#include "shopctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "es/config.h"

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

int shopctl_parse_long(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (!*s)
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

const char *shopctl_bootstrap(void)
{
	return es_config_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092");
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

static void put_control(FILE *f, unsigned char c, int flags)
{
	if ((flags & SHOPCTL_ESC_MULTILINE) && (c == '\n' || c == '\t'))
		fputc(c, f);
	else if (c == '\n')
		fputs("\\n", f);
	else if (c == '\t')
		fputs("\\t", f);
	else if (c == '\r')
		fputs("\\r", f);
	else
		fprintf(f, "\\x%02x", c);
}

bool shopctl_print_escaped(FILE *f, const void *buf, size_t len, int flags)
{
	const unsigned char *p = buf;
	bool valid = shopctl_utf8_valid(buf, len);

	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (c < 0x20 || c == 0x7f)
			put_control(f, c, flags);
		else if (valid || (c < 0x7f && c != '\\'))
			fputc(c, f);
		else if (c == '\\')
			fputs("\\\\", f);
		else
			fprintf(f, "\\x%02x", c);
	}
	return valid;
}
