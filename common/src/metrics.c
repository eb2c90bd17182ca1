#include "es/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double es_histogram_default_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
					       0.25,  0.5,    1,     2.5,  5,	  10};
const size_t es_histogram_default_nbuckets = sizeof(es_histogram_default_buckets) /
					     sizeof(es_histogram_default_buckets[0]);

enum family_type {
	FAMILY_COUNTER,
	FAMILY_GAUGE,
	FAMILY_HISTOGRAM,
};

static const char *const type_names[] = {"counter", "gauge", "histogram"};

struct child {
	struct child *next;
	char **values; /* owned, one per label name */
	double value; /* counter, gauge */
	/* histogram: per-bucket counts, not cumulative (the render sums them),
	 * so that an observation touches one slot; the last slot is +Inf */
	uint64_t *counts;
	uint64_t count;
	double sum;
};

struct family {
	struct family *next; /* registration order */
	enum family_type type;
	char *name;
	char *help;
	char **label_names;
	size_t nlabels;
	double *bounds; /* histogram: finite upper bounds, +Inf implied */
	size_t nbounds;
	es_gauge_fn fn; /* callback gauge: no children, computed at render */
	void *fn_arg;

	pthread_mutex_t lock; /* guards everything below */
	struct child *children;
	struct child **tail;
	size_t nchildren;
};

struct es_metrics {
	pthread_mutex_t lock; /* guards the family list */
	struct family *families;
	struct family **tail;
	size_t nfamilies;
};

/* The public family types are views of struct family: they exist so that a
 * counter cannot be passed where a histogram is expected. */
#define FAM(p) ((struct family *)(void *)(p))

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

static bool name_char_ok(char c, bool first, bool colon)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	if (colon && c == ':')
		return true;
	return !first && c >= '0' && c <= '9';
}

static bool metric_name_ok(const char *name)
{
	if (!name || !*name)
		return false;
	for (const char *p = name; *p; p++) {
		if (!name_char_ok(*p, p == name, true))
			return false;
	}
	return true;
}

static bool label_name_ok(const char *name)
{
	if (!name || !*name || !strncmp(name, "__", 2))
		return false;
	for (const char *p = name; *p; p++) {
		if (!name_char_ok(*p, p == name, false))
			return false;
	}
	return true;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* ------------------------------------------------------------------------ */
/* Registry */

struct es_metrics *es_metrics_new(void)
{
	struct es_metrics *reg = calloc(1, sizeof(*reg));

	if (!reg)
		return NULL;
	pthread_mutex_init(&reg->lock, NULL);
	reg->tail = &reg->families;
	return reg;
}

static void strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void child_free(struct child *ch, size_t nlabels)
{
	strv_free(ch->values, nlabels);
	free(ch->counts);
	free(ch);
}

static void family_free(struct family *fam)
{
	struct child *ch, *next;

	if (!fam)
		return;
	for (ch = fam->children; ch; ch = next) {
		next = ch->next;
		child_free(ch, fam->nlabels);
	}
	pthread_mutex_destroy(&fam->lock);
	strv_free(fam->label_names, fam->nlabels);
	free(fam->bounds);
	free(fam->help);
	free(fam->name);
	free(fam);
}

void es_metrics_free(struct es_metrics *reg)
{
	struct family *fam, *next;

	if (!reg)
		return;
	for (fam = reg->families; fam; fam = next) {
		next = fam->next;
		family_free(fam);
	}
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

static int check_labels(const char *const *label_names, enum family_type type, size_t *nlabels,
			char *errstr, size_t errstr_size)
{
	size_t n = 0;

	for (; label_names && label_names[n]; n++) {
		const char *l = label_names[n];

		if (n == ES_METRICS_MAX_LABELS) {
			snprintf(errstr, errstr_size, "more than %d label names",
				 ES_METRICS_MAX_LABELS);
			return -1;
		}
		if (!label_name_ok(l)) {
			snprintf(errstr, errstr_size, "\"%s\" is not a valid label name", l);
			return -1;
		}
		if (type == FAMILY_HISTOGRAM && !strcmp(l, "le")) {
			snprintf(errstr, errstr_size, "a histogram may not have a label \"le\"");
			return -1;
		}
		for (size_t i = 0; i < n; i++) {
			if (!strcmp(label_names[i], l)) {
				snprintf(errstr, errstr_size, "label name \"%s\" given twice", l);
				return -1;
			}
		}
	}
	*nlabels = n;
	return 0;
}

static int check_bounds(const double *bounds, size_t n, char *errstr, size_t errstr_size)
{
	if (n == 0) {
		snprintf(errstr, errstr_size, "a histogram needs at least one bucket");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
			snprintf(errstr, errstr_size,
				 "bucket bounds must be finite and strictly increasing");
			return -1;
		}
	}
	return 0;
}

static char **strv_dup(const char *const *v, size_t n)
{
	char **copy = calloc(n ? n : 1, sizeof(*copy));

	if (!copy)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		copy[i] = strdup(v[i]);
		if (!copy[i]) {
			strv_free(copy, i);
			return NULL;
		}
	}
	return copy;
}

