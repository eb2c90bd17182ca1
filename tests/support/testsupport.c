#include "testsupport.h"

#include <check.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "es/db.h"
#include "es/inbox.h"
#include "es/outbox.h"

#define ADMIN_CONNECT_TIMEOUT_MS 10000

const char *es_test_database_url(void)
{
	const char *url = getenv("DATABASE_URL");

	if (!url || !*url) {
		fprintf(stderr, "SKIP: DATABASE_URL is not set; point it at a PostgreSQL server "
				"where this role may create databases, e.g. "
				"postgresql://postgres@127.0.0.1:5432/postgres\n");
		return NULL;
	}
	return url;
}

int es_test_unique_name(char *buf, size_t size, const char *prefix)
{
	size_t plen = strlen(prefix);
	const char *sep = plen && prefix[plen - 1] != '_' ? "_" : "";
	uint32_t r;
	int n;

	/* getrandom, not the clock: two tests started in the same
	 * microsecond by one ctest -j must not collide. */
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		r = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec;
	}
	n = snprintf(buf, size, "%s%s%ld_%08x", prefix, sep, (long)getpid(), (unsigned)r);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

bool es_test_wait_until(bool (*cond)(void *), void *arg, int timeout_ms)
{
	struct timespec start, now, tick = {.tv_sec = 0, .tv_nsec = 10 * 1000000};

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		long long elapsed;

		if (cond(arg))
			return true;
		clock_gettime(CLOCK_MONOTONIC, &now);
		elapsed = (long long)(now.tv_sec - start.tv_sec) * 1000 +
			  (now.tv_nsec - start.tv_nsec) / 1000000;
		if (elapsed >= timeout_ms)
			return cond(arg);
		nanosleep(&tick, NULL);
	}
}

/* Appends " key='value'" in libpq's keyword/value syntax, where a quote or
 * a backslash inside the quotes is escaped with a backslash. */
static int append_option(char **out, size_t *len, size_t *cap, const char *key, const char *value)
{
	size_t need = strlen(key) + 2 * strlen(value) + 5;

	if (*len + need + 1 > *cap) {
		size_t ncap = (*len + need + 1) * 2;
		char *grown = realloc(*out, ncap);

		if (!grown)
			return -1;
		*out = grown;
		*cap = ncap;
	}
	*len += (size_t)snprintf(*out + *len, *cap - *len, "%s%s='", *len ? " " : "", key);
	for (; *value; value++) {
		if (*value == '\'' || *value == '\\')
			(*out)[(*len)++] = '\\';
		(*out)[(*len)++] = *value;
	}
	(*out)[(*len)++] = '\'';
	(*out)[*len] = '\0';
	return 0;
}

/*
 * Rewrites url (a URI or a keyword/value string) as a keyword/value string
 * with key set to value, keeping every other setting: host, port, user,
 * passfile, sslmode... Returns a new string (caller frees) or NULL.
 */
static char *conninfo_with(const char *url, const char *key, const char *value, char *errstr,
			   size_t errstr_size)
{
	PQconninfoOption *opts, *o;
	char *parse_err = NULL;
	char *out = NULL;
	size_t len = 0, cap = 0;

	opts = PQconninfoParse(url, &parse_err);
	if (!opts) {
		snprintf(errstr, errstr_size, "DATABASE_URL: %s",
			 parse_err ? parse_err : "out of memory");
		PQfreemem(parse_err);
		return NULL;
	}
	for (o = opts; o->keyword; o++) {
		if (!o->val || !strcmp(o->keyword, key))
			continue;
		if (append_option(&out, &len, &cap, o->keyword, o->val))
			goto oom;
	}
	if (append_option(&out, &len, &cap, key, value))
		goto oom;
	PQconninfoFree(opts);
	return out;
oom:
	PQconninfoFree(opts);
	free(out);
	snprintf(errstr, errstr_size, "out of memory");
	return NULL;
}

