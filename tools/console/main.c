/*
 * eventshop-console (console.h): configuration, the Kafka loop and the
 * prober thread. Configuration (environment):
 *
 *   CONSOLE_PORT            8085 (HTTP_PORT is the daemons'; a demo runs both)
 *   HTTP_BIND, HTTP_THREADS 127.0.0.1, 4
 *   KAFKA_BOOTSTRAP_SERVERS 127.0.0.1:9092 (and any KAFKA_*, es/config.h)
 *   TOPIC_ORDERS, TOPIC_PAYMENTS, TOPIC_INVENTORY, TOPIC_NOTIFICATIONS
 *   CONSOLE_DLQ_TOPICS      dlq.order-service,dlq.payment-service,... (the five)
 *   CONSOLE_TAIL            50: messages re-read from each partition at start,
 *                           so that a restarted console shows the recent past
 *   CONSOLE_RING_EVENTS     2000, CONSOLE_RING_BYTES 8388608: what it keeps
 *   ORDER_SERVICE_URL       http://127.0.0.1:8080: where the page's orders go
 *   CONSOLE_SERVICES        name=url,... whose /readyz the panel shows; by
 *                           default the six daemons on 8080 to 8084 and 8086
 *   CONSOLE_ADMIN           name=url,... of the daemons' fault-switch servers
 *                           (es/faults.h) the switches panel shows and sets;
 *                           by default each CONSOLE_SERVICES URL's port + 1000
 *                           (the demo's ADMIN_PORT); "none": no panel
 *   CONSOLE_GROUPS          the consumer groups whose lag the panel shows;
 *                           by default the six daemons' (their names)
 *   LOG_LEVEL               info
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "console.h"
#include "es/clock.h"
#include "es/config.h"
#include "es/daemon.h"
#include "es/envelope.h"
#include "es/log.h"
#include "es/reader.h"
#include "admin.h"
#include "es/service.h"
#include "event.h"

#define POLL_MS 100
#define PROBE_MS 2000
#define MAX_BATCH 500 /* messages read before the streams are woken */
/* The streams are woken at most this often: an event that comes after a
 * quiet spell goes out at once, one in a busy shop waits up to 50 ms for
 * the others. A page needs it no sooner, and waking every stream for each
 * event or two (at 100 orders/s some 1,100 a second) cost more CPU, the
 * console's and the pages', than the frames themselves
 * (docs/benchmarks.md, "What open console pages cost"). */
#define WAKE_MS 50
/* How often the console looks for topics created after its start (the
 * dead-letter topics appear with the first dead letter, on a broker that
 * creates topics when they are first written to). */
#define RESCAN_MS 5000
#define START_RETRY_MS 30000

static const char *const default_dlq =
	"dlq.order-service,dlq.payment-service,dlq.inventory-service,dlq.email-service,"
	"dlq.analytics-service,dlq.shipping-service";
static const char *const default_services =
	"order-service=http://127.0.0.1:8080,payment-service=http://127.0.0.1:8081,"
	"inventory-service=http://127.0.0.1:8082,email-service=http://127.0.0.1:8083,"
	"analytics-service=http://127.0.0.1:8084,shipping-service=http://127.0.0.1:8086";

struct config {
	const char *bootstrap;
	const char *bind;
	long port, threads, tail, ring_events, ring_bytes;
};

static int add_topic(struct console *c, const char *name, size_t len, bool dlq, char *errstr,
		     size_t errstr_size)
{
	struct console_topic *t;

	if (c->ntopics == CONSOLE_MAX_TOPICS || len == 0 || len >= sizeof(t->name)) {
		snprintf(errstr, errstr_size,
			 "CONSOLE_DLQ_TOPICS: at most %d topics of 1 to 255 characters",
			 CONSOLE_MAX_TOPICS - 4);
		return -1;
	}
	t = &c->topics[c->ntopics++];
	memcpy(t->name, name, len);
	t->name[len] = '\0';
	t->dlq = dlq;
	return 0;
}

