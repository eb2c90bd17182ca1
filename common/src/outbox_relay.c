#include "es/outbox.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "es/clock.h"
#include "es/config.h"
#include "es/kafka.h"
#include "es/log.h"
#include "es/metrics.h"

/* The backlog gauge is refreshed at most this often while rows flow. */
#define BACKLOG_COUNT_MS 1000

struct es_relay {
	char *conninfo;
	char *schema;
	char *bootstrap;
	char *service;
	char *source; /* "/eventshop/<service>" for the ce_source header */
	int poll_interval_ms;
	int batch_size;
	int max_attempts;
	const struct es_kafka_metrics *metrics;
	struct es_counter *parked; /* es_outbox_parked_total{topic} */

	/* A fault point for the crash tests: the process dies after the
	 * broker acknowledged a round and before it is marked published
	 * (ES_FAULT_RELAY_EXIT_BEFORE_MARK=1; compiled in with
	 * ES_FAULT_POINTS only). */
	bool fault_exit_before_mark;

	/* Readable when a commit of this process wrote outbox rows
	 * (es_relay_commit_hook), or when the relay is asked to stop. */
	int wake_fd;

	pthread_t thread;
	bool started;
	atomic_bool stop;
	atomic_long backlog;
	atomic_bool active;
	atomic_ulong published;
	atomic_bool failed;

	/* Owned by the relay thread. */
	struct es_db *db;
	struct es_producer *producer;
	long long backlog_counted_ms; /* when the backlog was last counted */
};

/* One row in flight; its delivery report lands here. */
struct in_flight {
	char id[24];
	const char *topic, *key, *type; /* into the round's PGresult */
	int done;
	int held; /* not sent: an earlier row of its key failed this round */
	rd_kafka_resp_err_t err;
};

static void on_delivery(void *arg, void *opaque, rd_kafka_resp_err_t err,
			const rd_kafka_message_t *rkm)
{
	struct in_flight *f = opaque;

	f->err = err;
	f->done = 1;
}

struct es_relay *es_relay_new(const struct es_relay_config *cfg, char *errstr, size_t errstr_size)
{
	struct es_relay *r = calloc(1, sizeof(*r));
	char source[128];
#ifdef ES_FAULT_POINTS
	const char *fault = getenv("ES_FAULT_RELAY_EXIT_BEFORE_MARK");
#else
	const char *fault = NULL;
#endif

	if (!r) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	r->wake_fd = -1;
	snprintf(source, sizeof(source), "/eventshop/%s", cfg->service);
	r->conninfo = strdup(cfg->conninfo);
	r->schema = strdup(cfg->schema);
	r->bootstrap = strdup(cfg->bootstrap);
	r->service = strdup(cfg->service);
	r->source = strdup(source);
	r->poll_interval_ms = cfg->poll_interval_ms > 0 ? cfg->poll_interval_ms : 1000;
	r->batch_size = cfg->batch_size > 0 ? cfg->batch_size : 200;
	r->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 10;
	r->metrics = cfg->metrics;
	r->fault_exit_before_mark = fault && !strcmp(fault, "1");
	atomic_init(&r->backlog, -1);
	r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->wake_fd < 0) {
		snprintf(errstr, errstr_size, "eventfd: cannot make the relay's wake-up");
		es_relay_free(r);
		return NULL;
	}
	if (!r->conninfo || !r->schema || !r->bootstrap || !r->service || !r->source) {
		snprintf(errstr, errstr_size, "out of memory");
		es_relay_free(r);
		return NULL;
	}
	return r;
}

/* Makes wait_for_rows return. Safe from any thread. */
static void wake(struct es_relay *r)
{
	uint64_t one = 1;

	/* Fails only when the counter is near overflow: awake already. */
	if (write(r->wake_fd, &one, sizeof(one)) < 0)
		return;
}

/* Sleeps up to ms in 100 ms slices so that a stop request is seen quickly;
 * returns early when a commit of this process wrote outbox rows or the
 * database NOTIFYs new rows (written by another instance, or un-parked). */