char *es_test_role_conninfo(const char *admin_url, const char *role)
{
	char errstr[256];
	char *out = conninfo_with(admin_url, "user", role, errstr, sizeof(errstr));

	if (!out)
		fprintf(stderr, "the conninfo of role %s: %s\n", role, errstr);
	return out;
}

int es_test_service_schemas(const char *admin_url, const char *prefix)
{
	char var[128];
	int status;
	pid_t pid;

	snprintf(var, sizeof(var), "prefix=%s", prefix);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return -1;
	}
	if (pid == 0) {
		execlp("psql", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", var, "-d",
		       admin_url, "-f", ES_ROLES_SQL, (char *)NULL);
		perror("psql");
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0) {
		perror("waitpid");
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "psql -f %s (prefix %s) failed\n", ES_ROLES_SQL, prefix);
		return -1;
	}
	return 0;
}

/* Runs one statement on the server of DATABASE_URL (the database it names). */
static int admin_exec(const char *admin_url, const char *sql, char *errstr, size_t errstr_size)
{
	char err[512];
	struct es_db *db;
	long rc;

	db = es_db_connect(admin_url, "public", ADMIN_CONNECT_TIMEOUT_MS, err, sizeof(err));
	if (!db) {
		snprintf(errstr, errstr_size, "DATABASE_URL: %s", err);
		return -1;
	}
	rc = es_db_exec(db, sql, 0, NULL, err, sizeof(err));
	es_db_free(db);
	if (rc < 0) {
		snprintf(errstr, errstr_size, "%s: %s", sql, err);
		return -1;
	}
	return 0;
}