static int read_topics(struct console *c, char *errstr, size_t errstr_size)
{
	const char *dlq = es_config_str("CONSOLE_DLQ_TOPICS", default_dlq);
	struct es_topics t;

	if (es_service_topics(&t, errstr, errstr_size))
		return -1;
	if (add_topic(c, t.orders, strlen(t.orders), false, errstr, errstr_size) ||
	    add_topic(c, t.payments, strlen(t.payments), false, errstr, errstr_size) ||
	    add_topic(c, t.inventory, strlen(t.inventory), false, errstr, errstr_size) ||
	    add_topic(c, t.notifications, strlen(t.notifications), false, errstr, errstr_size) ||
	    add_topic(c, t.shipments, strlen(t.shipments), false, errstr, errstr_size))
		return -1;
	while (*dlq) {
		size_t len = strcspn(dlq, ",");

		if (len && add_topic(c, dlq, len, true, errstr, errstr_size))
			return -1;
		dlq += len + (dlq[len] == ',');
	}
	return 0;
}

/* CONSOLE_SERVICES: name=url,... */
static int read_services(struct console *c, char *errstr, size_t errstr_size)
{
	struct console_named_url list[CONSOLE_MAX_SERVICES];
	int n = console_parse_named_urls("CONSOLE_SERVICES",
					 es_config_str("CONSOLE_SERVICES", default_services), list,
					 CONSOLE_MAX_SERVICES, errstr, errstr_size);

	for (int i = 0; i < n; i++) {
		struct console_service *svc = &c->services[c->nservices++];

		memcpy(svc->name, list[i].name, sizeof(svc->name));
		memcpy(svc->url, list[i].url, sizeof(svc->url));
		snprintf(svc->detail, sizeof(svc->detail), "not asked yet");
		snprintf(svc->faults_detail, sizeof(svc->faults_detail), "not asked yet");
	}
	return n < 0 ? -1 : 0;
}

/* CONSOLE_ADMIN: name=url,... of the services' admin servers; unset, each
 * service's port + 1000, as the demo starts them. */
static int read_admin(struct console *c, char *errstr, size_t errstr_size)
{
	const char *spec = es_config_str("CONSOLE_ADMIN", NULL);
	struct console_named_url list[CONSOLE_MAX_SERVICES];
	int n;

	if (!spec) {
		for (size_t i = 0; i < c->nservices; i++) {
			struct console_service *svc = &c->services[i];

			if (console_admin_url(svc->url, CONSOLE_ADMIN_PORT_OFFSET, svc->admin,
					      sizeof(svc->admin)))
				svc->admin[0] = '\0';
		}
		return 0;
	}
	if (!strcmp(spec, "none"))
		return 0;
	n = console_parse_named_urls("CONSOLE_ADMIN", spec, list, CONSOLE_MAX_SERVICES, errstr,
				     errstr_size);
	for (int i = 0; i < n; i++) {
		size_t k = 0;

		while (k < c->nservices && strcmp(c->services[k].name, list[i].name))
			k++;
		if (k == c->nservices) {
			snprintf(errstr, errstr_size,
				 "CONSOLE_ADMIN: %.63s is none of CONSOLE_SERVICES", list[i].name);
			return -1;
		}
		memcpy(c->services[k].admin, list[i].url, sizeof(c->services[k].admin));
	}
	return n < 0 ? -1 : 0;
}

