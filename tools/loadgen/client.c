/* client: the HTTP side of a run, on libcurl's multi interface (one
 * thread, every request in flight at once, connections kept alive). */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "es/auth.h"
#include "es/envelope.h"
#include "loadgen.h"

/* order-service's answers are small; anything larger is not its. */
#define BODY_MAX (1024 * 1024)

enum req_kind {
	REQ_POST,
	REQ_GET,
};

struct lg_req {
	CURL *easy; /* owned, reused from request to request */
	enum req_kind kind;
	int64_t start_us; /* when it was handed to libcurl */
	size_t order; /* REQ_GET: index in run->orders */
	struct curl_slist *headers; /* owned, REQ_POST */
	char *body; /* the answer, owned */
	size_t len;
	bool too_large;
	char error[CURL_ERROR_SIZE];
	struct lg_req *next_free;
};

/* --no-kafka: orders waiting for their next GET, in the order they are
 * due (every order waits the same interval, so appending keeps the ring
 * sorted but for the little a late GET adds). */
struct poll_slot {
	size_t order;
	int64_t due_us;
};

struct lg_http {
	CURLM *multi;
	char post_urls[LG_URLS_MAX][LG_URL_MAX + 16];
	char **bodies; /* per mix entry, owned */
	struct lg_req *reqs; /* concurrency + poll_concurrency of them */
	size_t nreqs;
	struct lg_req *free_posts, *free_gets;
	size_t gets_inflight;
	struct poll_slot *ring;
	size_t ring_head, ring_len, ring_cap;
	/* The run's customer's token line when the shop asks for tokens
	 * (AUTH_JWT_KEY_FILE set: es_auth_header_from_env), else "". */
	char auth[ES_AUTH_HEADER_MAX];
};

int64_t lg_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static size_t collect(char *ptr, size_t size, size_t n, void *arg)
{
	struct lg_req *req = arg;
	size_t add = size * n;
	char *grown;

	if (add > BODY_MAX - req->len) {
		req->too_large = true;
		return 0; /* fails the transfer */
	}
	grown = realloc(req->body, req->len + add + 1);
	if (!grown)
		return 0;
	req->body = grown;
	memcpy(req->body + req->len, ptr, add);
	req->len += add;
	req->body[req->len] = '\0';
	return add;
}

/* The JSON body of each mix entry, made once: every order of one entry
 * sends the same bytes (its Idempotency-Key is what differs). */
static int make_bodies(struct lg_run *run, struct lg_http *h, char *errstr, size_t errstr_size)
{
	const struct lg_mix *mix = &run->cfg->mix;

	h->bodies = calloc(mix->n, sizeof(*h->bodies));
	if (!h->bodies)
		goto oom;
	for (size_t i = 0; i < mix->n; i++) {
		const struct lg_mix_entry *e = &mix->entries[i];
		json_t *items = json_array(), *order;

		for (int l = 0; l < e->nlines; l++)
			json_array_append_new(items, json_pack("{s:s,s:i}", "sku", e->lines[l].sku,
							       "quantity", e->lines[l].quantity));
		order = json_pack("{s:s,s:s,s:o,s:s}", "customerId", run->customer_id,
				  "customerEmail", "loadgen@example.com", "items", items,
				  "paymentToken", e->token);
		if (!order)
			goto oom;
		h->bodies[i] = json_dumps(order, JSON_COMPACT);
		json_decref(order);
		if (!h->bodies[i])
			goto oom;
	}
	return 0;
oom:
	snprintf(errstr, errstr_size, "out of memory");
	return -1;
}

