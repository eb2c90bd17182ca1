/*
 * What the fault injection cases (tests/fault/it_<theme>.c) share: a load
 * of orders, watching and supervising the daemons, and the chaos that kills
 * them. See harness.c.
 */
#ifndef ES_TEST_FAULT_HARNESS_H
#define ES_TEST_FAULT_HARNESS_H

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "shop.h"

/* shop_init makes orders, payments and inventory with 6 partitions. */
#define TOPIC_PARTITIONS 6

/* The broker and the database (tests/infra/with-infra). */
extern const char *bootstrap, *database_url;

void sleep_ms(long ms);
double secs_since(long long t0);
/* Keeps the shop's directory (logs, maildir) when a case failed. */
void release(struct shop *shop, bool failed);

/* ------------------------------------------------------------ accepted ids */

struct accepted {
	pthread_mutex_t lock;
	char (*ids)[37];
	size_t n, cap;
};

/* Copies the id accepted last into out (""): false when there is none. */
bool accepted_last(struct accepted *a, char *out);

/* ---------------------------------------------------------------- the load */

/* A load of orders from client threads; how each order is placed and
 * retried, harness.c tells. */
struct load {
	struct shop *shop;
	struct accepted acc;
	/* order-service's port: shop_start writes shop->port while the clients
	 * run, so they read this copy, which the restarter updates once the new
	 * instance is ready (until then they knock at the dead one's port). */
	atomic_uint order_port;
	int threads, per_thread;
	long period_ms;
	long long start_ms;
	atomic_int attempted, ok, ok_after_retry, not_accepted, refused, posts;
	atomic_int running;
	atomic_bool stop; /* set: the clients place no further order */
};

struct client;

/* A load of threads x per_thread orders, one every period_ms per thread,
 * against shop's order-service. */
void load_init(struct load *l, struct shop *shop, int threads, int per_thread, long period_ms);
/* Starts the clients (the caller joins them). */
struct client *load_start(struct load *l);
void load_join(struct load *l, struct client *c);
void load_free(struct load *l);
/* Prints what the load did, as "name: ...". */
void load_print(const char *name, struct load *l);

/* ------------------------------------------------------- watching daemons */

/* Lines of a service's logs (all instances, all restarts) holding needle. */
int log_count(const struct shop *shop, enum shop_service s, const char *needle);
/* The same over all services. */
int log_total(const struct shop *shop, const char *needle);
/*
 * Waits until the shop is quiet: no PENDING order, every outbox published,
 * no daemon consumed anything for the last second, and every event read
 * handled (or nothing read for 5 s). Restarts daemons
 * that exited meanwhile. Returns 0, or -1 when timeout_ms passed.
 */
int wait_quiet(struct shop *shop, int timeout_ms, int *exits, int *crashes);
/* Duplicates the inboxes suppressed, per service and in total. */
int print_duplicates(const struct shop *shop, const char *name);
/* shop_init and shop_start_all on the suite's broker and database. */
int start_shop(struct shop *shop);

/* ------------------------------------------- daemons killed and restarted */

struct chaos {
	struct load *l;
	struct shop *shop;
	pthread_mutex_t lock;
	bool down[SHOP_NSERVICES];
	pthread_t restarter[512];
	int nrestarters;
	int kills[SHOP_NSERVICES], restarts, restart_failures, exits, crashes;
	long long restart_ms_max;
	atomic_bool stop;
	bool kill; /* false: only restart daemons that exit by themselves */
	long pause_min_ms, pause_max_ms; /* between kills */
	unsigned seed;
	double big_batches; /* of more than BIG_BATCH events, seen by victims */
	double largest_bucket; /* the largest batch-size bucket a victim used */
};

/* A batch this large means a kill could land in the middle of many events'
 * transaction. */
#define BIG_BATCH "16"

/*
 * The thread of the chaos: every pause_min_ms to pause_max_ms, a random
 * daemon that is up gets SIGKILL (unless !kill) and is restarted on a
 * thread of its own; a daemon that ended by itself is restarted too. Runs
 * until stop; the caller then joins c->restarter[0..nrestarters).
 */
void *chaos_run(void *arg);

/* Stops the chaos running on `thread`, joins it and its restarters, and
 * destroys c->lock. */
void chaos_stop(struct chaos *c, pthread_t thread);

/* ------------------------------------------- infrastructure of a case's own */

/* Runs tests/infra/<what> <cmd> --dir dir (cmd may hold options), its
 * output appended to dir.log (its tail printed when it fails). Returns its
 * exit status. */
int infra(const char *what, const char *cmd, const char *dir);

/* The value of var in dir/<what>.env (caller frees), or NULL. */
char *infra_env(const char *dir, const char *what, const char *var);

/* A Kafka or PostgreSQL of a case's own, in a new temporary directory. */
struct own_infra {
	const char *what; /* "postgres" or "kafka" */
	char dir[64];
	bool started;
};

/* Starts it ("start args"): the value of var in its env file (caller frees),
 * or NULL. */
char *own_infra_start(struct own_infra *o, const char *what, const char *args, const char *var);
/* Stops it and removes its directory; keeps its log when the case failed. */
void own_infra_release(struct own_infra *o, bool failed);

/* ------------------------------------------- stalls, measured on the topics */

/* Milliseconds since the epoch, the clock of Kafka's timestamps. */
long long epoch_ms(void);

/* A topic's events as read back after a run, with the broker's timestamp
 * of each (the producer's CreateTime, or when the broker appended it if the
 * topic says LogAppendTime). */
struct topic_event {
	char key[40], type[40], id[40];
	long long ts; /* ms since the epoch */
	int partition;
};

struct topic_events {
	struct topic_event *ev;
	size_t n;
	bool complete; /* everything up to the high watermarks was read */
};

/* Reads all of topic (es_test_kafka_read_all, 60 s at most). Returns 0 or
 * -1; out is freed with topic_events_free. */
int topic_events_read(const char *servers, const char *topic, struct topic_events *out);
void topic_events_free(struct topic_events *t);

/*
 * The longest time one of the topic's first `partitions` partitions took
 * no event, counted from from_ms (or the event before, if later) to each
 * event appended in (from_ms, to_ms]: under a steady load, how long writes
 * to a partition stood still. *partition names it. Sorts t by time.
 */
long long longest_silence(struct topic_events *t, int partitions, long long from_ms,
			  long long to_ms, int *partition);

/* How long the shop took to react to orders: for each OrderPlaced on
 * `orders` stamped in [from_ms, to_ms), the time until the first event of
 * the same order on `reactions` with one of `types` (NULL-terminated; NULL
 * for any). */
struct reactions {
	int n, missing; /* orders measured; orders with no reaction */
	long long median_ms, max_ms;
};

/* Sorts reactions by order and time. */
struct reactions reactions_of(struct topic_events *orders, struct topic_events *reactions,
			      const char *const *types, long long from_ms, long long to_ms);

/* One Check tcase per case, so that CK_RUN_CASE=<name> runs one of them. */
struct fault_case {
	const char *name;
	const TTest *test;
};

/* Runs the cases as suite `suite`, one process, no forking: main's exit
 * status (77 when there is no broker or database). */
int fault_main(const char *suite, const struct fault_case *cases, size_t n);

#endif
