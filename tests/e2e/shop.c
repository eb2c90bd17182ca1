#include "shop.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "es/auth.h"
#include "testkafka.h"
#include "testsupport.h"

const char *const shop_names[SHOP_NSERVICES] = {
	"order-service", "payment-service",   "inventory-service",
	"email-service", "analytics-service", "shipping-service",
};

static const char *const bin_vars[SHOP_NSERVICES] = {
	"ORDER_SERVICE_BIN", "PAYMENT_SERVICE_BIN",   "INVENTORY_SERVICE_BIN",
	"EMAIL_SERVICE_BIN", "ANALYTICS_SERVICE_BIN", "SHIPPING_SERVICE_BIN",
};

long long shop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

/*
 * The shop asks for bearer tokens (es/auth.h), as the demo's does: a key in
 * the run's directory, exported as AUTH_JWT_KEY_FILE for the daemons (they
 * inherit it) and for shop_http, which signs the harness's requests with it.
 * A key the caller exported already is kept (abuse.http.auth's).
 */
static int use_tokens(struct shop *shop)
{
	char path[300];
	FILE *f;

	if (getenv("AUTH_JWT_KEY_FILE"))
		return 0;
	snprintf(path, sizeof(path), "%s/jwt.secret", shop->dir);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		return -1;
	}
	fprintf(f, "%s-%s", shop->run, "the e2e harness's secret, over 32 bytes");
	if (fclose(f))
		return -1;
	setenv("AUTH_JWT_KEY_FILE", path, 1);
	return 0;
}

/* The service's database role, as deploy/postgres/roles.sql names it:
 * order-service's is order_service. */
static void role_of(enum shop_service s, char *buf, size_t size)
{
	snprintf(buf, size, "%s", shop_names[s]);
	for (char *p = buf; *p; p++) {
		if (*p == '-')
			*p = '_';
	}
}

/*
 * Each daemon connects as its service's role to a schema of this run that
 * the role owns (run_order_service, ...), as in production: the roles.sql
 * of deploy/postgres makes the schemas, es_test_role_conninfo the URLs.
 */
static int use_roles(struct shop *shop)
{
	char prefix[64], role[32];

	snprintf(prefix, sizeof(prefix), "%s_", shop->run);
	if (es_test_service_schemas(shop->database_url, prefix))
		return -1;
	for (int s = 0; s < SHOP_NSERVICES; s++) {
		role_of((enum shop_service)s, role, sizeof(role));
		shop->role_url[s] = es_test_role_conninfo(shop->database_url, role);
		if (!shop->role_url[s])
			return -1;
	}
	return 0;
}

int shop_init(struct shop *shop, const char *bootstrap, const char *database_url)
{
	char topic[160];

	memset(shop, 0, sizeof(*shop));
	shop->bootstrap = bootstrap;
	shop->database_url = database_url;
	es_test_unique_name(shop->run, sizeof(shop->run), "e2e");
	snprintf(shop->dir, sizeof(shop->dir), "/tmp/es-%s-XXXXXX", shop->run);
	if (!mkdtemp(shop->dir)) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(shop->maildir, sizeof(shop->maildir), "%s/maildir", shop->dir);
	if (use_tokens(shop) || use_roles(shop))
		return -1;
	snprintf(shop->topic_orders, sizeof(shop->topic_orders), "%s.orders", shop->run);
	snprintf(shop->topic_payments, sizeof(shop->topic_payments), "%s.payments", shop->run);
	snprintf(shop->topic_inventory, sizeof(shop->topic_inventory), "%s.inventory", shop->run);
	snprintf(shop->topic_notifications, sizeof(shop->topic_notifications), "%s.notifications",
		 shop->run);
	snprintf(shop->topic_shipments, sizeof(shop->topic_shipments), "%s.shipments", shop->run);
	if (es_test_kafka_create_topic(bootstrap, shop->topic_orders, 6) ||
	    es_test_kafka_create_topic(bootstrap, shop->topic_shipments, 6) ||
	    es_test_kafka_create_topic(bootstrap, shop->topic_payments, 6) ||
	    es_test_kafka_create_topic(bootstrap, shop->topic_inventory, 6) ||
	    es_test_kafka_create_topic(bootstrap, shop->topic_notifications, 3))
		return -1;
	for (int s = 0; s < SHOP_NSERVICES; s++) {
		snprintf(topic, sizeof(topic), "%s.dlq.%s", shop->run, shop_names[s]);
		if (es_test_kafka_create_topic(bootstrap, topic, 1))
			return -1;
	}
	return 0;
}

