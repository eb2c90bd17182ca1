/*
 * stats: latency samples and their percentiles.
 *
 * Every sample is kept (8 bytes each: ten million orders are 80 MB), so the
 * percentiles are exact, not estimated from a histogram: the p-th
 * percentile of n samples is the nearest-rank one, the smallest sample
 * that at least p% of all samples are less than or equal to (the
 * ceil(p/100 * n)-th smallest).
 */
#ifndef LG_STATS_H
#define LG_STATS_H

#include <stddef.h>
#include <stdint.h>

/* A growing array of samples, in microseconds. Zero-initialise it. */
struct lg_samples {
	int64_t *v; /* owned */
	size_t n, cap;
};

/* Appends v. Returns 0, or -1 when out of memory (the sample is lost). */
int lg_samples_add(struct lg_samples *s, int64_t v);

void lg_samples_release(struct lg_samples *s);

/* The nearest-rank p-th percentile (0 < p <= 100) of n sorted values;
 * 0 when n is 0. */
int64_t lg_percentile(const int64_t *sorted, size_t n, double p);

struct lg_summary {
	size_t count;
	int64_t min, p50, p95, p99, max; /* all 0 when count is 0 */
	double mean;
};

/* Sorts s's samples in place and summarises them. */
void lg_samples_summarize(struct lg_samples *s, struct lg_summary *out);

#endif
