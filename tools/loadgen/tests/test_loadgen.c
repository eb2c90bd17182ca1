/* Unit tests for the load generator's pure parts: the mix (parsing and
 * weighted choice), the fixed-rate schedule, exact percentiles and the
 * table of a run's orders. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"
#include "mix.h"
#include "orders.h"
#include "pace.h"
#include "stats.h"

/* ------------------------------------------------------------------ mix */

START_TEST(mix_default_parses)
{
	struct lg_mix mix;
	char err[256];

	ck_assert_int_eq(lg_mix_parse(&mix, LG_MIX_DEFAULT, err, sizeof(err)), 0);
	ck_assert_uint_eq(mix.n, 8);
	ck_assert_uint_eq(mix.total, 100);
	ck_assert_str_eq(mix.entries[0].lines[0].sku, "mug-classic");
	ck_assert_int_eq(mix.entries[0].lines[0].quantity, 1);
	ck_assert_str_eq(mix.entries[0].token, "tok_visa");
	ck_assert_uint_eq(mix.entries[0].weight, 25);
	ck_assert_int_eq(mix.entries[3].nlines, 2);
	ck_assert_str_eq(mix.entries[3].lines[1].sku, "sticker-pack");
	ck_assert_int_eq(mix.entries[3].lines[1].quantity, 2);
	ck_assert_str_eq(mix.entries[3].token, "tok_mastercard");
	ck_assert_uint_eq(mix.entries[7].cumulative, 100);
	lg_mix_release(&mix);
}
END_TEST

START_TEST(mix_takes_lines_spaces_and_default_quantity)
{
	struct lg_mix mix;
	char err[256];

	ck_assert_int_eq(lg_mix_parse(&mix,
				      " mug-classic+sticker-pack:3:tok_ok_1:7 , hoodie-eda:2:x:0",
				      err, sizeof(err)),
			 0);
	ck_assert_uint_eq(mix.n, 2);
	ck_assert_int_eq(mix.entries[0].nlines, 2);
	ck_assert_str_eq(mix.entries[0].lines[0].sku, "mug-classic");
	ck_assert_int_eq(mix.entries[0].lines[0].quantity, 1);
	ck_assert_int_eq(mix.entries[0].lines[1].quantity, 3);
	ck_assert_str_eq(mix.entries[0].token, "tok_ok_1");
	ck_assert_str_eq(mix.entries[1].token, "x");
	ck_assert_uint_eq(mix.entries[1].weight, 0);
	ck_assert_uint_eq(mix.total, 7);
	lg_mix_release(&mix);
}
END_TEST

START_TEST(mix_rejects_bad_entries_naming_them)
{
	static const struct {
		const char *spec;
		const char *want; /* a part of the message */
	} bad[] = {
		{"mug:1:tok_visa", "weight \"tok_visa\""},
		{"mug", "want SKU:QTY"},
		{"mug:0:tok_visa:1", "quantity \"0\""},
		{"mug:101:tok_visa:1", "quantity \"101\""},
		{"mug:-1:tok_visa:1", "quantity \"-1\""},
		{"mug:1:tok_visa:-1", "weight \"-1\""},
		{"mug:1:tok_visa:1000001", "weight \"1000001\""},
		{"mug:1:tok_visa:x", "weight \"x\""},
		{"mug:1::1", "token \"\""},
		{":1:tok_visa:1", "SKU \"\""},
		{"mug:1+:tok_visa:1", "SKU \"\""},
		{"mug:1+mug:2:tok_visa:1", "SKU mug appears twice"},
		{"mug:1:tok_visa:0", "every weight is 0"},
		{"mug:1:tok_visa:1,,tee:1:tok_visa:1", "entry 2 is empty"},
		{"mug:1:tok_visa:1,", "entry 2 is empty"},
		{"", "entry 1 is empty"},
		{"mug:1:tok visa:1", "token \"tok visa\""},
	};
	struct lg_mix mix;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(lg_mix_parse(&mix, bad[i].spec, err, sizeof(err)) == -1,
			      "accepted \"%s\"", bad[i].spec);
		ck_assert_msg(strstr(err, bad[i].want), "\"%s\": got \"%s\", want \"%s\"",
			      bad[i].spec, err, bad[i].want);
		ck_assert_ptr_null(mix.entries);
	}
	ck_assert_int_eq(lg_mix_parse(&mix, "a:1:t:1,b:q:t:1", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "entry 2 (\"b:q:t:1\"): quantity \"q\" is not a whole number "
			      "from 1 to 100");
}
END_TEST