static void wait_for_rows(struct es_relay *r, int ms, bool listening)
{
	long long deadline = es_monotonic_ms() + ms;

	while (!atomic_load(&r->stop)) {
		long long left = deadline - es_monotonic_ms();
		int slice;

		if (left <= 0)
			return;
		slice = left < 100 ? (int)left : 100;
		if (listening && r->db && es_db_ok(r->db)) {
			if (es_db_wait_notify(r->db, r->wake_fd, slice) > 0) {
				uint64_t n;

				/* Every wake so far is answered by the round
				 * that follows; a later one stays readable. */
				if (read(r->wake_fd, &n, sizeof(n)) < 0)
					n = 0;
				return;
			}
		} else {
			es_sleep_ms(slice);
		}
	}
}

/* Takes the relay lock (non-blocking) and starts listening. */
static int try_activate(struct es_relay *r, char *errstr, size_t errstr_size)
{
	char lockname[256], channel[192];
	const char *params[1] = {lockname};
	PGresult *res;
	bool got;

	snprintf(lockname, sizeof(lockname), "es_outbox_relay:%s", r->schema);
	res = es_db_query(r->db, "SELECT pg_try_advisory_lock(hashtext($1)) AS locked", 1, params,
			  errstr, errstr_size);
	if (!res)
		return -1;
	got = !strcmp(es_db_get(res, 0, "locked"), "t");
	PQclear(res);
	if (!got)
		return 0;

	/* The relay reads the head of a queue whose rows leave the partial
	 * index es_outbox_unpublished as fast as they enter it: only an index
	 * scan in id order stops after the round's rows, and only a plain
	 * index scan marks the entries of rows it finds published as dead, so
	 * that the next round skips them without reading the table. The
	 * statistics cannot tell the planner either: they count the live
	 * unpublished rows, a handful, and with a handful a bitmap scan and a
	 * sort look cheaper, or a sequential scan while the table is new.
	 * Measured, a bitmap scan read the table for 500 to 3,000 published
	 * rows on every round under load (docs/benchmarks.md). This
	 * connection runs only the relay's statements, each of which has an
	 * index made for it. */
	res = es_db_query(r->db,
			  "SELECT set_config('enable_bitmapscan', 'off', false),"
			  " set_config('enable_seqscan', 'off', false)",
			  0, NULL, errstr, errstr_size);
	if (!res)
		return -1;
	PQclear(res);

	snprintf(channel, sizeof(channel), "es_outbox_%s", r->schema);
	if (es_db_listen(r->db, channel, errstr, errstr_size))
		return -1;
	atomic_store(&r->active, true);
	es_info("outbox relay active for schema %s", r->schema);
	return 1;
}

static long count_backlog(struct es_relay *r, char *errstr, size_t errstr_size)
{
	PGresult *res = es_db_query(
		r->db, "SELECT count(*) AS n FROM es_outbox WHERE published_at IS NULL", 0, NULL,
		errstr, errstr_size);
	long n;

	if (!res)
		return -1;
	n = strtol(es_db_get(res, 0, "n"), NULL, 10);
	PQclear(res);
	return n;
}

/* Marks the delivered rows of a round. ids are sent as one array literal so
 * the statement stays parameterized whatever the round's size. */
static int mark_published(struct es_relay *r, struct in_flight *rows, int n, char *errstr,
			  size_t errstr_size)
{
	size_t cap = (size_t)n * 24 + 3, used = 0;
	char *arr = malloc(cap);
	const char *params[1] = {arr};
	long marked;
	int count = 0;

	if (!arr) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	arr[used++] = '{';
	for (int i = 0; i < n; i++) {
		if (!rows[i].done || rows[i].err || rows[i].held)
			continue;
		used += (size_t)snprintf(arr + used, cap - used, "%s%s", count ? "," : "",
					 rows[i].id);
		count++;
	}
	arr[used++] = '}';
	arr[used] = '\0';
	if (count == 0) {
		free(arr);
		return 0;
	}
	marked = es_db_exec(
		r->db, "UPDATE es_outbox SET published_at = now() WHERE id = ANY($1::bigint[])", 1,
		params, errstr, errstr_size);
	free(arr);
	if (marked < 0)
		return -1;
	atomic_fetch_add(&r->published, (unsigned long)marked);
	return count;
}

/* true when a row before row i of this round, of the same topic and key,
 * failed: row i must not go out before it. */
static bool key_failed(const struct in_flight *rows, int i)
{
	for (int j = 0; j < i; j++) {
		if ((rows[j].err || rows[j].held) && !strcmp(rows[j].topic, rows[i].topic) &&
		    !strcmp(rows[j].key, rows[i].key))
			return true;
	}
	return false;
}

