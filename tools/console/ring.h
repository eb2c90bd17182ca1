/*
 * ring: the console's memory of recent events, bounded whatever the
 * traffic: at most `capacity` frames and `max_bytes` bytes of them; a new
 * frame pushes the oldest out. Every frame gets the next sequence number
 * (1, 2, ...), which the SSE ids carry; a reader asks for the first frame
 * at or after the number it wants next, so one that fell behind by more
 * than the ring holds skips to the oldest frame still there.
 *
 * Thread-safe: the Kafka thread pushes while HTTP pool threads read.
 */
#ifndef CONSOLE_RING_H
#define CONSOLE_RING_H

#include <stddef.h>

struct console_ring;

/* Returns NULL when out of memory or capacity is 0. */
struct console_ring *console_ring_new(size_t capacity, size_t max_bytes);

void console_ring_free(struct console_ring *r);

/*
 * Appends frame (malloc'd, len bytes; the ring takes it, also on failure)
 * and returns its sequence number, 0 when it is larger than max_bytes on
 * its own (then dropped).
 */
unsigned long long console_ring_push(struct console_ring *r, char *frame, size_t len);

/* The number the next push will get (a frame carries its own number in
 * its SSE id, so it is made before it is pushed: only one thread may
 * push). */
unsigned long long console_ring_next_seq(struct console_ring *r);

/*
 * A copy of the first frame whose number is >= from (malloc'd, the
 * caller's; *seq its number, *len its length), or NULL when there is none
 * yet (or out of memory).
 */
char *console_ring_get(struct console_ring *r, unsigned long long from, unsigned long long *seq,
		       size_t *len);

/* How many frames and bytes the ring holds now. */
void console_ring_usage(struct console_ring *r, size_t *frames, size_t *bytes);

#endif
