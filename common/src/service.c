#include "es/clock.h"
#include "es/service.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "es/config.h"
#include "es/daemon.h"
#include "es/faults.h"
#include "es/log.h"

int es_service_topics(struct es_topics *t, char *errstr, size_t errstr_size)
{
	t->orders = es_config_str("TOPIC_ORDERS", "orders");
	t->payments = es_config_str("TOPIC_PAYMENTS", "payments");
	t->inventory = es_config_str("TOPIC_INVENTORY", "inventory");
	t->notifications = es_config_str("TOPIC_NOTIFICATIONS", "notifications");
	t->shipments = es_config_str("TOPIC_SHIPMENTS", "shipments");
	return 0;
}

/* "payment-service" -> "payment_service": a schema name needing no quotes. */
static void default_schema(const char *name, char *buf, size_t size)
{
	size_t i;

	for (i = 0; name[i] && i + 1 < size; i++)
		buf[i] = name[i] == '-' ? '_' : name[i];
	buf[i] = '\0';
}

static bool ready(void *arg, char *reason, size_t reason_size)
{
	struct es_service *svc = arg;

	if (!atomic_load(&svc->db_ok)) {
		snprintf(reason, reason_size, "database unreachable");
		return false;
	}
	if (svc->relay && es_relay_failed(svc->relay)) {
		snprintf(reason, reason_size, "outbox relay failed");
		return false;
	}
	if (!svc->http_only && !atomic_load(&svc->joined)) {
		snprintf(reason, reason_size, "not yet in its Kafka consumer group");
		return false;
	}
	return true;
}

static int read_config(struct es_service *svc, const struct es_service_spec *spec,
		       struct es_http_conf *http, char *errstr, size_t errstr_size)
{
	enum es_log_level level;
	long port, threads, client_limit, request_timeout;
	char dflt[128];
	const char *s;

	s = es_config_str("LOG_LEVEL", "info");
	if (es_log_level_parse(s, &level)) {
		snprintf(errstr, errstr_size,
			 "LOG_LEVEL: \"%s\" is not one of debug, info, warn, error", s);
		return -1;
	}
	es_log_init(spec->name, level);

	svc->bootstrap = es_config_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092");
	svc->database_url = es_config_str("DATABASE_URL",
					  "postgresql://postgres@127.0.0.1:5432/postgres");
	/* Defaults go through a buffer of their own: es_config_str returns
	 * the default pointer itself when the variable is unset. */
	default_schema(spec->name, dflt, sizeof(dflt));
	s = es_config_str("DATABASE_SCHEMA", dflt);
	if (strlen(s) >= sizeof(svc->schema)) {
		snprintf(errstr, errstr_size, "DATABASE_SCHEMA: longer than %zu bytes",
			 sizeof(svc->schema) - 1);
		return -1;
	}
	snprintf(svc->schema, sizeof(svc->schema), "%s", s);
	svc->group = es_config_str("CONSUMER_GROUP", spec->name);
	snprintf(dflt, sizeof(dflt), "dlq.%s", spec->name);
	s = es_config_str("TOPIC_DLQ", dflt);
	if (strlen(s) >= sizeof(svc->dlq_topic)) {
		snprintf(errstr, errstr_size, "TOPIC_DLQ: longer than %zu bytes",
			 sizeof(svc->dlq_topic) - 1);
		return -1;
	}
	snprintf(svc->dlq_topic, sizeof(svc->dlq_topic), "%s", s);
	if (es_service_topics(&svc->topics, errstr, errstr_size))
		return -1;

	es_http_conf_init(http);
	if (es_config_long("HTTP_PORT", spec->http_port, 0, 65535, &port, errstr, errstr_size) ||
	    es_config_long("HTTP_THREADS", ES_HTTP_DEFAULT_THREADS, 1, 256, &threads, errstr,
			   errstr_size) ||
	    es_config_long("HTTP_CLIENT_CONNECTION_LIMIT", ES_HTTP_DEFAULT_CLIENT_CONNECTION_LIMIT,
			   0, ES_HTTP_DEFAULT_CONNECTION_LIMIT, &client_limit, errstr,
			   errstr_size) ||
	    es_config_long("HTTP_REQUEST_TIMEOUT_S", ES_HTTP_DEFAULT_REQUEST_TIMEOUT, 0, 3600,
			   &request_timeout, errstr, errstr_size))
		return -1;
	http->port = (unsigned short)port;
	{
		char host[256] = "";

		if (gethostname(host, sizeof(host)))
			host[0] = '\0';
		host[sizeof(host) - 1] = '\0';
		if (es_service_instance_id(es_config_str("INSTANCE_ID", NULL), spec->name, host,
					   http->port, svc->instance_id, sizeof(svc->instance_id),
					   errstr, errstr_size))
			return -1;
	}
	http->threads = (unsigned int)threads;
	http->client_connection_limit = (unsigned int)client_limit;
	http->request_timeout = (unsigned int)request_timeout;
	http->bind_addr = es_config_str("HTTP_BIND", "127.0.0.1");
	http->metrics = svc->metrics;
	http->ready = ready;
	http->ready_arg = svc;
	return 0;
}

