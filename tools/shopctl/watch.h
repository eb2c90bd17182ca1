/*
 * shopctl watch's parts, private to it: the command line (watch_opts.c),
 * one message as a line (watch_line.c), the lines held back and printed in
 * event-time order (watch_reorder.c), and reading the topics in a loop
 * that ties them together (watch.c).
 */
#ifndef SHOPCTL_WATCH_H
#define SHOPCTL_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#define SHOPCTL_WATCH_MAX_TOPICS 64
#define SHOPCTL_WATCH_MAX_TOPIC_LEN 249 /* Kafka's own limit */
/* The characters of an id a line shows: enough to match a cause to an
 * earlier line by eye. */
#define SHOPCTL_WATCH_SHORT_ID 8

/* ------------------------------------------------------ the command line */

struct shopctl_watch_opts {
	char topics[SHOPCTL_WATCH_MAX_TOPICS][SHOPCTL_WATCH_MAX_TOPIC_LEN + 1];
	int ntopics;
	bool from_beginning;
	bool exit_at_end;
	long long window_ms;
	long long count; /* 0: no limit */
	const char *order; /* argv's */
	bool color; /* colour the lines: --color[=WHEN], NO_COLOR and stdout */
};

/*
 * Fills o from the command line (argv[0] "watch"), the shop's topics when
 * --topics names none. Returns 0, -1 after printing the help on stdout, or
 * the status of a usage error (said on stderr).
 */
int shopctl_watch_opts_parse(struct shopctl_watch_opts *o, int argc, char **argv);

/* ------------------------------------------------------------ one line */

/* What watch shows of one message, borrowed from it and from root. */
struct shopctl_watch_view {
	json_t *root; /* the value as JSON, or NULL; owned */
	char why[200]; /* why the value is not a CloudEvent, "" when it is one */
	const char *type, *subject, *id, *cause, *time; /* NULL when absent */
	const void *order; /* subject, else the key; NULL when neither */
	size_t order_len;
	bool dead; /* a dead letter: it has the dlq.error header */
	long long time_ms; /* event time, ms since the epoch: shown and sorted by */
};

/*
 * Reads rkm leniently into v: a viewer shows what is there even when
 * es_event_parse would refuse it. The time is the CloudEvent time; for a
 * dead letter, when it was dead-lettered; else the Kafka timestamp, else
 * now. v borrows from rkm, which must outlive it; release it with
 * shopctl_watch_view_release.
 */
void shopctl_watch_view_read(struct shopctl_watch_view *v, const rd_kafka_message_t *rkm);

void shopctl_watch_view_release(struct shopctl_watch_view *v);

/*
 * The colour of a topic of the shop by its role (TOPIC_ORDERS and the
 * like), for the lines whose type does not say; NULL for other topics.
 */
const char *shopctl_watch_topic_color(const char *topic);

/*
 * Renders the message rkm of topic (read into v) as one line, escaped,
 * without the newline: with SGR colours when color is true, topic_color
 * (NULL for none) being the colour of its topic. Returns the line
 * (malloc'd, the caller's), or NULL when out of memory.
 */
char *shopctl_watch_render(const struct shopctl_watch_view *v, const rd_kafka_message_t *rkm,
			   const char *topic, const char *topic_color, bool color);

/* The local date of ms since the epoch, as yyyymmdd (0 when unknown). */
int shopctl_watch_local_day(long long ms);

/* ms since the epoch. */
long long shopctl_watch_wall_ms(void);

/* ---------------------------------------------------- the held lines */

struct shopctl_watch_held;

/* The lines held back for their window: a binary min-heap by event time,
 * then arrival. Zero-initialised, it is empty. */
struct shopctl_watch_reorder {
	struct shopctl_watch_held **v;
	size_t n, cap;
	unsigned long long seq; /* lines added so far */
	long long printed; /* lines printed so far */
	int last_day; /* the local date last shown, yyyymmdd */
};

/*
 * Holds line, of an event at time_ms (ms since the epoch), until due_ms
 * (on the caller's clock). Takes line, also on failure. Returns 0, or -1
 * when out of memory.
 */
int shopctl_watch_reorder_add(struct shopctl_watch_reorder *r, long long time_ms, long long due_ms,
			      char *line);

/* When the earliest line held is due; r must hold one. */
long long shopctl_watch_reorder_due(const struct shopctl_watch_reorder *r);

/*
 * Prints the earliest line held to stdout and frees it, after a line
 * "--- YYYY-MM-DD ---" when its day is not the last one shown; r must
 * hold one.
 */
void shopctl_watch_reorder_print_next(struct shopctl_watch_reorder *r);

/* Frees the lines still held, unprinted, and the heap. */
void shopctl_watch_reorder_release(struct shopctl_watch_reorder *r);

#endif
