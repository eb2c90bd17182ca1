/*
 * service: the frame every eventshop daemon runs in, so that each main.c
 * reads like its story:
 *
 *   struct es_service svc;
 *
 *   if (es_service_init(&svc, &spec, errstr, sizeof(errstr)))   config, log,
 *           return fail(errstr);                                 db, migrations
 *   es_http_route(svc.http, "GET", "/payments/{orderId}", ...);  its own routes
 *   if (es_service_start(&svc, errstr, sizeof(errstr)))          HTTP + relay
 *           ...
 *   rc = es_service_consume(&svc, topics, &payment_handlers, &app,
 *                           NULL, NULL, errstr, sizeof(errstr)); until SIGTERM
 *   es_service_release(&svc);                                    leave, flush
 *
 * Configuration (environment; every value is checked at start and a bad one
 * stops the daemon with a message naming the variable):
 *
 *   KAFKA_BOOTSTRAP_SERVERS   127.0.0.1:9092
 *   DATABASE_URL              postgresql://postgres@127.0.0.1:5432/postgres
 *   DATABASE_SCHEMA           the service name with "_" for "-" (payment_service)
 *   DATABASE_CONNECT_TIMEOUT_MS  60000: how long a start waits for the database
 *   HTTP_PORT                 the service's port from the contract (8080..8086)
 *   HTTP_BIND                 127.0.0.1 (0.0.0.0 in containers)
 *   HTTP_THREADS              4
 *   HTTP_CLIENT_CONNECTION_LIMIT  128: connections one address may hold (0: any)
 *   HTTP_REQUEST_TIMEOUT_S    10: a request not complete by then is cut (0: never)
 *   AUTH_JWT_KEY_FILE, AUTH_JWT_ALG  unset, HS256: the key that bearer tokens
 *                             are verified with (es/auth.h); unset, no route
 *                             asks for one
 *   LOG_LEVEL                 info (debug, info, warn, error)
 *   TOPIC_ORDERS, TOPIC_PAYMENTS, TOPIC_INVENTORY, TOPIC_NOTIFICATIONS,
 *   TOPIC_SHIPMENTS           orders, payments, inventory, notifications,
 *                             shipments
 *   TOPIC_DLQ                 dlq.<service>
 *   CONSUMER_GROUP            the service name
 *   CONSUMER_BATCH_MAX        256: most events applied in one transaction
 *   CONSUMER_FETCH_WAIT_MS    the spec's fetch_wait_ms: how long the broker
 *                             may hold a fetch to fill it (0: answer at once)
 *   OUTBOX_MAX_ATTEMPTS       10: failed rounds before the relay parks a row
 *   INBOX_RETENTION_S, OUTBOX_RETENTION_S, RETENTION_BATCH
 *                             how long processed inbox rows and published
 *                             outbox rows are kept (es/retention.h)
 *   KAFKA_*                   any librdkafka property (KAFKA_SECURITY_PROTOCOL...)
 *   ADMIN_PORT, ADMIN_BIND    unset (off), 127.0.0.1: the fault switches'
 *                             own server (es/faults.h), never on HTTP_PORT
 *
 * Between two polls, the consumer loop also deletes old inbox and outbox
 * rows, a bounded pass at a time (es/retention.h).
 *
 * Threads: the consumer's handlers run on the thread that called
 * es_service_consume and may use svc->db freely; HTTP handlers run in
 * libmicrohttpd's pool and reach the database through es_http_db, which
 * lends each request a connection from svc->pool (es_db is not
 * thread-safe). The relay has its own connection and thread.
 */
#ifndef ES_SERVICE_H
#define ES_SERVICE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "es/auth.h"
#include "es/db.h"
#include "es/dispatch.h"
#include "es/http.h"
#include "es/kafka.h"
#include "es/metrics.h"
#include "es/outbox.h"
#include "es/retention.h"

struct es_service_spec {
	const char *name; /* "payment-service": log lines, client id, defaults */
	unsigned short http_port; /* default of HTTP_PORT */
	const struct es_migration *migrations; /* the service's own, in order */
	size_t nmigrations;
	bool relay; /* runs an outbox relay (every service that produces) */
	bool http_only; /* consumes no topic: ready once the database answers
			 * (es_service_serve; the synchronous twin of
			 * lessons/sync-vs-events) */
	/* Default of CONSUMER_FETCH_WAIT_MS: 0 for a consumer a saga waits
	 * on, which must have each event at once; ES_SERVICE_OFF_PATH_FETCH_WAIT_MS
	 * for one nothing waits on (email, analytics), which then gets its
	 * events in batches. */
	int fetch_wait_ms;
};

/* The fetch wait of a consumer no saga waits on (es_consumer_config's
 * fetch_wait_ms): its events come in batches of what arrived in this
 * long, and a mail or a count is this much later. */
#define ES_SERVICE_OFF_PATH_FETCH_WAIT_MS 100

struct es_topics {
	const char *orders;
	const char *payments;
	const char *inventory;
	const char *notifications;
	const char *shipments;
};

