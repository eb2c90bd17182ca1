/*
 * Fault injection (harness.c), 6: static group membership. Under a light
 * load, payment-service is killed with SIGKILL and started again at once,
 * first as a dynamic member of its group, then as a static one (its
 * INSTANCE_ID, es_service_instance_id). Its /readyz answers 200 only once
 * it holds partitions again, so the time from the kill to ready is how long
 * its partitions stood still; the slowest reaction to an order placed
 * around the kill (OrderPlaced to the payment event, on the topics) shows
 * the same from outside.
 *
 * A dynamic member that comes back is a stranger to the group: the group
 * coordinator waits for the dead member's session to expire (10 s,
 * ES_CONSUMER_SESSION_TIMEOUT_MS) before it rebalances. A static member
 * that comes back under its id within the session timeout is given its
 * partitions back at once, without a rebalance. The case fails if the
 * static restart is not faster, or if the invariants do not hold.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "invariants.h"

struct restart {
	long long kill_ms; /* epoch */
	double ready_s; /* from the kill to /readyz 200 */
	struct reactions r;
};

/* SIGKILL to payment-service, then started again at once. */
static int kill_and_restart(struct shop *shop, struct restart *r, const char *what)
{
	long long t;
	int rc;

	r->kill_ms = epoch_ms();
	t = shop_now_ms();
	rc = shop_signal(shop, SHOP_PAYMENT, 0, SIGKILL);
	rc |= shop_start(shop, SHOP_PAYMENT, 0);
	r->ready_s = (double)(shop_now_ms() - t) / 1000.0;
	fprintf(stderr,
		"static: payment-service as a %s member: SIGKILL, restarted, ready %.1f s after "
		"the kill\n",
		what, r->ready_s);
	return rc;
}

START_TEST(restart_after_kill_with_and_without_static_membership)
{
	struct shop shop = {0};
	struct load l = {0};
	struct invariants_report rep = {0};
	struct restart dyn = {0}, stat = {0};
	struct topic_events orders = {0}, payments = {0};
	struct client *clients = NULL;
	char id[128];
	int violations = -1, rc = -1, exits = 0, crashes = 0;
	bool failed = true, loaded = false;

	unsetenv("INSTANCE_ID");
	if (start_shop(&shop))
		goto out;
	/* 2 clients, one order every 100 ms each, until told to stop. */
	load_init(&l, &shop, 2, 1000, 100);
	loaded = true;
	clients = load_start(&l);
	sleep_ms(4000);

	/* Dynamic (the tests' default: their daemons have HTTP_PORT=0). */
	rc = kill_and_restart(&shop, &dyn, "dynamic");
	sleep_ms(4000);
	/* Static: a SIGTERM (a dynamic member leaves at once), then a start
	 * with an id, then the kill and a start under the same id. */
	snprintf(id, sizeof(id), "%s.payment-service.0", shop.run);
	setenv("INSTANCE_ID", id, 1);
	rc |= shop_signal(&shop, SHOP_PAYMENT, 0, SIGTERM);
	rc |= shop_start(&shop, SHOP_PAYMENT, 0);
	sleep_ms(4000);
	rc |= kill_and_restart(&shop, &stat, "static");
	sleep_ms(4000);
	unsetenv("INSTANCE_ID");
	atomic_store(&l.stop, true);
	load_join(&l, clients);
	load_print("static", &l);

	wait_quiet(&shop, 120000, &exits, &crashes);
	violations = shop_check_invariants(&shop, l.acc.ids, l.acc.n, 120000, &rep);
	if (topic_events_read(shop.bootstrap, shop.topic_orders, &orders) ||
	    topic_events_read(shop.bootstrap, shop.topic_payments, &payments))
		rc = -1;
	/* The orders placed from 1 s before each kill to 2 s after it. */
	dyn.r = reactions_of(&orders, &payments, NULL, dyn.kill_ms - 1000, dyn.kill_ms + 2000);
	stat.r = reactions_of(&orders, &payments, NULL, stat.kill_ms - 1000, stat.kill_ms + 2000);
	fprintf(stderr,
		"static: SIGKILL and restart of payment-service: ready after %.1f s as a dynamic "
		"member, %.1f s as a static one; orders placed around the kill paid after %.1f s "
		"(dynamic) and %.1f s (static) at the slowest, %.2f s and %.2f s at the median\n",
		dyn.ready_s, stat.ready_s, (double)dyn.r.max_ms / 1000.0,
		(double)stat.r.max_ms / 1000.0, (double)dyn.r.median_ms / 1000.0,
		(double)stat.r.median_ms / 1000.0);
	fprintf(stderr,
		"static: %zu accepted orders (%d confirmed, %d cancelled), %d violation(s)\n",
		l.acc.n, rep.confirmed, rep.cancelled, violations);
	failed = rc != 0 || violations != 0 || crashes || stat.ready_s >= dyn.ready_s ||
		 atomic_load(&l.refused);
out:
	unsetenv("INSTANCE_ID");
	topic_events_free(&orders);
	topic_events_free(&payments);
	release(&shop, failed);
	if (loaded)
		load_free(&l);
	ck_assert_msg(!failed,
		      "static membership: rc %d, %d violation(s), ready after %.1f s (dynamic) and "
		      "%.1f s (static)",
		      rc, violations, dyn.ready_s, stat.ready_s);
}
END_TEST

int main(void)
{
	struct fault_case cases[] = {
		{"restart_after_kill_with_and_without_static_membership",
		 restart_after_kill_with_and_without_static_membership},
	};

	return fault_main("fault.injection.static", cases, sizeof(cases) / sizeof(cases[0]));
}