/* Errors that no retry can cure: the message or its topic is wrong. */
static bool never_succeeds(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_MSG:
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
	case RD_KAFKA_RESP_ERR__INVALID_ARG:
		return true;
	default:
		return false;
	}
}

/*
 * Counts a failed attempt of row f, and parks the row when it can never
 * succeed or has failed max_attempts rounds: its reason is kept, the
 * es_outbox_parked_total metric counts it, and it stays out of the relay's
 * way (with every later row of its key) until es_outbox_retry. Returns 0,
 * or -1 (errstr filled) when the database failed.
 */
static int count_failure(struct es_relay *r, const struct in_flight *f, char *errstr,
			 size_t errstr_size)
{
	char max[16], reason[256];
	const char *params[4] = {f->id, never_succeeds(f->err) ? "true" : "false", max, reason};
	PGresult *res;
	int parked;

	snprintf(max, sizeof(max), "%d", r->max_attempts);
	snprintf(reason, sizeof(reason), "%s (%s)", rd_kafka_err2str(f->err),
		 rd_kafka_err2name(f->err));
	res = es_db_query(
		r->db,
		"UPDATE es_outbox SET attempts = attempts + 1,"
		" parked_at = CASE WHEN $2::bool OR attempts + 1 >= $3::int"
		" THEN now() END,"
		" park_reason = CASE WHEN $2::bool OR attempts + 1 >= $3::int"
		" THEN $4 END"
		" WHERE id = $1::bigint RETURNING attempts, parked_at IS NOT NULL AS parked",
		4, params, errstr, errstr_size);
	if (!res)
		return -1;
	parked = PQntuples(res) == 1 && !strcmp(es_db_get(res, 0, "parked"), "t");
	if (parked) {
		es_warn("outbox row %s (%s, key %s) parked after %s attempt(s): %s; later rows of "
			"its key wait behind it (shopctl outbox list, shopctl outbox retry)",
			f->id, f->type, f->key, es_db_get(res, 0, "attempts"), reason);
		if (r->parked)
			es_counter_inc(r->parked, (const char *const[]){f->topic});
	} else {
		es_warn("outbox row %s not published (%s): retried next round", f->id, reason);
	}
	PQclear(res);
	return 0;
}

/*
 * Hands the round's rows (res) to the producer in id order. A row of a key
 * whose earlier row failed in this round is held back, so it cannot
 * overtake it. A stop request while the local queue is full ends the round
 * early: *n becomes the number of rows in flight. Returns 0, or -1 when the
 * producer failed fatally.
 */
static int send_rows(struct es_relay *r, const PGresult *res, struct in_flight *rows, int *n,
		     char *errstr, size_t errstr_size)
{
	for (int i = 0; i < *n; i++) {
		int err;

		snprintf(rows[i].id, sizeof(rows[i].id), "%s", es_db_get(res, i, "id"));
		rows[i].topic = es_db_get(res, i, "topic");
		rows[i].key = es_db_get(res, i, "msg_key");
		rows[i].type = es_db_get(res, i, "event_type");
		if (key_failed(rows, i)) {
			rows[i].done = rows[i].held = 1;
			continue;
		}
		/* The local queue may be full: serve reports and try again. Any
		 * other refusal is this row's failure, as a report would be. */
		while ((err = es_producer_send_event(r->producer, rows[i].topic, rows[i].key,
						     es_db_get(res, i, "payload"),
						     es_db_get(res, i, "event_id"), rows[i].type,
						     r->source, &rows[i], errstr, errstr_size))) {
			if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
				rows[i].err = (rd_kafka_resp_err_t)err;
				rows[i].done = 1;
				break;
			}
			if (es_producer_poll(r->producer, 100, errstr, errstr_size))
				return -1;
			if (atomic_load(&r->stop)) {
				*n = i; /* only these are in flight */
				return 0;
			}
		}
	}
	return 0;
}

/*
 * Waits for the delivery report of every row: rows is referenced by the
 * messages in flight. When asked to stop with the broker away, gives it
 * 5 s, then purges: purged rows report an error, stay unpublished, and go
 * out after the restart. Returns 0, or -1 when the producer failed fatally.
 */