void shop_export_topics(const struct shop *shop)
{
	setenv("KAFKA_BOOTSTRAP_SERVERS", shop->bootstrap, 1);
	setenv("TOPIC_ORDERS", shop->topic_orders, 1);
	setenv("TOPIC_PAYMENTS", shop->topic_payments, 1);
	setenv("TOPIC_INVENTORY", shop->topic_inventory, 1);
	setenv("TOPIC_NOTIFICATIONS", shop->topic_notifications, 1);
	setenv("TOPIC_SHIPMENTS", shop->topic_shipments, 1);
}

/* A broker with users (tests/infra/kafka --sasl --user NAME): with
 * SHOP_KAFKA_USERS set to its users' directory, each daemon logs in as the
 * user named after its service, with that user's password. */
static void kafka_user(enum shop_service s)
{
	const char *dir = getenv("SHOP_KAFKA_USERS");
	char path[400], password[128] = "";
	FILE *f;

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, shop_names[s]);
	f = fopen(path, "r");
	if (!f || !fgets(password, sizeof(password), f))
		password[0] = '\0';
	if (f)
		fclose(f);
	password[strcspn(password, "\n")] = '\0';
	setenv("KAFKA_SASL_USERNAME", shop_names[s], 1);
	setenv("KAFKA_SASL_PASSWORD", password, 1);
}

const char *shop_schema(const struct shop *shop, enum shop_service s, char *buf, size_t size)
{
	char role[32];

	role_of(s, role, sizeof(role));
	snprintf(buf, size, "%s_%s", shop->run, role);
	return buf;
}

/* The child's environment on top of ours (execve would lose KAFKA_* etc.
 * otherwise set by the caller). */
static void child_env(const struct shop *shop, enum shop_service s)
{
	char buf[256];
	const char *short_name = shop_names[s];

	shop_export_topics(shop);
	setenv("DATABASE_URL", shop->role_url[s], 1);
	setenv("DATABASE_SCHEMA", shop_schema(shop, s, buf, sizeof(buf)), 1);
	setenv("HTTP_PORT", "0", 1);
	setenv("HTTP_BIND", "127.0.0.1", 1);
	/* Shipments move on quickly, so that the invariants can wait for
	 * every confirmed order's delivery. */
	setenv("SHIPPING_DELAY_MS", "100", 1);
	snprintf(buf, sizeof(buf), "%s.dlq.%s", shop->run, short_name);
	setenv("TOPIC_DLQ", buf, 1);
	snprintf(buf, sizeof(buf), "%s.%s", shop->run, short_name);
	setenv("CONSUMER_GROUP", buf, 1);
	setenv("MAILDIR", shop->maildir, 1);
	if (shop->saga_timeout_ms) {
		snprintf(buf, sizeof(buf), "%ld", shop->saga_timeout_ms);
		setenv("SAGA_TIMEOUT_MS", buf, 1);
	}
	if (!getenv("LOG_LEVEL"))
		setenv("LOG_LEVEL", "info", 1);
	kafka_user(s);
	if (shop->admin)
		setenv("ADMIN_PORT", "0", 1);
}

static void log_path(const struct shop *shop, enum shop_service s, int i, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s.%d.log", shop->dir, shop_names[s], i);
}

static void print_log(const struct shop *shop, enum shop_service s, int i)
{
	char path[400], line[1024];
	FILE *f;

	log_path(shop, s, i, path, sizeof(path));
	f = fopen(path, "r");
	if (!f)
		return;
	fprintf(stderr, "---- %s\n", path);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fclose(f);
}

/* The port the daemon last announced in its log after what (e.g.
 * "serving HTTP on port "): the log is appended to across restarts. */
static unsigned short announced_port(const struct shop *shop, enum shop_service s, int i, long from,
				     const char *what)
{
	char path[400], line[2048];
	unsigned short port = 0;
	FILE *f;

	log_path(shop, s, i, path, sizeof(path));
	f = fopen(path, "r");
	if (!f)
		return 0;
	fseek(f, from, SEEK_SET);
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, what);

		if (p)
			port = (unsigned short)strtoul(p + strlen(what), NULL, 10);
	}
	fclose(f);
	return port;
}