/* CONSOLE_GROUPS: group,... */
static int read_groups(struct console *c, char *errstr, size_t errstr_size)
{
	const char *s = es_config_str("CONSOLE_GROUPS", "order-service,payment-service,"
							"inventory-service,email-service,"
							"analytics-service,shipping-service");

	while (*s) {
		size_t len = strcspn(s, ",");
		struct console_group *g = &c->groups[c->ngroups];

		if (len && (len >= sizeof(g->name) || c->ngroups == CONSOLE_MAX_SERVICES)) {
			snprintf(errstr, errstr_size,
				 "CONSOLE_GROUPS: at most %d groups of at most 255 characters",
				 CONSOLE_MAX_SERVICES);
			return -1;
		}
		if (len) {
			memcpy(g->name, s, len);
			g->name[len] = '\0';
			c->ngroups++;
		}
		s += len + (s[len] == ',');
	}
	return 0;
}

static int read_config(struct console *c, struct config *cfg, char *errstr, size_t errstr_size)
{
	const char *order_url = es_config_str("ORDER_SERVICE_URL", "http://127.0.0.1:8080");
	size_t n = strlen(order_url);

	cfg->bootstrap = es_config_str("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092");
	cfg->bind = es_config_str("HTTP_BIND", "127.0.0.1");
	if (es_config_long("CONSOLE_PORT", CONSOLE_HTTP_PORT, 0, 65535, &cfg->port, errstr,
			   errstr_size) ||
	    es_config_long("HTTP_THREADS", ES_HTTP_DEFAULT_THREADS, 1, 256, &cfg->threads, errstr,
			   errstr_size) ||
	    es_config_long("CONSOLE_TAIL", 50, 0, 100000, &cfg->tail, errstr, errstr_size) ||
	    es_config_long("CONSOLE_RING_EVENTS", 2000, 1, 1000000, &cfg->ring_events, errstr,
			   errstr_size) ||
	    es_config_long("CONSOLE_RING_BYTES", 8L << 20, 1L << 20, 1L << 30, &cfg->ring_bytes,
			   errstr, errstr_size))
		return -1;
	while (n && order_url[n - 1] == '/')
		n--;
	if (strncmp(order_url, "http://", 7) && strncmp(order_url, "https://", 8)) {
		snprintf(errstr, errstr_size, "ORDER_SERVICE_URL: \"%s\" is not an http(s) URL",
			 order_url);
		return -1;
	}
	if (n >= sizeof(c->order_url)) {
		snprintf(errstr, errstr_size, "ORDER_SERVICE_URL: too long");
		return -1;
	}
	memcpy(c->order_url, order_url, n);
	c->order_url[n] = '\0';
	snprintf(c->bind, sizeof(c->bind), "%s", cfg->bind);
	if (read_topics(c, errstr, errstr_size) || read_services(c, errstr, errstr_size) ||
	    read_admin(c, errstr, errstr_size) || read_groups(c, errstr, errstr_size))
		return -1;
	return 0;
}

/* ------------------------------------------------------------ Kafka */

static struct console_topic *find_topic(struct console *c, const char *name)
{
	for (size_t i = 0; name && i < c->ntopics; i++) {
		if (!strcmp(c->topics[i].name, name))
			return &c->topics[i];
	}
	return NULL;
}

/* One message into the ring, as an SSE event "kafka" with a boot.seq id. */
static void take(struct console *c, rd_kafka_message_t *rkm)
{
	const char *topic = rd_kafka_topic_name(rkm->rkt);
	struct console_topic *t = find_topic(c, topic);
	rd_kafka_headers_t *hdrs = NULL;
	rd_kafka_timestamp_type_t tstype;
	struct console_msg m = {
		.topic = topic,
		.partition = rkm->partition,
		.offset = rkm->offset,
		.key = rkm->key,
		.key_len = rkm->key_len,
		.value = rkm->payload,
		.value_len = rkm->len,
	};
	char id[64], *text, *frame;
	size_t len;
	json_t *j;

	m.timestamp_ms = rd_kafka_message_timestamp(rkm, &tstype);
	if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
		m.headers = hdrs;
	j = console_event_json(&m);
	if (!j)
		return;
	if (t) {
		pthread_mutex_lock(&c->status_lock);
		t->count++;
		if (t->dlq) {
			json_t *why = json_object_get(json_object_get(j, "dlq"), "error");

			if (why) {
				json_decref(t->last_reason);
				t->last_reason = json_incref(why);
			}
		}
		pthread_mutex_unlock(&c->status_lock);
	}
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return;
	/* Only this thread pushes: the number peeked is the one it gets. */
	console_sse_id(id, sizeof(id), c->boot, console_ring_next_seq(c->ring));
	frame = console_sse_event(id, "kafka", text, strlen(text), &len);
	free(text);
	if (frame && !console_ring_push(c->ring, frame, len))
		es_warn("%s [%" PRId32 "] @%" PRId64 ": too large for the console's ring", topic,
			rkm->partition, rkm->offset);
}

