/*
 * Fault injection: the five daemons as separate processes on the real
 * broker and the real database (tests/e2e/shop.c), under a steady load of
 * orders, while
 *
 *   1. random daemons are killed with SIGKILL and restarted every 2-4 s;
 *   2. garbage bytes and well-formed CloudEvents that break the schema are
 *      published to all four topics;
 *   3. payment-service and inventory-service re-read the whole orders topic
 *      (their committed offsets reset to the beginning);
 *   4. PostgreSQL, then Kafka, is stopped and started again on the same
 *      port (clusters of the test's own, tests/infra/postgres and kafka);
 *
 * and afterwards the contract's seven invariants must hold
 * (tests/e2e/invariants.c). Every case makes a fresh shop of its own and
 * prints what happened (orders, kills, restarts, dead letters, duplicates
 * the inboxes suppressed) on stderr; a failed case keeps the daemons' logs.
 * One tcase per case, so that CK_RUN_CASE=<name> runs one of them.
 *
 * The daemons run with their default session timeout
 * (ES_CONSUMER_SESSION_TIMEOUT_MS, 10 s), as a user's would: a restarted
 * instance gets partitions only once the killed one's session expired, and
 * that stall must stay under the saga timeout.
 */
#include <check.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "es/envelope.h"
#include "es/events.h"
#include "es/kafka.h"
#include "es/log.h"
#include "invariants.h"
#include "shop.h"
#include "testkafka.h"
#include "testsupport.h"

/* shop_init makes orders, payments and inventory with 6 partitions. */
#define TOPIC_PARTITIONS 6

static const char *bootstrap, *database_url;

static void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

static double secs_since(long long t0)
{
	return (double)(shop_now_ms() - t0) / 1000.0;
}

/* Keeps the shop's directory (logs, maildir) when a case failed. */
static void release(struct shop *shop, bool failed)
{
	if (failed) {
		setenv("ES_KEEP_SHOP", "1", 1);
		fprintf(stderr, "the daemons' logs are kept in %s\n", shop->dir);
	}
	shop_release(shop);
	if (failed)
		unsetenv("ES_KEEP_SHOP");
}

/* ------------------------------------------------------------ accepted ids */

struct accepted {
	pthread_mutex_t lock;
	char (*ids)[37];
	size_t n, cap;
};

static void accepted_add(struct accepted *a, const char *id)
{
	pthread_mutex_lock(&a->lock);
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 256;
		char(*grown)[37] = realloc(a->ids, cap * sizeof(*grown));

		if (!grown)
			abort();
		a->ids = grown;
		a->cap = cap;
	}
	snprintf(a->ids[a->n++], 37, "%s", id);
	pthread_mutex_unlock(&a->lock);
}

/* Copies the id accepted last into out (""): false when there is none. */
static bool accepted_last(struct accepted *a, char *out)
{
	bool found;

	pthread_mutex_lock(&a->lock);
	found = a->n > 0;
	snprintf(out, 37, "%s", found ? a->ids[a->n - 1] : "");
	pthread_mutex_unlock(&a->lock);
	return found;
}

/* ---------------------------------------------------------------- the load */

/*
 * `threads` clients each place `per_thread` orders, one every `period_ms`
 * (on a schedule: a client that fell behind catches up). Each order has an
 * Idempotency-Key of its own, and a POST that got no answer (connection
 * refused or reset, 5xx, 409 while the first try is still in flight) is
 * sent again with the same key, up to POST_TRIES times 300 ms apart: a 202
 * on any try is an accepted order (and never a second one); an order that
 * never got its 202 is not counted (it may still exist, when only the answer
 * was lost: the invariants cover every order on the topic anyway).
 */
#define POST_TRIES 6

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

struct client {
	struct load *l;
	int t;
	pthread_t thread;
};

static const char *const skus[] = {"mug-classic", "tshirt-kafka", "hoodie-eda", "sticker-pack",
				   "poster-limited"};

/* A random order: 1-3 distinct lines of quantity 1-3, poster-limited in
 * about one line of ten, and 60 % tok_visa, 20 % tok_declined, 20 %
 * tok_insufficient_funds. */
static void order_body(unsigned *seed, int t, char *buf, size_t size)
{
	int r = rand_r(seed) % 10;
	const char *token = r < 6 ? "tok_visa" : r < 8 ? "tok_declined" : "tok_insufficient_funds";
	int lines = 1 + rand_r(seed) % 3;
	bool used[5] = {false};
	size_t len;

	len = (size_t)snprintf(buf, size,
			       "{\"customerId\":\"c-fault-%d\",\"customerEmail\":\"buyer%d@example."
			       "com\",\"paymentToken\":\"%s\",\"items\":[",
			       t, t, token);
	for (int i = 0; i < lines; i++) {
		int s;

		do {
			s = rand_r(seed) % 10 == 0 ? 4 : rand_r(seed) % 4;
		} while (used[s]);
		used[s] = true;
		len += (size_t)snprintf(buf + len, size - len, "%s{\"sku\":\"%s\",\"quantity\":%d}",
					i ? "," : "", skus[s], 1 + rand_r(seed) % 3);
	}
	snprintf(buf + len, size - len, "]}");
}

/* POST /orders until it is answered for good. Returns the last status. */
static long post_order(struct load *l, const char *body, const char *key, char *id, int *tries)
{
	char url[64], hdr[200];
	const char *headers[] = {"Content-Type: application/json", hdr, NULL};
	long status = 0;

	snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", key);
	for (*tries = 1; *tries <= POST_TRIES; ++*tries) {
		json_t *reply = NULL;

		if (*tries > 1)
			sleep_ms(300);
		snprintf(url, sizeof(url), "http://127.0.0.1:%u/orders",
			 atomic_load(&l->order_port));
		atomic_fetch_add(&l->posts, 1);
		status = shop_http("POST", url, body, headers, &reply);
		if (status == 202) {
			snprintf(id, 37, "%s",
				 json_string_value(json_object_get(reply, "orderId")));
			json_decref(reply);
			return status;
		}
		json_decref(reply);
		if (status != 0 && status != 409 && status < 500)
			return status; /* a client error: trying again changes nothing */
	}
	*tries = POST_TRIES;
	return status;
}