static struct family *family_new(const char *name, const char *help, const char *const *label_names,
				 size_t nlabels)
{
	struct family *fam = calloc(1, sizeof(*fam));

	if (!fam)
		return NULL;
	pthread_mutex_init(&fam->lock, NULL);
	fam->tail = &fam->children;
	fam->nlabels = nlabels;
	fam->name = strdup(name);
	fam->help = strdup(help ? help : "");
	fam->label_names = strv_dup(label_names, nlabels);
	if (!fam->name || !fam->help || !fam->label_names) {
		family_free(fam);
		return NULL;
	}
	return fam;
}

/* Adds fam to the registry unless its name is taken; on failure fam is
 * freed. */
static int registry_add(struct es_metrics *reg, struct family *fam, char *errstr,
			size_t errstr_size)
{
	int result = -1;

	pthread_mutex_lock(&reg->lock);
	for (struct family *f = reg->families; f; f = f->next) {
		if (!strcmp(f->name, fam->name)) {
			snprintf(errstr, errstr_size, "metric \"%s\" is already registered",
				 fam->name);
			goto out;
		}
	}
	*reg->tail = fam;
	reg->tail = &fam->next;
	reg->nfamilies++;
	result = 0;
out:
	pthread_mutex_unlock(&reg->lock);
	if (result)
		family_free(fam);
	return result;
}

static struct family *family_register(struct es_metrics *reg, enum family_type type,
				      const char *name, const char *help,
				      const char *const *label_names, const double *bounds,
				      size_t nbounds, char *errstr, size_t errstr_size)
{
	struct family *fam;
	size_t nlabels;

	if (!reg) {
		snprintf(errstr, errstr_size, "no registry");
		return NULL;
	}
	if (!metric_name_ok(name)) {
		snprintf(errstr, errstr_size, "\"%s\" is not a valid metric name",
			 name ? name : "(null)");
		return NULL;
	}
	if (type == FAMILY_COUNTER && !has_suffix(name, "_total")) {
		snprintf(errstr, errstr_size, "counter \"%s\": the name must end in _total", name);
		return NULL;
	}
	if (check_labels(label_names, type, &nlabels, errstr, errstr_size))
		return NULL;
	if (type == FAMILY_HISTOGRAM && check_bounds(bounds, nbounds, errstr, errstr_size))
		return NULL;

	fam = family_new(name, help, label_names, nlabels);
	if (fam && type == FAMILY_HISTOGRAM) {
		fam->bounds = malloc(nbounds * sizeof(*fam->bounds));
		if (fam->bounds) {
			memcpy(fam->bounds, bounds, nbounds * sizeof(*fam->bounds));
			fam->nbounds = nbounds;
		} else {
			family_free(fam);
			fam = NULL;
		}
	}
	if (!fam) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	fam->type = type;
	if (registry_add(reg, fam, errstr, errstr_size))
		return NULL;
	return fam;
}

struct es_counter *es_counter_register(struct es_metrics *reg, const char *name, const char *help,
				       const char *const *label_names, char *errstr,
				       size_t errstr_size)
{
	return (struct es_counter *)(void *)family_register(
		reg, FAMILY_COUNTER, name, help, label_names, NULL, 0, errstr, errstr_size);
}

struct es_gauge *es_gauge_register(struct es_metrics *reg, const char *name, const char *help,
				   const char *const *label_names, char *errstr, size_t errstr_size)
{
	return (struct es_gauge *)(void *)family_register(
		reg, FAMILY_GAUGE, name, help, label_names, NULL, 0, errstr, errstr_size);
}

struct es_histogram *es_histogram_register(struct es_metrics *reg, const char *name,
					   const char *help, const char *const *label_names,
					   const double *buckets, size_t nbuckets, char *errstr,
					   size_t errstr_size)
{
	if (!buckets) {
		buckets = es_histogram_default_buckets;
		nbuckets = es_histogram_default_nbuckets;
	}
	return (struct es_histogram *)(void *)family_register(reg, FAMILY_HISTOGRAM, name, help,
							      label_names, buckets, nbuckets,
							      errstr, errstr_size);
}

