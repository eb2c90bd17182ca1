/*
 * eventshop-devbroker: the demo's zero-setup, in-memory development broker.
 *
 * It is NOT Apache Kafka. It is librdkafka's mock cluster (rdkafka_mock.h),
 * a Kafka-protocol server that librdkafka runs inside this process for its
 * own tests. It keeps everything in memory, loses it all when it stops, has
 * no security, no persistence and no replication, and is for local demos
 * only. Tests of the shop run against a real Apache Kafka broker
 * (tests/infra/kafka); nothing here replaces that.
 *
 * What librdkafka 2.0.2's mock cluster offers the daemons, as found against
 * it (its ApiVersions answer, read with kcat -d feature; smoke.sh beside
 * this file; kcat and single daemons by hand):
 *
 * Works:
 *  - Produce v0-7 with record headers: the ce_* headers of every event and
 *    the dlq.* headers of dead letters arrive intact.
 *  - InitProducerId v0-4: the idempotent producer (enable.idempotence=true)
 *    gets its producer id, so the outbox relays and dead letters work.
 *  - Consumer groups: FindCoordinator v0-2, JoinGroup v0-5, SyncGroup v0-3,
 *    Heartbeat v0-3, LeaveGroup v0-1, OffsetCommit v0-7, OffsetFetch v0-5;
 *    the eager assignor's rebalances, and committed offsets are honoured
 *    when a member comes back.
 *  - Fetch v0-11 and ListOffsets v0-5 for the earliest and latest offsets
 *    (watermarks); Metadata v0-2, so kcat -L, -P, -C and -G all work.
 *  - The five daemons become ready, an order is CONFIRMED, a declined one
 *    CANCELLED, and each exits 0 on SIGTERM (smoke.sh).
 *  - The replay: analytics-service stopped, `shopctl rebuild-analytics`,
 *    analytics-service started again gives the same /stats (smoke.sh). The
 *    rebuild joins the group as a member to commit (see below), so it takes
 *    a rebalance delay, and refuses while a daemon is in the group.
 *
 * Limits (none of them in the real broker):
 *  - No admin API: CreateTopics, DeleteTopics, DescribeConfigs, ListGroups
 *    and DescribeGroups are not offered, so `shopctl create-topics` fails
 *    ("Failed while waiting for controller: Local: Timed out" after 60 s);
 *    topics are made here with rd_kafka_mock_topic_create instead.
 *  - Topics are always auto-created: Metadata stops at v2, which has no
 *    AllowAutoTopicCreation flag, so a metadata request for an unknown topic,
 *    a consumer's included, creates it with 4 partitions (and librdkafka
 *    warns "allow.auto.create.topics=false not supported by broker" to a
 *    consumer that sets the property, although false is its default). A
 *    mistyped TOPIC_* therefore gives a new empty topic, not an unready
 *    daemon.
 *  - Group timing: the first member of a new group waits 3 s. After a member
 *    leaves or another one joins, the group waits session.timeout.ms - 1 s
 *    (9 s with the daemons' default of 10 s) before it assigns partitions
 *    again: a daemon restarted within that time is not ready for up to
 *    9 s, and a second instance stops its group from consuming as long.
 *    KAFKA_SESSION_TIMEOUT_MS=6000 (scripts/demo's) makes it 5 s. One
 *    session timeout applies to all members, the one of the member that
 *    joined last, and also to members waiting in JoinGroup (which send no
 *    heartbeats): one that waits longer is dropped and its JoinGroup never
 *    answered. Every member of a group needs the same session timeout.
 *  - A commit from a client that is not a group member is refused with
 *    UNKNOWN_MEMBER_ID as soon as the group has ever existed (a real broker
 *    takes it while the group is empty). Commit as a member: that is why
 *    `analytics-service --rebuild` joins the group (3 s for an empty one,
 *    up to session.timeout.ms - 1 s when the daemon left just before).
 *  - Retention: each partition keeps only its newest 5 MiB or 100000
 *    batches; older messages are dropped without a word.
 *  - ListOffsets by timestamp (offsets for times) answers -1; a fetch
 *    returns one batch per partition, so replays are slow.
 *  - PLAINTEXT on 127.0.0.1 only, no TLS, no SASL, and the kernel chooses
 *    the port: 2.0.2 has no call that sets it (hence no --port).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "es/config.h"
#include "es/daemon.h"
#include "es/log.h"

#define PROG "eventshop-devbroker"
#define MAX_TOPICS 64
#define MAX_BROKERS 3
#define MAX_PARTITIONS 1000
#define TOPIC_NAME_MAX 249 /* Kafka's own limit */

