/*
 * shopctl watch: the lines held back, so that an event that arrives late
 * but happened earlier overtakes the ones still held. A binary min-heap by
 * event time; the arrival number keeps events of the same time in the
 * order they came.
 */
#include <stdio.h>
#include <stdlib.h>

#include "watch.h"

/* A line waiting for its turn. */
struct shopctl_watch_held {
	long long time_ms; /* event time, ms since the epoch: the order */
	unsigned long long seq; /* arrival: keeps equal times in arrival order */
	long long due_ms; /* when the window after it has passed */
	char *line; /* without the newline; owned */
};

static bool earlier(const struct shopctl_watch_held *a, const struct shopctl_watch_held *b)
{
	return a->time_ms < b->time_ms || (a->time_ms == b->time_ms && a->seq < b->seq);
}

static void swap(struct shopctl_watch_held **a, struct shopctl_watch_held **b)
{
	struct shopctl_watch_held *t = *a;

	*a = *b;
	*b = t;
}

static int push(struct shopctl_watch_reorder *r, struct shopctl_watch_held *e)
{
	size_t i;

	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		struct shopctl_watch_held **grown = realloc(r->v, cap * sizeof(*grown));

		if (!grown)
			return -1;
		r->v = grown;
		r->cap = cap;
	}
	i = r->n++;
	r->v[i] = e;
	while (i > 0 && earlier(r->v[i], r->v[(i - 1) / 2])) {
		swap(&r->v[i], &r->v[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	return 0;
}

static struct shopctl_watch_held *pop(struct shopctl_watch_reorder *r)
{
	struct shopctl_watch_held *top;
	size_t i = 0;

	if (r->n == 0)
		return NULL;
	top = r->v[0];
	r->v[0] = r->v[--r->n];
	for (;;) {
		size_t l = 2 * i + 1, right = l + 1, min = i;

		if (l < r->n && earlier(r->v[l], r->v[min]))
			min = l;
		if (right < r->n && earlier(r->v[right], r->v[min]))
			min = right;
		if (min == i)
			break;
		swap(&r->v[i], &r->v[min]);
		i = min;
	}
	return top;
}

static void held_free(struct shopctl_watch_held *e)
{
	if (e) {
		free(e->line);
		free(e);
	}
}

int shopctl_watch_reorder_add(struct shopctl_watch_reorder *r, long long time_ms, long long due_ms,
			      char *line)
{
	struct shopctl_watch_held *e = calloc(1, sizeof(*e));

	if (!e) {
		free(line);
		return -1;
	}
	e->time_ms = time_ms;
	e->seq = r->seq++;
	e->due_ms = due_ms;
	e->line = line;
	if (push(r, e)) {
		held_free(e);
		return -1;
	}
	return 0;
}

long long shopctl_watch_reorder_due(const struct shopctl_watch_reorder *r)
{
	return r->v[0]->due_ms;
}

void shopctl_watch_reorder_print_next(struct shopctl_watch_reorder *r)
{
	struct shopctl_watch_held *e = pop(r);
	int day = shopctl_watch_local_day(e->time_ms);

	if (day != r->last_day) {
		printf("--- %04d-%02d-%02d ---\n", day / 10000, day / 100 % 100, day % 100);
		r->last_day = day;
	}
	fputs(e->line, stdout);
	putchar('\n');
	r->printed++;
	held_free(e);
}

void shopctl_watch_reorder_release(struct shopctl_watch_reorder *r)
{
	for (size_t i = 0; i < r->n; i++)
		held_free(r->v[i]);
	free(r->v);
}
