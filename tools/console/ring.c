#include "ring.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	char *frame;
	size_t len;
	unsigned long long seq;
};

struct console_ring {
	pthread_mutex_t lock;
	struct slot *slots;
	size_t capacity, max_bytes;
	size_t head; /* the oldest frame's slot */
	size_t count, bytes;
	unsigned long long next_seq;
};

struct console_ring *console_ring_new(size_t capacity, size_t max_bytes)
{
	struct console_ring *r;

	if (capacity == 0)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->slots = calloc(capacity, sizeof(*r->slots));
	if (!r->slots) {
		free(r);
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->capacity = capacity;
	r->max_bytes = max_bytes;
	r->next_seq = 1;
	return r;
}

void console_ring_free(struct console_ring *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->count; i++)
		free(r->slots[(r->head + i) % r->capacity].frame);
	free(r->slots);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

/* Under the lock. */
static void drop_oldest(struct console_ring *r)
{
	struct slot *s = &r->slots[r->head];

	r->bytes -= s->len;
	free(s->frame);
	s->frame = NULL;
	r->head = (r->head + 1) % r->capacity;
	r->count--;
}

unsigned long long console_ring_push(struct console_ring *r, char *frame, size_t len)
{
	unsigned long long seq;
	struct slot *s;

	if (len > r->max_bytes) {
		free(frame);
		return 0;
	}
	pthread_mutex_lock(&r->lock);
	while (r->count == r->capacity || (r->count && r->bytes + len > r->max_bytes))
		drop_oldest(r);
	s = &r->slots[(r->head + r->count) % r->capacity];
	s->frame = frame;
	s->len = len;
	s->seq = seq = r->next_seq++;
	r->count++;
	r->bytes += len;
	pthread_mutex_unlock(&r->lock);
	return seq;
}

unsigned long long console_ring_next_seq(struct console_ring *r)
{
	unsigned long long seq;

	pthread_mutex_lock(&r->lock);
	seq = r->next_seq;
	pthread_mutex_unlock(&r->lock);
	return seq;
}

char *console_ring_get(struct console_ring *r, unsigned long long from, unsigned long long *seq,
		       size_t *len)
{
	char *copy = NULL;

	pthread_mutex_lock(&r->lock);
	if (r->count && from < r->next_seq) {
		unsigned long long oldest = r->slots[r->head].seq;
		size_t i = from <= oldest ? 0 : (size_t)(from - oldest);
		const struct slot *s = &r->slots[(r->head + i) % r->capacity];

		copy = malloc(s->len + 1);
		if (copy) {
			memcpy(copy, s->frame, s->len);
			copy[s->len] = '\0';
			*seq = s->seq;
			*len = s->len;
		}
	}
	pthread_mutex_unlock(&r->lock);
	return copy;
}

void console_ring_usage(struct console_ring *r, size_t *frames, size_t *bytes)
{
	pthread_mutex_lock(&r->lock);
	*frames = r->count;
	*bytes = r->bytes;
	pthread_mutex_unlock(&r->lock);
}
