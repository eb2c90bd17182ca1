#include "mix.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/config.h"

/* Parses all of s[0..len) as a whole number in [min, max]. */
static int parse_num(const char *s, size_t len, long min, long max, long *out)
{
	char buf[24];
	long long v;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (buf[0] == '-' || es_parse_ll(buf, min, max, &v))
		return -1;
	*out = (long)v;
	return 0;
}

/* SKUs and tokens: visible ASCII without the mix's separators. */
static bool word_ok(const char *s, size_t len, size_t max)
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ':' || s[i] == '+' || s[i] == ',')
			return false;
	}
	return true;
}

/* One "SKU[:QTY]" of an entry's lines. */
static int parse_line(struct lg_line *line, const char *s, size_t len, char *why, size_t why_size)
{
	const char *colon = memchr(s, ':', len);
	size_t sku_len = colon ? (size_t)(colon - s) : len;
	long qty = 1;

	if (!word_ok(s, sku_len, LG_SKU_MAX)) {
		snprintf(why, why_size, "SKU \"%.*s\" is empty, too long or has odd characters",
			 (int)sku_len, s);
		return -1;
	}
	if (colon && parse_num(colon + 1, len - sku_len - 1, 1, 100, &qty)) {
		snprintf(why, why_size, "quantity \"%.*s\" is not a whole number from 1 to 100",
			 (int)(len - sku_len - 1), colon + 1);
		return -1;
	}
	memcpy(line->sku, s, sku_len);
	line->sku[sku_len] = '\0';
	line->quantity = (int)qty;
	return 0;
}

/* Finds the last c in s[0..len), or NULL. */
static const char *last_of(const char *s, size_t len, char c)
{
	while (len > 0) {
		if (s[--len] == c)
			return s + len;
	}
	return NULL;
}

/* One entry "LINES:TOKEN:WEIGHT": the last two fields are token and
 * weight, so that the lines before them may hold colons of their own. */
static int parse_entry(struct lg_mix_entry *e, const char *s, size_t len, char *why,
		       size_t why_size)
{
	const char *wcolon = last_of(s, len, ':'), *tcolon, *p, *end;
	long weight;

	tcolon = wcolon ? last_of(s, (size_t)(wcolon - s), ':') : NULL;
	if (!tcolon) {
		snprintf(why, why_size, "want SKU:QTY[+SKU:QTY...]:TOKEN:WEIGHT");
		return -1;
	}
	if (parse_num(wcolon + 1, len - (size_t)(wcolon + 1 - s), 0, LG_WEIGHT_MAX, &weight)) {
		snprintf(why, why_size, "weight \"%.*s\" is not a whole number from 0 to %d",
			 (int)(len - (size_t)(wcolon + 1 - s)), wcolon + 1, LG_WEIGHT_MAX);
		return -1;
	}
	if (!word_ok(tcolon + 1, (size_t)(wcolon - tcolon - 1), LG_TOKEN_MAX)) {
		snprintf(why, why_size, "token \"%.*s\" is empty, too long or has odd characters",
			 (int)(wcolon - tcolon - 1), tcolon + 1);
		return -1;
	}
	memcpy(e->token, tcolon + 1, (size_t)(wcolon - tcolon - 1));
	e->token[wcolon - tcolon - 1] = '\0';
	e->weight = (unsigned long)weight;
	e->nlines = 0;
	for (p = s, end = tcolon; p <= end; p++) {
		const char *plus = memchr(p, '+', (size_t)(end - p));
		const char *stop = plus ? plus : end;

		if (e->nlines == LG_MIX_MAX_LINES) {
			snprintf(why, why_size, "more than %d lines", LG_MIX_MAX_LINES);
			return -1;
		}
		if (parse_line(&e->lines[e->nlines], p, (size_t)(stop - p), why, why_size))
			return -1;
		for (int i = 0; i < e->nlines; i++) {
			if (!strcmp(e->lines[i].sku, e->lines[e->nlines].sku)) {
				/* order-service refuses duplicate lines (422) */
				snprintf(why, why_size, "SKU %s appears twice", e->lines[i].sku);
				return -1;
			}
		}
		e->nlines++;
		p = stop;
	}
	return 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

int lg_mix_parse(struct lg_mix *mix, const char *spec, char *errstr, size_t errstr_size)
{
	const char *p = spec;
	char why[256];
	size_t n = 0;

	memset(mix, 0, sizeof(*mix));
	mix->entries = calloc(LG_MIX_MAX_ENTRIES, sizeof(*mix->entries));
	if (!mix->entries) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		struct lg_mix_entry *e;

		while (len > 0 && is_space(*p)) {
			p++;
			len--;
		}
		while (len > 0 && is_space(p[len - 1]))
			len--;
		if (n == LG_MIX_MAX_ENTRIES) {
			snprintf(errstr, errstr_size, "more than %d entries", LG_MIX_MAX_ENTRIES);
			goto fail;
		}
		e = &mix->entries[n];
		if (len == 0) {
			snprintf(errstr, errstr_size, "entry %zu is empty", n + 1);
			goto fail;
		}
		if (parse_entry(e, p, len, why, sizeof(why))) {
			snprintf(errstr, errstr_size, "entry %zu (\"%.*s\"): %s", n + 1,
				 len > 80 ? 80 : (int)len, p, why);
			goto fail;
		}
		mix->total += e->weight;
		e->cumulative = mix->total;
		n++;
		if (!comma)
			break;
		p = comma + 1;
	}
	if (mix->total == 0) {
		snprintf(errstr, errstr_size, "every weight is 0");
		goto fail;
	}
	mix->n = n;
	return 0;
fail:
	lg_mix_release(mix);
	return -1;
}

void lg_mix_release(struct lg_mix *mix)
{
	free(mix->entries);
	memset(mix, 0, sizeof(*mix));
}

size_t lg_mix_pick(const struct lg_mix *mix, uint64_t r)
{
	size_t lo = 0, hi = mix->n - 1;

	r %= mix->total;
	/* The first entry whose cumulative weight exceeds r: an entry of
	 * weight 0 has the same cumulative as the one before it, so it is
	 * never the first to exceed anything. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (mix->entries[mid].cumulative > r)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

uint64_t lg_rand_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