struct topic_spec {
	char name[TOPIC_NAME_MAX + 1];
	int partitions;
};

struct options {
	int brokers;
	const char *topics_path;
	const char *env_file; /* NULL: none */
	const char *debug; /* librdkafka debug contexts, NULL: none */
};

#define USAGE_LINE \
	"usage: " PROG " [--brokers N] [--topics FILE] [--env-file FILE] [--debug LIST]\n"

static void usage(FILE *f)
{
	fprintf(f,
		USAGE_LINE
		"\n"
		"An IN-MEMORY DEVELOPMENT BROKER for the local demo, NOT Apache Kafka: it\n"
		"runs librdkafka's mock cluster (a Kafka-protocol test server) in this\n"
		"process. Everything it holds is lost when it stops.\n"
		"\n"
		"It creates the topics of FILE, prints one line\n"
		"  KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:PORT[,127.0.0.1:PORT...]\n"
		"on stdout, and runs until SIGTERM or SIGINT (Ctrl-C), then exits 0.\n"
		"\n"
		"  --brokers N      mock brokers, 1 to %d (default 1)\n"
		"  --topics FILE    \"name partitions [replicas min.insync]\" per line,\n"
		"                   # comments (the replication is ignored)\n"
		"                   (default deploy/topics.txt, relative to the current\n"
		"                   directory; the format of shopctl create-topics)\n"
		"  --env-file FILE  also write the KAFKA_BOOTSTRAP_SERVERS line to FILE\n"
		"                   (atomically: it appears complete, once the topics\n"
		"                   exist); FILE is removed again when the broker stops\n"
		"  --debug LIST     librdkafka debug contexts for the mock, e.g. mock,protocol\n"
		"  -h, --help       this text\n"
		"\n"
		"There is no --port: librdkafka 2.0.2's mock cluster always listens on\n"
		"127.0.0.1 on a port the kernel chooses (rd_kafka_mock_cluster_new takes\n"
		"no address), so read the address from stdout or from --env-file.\n"
		"\n"
		"Unlike Apache Kafka, it has no admin API (shopctl create-topics fails),\n"
		"creates any unknown topic that is asked for, keeps about 5 MiB per\n"
		"partition, and refuses commits from non-members. After a consumer\n"
		"leaves or joins, its group waits session.timeout.ms - 1 s (9 s with\n"
		"the daemons' default of 10 s) before it rebalances: give every client\n"
		"of a group the same KAFKA_SESSION_TIMEOUT_MS (scripts/demo: 6000).\n"
		"\n"
		"Exit status: 0 after a signal, 1 on a topics file or start-up error,\n"
		"2 on bad arguments.\n",
		MAX_BROKERS);
}

/* A whole decimal number in [min, max], nothing else. Returns 0 or -1. */
static int parse_int(const char *s, long min, long max, int *out)
{
	long long n;

	if (es_parse_ll(s, min, max, &n))
		return -1;
	*out = (int)n;
	return 0;
}

/* Returns 0 to run, 1 when --help was printed, -1 on bad arguments (a
 * message and the usage were printed). */