int shop_start(struct shop *shop, enum shop_service s, int i)
{
	const char *bin = getenv(bin_vars[s]);
	char path[400], url[128];
	long long deadline = shop_now_ms() + 60000;
	struct stat st;
	long log_start = 0;
	pid_t pid;

	if (!bin) {
		fprintf(stderr, "%s is not set (ctest sets it)\n", bin_vars[s]);
		return -1;
	}
	log_path(shop, s, i, path, sizeof(path));
	/* Read the port from what this start adds to the log. */
	if (stat(path, &st) == 0)
		log_start = (long)st.st_size;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		close(fd);
		child_env(shop, s);
		execl(bin, bin, (char *)NULL);
		_exit(127);
	}
	shop->pid[s][i] = pid;
	shop->port[s][i] = 0;
	while (shop_now_ms() < deadline) {
		int status;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "%s exited during start (status %d)\n", shop_names[s],
				status);
			shop->pid[s][i] = 0;
			print_log(shop, s, i);
			return -1;
		}
		shop->port[s][i] = announced_port(shop, s, i, log_start, "serving HTTP on port ");
		if (shop->port[s][i]) {
			snprintf(url, sizeof(url), "http://127.0.0.1:%u/readyz", shop->port[s][i]);
			if (shop_http("GET", url, NULL, NULL, NULL) == 200) {
				shop->admin_port[s][i] = announced_port(shop, s, i, log_start,
									"fault switches on port ");
				return 0;
			}
		}
		sleep_ms(50);
	}
	fprintf(stderr, "%s did not become ready in 60 s\n", shop_names[s]);
	print_log(shop, s, i);
	return -1;
}

int shop_start_all(struct shop *shop)
{
	for (int s = 0; s < SHOP_NSERVICES; s++) {
		if (shop_start(shop, (enum shop_service)s, 0))
			return -1;
	}
	return 0;
}

int shop_signal(struct shop *shop, enum shop_service s, int i, int sig)
{
	pid_t pid = shop->pid[s][i];
	long long deadline = shop_now_ms() + 15000;
	int status;

	if (!pid)
		return 0;
	kill(pid, sig);
	if (sig != SIGTERM && sig != SIGKILL)
		return 0;
	while (shop_now_ms() < deadline) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			shop->pid[s][i] = 0;
			if (sig == SIGTERM && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
				fprintf(stderr, "%s did not exit 0 on SIGTERM (status %d)\n",
					shop_names[s], status);
				print_log(shop, s, i);
				return -1;
			}
			return 0;
		}
		sleep_ms(20);
	}
	fprintf(stderr, "%s did not stop within 15 s of signal %d; killing it\n", shop_names[s],
		sig);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	shop->pid[s][i] = 0;
	return -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

