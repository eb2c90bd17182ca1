/* shopctl create-acls: the ACLs of deploy/kafka-acls.txt (or another file). */
#include <stdio.h>
#include <string.h>

#include "es/kafka.h"
#include "shopctl.h"

#define MAX_ACLS 128

struct acl_spec {
	char principal[128]; /* "User:<name>" */
	char name[300]; /* with the prefix */
	rd_kafka_ResourceType_t type;
	rd_kafka_AclOperation_t op;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: shopctl create-acls [--prefix PREFIX] [FILE]\n"
		   "\n"
		   "Grants the ACLs listed in FILE (default deploy/kafka-acls.txt): one\n"
		   "\"principal operation resource name\" per line, # starts a comment;\n"
		   "operation is read or write, resource topic or group, and principal a\n"
		   "user name (User:<name>). --prefix is put before every topic and group\n"
		   "name (the tests' shops use \"<run>.\"). Granting an ACL that exists\n"
		   "changes nothing.\n"
		   "\n"
		   "The broker must run an authorizer, and the caller must be allowed to\n"
		   "alter the cluster's ACLs (a super user): KAFKA_SASL_USERNAME and\n"
		   "KAFKA_SASL_PASSWORD with KAFKA_SECURITY_PROTOCOL, as every KAFKA_*\n"
		   "variable, are passed to librdkafka.\n");
}

/* Reads the file. Returns the count, or -1 (message printed). */
static int read_acls(const char *path, const char *prefix, struct acl_spec *out)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int n = 0, lineno = 0;

	if (!f) {
		shopctl_err("cannot open %s", path);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char who[100], op[16], res[16], name[200], extra[2];
		char *hash = strchr(line, '#');
		int fields;

		lineno++;
		if (hash)
			*hash = '\0';
		fields = sscanf(line, "%99s %15s %15s %199s %1s", who, op, res, name, extra);
		if (fields < 1)
			continue;
		if (fields != 4 || (strcmp(op, "read") && strcmp(op, "write")) ||
		    (strcmp(res, "topic") && strcmp(res, "group")) ||
		    (!strcmp(res, "group") && strcmp(op, "read"))) {
			shopctl_err(
				"%s:%d: want \"principal read|write topic NAME\" or \"principal "
				"read group NAME\"",
				path, lineno);
			fclose(f);
			return -1;
		}
		if (n == MAX_ACLS) {
			shopctl_err("%s:%d: more than %d ACLs", path, lineno, MAX_ACLS);
			fclose(f);
			return -1;
		}
		snprintf(out[n].principal, sizeof(out[n].principal), "User:%s", who);
		snprintf(out[n].name, sizeof(out[n].name), "%s%s", prefix, name);
		out[n].type = !strcmp(res, "topic") ? RD_KAFKA_RESOURCE_TOPIC
						    : RD_KAFKA_RESOURCE_GROUP;
		out[n].op = !strcmp(op, "read") ? RD_KAFKA_ACL_OPERATION_READ
						: RD_KAFKA_ACL_OPERATION_WRITE;
		n++;
	}
	fclose(f);
	return n;
}

static int create_acls(const char *bootstrap, const struct acl_spec *a, int n)
{
	rd_kafka_AclBinding_t *b[MAX_ACLS];
	rd_kafka_queue_t *q = NULL;
	rd_kafka_event_t *ev = NULL;
	rd_kafka_t *rk = shopctl_admin_client(bootstrap);
	char err[512];
	int made, failed = 1;

	if (!rk)
		return SHOPCTL_FAIL;
	for (made = 0; made < n; made++) {
		b[made] = rd_kafka_AclBinding_new(
			a[made].type, a[made].name, RD_KAFKA_RESOURCE_PATTERN_LITERAL,
			a[made].principal, "*", a[made].op, RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW, err,
			sizeof(err));
		if (!b[made]) {
			shopctl_err("%s on %s: %s", a[made].principal, a[made].name, err);
			goto out;
		}
	}
	q = rd_kafka_queue_new(rk);
	rd_kafka_CreateAcls(rk, b, (size_t)n, NULL, q);
	ev = shopctl_admin_result(q, bootstrap);
	if (ev) {
		size_t cnt;
		const rd_kafka_acl_result_t **res = rd_kafka_CreateAcls_result_acls(
			rd_kafka_event_CreateAcls_result(ev), &cnt);

		failed = 0;
		for (size_t i = 0; i < cnt; i++) {
			const rd_kafka_error_t *e = rd_kafka_acl_result_error(res[i]);

			if (e) {
				shopctl_err("%s %s on %s: %s", a[i].principal,
					    rd_kafka_AclOperation_name(a[i].op), a[i].name,
					    rd_kafka_error_string(e));
				failed = 1;
			} else {
				printf("allowed %s to %s %s %s\n", a[i].principal,
				       rd_kafka_AclOperation_name(a[i].op),
				       rd_kafka_ResourceType_name(a[i].type), a[i].name);
			}
		}
	}
out:
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AclBinding_destroy_array(b, (size_t)made);
	if (q)
		rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	return failed ? SHOPCTL_FAIL : SHOPCTL_OK;
}

int shopctl_cmd_create_acls(int argc, char **argv)
{
	static struct acl_spec acls[MAX_ACLS];
	const char *prefix = "", *path = "deploy/kafka-acls.txt";
	int n, i = 1;

	if (argc >= 2 && shopctl_is_help(argv[1])) {
		usage(stdout);
		return SHOPCTL_OK;
	}
	if (i < argc && !strcmp(argv[i], "--prefix")) {
		if (i + 1 >= argc)
			return shopctl_usage_error(argv[0], "--prefix needs a value");
		prefix = argv[i + 1];
		i += 2;
	}
	if (i < argc && argv[i][0] == '-')
		return shopctl_usage_error(argv[0], "unknown option %s", argv[i]);
	if (i < argc)
		path = argv[i++];
	if (i < argc)
		return shopctl_usage_error(argv[0], "at most one FILE");
	n = read_acls(path, prefix, acls);
	if (n < 0)
		return SHOPCTL_FAIL;
	if (n == 0) {
		shopctl_err("%s lists no ACLs", path);
		return SHOPCTL_FAIL;
	}
	return create_acls(shopctl_bootstrap(), acls, n);
}
