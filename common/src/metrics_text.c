#include "metrics_private.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {"counter", "gauge", "histogram"};

/* ------------------------------------------------------------------------ */
/* Output buffer */

struct buf {
	char *data;
	size_t len;
	size_t cap;
	bool failed; /* out of memory: later appends are no-ops */
};

static void buf_reserve(struct buf *b, size_t extra)
{
	size_t cap;
	char *data;

	if (b->failed || b->len + extra < b->cap)
		return;
	cap = b->cap ? b->cap : 1024;
	while (cap <= b->len + extra)
		cap *= 2;
	data = realloc(b->data, cap);
	if (!data) {
		b->failed = true;
		return;
	}
	b->data = data;
	b->cap = cap;
}

static void buf_add(struct buf *b, const char *s, size_t n)
{
	buf_reserve(b, n);
	if (b->failed)
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Appends s with backslash and newline escaped, and double quote too when
 * quote is set: label values need all three, HELP text the first two. */
static void buf_escaped(struct buf *b, const char *s, bool quote)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = NULL;

		if (*s == '\\')
			esc = "\\\\";
		else if (*s == '\n')
			esc = "\\n";
		else if (*s == '"' && quote)
			esc = "\\\"";
		if (esc) {
			buf_add(b, run, (size_t)(s - run));
			buf_str(b, esc);
			run = s + 1;
		}
	}
	buf_add(b, run, (size_t)(s - run));
}

/*
 * Formats a sample value the way Prometheus' own clients do: whole numbers
 * without a fraction or exponent (counters stay readable), others in the
 * shortest form that reads back to the same double, and the special values
 * as +Inf, -Inf, NaN.
 */
static void format_value(double v, char *out, size_t size)
{
	if (isnan(v)) {
		snprintf(out, size, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, size, "%s", v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == 0) {
		snprintf(out, size, "0"); /* not "-0" */
		return;
	}
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(out, size, "%.0f", v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, size, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

static void buf_value(struct buf *b, double v)
{
	char num[40];

	format_value(v, num, sizeof(num));
	buf_str(b, num);
}

static void buf_u64(struct buf *b, uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	buf_str(b, num);
}

/* ------------------------------------------------------------------------ */
/* Names */

/*
 * Writes name{l1="v1",...,extra="x"} and a space. extra_name, when not
 * NULL, is the histogram's "le" label, which comes last.
 */
static void render_series(struct buf *b, const struct family *fam, const char *suffix,
			  char *const *values, const char *extra_name, const char *extra_value)
{
	bool any = fam->nlabels > 0 || extra_name;
	const char *sep = "";

	buf_str(b, fam->name);
	buf_str(b, suffix);
	if (any)
		buf_str(b, "{");
	for (size_t i = 0; i < fam->nlabels; i++) {
		buf_str(b, sep);
		buf_str(b, fam->label_names[i]);
		buf_str(b, "=\"");
		buf_escaped(b, values[i], true);
		buf_str(b, "\"");
		sep = ",";
	}
	if (extra_name) {
		buf_str(b, sep);
		buf_str(b, extra_name);
		buf_str(b, "=\"");
		buf_str(b, extra_value);
		buf_str(b, "\"");
	}
	if (any)
		buf_str(b, "}");
	buf_str(b, " ");
}

static void render_histogram_child(struct buf *b, const struct family *fam, const struct child *ch)
{
	uint64_t cumulative = 0;
	char le[40];

	for (size_t i = 0; i <= fam->nbounds; i++) {
		cumulative += ch->counts[i];
		if (i < fam->nbounds)
			format_value(fam->bounds[i], le, sizeof(le));
		else
			snprintf(le, sizeof(le), "+Inf");
		render_series(b, fam, "_bucket", ch->values, "le", le);
		buf_u64(b, cumulative);
		buf_str(b, "\n");
	}
	render_series(b, fam, "_sum", ch->values, NULL, NULL);
	buf_value(b, ch->sum);
	buf_str(b, "\n");
	render_series(b, fam, "_count", ch->values, NULL, NULL);
	buf_u64(b, ch->count);
	buf_str(b, "\n");
}

static void render_family(struct buf *b, struct family *fam)
{
	buf_str(b, "# HELP ");
	buf_str(b, fam->name);
	buf_str(b, " ");
	buf_escaped(b, fam->help, false);
	buf_str(b, "\n# TYPE ");
	buf_str(b, fam->name);
	buf_str(b, " ");
	buf_str(b, type_names[fam->type]);
	buf_str(b, "\n");

	if (fam->fn) {
		double v;

		/* No lock: the callback may take its time or touch metrics. */
		if (!fam->fn(fam->fn_arg, &v)) {
			render_series(b, fam, "", NULL, NULL, NULL);
			buf_value(b, v);
			buf_str(b, "\n");
		}
		return;
	}

	pthread_mutex_lock(&fam->lock);
	for (const struct child *ch = fam->children; ch; ch = ch->next) {
		if (fam->type == FAMILY_HISTOGRAM) {
			render_histogram_child(b, fam, ch);
		} else {
			render_series(b, fam, "", ch->values, NULL, NULL);
			buf_value(b, ch->value);
			buf_str(b, "\n");
		}
	}
	pthread_mutex_unlock(&fam->lock);
}

char *es_metrics_render(struct es_metrics *reg, size_t *len)
{
	struct buf b = {0};
	struct family **fams = NULL;
	struct family *fam;
	size_t n = 0;
	bool no_memory = false;

	if (!reg)
		return NULL;

	/* Families are never removed before es_metrics_free, so a snapshot of
	 * the list lets us render without holding the registry lock (and so
	 * without blocking registration behind a slow gauge callback). */
	pthread_mutex_lock(&reg->lock);
	if (reg->nfamilies) {
		fams = malloc(reg->nfamilies * sizeof(*fams));
		if (fams) {
			for (fam = reg->families; fam; fam = fam->next)
				fams[n++] = fam;
		} else {
			no_memory = true;
		}
	}
	pthread_mutex_unlock(&reg->lock);
	if (no_memory)
		return NULL;

	buf_reserve(&b, 0);
	if (!b.failed)
		b.data[0] = '\0';
	for (size_t i = 0; i < n; i++)
		render_family(&b, fams[i]);
	free(fams);

	if (b.failed) {
		free(b.data);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.data;
}
