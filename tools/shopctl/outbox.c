/*
 * shopctl outbox: the rows a service's outbox relay gave up on.
 *
 * A row the relay can never publish (too large, an invalid topic, or still
 * failing after its attempts) is parked in the service's es_outbox with the
 * reason, and every later row of its key waits behind it (es/outbox.h).
 * `list` shows them; `retry` puts one back once the cause is mended.
 */
#include <stdlib.h>
#include <string.h>

#include "es/config.h"
#include "es/db.h"
#include "es/outbox.h"
#include "shopctl.h"

#define CONNECT_TIMEOUT_MS 10000

static void usage(FILE *f)
{
	fprintf(f, "usage: shopctl outbox list SERVICE\n"
		   "       shopctl outbox retry SERVICE ID\n"
		   "\n"
		   "The rows SERVICE's outbox relay parked: rows it can never publish as\n"
		   "they are (too large for Kafka, an invalid topic) or that failed too many\n"
		   "rounds. A parked row stays out of the relay's way with its reason, and\n"
		   "every later row of its topic and key waits behind it, unpublished, so\n"
		   "that none overtakes it.\n"
		   "\n"
		   "  list   one line per parked row: its id, topic, key, event type,\n"
		   "         attempts, when it was parked and why, and how many rows of its\n"
		   "         key wait behind it; the count goes to stderr\n"
		   "  retry  puts row ID back (attempts from 0) and wakes the relay, which\n"
		   "         publishes it and then the rows behind it\n"
		   "\n"
		   "The database is DATABASE_URL (as for the daemons), the schema\n"
		   "DATABASE_SCHEMA or SERVICE with '_' for '-' (payment_service).\n"
		   "\n"
		   "Exit status: 0 done, 1 failed (no such parked row, no database), 2 bad\n"
		   "command line.\n");
}

/* Connects to SERVICE's schema. NULL (printed) on failure. */
static struct es_db *service_db(const char *service)
{
	char schema[64], errstr[512];
	const char *s = es_config_str("DATABASE_SCHEMA", NULL);
	struct es_db *db;

	if (!s) {
		snprintf(schema, sizeof(schema), "%s", service);
		for (char *p = schema; *p; p++)
			*p = *p == '-' ? '_' : *p;
		s = schema;
	}
	db = es_db_connect(
		es_config_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"), s,
		CONNECT_TIMEOUT_MS, errstr, sizeof(errstr));
	if (!db)
		shopctl_err("outbox: %s", errstr);
	return db;
}

/* Writes "name=VALUE" with VALUE escaped for the terminal. */
static void field(const char *name, const char *value)
{
	printf("%s=", name);
	shopctl_print_escaped(stdout, value, strlen(value), 0, NULL);
}

static int cmd_list(struct es_db *db)
{
	char errstr[512];
	PGresult *res;
	int n;

	res = es_db_query(
		db,
		"SELECT p.id, p.topic, p.msg_key, p.event_type, p.attempts, p.park_reason,"
		" to_char(p.parked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS "
		"parked,"
		" (SELECT count(*) FROM es_outbox w WHERE w.published_at IS NULL"
		" AND w.parked_at IS NULL AND w.topic = p.topic AND w.msg_key = p.msg_key"
		" AND w.id > p.id) AS waiting"
		" FROM es_outbox p WHERE p.parked_at IS NOT NULL ORDER BY p.id",
		0, NULL, errstr, sizeof(errstr));
	if (!res) {
		shopctl_err("outbox list: %s", errstr);
		return SHOPCTL_FAIL;
	}
	n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		printf("id=%s  ", es_db_get(res, i, "id"));
		field("topic", es_db_get(res, i, "topic"));
		fputs("  ", stdout);
		field("key", es_db_get(res, i, "msg_key"));
		fputs("  ", stdout);
		field("type", es_db_get(res, i, "event_type"));
		printf("  attempts=%s  parked=%s  waiting=%s  ", es_db_get(res, i, "attempts"),
		       es_db_get(res, i, "parked"), es_db_get(res, i, "waiting"));
		field("reason", es_db_get(res, i, "park_reason"));
		putchar('\n');
	}
	fprintf(stderr, "shopctl: %d parked row%s\n", n, n == 1 ? "" : "s");
	PQclear(res);
	return SHOPCTL_OK;
}

static int cmd_retry(struct es_db *db, const char *id)
{
	char errstr[512];
	int rc;

	rc = es_outbox_retry(db, id, errstr, sizeof(errstr));
	if (rc < 0) {
		shopctl_err("outbox retry: %s", errstr);
		return SHOPCTL_FAIL;
	}
	if (rc == 0) {
		shopctl_err("outbox retry: no parked row %s ('shopctl outbox list' shows them)",
			    id);
		return SHOPCTL_FAIL;
	}
	printf("shopctl: row %s put back; the relay publishes it, then the rows behind it\n", id);
	return SHOPCTL_OK;
}

int shopctl_cmd_outbox(int argc, char **argv)
{
	struct es_db *db;
	long long id;
	int rc;

	if (argc >= 2 && shopctl_is_help(argv[1])) {
		usage(stdout);
		return SHOPCTL_OK;
	}
	if (argc < 3)
		return shopctl_usage_error("outbox", "which command and service?");
	if (!strcmp(argv[1], "list") && argc != 3)
		return shopctl_usage_error("outbox", "list takes one SERVICE");
	if (!strcmp(argv[1], "retry") && argc != 4)
		return shopctl_usage_error("outbox", "retry takes SERVICE and ID");
	if (strcmp(argv[1], "list") && strcmp(argv[1], "retry"))
		return shopctl_usage_error("outbox", "unknown command %s (list or retry)", argv[1]);
	if (argc == 4 && es_parse_ll(argv[3], 1, (long long)9e18, &id))
		return shopctl_usage_error("outbox", "ID must be a row id, not %s", argv[3]);
	db = service_db(argv[2]);
	if (!db)
		return SHOPCTL_FAIL;
	rc = !strcmp(argv[1], "list") ? cmd_list(db) : cmd_retry(db, argv[3]);
	es_db_free(db);
	return rc;
}