int es_test_db_create(struct es_test_db *tdb, char *errstr, size_t errstr_size)
{
	const char *url = es_test_database_url();
	char sql[128];

	memset(tdb, 0, sizeof(*tdb));
	if (!url) {
		snprintf(errstr, errstr_size, "DATABASE_URL is not set");
		return -1;
	}
	if (es_test_unique_name(tdb->name, sizeof(tdb->name), "es_it")) {
		snprintf(errstr, errstr_size, "database name too long");
		return -1;
	}
	tdb->admin_url = strdup(url);
	tdb->conninfo = conninfo_with(url, "dbname", tdb->name, errstr, errstr_size);
	if (!tdb->admin_url || !tdb->conninfo) {
		if (!tdb->admin_url)
			snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	/* The name is ours (letters, digits, '_'): no quoting needed. */
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", tdb->name);
	if (admin_exec(tdb->admin_url, sql, errstr, errstr_size))
		goto fail;
	return 0;
fail:
	free(tdb->conninfo);
	free(tdb->admin_url);
	memset(tdb, 0, sizeof(*tdb));
	return -1;
}

void es_test_db_drop(struct es_test_db *tdb)
{
	char sql[160];
	char err[512];

	if (tdb->admin_url && tdb->name[0]) {
		/* FORCE: a test that failed half-way may have left sessions. */
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", tdb->name);
		if (admin_exec(tdb->admin_url, sql, err, sizeof(err)))
			fprintf(stderr, "warning: could not drop test database %s: %s\n", tdb->name,
				err);
	}
	free(tdb->conninfo);
	free(tdb->admin_url);
	memset(tdb, 0, sizeof(*tdb));
}

int es_test_run_with_db(struct Suite *suite, const char **conninfo)
{
	struct es_test_db tdb;
	char errstr[512];
	SRunner *sr;
	int failures;

	if (es_test_db_create(&tdb, errstr, sizeof(errstr))) {
		fprintf(stderr, "cannot create the test database: %s\n", errstr);
		srunner_free(srunner_create(suite));
		return 1;
	}
	*conninfo = tdb.conninfo;
	sr = srunner_create(suite);
	srunner_run_all(sr, CK_NORMAL);
	failures = srunner_ntests_failed(sr);
	srunner_free(sr);
	es_test_db_drop(&tdb);
	*conninfo = NULL;
	return failures ? 1 : 0;
}

/* One transaction for a batch: claim it, one effects row per new event. */
struct inbox_batch {
	struct es_test_inbox_handler *h;
	struct es_batch_item *items;
	size_t n;
	const char **ids;
	bool *is_new;
	long news;
};

static int inbox_batch_tx(struct es_db *db, void *arg, char *errstr, size_t errstr_size)
{
	struct inbox_batch *b = arg;

	b->news = es_inbox_claim(db, b->h->consumer, b->n, b->ids, NULL, b->is_new, errstr,
				 errstr_size);
	if (b->news < 0)
		return -1;
	for (size_t i = 0; i < b->n; i++) {
		const char *params[1] = {b->ids[i]};

		if (b->is_new[i] && es_db_exec(db, "INSERT INTO effects (event_id) VALUES ($1)", 1,
					       params, errstr, errstr_size) != 1)
			return -1;
	}
	return 0;
}

enum es_handler_result es_test_inbox_handle(void *arg, struct es_batch_item *items, size_t n,
					    char *reason, size_t size)
{
	struct es_test_inbox_handler *h = arg;
	struct inbox_batch b = {h, items, n, calloc(n, sizeof(char *)), calloc(n, sizeof(bool)), 0};
	enum es_handler_result res = ES_HANDLER_RETRY;

	if (!b.ids || !b.is_new) {
		snprintf(reason, size, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		b.ids[i] = items[i].ev->id;
	if (!es_db_ok(h->db) && es_db_reconnect(h->db, 0, reason, size))
		goto out;
	if (es_db_tx(h->db, inbox_batch_tx, &b, reason, size))
		goto out;
	h->calls += (int)n;
	h->duplicates += (int)(n - (size_t)b.news);
	res = ES_HANDLER_OK;
out:
	free(b.ids);
	free(b.is_new);
	return res;
}

struct put_args {
	const char *topic;
	struct es_event **evs;
	int n;
};

static int put_in_tx(struct es_db *db, void *arg, char *err, size_t size)
{
	struct put_args *a = arg;

	for (int i = 0; i < a->n; i++) {
		if (es_outbox_put(db, a->topic, a->evs[i], err, size))
			return -1;
	}
	return 0;
}

void es_test_outbox_put_all(struct es_db *db, const char *topic, struct es_event **evs, int n)
{
	struct put_args a = {topic, evs, n};
	char err[512];

	ck_assert_msg(es_db_tx(db, put_in_tx, &a, err, sizeof(err)) == 0, "%s", err);
}

struct es_db *es_test_connect(const char *conninfo, const char *schema)
{
	char errstr[512];
	struct es_db *db = es_db_connect(conninfo, schema, 10000, errstr, sizeof(errstr));

	ck_assert_msg(db, "connect to schema %s: %s", schema, errstr);
	return db;
}

bool es_test_waits_on_lock(void *lock_wait)
{
	const struct es_test_lock_wait *w = lock_wait;
	char pid[16], errstr[512];
	PGresult *res;
	bool waiting;

	snprintf(pid, sizeof(pid), "%d", w->pid);
	res = es_db_query(w->observer,
			  "SELECT 1 FROM pg_stat_activity WHERE pid = $1::int"
			  " AND wait_event_type = 'Lock'",
			  1, (const char *const[]){pid}, errstr, sizeof(errstr));
	waiting = res && PQntuples(res) == 1;
	PQclear(res);
	return waiting;
}

long es_test_count(struct es_db *db, const char *sql, int nparams, const char *const *params)
{
	char err[512];
	PGresult *res = es_db_query(db, sql, nparams, params, err, sizeof(err));
	long n;

	ck_assert_msg(res != NULL, "%s: %s", sql, err);
	n = strtol(es_db_get(res, 0, "n"), NULL, 10);
	PQclear(res);
	return n;
}
