#include "sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/config.h"

struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static char *finish(struct buf *b, size_t *out_len)
{
	if (b->failed) {
		free(b->p);
		return NULL;
	}
	if (out_len)
		*out_len = b->len;
	return b->p;
}

static bool one_line(const char *s)
{
	return !s || !strpbrk(s, "\r\n");
}

char *console_sse_event(const char *id, const char *event, const char *data, size_t len,
			size_t *out_len)
{
	struct buf b = {0};
	size_t i = 0;

	if (!one_line(id) || !one_line(event))
		return NULL;
	if (id) {
		puts_(&b, "id: ");
		puts_(&b, id);
		puts_(&b, "\n");
	}
	if (event) {
		puts_(&b, "event: ");
		puts_(&b, event);
		puts_(&b, "\n");
	}
	/* Each line of data, CRLF, CR or LF ending it; at least one line. */
	do {
		size_t start = i;

		while (i < len && data[i] != '\r' && data[i] != '\n')
			i++;
		puts_(&b, "data: ");
		put(&b, data + start, i - start);
		puts_(&b, "\n");
		if (i < len) {
			if (data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
				i++;
			i++;
			if (i == len) {
				/* A trailing line break: the empty line it ends. */
				puts_(&b, "data: \n");
			}
		}
	} while (i < len);
	puts_(&b, "\n");
	return finish(&b, out_len);
}

char *console_sse_comment(const char *text, size_t *out_len)
{
	struct buf b = {0};

	puts_(&b, ": ");
	puts_(&b, text ? text : "");
	if (!b.failed) {
		for (size_t i = 2; i < b.len; i++) {
			if (b.p[i] == '\r' || b.p[i] == '\n')
				b.p[i] = ' ';
		}
	}
	puts_(&b, "\n\n");
	return finish(&b, out_len);
}

void console_sse_id(char *buf, size_t size, const char *boot, unsigned long long seq)
{
	snprintf(buf, size, "%s.%llu", boot, seq);
}

bool console_sse_resume_after(const char *last_event_id, const char *boot, unsigned long long *seq)
{
	size_t n = strlen(boot);
	long long v;

	if (!last_event_id || strncmp(last_event_id, boot, n) || last_event_id[n] != '.')
		return false;
	if (es_parse_ll(last_event_id + n + 1, 0, (long long)(~0ULL >> 1), &v))
		return false;
	*seq = (unsigned long long)v;
	return true;
}