static void *client_run(void *arg)
{
	struct client *c = arg;
	struct load *l = c->l;
	unsigned seed = (unsigned)(l->start_ms * 7919 + c->t);

	for (int k = 0; k < l->per_thread; k++) {
		long long due = l->start_ms + (long long)k * l->period_ms;
		char body[512], key[96], id[37];
		long status;
		int tries;

		if (due > shop_now_ms())
			sleep_ms((long)(due - shop_now_ms()));
		order_body(&seed, c->t, body, sizeof(body));
		snprintf(key, sizeof(key), "%s-%d-%d", l->shop->run, c->t, k);
		atomic_fetch_add(&l->attempted, 1);
		status = post_order(l, body, key, id, &tries);
		if (status == 202) {
			accepted_add(&l->acc, id);
			atomic_fetch_add(&l->ok, 1);
			if (tries > 1)
				atomic_fetch_add(&l->ok_after_retry, 1);
		} else if (status == 0 || status == 409 || status >= 500) {
			atomic_fetch_add(&l->not_accepted, 1);
		} else {
			fprintf(stderr, "POST /orders answered %ld to %s\n", status, body);
			atomic_fetch_add(&l->refused, 1);
		}
	}
	atomic_fetch_sub(&l->running, 1);
	return NULL;
}

static void load_init(struct load *l, struct shop *shop, int threads, int per_thread,
		      long period_ms)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->acc.lock, NULL);
	l->shop = shop;
	l->threads = threads;
	l->per_thread = per_thread;
	l->period_ms = period_ms;
	atomic_store(&l->order_port, shop->port[SHOP_ORDER][0]);
}

static struct client *load_start(struct load *l)
{
	struct client *c = calloc((size_t)l->threads, sizeof(*c));

	l->start_ms = shop_now_ms();
	atomic_store(&l->running, l->threads);
	for (int t = 0; t < l->threads; t++) {
		c[t] = (struct client){.l = l, .t = t};
		pthread_create(&c[t].thread, NULL, client_run, &c[t]);
	}
	return c;
}

static void load_join(struct load *l, struct client *c)
{
	for (int t = 0; t < l->threads; t++)
		pthread_join(c[t].thread, NULL);
	free(c);
}

static void load_free(struct load *l)
{
	free(l->acc.ids);
	pthread_mutex_destroy(&l->acc.lock);
}

static void load_print(const char *name, struct load *l)
{
	fprintf(stderr,
		"%s: %d orders attempted in %.1f s (%d POSTs): %d accepted (%d after a retry), "
		"%d not accepted (order-service down), %d refused\n",
		name, atomic_load(&l->attempted), secs_since(l->start_ms), atomic_load(&l->posts),
		atomic_load(&l->ok), atomic_load(&l->ok_after_retry), atomic_load(&l->not_accepted),
		atomic_load(&l->refused));
}

/* ------------------------------------------------------- watching daemons */

/* The sum of every sample of `family` on instance 0's /metrics, or -1 when
 * the daemon does not answer. */
static double metric_sum(const struct shop *shop, enum shop_service s, const char *family)
{
	char url[160];
	char *text = NULL;
	size_t len = strlen(family);
	double sum = -1;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", shop->port[s][0]);
	if (shop_get_text(url, &text) == 200 && text) {
		sum = 0;
		for (char *line = text; line && *line; line = strchr(line, '\n')) {
			char *value;

			line += *line == '\n';
			if (strncmp(line, family, len) || (line[len] != '{' && line[len] != ' '))
				continue;
			value = line[len] == '{' ? strchr(line, '}') : line + len;
			if (value)
				sum += strtod(value + 1, NULL);
		}
	}
	free(text);
	return sum;
}

/* Lines of a service's logs (all instances, all restarts) holding needle. */
static int log_count(const struct shop *shop, enum shop_service s, const char *needle)
{
	int n = 0;

	for (int i = 0; i < SHOP_MAX_INSTANCES; i++) {
		char path[400], line[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s.%d.log", shop->dir, shop_names[s], i);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			n += strstr(line, needle) != NULL;
		fclose(f);
	}
	return n;
}

static int log_total(const struct shop *shop, const char *needle)
{
	int n = 0;

	for (int s = 0; s < SHOP_NSERVICES; s++)
		n += log_count(shop, (enum shop_service)s, needle);
	return n;
}

/* Prints the last lines of a service's log that hold needle. */
static void log_grep(const struct shop *shop, enum shop_service s, const char *needle, int max)
{
	char path[400], line[4096];
	int total = log_count(shop, s, needle), seen = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.0.log", shop->dir, shop_names[s]);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, needle) && ++seen > total - max)
			fprintf(stderr, "  %s: %s", shop_names[s], line);
	}
	fclose(f);
}

/*
 * A daemon that exited by itself (not killed by us) is restarted, as a
 * supervisor would: crash-only is the design (a fatal producer error makes
 * the daemon exit non-zero). A daemon killed by a signal we did not send
 * is a crash, which *crashes counts.
 */
static void supervise(struct shop *shop, enum shop_service s, int *exits, int *crashes)
{
	pid_t pid = shop->pid[s][0];
	int status;

	if (!pid || waitpid(pid, &status, WNOHANG) != pid)
		return;
	shop->pid[s][0] = 0;
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "CRASH: %s (pid %d) died of signal %d\n", shop_names[s], (int)pid,
			WTERMSIG(status));
		(*crashes)++;
	} else {
		fprintf(stderr, "%s (pid %d) exited by itself with status %d; restarting it\n",
			shop_names[s], (int)pid, WEXITSTATUS(status));
	}
	log_grep(shop, s, "\"level\":\"error\"", 5);
	(*exits)++;
	if (shop_start(shop, s, 0))
		fprintf(stderr, "%s could not be restarted\n", shop_names[s]);
}

/* PENDING orders order-service lists (at most 100), -1 when it does not
 * answer. */
static int pending_orders(const struct shop *shop)
{
	char url[160];
	json_t *body = NULL;
	int n = -1;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/orders?status=PENDING&limit=100",
		 shop->port[SHOP_ORDER][0]);
	if (shop_http("GET", url, NULL, NULL, &body) == 200)
		n = (int)json_array_size(json_object_get(body, "orders"));
	json_decref(body);
	return n;
}

/*
 * Waits until the shop is quiet: no PENDING order, every outbox published,
 * and no daemon consumed anything for the last second. Restarts daemons
 * that exited meanwhile. Returns 0, or -1 when timeout_ms passed.
 */