static int init_req(struct lg_req *req, enum req_kind kind, long timeout_ms)
{
	req->kind = kind;
	req->easy = curl_easy_init();
	if (!req->easy)
		return -1;
	curl_easy_setopt(req->easy, CURLOPT_PRIVATE, req);
	curl_easy_setopt(req->easy, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(req->easy, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(req->easy, CURLOPT_ERRORBUFFER, req->error);
	curl_easy_setopt(req->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(req->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(req->easy, CURLOPT_USERAGENT, LG_NAME);
	return 0;
}

int lg_http_init(struct lg_run *run, char *errstr, size_t errstr_size)
{
	const struct lg_config *cfg = run->cfg;
	struct lg_http *h = calloc(1, sizeof(*h));

	if (!h) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	run->http = h;
	for (size_t i = 0; i < cfg->nurls; i++)
		snprintf(h->post_urls[i], sizeof(h->post_urls[i]), "%s/orders", cfg->urls[i]);
	if (make_bodies(run, h, errstr, errstr_size) ||
	    es_auth_header_from_env(ES_AUTH_CUSTOMER, run->customer_id, LG_TOKEN_TTL_S, h->auth,
				    sizeof(h->auth), errstr, errstr_size))
		return -1;
	h->nreqs = (size_t)cfg->concurrency + (cfg->kafka ? 0 : (size_t)cfg->poll_concurrency);
	h->reqs = calloc(h->nreqs, sizeof(*h->reqs));
	h->multi = curl_multi_init();
	if (!h->reqs || !h->multi) {
		snprintf(errstr, errstr_size, "cannot initialise libcurl");
		return -1;
	}
	/* Keep every connection alive between requests: a new TCP
	 * connection per order would measure the handshake, not the shop. */
	curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->nreqs);
	for (size_t i = 0; i < h->nreqs; i++) {
		struct lg_req *req = &h->reqs[i];
		bool post = i < (size_t)cfg->concurrency;

		if (init_req(req, post ? REQ_POST : REQ_GET, cfg->timeout_ms)) {
			snprintf(errstr, errstr_size, "cannot initialise libcurl");
			return -1;
		}
		if (post) {
			/* Each POST slot keeps one instance, and its connection. */
			curl_easy_setopt(req->easy, CURLOPT_URL, h->post_urls[i % cfg->nurls]);
			req->next_free = h->free_posts;
			h->free_posts = req;
		} else {
			curl_easy_setopt(req->easy, CURLOPT_HTTPGET, 1L);
			if (h->auth[0]) {
				req->headers = curl_slist_append(NULL, h->auth);
				if (!req->headers) {
					snprintf(errstr, errstr_size, "out of memory");
					return -1;
				}
				curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, req->headers);
			}
			req->next_free = h->free_gets;
			h->free_gets = req;
		}
	}
	return 0;
}

void lg_http_release(struct lg_run *run)
{
	struct lg_http *h = run->http;

	if (!h)
		return;
	for (size_t i = 0; h->reqs && i < h->nreqs; i++) {
		struct lg_req *req = &h->reqs[i];

		if (!req->easy)
			continue;
		/* A no-op for a handle that is not in the multi handle. */
		curl_multi_remove_handle(h->multi, req->easy);
		curl_easy_cleanup(req->easy);
		curl_slist_free_all(req->headers);
		free(req->body);
	}
	if (h->multi)
		curl_multi_cleanup(h->multi);
	for (size_t i = 0; h->bodies && i < run->cfg->mix.n; i++)
		free(h->bodies[i]);
	free(h->bodies);
	free(h->reqs);
	free(h->ring);
	free(h);
	run->http = NULL;
}

static void reset_answer(struct lg_req *req)
{
	free(req->body);
	req->body = NULL;
	req->len = 0;
	req->too_large = false;
	req->error[0] = '\0';
}

int lg_http_post(struct lg_run *run, uint64_t n, int64_t now_us)
{
	struct lg_http *h = run->http;
	struct lg_req *req = h->free_posts;
	const char *body;
	char key[96];
	struct curl_slist *list = NULL, *grown;
	static const char *const fixed[] = {
		"Content-Type: application/json",
		/* No "Expect: 100-continue" round trip for a larger body. */
		"Expect:",
	};

	if (!req)
		return -1; /* the caller keeps inflight below concurrency */
	body = h->bodies[lg_mix_pick(&run->cfg->mix, lg_rand_next(&run->rng))];
	snprintf(key, sizeof(key), "Idempotency-Key: %s-%llu", run->customer_id,
		 (unsigned long long)n);
	for (size_t i = 0; i < 4; i++) {
		if (i == 3 && !h->auth[0])
			break;
		grown = curl_slist_append(list, i < 2 ? fixed[i] : i == 2 ? key : h->auth);
		if (!grown) {
			curl_slist_free_all(list);
			return -1;
		}
		list = grown;
	}
	reset_answer(req);
	curl_slist_free_all(req->headers);
	req->headers = list;
	curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, list);
	/* Not copied: the body lives as long as the run. */
	curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	req->start_us = now_us;
	if (curl_multi_add_handle(h->multi, req->easy) != CURLM_OK)
		return -1;
	h->free_posts = req->next_free;
	run->placed++;
	run->inflight++;
	return 0;
}

/* ------------------------------------------------------ --no-kafka polls */

static int ring_push(struct lg_http *h, size_t order, int64_t due_us)
{
	if (h->ring_len == h->ring_cap) {
		size_t cap = h->ring_cap ? h->ring_cap * 2 : 1024;
		struct poll_slot *grown = malloc(cap * sizeof(*grown));

		if (!grown)
			return -1;
		/* Unwrap the old ring into the start of the new one. */
		for (size_t i = 0; i < h->ring_len; i++)
			grown[i] = h->ring[(h->ring_head + i) % h->ring_cap];
		free(h->ring);
		h->ring = grown;
		h->ring_cap = cap;
		h->ring_head = 0;
	}
	h->ring[(h->ring_head + h->ring_len) % h->ring_cap] = (struct poll_slot){.order = order,
										 .due_us = due_us};
	h->ring_len++;
	return 0;
}

int64_t lg_http_poll_next_us(const struct lg_run *run)
{
	const struct lg_http *h = run->http;

	/* With every GET slot busy, a finishing GET wakes the loop anyway. */
	return h->ring_len && h->free_gets ? h->ring[h->ring_head].due_us : INT64_MAX;
}

/* Starts the GET of one order. Returns 0, or -1 (it stays queued). */
static int start_get(struct lg_run *run, size_t order, int64_t now_us)
{
	struct lg_http *h = run->http;
	struct lg_req *req = h->free_gets;
	struct lg_order o;
	char url[LG_URL_MAX + 64];

	if (!req || lg_orders_get(&run->orders, order, &o))
		return -1;
	snprintf(url, sizeof(url), "%s/orders/%s", run->cfg->urls[0], o.id);
	reset_answer(req);
	curl_easy_setopt(req->easy, CURLOPT_URL, url); /* copied by libcurl */
	req->order = order;
	req->start_us = now_us;
	if (curl_multi_add_handle(h->multi, req->easy) != CURLM_OK)
		return -1;
	h->free_gets = req->next_free;
	h->gets_inflight++;
	run->polls++;
	return 0;
}

void lg_http_poll_due(struct lg_run *run, int64_t now_us)
{
	struct lg_http *h = run->http;

	while (h->ring_len && h->free_gets && h->ring[h->ring_head].due_us <= now_us) {
		if (start_get(run, h->ring[h->ring_head].order, now_us))
			return;
		h->ring_head = (h->ring_head + 1) % h->ring_cap;
		h->ring_len--;
	}
}

/* ------------------------------------------------------------ answers */

static void transport_error(struct lg_run *run, struct lg_req *req, CURLcode rc)
{
	const char *what = req->too_large  ? "the answer is larger than 1 MiB"
			   : req->error[0] ? req->error
					   : curl_easy_strerror(rc);

	snprintf(run->last_error, sizeof(run->last_error), "%s %s: %.200s",
		 req->kind == REQ_POST ? "POST" : "GET",
		 req->kind == REQ_POST ? "/orders" : "/orders/{id}", what);
}

static enum lg_status status_of(const char *s);

/* A 202 (or the synchronous twin's 201): its order id, accepted when the
 * answer was complete. A 201 already carries the order's end, which is
 * then its terminal status at that same moment (a saga of 0 ms). */
static void accepted(struct lg_run *run, struct lg_req *req, int64_t http_us)
{
	json_t *json = json_loadb(req->body ? req->body : "", req->len, 0, NULL);
	const char *id = json_string_value(json_object_get(json, "orderId"));
	enum lg_status st = status_of(json_string_value(json_object_get(json, "status")));
	int64_t done_us = req->start_us + http_us;
	bool duplicate = false;
	long i = -1;

	if (id && es_uuid_valid(id))
		i = lg_orders_accept(&run->orders, id, done_us, http_us, &duplicate);
	if (i < 0) {
		run->bad_accepts++;
		snprintf(run->last_error, sizeof(run->last_error), "202 with %s: %.120s",
			 duplicate ? "an orderId seen before" : "no usable orderId",
			 req->body ? req->body : "");
	} else if (st != LG_PENDING) {
		run->accepted++;
		lg_orders_terminal(
			&run->orders, id, st,
			lg_reason_parse(json_string_value(json_object_get(json, "cancelReason"))),
			done_us);
	} else {
		run->accepted++;
		if (!run->cfg->kafka &&
		    ring_push(run->http, (size_t)i, done_us + run->cfg->poll_interval_ms * 1000))
			snprintf(run->last_error, sizeof(run->last_error),
				 "out of memory: an order will not be polled");
	}
	json_decref(json);
}

static void post_done(struct lg_run *run, struct lg_req *req, CURLcode rc)
{
	curl_off_t total_us = 0;
	long status = 0, connects = 0;

	run->inflight--;
	curl_easy_getinfo(req->easy, CURLINFO_NUM_CONNECTS, &connects);
	run->connects += (uint64_t)connects;
	if (rc != CURLE_OK) {
		run->transport_errors++;
		run->curl_errors[(unsigned)rc < LG_CURL_CODES ? rc : LG_CURL_CODES - 1]++;
		transport_error(run, req, rc);
		return;
	}
	curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
	/* libcurl's own clock of the transfer, from its start to the last
	 * byte: the sending loop's delays do not count. */
	curl_easy_getinfo(req->easy, CURLINFO_TOTAL_TIME_T, &total_us);
	run->answered++;
	run->status[status >= 100 && status < 600 ? status : 0]++;
	if (lg_samples_add(&run->http_us, (int64_t)total_us))
		snprintf(run->last_error, sizeof(run->last_error), "out of memory: sample lost");
	if (status == 202 || status == 201)
		accepted(run, req, (int64_t)total_us);
	else
		snprintf(run->last_error, sizeof(run->last_error), "POST /orders: HTTP %ld: %.160s",
			 status, req->body ? req->body : "");
}

static enum lg_status status_of(const char *s)
{
	if (s && !strcmp(s, "CONFIRMED"))
		return LG_CONFIRMED;
	if (s && !strcmp(s, "CANCELLED"))
		return LG_CANCELLED;
	return LG_PENDING;
}

static void get_done(struct lg_run *run, struct lg_req *req, CURLcode rc)
{
	struct lg_http *h = run->http;
	curl_off_t total_us = 0;
	enum lg_status st = LG_PENDING;
	long status = 0;

	h->gets_inflight--;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(req->easy, CURLINFO_TOTAL_TIME_T, &total_us);
	}
	if (status == 200) {
		json_t *json = json_loadb(req->body ? req->body : "", req->len, 0, NULL);
		const char *reason = json_string_value(json_object_get(json, "cancelReason"));

		st = status_of(json_string_value(json_object_get(json, "status")));
		if (st != LG_PENDING) {
			struct lg_order o;

			if (!lg_orders_get(&run->orders, req->order, &o))
				lg_orders_terminal(&run->orders, o.id, st, lg_reason_parse(reason),
						   req->start_us + (int64_t)total_us);
		}
		json_decref(json);
	} else {
		run->poll_errors++;
		if (rc != CURLE_OK)
			transport_error(run, req, rc);
		else
			snprintf(run->last_error, sizeof(run->last_error),
				 "GET /orders/{id}: HTTP %ld", status);
	}
	if (st == LG_PENDING &&
	    ring_push(h, req->order, req->start_us + run->cfg->poll_interval_ms * 1000))
		snprintf(run->last_error, sizeof(run->last_error),
			 "out of memory: an order will not be polled");
}

void lg_http_perform(struct lg_run *run)
{
	struct lg_http *h = run->http;
	CURLMsg *msg;
	int running, left;

	curl_multi_perform(h->multi, &running);
	while ((msg = curl_multi_info_read(h->multi, &left))) {
		struct lg_req *req = NULL;
		CURLcode rc = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
		curl_multi_remove_handle(h->multi, req->easy);
		if (req->kind == REQ_POST) {
			post_done(run, req, rc);
			req->next_free = h->free_posts;
			h->free_posts = req;
		} else {
			get_done(run, req, rc);
			req->next_free = h->free_gets;
			h->free_gets = req;
		}
	}
}

void lg_http_wait(struct lg_run *run, int timeout_ms)
{
	if (timeout_ms < 0)
		timeout_ms = 0;
	curl_multi_poll(run->http->multi, NULL, 0, timeout_ms, NULL);
}
