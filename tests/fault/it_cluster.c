/*
 * Fault injection (harness.c), 5: the shop on a three-broker Kafka cluster
 * of the test's own (tests/infra/kafka --brokers 3: every topic on all
 * three, min.insync.replicas 2, so that acks=all means two copies) under a
 * load of 50 orders a second (about 1700 in all), while the broker leading
 * the most partitions is killed with SIGKILL, restarted, and then a
 * different one is killed (and restarted); the load goes on until 6 s
 * after that. Afterwards:
 *
 *   - every order that got a 202 is terminal and the invariants hold;
 *   - no event a producer saw acknowledged is missing: every outbox row a
 *     relay marked published (it does so only on the broker's
 *     acknowledgement) is found on its topic, read back from outside;
 *   - how long the failovers stalled the shop is printed, measured on the
 *     topics: the brokers stamp each event when they append it
 *     (log.message.timestamp.type=LogAppendTime), so the longest time a
 *     partition took no event after a kill is how long writes to it
 *     stood still (the producers' stall), and the time from an
 *     OrderPlaced to its order's end (OrderConfirmed or OrderCancelled),
 *     for the orders placed around a kill, is how long the saga's
 *     consumers and producers together were held up.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "invariants.h"

#define NODES 3
/* After a kill, how long the stall measurement looks (or until the next
 * kill, if sooner). */
#define WINDOW_MS 20000

struct failover {
	int node, led; /* the victim and how many partitions it led */
	long long kill_ms, restart_ms; /* epoch */
	double restart_s; /* start --node to ready */
};

/* The node leading the most partitions (tests/infra/kafka leader), other
 * than `not` when it leads as many as another: -1 if unknown. */
static int leader_node(const char *dir, int not, int *led)
{
	char cmd[512];
	FILE *f;
	int node = -1, n = 0;

	snprintf(cmd, sizeof(cmd), "'%s/kafka' leader --dir '%s' 2>>'%s.log'", ES_INFRA_SCRIPTS,
		 dir, dir);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%d %d", &node, &n) != 2)
		node = -1;
	pclose(f);
	if (node == not )
		node = not % NODES + 1; /* restarted nodes lead nothing yet */
	*led = n;
	return node;
}

static int kill_node(const char *dir, struct failover *f, long long t0)
{
	char cmd[64];

	f->kill_ms = epoch_ms();
	snprintf(cmd, sizeof(cmd), "kill --node %d", f->node);
	fprintf(stderr, "cluster: t+%.1fs: SIGKILL to node %d (it led %d partitions)\n",
		(double)(f->kill_ms - t0) / 1000.0, f->node, f->led);
	return infra("kafka", cmd, dir);
}

static int restart_node(const char *dir, struct failover *f, long long t0)
{
	char cmd[64];
	long long t = shop_now_ms();
	int rc;

	snprintf(cmd, sizeof(cmd), "start --node %d", f->node);
	f->restart_ms = epoch_ms();
	rc = infra("kafka", cmd, dir);
	f->restart_s = (double)(shop_now_ms() - t) / 1000.0;
	fprintf(stderr, "cluster: t+%.1fs: node %d is back (%.1f s to start)\n",
		(double)(epoch_ms() - t0) / 1000.0, f->node, f->restart_s);
	return rc;
}

/* ------------------------------------------- acknowledged means on the topic */

static int by_id(const void *a, const void *b)
{
	return strcmp(((const struct topic_event *)a)->id, ((const struct topic_event *)b)->id);
}

static bool has_id(const struct topic_events *t, const char *id)
{
	struct topic_event key;

	snprintf(key.id, sizeof(key.id), "%s", id);
	return bsearch(&key, t->ev, t->n, sizeof(*t->ev), by_id) != NULL;
}

/* The topic's events by its name in the shop (NULL for another). */
static struct topic_events *events_of(const struct shop *shop, struct topic_events *ev,
				      const char *topic)
{
	const char *names[] = {shop->topic_orders, shop->topic_payments, shop->topic_inventory,
			       shop->topic_notifications, shop->topic_shipments};

	for (int i = 0; i < 5; i++) {
		if (!strcmp(names[i], topic))
			return &ev[i];
	}
	return NULL;
}