/* Once a second: events per second. */
static void tick_second(struct console *c)
{
	pthread_mutex_lock(&c->status_lock);
	for (size_t i = 0; i < c->ntopics; i++) {
		struct console_topic *t = &c->topics[i];

		t->rate = (double)t->count;
		t->count = 0;
	}
	pthread_mutex_unlock(&c->status_lock);
}

/* What each dead-letter topic holds, from its watermarks (asked of the
 * broker: a reader's handle answers from any thread). -1 when unknown. */
static void count_dead_letters(struct console *c, rd_kafka_t *rk)
{
	for (size_t i = 0; i < c->ntopics; i++) {
		struct console_topic *t = &c->topics[i];
		long long total = 0;
		char errstr[256];
		int n;

		if (!t->dlq)
			continue;
		if (es_reader_partitions(rk, t->name, &n, NULL, errstr, sizeof(errstr))) {
			total = -1;
			n = 0;
		}
		for (int32_t p = 0; p < n; p++) {
			int64_t low, high;

			if (es_reader_watermarks(rk, t->name, p, &low, &high, errstr,
						 sizeof(errstr))) {
				total = -1;
				break;
			}
			total += high - low;
		}
		pthread_mutex_lock(&c->status_lock);
		t->retained = total;
		pthread_mutex_unlock(&c->status_lock);
	}
}

/*
 * Follows the partitions of the shop's topics that the reader does not
 * follow yet: at the start (start true) every partition there is, from
 * `tail` messages back; later those of a topic created since, or added to
 * one, from their first message (all of it is new). skipped lists the
 * topics that do not exist (NULL: not wanted). Returns the number of
 * partitions added, or -1 with errstr filled when the broker did not
 * answer.
 */