static int parse_args(int argc, char **argv, struct options *o)
{
	enum { OPT_PORT = 256 };
	static const struct option longopts[] = {
		{"brokers", required_argument, NULL, 'b'},
		{"topics", required_argument, NULL, 't'},
		{"env-file", required_argument, NULL, 'e'},
		{"debug", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{"port", required_argument, NULL, OPT_PORT},
		{NULL, 0, NULL, 0},
	};
	int c;

	o->brokers = 1;
	o->topics_path = "deploy/topics.txt";
	o->env_file = NULL;
	o->debug = NULL;
	/* Long options only, so that "-b" is not silently a short form the
	 * help does not mention; '+': stop at the first operand. */
	opterr = 0; /* our own messages, naming PROG rather than argv[0] */
	while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (parse_int(optarg, 1, MAX_BROKERS, &o->brokers)) {
				fprintf(stderr,
					PROG ": --brokers: \"%s\" is not a number from 1 to %d\n",
					optarg, MAX_BROKERS);
				goto bad;
			}
			break;
		case 't':
			o->topics_path = optarg;
			break;
		case 'e':
			if (!*optarg) {
				fprintf(stderr, PROG ": --env-file: empty file name\n");
				goto bad;
			}
			o->env_file = optarg;
			break;
		case 'd':
			o->debug = optarg;
			break;
		case 'h':
			usage(stdout);
			return 1;
		case OPT_PORT:
			fprintf(stderr,
				PROG ": --port is not supported: librdkafka 2.0.2's mock cluster "
				     "always picks its own port on 127.0.0.1\n");
			goto bad;
		case ':':
			fprintf(stderr, PROG ": %s needs a value\n", argv[optind - 1]);
			goto bad;
		default:
			fprintf(stderr, PROG ": unknown option %s\n", argv[optind - 1]);
			goto bad;
		}
	}
	if (optind != argc) {
		fprintf(stderr, PROG ": unexpected argument \"%s\"\n", argv[optind]);
		goto bad;
	}
	return 0;
bad:
	fprintf(stderr, USAGE_LINE "Try '" PROG " --help' for more.\n");
	return -1;
}

/* ------------------------------------------------------------ topics file */

/* Kafka's rule: 1 to 249 of [A-Za-z0-9._-], and not "." or "..". */
static int topic_name_ok(const char *name, size_t len)
{
	if (len < 1 || len > TOPIC_NAME_MAX || !strncmp(name, ".", len) ||
	    !strncmp(name, "..", len))
		return 0;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
			return 0;
	}
	return 1;
}

/*
 * Parses one line (comment already cut) into *t: "name partitions
 * [replicas min.insync]", as shopctl create-topics reads it. The
 * replication columns are checked and ignored: the mock keeps one copy of
 * everything, however many brokers it pretends to have. Returns 1 for a
 * topic, 0 for a blank line, -1 with why filled.
 */
static int parse_topic_line(char *line, struct topic_spec *t, char *why, size_t why_size)
{
	static const char ws[] = " \t\r\n";
	char *name, *count, *field[3];
	size_t name_len, count_len;
	int nfields = 0, ignored;

	line += strspn(line, ws);
	if (!*line)
		return 0;
	name = line;
	name_len = strcspn(name, ws);
	count = name + name_len;
	count += strspn(count, ws);
	count_len = strcspn(count, ws);
	for (char *p = count + count_len; nfields < 3;) {
		p += strspn(p, ws);
		if (!*p)
			break;
		field[nfields++] = p;
		p += strcspn(p, ws);
		if (*p)
			*p++ = '\0';
	}
	if (count_len == 0 || (nfields != 0 && nfields != 2)) {
		snprintf(why, why_size, "want \"name partitions [replicas min.insync]\"");
		return -1;
	}
	for (int i = 0; i < nfields; i++) {
		if (parse_int(field[i], 1, 7, &ignored)) {
			snprintf(why, why_size,
				 "replicas, min.insync: \"%.32s\" is not a number "
				 "from 1 to 7",
				 field[i]);
			return -1;
		}
	}
	name[name_len] = '\0';
	count[count_len] = '\0';
	if (!topic_name_ok(name, name_len)) {
		snprintf(why, why_size,
			 "\"%.64s\" is not a Kafka topic name (1 to %d of letters, digits, '.', "
			 "'_', '-')",
			 name, TOPIC_NAME_MAX);
		return -1;
	}
	if (parse_int(count, 1, MAX_PARTITIONS, &t->partitions)) {
		snprintf(why, why_size, "partitions: \"%.32s\" is not a number from 1 to %d", count,
			 MAX_PARTITIONS);
		return -1;
	}
	snprintf(t->name, sizeof(t->name), "%s", name);
	return 1;
}

/* Reads the topics file. Returns the count, or -1 (message printed,
 * naming file:line where there is a line to name). */