int es_service_init(struct es_service *svc, const struct es_service_spec *spec, char *errstr,
		    size_t errstr_size)
{
	struct es_http_conf http;
	long db_timeout_ms, max_attempts = 10, batch_max, fetch_wait_ms;
	char why[512];
	int applied;

	memset(svc, 0, sizeof(*svc));
	svc->name = spec->name;
	svc->http_only = spec->http_only;
	if (es_daemon_signals()) {
		snprintf(errstr, errstr_size, "cannot install signal handlers");
		return -1;
	}
	svc->metrics = es_metrics_new();
	if (!svc->metrics) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	if (read_config(svc, spec, &http, errstr, errstr_size) ||
	    es_config_long("DATABASE_CONNECT_TIMEOUT_MS", 60000, 0, 3600000, &db_timeout_ms, errstr,
			   errstr_size) ||
	    es_config_long("CONSUMER_BATCH_MAX", ES_CONSUMER_BATCH_MAX, 1, 10000, &batch_max,
			   errstr, errstr_size) ||
	    es_config_long("CONSUMER_FETCH_WAIT_MS", spec->fetch_wait_ms, 0, 10000, &fetch_wait_ms,
			   errstr, errstr_size) ||
	    es_retention_config_env(&svc->retention, errstr, errstr_size) ||
	    es_auth_from_env(&svc->auth, errstr, errstr_size) ||
	    es_kafka_metrics_register(svc->metrics, &svc->kmetrics, errstr, errstr_size))
		goto fail;
	http.auth = svc->auth;
	svc->batch_max = (int)batch_max;
	svc->fetch_wait_ms = (int)fetch_wait_ms;
	/* The fault switches' server: a wrong ADMIN_PORT stops the start
	 * before the database is waited for. */
	svc->admin = es_faults_admin_new(http.port, svc->auth, errstr, errstr_size);
	if (!svc->admin && errstr[0])
		goto fail;
	svc->pruned = es_counter_register(
		svc->metrics, "es_retention_deleted_total",
		"Old rows deleted from the outbox and the inbox, by table.",
		(const char *const[]){"table", NULL}, errstr, errstr_size);
	if (!svc->pruned)
		goto fail;

	es_info("starting: kafka %s, database schema %s, http %s:%u", svc->bootstrap, svc->schema,
		http.bind_addr, http.port);
	svc->db = es_db_connect(svc->database_url, svc->schema, (int)db_timeout_ms, why,
				sizeof(why));
	if (!svc->db) {
		snprintf(errstr, errstr_size, "DATABASE_URL: %s", why);
		goto fail;
	}
	applied = es_db_migrate_list(svc->db, spec->migrations, spec->nmigrations, errstr,
				     errstr_size);
	if (applied < 0)
		goto fail;
	atomic_store(&svc->db_ok, true);

	/* The HTTP handlers' connections: as many kept as there are
	 * threads to use them (es_http_db). */
	svc->pool = es_dbpool_new(svc->database_url, svc->schema, http.threads);
	if (!svc->pool) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	http.db_pool = svc->pool;
	svc->http = es_http_new(&http, errstr, errstr_size);
	if (!svc->http)
		goto fail;
	if (spec->relay && es_config_long("OUTBOX_MAX_ATTEMPTS", 10, 1, 1000000, &max_attempts,
					  errstr, errstr_size))
		goto fail;
	if (spec->relay) {
		struct es_relay_config rc = {
			.conninfo = svc->database_url,
			.schema = svc->schema,
			.bootstrap = svc->bootstrap,
			.service = spec->name,
			.max_attempts = (int)max_attempts,
			.metrics = &svc->kmetrics,
		};

		svc->relay = es_relay_new(&rc, errstr, errstr_size);
		if (!svc->relay ||
		    es_relay_register_gauges(svc->relay, svc->metrics, errstr, errstr_size))
			goto fail;
		/* Outbox rows committed on the daemon's connections wake the
		 * relay (es/outbox.h). */
		es_db_set_commit_hook(svc->db, es_relay_commit_hook, svc->relay);
		es_dbpool_set_commit_hook(svc->pool, es_relay_commit_hook, svc->relay);
	}
	return 0;
fail:
	es_service_release(svc);
	return -1;
}