static int wait_quiet(struct shop *shop, int timeout_ms, int *exits, int *crashes)
{
	long long start = shop_now_ms(), deadline = start + timeout_ms;
	double last = -2;
	int pending = -1;
	double backlog = -1;

	while (shop_now_ms() < deadline) {
		double consumed = 0;

		backlog = 0;
		for (int s = 0; s < SHOP_NSERVICES; s++) {
			double c, b;

			supervise(shop, (enum shop_service)s, exits, crashes);
			c = metric_sum(shop, (enum shop_service)s, "es_events_consumed_total");
			b = metric_sum(shop, (enum shop_service)s, "es_outbox_backlog");
			consumed = c < 0 || consumed < 0 ? -1 : consumed + c;
			backlog = b < 0 || backlog < 0 ? -1 : backlog + b;
		}
		pending = pending_orders(shop);
		if (pending == 0 && backlog == 0 && consumed >= 0 && consumed == last) {
			fprintf(stderr, "quiet after %.1f s\n", secs_since(start));
			return 0;
		}
		last = consumed;
		sleep_ms(1000);
	}
	fprintf(stderr, "not quiet after %.1f s: %d pending orders, outbox backlog %.0f\n",
		secs_since(start), pending, backlog);
	return -1;
}

/* Duplicates the inboxes suppressed, per service and in total. */
static int print_duplicates(const struct shop *shop, const char *name)
{
	int total = 0;

	fprintf(stderr, "%s: duplicates suppressed by the inboxes (\"already processed\"):", name);
	for (int s = 0; s < SHOP_NSERVICES; s++) {
		int n = log_count(shop, (enum shop_service)s, "already processed");

		fprintf(stderr, " %s %d", shop_names[s], n);
		total += n;
	}
	fprintf(stderr, "; total %d\n", total);
	return total;
}

static int start_shop(struct shop *shop)
{
	long long t0 = shop_now_ms();

	if (shop_init(shop, bootstrap, database_url) || shop_start_all(shop))
		return -1;
	fprintf(stderr, "shop %s started in %.1f s (logs in %s)\n", shop->run, secs_since(t0),
		shop->dir);
	return 0;
}

/* ------------------------------------------- 1. kill -9 during the load */

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

struct restart {
	struct chaos *c;
	enum shop_service s;
	long long killed_ms;
};

static void *restart_run(void *arg)
{
	struct restart *r = arg;
	struct chaos *c = r->c;
	bool ok = false;

	for (int attempt = 0; attempt < 3 && !ok; attempt++)
		ok = shop_start(c->shop, r->s, 0) == 0;
	pthread_mutex_lock(&c->lock);
	if (ok) {
		long long took = shop_now_ms() - r->killed_ms;

		c->restarts++;
		c->down[r->s] = false;
		if (took > c->restart_ms_max)
			c->restart_ms_max = took;
		if (r->s == SHOP_ORDER)
			atomic_store(&c->l->order_port, c->shop->port[SHOP_ORDER][0]);
		fprintf(stderr, "t+%.1fs: %s is back (pid %d) after %.1f s\n",
			secs_since(c->l->start_ms), shop_names[r->s], (int)c->shop->pid[r->s][0],
			(double)took / 1000.0);
	} else {
		c->restart_failures++;
		fprintf(stderr, "t+%.1fs: %s could not be restarted\n", secs_since(c->l->start_ms),
			shop_names[r->s]);
	}
	pthread_mutex_unlock(&c->lock);
	free(r);
	return NULL;
}

/* Called with c->lock held and c->down[s] just set. */
static void spawn_restart(struct chaos *c, enum shop_service s)
{
	struct restart *r = malloc(sizeof(*r));

	*r = (struct restart){c, s, shop_now_ms()};
	if (c->nrestarters == (int)(sizeof(c->restarter) / sizeof(c->restarter[0])) ||
	    pthread_create(&c->restarter[c->nrestarters], NULL, restart_run, r)) {
		free(r);
		c->restart_failures++;
		return;
	}
	c->nrestarters++;
}

/* How many batches of more than BIG_BATCH events the daemon applied since
 * it started (es_consumer_batch_size), added up before it is killed. */
static void note_batches(struct chaos *c, enum shop_service s)
{
	static const char *const bounds[] = {"1024", "512", "256", "128", "64", "32", BIG_BATCH};
	double all = metric_sum(c->shop, s, "es_consumer_batch_size_count");
	double small = metric_sum(c->shop, s,
				  "es_consumer_batch_size_bucket{le=\"" BIG_BATCH "\"}");

	if (all < 0 || small < 0)
		return;
	c->big_batches += all - small;
	/* The largest bucket below which not every batch fell. */
	for (size_t i = 0; i + 1 < sizeof(bounds) / sizeof(bounds[0]); i++) {
		char family[96];
		double below;

		snprintf(family, sizeof(family), "es_consumer_batch_size_bucket{le=\"%s\"}",
			 bounds[i + 1]);
		below = metric_sum(c->shop, s, family);
		if (below >= 0 && below < all) {
			double bound = strtod(bounds[i], NULL);

			if (bound > c->largest_bucket)
				c->largest_bucket = bound;
			break;
		}
	}
}

