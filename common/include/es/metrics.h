/*
 * metrics: a Prometheus registry rendered in the text exposition format
 * 0.0.4, for GET /metrics.
 *
 *   # HELP es_events_consumed_total Events consumed, by topic and type.
 *   # TYPE es_events_consumed_total counter
 *   es_events_consumed_total{topic="orders",type="OrderPlaced"} 42
 *
 * A metric family (one name, one help text, one type, fixed label names) is
 * registered once at start; its children, one per set of label values, are
 * created on first use. Families and children live until the registry is
 * freed, so label values must come from a bounded set (topic, event type,
 * route pattern), never from raw request input: a family refuses new
 * children past ES_METRICS_MAX_CHILDREN rather than grow without bound.
 *
 * Thread-safety: every function except es_metrics_free may be called from
 * any thread at any time; each family has its own mutex, held only for the
 * lookup and the update. Registration may also happen after serving
 * started.
 *
 * Label values are passed as an array with exactly as many entries as the
 * family has label names, in the same order (NULL when it has none):
 *
 *   static const char *const labels[] = {"topic", "type", NULL};
 *   consumed = es_counter_register(reg, "es_events_consumed_total",
 *                                  "Events consumed, by topic and type.",
 *                                  labels, errstr, sizeof(errstr));
 *   ...
 *   es_counter_inc(consumed, (const char *[]){topic, type});
 *
 * The values are copied on first use. They should be UTF-8; backslash,
 * double quote and newline are escaped on output.
 */
#ifndef ES_METRICS_H
#define ES_METRICS_H

#include <stddef.h>

/* The most children (label value sets) one family will hold. */
#define ES_METRICS_MAX_CHILDREN 4096

/* The most label names one family may have. */
#define ES_METRICS_MAX_LABELS 8

struct es_metrics; /* the registry */
struct es_counter; /* a counter family, owned by its registry */
struct es_gauge; /* a gauge family, owned by its registry */
struct es_histogram; /* a histogram family, owned by its registry */

/* Upper bounds, in seconds, of the default histogram buckets: 1 ms to 10 s. */
extern const double es_histogram_default_buckets[];
extern const size_t es_histogram_default_nbuckets;

/* Returns a new, empty registry (free with es_metrics_free), or NULL when
 * out of memory. */
struct es_metrics *es_metrics_new(void);

/* Frees the registry with all its families and children. Every family
 * handle obtained from it becomes invalid; no other thread may be using
 * the registry or its families. NULL is a no-op. */
void es_metrics_free(struct es_metrics *reg);

/*
 * Renders every family, in registration order, with its children in
 * creation order. A family without children (a labelled family not used
 * yet, or a callback gauge whose callback failed) gets its # HELP and
 * # TYPE lines only. Returns a NUL-terminated string the caller must
 * free(), with its length in *len when len is not NULL, or NULL when out
 * of memory.
 */
char *es_metrics_render(struct es_metrics *reg, size_t *len);

/*
 * Registration. name must match [a-zA-Z_:][a-zA-Z0-9_:]* and be unique in
 * the registry; a counter's name must end in "_total". help is any text
 * (copied). label_names is a NULL-terminated array of names matching
 * [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", at most
 * ES_METRICS_MAX_LABELS of them, or NULL for none; a histogram may not use
 * "le". The returned family belongs to the registry: never free it.
 * Returns NULL with errstr filled on a bad or duplicate name, or when out
 * of memory.
 */
struct es_counter *es_counter_register(struct es_metrics *reg, const char *name, const char *help,
				       const char *const *label_names, char *errstr,
				       size_t errstr_size);

struct es_gauge *es_gauge_register(struct es_metrics *reg, const char *name, const char *help,
				   const char *const *label_names, char *errstr,
				   size_t errstr_size);

/*
 * buckets: strictly increasing, finite upper bounds (copied); +Inf is
 * always added. NULL (with nbuckets 0) selects es_histogram_default_buckets.
 */
struct es_histogram *es_histogram_register(struct es_metrics *reg, const char *name,
					   const char *help, const char *const *label_names,
					   const double *buckets, size_t nbuckets, char *errstr,
					   size_t errstr_size);

/*
 * A gauge without labels whose value is computed when the registry is
 * rendered, e.g. the outbox backlog. fn runs on the thread that renders
 * (an HTTP pool thread), with no registry lock held, so it may itself
 * update other metrics; it must be thread-safe and should be quick. It
 * returns 0 with *value set, or -1 when the value cannot be known now
 * (then the sample is left out rather than reported stale). Returns 0, or
 * -1 with errstr filled (same rules as es_gauge_register).
 */
typedef int (*es_gauge_fn)(void *arg, double *value);

int es_gauge_register_fn(struct es_metrics *reg, const char *name, const char *help, es_gauge_fn fn,
			 void *arg, char *errstr, size_t errstr_size);

/*
 * Updates. label_values as described at the top of this file. All return
 * 0, or -1 when nothing was changed: a NULL family or label value, a value
 * a counter cannot take (negative or NaN), a NaN observation, the family's
 * child limit reached, or out of memory. Daemons normally ignore the
 * result: a metric that could not be counted is no reason to fail a
 * request.
 */
int es_counter_inc(struct es_counter *c, const char *const *label_values);
int es_counter_add(struct es_counter *c, const char *const *label_values, double v);

int es_gauge_set(struct es_gauge *g, const char *const *label_values, double v);
int es_gauge_add(struct es_gauge *g, const char *const *label_values, double v);
int es_gauge_inc(struct es_gauge *g, const char *const *label_values);
int es_gauge_dec(struct es_gauge *g, const char *const *label_values);

int es_histogram_observe(struct es_histogram *h, const char *const *label_values, double v);

#endif