static int follow_new(struct console *c, rd_kafka_t *rk, long tail, bool start, char *skipped,
		      size_t skipped_size, char *errstr, size_t errstr_size)
{
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
	rd_kafka_error_t *error;
	int rc = -1;

	if (skipped && skipped_size)
		skipped[0] = '\0';
	for (size_t i = 0; i < c->ntopics; i++) {
		struct console_topic *t = &c->topics[i];
		bool missing;
		int n;

		if (es_reader_partitions(rk, t->name, &n, &missing, errstr, errstr_size)) {
			if (!missing)
				goto out;
			if (skipped && skipped_size) {
				size_t len = strlen(skipped);

				snprintf(skipped + len, skipped_size - len, "%s%s", len ? "," : "",
					 t->name);
			}
			continue;
		}
		for (int32_t p = t->partitions; p < n; p++) {
			int64_t low, high, from = 0;

			if (es_reader_watermarks(rk, t->name, p, &low, &high, errstr, errstr_size))
				goto out;
			if (!start)
				from = low;
			else if (tail > 0)
				from = high - low > tail ? high - tail : low;
			else
				from = high;
			rd_kafka_topic_partition_list_add(parts, t->name, p)->offset = from;
		}
	}
	/* Added to what the reader follows; what it follows goes on. */
	error = parts->cnt ? rd_kafka_incremental_assign(rk, parts) : NULL;
	if (error) {
		snprintf(errstr, errstr_size, "assigning %d partitions: %s", parts->cnt,
			 rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
		goto out;
	}
	for (int i = 0; i < parts->cnt; i++) {
		struct console_topic *t = find_topic(c, parts->elems[i].topic);

		if (t && parts->elems[i].partition >= t->partitions)
			t->partitions = parts->elems[i].partition + 1;
	}
	rc = parts->cnt;
out:
	rd_kafka_topic_partition_list_destroy(parts);
	return rc;
}

/* The start: follows what exists of the shop's topics. A broker that
 * answers with an error (a topic made a moment ago may not have its
 * leader yet) is asked again for up to START_RETRY_MS. */
static int follow(struct console *c, rd_kafka_t *rk, long tail, char *errstr, size_t errstr_size)
{
	long long until = es_monotonic_ms() + START_RETRY_MS;
	char skipped[1024];
	int n;

	for (;;) {
		n = follow_new(c, rk, tail, true, skipped, sizeof(skipped), errstr, errstr_size);
		if (n >= 0 || es_stop || es_monotonic_ms() >= until)
			break;
		es_warn("Kafka: %s; asking again", errstr);
		es_sleep_ms(500);
	}
	if (n < 0)
		return -1;
	if (skipped[0])
		es_warn("not following topics that do not exist yet (every %d s the console looks "
			"again): %s",
			RESCAN_MS / 1000, skipped);
	if (n == 0) {
		snprintf(errstr, errstr_size, "none of the shop's topics exists");
		return -1;
	}
	es_info("following %d partitions of the shop's topics, from %ld messages back", n, tail);
	return 0;
}

/* Every RESCAN_MS: topics created (or partitions added) since. */
static void rescan(struct console *c, rd_kafka_t *rk)
{
	char errstr[512];
	int n = follow_new(c, rk, 0, false, NULL, 0, errstr, sizeof(errstr));

	if (n < 0)
		es_warn("looking for new topics: %s", errstr);
	else if (n > 0)
		es_info("following %d more partitions (topics created or grown since)", n);
}

/* How long the poll may wait: POLL_MS, or less when the streams are due a
 * wake-up sooner. */
static int poll_timeout(bool pending, long long last_wake, long long now)
{
	long long left = last_wake + WAKE_MS - now;

	if (!pending)
		return POLL_MS;
	return left <= 0 ? 0 : left < POLL_MS ? (int)left : POLL_MS;
}

static int run(struct console *c, rd_kafka_t *rk)
{
	long long next_second = es_monotonic_ms() + 1000;
	long long next_keepalive = es_monotonic_ms() + CONSOLE_KEEPALIVE_MS;
	long long next_rescan = es_monotonic_ms() + RESCAN_MS;
	long long last_wake = 0;
	bool pending = false; /* frames the streams were not woken for yet */

	while (!es_stop) {
		rd_kafka_message_t *rkm = rd_kafka_consumer_poll(
			rk, poll_timeout(pending, last_wake, es_monotonic_ms()));
		int taken = 0;
		long long now;

		while (rkm && taken < MAX_BATCH) {
			if (!rkm->err) {
				take(c, rkm);
				taken++;
			} else if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
				es_warn("kafka: %s", rd_kafka_message_errstr(rkm));
			}
			rd_kafka_message_destroy(rkm);
			rkm = rd_kafka_consumer_poll(rk, 0);
		}
		if (rkm)
			rd_kafka_message_destroy(rkm);
		pending = pending || taken;
		now = es_monotonic_ms();
		if ((pending && now - last_wake >= WAKE_MS) || now >= next_keepalive) {
			console_clients_wake(c);
			pending = false;
			last_wake = now;
			if (now >= next_keepalive)
				next_keepalive = now + CONSOLE_KEEPALIVE_MS;
		}
		if (now >= next_second) {
			tick_second(c);
			next_second = now + 1000;
		}
		if (now >= next_rescan) {
			rescan(c, rk);
			next_rescan = es_monotonic_ms() + RESCAN_MS;
		}
	}
	return 0;
}

