/*
 * e2e.console: the console page in a real browser against a running shop.
 *
 * This driver starts the shop with the e2e harness (tests/e2e/shop.h: the
 * five daemons on the real broker and database, names of their own),
 * each serving its fault switches (ADMIN_PORT), puts one poison message
 * on the orders topic, and runs the browser test
 * (browser/console.test.cjs, Debian's Chromium through puppeteer-core),
 * which starts eventshop-console itself so that it can kill and restart
 * it. Its exit status is the test's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "es/kafka.h"
#include "shop.h"
#include "testkafka.h"
#include "testsupport.h"

/* Not JSON, and markup: the page must show it as text, as poison. */
#define POISON "<img src=x onerror=\"window.pwned=2\"> this is not JSON {"

static int produce_poison(const struct shop *shop)
{
	char err[256];
	struct es_producer *p = es_producer_new(shop->bootstrap, "e2e-console", NULL, NULL, err,
						sizeof(err));
	int rc = -1;

	if (!p) {
		fprintf(stderr, "producer: %s\n", err);
		return -1;
	}
	if (es_producer_send_raw(p, shop->topic_orders, "poison-key", 10, POISON, strlen(POISON),
				 NULL, NULL, err, sizeof(err)) == 0 &&
	    es_producer_flush(p, 10000) == 0)
		rc = 0;
	else
		fprintf(stderr, "producing the poison message: %s\n", err);
	es_producer_free(p);
	return rc;
}

/* The console's environment: the shop's topics, dead-letter topics,
 * front door and daemons. */
static void console_env(const struct shop *shop)
{
	char dlq[1024] = "", services[1024] = "", groups[1024] = "", admin[1024] = "";
	char url[128];

	shop_export_topics(shop);
	for (int s = 0; s < SHOP_NSERVICES; s++) {
		size_t n = strlen(dlq), m = strlen(services);

		snprintf(dlq + n, sizeof(dlq) - n, "%s%s.dlq.%s", s ? "," : "", shop->run,
			 shop_names[s]);
		snprintf(services + m, sizeof(services) - m, "%s%s=%s", s ? "," : "", shop_names[s],
			 shop_url(shop, (enum shop_service)s, url, sizeof(url)));
		m = strlen(groups);
		snprintf(groups + m, sizeof(groups) - m, "%s%s.%s", s ? "," : "", shop->run,
			 shop_names[s]);
		m = strlen(admin);
		snprintf(admin + m, sizeof(admin) - m, "%s%s=%s", s ? "," : "", shop_names[s],
			 shop_admin_url(shop, (enum shop_service)s, url, sizeof(url)));
	}
	setenv("CONSOLE_DLQ_TOPICS", dlq, 1);
	setenv("CONSOLE_SERVICES", services, 1);
	setenv("CONSOLE_GROUPS", groups, 1);
	/* Each daemon's fault switches, on the port its log announced. */
	setenv("CONSOLE_ADMIN", admin, 1);
	setenv("ORDER_SERVICE_URL", shop_url(shop, SHOP_ORDER, url, sizeof(url)), 1);
	setenv("SHOP_ORDERS_TOPIC", shop->topic_orders, 1);
}

static int run_browser_test(void)
{
	const char *script = getenv("CONSOLE_TEST_JS");
	int status;
	pid_t pid;

	if (!script) {
		fprintf(stderr, "CONSOLE_TEST_JS is not set (ctest sets it)\n");
		return 1;
	}
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		execlp("node", "node", script, (char *)NULL);
		perror("node");
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return 1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(void)
{
	const char *bootstrap = es_test_kafka_bootstrap(), *db = es_test_database_url();
	struct shop shop;
	int rc = 1;

	if (!bootstrap || !db)
		return 77; /* said why */
	if (shop_init(&shop, bootstrap, db))
		goto out;
	shop.admin = true; /* the page shows and sets the fault switches */
	if (shop_start_all(&shop) || produce_poison(&shop))
		goto out;
	console_env(&shop);
	rc = run_browser_test();
out:
	shop_release(&shop);
	return rc;
}
