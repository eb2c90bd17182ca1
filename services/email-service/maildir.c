#include "maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int make_dir(const char *path, char *errstr, size_t errstr_size)
{
	struct stat st;

	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	snprintf(errstr, errstr_size, "cannot create directory %s: %s", path,
		 errno == EEXIST ? "a file of that name exists" : strerror(errno));
	return -1;
}

/* mkdir -p: every parent of path, then path. */
static int make_dirs(const char *path, char *errstr, size_t errstr_size)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf)) {
		snprintf(errstr, errstr_size, "maildir path is empty or too long");
		return -1;
	}
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i < n; i++) {
		if (buf[i] != '/' || buf[i - 1] == '/')
			continue;
		buf[i] = '\0';
		if (make_dir(buf, errstr, errstr_size))
			return -1;
		buf[i] = '/';
	}
	return make_dir(buf, errstr, errstr_size);
}

/* Removes the files of tmpdir last changed more than
 * EMAIL_MAILDIR_TMP_MAX_AGE seconds ago: what deliveries killed between
 * staging and publishing left. A younger one may be another delivery's, in
 * progress. */
static void remove_stale(const char *tmpdir)
{
	time_t now = time(NULL);
	char path[PATH_MAX];
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(tmpdir);

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' ||
		    snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name) >= (int)sizeof(path))
			continue;
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		    now - st.st_mtime > EMAIL_MAILDIR_TMP_MAX_AGE)
			unlink(path);
	}
	closedir(d);
}

int email_maildir_prepare(const char *dir, char *errstr, size_t errstr_size)
{
	static const char *const subdirs[] = {"tmp", "new", "cur"};
	char path[PATH_MAX];

	if (make_dirs(dir, errstr, errstr_size))
		return -1;
	for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		int n = snprintf(path, sizeof(path), "%s/%s", dir, subdirs[i]);

		if (n < 0 || (size_t)n >= sizeof(path)) {
			snprintf(errstr, errstr_size, "maildir path too long: %s", dir);
			return -1;
		}
		if (make_dir(path, errstr, errstr_size))
			return -1;
	}
	snprintf(path, sizeof(path), "%s/tmp", dir);
	remove_stale(path);
	return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* fsync on a directory makes the renames in it durable. */
static int sync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* The Maildir convention for a name no other delivery uses at once:
 * seconds, microseconds, pid, a counter, the host. */
static int unique_name(char *buf, size_t size)
{
	static atomic_ulong counter;
	char host[64] = "localhost";
	struct timespec ts;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	/* '/' and ':' have a meaning in maildir names; a host name never
	 * has them, but the name must not depend on that. */
	for (char *p = host; *p; p++) {
		if (*p == '/' || *p == ':')
			*p = '_';
	}
	n = snprintf(buf, size, "%lld.M%ldP%ldQ%lu.%s", (long long)ts.tv_sec, ts.tv_nsec / 1000,
		     (long)getpid(), atomic_fetch_add(&counter, 1) + 1, host);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

void email_maildir_discard(struct email_maildir_staged *s)
{
	for (size_t i = 0; i < s->n; i++) {
		if (s->files[i].tmp[0])
			unlink(s->files[i].tmp);
		free(s->files[i].tmp);
		free(s->files[i].dst);
	}
	if (s->n)
		close(s->fd);
	free(s->files);
	memset(s, 0, sizeof(*s));
}

/* Adds (tmp, dst) to s. Returns 0, or -1 when out of memory. */
static int staged_add(struct email_maildir_staged *s, const char *tmp, const char *dst)
{
	struct email_maildir_file f = {strdup(tmp), strdup(dst)};

	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		struct email_maildir_file *files = realloc(s->files, cap * sizeof(*files));

		if (!files) {
			free(f.tmp);
			free(f.dst);
			return -1;
		}
		s->files = files;
		s->cap = cap;
	}
	if (!f.tmp || !f.dst) {
		free(f.tmp);
		free(f.dst);
		return -1;
	}
	s->files[s->n++] = f;
	return 0;
}

int email_maildir_stage(struct email_maildir_staged *s, const char *dir, const char *name,
			const char *message, size_t len, char *errstr, size_t errstr_size)
{
	char unique[160], tmpdir[PATH_MAX], tmp[PATH_MAX], dst[PATH_MAX];
	int fd = -1, result = -1;
	bool tmp_made = false;

	if (!name || !*name || name[0] == '.' || strchr(name, '/')) {
		snprintf(errstr, errstr_size, "bad maildir file name \"%s\"", name ? name : "");
		return -1;
	}
	if (unique_name(unique, sizeof(unique)) ||
	    snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", dir) >= (int)sizeof(tmpdir) ||
	    snprintf(tmp, sizeof(tmp), "%s/%s", tmpdir, unique) >= (int)sizeof(tmp) ||
	    snprintf(dst, sizeof(dst), "%s/new/%s", dir, name) >= (int)sizeof(dst)) {
		snprintf(errstr, errstr_size, "maildir path too long: %s", dir);
		return -1;
	}
	/* Before the batch's first write: syncfs then reports any write-back
	 * error of its messages. */
	if (s->n == 0) {
		s->fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s->fd < 0) {
			snprintf(errstr, errstr_size, "cannot open %s: %s", tmpdir,
				 strerror(errno));
			return -1;
		}
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(errstr, errstr_size, "cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	tmp_made = true;
	if (write_all(fd, message, len)) {
		snprintf(errstr, errstr_size, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd)) {
		fd = -1;
		snprintf(errstr, errstr_size, "cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (staged_add(s, tmp, dst)) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	tmp_made = false;
	result = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp_made)
		unlink(tmp);
	if (s->n == 0)
		close(s->fd);
	return result;
}

int email_maildir_publish(struct email_maildir_staged *s, const char *dir, char *errstr,
			  size_t errstr_size)
{
	char newdir[PATH_MAX];
	size_t i;
	int result = -1;

	if (s->n == 0)
		return 0;
	if (snprintf(newdir, sizeof(newdir), "%s/new", dir) >= (int)sizeof(newdir)) {
		snprintf(errstr, errstr_size, "maildir path too long: %s", dir);
		goto out;
	}
	if (syncfs(s->fd)) {
		snprintf(errstr, errstr_size, "cannot make the messages in %s/tmp durable: %s", dir,
			 strerror(errno));
		goto out;
	}
	for (i = 0; i < s->n; i++) {
		if (rename(s->files[i].tmp, s->files[i].dst)) {
			snprintf(errstr, errstr_size, "cannot move %s to %s: %s", s->files[i].tmp,
				 s->files[i].dst, strerror(errno));
			goto out;
		}
		/* Published: nothing left in tmp/ to remove. */
		s->files[i].tmp[0] = '\0';
	}
	if (sync_dir(newdir)) {
		snprintf(errstr, errstr_size, "cannot sync %s: %s", newdir, strerror(errno));
		goto out;
	}
	result = 0;
out:
	email_maildir_discard(s);
	return result;
}
