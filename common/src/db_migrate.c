#include "db_private.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/log.h"

/* A migration file is SQL written by hand; anything larger is a mistake. */
#define DB_MIGRATION_MAX_BYTES (16 * 1024 * 1024)

/* The library's own migrations (common/migrations/, compiled in by
 * es_embed_text): the outbox's and the inbox's tables, applied in this
 * order before the service's own. The names are what es_migrations
 * records; never edit a released file: add the next number instead. */
extern const char es_migration_000_sql[];
extern const char es_migration_001_sql[];
extern const char es_migration_002_sql[];
extern const char es_migration_003_sql[];

static const struct es_migration builtin_migrations[] = {
	{"000_eventshop_outbox_inbox", es_migration_000_sql},
	{"001_eventshop_retention", es_migration_001_sql},
	{"002_eventshop_outbox_parking", es_migration_002_sql},
	{"003_eventshop_outbox_no_trigger", es_migration_003_sql},
};

/* ------------------------------------------------------------------------ */
/* Migrations                                                               */
/* ------------------------------------------------------------------------ */

/* Holds or releases the session-level advisory lock for this schema. */
static int migrate_lock(struct es_db *db, bool take, char *errstr, size_t errstr_size)
{
	const char *params[1] = {db->schema};
	PGresult *res;

	res = db_run(db,
		     take ? "SELECT pg_advisory_lock(hashtext('es_migrate:' || $1))"
			  : "SELECT pg_advisory_unlock(hashtext('es_migrate:' || $1))",
		     1, params, PGRES_TUPLES_OK, errstr, errstr_size);
	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

/* Releases the lock without disturbing the caller's errstr and sqlstate.
 * On a dead connection there is nothing to do: the server released the lock
 * with the session. */
static void migrate_unlock(struct es_db *db)
{
	char saved[sizeof(db->sqlstate)];
	char err[256];

	if (!es_db_ok(db))
		return;
	memcpy(saved, db->sqlstate, sizeof(saved));
	if (migrate_lock(db, false, err, sizeof(err)))
		es_warn("releasing the migration lock: %s", err);
	memcpy(db->sqlstate, saved, sizeof(saved));
}

/* Returns 1 when name is recorded in es_migrations, 0 when not, -1. */
static int migration_applied(struct es_db *db, const char *name, char *errstr, size_t errstr_size)
{
	const char *params[1] = {name};
	PGresult *res;
	int found;

	res = db_run(db, "SELECT 1 FROM es_migrations WHERE name = $1", 1, params, PGRES_TUPLES_OK,
		     errstr, errstr_size);
	if (!res)
		return -1;
	found = PQntuples(res) > 0;
	PQclear(res);
	return found;
}

/* The line of a 1-based character position in sql, for error messages. */
static int line_of(const char *sql, const char *position)
{
	long pos = position ? strtol(position, NULL, 10) : 0;
	int line = 1;

	for (; *sql && pos > 1; sql++) {
		/* The server counts characters, not bytes. */
		if (((unsigned char)*sql & 0xC0) != 0x80)
			pos--;
		if (*sql == '\n')
			line++;
	}
	return line;
}

/*
 * Runs a migration's body. This is the one place that uses PQexec, and the
 * one statement that is not parameterized: a migration holds several
 * statements, which PQexecParams refuses. That is safe only because the text
 * is a file shipped with the service (or a constant of this library), never
 * input from outside.
 */
static int migration_run_sql(struct es_db *db, const char *sql, char *errstr, size_t errstr_size)
{
	PGresult *res;
	ExecStatusType st;
	int result = -1;

	if (db_begin_now(db, errstr, errstr_size))
		return -1;
	res = PQexec(db->conn, sql);
	st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
		/* A COMMIT or ROLLBACK in the file would end our transaction
		 * and let the record of the file drift from its effect. */
		if (PQtransactionStatus(db->conn) != PQTRANS_INTRANS) {
			db->sqlstate[0] = '\0';
			snprintf(errstr, errstr_size,
				 "must not contain BEGIN, COMMIT or ROLLBACK (each migration runs "
				 "in its own transaction)");
		} else {
			db->sqlstate[0] = '\0';
			result = 0;
		}
	} else if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR ||
		   st == PGRES_BAD_RESPONSE) {
		char msg[512];
		const char *position = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION)
					   : NULL;

		db_result_error(db, res, msg, sizeof(msg));
		if (position)
			snprintf(errstr, errstr_size, "line %d: %s", line_of(sql, position), msg);
		else
			snprintf(errstr, errstr_size, "%s", msg);
	} else {
		db->sqlstate[0] = '\0';
		snprintf(errstr, errstr_size, "unexpected result %s", PQresStatus(st));
	}
	PQclear(res);
	return result;
}

/* Applies one migration in its own transaction, unless already recorded.
 * Returns 1 when applied, 0 when skipped, -1 (errstr names the migration). */
static int migration_apply(struct es_db *db, const char *name, const char *sql, char *errstr,
			   size_t errstr_size)
{
	const char *params[1] = {name};
	char err[1024];
	int applied;

	applied = migration_applied(db, name, err, sizeof(err));
	if (applied < 0)
		goto fail;
	if (applied)
		return 0;
	if (es_db_begin(db, err, sizeof(err)))
		goto fail;
	if (migration_run_sql(db, sql, err, sizeof(err)) ||
	    es_db_exec(db, "INSERT INTO es_migrations (name) VALUES ($1)", 1, params, err,
		       sizeof(err)) < 0 ||
	    es_db_commit(db, err, sizeof(err))) {
		es_db_rollback(db);
		goto fail;
	}
	es_info("applied migration %s", name);
	return 1;
fail:
	snprintf(errstr, errstr_size, "migration %s: %s", name, err);
	return -1;
}