START_TEST(mix_rejects_too_many_entries_and_lines)
{
	char spec[8192] = "", line[32];
	struct lg_mix mix;
	char err[256];

	for (int i = 0; i <= LG_MIX_MAX_ENTRIES; i++) {
		snprintf(line, sizeof(line), "%ss%d:1:t:1", i ? "," : "", i);
		strcat(spec, line);
	}
	ck_assert_int_eq(lg_mix_parse(&mix, spec, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "more than 64 entries");
	spec[0] = '\0';
	for (int i = 0; i <= LG_MIX_MAX_LINES; i++) {
		snprintf(line, sizeof(line), "%ss%d:1", i ? "+" : "", i);
		strcat(spec, line);
	}
	strcat(spec, ":t:1");
	ck_assert_int_eq(lg_mix_parse(&mix, spec, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "more than 50 lines"));
}
END_TEST

START_TEST(mix_pick_gives_each_entry_its_range)
{
	struct lg_mix mix;
	char err[256];

	/* ranges: a [0,1), b never, c [1,4), d [4,6) */
	ck_assert_int_eq(lg_mix_parse(&mix, "a:1:t:1,b:1:t:0,c:1:t:3,d:1:t:2", err, sizeof(err)),
			 0);
	ck_assert_uint_eq(lg_mix_pick(&mix, 0), 0);
	ck_assert_uint_eq(lg_mix_pick(&mix, 1), 2);
	ck_assert_uint_eq(lg_mix_pick(&mix, 3), 2);
	ck_assert_uint_eq(lg_mix_pick(&mix, 4), 3);
	ck_assert_uint_eq(lg_mix_pick(&mix, 5), 3);
	ck_assert_uint_eq(lg_mix_pick(&mix, 6), 0); /* modulo the total */
	ck_assert_uint_eq(lg_mix_pick(&mix, UINT64_MAX), 2); /* 2^64 - 1 = 3 mod 6 */
	lg_mix_release(&mix);
}
END_TEST

START_TEST(mix_pick_frequencies_follow_the_weights)
{
	struct lg_mix mix;
	size_t counts[3] = {0};
	uint64_t rng = 42;
	char err[256];
	const size_t n = 200000;

	ck_assert_int_eq(lg_mix_parse(&mix, "a:1:t:70,b:1:t:20,c:1:t:10", err, sizeof(err)), 0);
	for (size_t i = 0; i < n; i++)
		counts[lg_mix_pick(&mix, lg_rand_next(&rng))]++;
	/* within 1 percentage point: about 10 standard deviations */
	ck_assert_msg(counts[0] > n * 69 / 100 && counts[0] < n * 71 / 100, "a %zu", counts[0]);
	ck_assert_msg(counts[1] > n * 19 / 100 && counts[1] < n * 21 / 100, "b %zu", counts[1]);
	ck_assert_msg(counts[2] > n * 9 / 100 && counts[2] < n * 11 / 100, "c %zu", counts[2]);
	lg_mix_release(&mix);
}
END_TEST

START_TEST(rand_is_reproducible_from_its_seed)
{
	uint64_t a = 7, b = 7, c = 8;
	uint64_t x = lg_rand_next(&a);

	ck_assert_uint_eq(x, lg_rand_next(&b));
	ck_assert_uint_ne(x, lg_rand_next(&c));
	ck_assert_uint_ne(x, lg_rand_next(&a));
}
END_TEST

/* ------------------------------------------------------------ percentiles */

START_TEST(percentile_is_nearest_rank)
{
	int64_t v[100];

	for (int i = 0; i < 100; i++)
		v[i] = i + 1;
	ck_assert_int_eq(lg_percentile(v, 100, 50), 50);
	ck_assert_int_eq(lg_percentile(v, 100, 95), 95);
	ck_assert_int_eq(lg_percentile(v, 100, 99), 99);
	ck_assert_int_eq(lg_percentile(v, 100, 100), 100);
	ck_assert_int_eq(lg_percentile(v, 100, 0.1), 1);
	/* 10 samples: p50 is the 5th, p95 and p99 round up to the 10th */
	ck_assert_int_eq(lg_percentile(v, 10, 50), 5);
	ck_assert_int_eq(lg_percentile(v, 10, 95), 10);
	ck_assert_int_eq(lg_percentile(v, 10, 99), 10);
	/* 20 samples: p95 is exactly the 19th */
	ck_assert_int_eq(lg_percentile(v, 20, 95), 19);
	ck_assert_int_eq(lg_percentile(v, 1, 99), 1);
	ck_assert_int_eq(lg_percentile(v, 0, 50), 0);
}
END_TEST

START_TEST(percentile_is_exact_on_large_counts)
{
	struct lg_samples s = {0};
	struct lg_summary sum;

	/* 1000..1 backwards: summarize must sort */
	for (int i = 1000; i >= 1; i--)
		ck_assert_int_eq(lg_samples_add(&s, i), 0);
	lg_samples_summarize(&s, &sum);
	ck_assert_uint_eq(sum.count, 1000);
	ck_assert_int_eq(sum.min, 1);
	ck_assert_int_eq(sum.p50, 500);
	ck_assert_int_eq(sum.p95, 950);
	ck_assert_int_eq(sum.p99, 990);
	ck_assert_int_eq(sum.max, 1000);
	ck_assert(sum.mean > 500.49 && sum.mean < 500.51);
	lg_samples_release(&s);
}
END_TEST

START_TEST(summary_of_nothing_is_zero)
{
	struct lg_samples s = {0};
	struct lg_summary sum;

	lg_samples_summarize(&s, &sum);
	ck_assert_uint_eq(sum.count, 0);
	ck_assert_int_eq(sum.p99, 0);
	ck_assert_int_eq(lg_samples_add(&s, 7), 0);
	lg_samples_summarize(&s, &sum);
	ck_assert_int_eq(sum.p50, 7);
	ck_assert_int_eq(sum.p99, 7);
	ck_assert_int_eq(sum.max, 7);
	lg_samples_release(&s);
}
END_TEST

/* ---------------------------------------------------------------- pacing */

START_TEST(pacer_spaces_orders_evenly)
{
	struct lg_pacer p;

	lg_pacer_init(&p, 50, 1000);
	ck_assert_int_eq(lg_pacer_due_us(&p, 0), 1000);
	ck_assert_int_eq(lg_pacer_due_us(&p, 1), 21000);
	ck_assert_int_eq(lg_pacer_due_us(&p, 50), 1001000);
	ck_assert_uint_eq(lg_pacer_due_count(&p, 999), 0);
	ck_assert_uint_eq(lg_pacer_due_count(&p, 1000), 1);
	ck_assert_uint_eq(lg_pacer_due_count(&p, 20999), 1);
	ck_assert_uint_eq(lg_pacer_due_count(&p, 21000), 2);
	ck_assert_uint_eq(lg_pacer_due_count(&p, 1000 + 1000000), 51);
	/* a sender 1 s behind has 50 orders to catch up on */
	ck_assert_uint_eq(lg_pacer_due_count(&p, 1000 + 2000000) - 51, 50);
}
END_TEST

START_TEST(pacer_rounds_due_times_up)
{
	struct lg_pacer p;

	/* 3/s: 333333.3 us apart, never early */
	lg_pacer_init(&p, 3, 0);
	ck_assert_int_eq(lg_pacer_due_us(&p, 1), 333334);
	ck_assert_int_eq(lg_pacer_due_us(&p, 2), 666667);
	ck_assert_int_eq(lg_pacer_due_us(&p, 3), 1000000);
	/* due_count and due_us agree on every order, for awkward rates */
	for (long long rate = 1; rate <= 1000000; rate = rate * 7 + 1) {
		lg_pacer_init(&p, rate, 5);
		for (uint64_t n = 0; n < 2000; n++) {
			int64_t t = lg_pacer_due_us(&p, n);

			ck_assert_uint_eq(lg_pacer_due_count(&p, t), n + 1);
			if (n > 0 && t > lg_pacer_due_us(&p, n - 1))
				ck_assert_uint_eq(lg_pacer_due_count(&p, t - 1), n);
		}
	}
}
END_TEST

START_TEST(pacer_without_rate_is_always_due)
{
	struct lg_pacer p;

	lg_pacer_init(&p, 0, 1000);
	ck_assert_uint_eq(lg_pacer_due_count(&p, 0), UINT64_MAX);
	ck_assert_int_eq(lg_pacer_due_us(&p, 12345), 1000);
}
END_TEST

START_TEST(pacer_total_takes_the_smaller_limit)
{
	ck_assert_uint_eq(lg_pacer_total(50, 1000, 0), 1000);
	ck_assert_uint_eq(lg_pacer_total(50, 0, 10), 500);
	ck_assert_uint_eq(lg_pacer_total(50, 1000, 10), 500);
	ck_assert_uint_eq(lg_pacer_total(50, 100, 10), 100);
	ck_assert_uint_eq(lg_pacer_total(0, 2000, 0), 2000);
	ck_assert_uint_eq(lg_pacer_total(0, 2000, 10), 2000);
	ck_assert_uint_eq(lg_pacer_total(0, 0, 10), UINT64_MAX);
}
END_TEST

/* ---------------------------------------------------------------- orders */

static void make_id(char out[LG_ORDER_ID_LEN + 1], unsigned n)
{
	snprintf(out, LG_ORDER_ID_LEN + 1, "00000000-0000-4000-8000-%012x", n);
}

START_TEST(orders_accepted_then_terminal_settle)
{
	struct lg_orders t;
	struct lg_tally tally;
	struct lg_samples all = {0}, conf = {0}, canc = {0};
	char a[40], b[40], c[40];
	size_t accepted, settled;
	bool dup;

	make_id(a, 1);
	make_id(b, 2);
	make_id(c, 3);
	ck_assert_int_eq(lg_orders_init(&t), 0);
	ck_assert_int_eq(lg_orders_accept(&t, a, 1000, 100, &dup), 0);
	ck_assert_int_eq(lg_orders_accept(&t, b, 2000, 100, &dup), 1);
	ck_assert_int_eq(lg_orders_accept(&t, c, 3000, 100, &dup), 2);
	ck_assert_int_eq(lg_orders_terminal(&t, a, LG_CONFIRMED, LG_REASON_NONE, 51000), 1);
	ck_assert_int_eq(lg_orders_terminal(&t, b, LG_CANCELLED, LG_REASON_OUT_OF_STOCK, 12000), 1);
	/* a terminal order never changes: the first status wins */
	ck_assert_int_eq(lg_orders_terminal(&t, a, LG_CANCELLED, LG_REASON_TIMEOUT, 99000), 0);
	lg_orders_counts(&t, &accepted, &settled);
	ck_assert_uint_eq(accepted, 3);
	ck_assert_uint_eq(settled, 2);
	ck_assert_int_eq(lg_orders_tally(&t, &tally, &all, &conf, &canc), 0);
	ck_assert_uint_eq(tally.accepted, 3);
	ck_assert_uint_eq(tally.confirmed, 1);
	ck_assert_uint_eq(tally.cancelled, 1);
	ck_assert_uint_eq(tally.reasons[LG_REASON_OUT_OF_STOCK], 1);
	ck_assert_uint_eq(tally.pending, 1);
	ck_assert_int_eq(tally.last_terminal_us, 51000);
	ck_assert_uint_eq(all.n, 2);
	ck_assert_int_eq(conf.v[0], 50000);
	ck_assert_int_eq(canc.v[0], 10000);
	lg_samples_release(&all);
	lg_samples_release(&conf);
	lg_samples_release(&canc);
	lg_orders_release(&t);
}
END_TEST

START_TEST(orders_terminal_before_202_counts_once_accepted)
{
	struct lg_orders t;
	struct lg_tally tally;
	struct lg_samples all = {0};
	char a[40], other[40];
	size_t accepted, settled;
	bool dup;

	make_id(a, 10);
	make_id(other, 11);
	ck_assert_int_eq(lg_orders_init(&t), 0);
	/* not ours (no OrderPlaced of our customer, no 202): ignored */
	ck_assert_int_eq(lg_orders_terminal(&t, other, LG_CONFIRMED, LG_REASON_NONE, 10), 0);
	/* the saga ended on the topic before the 202 was read */
	ck_assert_int_eq(lg_orders_seen(&t, a), 0);
	ck_assert_int_eq(lg_orders_terminal(&t, a, LG_CANCELLED, LG_REASON_PAYMENT_DECLINED, 500),
			 1);
	lg_orders_counts(&t, &accepted, &settled);
	ck_assert_uint_eq(accepted, 0);
	ck_assert_uint_eq(settled, 0);
	ck_assert_int_eq(lg_orders_accept(&t, a, 700, 100, &dup), 0);
	ck_assert(!dup);
	lg_orders_counts(&t, &accepted, &settled);
	ck_assert_uint_eq(accepted, 1);
	ck_assert_uint_eq(settled, 1);
	/* the same id accepted twice */
	ck_assert_int_eq(lg_orders_accept(&t, a, 800, 100, &dup), -1);
	ck_assert(dup);
	ck_assert_int_eq(lg_orders_tally(&t, &tally, &all, NULL, NULL), 0);
	ck_assert_uint_eq(tally.cancelled, 1);
	ck_assert_uint_eq(tally.reasons[LG_REASON_PAYMENT_DECLINED], 1);
	ck_assert_int_eq(all.v[0], 0); /* never negative */
	lg_samples_release(&all);
	lg_orders_release(&t);
}
END_TEST

START_TEST(orders_seen_without_202_are_unacknowledged)
{
	struct lg_orders t;
	struct lg_tally tally;
	char a[40];

	make_id(a, 20);
	ck_assert_int_eq(lg_orders_init(&t), 0);
	ck_assert_int_eq(lg_orders_seen(&t, a), 0);
	ck_assert_int_eq(lg_orders_tally(&t, &tally, NULL, NULL, NULL), 0);
	ck_assert_uint_eq(tally.accepted, 0);
	ck_assert_uint_eq(tally.unacknowledged, 1);
	ck_assert_int_eq(lg_orders_seen(&t, "not-an-id"), -1);
	lg_orders_release(&t);
}
END_TEST

START_TEST(orders_table_grows)
{
	struct lg_orders t;
	struct lg_order o;
	char id[40];
	size_t accepted, settled;
	bool dup;

	ck_assert_int_eq(lg_orders_init(&t), 0);
	for (unsigned i = 0; i < 20000; i++) {
		make_id(id, i);
		ck_assert_int_eq(lg_orders_accept(&t, id, i, 100, &dup), (long)i);
	}
	for (unsigned i = 0; i < 20000; i += 2) {
		make_id(id, i);
		ck_assert_int_eq(lg_orders_terminal(&t, id, LG_CONFIRMED, LG_REASON_NONE, i + 5),
				 1);
	}
	lg_orders_counts(&t, &accepted, &settled);
	ck_assert_uint_eq(accepted, 20000);
	ck_assert_uint_eq(settled, 10000);
	ck_assert_int_eq(lg_orders_get(&t, 12345, &o), 0);
	make_id(id, 12345);
	ck_assert_str_eq(o.id, id);
	ck_assert_int_eq(lg_orders_get(&t, 20000, &o), -1);
	lg_orders_release(&t);
}
END_TEST

static int count_until(void *arg, const struct lg_order *o)
{
	unsigned *seen = arg;
	char want[40];

	make_id(want, *seen);
	ck_assert_str_eq(o->id, want); /* in the order they were added */
	return ++*seen == 3 ? 7 : 0;
}

START_TEST(orders_each_visits_in_order_and_stops)
{
	struct lg_orders t;
	unsigned seen = 0;
	char id[40];
	bool dup;

	ck_assert_int_eq(lg_orders_init(&t), 0);
	ck_assert_int_eq(lg_orders_each(&t, count_until, &seen), 0);
	for (unsigned i = 0; i < 5; i++) {
		make_id(id, i);
		lg_orders_accept(&t, id, i, 100, &dup);
	}
	ck_assert_int_eq(lg_orders_each(&t, count_until, &seen), 7);
	ck_assert_uint_eq(seen, 3);
	lg_orders_release(&t);
}
END_TEST

START_TEST(urls_one_or_several_without_trailing_slashes)
{
	static struct lg_config cfg;
	char err[256];

	ck_assert_int_eq(lg_urls_parse(&cfg, "http://127.0.0.1:8080/", err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.nurls, 1);
	ck_assert_str_eq(cfg.urls[0], "http://127.0.0.1:8080");
	ck_assert_str_eq(cfg.url, "http://127.0.0.1:8080");

	ck_assert_int_eq(
		lg_urls_parse(&cfg, "http://a:1//,https://b:2/x,http://c:3", err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.nurls, 3);
	ck_assert_str_eq(cfg.urls[0], "http://a:1");
	ck_assert_str_eq(cfg.urls[1], "https://b:2/x");
	ck_assert_str_eq(cfg.urls[2], "http://c:3");
	ck_assert_str_eq(cfg.url, "http://a:1,https://b:2/x,http://c:3");
}
END_TEST

START_TEST(urls_refuse_what_is_not_a_url_naming_it)
{
	static struct lg_config cfg;
	char err[256];

	ck_assert_int_eq(lg_urls_parse(&cfg, "http://a:1,,http://b:2", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "\"\" is not an http:// or https:// URL");
	ck_assert_int_eq(lg_urls_parse(&cfg, "http://a:1,ftp://b", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "\"ftp://b\" is not an http:// or https:// URL");
	ck_assert_int_eq(lg_urls_parse(&cfg, "http://a:1,", err, sizeof(err)), -1);
	ck_assert_int_eq(lg_urls_parse(&cfg,
				       "http://1,http://2,http://3,http://4,http://5,"
				       "http://6,http://7,http://8,http://9",
				       err, sizeof(err)),
			 -1);
	ck_assert_str_eq(err, "at most 8 URLs");
}
END_TEST

START_TEST(reasons_parse_and_name)
{
	ck_assert_int_eq(lg_reason_parse("OUT_OF_STOCK"), LG_REASON_OUT_OF_STOCK);
	ck_assert_int_eq(lg_reason_parse("TIMEOUT"), LG_REASON_TIMEOUT);
	ck_assert_int_eq(lg_reason_parse("SOMETHING_NEW"), LG_REASON_OTHER);
	ck_assert_int_eq(lg_reason_parse(NULL), LG_REASON_OTHER);
	ck_assert_str_eq(lg_reason_name(LG_REASON_CUSTOMER_REQUEST), "CUSTOMER_REQUEST");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("loadgen");
	TCase *mix = tcase_create("mix"), *stats = tcase_create("percentiles"),
	      *pace = tcase_create("pacing"), *orders = tcase_create("orders");
	SRunner *sr;
	int failed;

	tcase_add_test(mix, mix_default_parses);
	tcase_add_test(mix, mix_takes_lines_spaces_and_default_quantity);
	tcase_add_test(mix, mix_rejects_bad_entries_naming_them);
	tcase_add_test(mix, mix_rejects_too_many_entries_and_lines);
	tcase_add_test(mix, mix_pick_gives_each_entry_its_range);
	tcase_add_test(mix, mix_pick_frequencies_follow_the_weights);
	tcase_add_test(mix, rand_is_reproducible_from_its_seed);
	tcase_add_test(stats, percentile_is_nearest_rank);
	tcase_add_test(stats, percentile_is_exact_on_large_counts);
	tcase_add_test(stats, summary_of_nothing_is_zero);
	tcase_add_test(pace, pacer_spaces_orders_evenly);
	tcase_add_test(pace, pacer_rounds_due_times_up);
	tcase_add_test(pace, pacer_without_rate_is_always_due);
	tcase_add_test(pace, pacer_total_takes_the_smaller_limit);
	tcase_add_test(orders, orders_accepted_then_terminal_settle);
	tcase_add_test(orders, orders_terminal_before_202_counts_once_accepted);
	tcase_add_test(orders, orders_seen_without_202_are_unacknowledged);
	tcase_add_test(orders, orders_table_grows);
	tcase_add_test(orders, orders_each_visits_in_order_and_stops);
	tcase_add_test(orders, reasons_parse_and_name);
	tcase_add_test(orders, urls_one_or_several_without_trailing_slashes);
	tcase_add_test(orders, urls_refuse_what_is_not_a_url_naming_it);
	suite_add_tcase(s, mix);
	suite_add_tcase(s, stats);
	suite_add_tcase(s, pace);
	suite_add_tcase(s, orders);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
