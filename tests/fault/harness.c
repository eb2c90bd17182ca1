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
 *
 * The cases are in tests/fault/it_kill.c (1), it_malformed.c (2),
 * it_replay.c (3) and it_restart.c (4), each file a ctest test of its own
 * (fault.injection.<theme>); this file is what they share (harness.h): the
 * load, watching and supervising the daemons, and the chaos that kills
 * them. One tcase per case, so that CK_RUN_CASE=<name> runs one of them.
 *
 * The daemons run with their default session timeout
 * (ES_CONSUMER_SESSION_TIMEOUT_MS, 10 s), as a user's would: a restarted
 * instance gets partitions only once the killed one's session expired, and
 * that stall must stay under the saga timeout.
 */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "es/log.h"
#include "testkafka.h"
#include "testsupport.h"

const char *bootstrap, *database_url;

void sleep_ms(long ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

double secs_since(long long t0)
{
	return (double)(shop_now_ms() - t0) / 1000.0;
}

/* Keeps the shop's directory (logs, maildir) when a case failed. */
void release(struct shop *shop, bool failed)
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
bool accepted_last(struct accepted *a, char *out)
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

	for (int k = 0; k < l->per_thread && !atomic_load(&l->stop); k++) {
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

void load_init(struct load *l, struct shop *shop, int threads, int per_thread, long period_ms)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->acc.lock, NULL);
	l->shop = shop;
	l->threads = threads;
	l->per_thread = per_thread;
	l->period_ms = period_ms;
	atomic_store(&l->order_port, shop->port[SHOP_ORDER][0]);
}

struct client *load_start(struct load *l)
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

void load_join(struct load *l, struct client *c)
{
	for (int t = 0; t < l->threads; t++)
		pthread_join(c[t].thread, NULL);
	free(c);
}

void load_free(struct load *l)
{
	free(l->acc.ids);
	pthread_mutex_destroy(&l->acc.lock);
}

void load_print(const char *name, struct load *l)
{
	fprintf(stderr,
		"%s: %d orders attempted in %.1f s (%d POSTs): %d accepted (%d after a retry), "
		"%d not accepted (order-service down), %d refused\n",
		name, atomic_load(&l->attempted), secs_since(l->start_ms), atomic_load(&l->posts),
		atomic_load(&l->ok), atomic_load(&l->ok_after_retry), atomic_load(&l->not_accepted),
		atomic_load(&l->refused));
}

/* ------------------------------------------------------- watching daemons */

/* The sum of the samples of `family` on instance 0's /metrics whose labels
 * hold `label` (NULL: every sample), or -1 when the daemon does not answer. */
static double metric_sum_where(const struct shop *shop, enum shop_service s, const char *family,
			       const char *label)
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
			if (label &&
			    (!value || !memmem(line, (size_t)(value - line), label, strlen(label))))
				continue;
			if (value)
				sum += strtod(value + 1, NULL);
		}
	}
	free(text);
	return sum;
}

static double metric_sum(const struct shop *shop, enum shop_service s, const char *family)
{
	return metric_sum_where(shop, s, family, NULL);
}

/* Lines of a service's logs (all instances, all restarts) holding needle. */
int log_count(const struct shop *shop, enum shop_service s, const char *needle)
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

int log_total(const struct shop *shop, const char *needle)
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
/* Events a daemon has read but not yet finished with: its counters of
 * events consumed (counted as a batch is read), less those handled and
 * those that were not even CloudEvents (dead-lettered unhandled). -1 when
 * it does not answer. */
static double in_flight(const struct shop *shop, enum shop_service s)
{
	double consumed = metric_sum(shop, s, "es_events_consumed_total");
	double handled = metric_sum(shop, s, "es_events_handled_total");
	double invalid = metric_sum_where(shop, s, "es_events_consumed_total", "type=\"invalid\"");

	return consumed < 0 || handled < 0 || invalid < 0 ? -1 : consumed - handled - invalid;
}