static void *chaos_run(void *arg)
{
	struct chaos *c = arg;

	while (!atomic_load(&c->stop)) {
		long pause = !c->kill ? 500
				      : c->pause_min_ms + rand_r(&c->seed) % (c->pause_max_ms -
									      c->pause_min_ms + 1);
		enum shop_service up[SHOP_NSERVICES], victim;
		int nup = 0;
		pid_t pid;

		for (long slept = 0; slept < pause && !atomic_load(&c->stop); slept += 100)
			sleep_ms(100);
		if (atomic_load(&c->stop))
			break;
		pthread_mutex_lock(&c->lock);
		for (int s = 0; s < SHOP_NSERVICES; s++) {
			int status;

			if (c->down[s])
				continue;
			/* A daemon that died by itself meanwhile. */
			pid = c->shop->pid[s][0];
			if (pid && waitpid(pid, &status, WNOHANG) == pid) {
				c->shop->pid[s][0] = 0;
				c->exits++;
				if (WIFSIGNALED(status))
					c->crashes++;
				fprintf(stderr, "%s%s (pid %d) ended by itself (status %d)\n",
					WIFSIGNALED(status) ? "CRASH: " : "", shop_names[s],
					(int)pid, status);
				c->down[s] = true;
				spawn_restart(c, (enum shop_service)s);
				continue;
			}
			up[nup++] = (enum shop_service)s;
		}
		if (!nup || !c->kill) {
			pthread_mutex_unlock(&c->lock);
			continue;
		}
		victim = up[rand_r(&c->seed) % nup];
		c->down[victim] = true;
		pid = c->shop->pid[victim][0];
		note_batches(c, victim);
		shop_signal(c->shop, victim, 0, SIGKILL);
		c->kills[victim]++;
		fprintf(stderr, "t+%.1fs: SIGKILL %s (pid %d)\n", secs_since(c->l->start_ms),
			shop_names[victim], (int)pid);
		spawn_restart(c, victim);
		pthread_mutex_unlock(&c->lock);
	}
	return NULL;
}

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
	atomic_store(&c.stop, true);
	pthread_join(chaos_thread, NULL);
	for (int i = 0; i < c.nrestarters; i++)
		pthread_join(c.restarter[i], NULL);
	pthread_mutex_destroy(&c.lock);
	load_print("kill_9", &l);
	for (int s = 0; s < SHOP_NSERVICES; s++)
		kills += c.kills[s];
	fprintf(stderr,
		"kill_9: %d SIGKILLs (order %d, payment %d, inventory %d, email %d, analytics "
		"%d), %d restarts (longest kill-to-ready %.1f s), %d restart failures, %d exits "
		"by themselves (%d crashes)\n",
		kills, c.kills[SHOP_ORDER], c.kills[SHOP_PAYMENT], c.kills[SHOP_INVENTORY],
		c.kills[SHOP_EMAIL], c.kills[SHOP_ANALYTICS], c.restarts,
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

/* ------------------- 2. garbage and schema violations during the load */

#define BY(s) (1u << (s))
/* Who consumes each topic (README: services, topics and events). */
#define READS_ORDERS (BY(SHOP_PAYMENT) | BY(SHOP_INVENTORY) | BY(SHOP_EMAIL) | BY(SHOP_ANALYTICS))
#define READS_PAYMENTS (BY(SHOP_ORDER) | BY(SHOP_EMAIL) | BY(SHOP_ANALYTICS))
#define READS_INVENTORY (BY(SHOP_ORDER) | BY(SHOP_ANALYTICS))
#define READS_NOTIFICATIONS (BY(SHOP_ANALYTICS))

struct injected {
	const char *topic;
	char key[40];
	char *value; /* NULL: a message without a value */
	size_t len;
	unsigned expect; /* BY(service) of every service that must dead-letter it */
	unsigned found; /* BY(service) of the dead letters seen */
	char what[64];
};

struct injector {
	struct load *l;
	struct shop *shop;
	struct es_producer *p;
	struct injected msg[256];
	int n, failures, rounds;
	unsigned seed;
};

static void inject(struct injector *in, const char *topic, const char *key, const void *value,
		   size_t len, unsigned expect, const char *what, const struct es_event *ev)
{
	struct injected *m;
	char err[256];
	int rc;

	if (in->n == (int)(sizeof(in->msg) / sizeof(in->msg[0]))) {
		in->failures++;
		return;
	}
	m = &in->msg[in->n];
	*m = (struct injected){.topic = topic, .len = len, .expect = expect};
	snprintf(m->key, sizeof(m->key), "%s", key);
	snprintf(m->what, sizeof(m->what), "%s", what);
	if (value) {
		m->value = malloc(len ? len : 1);
		memcpy(m->value, value, len);
	}
	if (ev)
		rc = es_producer_send_event(in->p, topic, key, value, ev->id, ev->type, ev->source,
					    NULL, err, sizeof(err));
	else
		rc = es_producer_send_raw(in->p, topic, key, strlen(key), value, len, NULL, NULL,
					  err, sizeof(err));
	if (rc) {
		fprintf(stderr, "injecting %s: %s\n", what, err);
		free(m->value);
		in->failures++;
		return;
	}
	in->n++;
}

/* A well-formed CloudEvent (valid envelope) with the given data, about
 * order subject, sent with subject as its key. */
static void inject_event(struct injector *in, const char *topic, const char *service,
			 const char *type, const char *subject, json_t *data, unsigned expect,
			 const char *what)
{
	struct es_event *ev = es_event_new(service, type, subject, NULL, NULL, data);
	char *value = ev ? es_event_serialize(ev) : NULL;

	if (!value) {
		in->failures++;
	} else {
		inject(in, topic, subject, value, strlen(value), expect, what, ev);
	}
	free(value);
	es_event_free(ev);
}

/* Bytes that are no CloudEvent, four kinds, on topic. */
static void inject_garbage(struct injector *in, const char *topic, unsigned readers)
{
	static const char text[] = "this is not JSON {";
	static const char object[] = "{\"hello\":\"world\"}";
	unsigned char bytes[48];
	char key[ES_UUID_LEN + 1];

	for (size_t i = 0; i < sizeof(bytes); i++)
		bytes[i] = (unsigned char)rand_r(&in->seed);
	es_uuid_new(key);
	inject(in, topic, key, bytes, sizeof(bytes), readers, "random bytes", NULL);
	es_uuid_new(key);
	inject(in, topic, key, text, strlen(text), readers, "text", NULL);
	es_uuid_new(key);
	inject(in, topic, key, object, strlen(object), readers, "JSON, not a CloudEvent", NULL);
	es_uuid_new(key);
	inject(in, topic, key, NULL, 0, readers, "no value", NULL);
}

/*
 * One round: garbage on all four topics, a well-formed event of a type
 * nobody knows on each, and events of known types whose data breaks the
 * schema. Who must dead-letter what: every reader of the topic for
 * garbage and unknown types; for a known type, the readers that act on
 * it (a service passes over the known types it has nothing to do with,
 * e.g. payment-service over OrderConfirmed, without validating them).
 *
 * The schema-violating events are about orders that do not exist, except
 * OrderPlaced, which is about a real order (the invariant checker takes
 * every OrderPlaced on the topic for an order that must exist).
 */
static void inject_round(struct injector *in)
{
	struct shop *sh = in->shop;
	char r[ES_UUID_LEN + 1], real[37];

	inject_garbage(in, sh->topic_orders, READS_ORDERS);
	inject_garbage(in, sh->topic_payments, READS_PAYMENTS);
	inject_garbage(in, sh->topic_inventory, READS_INVENTORY);
	inject_garbage(in, sh->topic_notifications, READS_NOTIFICATIONS);

	/* orders */
	if (accepted_last(&in->l->acc, real))
		inject_event(in, sh->topic_orders, "order-service", ES_ORDER_PLACED, real,
			     json_pack("{s:s,s:s,s:s,s:[{s:s,s:i,s:i}],s:i,s:s,s:s}", "orderId",
				       real, "customerId", "c-inject", "customerEmail",
				       "inject@example.com", "items", "sku", "mug-classic",
				       "quantity", 0, "unitPriceCents", 1299, "totalCents", 0,
				       "currency", "EUR", "paymentToken", "tok_visa"),
			     READS_ORDERS, "OrderPlaced with quantity 0");
	es_uuid_new(r);
	inject_event(
		in, sh->topic_orders, "order-service", ES_ORDER_CANCELLED, r,
		json_pack("{s:s,s:s,s:s}", "orderId", r, "reason", "BECAUSE", "detail", "injected"),
		READS_ORDERS, "OrderCancelled with an unknown reason");
	es_uuid_new(r);
	inject_event(in, sh->topic_orders, "order-service", ES_ORDER_CONFIRMED, r,
		     json_pack("{s:s,s:s,s:s,s:i,s:s}", "orderId", r, "paymentId", "p-1",
			       "reservationId", "r-1", "totalCents", -1, "currency", "EUR"),
		     BY(SHOP_INVENTORY) | BY(SHOP_EMAIL) | BY(SHOP_ANALYTICS),
		     "OrderConfirmed with totalCents -1");
	es_uuid_new(r);
	inject_event(in, sh->topic_orders, "order-service", "OrderShipped", r,
		     json_pack("{s:s}", "orderId", r), READS_ORDERS, "unknown type OrderShipped");

	/* payments */
	es_uuid_new(r);
	inject_event(in, sh->topic_payments, "payment-service", ES_PAYMENT_PROCESSED, r,
		     json_pack("{s:s,s:s,s:i,s:s}", "orderId", r, "paymentId", "p-1", "amountCents",
			       -100, "currency", "EUR"),
		     BY(SHOP_ORDER) | BY(SHOP_ANALYTICS), "PaymentProcessed with amountCents -100");
	es_uuid_new(r);
	{
		char other[ES_UUID_LEN + 1];

		es_uuid_new(other);
		inject_event(in, sh->topic_payments, "payment-service", ES_PAYMENT_PROCESSED, r,
			     json_pack("{s:s,s:s,s:i,s:s}", "orderId", other, "paymentId", "p-1",
				       "amountCents", 100, "currency", "EUR"),
			     BY(SHOP_ORDER) | BY(SHOP_ANALYTICS),
			     "PaymentProcessed whose orderId is not its subject");
	}
	es_uuid_new(r);
	inject_event(in, sh->topic_payments, "payment-service", ES_PAYMENT_FAILED, r,
		     json_pack("{s:s,s:s,s:i,s:s}", "orderId", r, "reason", "STOLEN", "amountCents",
			       100, "currency", "EUR"),
		     BY(SHOP_ORDER) | BY(SHOP_ANALYTICS), "PaymentFailed with an unknown reason");
	es_uuid_new(r);
	inject_event(
		in, sh->topic_payments, "payment-service", ES_PAYMENT_REFUNDED, r,
		json_pack("{s:s,s:i,s:s}", "orderId", r, "amountCents", 100, "currency", "EUR"),
		READS_PAYMENTS, "PaymentRefunded without paymentId");
	es_uuid_new(r);
	inject_event(in, sh->topic_payments, "payment-service", "PaymentChargedBack", r,
		     json_pack("{s:s}", "orderId", r), READS_PAYMENTS,
		     "unknown type PaymentChargedBack");

	/* inventory */
	es_uuid_new(r);
	inject_event(in, sh->topic_inventory, "inventory-service", ES_INVENTORY_RESERVED, r,
		     json_pack("{s:s,s:s,s:[]}", "orderId", r, "reservationId", "r-1", "items"),
		     READS_INVENTORY, "InventoryReserved without items");
	es_uuid_new(r);
	inject_event(in, sh->topic_inventory, "inventory-service", ES_INVENTORY_REJECTED, r,
		     json_pack("{s:s,s:s,s:[{s:s,s:i,s:i}]}", "orderId", r, "reason",
			       "OUT_OF_STOCK", "items", "sku", "mug-classic", "requested", 0,
			       "available", 0),
		     READS_INVENTORY, "InventoryRejected with requested 0");
	es_uuid_new(r);
	inject_event(in, sh->topic_inventory, "inventory-service", "InventoryAudited", r,
		     json_pack("{s:s}", "orderId", r), READS_INVENTORY,
		     "unknown type InventoryAudited");

	/* notifications */
	es_uuid_new(r);
	inject_event(in, sh->topic_notifications, "email-service", ES_EMAIL_SENT, r,
		     json_pack("{s:s,s:s,s:s,s:s}", "orderId", r, "template", "spam", "to",
			       "inject@example.com", "messageId", "m-1"),
		     READS_NOTIFICATIONS, "EmailSent with an unknown template");
	es_uuid_new(r);
	inject_event(in, sh->topic_notifications, "email-service", "EmailBounced", r,
		     json_pack("{s:s}", "orderId", r), READS_NOTIFICATIONS,
		     "unknown type EmailBounced");
	if (es_producer_flush(in->p, 10000)) {
		fprintf(stderr, "injected messages not delivered in 10 s\n");
		in->failures++;
	}
	in->rounds++;
}

static void *injector_run(void *arg)
{
	struct injector *in = arg;
	long long at[] = {2500, 5000, 7500};

	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		long long due = in->l->start_ms + at[i];

		if (due > shop_now_ms())
			sleep_ms((long)(due - shop_now_ms()));
		inject_round(in);
	}
	return NULL;
}