static int read_topics(const char *path, struct topic_spec *out, int max)
{
	FILE *f = fopen(path, "r");
	char line[512];
	char why[400];
	int n = 0, lineno = 0;
	int result = -1;

	if (!f) {
		fprintf(stderr,
			PROG
			": %s: %s (run it from the repository's root, or give --topics FILE)\n",
			path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		struct topic_spec t;
		char *hash;
		int rc;

		lineno++;
		if (len == sizeof(line) - 1 && line[len - 1] != '\n' && !feof(f)) {
			fprintf(stderr, PROG ": %s:%d: line longer than %zu bytes\n", path, lineno,
				sizeof(line) - 2);
			goto out;
		}
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		rc = parse_topic_line(line, &t, why, sizeof(why));
		if (rc < 0) {
			fprintf(stderr, PROG ": %s:%d: %s\n", path, lineno, why);
			goto out;
		}
		if (rc == 0)
			continue;
		if (n == max) {
			fprintf(stderr, PROG ": %s:%d: more than %d topics\n", path, lineno, max);
			goto out;
		}
		for (int i = 0; i < n; i++) {
			if (!strcmp(out[i].name, t.name)) {
				fprintf(stderr, PROG ": %s:%d: topic %s is listed twice\n", path,
					lineno, t.name);
				goto out;
			}
		}
		out[n++] = t;
	}
	if (ferror(f)) {
		fprintf(stderr, PROG ": %s:%d: %s\n", path, lineno + 1, strerror(errno));
		goto out;
	}
	result = n;
out:
	fclose(f);
	return result;
}

/* --------------------------------------------------------------- env file */

/*
 * Writes "KAFKA_BOOTSTRAP_SERVERS=<bootstrap>\n" to path through a temporary
 * file in the same directory and rename(2), so that a script waiting for
 * the file never reads half of it. Returns 0, or -1 (message printed).
 */
static int write_env_file(const char *path, const char *bootstrap)
{
	char tmp[PATH_MAX];
	char body[1024];
	int len, fd, result = -1;
	ssize_t off = 0;

	len = snprintf(body, sizeof(body), "KAFKA_BOOTSTRAP_SERVERS=%s\n", bootstrap);
	if (len < 0 || (size_t)len >= sizeof(body) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp)) {
		fprintf(stderr, PROG ": --env-file %s: name or content too long\n", path);
		return -1;
	}
	fd = mkstemp(tmp);
	if (fd < 0) {
		fprintf(stderr, PROG ": --env-file %s: cannot create %s: %s\n", path, tmp,
			strerror(errno));
		return -1;
	}
	while (off < len) {
		ssize_t w = write(fd, body + off, (size_t)(len - off));

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto out;
		off += w;
	}
	if (fsync(fd))
		goto out;
	if (close(fd)) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path))
		goto out;
	result = 0;
out:
	if (result) {
		fprintf(stderr, PROG ": --env-file %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
	}
	return result;
}

/* ------------------------------------------------------------------ broker */

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	/* syslog levels, as in common/src/kafka.c */
	enum es_log_level lvl = level <= 3   ? ES_LOG_ERROR
				: level == 4 ? ES_LOG_WARN
				: level <= 6 ? ES_LOG_INFO
					     : ES_LOG_DEBUG;

	/* The handle is never meant to connect anywhere, so librdkafka's
	 * warning that it has no bootstrap.servers would only mislead. */
	if (!strcmp(fac, "CONFWARN") && strstr(buf, "bootstrap.servers"))
		return;
	es_log(lvl, NULL, "rdkafka %s: %s", fac, buf);
}

/*
 * The handle the mock cluster hangs on. A producer that never produces: the
 * mock only needs it for its bookkeeping and its logger.
 */
static rd_kafka_t *handle_new(const char *debug, char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;

	if (rd_kafka_conf_set(conf, "client.id", PROG, errstr, errstr_size) ||
	    rd_kafka_conf_set(conf, "log.queue", "false", errstr, errstr_size) ||
	    (debug && rd_kafka_conf_set(conf, "debug", debug, errstr, errstr_size))) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
	if (!rk)
		rd_kafka_conf_destroy(conf);
	return rk;
}

static int create_topics(rd_kafka_mock_cluster_t *mcluster, const struct topic_spec *t, int n,
			 int replication_factor)
{
	for (int i = 0; i < n; i++) {
		rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
			mcluster, t[i].name, t[i].partitions, replication_factor);

		if (err) {
			fprintf(stderr, PROG ": cannot create topic %s: %s\n", t[i].name,
				rd_kafka_err2str(err));
			return -1;
		}
	}
	return 0;
}

