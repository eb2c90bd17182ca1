/*
 * relay_bench: how fast events go through the transactional outbox.
 *
 *   usage: relay_bench [-n ROWS] [-b BATCH] [-r RUNS]
 *
 * With KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL set (tests/infra/with-infra
 * sets both), each run writes ROWS OrderPlaced events into a fresh schema's
 * outbox, 1000 per transaction, then starts a relay with BATCH rows per
 * round and waits until all are published and marked. It prints both rates
 * per run and the median of the runs. The schemas are dropped afterwards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "es/db.h"
#include "es/envelope.h"
#include "es/log.h"
#include "es/outbox.h"

#define ORDER "0b6f2c9e-51d4-4e8a-9c1f-3a7d2e6b8f40"
#define PER_TX 1000
#define MAX_RUNS 15

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct put_args {
	int first, count;
};

/* One OrderPlaced of typical size (about 900 bytes as a CloudEvent). */
static int put_rows(struct es_db *db, void *arg, char *errstr, size_t errstr_size)
{
	struct put_args *a = arg;

	for (int i = a->first; i < a->first + a->count; i++) {
		json_t *data = json_pack("{s:s,s:s,s:[{s:s,s:i,s:i}],s:i,s:s,s:s}", "orderId",
					 ORDER, "customerId", "c-42", "items", "sku", "classic",
					 "quantity", 1, "unitPrice", 1299, "total", 1299 + i % 7,
					 "currency", "EUR", "paymentToken", "tok_ok");
		struct es_event *ev = es_event_new("order-service", "OrderPlaced", ORDER, NULL,
						   NULL, data);
		int rc;

		if (!ev) {
			snprintf(errstr, errstr_size, "out of memory");
			return -1;
		}
		rc = es_outbox_put(db, "bench.orders", ev, errstr, errstr_size);
		es_event_free(ev);
		if (rc)
			return -1;
	}
	return 0;
}

static int compare(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* One run; fills the two rates. Returns 0 or -1 (message printed). */
static int run(const char *conninfo, const char *bootstrap, int rows, int batch, double *put_rate,
	       double *relay_rate)
{
	char schema[64], errstr[512], sql[128];
	struct es_relay_config cfg = {
		.conninfo = conninfo,
		.bootstrap = bootstrap,
		.service = "relay-bench",
		.batch_size = batch,
	};
	struct es_relay *r = NULL;
	struct es_db *db;
	double t0;
	int result = -1;

	snprintf(schema, sizeof(schema), "relay_bench_%d_%ld", (int)getpid(), (long)now_s());
	db = es_db_connect(conninfo, schema, 10000, errstr, sizeof(errstr));
	if (!db) {
		fprintf(stderr, "relay_bench: %s\n", errstr);
		return -1;
	}
	if (es_db_migrate(db, NULL, errstr, sizeof(errstr)) < 0)
		goto out;

	t0 = now_s();
	for (int first = 0; first < rows; first += PER_TX) {
		struct put_args a = {first, rows - first < PER_TX ? rows - first : PER_TX};

		if (es_db_tx(db, put_rows, &a, errstr, sizeof(errstr)))
			goto out;
	}
	*put_rate = rows / (now_s() - t0);

	cfg.schema = schema;
	r = es_relay_new(&cfg, errstr, sizeof(errstr));
	if (!r)
		goto out;
	t0 = now_s();
	if (es_relay_start(r, errstr, sizeof(errstr)))
		goto out;
	while (es_relay_published(r) < (unsigned long)rows) {
		if (es_relay_failed(r)) {
			snprintf(errstr, sizeof(errstr), "the relay failed (see its log)");
			goto out;
		}
		usleep(1000);
	}
	*relay_rate = rows / (now_s() - t0);
	result = 0;
out:
	if (result)
		fprintf(stderr, "relay_bench: %s\n", errstr);
	es_relay_free(r);
	snprintf(sql, sizeof(sql), "DROP SCHEMA \"%s\" CASCADE", schema);
	es_db_exec(db, sql, 0, NULL, errstr, sizeof(errstr));
	es_db_free(db);
	return result;
}

int main(int argc, char **argv)
{
	const char *conninfo = getenv("DATABASE_URL");
	const char *bootstrap = getenv("KAFKA_BOOTSTRAP_SERVERS");
	double put[MAX_RUNS], relay[MAX_RUNS];
	long rows = 20000, batch = 200, runs = 3;
	int opt;

	while ((opt = getopt(argc, argv, "n:b:r:")) != -1) {
		char *end;
		long v = strtol(optarg, &end, 10);

		if (*end || v < 1) {
			fprintf(stderr, "relay_bench: -%c needs a positive number\n", opt);
			return 2;
		}
		if (opt == 'n')
			rows = v;
		else if (opt == 'b')
			batch = v;
		else if (opt == 'r')
			runs = v > MAX_RUNS ? MAX_RUNS : v;
		else
			return 2;
	}
	if (!conninfo || !bootstrap || rows > 10000000 || batch > 100000) {
		fprintf(stderr, "usage: relay_bench [-n ROWS] [-b BATCH] [-r RUNS]\n"
				"needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS\n");
		return 2;
	}
	es_log_init("relay-bench", ES_LOG_WARN);
	for (int i = 0; i < runs; i++) {
		if (run(conninfo, bootstrap, (int)rows, (int)batch, &put[i], &relay[i]))
			return 1;
		printf("run %d: outbox_put %.0f rows/s, relay %.0f events/s\n", i + 1, put[i],
		       relay[i]);
	}
	qsort(put, (size_t)runs, sizeof(put[0]), compare);
	qsort(relay, (size_t)runs, sizeof(relay[0]), compare);
	printf("median of %ld runs, %ld rows, batch %ld: outbox_put %.0f rows/s (%d per "
	       "transaction), relay %.0f events/s published and marked\n",
	       runs, rows, batch, put[runs / 2], PER_TX, relay[runs / 2]);
	return 0;
}
