/*
 * Fault injection (harness.c), 1: random daemons killed with SIGKILL and
 * restarted every 2-4 s under a load of 1500 orders, while they apply
 * batches of many events; then the seven invariants.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "harness.h"
#include "invariants.h"

/* ------------------------------------------- 1. kill -9 during the load */

START_TEST(kill_9_random_daemons_during_load)
{
	struct shop shop;
	struct load l;
	struct chaos c = {.seed = (unsigned)time(NULL),
			  .kill = true,
			  .pause_min_ms = 2000,
			  .pause_max_ms = 4000};
	struct invariants_report rep = {0};
	struct client *clients;
	pthread_t chaos_thread;
	long long t0 = shop_now_ms();
	int violations = -1, kills = 0, duplicates;
	bool failed = true;

	if (start_shop(&shop))
		goto out;
	/* 4 clients x 375 orders, one every 107 ms each: ~1500 in ~40 s. */
	load_init(&l, &shop, 4, 375, 107);
	c.l = &l;
	c.shop = &shop;
	pthread_mutex_init(&c.lock, NULL);
	/* To replay a run's choice of victims, or to try harder by hand. */
	if (getenv("FAULT_SEED"))
		c.seed = (unsigned)strtoul(getenv("FAULT_SEED"), NULL, 10);
	if (getenv("FAULT_KILL_PAUSE_MS") &&
	    sscanf(getenv("FAULT_KILL_PAUSE_MS"), "%ld-%ld", &c.pause_min_ms, &c.pause_max_ms) != 2)
		c.pause_max_ms = c.pause_min_ms;
	if (c.pause_min_ms < 100 || c.pause_max_ms < c.pause_min_ms)
		c.pause_min_ms = c.pause_max_ms = 2000;
	fprintf(stderr, "kill_9: chaos seed %u (FAULT_SEED), a kill every %ld-%ld ms\n", c.seed,
		c.pause_min_ms, c.pause_max_ms);
	clients = load_start(&l);
	pthread_create(&chaos_thread, NULL, chaos_run, &c);
	load_join(&l, clients);
	chaos_stop(&c, chaos_thread);
	load_print("kill_9", &l);
	for (int s = 0; s < SHOP_NSERVICES; s++)
		kills += c.kills[s];
	fprintf(stderr,
		"kill_9: %d SIGKILLs (order %d, payment %d, inventory %d, email %d, analytics "
		"%d, shipping %d), %d restarts (longest kill-to-ready %.1f s), %d restart "
		"failures, %d exits "
		"by themselves (%d crashes)\n",
		kills, c.kills[SHOP_ORDER], c.kills[SHOP_PAYMENT], c.kills[SHOP_INVENTORY],
		c.kills[SHOP_EMAIL], c.kills[SHOP_ANALYTICS], c.kills[SHOP_SHIPPING], c.restarts,
		(double)c.restart_ms_max / 1000.0, c.restart_failures, c.exits, c.crashes);
	fprintf(stderr,
		"kill_9: the victims had applied %.0f batches of more than " BIG_BATCH
		" events before their kill, the largest up to %.0f events\n",
		c.big_batches, c.largest_bucket);

	wait_quiet(&shop, 150000, &c.exits, &c.crashes);
	violations = shop_check_invariants(&shop, l.acc.ids, l.acc.n, 120000, &rep);
	duplicates = print_duplicates(&shop, "kill_9");
	fprintf(stderr,
		"kill_9: %zu accepted orders checked, %d orders on the topic (%d confirmed, %d "
		"cancelled, %d pending), %d dead letters, %d duplicates suppressed, %d "
		"handler retries, %d error log lines, %d violation(s), %.1f s\n",
		l.acc.n, rep.orders, rep.confirmed, rep.cancelled, rep.pending, rep.dead_letters,
		duplicates, log_total(&shop, "will be retried"),
		log_total(&shop, "\"level\":\"error\""), violations, secs_since(t0));
	/* Without batches of many events, the kills would not have tested
	 * what a kill in the middle of one does. */
	failed = violations != 0 || c.crashes || c.restart_failures || kills < 8 || l.acc.n < 750 ||
		 atomic_load(&l.refused) || c.big_batches < 1;
out:
	release(&shop, failed);
	if (c.l)
		load_free(&l);
	ck_assert_msg(!failed,
		      "kill_9: %d violation(s), %d crash(es), %d restart failure(s), %d kills, "
		      "%zu accepted",
		      violations, c.crashes, c.restart_failures, kills, c.l ? l.acc.n : 0);
}
END_TEST

int main(void)
{
	struct fault_case cases[] = {
		{"kill_9_random_daemons_during_load", kill_9_random_daemons_during_load},
	};

	return fault_main("fault.injection.kill", cases, sizeof(cases) / sizeof(cases[0]));
}
