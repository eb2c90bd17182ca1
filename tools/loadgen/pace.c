#include "pace.h"

void lg_pacer_init(struct lg_pacer *p, long long rate, int64_t start_us)
{
	p->rate = rate;
	p->start_us = start_us;
}

int64_t lg_pacer_due_us(const struct lg_pacer *p, uint64_t n)
{
	uint64_t r;

	if (p->rate <= 0)
		return p->start_us;
	/* ceil(n * 1e6 / rate) without floating point: n stays below 2^43
	 * for any run this tool makes, so n * 1e6 fits in 64 bits. */
	r = (uint64_t)p->rate;
	return p->start_us + (int64_t)((n * 1000000u + r - 1) / r);
}

uint64_t lg_pacer_due_count(const struct lg_pacer *p, int64_t now_us)
{
	if (p->rate <= 0)
		return UINT64_MAX;
	if (now_us < p->start_us)
		return 0;
	return (uint64_t)(now_us - p->start_us) * (uint64_t)p->rate / 1000000u + 1;
}

uint64_t lg_pacer_total(long long rate, long long orders, long long duration_s)
{
	uint64_t total = orders > 0 ? (uint64_t)orders : UINT64_MAX;

	if (rate > 0 && duration_s > 0) {
		/* n is due before start + duration when ceil(n * 1e6 / rate)
		 * < duration * 1e6, i.e. n < duration * rate. */
		uint64_t by_clock = (uint64_t)duration_s * (uint64_t)rate;

		if (by_clock < total)
			total = by_clock;
	}
	return total;
}