void shop_release(struct shop *shop)
{
	for (int s = 0; s < SHOP_NSERVICES; s++) {
		for (int i = 0; i < SHOP_MAX_INSTANCES; i++)
			shop_signal(shop, (enum shop_service)s, i, SIGTERM);
	}
	/* The key this shop made goes with it: a later shop makes its own. */
	if (shop->dir[0] && getenv("AUTH_JWT_KEY_FILE") &&
	    !strncmp(getenv("AUTH_JWT_KEY_FILE"), shop->dir, strlen(shop->dir)))
		unsetenv("AUTH_JWT_KEY_FILE");
	if (shop->dir[0] && !getenv("ES_KEEP_SHOP"))
		nftw(shop->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	for (int s = 0; s < SHOP_NSERVICES; s++) {
		free(shop->role_url[s]);
		shop->role_url[s] = NULL;
	}
}

const char *shop_url(const struct shop *shop, enum shop_service s, char *buf, size_t size)
{
	snprintf(buf, size, "http://127.0.0.1:%u", shop->port[s][0]);
	return buf;
}

const char *shop_admin_url(const struct shop *shop, enum shop_service s, char *buf, size_t size)
{
	if (shop->admin_port[s][0])
		snprintf(buf, size, "http://127.0.0.1:%u", shop->admin_port[s][0]);
	else if (size)
		buf[0] = '\0';
	return buf;
}

struct body {
	char *data;
	size_t len;
};

static size_t collect(char *ptr, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	char *grown = realloc(b->data, b->len + size * n + 1);

	if (!grown)
		return 0;
	b->data = grown;
	memcpy(b->data + b->len, ptr, size * n);
	b->len += size * n;
	b->data[b->len] = '\0';
	return size * n;
}

/* Appends an operator's token to list when the shop asks for tokens and
 * headers carry none: the harness reads every order and every daemon's
 * diagnostic routes, as an operator does. */
static struct curl_slist *with_token(struct curl_slist *list, const char *const *headers)
{
	char auth[ES_AUTH_HEADER_MAX], err[256];

	for (size_t i = 0; headers && headers[i]; i++) {
		if (!strncasecmp(headers[i], "Authorization:", 14))
			return list;
	}
	if (es_auth_header_from_env(ES_AUTH_OPERATOR, NULL, 3600, auth, sizeof(auth), err,
				    sizeof(err))) {
		fprintf(stderr, "shop: no token: %s\n", err);
		return list;
	}
	return auth[0] ? curl_slist_append(list, auth) : list;
}

long shop_http(const char *method, const char *url, const char *body, const char *const *headers,
	       json_t **json)
{
	CURL *curl = curl_easy_init();
	struct curl_slist *list = NULL;
	struct body b = {NULL, 0};
	long status = 0;
	char *ctype = NULL;

	if (json)
		*json = NULL;
	if (!curl)
		return 0;
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	if (body) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	for (size_t i = 0; headers && headers[i]; i++)
		list = curl_slist_append(list, headers[i]);
	list = with_token(list, headers);
	if (list)
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
	if (curl_easy_perform(curl) == CURLE_OK) {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ctype);
		if (json && b.data && ctype && strstr(ctype, "json"))
			*json = json_loads(b.data, 0, NULL);
	}
	curl_slist_free_all(list);
	curl_easy_cleanup(curl);
	free(b.data);
	return status;
}

long shop_get_text(const char *url, char **text)
{
	CURL *curl = curl_easy_init();
	struct body b = {NULL, 0};
	long status = 0;

	*text = NULL;
	if (!curl)
		return 0;
	struct curl_slist *list = with_token(NULL, NULL);

	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	if (list)
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
	if (curl_easy_perform(curl) == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(list);
	curl_easy_cleanup(curl);
	*text = b.data;
	return status;
}

long shop_place(const struct shop *shop, const char *body, const char *idempotency_key,
		char *order_id)
{
	char url[128], key[300], auth[ES_AUTH_HEADER_MAX], err[256];
	const char *headers[4] = {"Content-Type: application/json", NULL, NULL, NULL};
	json_t *reply, *order = json_loads(body, 0, NULL);
	const char *customer = json_string_value(json_object_get(order, "customerId"));
	size_t nh = 1;
	long status;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/orders", shop->port[SHOP_ORDER][0]);
	if (idempotency_key) {
		snprintf(key, sizeof(key), "Idempotency-Key: %s", idempotency_key);
		headers[nh++] = key;
	}
	/* The customer places the order with their own token. */
	if (customer && *customer &&
	    !es_auth_header_from_env(ES_AUTH_CUSTOMER, customer, 3600, auth, sizeof(auth), err,
				     sizeof(err)) &&
	    auth[0])
		headers[nh++] = auth;
	json_decref(order);
	status = shop_http("POST", url, body, headers, &reply);
	if (status == 202 && order_id)
		snprintf(order_id, 37, "%s", json_string_value(json_object_get(reply, "orderId")));
	json_decref(reply);
	return status;
}

json_t *shop_wait_terminal(const struct shop *shop, const char *order_id, int timeout_ms)
{
	char url[160];
	long long deadline = shop_now_ms() + timeout_ms;

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/orders/%s", shop->port[SHOP_ORDER][0],
		 order_id);
	while (shop_now_ms() < deadline) {
		json_t *o = NULL;

		if (shop_http("GET", url, NULL, NULL, &o) == 200) {
			const char *st = json_string_value(json_object_get(o, "status"));

			if (st && strcmp(st, "PENDING"))
				return o;
		}
		json_decref(o);
		sleep_ms(50);
	}
	return NULL;
}