static void print_banner(const char *bootstrap, int brokers, const char *topics_path,
			 const struct topic_spec *t, int n)
{
	fprintf(stderr,
		"\n"
		"  ==================================================================\n"
		"   eventshop-devbroker: IN-MEMORY DEVELOPMENT BROKER, NOT APACHE KAFKA\n"
		"  ==================================================================\n"
		"   This is librdkafka's mock cluster (librdkafka %s), a Kafka-protocol\n"
		"   test server running inside this process. Every message and every\n"
		"   committed offset lives in memory and is LOST WHEN IT STOPS. No\n"
		"   persistence, no security, no admin API; each partition keeps only its\n"
		"   newest messages (about 5 MiB). For local demos only: tests and real\n"
		"   deployments use Apache Kafka.\n"
		"\n"
		"   bootstrap  %s (%d broker%s)\n"
		"   topics     %d from %s:",
		rd_kafka_version_str(), bootstrap, brokers, brokers == 1 ? "" : "s", n,
		topics_path);
	for (int i = 0, col = 80; i < n; i++) {
		char item[TOPIC_NAME_MAX + 16];
		int len = snprintf(item, sizeof(item), "%s(%d)", t[i].name, t[i].partitions);

		/* One topic per word, wrapped before column 72. */
		if (col + 1 + len > 72 && col > 14) {
			fputs("\n              ", stderr);
			col = 14;
		} else {
			fputc(' ', stderr);
			col++;
		}
		fputs(item, stderr);
		col += len;
	}
	fprintf(stderr, "\n\n   Stop it with Ctrl-C or SIGTERM.\n\n");
}

int main(int argc, char **argv)
{
	static struct topic_spec topics[MAX_TOPICS];
	const struct timespec slice = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
	rd_kafka_mock_cluster_t *mcluster = NULL;
	rd_kafka_t *rk = NULL;
	struct options o;
	const char *bootstrap;
	bool wrote_env = false;
	char errstr[512];
	int ntopics, rc;
	int result = 1;

	rc = parse_args(argc, argv, &o);
	if (rc)
		return rc > 0 ? 0 : 2;
	es_log_init(PROG, o.debug ? ES_LOG_DEBUG : ES_LOG_INFO);
	/* First, so that a Ctrl-C during start-up still ends in a clean stop. */
	if (es_daemon_signals()) {
		fprintf(stderr, PROG ": cannot install signal handlers\n");
		return 1;
	}
	/* Before the topics file: only --debug can make this fail, and a bad
	 * argument is reported as such (2) whatever the file holds. */
	rk = handle_new(o.debug, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, PROG ": %s%s\n", o.debug ? "--debug: " : "", errstr);
		return o.debug ? 2 : 1;
	}
	ntopics = read_topics(o.topics_path, topics, MAX_TOPICS);
	if (ntopics < 0)
		goto out;
	mcluster = rd_kafka_mock_cluster_new(rk, o.brokers);
	if (!mcluster) {
		fprintf(stderr,
			PROG ": cannot start librdkafka's mock cluster (see the log above)\n");
		goto out;
	}
	bootstrap = rd_kafka_mock_cluster_bootstraps(mcluster);
	if (create_topics(mcluster, topics, ntopics, o.brokers))
		goto out;
	if (o.env_file) {
		if (write_env_file(o.env_file, bootstrap))
			goto out;
		wrote_env = true;
	}
	printf("KAFKA_BOOTSTRAP_SERVERS=%s\n", bootstrap);
	if (fflush(stdout)) {
		fprintf(stderr, PROG ": cannot write to stdout: %s\n", strerror(errno));
		goto out;
	}
	print_banner(bootstrap, o.brokers, o.topics_path, topics, ntopics);

	while (!es_stop) {
		rd_kafka_poll(rk, 0); /* serves nothing in practice; keeps the queue empty */
		nanosleep(&slice, NULL);
	}
	es_info("stopping on signal: the in-memory topics and offsets are discarded");
	result = 0;
out:
	/* A file naming a broker that is gone would only mislead the next
	 * script that waits for it to appear. */
	if (wrote_env && unlink(o.env_file))
		es_warn("cannot remove %s: %s", o.env_file, strerror(errno));
	if (mcluster)
		rd_kafka_mock_cluster_destroy(mcluster);
	if (rk)
		rd_kafka_destroy(rk);
	return result;
}
