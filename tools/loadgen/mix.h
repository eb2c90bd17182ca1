/*
 * mix: what kinds of orders the load generator places, and how often.
 *
 * A mix is a comma-separated list of entries, each one kind of order with
 * its weight:
 *
 *   SKU:QTY[+SKU:QTY...]:TOKEN:WEIGHT
 *
 * e.g. "mug-classic:1:tok_visa:60,mug-classic:2+sticker-pack:3:tok_visa:10,
 * tshirt-kafka:1:tok_declined:5": an order is the entry's lines paid with
 * its paymentToken, and an entry is picked with probability WEIGHT / the sum
 * of all weights. Pure code: parsed once, then read by the sending loop.
 */
#ifndef LG_MIX_H
#define LG_MIX_H

#include <stddef.h>
#include <stdint.h>

#define LG_MIX_MAX_ENTRIES 64
#define LG_MIX_MAX_LINES 50 /* the contract's limit of lines per order */
#define LG_SKU_MAX 64
#define LG_TOKEN_MAX 64
#define LG_WEIGHT_MAX 1000000

/*
 * The default mix: mostly paid orders of the plentiful products, some
 * declined cards (PAYMENT_DECLINED), some of the five limited posters
 * (OUT_OF_STOCK once they are gone).
 */
#define LG_MIX_DEFAULT                                                                     \
	"mug-classic:1:tok_visa:25,tshirt-kafka:1:tok_visa:20,sticker-pack:3:tok_visa:25," \
	"mug-classic:1+sticker-pack:2:tok_mastercard:10,tshirt-kafka:1:tok_declined:8,"    \
	"sticker-pack:1:tok_insufficient_funds:2,poster-limited:1:tok_visa:5,"             \
	"hoodie-eda:1:tok_visa:5"

struct lg_line {
	char sku[LG_SKU_MAX + 1];
	int quantity;
};

struct lg_mix_entry {
	struct lg_line lines[LG_MIX_MAX_LINES];
	int nlines;
	char token[LG_TOKEN_MAX + 1];
	unsigned long weight;
	uint64_t cumulative; /* the weights of this entry and all before it */
};

struct lg_mix {
	struct lg_mix_entry *entries; /* owned */
	size_t n;
	uint64_t total; /* sum of the weights, > 0 */
};

/*
 * Parses spec into mix (release with lg_mix_release). Spaces around
 * entries are ignored; QTY is 1 to 100 (the contract's range) and may be
 * left out with its colon (then 1); WEIGHT is 0 to 1000000 and at least one
 * must be > 0. Returns 0, or -1 with errstr naming the entry at fault,
 * e.g. "entry 2 (\"mug:x:tok_visa:1\"): quantity \"x\" is not a whole
 * number from 1 to 100". mix is left empty on failure.
 */
int lg_mix_parse(struct lg_mix *mix, const char *spec, char *errstr, size_t errstr_size);

void lg_mix_release(struct lg_mix *mix);

/*
 * The entry that r picks: entries own consecutive ranges of [0, total) as
 * wide as their weights, and r is taken modulo total. Entries of weight 0
 * are never picked. Returns its index.
 */
size_t lg_mix_pick(const struct lg_mix *mix, uint64_t r);

/* A small fast PRNG (splitmix64) for picking entries: not for secrets. */
uint64_t lg_rand_next(uint64_t *state);

#endif
