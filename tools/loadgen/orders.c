#include "orders.h"

#include <stdlib.h>
#include <string.h>

static const char *const reason_names[LG_REASON_COUNT] = {
	"", "PAYMENT_DECLINED", "OUT_OF_STOCK", "CUSTOMER_REQUEST", "TIMEOUT", "OTHER",
};

enum lg_reason lg_reason_parse(const char *s)
{
	for (int r = LG_REASON_PAYMENT_DECLINED; r < LG_REASON_OTHER; r++) {
		if (s && !strcmp(s, reason_names[r]))
			return (enum lg_reason)r;
	}
	return LG_REASON_OTHER;
}

const char *lg_reason_name(enum lg_reason r)
{
	return r < LG_REASON_COUNT ? reason_names[r] : "OTHER";
}

int lg_orders_init(struct lg_orders *t)
{
	memset(t, 0, sizeof(*t));
	t->nslots = 1024;
	t->slots = calloc(t->nslots, sizeof(*t->slots));
	if (!t->slots)
		return -1;
	if (pthread_mutex_init(&t->lock, NULL)) {
		free(t->slots);
		return -1;
	}
	return 0;
}

void lg_orders_release(struct lg_orders *t)
{
	pthread_mutex_destroy(&t->lock);
	free(t->v);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* FNV-1a: ids are random UUIDs, any decent mix will do. */
static size_t hash(const char *id)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return (size_t)h;
}

/* The slot holding id, or the empty slot where it would go. */
static size_t find_slot(const struct lg_orders *t, const char *id)
{
	size_t mask = t->nslots - 1, s = hash(id) & mask;

	while (t->slots[s] && strcmp(t->v[t->slots[s] - 1].id, id))
		s = (s + 1) & mask;
	return s;
}

static int grow_slots(struct lg_orders *t)
{
	size_t nslots = t->nslots * 2, mask = nslots - 1;
	uint32_t *slots = calloc(nslots, sizeof(*slots));

	if (!slots)
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		size_t s = hash(t->v[i].id) & mask;

		while (slots[s])
			s = (s + 1) & mask;
		slots[s] = (uint32_t)(i + 1);
	}
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
	return 0;
}

/* The index of id, added (pending, neither accepted nor seen) when new.
 * Returns -1 when out of memory or id is not a 36-character id. */
static long lookup_or_add(struct lg_orders *t, const char *id)
{
	size_t s;

	if (strlen(id) != LG_ORDER_ID_LEN)
		return -1;
	s = find_slot(t, id);
	if (t->slots[s])
		return (long)t->slots[s] - 1;
	if (t->n >= UINT32_MAX - 1)
		return -1;
	if ((t->n + 1) * 2 > t->nslots) {
		if (grow_slots(t))
			return -1;
		s = find_slot(t, id);
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		struct lg_order *grown = realloc(t->v, cap * sizeof(*grown));

		if (!grown)
			return -1;
		t->v = grown;
		t->cap = cap;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
	memcpy(t->v[t->n].id, id, LG_ORDER_ID_LEN + 1);
	t->slots[s] = (uint32_t)(t->n + 1);
	return (long)t->n++;
}

long lg_orders_accept(struct lg_orders *t, const char *id, int64_t t_us, int64_t http_us,
		      bool *duplicate)
{
	long i;

	*duplicate = false;
	pthread_mutex_lock(&t->lock);
	i = lookup_or_add(t, id);
	if (i >= 0 && t->v[i].accepted) {
		*duplicate = true;
		i = -1;
	} else if (i >= 0) {
		t->v[i].accepted = true;
		t->v[i].accepted_us = t_us;
		t->v[i].http_us = http_us;
		t->accepted++;
		if (t->v[i].status != LG_PENDING)
			t->settled++;
	}
	pthread_mutex_unlock(&t->lock);
	return i;
}

int lg_orders_seen(struct lg_orders *t, const char *id)
{
	long i;

	pthread_mutex_lock(&t->lock);
	i = lookup_or_add(t, id);
	if (i >= 0)
		t->v[i].seen = true;
	pthread_mutex_unlock(&t->lock);
	return i >= 0 ? 0 : -1;
}

int lg_orders_terminal(struct lg_orders *t, const char *id, enum lg_status status,
		       enum lg_reason reason, int64_t t_us)
{
	struct lg_order *o;
	size_t s;
	int news = 0;

	if (strlen(id) != LG_ORDER_ID_LEN)
		return 0;
	pthread_mutex_lock(&t->lock);
	s = find_slot(t, id);
	if (!t->slots[s])
		goto out;
	o = &t->v[t->slots[s] - 1];
	if (o->status != LG_PENDING)
		goto out;
	o->status = (unsigned char)status;
	o->reason = (unsigned char)(status == LG_CANCELLED ? reason : LG_REASON_NONE);
	o->terminal_us = t_us;
	if (o->accepted)
		t->settled++;
	news = 1;
out:
	pthread_mutex_unlock(&t->lock);
	return news;
}

int lg_orders_get(struct lg_orders *t, size_t i, struct lg_order *out)
{
	int rc = -1;

	pthread_mutex_lock(&t->lock);
	if (i < t->n) {
		*out = t->v[i];
		rc = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void lg_orders_counts(struct lg_orders *t, size_t *accepted, size_t *settled)
{
	pthread_mutex_lock(&t->lock);
	*accepted = t->accepted;
	*settled = t->settled;
	pthread_mutex_unlock(&t->lock);
}

int lg_orders_each(struct lg_orders *t, int (*fn)(void *arg, const struct lg_order *o), void *arg)
{
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n && !rc; i++)
		rc = fn(arg, &t->v[i]);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

static int add(struct lg_samples *s, int64_t v)
{
	return s ? lg_samples_add(s, v) : 0;
}

int lg_orders_tally(struct lg_orders *t, struct lg_tally *tally, struct lg_samples *all,
		    struct lg_samples *confirmed, struct lg_samples *cancelled)
{
	int rc = 0;

	memset(tally, 0, sizeof(*tally));
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n; i++) {
		const struct lg_order *o = &t->v[i];
		int64_t latency;

		if (!o->accepted) {
			if (o->seen)
				tally->unacknowledged++;
			continue;
		}
		tally->accepted++;
		if (o->status == LG_PENDING) {
			tally->pending++;
			continue;
		}
		if (o->terminal_us > tally->last_terminal_us)
			tally->last_terminal_us = o->terminal_us;
		latency = o->terminal_us > o->accepted_us ? o->terminal_us - o->accepted_us : 0;
		if (add(all, latency))
			rc = -1;
		if (o->status == LG_CONFIRMED) {
			tally->confirmed++;
			if (add(confirmed, latency))
				rc = -1;
		} else {
			tally->cancelled++;
			tally->reasons[o->reason < LG_REASON_COUNT ? o->reason : LG_REASON_OTHER]++;
			if (add(cancelled, latency))
				rc = -1;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}