static bool same_bytes(const rd_kafka_message_t *m, const struct injected *in)
{
	return m->len == in->len && (!in->len || !memcmp(m->payload, in->value, in->len)) &&
	       m->key_len == strlen(in->key) && !memcmp(m->key, in->key, m->key_len);
}

/*
 * Reads every service's DLQ and marks what it finds. Returns the number of
 * expected dead letters still missing; *extra counts dead letters that are
 * not one of the injected messages, or one more copy of one (printed).
 */
static int match_dead_letters(struct injector *in, int *extra, bool print)
{
	int missing = 0;

	*extra = 0;
	for (int i = 0; i < in->n; i++)
		in->msg[i].found = 0;
	for (int s = 0; s < SHOP_NSERVICES; s++) {
		char dlq[160], topic[200], why[512];
		bool complete;
		struct es_test_batch *b;

		snprintf(dlq, sizeof(dlq), "%s.dlq.%s", in->shop->run, shop_names[s]);
		b = es_test_kafka_read_all(bootstrap, dlq, 10000, &complete);
		for (int j = 0; j < b->n; j++) {
			const char *t = es_test_kafka_header(b->msg[j], ES_DLQ_HDR_TOPIC, topic,
							     sizeof(topic));
			int hit = -1;

			for (int i = 0; i < in->n && hit < 0; i++) {
				if (t && !strcmp(t, in->msg[i].topic) &&
				    (in->msg[i].expect & BY(s)) && !(in->msg[i].found & BY(s)) &&
				    same_bytes(b->msg[j], &in->msg[i]))
					hit = i;
			}
			if (hit >= 0) {
				in->msg[hit].found |= BY(s);
				continue;
			}
			(*extra)++;
			if (print) {
				const char *e = es_test_kafka_header(b->msg[j], ES_DLQ_HDR_ERROR,
								     why, sizeof(why));

				fprintf(stderr,
					"UNEXPECTED dead letter in %s from %s: %.*s (dlq.error: "
					"%s)\n",
					dlq, t ? t : "?",
					(int)(b->msg[j]->len > 160 ? 160 : b->msg[j]->len),
					b->msg[j]->payload ? (const char *)b->msg[j]->payload : "",
					e ? e : "?");
			}
		}
		es_test_kafka_batch_free(b);
	}
	for (int i = 0; i < in->n; i++) {
		unsigned lost = in->msg[i].expect & ~in->msg[i].found;

		for (int s = 0; s < SHOP_NSERVICES; s++) {
			if (!(lost & BY(s)))
				continue;
			missing++;
			if (print)
				fprintf(stderr,
					"MISSING dead letter: %s did not dead-letter %s on %s\n",
					shop_names[s], in->msg[i].what, in->msg[i].topic);
		}
	}
	return missing;
}

