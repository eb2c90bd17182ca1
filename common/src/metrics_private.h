/*
 * metrics_private: what the two files of the metrics module share
 * (es/metrics.h is the module's interface).
 *
 *   metrics.c       the registry: families, their children, updates
 *   metrics_text.c  the Prometheus text format (0.0.4) of a registry
 */
#ifndef ES_METRICS_PRIVATE_H
#define ES_METRICS_PRIVATE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "es/metrics.h"

enum family_type {
	FAMILY_COUNTER,
	FAMILY_GAUGE,
	FAMILY_HISTOGRAM,
};

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

#endif
