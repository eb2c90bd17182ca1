/*
 * shop: the six daemons as separate processes, for end-to-end tests.
 *
 * A shop gets names of its own (topics prefixed with a unique run id, one
 * database schema per service, a maildir in a temporary directory, free
 * HTTP ports), so several shops can share one broker and one database.
 * Each daemon connects as its service's own role (deploy/postgres/
 * roles.sql), to a schema of the run that the role owns.
 * The daemons are the real binaries (their paths come from the
 * environment: ORDER_SERVICE_BIN and so on, set by ctest), started with
 * fork/exec and stopped with SIGTERM, or killed with SIGKILL to test
 * crashes. Like the demo's, a shop asks for bearer tokens (es/auth.h):
 * shop_init exports AUTH_JWT_KEY_FILE (a key in its directory, unless one
 * is exported already), shop_place sends the order's customer's token and
 * shop_http and shop_get_text an operator's.
 */
#ifndef ES_SHOP_H
#define ES_SHOP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

enum shop_service {
	SHOP_ORDER,
	SHOP_PAYMENT,
	SHOP_INVENTORY,
	SHOP_EMAIL,
	SHOP_ANALYTICS,
	SHOP_SHIPPING,
	SHOP_NSERVICES,
};

#define SHOP_MAX_INSTANCES 2

struct shop {
	char run[48]; /* unique run id, prefix of topics and schemas */
	char dir[256]; /* temporary directory: maildir, logs */
	char maildir[300];
	const char *bootstrap;
	const char *database_url; /* an administrator's: makes the schemas */
	char *role_url[SHOP_NSERVICES]; /* owned: each service's own role */
	char topic_orders[96], topic_payments[96], topic_inventory[96], topic_notifications[96];
	char topic_shipments[96];
	unsigned short port[SHOP_NSERVICES][SHOP_MAX_INSTANCES];
	pid_t pid[SHOP_NSERVICES][SHOP_MAX_INSTANCES];
	long saga_timeout_ms; /* 0: the daemon's default */
	/* Set before shop_start: each daemon serves its fault switches
	 * (ADMIN_PORT=0, es/faults.h), on the port then in admin_port. */
	bool admin;
	unsigned short admin_port[SHOP_NSERVICES][SHOP_MAX_INSTANCES];
};

extern const char *const shop_names[SHOP_NSERVICES]; /* "order-service", ... */

/*
 * Creates the shop's topics (6 partitions each, and the six DLQs) and
 * temporary directory. Returns 0, or -1 with a message printed.
 */
int shop_init(struct shop *shop, const char *bootstrap, const char *database_url);

/* Sets KAFKA_BOOTSTRAP_SERVERS and the TOPIC_* variables of this shop in
 * our environment, for a program run beside it (eventshop-console). */
void shop_export_topics(const struct shop *shop);

/* Starts instance i (0 or 1) of a service and waits until its /readyz
 * answers 200 (60 s at most). Returns 0 or -1 (its log is printed). */
int shop_start(struct shop *shop, enum shop_service s, int i);

/* Starts one instance of every service. */
int shop_start_all(struct shop *shop);

/* Sends sig (SIGTERM: waits up to 15 s for the exit) to instance i. */
int shop_signal(struct shop *shop, enum shop_service s, int i, int sig);

/* Stops everything (SIGTERM), removes the temporary directory unless
 * ES_KEEP_SHOP is set. */
void shop_release(struct shop *shop);

/* The schema of a service in this shop ("<run>_order_service"), in buf. */
const char *shop_schema(const struct shop *shop, enum shop_service s, char *buf, size_t size);

/* The base URL of instance 0 of a service, e.g. "http://127.0.0.1:40123". */
const char *shop_url(const struct shop *shop, enum shop_service s, char *buf, size_t size);

/* The base URL of instance 0's fault switches (shop.admin), "" without. */
const char *shop_admin_url(const struct shop *shop, enum shop_service s, char *buf, size_t size);

/*
 * One HTTP request with libcurl (body may be NULL; headers a
 * NULL-terminated list of "Name: value" or NULL; an operator's token is
 * added unless they hold an Authorization). Returns the status (0 on
 * a transport error) and, when the answer is JSON, *json (caller owns; may
 * be NULL).
 */
long shop_http(const char *method, const char *url, const char *body, const char *const *headers,
	       json_t **json);

/* GET url as text: returns the status, *text the body (caller frees). */
long shop_get_text(const char *url, char **text);

/* POST /orders with a JSON body; returns the status, *order_id filled on
 * 202 (37 bytes). */
long shop_place(const struct shop *shop, const char *body, const char *idempotency_key,
		char *order_id);

/* Polls GET /orders/{id} until its status is terminal or timeout_ms passes;
 * returns the final order JSON (caller owns) or NULL. */
json_t *shop_wait_terminal(const struct shop *shop, const char *order_id, int timeout_ms);

/* Milliseconds on a monotonic clock. */
long long shop_now_ms(void);

#endif