START_TEST(malformed_and_schema_violating_events_during_load)
{
	struct shop shop;
	struct load l;
	struct injector in = {.seed = (unsigned)time(NULL)};
	struct invariants_report rep = {0};
	struct client *clients;
	pthread_t injector_thread;
	long long t0 = shop_now_ms(), deadline;
	int violations = -1, missing = -1, extra = -1, expected = 0, exits = 0, crashes = 0;
	int per_service[SHOP_NSERVICES] = {0};
	bool failed = true;
	char err[256];

	if (start_shop(&shop))
		goto out;
	in.p = es_producer_new(bootstrap, "fault-injector", NULL, NULL, err, sizeof(err));
	if (!in.p) {
		fprintf(stderr, "producer: %s\n", err);
		goto out;
	}
	/* 4 clients x 75 orders, one every 133 ms each: 300 in ~10 s. */
	load_init(&l, &shop, 4, 75, 133);
	in.l = &l;
	in.shop = &shop;
	clients = load_start(&l);
	pthread_create(&injector_thread, NULL, injector_run, &in);
	load_join(&l, clients);
	pthread_join(injector_thread, NULL);
	load_print("malformed", &l);
	for (int i = 0; i < in.n; i++) {
		for (int s = 0; s < SHOP_NSERVICES; s++) {
			if (in.msg[i].expect & BY(s)) {
				per_service[s]++;
				expected++;
			}
		}
	}
	fprintf(stderr,
		"malformed: %d messages injected in %d rounds (%d failed), %d dead letters "
		"expected: order %d, payment %d, inventory %d, email %d, analytics %d\n",
		in.n, in.rounds, in.failures, expected, per_service[SHOP_ORDER],
		per_service[SHOP_PAYMENT], per_service[SHOP_INVENTORY], per_service[SHOP_EMAIL],
		per_service[SHOP_ANALYTICS]);

	wait_quiet(&shop, 120000, &exits, &crashes);
	violations = shop_check_invariants(&shop, l.acc.ids, l.acc.n, 90000, &rep);
	deadline = shop_now_ms() + 60000;
	do {
		missing = match_dead_letters(&in, &extra, false);
		if (missing == 0)
			break;
		sleep_ms(500);
	} while (shop_now_ms() < deadline);
	missing = match_dead_letters(&in, &extra, true);
	print_duplicates(&shop, "malformed");
	fprintf(stderr,
		"malformed: %zu accepted orders, %d on the topic (%d confirmed, %d cancelled), "
		"%d dead letters (%d expected, %d missing, %d unexpected), %d daemon exits "
		"(%d crashes), %d error log lines, %d violation(s), %.1f s\n",
		l.acc.n, rep.orders, rep.confirmed, rep.cancelled, rep.dead_letters, expected,
		missing, extra, exits, crashes, log_total(&shop, "\"level\":\"error\""), violations,
		secs_since(t0));
	failed = violations != 0 || missing != 0 || extra != 0 || exits || in.failures ||
		 in.rounds != 3 || atomic_load(&l.refused) || l.acc.n < 250;
out:
	release(&shop, failed);
	es_producer_free(in.p);
	for (int i = 0; i < in.n; i++)
		free(in.msg[i].value);
	if (in.l)
		load_free(&l);
	ck_assert_msg(!failed,
		      "malformed: %d violation(s), %d dead letters missing, %d unexpected, %d "
		      "daemon exits",
		      violations, missing, extra, exits);
}
END_TEST

/* ------------------------- 3. a whole topic delivered again to two groups */

/* A client of `group` that never subscribes: it only reads and commits the
 * group's offsets (as analytics-service --rebuild does; the broker takes
 * the commit only while the group has no members). */
static rd_kafka_t *group_client(const char *group)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char err[256];
	rd_kafka_t *rk;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", err, sizeof(err))) {
		fprintf(stderr, "group client: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "group client: %s\n", err);
		rd_kafka_conf_destroy(conf);
	}
	return rk;
}

static void group_client_free(rd_kafka_t *rk)
{
	/* Not a member: closing would only wait. */
	rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

/* Commits the low watermark of every partition of topic as group's offset
 * and reads it back. Returns 0 or -1 (printed). */
static int reset_group(const char *group, const char *topic, int partitions)
{
	rd_kafka_t *rk = group_client(group);
	rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(partitions);
	rd_kafka_topic_partition_list_t *back = NULL;
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
	int rc = -1;

	if (!rk)
		goto out;
	for (int p = 0; p < partitions; p++) {
		int64_t low, high;

		err = rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, 10000);
		if (err)
			goto out;
		rd_kafka_topic_partition_list_add(offsets, topic, p)->offset = low;
	}
	/* The group may still be settling after its members left. */
	for (int attempt = 0; attempt < 20; attempt++) {
		err = rd_kafka_commit(rk, offsets, 0);
		if (!err)
			break;
		sleep_ms(500);
	}
	if (err)
		goto out;
	back = rd_kafka_topic_partition_list_copy(offsets);
	err = rd_kafka_committed(rk, back, 10000);
	if (err)
		goto out;
	for (int i = 0; i < back->cnt; i++) {
		if (back->elems[i].offset != offsets->elems[i].offset) {
			fprintf(stderr, "%s: %s[%d] committed %" PRId64 ", not %" PRId64 "\n",
				group, topic, back->elems[i].partition, back->elems[i].offset,
				offsets->elems[i].offset);
			goto out;
		}
	}
	rc = 0;
out:
	if (err)
		fprintf(stderr, "resetting %s on %s: %s\n", group, topic, rd_kafka_err2str(err));
	if (back)
		rd_kafka_topic_partition_list_destroy(back);
	rd_kafka_topic_partition_list_destroy(offsets);
	if (rk)
		group_client_free(rk);
	return rc;
}

