#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int lg_samples_add(struct lg_samples *s, int64_t v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		int64_t *grown = realloc(s->v, cap * sizeof(*grown));

		if (!grown)
			return -1;
		s->v = grown;
		s->cap = cap;
	}
	s->v[s->n++] = v;
	return 0;
}

void lg_samples_release(struct lg_samples *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

int64_t lg_percentile(const int64_t *sorted, size_t n, double p)
{
	double exact;
	size_t rank;

	if (n == 0)
		return 0;
	/* p * n / 100 in floating point can land a hair above a whole
	 * number (e.g. 0.95 * 100 -> 95.00000000000001), which ceil would
	 * turn into the next rank: take off far less than one rank first. */
	exact = p * (double)n / 100.0;
	rank = (size_t)ceil(exact - 1e-9 * (exact > 1 ? exact : 1));
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

void lg_samples_summarize(struct lg_samples *s, struct lg_summary *out)
{
	double sum = 0;

	memset(out, 0, sizeof(*out));
	if (s->n == 0)
		return;
	qsort(s->v, s->n, sizeof(*s->v), cmp_i64);
	for (size_t i = 0; i < s->n; i++)
		sum += (double)s->v[i];
	out->count = s->n;
	out->min = s->v[0];
	out->max = s->v[s->n - 1];
	out->p50 = lg_percentile(s->v, s->n, 50);
	out->p95 = lg_percentile(s->v, s->n, 95);
	out->p99 = lg_percentile(s->v, s->n, 99);
	out->mean = sum / (double)s->n;
}