static bool migration_file_name(const char *name)
{
	size_t len = strlen(name);

	/* NNN_name.sql: three digits keep plain name order numeric. */
	return len > 8 && name[0] >= '0' && name[0] <= '9' && name[1] >= '0' && name[1] <= '9' &&
	       name[2] >= '0' && name[2] <= '9' && name[3] == '_' &&
	       !strcmp(name + len - 4, ".sql");
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

/* Lists dir's migration files in name order. The caller frees the array
 * and its strings (free_names). Returns 0, or -1 with errstr filled. */
static int list_migrations(const char *dir, char ***out, size_t *count, char *errstr,
			   size_t errstr_size)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	d = opendir(dir);
	if (!d) {
		snprintf(errstr, errstr_size, "migrations directory %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		if (!migration_file_name(de->d_name))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **grown = realloc(names, ncap * sizeof(*names));

			if (!grown)
				goto oom;
			names = grown;
			cap = ncap;
		}
		names[n] = strdup(de->d_name);
		if (!names[n])
			goto oom;
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), compare_names);
	*out = names;
	*count = n;
	return 0;
oom:
	closedir(d);
	free_names(names, n);
	snprintf(errstr, errstr_size, "out of memory");
	return -1;
}

/* Reads a whole migration file into a new string (caller frees). */
static char *read_migration(const char *dir, const char *name, char *errstr, size_t errstr_size)
{
	char path[PATH_MAX];
	char *buf = NULL;
	size_t len = 0, cap = 0;
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
		snprintf(errstr, errstr_size, "path too long");
		return NULL;
	}
	f = fopen(path, "rb");
	if (!f) {
		snprintf(errstr, errstr_size, "cannot open: %s", strerror(errno));
		return NULL;
	}
	for (;;) {
		size_t got;

		if (cap - len < 4096 + 1) {
			size_t ncap = cap ? cap * 2 : 16384;
			char *grown;

			if (ncap > DB_MIGRATION_MAX_BYTES + 1) {
				snprintf(errstr, errstr_size, "larger than %d bytes",
					 DB_MIGRATION_MAX_BYTES);
				goto fail;
			}
			grown = realloc(buf, ncap);
			if (!grown) {
				snprintf(errstr, errstr_size, "out of memory");
				goto fail;
			}
			buf = grown;
			cap = ncap;
		}
		got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		snprintf(errstr, errstr_size, "read error");
		goto fail;
	}
	fclose(f);
	buf[len] = '\0';
	/* PQexec takes a C string: a NUL would silently cut the file short. */
	if (strlen(buf) != len) {
		snprintf(errstr, errstr_size, "contains a NUL byte");
		free(buf);
		return NULL;
	}
	return buf;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

static int migrate_dir(struct es_db *db, const char *dir, char *errstr, size_t errstr_size)
{
	char **names = NULL;
	size_t count = 0;
	int applied = 0;

	if (list_migrations(dir, &names, &count, errstr, errstr_size))
		return -1;
	for (size_t i = 0; i < count; i++) {
		char err[512];
		char *sql = read_migration(dir, names[i], err, sizeof(err));
		int rc;

		if (!sql) {
			db->sqlstate[0] = '\0';
			snprintf(errstr, errstr_size, "migration %s: %s", names[i], err);
			applied = -1;
			break;
		}
		rc = migration_apply(db, names[i], sql, errstr, errstr_size);
		free(sql);
		if (rc < 0) {
			applied = -1;
			break;
		}
		applied += rc;
	}
	free_names(names, count);
	return applied;
}

static int migrate(struct es_db *db, const char *dir, const struct es_migration *list, size_t n,
		   char *errstr, size_t errstr_size)
{
	int applied = 0;
	int result = -1;

	if (!es_db_ok(db)) {
		db->sqlstate[0] = '\0';
		snprintf(errstr, errstr_size, "migrate: not connected");
		return -1;
	}
	/* Session-level, so it spans the one transaction per migration. */
	if (migrate_lock(db, true, errstr, errstr_size))
		return -1;
	if (es_db_exec(db,
		       "CREATE TABLE IF NOT EXISTS es_migrations ("
		       " name text PRIMARY KEY,"
		       " applied_at timestamptz NOT NULL DEFAULT now())",
		       0, NULL, errstr, errstr_size) < 0)
		goto out;
	for (size_t i = 0; i < sizeof(builtin_migrations) / sizeof(builtin_migrations[0]); i++) {
		int rc = migration_apply(db, builtin_migrations[i].name, builtin_migrations[i].sql,
					 errstr, errstr_size);

		if (rc < 0)
			goto out;
		applied += rc;
	}
	if (dir) {
		int rc = migrate_dir(db, dir, errstr, errstr_size);

		if (rc < 0)
			goto out;
		applied += rc;
	}
	for (size_t i = 0; i < n; i++) {
		int rc = migration_apply(db, list[i].name, list[i].sql, errstr, errstr_size);

		if (rc < 0)
			goto out;
		applied += rc;
	}
	result = applied;
	es_info("migrations of schema %s: %d applied", db->schema, applied);
out:
	migrate_unlock(db);
	return result;
}

int es_db_migrate(struct es_db *db, const char *dir, char *errstr, size_t errstr_size)
{
	return migrate(db, dir, NULL, 0, errstr, errstr_size);
}

int es_db_migrate_list(struct es_db *db, const struct es_migration *list, size_t n, char *errstr,
		       size_t errstr_size)
{
	return migrate(db, NULL, list, n, errstr, errstr_size);
}