/* The group's lag on topic (high watermark - committed offset, summed over
 * the partitions), or -1 when it cannot be read. */
static long long group_lag(const char *group, const char *topic, int partitions)
{
	rd_kafka_t *rk = group_client(group);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
	long long lag = 0;

	if (!rk) {
		rd_kafka_topic_partition_list_destroy(l);
		return -1;
	}
	for (int p = 0; p < partitions; p++)
		rd_kafka_topic_partition_list_add(l, topic, p);
	if (rd_kafka_committed(rk, l, 10000)) {
		lag = -1;
	} else {
		for (int p = 0; p < partitions && lag >= 0; p++) {
			int64_t low, high, at = l->elems[p].offset;

			if (rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, 10000))
				lag = -1;
			else
				lag += high - (at < 0 ? low : at);
		}
	}
	rd_kafka_topic_partition_list_destroy(l);
	group_client_free(rk);
	return lag;
}

/* Messages a topic holds (sum of high - low watermarks), -1 on error. */
static long long topic_size(const char *topic, int partitions)
{
	rd_kafka_t *rk = group_client("fault-watermarks");
	long long n = 0;

	if (!rk)
		return -1;
	for (int p = 0; p < partitions && n >= 0; p++) {
		int64_t low, high;

		if (rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high, 10000))
			n = -1;
		else
			n += high - low;
	}
	group_client_free(rk);
	return n;
}

/* Events of `type` on topic (-1 when it could not be read in 30 s). */
static int count_type(const char *topic, const char *type)
{
	bool complete;
	struct es_test_batch *b = es_test_kafka_read_all(bootstrap, topic, 30000, &complete);
	int n = 0;

	for (int i = 0; i < b->n; i++) {
		char err[128];
		struct es_event *ev = es_event_parse(b->msg[i]->payload, b->msg[i]->len, err,
						     sizeof(err));

		n += ev && !strcmp(ev->type, type);
		es_event_free(ev);
	}
	es_test_kafka_batch_free(b);
	return complete ? n : -1;
}

/* GET url as text (caller frees), NULL unless 200. */
static char *get_text(const struct shop *shop, enum shop_service s, const char *path)
{
	char url[200], *text = NULL;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", shop->port[s][0], path);
	if (shop_get_text(url, &text) != 200) {
		free(text);
		return NULL;
	}
	return text;
}

/* /stats without sagaLatencyMs (which is a histogram of wall time and may
 * be computed from a moving window), as compact sorted JSON. */
