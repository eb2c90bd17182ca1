/*
 * Fault injection (harness.c), 4: PostgreSQL, then Kafka, stopped and
 * started again on the same port under the load (clusters of the test's
 * own, tests/infra/postgres and kafka); then the seven invariants.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "invariants.h"

/* --------------------- 4. PostgreSQL and Kafka restart under the load */

/*
 * The load (4 clients x 120 orders, one every 125 ms each: 480 in 15 s),
 * with a supervisor that restarts daemons that exit by themselves, and
 * `outage` called 4 s into it. Then quiet and the invariants.
 */
static int load_with_outage(const char *name, struct shop *shop,
			    int (*outage)(void *arg, struct load *l), void *arg, int *violations)
{
	struct load l;
	struct chaos c = {.seed = (unsigned)time(NULL), .kill = false};
	struct invariants_report rep = {0};
	struct client *clients;
	pthread_t supervisor;
	long long t0 = shop_now_ms();
	int rc;

	load_init(&l, shop, 4, 120, 125);
	c.l = &l;
	c.shop = shop;
	pthread_mutex_init(&c.lock, NULL);
	clients = load_start(&l);
	pthread_create(&supervisor, NULL, chaos_run, &c);
	sleep_ms(4000);
	rc = outage(arg, &l);
	load_join(&l, clients);
	chaos_stop(&c, supervisor);
	load_print(name, &l);
	wait_quiet(shop, 150000, &c.exits, &c.crashes);
	*violations = shop_check_invariants(shop, l.acc.ids, l.acc.n, 120000, &rep);
	print_duplicates(shop, name);
	fprintf(stderr,
		"%s: %zu accepted orders, %d on the topic (%d confirmed, %d cancelled, %d "
		"pending), %d dead letters, %d daemon exits by themselves (%d crashes), %d "
		"restarts, %d handler retries, %d error log lines, %d violation(s), %.1f s\n",
		name, l.acc.n, rep.orders, rep.confirmed, rep.cancelled, rep.pending,
		rep.dead_letters, c.exits, c.crashes, c.restarts,
		log_total(shop, "will be retried"), log_total(shop, "\"level\":\"error\""),
		*violations, secs_since(t0));
	if (c.crashes || c.restart_failures || atomic_load(&l.refused) || l.acc.n < 200)
		rc = -1;
	load_free(&l);
	return rc;
}

struct outage {
	struct own_infra *infra;
	long down_ms; /* how long it stays stopped */
	const char *var; /* the env file's variable that must not change */
	const char *value;
	bool moved; /* it came back on another address */
};

static int stop_and_start(void *arg, struct load *l)
{
	struct outage *o = arg;
	char *after;
	int rc;

	fprintf(stderr, "t+%.1fs: stopping %s\n", secs_since(l->start_ms), o->infra->what);
	if (infra(o->infra->what, "stop", o->infra->dir))
		return -1;
	sleep_ms(o->down_ms);
	fprintf(stderr, "t+%.1fs: starting %s again\n", secs_since(l->start_ms), o->infra->what);
	rc = infra(o->infra->what, "start", o->infra->dir);
	after = infra_env(o->infra->dir, o->infra->what, o->var);
	o->moved = !after || strcmp(after, o->value);
	fprintf(stderr, "t+%.1fs: %s is back on %s\n", secs_since(l->start_ms), o->infra->what,
		after ? after : "(unknown)");
	free(after);
	return rc;
}

START_TEST(postgres_restart_during_load)
{
	struct own_infra pg = {0};
	struct shop shop = {0};
	char *url = own_infra_start(&pg, "postgres", "", "DATABASE_URL");
	struct outage o = {&pg, 3000, "DATABASE_URL", url, false};
	int violations = -1, rc = -1;
	bool failed = true;

	if (!url)
		goto out;
	if (shop_init(&shop, bootstrap, url) || shop_start_all(&shop))
		goto out;
	fprintf(stderr, "postgres: shop %s on %s\n", shop.run, url);
	rc = load_with_outage("postgres", &shop, stop_and_start, &o, &violations);
	failed = rc != 0 || violations != 0 || o.moved;
out:
	release(&shop, failed);
	own_infra_release(&pg, failed);
	free(url);
	ck_assert_msg(!failed, "postgres restart: %d violation(s), rc %d%s", violations, rc,
		      o.moved ? ", it came back on another port" : "");
}
END_TEST

START_TEST(kafka_restart_during_load)
{
	struct own_infra kafka = {0};
	struct shop shop = {0};
	char *servers = own_infra_start(&kafka, "kafka", "", "KAFKA_BOOTSTRAP_SERVERS");
	struct outage o = {&kafka, 2000, "KAFKA_BOOTSTRAP_SERVERS", servers, false};
	int violations = -1, rc = -1;
	bool failed = true;

	if (!servers)
		goto out;
	if (shop_init(&shop, servers, database_url) || shop_start_all(&shop))
		goto out;
	fprintf(stderr, "kafka: shop %s on %s\n", shop.run, servers);
	rc = load_with_outage("kafka", &shop, stop_and_start, &o, &violations);
	if (o.moved)
		fprintf(stderr, "kafka: the broker came back on another port; the daemons cannot "
				"follow, so this result means nothing\n");
	failed = rc != 0 || violations != 0 || o.moved;
out:
	release(&shop, failed);
	own_infra_release(&kafka, failed);
	free(servers);
	ck_assert_msg(!failed, "kafka restart: %d violation(s), rc %d%s", violations, rc,
		      o.moved ? ", it came back on another port" : "");
}
END_TEST

int main(void)
{
	struct fault_case cases[] = {
		{"postgres_restart_during_load", postgres_restart_during_load},
		{"kafka_restart_during_load", kafka_restart_during_load},
	};

	return fault_main("fault.injection.restart", cases, sizeof(cases) / sizeof(cases[0]));
}