struct es_service {
	const char *name;
	/* Resolved configuration; the strings are the environment's. */
	const char *bootstrap;
	const char *database_url;
	char schema[64];
	char dlq_topic[128];
	const char *group;
	/* The consumer's group.instance.id (es_service_instance_id); "" when it
	 * joins as a dynamic member. */
	char instance_id[250];
	struct es_topics topics;
	int batch_max; /* CONSUMER_BATCH_MAX */
	int fetch_wait_ms; /* CONSUMER_FETCH_WAIT_MS */

	struct es_db *db; /* the consumer thread's connection */
	struct es_dbpool *pool; /* the HTTP handlers' (es_http_db) */
	struct es_metrics *metrics;
	struct es_auth *auth; /* AUTH_JWT_KEY_FILE's verifier; NULL: no tokens asked */
	struct es_kafka_metrics kmetrics;
	struct es_http *http; /* created by init, started by start */
	struct es_http *admin; /* the fault switches' server (es/faults.h), when ADMIN_PORT is set */
	struct es_relay *relay; /* when spec.relay */
	struct es_consumer *consumer;
	struct es_retention_config retention;
	struct es_counter *pruned; /* es_retention_deleted_total{table} */
	long long next_prune_ms; /* monotonic */

	bool http_only; /* spec.http_only */
	atomic_bool db_ok; /* as of the consumer thread's last loop */
	atomic_bool joined; /* the consumer has joined its group */
};

/*
 * Reads the configuration, sets up logging and signals, connects to the
 * database (retrying for DATABASE_CONNECT_TIMEOUT_MS, so that a daemon may
 * start before its database), applies the library's and the service's migrations, and
 * creates (without starting) the HTTP server and the relay. On failure
 * errstr says why and everything made so far is released.
 */
int es_service_init(struct es_service *svc, const struct es_service_spec *spec, char *errstr,
		    size_t errstr_size);

/* Starts serving HTTP (and the fault switches' server when ADMIN_PORT is
 * set, with every switch in /metrics) and relaying the outbox. */
int es_service_start(struct es_service *svc, char *errstr, size_t errstr_size);

/*
 * Called every loop of es_service_consume (about every 100 ms) on the
 * consumer's thread, for timers such as the saga timeout. Returns 0, or -1
 * to stop the daemon (errstr filled).
 */
typedef int (*es_service_tick_fn)(struct es_service *svc, void *arg, char *errstr,
				  size_t errstr_size);

/*
 * Subscribes to topics (NULL-terminated) and runs the consumer loop until
 * SIGTERM/SIGINT (es_stop), a fatal Kafka error, or a failed relay. Each
 * batch read goes through the one dispatch path (es/dispatch.h) to the
 * service's handlers, with app as their app, on svc->db. Returns 0 on a
 * requested stop, -1 otherwise (errstr filled): the daemon should then exit
 * non-zero to be restarted.
 */
int es_service_consume(struct es_service *svc, const char *const *topics,
		       const struct es_handlers *handlers, void *app, es_service_tick_fn tick,
		       void *tick_arg, char *errstr, size_t errstr_size);

/*
 * For a daemon that consumes no topic (spec.http_only): serves HTTP until
 * SIGTERM/SIGINT, checking its database connection once a second (and
 * reconnecting) so that /readyz tells whether the database answers.
 * Returns 0 on a requested stop.
 */
int es_service_serve(struct es_service *svc);

/* Stops HTTP, closes the consumer (leaving the group, committing offsets),
 * stops the relay (finishing its round), and frees everything. */
void es_service_release(struct es_service *svc);

/*
 * The contract's topic names with TOPIC_* overrides, for programs that are
 * not daemons (tests, tools). Returns 0, or -1 with errstr naming a bad
 * variable.
 */
int es_service_topics(struct es_topics *t, char *errstr, size_t errstr_size);

/*
 * The consumer's static group membership (group.instance.id, KIP-345): an
 * instance that comes back under the same id within the session timeout
 * gets its partitions back without a rebalance, so a daemon restarted
 * after a crash stalls nobody but itself. The id must be stable across
 * restarts and unique in the group:
 *
 *   INSTANCE_ID set       that id (letters, digits, '.', '_', '-'; at
 *                         most 249), or "none" for a dynamic member;
 *   unset, fixed port     "<service>.<hostname>.<http port>": a host runs
 *                         one daemon per port, and a restarted one keeps
 *                         its port (a Kubernetes pod's containers keep the
 *                         pod's hostname);
 *   unset, HTTP_PORT=0    none: the port changes with every start, so
 *                         nothing stable is known (the tests' daemons).
 *
 * `env` is INSTANCE_ID's value or NULL, `host` gethostname's. Fills out
 * ("" for a dynamic member) and returns 0, or -1 with errstr saying why
 * env is not a valid id.
 */
int es_service_instance_id(const char *env, const char *service, const char *host,
			   unsigned short port, char *out, size_t size, char *errstr,
			   size_t errstr_size);

#endif