int es_service_start(struct es_service *svc, char *errstr, size_t errstr_size)
{
	if (es_faults_register_metrics(svc->metrics, errstr, errstr_size) ||
	    es_http_start(svc->http, errstr, errstr_size))
		return -1;
	if (svc->admin && es_http_start(svc->admin, errstr, errstr_size))
		return -1;
	if (svc->relay && es_relay_start(svc->relay, errstr, errstr_size))
		return -1;
	es_info("serving HTTP on port %u", es_http_port(svc->http));
	if (!svc->auth)
		es_warn("AUTH_JWT_KEY_FILE is not set: every route is open to everyone, every "
			"customer's orders to every caller (development only; see docs/auth.md)");
	if (svc->admin)
		es_warn("fault switches on port %u (ADMIN_PORT; es/faults.h)",
			es_http_port(svc->admin));
	return 0;
}

/*
 * A retention pass when one is due: soon again while old rows are left
 * (the table is growing faster than one pass removes), otherwise in
 * RETENTION_IDLE_MS. A failure is the database's (it comes back, and the
 * next pass tries again), never a reason to stop consuming.
 */
#define RETENTION_BUSY_MS 200
#define RETENTION_IDLE_MS 10000
static void retention_tick(struct es_service *svc)
{
	struct es_retention_report rep;
	char why[256];
	long long now = es_monotonic_ms();

	if (now < svc->next_prune_ms || !es_db_ok(svc->db))
		return;
	if (es_retention_prune(svc->db, &svc->retention, &rep, why, sizeof(why)))
		es_warn("retention: %s (tried again later)", why);
	es_counter_add(svc->pruned, (const char *const[]){"es_inbox"}, (double)rep.inbox);
	es_counter_add(svc->pruned, (const char *const[]){"es_outbox"}, (double)rep.outbox);
	svc->next_prune_ms = now + (rep.caught_up ? RETENTION_IDLE_MS : RETENTION_BUSY_MS);
}

/*
 * The batch handler with the fault switches around the dispatch: a batch
 * held while paused (pause), a transient failure instead of the batch
 * (fail_next), or death right after its commit, before the consumer stores
 * its offsets (crash_after_commit).
 */
static enum es_handler_result faulty_batch(void *arg, struct es_batch_item *items, size_t n,
					   char *reason, size_t reason_size)
{
	enum es_handler_result r;

	/* The pause switch, set while the poll that read this batch was under
	 * way: the batch waits in hand, unapplied, until the switch is
	 * cleared (a stop leaves it to be read again). */
	while (es_fault_on(ES_FAULT_PAUSE)) {
		if (es_stop) {
			snprintf(reason, reason_size, "paused by the fault switch, then stopped");
			return ES_HANDLER_RETRY;
		}
		es_sleep_ms(100);
	}
	if (es_fault_take(ES_FAULT_FAIL_NEXT)) {
		snprintf(reason, reason_size,
			 "fault switch fail_next: a transient failure on purpose");
		return ES_HANDLER_RETRY;
	}
	r = es_dispatch_batch(arg, items, n, reason, reason_size);
#ifdef ES_FAULT_POINTS
	if (r == ES_HANDLER_OK && es_fault_take(ES_FAULT_CRASH_AFTER_COMMIT)) {
		es_error("fault switch crash_after_commit: dying after the batch's commit, before "
			 "its offsets are stored");
		raise(SIGKILL);
	}
#endif
	return r;
}

static bool id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

