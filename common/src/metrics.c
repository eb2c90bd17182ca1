#include "metrics_private.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double es_histogram_default_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
					       0.25,  0.5,    1,     2.5,  5,	  10};
const size_t es_histogram_default_nbuckets = sizeof(es_histogram_default_buckets) /
					     sizeof(es_histogram_default_buckets[0]);

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
