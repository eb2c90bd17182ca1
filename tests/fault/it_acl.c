/*
 * Fault injection (harness.c), 7: least privilege on Kafka. A broker of the
 * test's own with SASL over TLS and an authorizer (tests/infra/kafka
 * --sasl), one user per service, and deploy/kafka-acls.txt granted with
 * shopctl create-acls: each daemon logs in as its own service and may read
 * what it consumes, write its own topic and dead-letter topic, and use its
 * own group. Then:
 *
 *   1. the saga under a small load, and the invariants;
 *   2. payment-service's credentials cannot produce to orders: the broker
 *      refuses with TOPIC_AUTHORIZATION_FAILED;
 *   3. payment-service told to publish to orders (TOPIC_PAYMENTS) neither
 *      crashes nor spins: its relay's deliveries fail, naming the
 *      authorization failure, a bounded number of times, and it runs on.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "invariants.h"
#include "testkafka.h"

static const char *const security_vars[] = {
	"KAFKA_SECURITY_PROTOCOL", "KAFKA_SASL_MECHANISM", "KAFKA_SSL_CA_LOCATION",
	"KAFKA_SASL_USERNAME",	   "KAFKA_SASL_PASSWORD",
};
#define NVARS (sizeof(security_vars) / sizeof(security_vars[0]))

/* Produces one message to topic as user; returns the delivery's error. */
static rd_kafka_resp_err_t produce_as(const char *servers, const char *user, const char *password,
				      const char *topic)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_resp_err_t result = RD_KAFKA_RESP_ERR__TIMED_OUT;
	char err[256];
	rd_kafka_t *rk;

	rd_kafka_conf_set(conf, "bootstrap.servers", servers, err, sizeof(err));
	for (size_t i = 0; i < NVARS; i++) {
		const char *v = getenv(security_vars[i]);
		char prop[64];

		if (!v)
			continue;
		snprintf(prop, sizeof(prop), "%s", security_vars[i] + strlen("KAFKA_"));
		for (char *p = prop; *p; p++)
			*p = *p == '_' ? '.' : (char)(*p - 'A' + 'a');
		rd_kafka_conf_set(conf, prop, v, err, sizeof(err));
	}
	rd_kafka_conf_set(conf, "sasl.username", user, err, sizeof(err));
	rd_kafka_conf_set(conf, "sasl.password", password, err, sizeof(err));
	rd_kafka_conf_set(conf, "message.timeout.ms", "20000", err, sizeof(err));
	rd_kafka_conf_set_events(conf, RD_KAFKA_EVENT_DR);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk)
		return RD_KAFKA_RESP_ERR__FAIL;
	if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE("x", 1),
			      RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		rd_kafka_event_t *ev;
		rd_kafka_queue_t *q = rd_kafka_queue_get_main(rk);

		for (int i = 0; i < 250 && result == RD_KAFKA_RESP_ERR__TIMED_OUT; i++) {
			ev = rd_kafka_queue_poll(q, 100);
			if (ev && rd_kafka_event_type(ev) == RD_KAFKA_EVENT_DR) {
				const rd_kafka_message_t *m = rd_kafka_event_message_next(ev);

				if (m)
					result = m->err;
			}
			if (ev)
				rd_kafka_event_destroy(ev);
		}
		rd_kafka_queue_destroy(q);
	}
	rd_kafka_destroy(rk);
	return result;
}