int es_service_instance_id(const char *env, const char *service, const char *host,
			   unsigned short port, char *out, size_t size, char *errstr,
			   size_t errstr_size)
{
	size_t len;

	out[0] = '\0';
	if (env && !strcmp(env, "none"))
		return 0;
	if (env) {
		len = strlen(env);
		for (size_t i = 0; i < len; i++) {
			if (!id_char(env[i])) {
				snprintf(errstr, errstr_size,
					 "INSTANCE_ID: \"%.64s\" has a character other than "
					 "letters, digits, '.', '_' and '-'",
					 env);
				return -1;
			}
		}
		if (len == 0 || len > 249 || len >= size) {
			snprintf(errstr, errstr_size, "INSTANCE_ID: 1 to 249 characters, not %zu",
				 len);
			return -1;
		}
		snprintf(out, size, "%s", env);
		return 0;
	}
	if (port == 0)
		return 0;
	snprintf(out, size, "%s.%.128s.%u", service, host && *host ? host : "localhost",
		 (unsigned)port);
	/* A hostname may hold what an id may not. */
	for (char *p = out; *p; p++) {
		if (!id_char(*p))
			*p = '-';
	}
	return 0;
}

int es_service_consume(struct es_service *svc, const char *const *topics,
		       const struct es_handlers *handlers, void *app, es_service_tick_fn tick,
		       void *tick_arg, char *errstr, size_t errstr_size)
{
	struct es_dispatch dispatch = {.consumer = svc->name,
				       .db = svc->db,
				       .handlers = handlers,
				       .app = app,
				       .stop = &es_stop};
	struct es_consumer_config cc = {
		.bootstrap = svc->bootstrap,
		.group_id = svc->group,
		.instance_id = svc->instance_id[0] ? svc->instance_id : NULL,
		.client_id = svc->name,
		.topics = topics,
		.service = svc->name,
		.dlq_topic = svc->dlq_topic,
		.handler = faulty_batch,
		.handler_arg = &dispatch,
		.metrics = &svc->kmetrics,
	};
	time_t last_reconnect = 0;

	cc.batch_max = svc->batch_max;
	cc.fetch_wait_ms = svc->fetch_wait_ms;

	svc->consumer = es_consumer_new(&cc, errstr, errstr_size);
	if (!svc->consumer)
		return -1;
	while (!es_stop) {
		if (es_fault_on(ES_FAULT_PAUSE))
			es_sleep_ms(100); /* the pause switch: no batch taken */
		else if (es_consumer_poll(svc->consumer, 100, &es_stop, errstr, errstr_size))
			return -1;
		if (!es_db_ok(svc->db) && time(NULL) != last_reconnect) {
			char why[256];

			/* A batch's RETRY covers the events in hand; this
			 * brings the connection back between batches, at
			 * most once a second. */
			last_reconnect = time(NULL);
			if (es_db_reconnect(svc->db, 0, why, sizeof(why)) == 0)
				es_info("database connection restored");
		}
		atomic_store(&svc->db_ok, es_db_ok(svc->db));
		atomic_store(&svc->joined, es_consumer_joined(svc->consumer));
		if (svc->relay && es_relay_failed(svc->relay)) {
			snprintf(errstr, errstr_size, "the outbox relay stopped on a fatal error");
			return -1;
		}
		if (tick && tick(svc, tick_arg, errstr, errstr_size))
			return -1;
		retention_tick(svc);
	}
	es_info("stopping on signal");
	return 0;
}

#define SERVE_CHECK_MS 1000
int es_service_serve(struct es_service *svc)
{
	long long next_check = 0;

	while (!es_stop) {
		long long now = es_monotonic_ms();

		if (now >= next_check) {
			char why[256];
			PGresult *res;

			next_check = now + SERVE_CHECK_MS;
			if (!es_db_ok(svc->db) &&
			    es_db_reconnect(svc->db, 0, why, sizeof(why)) == 0)
				es_info("database connection restored");
			res = es_db_ok(svc->db)
				      ? es_db_query(svc->db, "SELECT 1", 0, NULL, why, sizeof(why))
				      : NULL;
			PQclear(res);
			atomic_store(&svc->db_ok, res != NULL);
		}
		es_sleep_ms(100);
	}
	es_info("stopping on signal");
	return 0;
}

void es_service_release(struct es_service *svc)
{
	if (svc->http)
		es_http_stop(svc->http);
	if (svc->admin)
		es_http_stop(svc->admin);
	es_consumer_free(svc->consumer);
	es_relay_free(svc->relay);
	es_http_free(svc->http);
	es_http_free(svc->admin);
	es_dbpool_free(svc->pool);
	es_db_free(svc->db);
	es_metrics_free(svc->metrics);
	es_auth_free(svc->auth);
	memset(svc, 0, sizeof(*svc));
}