/*
 * Every outbox row of every service that its relay marked published (only
 * after the broker's acknowledgement) must be on its topic. Prints each
 * one missing. Returns how many are missing (-1: could not look), and in
 * *checked how many were checked.
 */
static int missing_published(const struct shop *shop, struct topic_events *ev, long *checked)
{
	PGconn *db = PQconnectdb(shop->database_url);
	int missing = 0;

	*checked = 0;
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "cluster: database: %s", PQerrorMessage(db));
		PQfinish(db);
		return -1;
	}
	for (int i = 0; i < 5; i++)
		qsort(ev[i].ev, ev[i].n, sizeof(*ev[i].ev), by_id);
	for (int s = 0; s < SHOP_NSERVICES; s++) {
		char sql[300], schema[128];
		PGresult *res;

		if (s == SHOP_ANALYTICS)
			continue; /* produces nothing */
		snprintf(sql, sizeof(sql),
			 "SELECT event_id, topic FROM \"%s\".es_outbox"
			 " WHERE published_at IS NOT NULL",
			 shop_schema(shop, (enum shop_service)s, schema, sizeof(schema)));
		res = PQexec(db, sql);
		if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			fprintf(stderr, "cluster: %s: %s", shop_names[s], PQerrorMessage(db));
			PQclear(res);
			PQfinish(db);
			return -1;
		}
		for (int r = 0; r < PQntuples(res); r++) {
			const char *id = PQgetvalue(res, r, 0), *topic = PQgetvalue(res, r, 1);
			struct topic_events *t = events_of(shop, ev, topic);

			(*checked)++;
			if (!t || !has_id(t, id)) {
				if (missing++ < 20)
					fprintf(stderr,
						"cluster: %s's event %s was acknowledged but is "
						"not on %s\n",
						shop_names[s], id, topic);
			}
		}
		PQclear(res);
	}
	PQfinish(db);
	return missing;
}

/* ---------------------------------------------------------------- the case */

static void print_stall(const char *what, struct topic_events *ev, long long from, long long to)
{
	static const char *const ends[] = {"OrderConfirmed", "OrderCancelled", NULL};
	static const char *const names[] = {"orders", "payments", "inventory"};
	static const int parts[] = {6, 6, 6};
	long long worst = 0;
	int worst_topic = 0, worst_part = 0;
	struct reactions done;

	/* The saga's three busy topics: the other two see an event only now
	 * and then, so their silences say little. */
	for (int i = 0; i < 3; i++) {
		int p = 0;
		long long g = longest_silence(&ev[i], parts[i], from, to, &p);

		if (g > worst) {
			worst = g;
			worst_topic = i;
			worst_part = p;
		}
	}
	done = reactions_of(&ev[0], &ev[0], ends, from, to);
	fprintf(stderr,
		"cluster: %s: longest a partition took no event %.1f s (%s/%d); orders placed: "
		"%d, their end after %.2f s at the median, %.1f s at the slowest\n",
		what, (double)worst / 1000.0, names[worst_topic], worst_part, done.n,
		(double)done.median_ms / 1000.0, (double)done.max_ms / 1000.0);
}