/* The committed offsets of group g (librdkafka's admin API, which asks the
 * group's coordinator; the group itself is not disturbed) against the
 * high watermarks the reader's own fetches keep. Returns 0, or -1 when
 * the broker did not answer. */
static int group_lag(struct console *c, rd_kafka_t *rk, struct console_group *g,
		     const rd_kafka_topic_partition_list_t *wanted)
{
	long long lag[CONSOLE_MAX_TOPICS];
	rd_kafka_ListConsumerGroupOffsets_t *req;
	rd_kafka_AdminOptions_t *opt;
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_event_t *ev;
	char errstr[256];
	int rc = -1;

	for (size_t k = 0; k < c->ntopics; k++)
		lag[k] = -1;
	req = rd_kafka_ListConsumerGroupOffsets_new(g->name, wanted);
	opt = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
	rd_kafka_AdminOptions_set_request_timeout(opt, PROBE_MS, errstr, sizeof(errstr));
	rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, opt, q);
	ev = rd_kafka_queue_poll(q, 2 * PROBE_MS);
	if (ev && !rd_kafka_event_error(ev)) {
		const rd_kafka_ListConsumerGroupOffsets_result_t *res =
			rd_kafka_event_ListConsumerGroupOffsets_result(ev);
		size_t n = 0;
		const rd_kafka_group_result_t **groups =
			res ? rd_kafka_ListConsumerGroupOffsets_result_groups(res, &n) : NULL;
		const rd_kafka_topic_partition_list_t *parts =
			n == 1 && !rd_kafka_group_result_error(groups[0])
				? rd_kafka_group_result_partitions(groups[0])
				: NULL;

		for (int i = 0; parts && i < parts->cnt; i++) {
			const rd_kafka_topic_partition_t *p = &parts->elems[i];
			struct console_topic *t = find_topic(c, p->topic);
			int64_t low, high;
			size_t k;

			if (!t || p->offset < 0 || p->err ||
			    rd_kafka_get_watermark_offsets(rk, p->topic, p->partition, &low,
							   &high) ||
			    high < 0)
				continue;
			k = (size_t)(t - c->topics);
			lag[k] = (lag[k] < 0 ? 0 : lag[k]) +
				 (high > p->offset ? high - p->offset : 0);
		}
		rc = parts ? 0 : -1;
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_AdminOptions_destroy(opt);
	rd_kafka_ListConsumerGroupOffsets_destroy(req);
	rd_kafka_queue_destroy(q);
	pthread_mutex_lock(&c->status_lock);
	g->known = rc == 0;
	memcpy(g->lag, lag, sizeof(lag));
	pthread_mutex_unlock(&c->status_lock);
	return rc;
}

/*
 * The partitions of the shop's topics (not the dead letters), asked for
 * by name: the development broker (librdkafka's mock cluster) answers
 * "all of the group's partitions" with none. NULL when the broker does
 * not answer.
 */
static rd_kafka_topic_partition_list_t *shop_partitions(struct console *c, rd_kafka_t *rk)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(32);
	char errstr[256];

	for (size_t i = 0; i < c->ntopics; i++) {
		int n;

		if (c->topics[i].dlq)
			continue;
		if (es_reader_partitions(rk, c->topics[i].name, &n, NULL, errstr, sizeof(errstr))) {
			rd_kafka_topic_partition_list_destroy(list);
			return NULL;
		}
		for (int32_t p = 0; p < n; p++)
			rd_kafka_topic_partition_list_add(list, c->topics[i].name, p);
	}
	return list;
}

/* ------------------------------------------------------------ prober */

