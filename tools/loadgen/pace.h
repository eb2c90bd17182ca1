/*
 * pace: when each order is due at a fixed rate (an open-loop schedule).
 *
 * Order n (from 0) is due at start + ceil(n * 1e6 / rate) microseconds,
 * whatever happened to the orders before it: a sender that fell behind
 * (every slot in flight) catches up by sending what is overdue at once,
 * so the rate asked for is the rate offered, and the delay shows up as
 * schedule lag instead of silently lowering the rate.
 */
#ifndef LG_PACE_H
#define LG_PACE_H

#include <stdint.h>

#define LG_RATE_MAX 1000000 /* orders per second */

struct lg_pacer {
	long long rate; /* orders per second, 1..LG_RATE_MAX; 0: no pacing */
	int64_t start_us;
};

void lg_pacer_init(struct lg_pacer *p, long long rate, int64_t start_us);

/* When order n is due (start_us for every n without pacing). */
int64_t lg_pacer_due_us(const struct lg_pacer *p, uint64_t n);

/* How many orders are due by now_us: 0 before the start, else
 * floor((now - start) * rate / 1e6) + 1; UINT64_MAX without pacing. */
uint64_t lg_pacer_due_count(const struct lg_pacer *p, int64_t now_us);

/*
 * How many orders a run places: the smaller of `orders` and, at a fixed
 * rate, the orders due within `duration_s` (those due before start +
 * duration); 0 means "no limit" for either. UINT64_MAX when neither limits
 * (a run at rate max for a duration ends on the clock instead).
 */
uint64_t lg_pacer_total(long long rate, long long orders, long long duration_s);

#endif