static char *stats_counts(const struct shop *shop)
{
	char url[200], *text;
	json_t *stats = NULL;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/stats", shop->port[SHOP_ANALYTICS][0]);
	if (shop_http("GET", url, NULL, NULL, &stats) != 200 || !stats) {
		json_decref(stats);
		return NULL;
	}
	json_object_del(stats, "sagaLatencyMs");
	text = json_dumps(stats, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(stats);
	return text;
}

static bool same_text(const char *what, const char *before, const char *after)
{
	if (before && after && !strcmp(before, after))
		return true;
	fprintf(stderr, "CHANGED by the replay: %s\n  before: %s\n  after:  %s\n", what,
		before ? before : "(none)", after ? after : "(none)");
	return false;
}

START_TEST(redelivering_a_whole_topic_changes_nothing)
{
	static const enum shop_service replayed[] = {SHOP_PAYMENT, SHOP_INVENTORY};
	struct shop shop;
	struct load l;
	struct invariants_report rep = {0};
	long long t0 = shop_now_ms(), deadline, lag[2] = {-1, -1};
	long long payments_before = -1, payments_after = -1, inventory_before = -1,
		  inventory_after = -1;
	char *stock_before = NULL, *stock_after = NULL, *stats_before = NULL, *stats_after = NULL;
	int dup_before[2] = {0}, dup_after[2] = {0}, want_dup[2] = {0}, placed, cancelled,
	    confirmed;
	int violations = -1, exits = 0, crashes = 0;
	bool failed = true, loaded = false, ok;

	if (start_shop(&shop))
		goto out;
	/* 4 clients x 50 orders, one every 100 ms each: 200 in ~5 s. */
	load_init(&l, &shop, 4, 50, 100);
	loaded = true;
	load_join(&l, load_start(&l));
	load_print("replay", &l);
	if (wait_quiet(&shop, 120000, &exits, &crashes))
		goto out;

	/* What the replay must not change. */
	payments_before = topic_size(shop.topic_payments, TOPIC_PARTITIONS);
	inventory_before = topic_size(shop.topic_inventory, TOPIC_PARTITIONS);
	stock_before = get_text(&shop, SHOP_INVENTORY, "/stock");
	stats_before = stats_counts(&shop);
	placed = count_type(shop.topic_orders, ES_ORDER_PLACED);
	confirmed = count_type(shop.topic_orders, ES_ORDER_CONFIRMED);
	cancelled = count_type(shop.topic_orders, ES_ORDER_CANCELLED);
	/* Each event a service acts on is skipped by its inbox once: payment
	 * acts on OrderPlaced and OrderCancelled, inventory on all three. */
	want_dup[0] = placed + cancelled;
	want_dup[1] = placed + confirmed + cancelled;
	fprintf(stderr,
		"replay: orders topic holds %d OrderPlaced, %d OrderConfirmed, %d OrderCancelled; "
		"payments %lld, inventory %lld messages\n",
		placed, confirmed, cancelled, payments_before, inventory_before);

	for (int i = 0; i < 2; i++) {
		char group[160];

		dup_before[i] = log_count(&shop, replayed[i], "already processed");
		if (shop_signal(&shop, replayed[i], 0, SIGTERM))
			goto out;
		snprintf(group, sizeof(group), "%s.%s", shop.run, shop_names[replayed[i]]);
		if (reset_group(group, shop.topic_orders, TOPIC_PARTITIONS))
			goto out;
		lag[i] = group_lag(group, shop.topic_orders, TOPIC_PARTITIONS);
		fprintf(stderr, "replay: %s stopped, group %s reset to the beginning (lag %lld)\n",
			shop_names[replayed[i]], group, lag[i]);
	}
	for (int i = 0; i < 2; i++) {
		if (shop_start(&shop, replayed[i], 0))
			goto out;
	}

	/* Both groups have read (and committed) the whole topic again. */
	deadline = shop_now_ms() + 90000;
	do {
		for (int i = 0; i < 2; i++) {
			char group[160];

			snprintf(group, sizeof(group), "%s.%s", shop.run, shop_names[replayed[i]]);
			lag[i] = group_lag(group, shop.topic_orders, TOPIC_PARTITIONS);
		}
		if (lag[0] == 0 && lag[1] == 0)
			break;
		sleep_ms(500);
	} while (shop_now_ms() < deadline);
	fprintf(stderr, "replay: lag payment-service %lld, inventory-service %lld after %.1f s\n",
		lag[0], lag[1], secs_since(t0));
	wait_quiet(&shop, 60000, &exits, &crashes);
	violations = shop_check_invariants(&shop, l.acc.ids, l.acc.n, 60000, &rep);

	payments_after = topic_size(shop.topic_payments, TOPIC_PARTITIONS);
	inventory_after = topic_size(shop.topic_inventory, TOPIC_PARTITIONS);
	stock_after = get_text(&shop, SHOP_INVENTORY, "/stock");
	stats_after = stats_counts(&shop);
	for (int i = 0; i < 2; i++)
		dup_after[i] = log_count(&shop, replayed[i], "already processed");
	fprintf(stderr,
		"replay: payments topic %lld -> %lld messages, inventory topic %lld -> %lld; "
		"duplicates skipped by payment-service %d (expected %d), inventory-service %d "
		"(expected %d); %d dead letters, %d violation(s), %.1f s\n",
		payments_before, payments_after, inventory_before, inventory_after,
		dup_after[0] - dup_before[0], want_dup[0], dup_after[1] - dup_before[1],
		want_dup[1], rep.dead_letters, violations, secs_since(t0));
	ok = violations == 0 && lag[0] == 0 && lag[1] == 0 && exits == 0;
	if (payments_after != payments_before || inventory_after != inventory_before) {
		fprintf(stderr, "CHANGED by the replay: new events on payments or inventory\n");
		ok = false;
	}
	ok &= same_text("GET /stock", stock_before, stock_after);
	ok &= same_text("GET /stats", stats_before, stats_after);
	for (int i = 0; i < 2; i++) {
		if (dup_after[i] - dup_before[i] < want_dup[i]) {
			fprintf(stderr, "%s skipped %d duplicates, expected at least %d\n",
				shop_names[replayed[i]], dup_after[i] - dup_before[i], want_dup[i]);
			ok = false;
		}
	}
	failed = !ok || placed < 150;
out:
	release(&shop, failed);
	if (loaded)
		load_free(&l);
	free(stock_before);
	free(stock_after);
	free(stats_before);
	free(stats_after);
	ck_assert_msg(!failed, "replay: %d violation(s), lag %lld/%lld", violations, lag[0],
		      lag[1]);
}
END_TEST

/* --------------------- 4. PostgreSQL and Kafka restart under the load */

/* Runs tests/infra/<what> <cmd> --dir dir, its output appended to
 * dir.log. Returns its exit status. */
static int infra(const char *what, const char *cmd, const char *dir)
{
	char line[1024];
	long long t0 = shop_now_ms();
	int rc;

	snprintf(line, sizeof(line), "'%s/%s' %s --dir '%s' >>'%s.log' 2>&1", ES_INFRA_SCRIPTS,
		 what, cmd, dir, dir);
	rc = system(line);
	rc = rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
	fprintf(stderr, "%s %s: exit %d in %.1f s\n", what, cmd, rc, secs_since(t0));
	if (rc) {
		snprintf(line, sizeof(line), "tail -n 30 '%s.log' >&2", dir);
		if (system(line) == -1)
			perror("system");
	}
	return rc;
}

/* The value of var in dir/<what>.env (caller frees), or NULL. */
static char *infra_env(const char *dir, const char *what, const char *var)
{
	char path[400], line[1024];
	size_t len = strlen(var);
	char *value = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.env", dir, what);
	f = fopen(path, "r");
	if (!f)
		return NULL;
	while (!value && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, var, len) && line[len] == '=') {
			line[strcspn(line, "\n")] = '\0';
			value = strdup(line + len + 1);
		}
	}
	fclose(f);
	return value;
}

/* A cluster of our own: started in a new temporary directory. */
struct own_infra {
	const char *what; /* "postgres" or "kafka" */
	char dir[64];
	bool started;
};

static char *own_infra_start(struct own_infra *o, const char *what, const char *var)
{
	o->what = what;
	snprintf(o->dir, sizeof(o->dir), "/tmp/es-fault-%s-XXXXXX", what);
	if (!mkdtemp(o->dir)) {
		perror("mkdtemp");
		return NULL;
	}
	o->started = true;
	if (infra(what, "start", o->dir))
		return NULL;
	return infra_env(o->dir, what, var);
}

static void own_infra_release(struct own_infra *o, bool failed)
{
	char log[100];

	if (!o->started)
		return;
	infra(o->what, "stop --clean", o->dir);
	snprintf(log, sizeof(log), "%s.log", o->dir);
	if (failed)
		fprintf(stderr, "%s's log: %s\n", o->what, log);
	else
		unlink(log);
}

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
	atomic_store(&c.stop, true);
	pthread_join(supervisor, NULL);
	for (int i = 0; i < c.nrestarters; i++)
		pthread_join(c.restarter[i], NULL);
	pthread_mutex_destroy(&c.lock);
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
	char *url = own_infra_start(&pg, "postgres", "DATABASE_URL");
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
	char *servers = own_infra_start(&kafka, "kafka", "KAFKA_BOOTSTRAP_SERVERS");
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
	Suite *s;
	SRunner *sr;
	int failed;
	struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{"kill_9_random_daemons_during_load", kill_9_random_daemons_during_load},
		{"malformed_and_schema_violating_events_during_load",
		 malformed_and_schema_violating_events_during_load},
		{"redelivering_a_whole_topic_changes_nothing",
		 redelivering_a_whole_topic_changes_nothing},
		{"postgres_restart_during_load", postgres_restart_during_load},
		{"kafka_restart_during_load", kafka_restart_during_load},
	};

	bootstrap = es_test_kafka_bootstrap();
	database_url = es_test_database_url();
	if (!bootstrap || !database_url)
		return ES_TEST_SKIP;
	es_log_init("fault", ES_LOG_WARN);
	setenv("CK_FORK", "no", 1);
	signal(SIGPIPE, SIG_IGN);

	s = suite_create("fault");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);

		tcase_set_timeout(tc, 600);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_VERBOSE);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