static void *prober(void *arg)
{
	struct console *c = arg;

	while (!es_stop) {
		long long until = es_monotonic_ms() + PROBE_MS;
		rd_kafka_topic_partition_list_t *wanted;

		console_probe_services(c);
		console_probe_faults(c);
		count_dead_letters(c, c->rk);
		wanted = shop_partitions(c, c->rk);
		for (size_t i = 0; wanted && i < c->ngroups && !es_stop; i++)
			group_lag(c, c->rk, &c->groups[i], wanted);
		if (wanted)
			rd_kafka_topic_partition_list_destroy(wanted);
		while (!es_stop && es_monotonic_ms() < until)
			es_sleep_ms(50);
	}
	return NULL;
}

/* ------------------------------------------------------------ main */

static void new_boot(char boot[CONSOLE_SSE_BOOT_LEN + 1])
{
	char uuid[ES_UUID_LEN + 1];
	size_t o = 0;

	es_uuid_new(uuid);
	for (size_t i = 0; uuid[i] && o < CONSOLE_SSE_BOOT_LEN; i++) {
		if (uuid[i] != '-')
			boot[o++] = uuid[i];
	}
	boot[o] = '\0';
}

int main(void)
{
	static struct console c;
	struct es_http_conf hc;
	struct es_metrics *metrics = NULL;
	struct config cfg;
	rd_kafka_t *rk = NULL;
	pthread_t probe_thread;
	bool probing = false;
	char errstr[512];
	int rc = 1;

	es_log_init("eventshop-console", ES_LOG_INFO);
	if (es_daemon_signals() || curl_global_init(CURL_GLOBAL_DEFAULT)) {
		es_error("cannot start: signals or libcurl");
		return 1;
	}
	pthread_mutex_init(&c.status_lock, NULL);
	pthread_mutex_init(&c.clients_lock, NULL);
	new_boot(c.boot);
	if (read_config(&c, &cfg, errstr, sizeof(errstr))) {
		es_error("cannot start: %s", errstr);
		goto out;
	}
	c.ring = console_ring_new((size_t)cfg.ring_events, (size_t)cfg.ring_bytes);
	metrics = es_metrics_new();
	c.rk = rk = es_reader_new(cfg.bootstrap, "eventshop-console", errstr, sizeof(errstr));
	if (!c.ring || !metrics || !rk) {
		es_error("cannot start: %s", rk ? "out of memory" : errstr);
		goto out;
	}
	if (follow(&c, rk, cfg.tail, errstr, sizeof(errstr))) {
		es_error("cannot start: Kafka at %s: %s", cfg.bootstrap, errstr);
		goto out;
	}
	es_http_conf_init(&hc);
	hc.bind_addr = cfg.bind;
	hc.port = (unsigned short)cfg.port;
	hc.threads = (unsigned int)cfg.threads;
	hc.metrics = metrics;
	c.http = es_http_new(&hc, errstr, sizeof(errstr));
	if (!c.http || console_events_route(&c, errstr, sizeof(errstr)) ||
	    console_api_routes(&c, errstr, sizeof(errstr)) ||
	    console_faults_routes(&c, errstr, sizeof(errstr)) ||
	    es_http_start(c.http, errstr, sizeof(errstr))) {
		es_error("cannot start: %s", errstr);
		goto out;
	}
	probing = pthread_create(&probe_thread, NULL, prober, &c) == 0;
	/* The daemons' words: scripts and tests find the port by them. */
	es_info("serving HTTP on port %u: the console is http://%s:%u/", es_http_port(c.http),
		cfg.bind, es_http_port(c.http));
	rc = run(&c, rk);
out:
	es_stop = 1;
	if (probing)
		pthread_join(probe_thread, NULL);
	es_http_free(c.http);
	console_clients_release(&c);
	es_reader_free(rk);
	console_ring_free(c.ring);
	es_metrics_free(metrics);
	for (size_t i = 0; i < c.ntopics; i++)
		json_decref(c.topics[i].last_reason);
	for (size_t i = 0; i < c.nservices; i++)
		json_decref(c.services[i].faults);
	curl_global_cleanup();
	return rc;
}