/* Quiet after this many seconds without a new event consumed, even when
 * a daemon's counters say events are in flight (a batch dropped when its
 * partitions were revoked is read again, and counted again, by the next
 * owner). */
#define QUIET_ANYWAY_S 5

int wait_quiet(struct shop *shop, int timeout_ms, int *exits, int *crashes)
{
	long long start = shop_now_ms(), deadline = start + timeout_ms;
	double last = -2;
	int pending = -1, still = 0;
	double backlog = -1, busy = -1;

	while (shop_now_ms() < deadline) {
		double consumed = 0;

		backlog = 0;
		busy = 0;
		for (int s = 0; s < SHOP_NSERVICES; s++) {
			double c, b, f;

			supervise(shop, (enum shop_service)s, exits, crashes);
			c = metric_sum(shop, (enum shop_service)s, "es_events_consumed_total");
			b = metric_sum(shop, (enum shop_service)s, "es_outbox_backlog");
			f = in_flight(shop, (enum shop_service)s);
			consumed = c < 0 || consumed < 0 ? -1 : consumed + c;
			backlog = b < 0 || backlog < 0 ? -1 : backlog + b;
			busy = f < 0 || busy < 0 ? -1 : busy + f;
		}
		pending = pending_orders(shop);
		/* Nothing new read for a second is not enough by itself: a daemon
		 * may be a second into a large batch (email-service's fsyncs). */
		still = pending == 0 && backlog == 0 && consumed >= 0 && consumed == last
				? still + 1
				: 0;
		if (still && (busy == 0 || still >= QUIET_ANYWAY_S)) {
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
int print_duplicates(const struct shop *shop, const char *name)
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

int start_shop(struct shop *shop)
{
	long long t0 = shop_now_ms();

	if (shop_init(shop, bootstrap, database_url) || shop_start_all(shop))
		return -1;
	fprintf(stderr, "shop %s started in %.1f s (logs in %s)\n", shop->run, secs_since(t0),
		shop->dir);
	return 0;
}

/* ------------------------------------------- daemons killed and restarted */

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

void *chaos_run(void *arg)
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

int fault_main(const char *suite, const struct fault_case *cases, size_t n)
{
	Suite *s;
	SRunner *sr;
	int failed;

	bootstrap = es_test_kafka_bootstrap();
	database_url = es_test_database_url();
	if (!bootstrap || !database_url)
		return ES_TEST_SKIP;
	es_log_init("fault", ES_LOG_WARN);
	setenv("CK_FORK", "no", 1);
	signal(SIGPIPE, SIG_IGN);

	s = suite_create(suite);
	for (size_t i = 0; i < n; i++) {
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

void chaos_stop(struct chaos *c, pthread_t thread)
{
	atomic_store(&c->stop, true);
	pthread_join(thread, NULL);
	for (int i = 0; i < c->nrestarters; i++)
		pthread_join(c->restarter[i], NULL);
	pthread_mutex_destroy(&c->lock);
}

/* ------------------------------------------- infrastructure of a case's own */

int infra(const char *what, const char *cmd, const char *dir)
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

char *infra_env(const char *dir, const char *what, const char *var)
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

char *own_infra_start(struct own_infra *o, const char *what, const char *args, const char *var)
{
	char cmd[256];

	o->what = what;
	snprintf(o->dir, sizeof(o->dir), "/tmp/es-fault-%s-XXXXXX", what);
	if (!mkdtemp(o->dir)) {
		perror("mkdtemp");
		return NULL;
	}
	o->started = true;
	snprintf(cmd, sizeof(cmd), "start %s", args);
	if (infra(what, cmd, o->dir))
		return NULL;
	return infra_env(o->dir, what, var);
}

void own_infra_release(struct own_infra *o, bool failed)
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

/* ------------------------------------------- stalls, measured on the topics */

long long epoch_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int topic_events_read(const char *servers, const char *topic, struct topic_events *out)
{
	struct es_test_batch *b = es_test_kafka_read_all(servers, topic, 60000, &out->complete);

	out->n = 0;
	out->ev = calloc((size_t)b->n + 1, sizeof(*out->ev));
	if (!out->ev) {
		es_test_kafka_batch_free(b);
		return -1;
	}
	for (int i = 0; i < b->n; i++) {
		const rd_kafka_message_t *m = b->msg[i];
		struct topic_event *e = &out->ev[out->n];
		rd_kafka_timestamp_type_t tstype;

		if (!es_test_kafka_header(m, "ce_id", e->id, sizeof(e->id)) ||
		    !es_test_kafka_header(m, "ce_type", e->type, sizeof(e->type)))
			continue; /* not an event of the shop's */
		snprintf(e->key, sizeof(e->key), "%.*s", m->key_len < 40 ? (int)m->key_len : 39,
			 m->key ? (const char *)m->key : "");
		e->ts = rd_kafka_message_timestamp(m, &tstype);
		e->partition = m->partition;
		out->n++;
	}
	es_test_kafka_batch_free(b);
	return 0;
}

void topic_events_free(struct topic_events *t)
{
	free(t->ev);
	t->ev = NULL;
	t->n = 0;
}

static int by_ts(const void *a, const void *b)
{
	const struct topic_event *x = a, *y = b;

	return (x->ts > y->ts) - (x->ts < y->ts);
}

static int by_key_ts(const void *a, const void *b)
{
	const struct topic_event *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c ? c : by_ts(a, b);
}

long long longest_silence(struct topic_events *t, int partitions, long long from_ms,
			  long long to_ms, int *partition)
{
	long long worst = 0;

	qsort(t->ev, t->n, sizeof(*t->ev), by_ts);
	for (int p = 0; p < partitions; p++) {
		long long prev = -1;

		for (size_t i = 0; i < t->n; i++) {
			long long gap;

			if (t->ev[i].partition != p)
				continue;
			if (t->ev[i].ts > to_ms)
				break;
			if (prev >= 0 && t->ev[i].ts > from_ms) {
				gap = t->ev[i].ts - (prev > from_ms ? prev : from_ms);
				if (gap > worst) {
					worst = gap;
					if (partition)
						*partition = p;
				}
			}
			prev = t->ev[i].ts;
		}
	}
	return worst;
}

/* The first event of `key` on t (sorted by key, then time) with a type in
 * types (NULL: any), at or after `after`; NULL when there is none. */
static const struct topic_event *first_of(const struct topic_events *t, const char *key,
					  const char *const *types, long long after)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(t->ev[mid].key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < t->n && !strcmp(t->ev[i].key, key); i++) {
		bool match = !types;

		for (int k = 0; types && types[k] && !match; k++)
			match = !strcmp(t->ev[i].type, types[k]);
		if (match && t->ev[i].ts >= after)
			return &t->ev[i];
	}
	return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

struct reactions reactions_of(struct topic_events *orders, struct topic_events *reactions,
			      const char *const *types, long long from_ms, long long to_ms)
{
	struct reactions r = {0};
	long long *all = calloc(orders->n + 1, sizeof(*all));
	size_t n = 0;

	qsort(reactions->ev, reactions->n, sizeof(*reactions->ev), by_key_ts);
	for (size_t i = 0; all && i < orders->n; i++) {
		const struct topic_event *placed = &orders->ev[i], *next;

		if (strcmp(placed->type, "OrderPlaced") || placed->ts < from_ms ||
		    placed->ts >= to_ms)
			continue;
		next = first_of(reactions, placed->key, types, placed->ts);
		if (!next) {
			r.missing++;
			continue;
		}
		all[n++] = next->ts - placed->ts;
	}
	if (n) {
		qsort(all, n, sizeof(*all), cmp_ll);
		r.median_ms = all[n / 2];
		r.max_ms = all[n - 1];
	}
	r.n = (int)n;
	free(all);
	return r;
}