START_TEST(brokers_killed_during_load)
{
	struct own_infra kafka = {0};
	struct shop shop = {0};
	char *servers = own_infra_start(
		&kafka, "kafka", "--brokers 3 --set log.message.timestamp.type=LogAppendTime",
		"KAFKA_BOOTSTRAP_SERVERS");
	struct failover f[2] = {{0}};
	struct topic_events ev[5] = {{0}};
	struct load l = {0};
	struct chaos c = {.seed = (unsigned)time(NULL), .kill = false};
	struct invariants_report rep = {0};
	struct client *clients;
	pthread_t supervisor;
	long long t0 = 0, end_ms;
	long checked = 0;
	int violations = -1, missing = -1, rc = 0;
	bool failed = true, loaded = false;

	if (!servers)
		goto out;
	if (shop_init(&shop, servers, database_url) || shop_start_all(&shop))
		goto out;
	fprintf(stderr, "cluster: shop %s on %s\n", shop.run, servers);

	/* 4 clients, one order every 80 ms each, until told to stop (about 35 s
	 * on an idle machine, 1700 orders; at most 5000 in 100 s). */
	load_init(&l, &shop, 4, 1250, 80);
	loaded = true;
	c.l = &l;
	c.shop = &shop;
	pthread_mutex_init(&c.lock, NULL);
	t0 = epoch_ms();
	clients = load_start(&l);
	pthread_create(&supervisor, NULL, chaos_run, &c);

	/* 1: the broker leading the most partitions, down for 6 s. */
	sleep_ms(6000);
	f[0].node = leader_node(kafka.dir, 0, &f[0].led);
	rc |= f[0].node < 1 || kill_node(kafka.dir, &f[0], t0);
	sleep_ms(6000);
	rc |= restart_node(kafka.dir, &f[0], t0);
	/* 2: once it is back, another one, for 6 s. */
	sleep_ms(3000);
	f[1].node = leader_node(kafka.dir, f[0].node, &f[1].led);
	rc |= f[1].node < 1 || f[1].node == f[0].node || kill_node(kafka.dir, &f[1], t0);
	sleep_ms(6000);
	rc |= restart_node(kafka.dir, &f[1], t0);
	sleep_ms(6000);

	atomic_store(&l.stop, true);
	load_join(&l, clients);
	chaos_stop(&c, supervisor);
	load_print("cluster", &l);
	end_ms = epoch_ms();

	wait_quiet(&shop, 150000, &c.exits, &c.crashes);
	violations = shop_check_invariants(&shop, l.acc.ids, l.acc.n, 120000, &rep);
	print_duplicates(&shop, "cluster");

	/* What the brokers hold, read from outside. */
	{
		const char *topics[] = {shop.topic_orders, shop.topic_payments,
					shop.topic_inventory, shop.topic_notifications,
					shop.topic_shipments};

		for (int i = 0; i < 5; i++) {
			if (topic_events_read(servers, topics[i], &ev[i]) || !ev[i].complete) {
				fprintf(stderr, "cluster: could not read all of %s\n", topics[i]);
				rc = -1;
			}
		}
	}
	print_stall("before the first kill", ev, t0, f[0].kill_ms);
	for (int k = 0; k < 2; k++) {
		char what[96];
		long long to = f[k].kill_ms + WINDOW_MS;

		if (k == 0 && to > f[1].kill_ms)
			to = f[1].kill_ms;
		if (to > end_ms)
			to = end_ms;
		snprintf(what, sizeof(what), "failover %d (node %d killed at t+%.1fs)", k + 1,
			 f[k].node, (double)(f[k].kill_ms - t0) / 1000.0);
		print_stall(what, ev, f[k].kill_ms, to);
	}
	missing = missing_published(&shop, ev, &checked);
	fprintf(stderr,
		"cluster: %ld published outbox rows checked against the topics: %d missing\n",
		checked, missing);
	fprintf(stderr,
		"cluster: %zu accepted orders, %d on the topic (%d confirmed, %d cancelled, %d "
		"pending), %d dead letters, %d daemon exits by themselves (%d crashes), %d "
		"restarts, %d handler retries, %d violation(s), %.1f s\n",
		l.acc.n, rep.orders, rep.confirmed, rep.cancelled, rep.pending, rep.dead_letters,
		c.exits, c.crashes, c.restarts, log_total(&shop, "will be retried"), violations,
		(double)(epoch_ms() - t0) / 1000.0);
	failed = rc != 0 || violations != 0 || missing != 0 || checked == 0 || c.crashes ||
		 c.restart_failures || atomic_load(&l.refused) || l.acc.n < 1000;
out:
	for (int i = 0; i < 5; i++)
		topic_events_free(&ev[i]);
	release(&shop, failed);
	own_infra_release(&kafka, failed);
	if (loaded)
		load_free(&l);
	free(servers);
	ck_assert_msg(!failed,
		      "cluster: rc %d, %d violation(s), %d acknowledged event(s) missing of %ld, "
		      "%d crash(es)",
		      rc, violations, missing, checked, c.crashes);
}
END_TEST

int main(void)
{
	struct fault_case cases[] = {
		{"brokers_killed_during_load", brokers_killed_during_load},
	};

	return fault_main("fault.injection.cluster", cases, sizeof(cases) / sizeof(cases[0]));
}
