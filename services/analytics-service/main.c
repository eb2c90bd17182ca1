/*
 * analytics-service: the CQRS read side. Consumes all four topics into read
 * models (analytics.c), answers GET /stats from them (stats.c), and can
 * throw them away to be rebuilt from the topics (--rebuild, rebuild.c).
 * It produces nothing, so it runs no outbox relay.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics.h"
#include "es/daemon.h"
#include "es/log.h"
#include "es/service.h"
#include "rebuild.h"
#include "stats.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: analytics-service [--rebuild | --help]\n"
		"\n"
		"Without arguments, runs the daemon: consumes the orders, payments,\n"
		"inventory, notifications and shipments topics into read models and\n"
		"serves GET /stats, /livez, /readyz and /metrics on HTTP_PORT\n"
		"(default %d).\n"
		"\n"
		"  --rebuild  while every instance of the daemon is stopped: join the\n"
		"             consumer group (CONSUMER_GROUP), refuse if another member\n"
		"             is in it, reset its offsets to the beginning of every topic\n"
		"             and delete the read models and their inbox rows, so that\n"
		"             the next start computes everything again from the topics;\n"
		"             it logs warnings and errors only unless LOG_LEVEL is set\n"
		"  --help     this text\n"
		"\n"
		"Configuration comes from the environment: KAFKA_BOOTSTRAP_SERVERS,\n"
		"DATABASE_URL, DATABASE_SCHEMA, HTTP_PORT, TOPIC_ORDERS, TOPIC_PAYMENTS,\n"
		"TOPIC_INVENTORY, TOPIC_NOTIFICATIONS, CONSUMER_GROUP, LOG_LEVEL, KAFKA_*.\n",
		ANALYTICS_HTTP_PORT);
}

/* GET /stats, on an HTTP pool thread: the request's connection, never
 * svc.db. */
static int get_stats(struct es_http_request *req, void *arg)
{
	json_t *body = NULL;
	char why[512];

	/* Two tries: an idle connection may have died with a database
	 * restart since it was last used; the second one is new. */
	for (int attempt = 0; !body && attempt < 2; attempt++) {
		struct es_db *db = es_http_db(req, why, sizeof(why));

		if (!db)
			break;
		body = analytics_stats_build(db, why, sizeof(why));
		if (es_db_ok(db))
			break;
	}
	if (!body) {
		es_warn("GET /stats: %s", why);
		return es_http_reply_problem(req, 503, NULL, NULL, "read models unavailable", NULL);
	}
	return es_http_reply_json(req, 200, body);
}

static int run_daemon(struct es_service *svc, char *errstr, size_t errstr_size)
{
	static const char *const labels[] = {"status", NULL};
	struct analytics app = {.db = svc->db};
	char why[256];

	app.orders_gauge = es_gauge_register(svc->metrics, "es_analytics_orders",
					     "Orders in the analytics read model, by status.",
					     labels, errstr, errstr_size);
	if (!app.orders_gauge ||
	    es_http_route_for(svc->http, ES_HTTP_OPERATOR, "GET", "/stats", get_stats, NULL, errstr,
			      errstr_size) ||
	    es_service_start(svc, errstr, errstr_size))
		return -1;
	if (analytics_refresh_gauge(&app, why, sizeof(why)))
		es_warn("es_analytics_orders not set yet: %s", why);
	return es_service_consume(
		svc,
		(const char *const[]){svc->topics.orders, svc->topics.payments,
				      svc->topics.inventory, svc->topics.notifications,
				      svc->topics.shipments, NULL},
		&analytics_handlers, &app, analytics_tick, &app, errstr, errstr_size);
}

static int run_rebuild(struct es_service *svc, char *errstr, size_t errstr_size)
{
	const char *topics[] = {svc->topics.orders,    svc->topics.payments,
				svc->topics.inventory, svc->topics.notifications,
				svc->topics.shipments, NULL};

	printf("rebuilding the read models of %s (schema %s, consumer group %s)\n",
	       ANALYTICS_SERVICE, svc->schema, svc->group);
	return analytics_rebuild(svc->db, svc->bootstrap, svc->group, topics, stdout, &es_stop,
				 NULL, errstr, errstr_size);
}

int main(int argc, char **argv)
{
	const struct es_service_spec spec = {
		.name = ANALYTICS_SERVICE,
		.http_port = ANALYTICS_HTTP_PORT,
		.migrations = analytics_migrations,
		.nmigrations = analytics_migrations_count,
		.relay = false, /* it produces nothing */
		/* No saga waits on it: the broker may gather its events,
		 * so that it handles them in batches. */
		.fetch_wait_ms = ES_SERVICE_OFF_PATH_FETCH_WAIT_MS,
	};
	struct es_service svc;
	char errstr[1024];
	bool rebuild = false;
	int rc;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "--rebuild")) {
		rebuild = true;
	} else if (argc != 1) {
		usage(stderr);
		return 2;
	}

	/* The rebuild prints its own progress on stdout. The daemon's start-up
	 * lines ("starting: ... http 127.0.0.1:8084", the database, the
	 * migrations) would tell a learner that it serves HTTP, which it does
	 * not: es_service_init creates the server, only es_service_start
	 * listens. Warnings and errors still show; a LOG_LEVEL of the user's
	 * wins. */
	if (rebuild && setenv("LOG_LEVEL", "warn", 0)) {
		perror("analytics-service: setenv");
		return 1;
	}
	es_log_init(ANALYTICS_SERVICE, ES_LOG_INFO); /* until the configuration is read */
	if (es_service_init(&svc, &spec, errstr, sizeof(errstr))) {
		es_error("%s", errstr);
		return 1;
	}
	if (rebuild)
		rc = run_rebuild(&svc, errstr, sizeof(errstr));
	else
		rc = run_daemon(&svc, errstr, sizeof(errstr));
	if (rc)
		es_error("%s", errstr);
	es_service_release(&svc);
	return rc ? 1 : 0;
}
