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

/* One Check tcase per case, so that CK_RUN_CASE=<name> runs one of them. */
struct fault_case {
	const char *name;
	const TTest *test;
};

/* Runs the cases as suite `suite`, one process, no forking: main's exit
 * status (77 when there is no broker or database). */
int fault_main(const char *suite, const struct fault_case *cases, size_t n);

#endif