int es_gauge_register_fn(struct es_metrics *reg, const char *name, const char *help, es_gauge_fn fn,
			 void *arg, char *errstr, size_t errstr_size)
{
	struct family *fam;

	if (!fn) {
		snprintf(errstr, errstr_size, "gauge \"%s\": no callback", name ? name : "(null)");
		return -1;
	}
	if (!metric_name_ok(name)) {
		snprintf(errstr, errstr_size, "\"%s\" is not a valid metric name",
			 name ? name : "(null)");
		return -1;
	}
	if (!reg) {
		snprintf(errstr, errstr_size, "no registry");
		return -1;
	}
	fam = family_new(name, help, NULL, 0);
	if (!fam) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	fam->type = FAMILY_GAUGE;
	fam->fn = fn;
	fam->fn_arg = arg;
	return registry_add(reg, fam, errstr, errstr_size);
}

/* ------------------------------------------------------------------------ */
/* Children */

static bool values_equal(char *const *have, const char *const *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(have[i], want[i]))
			return false;
	}
	return true;
}

/* Finds or creates the child for these label values. Called with
 * fam->lock held. Returns NULL at the child limit or when out of memory. */
static struct child *child_get(struct family *fam, const char *const *values)
{
	struct child *ch;

	for (ch = fam->children; ch; ch = ch->next) {
		if (values_equal(ch->values, values, fam->nlabels))
			return ch;
	}
	if (fam->nchildren >= ES_METRICS_MAX_CHILDREN)
		return NULL;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return NULL;
	ch->values = strv_dup(values, fam->nlabels);
	if (fam->type == FAMILY_HISTOGRAM)
		ch->counts = calloc(fam->nbounds + 1, sizeof(*ch->counts));
	if (!ch->values || (fam->type == FAMILY_HISTOGRAM && !ch->counts)) {
		child_free(ch, fam->nlabels);
		return NULL;
	}
	*fam->tail = ch;
	fam->tail = &ch->next;
	fam->nchildren++;
	return ch;
}

static bool values_ok(const struct family *fam, const char *const *values)
{
	if (fam->nlabels && !values)
		return false;
	for (size_t i = 0; i < fam->nlabels; i++) {
		if (!values[i])
			return false;
	}
	return true;
}

enum update_op {
	OP_ADD,
	OP_SET,
	OP_OBSERVE,
};

static int family_update(struct family *fam, const char *const *values, enum update_op op, double v)
{
	struct child *ch;
	int result = -1;

	if (!fam || fam->fn || !values_ok(fam, values) || isnan(v))
		return -1;
	if (fam->type == FAMILY_COUNTER && v < 0)
		return -1;

	pthread_mutex_lock(&fam->lock);
	ch = child_get(fam, values);
	if (!ch)
		goto out;
	switch (op) {
	case OP_ADD:
		ch->value += v;
		break;
	case OP_SET:
		ch->value = v;
		break;
	case OP_OBSERVE: {
		size_t i = 0;

		while (i < fam->nbounds && v > fam->bounds[i])
			i++;
		ch->counts[i]++;
		ch->count++;
		ch->sum += v;
		break;
	}
	}
	result = 0;
out:
	pthread_mutex_unlock(&fam->lock);
	return result;
}

int es_counter_inc(struct es_counter *c, const char *const *label_values)
{
	return family_update(FAM(c), label_values, OP_ADD, 1);
}

int es_counter_add(struct es_counter *c, const char *const *label_values, double v)
{
	return family_update(FAM(c), label_values, OP_ADD, v);
}

int es_gauge_set(struct es_gauge *g, const char *const *label_values, double v)
{
	return family_update(FAM(g), label_values, OP_SET, v);
}

int es_gauge_add(struct es_gauge *g, const char *const *label_values, double v)
{
	return family_update(FAM(g), label_values, OP_ADD, v);
}

int es_gauge_inc(struct es_gauge *g, const char *const *label_values)
{
	return family_update(FAM(g), label_values, OP_ADD, 1);
}

int es_gauge_dec(struct es_gauge *g, const char *const *label_values)
{
	return family_update(FAM(g), label_values, OP_ADD, -1);
}

int es_histogram_observe(struct es_histogram *h, const char *const *label_values, double v)
{
	return family_update(FAM(h), label_values, OP_OBSERVE, v);
}

/* ------------------------------------------------------------------------ */
/* Rendering */

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