static int await_reports(struct es_relay *r, struct in_flight *rows, int n, char *errstr,
			 size_t errstr_size)
{
	for (int stopping_ms = 0;; stopping_ms += atomic_load(&r->stop) ? 50 : 0) {
		int pending = 0;

		/* The round is whole: nothing more will join its messages, so
		 * they go now instead of after linger.ms (a flush ignores it),
		 * which every hop of a saga would otherwise wait. The flush
		 * serves the reports; its timeout is no error here. */
		es_producer_flush(r->producer, 50);
		if (es_producer_poll(r->producer, 0, errstr, errstr_size))
			return -1;
		for (int i = 0; i < n; i++)
			pending += !rows[i].done;
		if (!pending)
			return 0;
		if (stopping_ms == 5000)
			rd_kafka_purge(es_producer_handle(r->producer),
				       RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	}
}

/* Counts each row's outcome: a failed row counts towards its parking, a
 * published one in es_events_produced_total. Returns 0 or -1. */
static int tally(struct es_relay *r, struct in_flight *rows, int n, char *errstr,
		 size_t errstr_size)
{
	for (int i = 0; i < n; i++) {
		if (rows[i].err) {
			if (count_failure(r, &rows[i], errstr, errstr_size))
				return -1;
		} else if (!rows[i].held && r->metrics) {
			es_counter_inc(r->metrics->produced,
				       (const char *[]){rows[i].topic, rows[i].type});
		}
	}
	return 0;
}

/*
 * One round: read up to batch_size unpublished rows in id order, produce
 * them, wait for every delivery report, mark the delivered ones. Returns the
 * number of rows read, or -1 (errstr filled).
 */
static int relay_round(struct es_relay *r, char *errstr, size_t errstr_size)
{
	char limit[16];
	const char *params[1] = {limit};
	struct in_flight *rows = NULL;
	PGresult *res;
	int n, result = -1;

	snprintf(limit, sizeof(limit), "%d", r->batch_size);
	/* Parked rows wait for an operator, and so does every later row of
	 * their key: none may overtake the one before it. */
	res = es_db_query(
		r->db,
		"SELECT id, topic, msg_key, event_id, event_type, payload FROM es_outbox o"
		" WHERE published_at IS NULL AND parked_at IS NULL AND NOT EXISTS ("
		"SELECT 1 FROM es_outbox p WHERE p.parked_at IS NOT NULL"
		" AND p.topic = o.topic AND p.msg_key = o.msg_key AND p.id < o.id)"
		" ORDER BY id LIMIT $1::int",
		1, params, errstr, errstr_size);
	if (!res)
		return -1;
	n = PQntuples(res);
	if (n == 0) {
		result = 0;
		goto out;
	}
	rows = calloc((size_t)n, sizeof(*rows));
	if (!rows) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	if (send_rows(r, res, rows, &n, errstr, errstr_size) ||
	    await_reports(r, rows, n, errstr, errstr_size))
		goto fatal;
	if (tally(r, rows, n, errstr, errstr_size))
		goto out;
	if (r->fault_exit_before_mark) {
		es_warn("fault injection: exiting after publish, before marking %d row(s)", n);
		_exit(77);
	}
	if (mark_published(r, rows, n, errstr, errstr_size) < 0)
		goto out;
	result = n;
	goto out;
fatal:
	/* rows must outlive the producer's references: destroy it first. */
	atomic_store(&r->failed, true);
	es_producer_free(r->producer);
	r->producer = NULL;
out:
	free(rows);
	PQclear(res);
	return result;
}

static void deactivate(struct es_relay *r)
{
	/* Closing the connection releases the advisory lock and the LISTEN. */
	es_db_free(r->db);
	r->db = NULL;
	atomic_store(&r->active, false);
	atomic_store(&r->backlog, -1);
}

static void *relay_main(void *arg)
{
	struct es_relay *r = arg;
	char errstr[512];

	while (!atomic_load(&r->stop) && !atomic_load(&r->failed)) {
		int n;

		if (!r->db) {
			r->db = es_db_connect(r->conninfo, r->schema, 0, errstr, sizeof(errstr));
			if (!r->db) {
				es_warn("outbox relay: %s", errstr);
				wait_for_rows(r, r->poll_interval_ms, false);
				continue;
			}
		}
		if (!atomic_load(&r->active)) {
			int got = try_activate(r, errstr, sizeof(errstr));

			if (got < 0) {
				es_warn("outbox relay: %s", errstr);
				deactivate(r);
			}
			if (got <= 0) {
				/* Another instance relays: stand by. */
				wait_for_rows(r, r->poll_interval_ms, false);
				continue;
			}
		}
		n = relay_round(r, errstr, sizeof(errstr));
		if (n < 0) {
			if (atomic_load(&r->failed)) {
				es_error("outbox relay stopped: %s", errstr);
				break;
			}
			es_warn("outbox relay: %s", errstr);
			if (!es_db_ok(r->db))
				deactivate(r);
			wait_for_rows(r, r->poll_interval_ms, false);
			continue;
		}
		/* An empty round means no backlog. Otherwise count, but at most
		 * once a second: under load rounds follow each other closely,
		 * and the count is a query of its own. */
		if (n == 0) {
			atomic_store(&r->backlog, 0);
		} else if (es_monotonic_ms() - r->backlog_counted_ms >= BACKLOG_COUNT_MS) {
			atomic_store(&r->backlog, count_backlog(r, errstr, sizeof(errstr)));
			r->backlog_counted_ms = es_monotonic_ms();
		}
		if (n < r->batch_size)
			wait_for_rows(r, r->poll_interval_ms, true);
	}
	deactivate(r);
	return NULL;
}

int es_relay_start(struct es_relay *r, char *errstr, size_t errstr_size)
{
	r->producer = es_producer_new(r->bootstrap, r->service, on_delivery, r, errstr,
				      errstr_size);
	if (!r->producer)
		return -1;
	if (pthread_create(&r->thread, NULL, relay_main, r)) {
		snprintf(errstr, errstr_size, "cannot start the relay thread");
		es_producer_free(r->producer);
		r->producer = NULL;
		return -1;
	}
	r->started = true;
	return 0;
}

void es_relay_free(struct es_relay *r)
{
	if (!r)
		return;
	atomic_store(&r->stop, true);
	if (r->wake_fd >= 0)
		wake(r);
	if (r->started)
		pthread_join(r->thread, NULL);
	if (r->wake_fd >= 0)
		close(r->wake_fd);
	es_producer_free(r->producer);
	free(r->conninfo);
	free(r->schema);
	free(r->bootstrap);
	free(r->service);
	free(r->source);
	free(r);
}

static int backlog_gauge(void *arg, double *value)
{
	long n = es_relay_backlog(arg);

	if (n < 0)
		return -1;
	*value = (double)n;
	return 0;
}

static int active_gauge(void *arg, double *value)
{
	*value = es_relay_active(arg) ? 1 : 0;
	return 0;
}

int es_relay_register_gauges(struct es_relay *r, struct es_metrics *reg, char *errstr,
			     size_t errstr_size)
{
	r->parked = es_counter_register(reg, "es_outbox_parked_total",
					"Outbox rows the relay gave up on and parked, by topic.",
					(const char *const[]){"topic", NULL}, errstr, errstr_size);
	if (!r->parked)
		return -1;
	if (es_gauge_register_fn(reg, "es_outbox_backlog",
				 "Outbox rows not yet published, as of the relay's last round.",
				 backlog_gauge, r, errstr, errstr_size))
		return -1;
	return es_gauge_register_fn(reg, "es_outbox_relay_active",
				    "1 while this instance holds the outbox relay lock.",
				    active_gauge, r, errstr, errstr_size);
}

long es_relay_backlog(const struct es_relay *r)
{
	return atomic_load(&((struct es_relay *)r)->backlog);
}

bool es_relay_active(const struct es_relay *r)
{
	return atomic_load(&((struct es_relay *)r)->active);
}

void es_relay_commit_hook(void *relay, struct es_db *db)
{
	struct es_relay *r = relay;
	char errstr[256];
	PGresult *res;

	if (es_relay_active(r)) {
		wake(r);
		return;
	}
	/* This instance stands by (or has not taken the lock yet): the
	 * active relay, in another process, LISTENs. Without it, its poll
	 * interval would be the rows' delay. */
	res = es_db_query(db, "SELECT pg_notify('es_outbox_' || current_schema(), '')", 0, NULL,
			  errstr, sizeof(errstr));
	if (!res) {
		es_warn("outbox: could not wake the relay of another instance (%s); it polls",
			errstr);
		return;
	}
	PQclear(res);
}

unsigned long es_relay_published(const struct es_relay *r)
{
	return atomic_load(&((struct es_relay *)r)->published);
}

bool es_relay_failed(const struct es_relay *r)
{
	return atomic_load(&((struct es_relay *)r)->failed);
}