START_TEST(saga_with_acls_and_a_refused_producer)
{
	struct own_infra kafka = {0};
	struct shop shop = {0};
	char *servers = own_infra_start(
		&kafka, "kafka",
		"--sasl --user order-service --user payment-service --user inventory-service "
		"--user email-service --user analytics-service --user shipping-service",
		"KAFKA_BOOTSTRAP_SERVERS");
	struct invariants_report rep = {0};
	struct load l = {0};
	struct client *clients;
	char cmd[1200], path[200], password[128] = "", id[37] = "", saved[96];
	rd_kafka_resp_err_t refused = RD_KAFKA_RESP_ERR_NO_ERROR;
	int violations = -1, denied = -1, status, exits = 0, crashes = 0;
	bool failed = true, loaded = false, alive = false;
	FILE *f;

	if (!servers)
		goto out;
	for (size_t i = 0; i < NVARS; i++) {
		char *v = infra_env(kafka.dir, "kafka", security_vars[i]);

		if (v)
			setenv(security_vars[i], v, 1);
		free(v);
	}
	setenv("KAFKA_BOOTSTRAP_SERVERS", servers, 1);
	snprintf(path, sizeof(path), "%s/users", kafka.dir);
	setenv("SHOP_KAFKA_USERS", path, 1);
	if (shop_init(&shop, servers, database_url))
		goto out;
	snprintf(cmd, sizeof(cmd), "'%s' create-acls --prefix '%s.' '%s' >'%s/acls.log' 2>&1",
		 SHOPCTL_BIN, shop.run, ACLS_FILE, shop.dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "acl: shopctl create-acls failed; see %s/acls.log\n", shop.dir);
		goto out;
	}
	if (shop_start_all(&shop))
		goto out;
	fprintf(stderr, "acl: shop %s on %s, every daemon its own user\n", shop.run, servers);

	/* 1. The saga, each daemon as its own user. */
	load_init(&l, &shop, 2, 60, 100);
	loaded = true;
	clients = load_start(&l);
	load_join(&l, clients);
	load_print("acl", &l);
	wait_quiet(&shop, 120000, &exits, &crashes);
	violations = shop_check_invariants(&shop, l.acc.ids, l.acc.n, 120000, &rep);

	/* 2. payment-service's credentials, on orders. */
	snprintf(path, sizeof(path), "%s/users/payment-service", kafka.dir);
	f = fopen(path, "r");
	if (f) {
		if (!fgets(password, sizeof(password), f))
			password[0] = '\0';
		fclose(f);
	}
	password[strcspn(password, "\n")] = '\0';
	refused = produce_as(servers, "payment-service", password, shop.topic_orders);
	fprintf(stderr, "acl: payment-service producing to %s: %s\n", shop.topic_orders,
		rd_kafka_err2str(refused));

	/* 3. payment-service told to publish its events to orders. */
	snprintf(saved, sizeof(saved), "%s", shop.topic_payments);
	if (shop_signal(&shop, SHOP_PAYMENT, 0, SIGTERM))
		goto out;
	snprintf(shop.topic_payments, sizeof(shop.topic_payments), "%s", shop.topic_orders);
	status = shop_start(&shop, SHOP_PAYMENT, 0);
	snprintf(shop.topic_payments, sizeof(shop.topic_payments), "%s", saved);
	if (status)
		goto out;
	shop_place(&shop,
		   "{\"customerId\":\"c-acl\",\"customerEmail\":\"acl@example.com\","
		   "\"paymentToken\":\"tok_visa\",\"items\":[{\"sku\":\"mug-classic\","
		   "\"quantity\":1}]}",
		   "acl-misdirected", id);
	sleep_ms(10000);
	alive = waitpid(shop.pid[SHOP_PAYMENT][0], &status, WNOHANG) == 0;
	denied = log_count(&shop, SHOP_PAYMENT, "Topic authorization failed");
	fprintf(stderr,
		"acl: payment-service publishing to orders: %s after 10 s, %d log line(s) name "
		"the authorization failure\n",
		alive ? "still running" : "exited", denied);
	fprintf(stderr, "acl: %zu accepted orders (%d confirmed, %d cancelled), %d violation(s)\n",
		l.acc.n, rep.confirmed, rep.cancelled, violations);
	failed = violations != 0 || crashes || l.acc.n < 100 ||
		 refused != RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED || !alive || denied < 1 ||
		 denied > 100;
out:
	release(&shop, failed);
	own_infra_release(&kafka, failed);
	for (size_t i = 0; i < NVARS; i++)
		unsetenv(security_vars[i]);
	unsetenv("SHOP_KAFKA_USERS");
	if (loaded)
		load_free(&l);
	free(servers);
	ck_assert_msg(!failed,
		      "acl: %d violation(s), payment-service on orders: %s, daemon %s, %d denial "
		      "line(s)",
		      violations, rd_kafka_err2str(refused), alive ? "alive" : "not alive", denied);
}
END_TEST

int main(void)
{
	struct fault_case cases[] = {
		{"saga_with_acls_and_a_refused_producer", saga_with_acls_and_a_refused_producer},
	};

	return fault_main("fault.injection.acl", cases, sizeof(cases) / sizeof(cases[0]));
}
