/* Unit tests for metrics: the exact exposition text, and counts that add
 * up under concurrent updates. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "es/metrics.h"

static char errstr[256];

/* Renders reg and checks the text is exactly want. */
static void assert_render(struct es_metrics *reg, const char *want)
{
	size_t len = 0;
	char *text = es_metrics_render(reg, &len);

	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text, want);
	ck_assert_uint_eq(len, strlen(want));
	free(text);
}

START_TEST(empty_registry_renders_empty_text)
{
	struct es_metrics *reg = es_metrics_new();

	assert_render(reg, "");
	es_metrics_free(reg);
}
END_TEST

START_TEST(counter_without_labels_renders_help_type_and_value)
{
	struct es_metrics *reg = es_metrics_new();
	struct es_counter *c;

	c = es_counter_register(reg, "es_relay_published_total", "Events published.", NULL, errstr,
				sizeof(errstr));
	ck_assert_msg(c != NULL, "%s", errstr);
	assert_render(reg, "# HELP es_relay_published_total Events published.\n"
			   "# TYPE es_relay_published_total counter\n");
	ck_assert_int_eq(es_counter_inc(c, NULL), 0);
	ck_assert_int_eq(es_counter_add(c, NULL, 41), 0);
	assert_render(reg, "# HELP es_relay_published_total Events published.\n"
			   "# TYPE es_relay_published_total counter\n"
			   "es_relay_published_total 42\n");
	es_metrics_free(reg);
}
END_TEST

START_TEST(labelled_children_render_in_creation_order)
{
	static const char *const labels[] = {"topic", "type", NULL};
	struct es_metrics *reg = es_metrics_new();
	struct es_counter *c;

	c = es_counter_register(reg, "es_events_consumed_total", "Events consumed.", labels, errstr,
				sizeof(errstr));
	ck_assert_msg(c != NULL, "%s", errstr);
	es_counter_inc(c, (const char *[]){"orders", "OrderPlaced"});
	es_counter_inc(c, (const char *[]){"payments", "PaymentFailed"});
	es_counter_add(c, (const char *[]){"orders", "OrderPlaced"}, 2);
	assert_render(reg,
		      "# HELP es_events_consumed_total Events consumed.\n"
		      "# TYPE es_events_consumed_total counter\n"
		      "es_events_consumed_total{topic=\"orders\",type=\"OrderPlaced\"} 3\n"
		      "es_events_consumed_total{topic=\"payments\",type=\"PaymentFailed\"} 1\n");
	es_metrics_free(reg);
}
END_TEST

START_TEST(label_values_and_help_are_escaped)
{
	static const char *const labels[] = {"v", NULL};
	struct es_metrics *reg = es_metrics_new();
	struct es_counter *c;

	c = es_counter_register(reg, "odd_total", "Help with \\ and\nnewline and \"quotes\".",
				labels, errstr, sizeof(errstr));
	ck_assert_msg(c != NULL, "%s", errstr);
	es_counter_inc(c, (const char *[]){"a\\b\"c\nd"});
	assert_render(reg, "# HELP odd_total Help with \\\\ and\\nnewline and \"quotes\".\n"
			   "# TYPE odd_total counter\n"
			   "odd_total{v=\"a\\\\b\\\"c\\nd\"} 1\n");
	es_metrics_free(reg);
}
END_TEST

START_TEST(gauge_set_add_inc_dec)
{
	static const char *const labels[] = {"pool", NULL};
	struct es_metrics *reg = es_metrics_new();
	struct es_gauge *g;

	g = es_gauge_register(reg, "es_db_connections", "Open connections.", labels, errstr,
			      sizeof(errstr));
	ck_assert_msg(g != NULL, "%s", errstr);
	es_gauge_set(g, (const char *[]){"main"}, 5);
	es_gauge_inc(g, (const char *[]){"main"});
	es_gauge_dec(g, (const char *[]){"spare"});
	es_gauge_add(g, (const char *[]){"main"}, -2.5);
	assert_render(reg, "# HELP es_db_connections Open connections.\n"
			   "# TYPE es_db_connections gauge\n"
			   "es_db_connections{pool=\"main\"} 3.5\n"
			   "es_db_connections{pool=\"spare\"} -1\n");
	es_metrics_free(reg);
}
END_TEST

START_TEST(sample_values_use_shortest_exact_form)
{
	struct es_metrics *reg = es_metrics_new();
	struct es_gauge *g;

	g = es_gauge_register(reg, "g", "", NULL, errstr, sizeof(errstr));
	ck_assert_msg(g != NULL, "%s", errstr);
	es_gauge_set(g, NULL, 0.1);
	assert_render(reg, "# HELP g \n# TYPE g gauge\ng 0.1\n");
	es_gauge_set(g, NULL, 1e20);
	assert_render(reg, "# HELP g \n# TYPE g gauge\ng 1e+20\n");
	es_gauge_set(g, NULL, 0.000123);
	assert_render(reg, "# HELP g \n# TYPE g gauge\ng 0.000123\n");
	es_gauge_set(g, NULL, INFINITY);
	assert_render(reg, "# HELP g \n# TYPE g gauge\ng +Inf\n");
	es_gauge_set(g, NULL, -INFINITY);
	assert_render(reg, "# HELP g \n# TYPE g gauge\ng -Inf\n");
	es_gauge_set(g, NULL, -0.0);
	assert_render(reg, "# HELP g \n# TYPE g gauge\ng 0\n");
	es_metrics_free(reg);
}
END_TEST

START_TEST(histogram_buckets_are_cumulative_with_inf_sum_and_count)
{
	static const char *const labels[] = {"route", NULL};
	static const double buckets[] = {0.1, 0.5, 1};
	struct es_metrics *reg = es_metrics_new();
	struct es_histogram *h;

	h = es_histogram_register(reg, "lat_seconds", "Latency.", labels, buckets, 3, errstr,
				  sizeof(errstr));
	ck_assert_msg(h != NULL, "%s", errstr);
	es_histogram_observe(h, (const char *[]){"/a"}, 0.05);
	es_histogram_observe(h, (const char *[]){"/a"}, 0.1); /* le is inclusive */
	es_histogram_observe(h, (const char *[]){"/a"}, 0.75);
	es_histogram_observe(h, (const char *[]){"/a"}, 3);
	assert_render(reg, "# HELP lat_seconds Latency.\n"
			   "# TYPE lat_seconds histogram\n"
			   "lat_seconds_bucket{route=\"/a\",le=\"0.1\"} 2\n"
			   "lat_seconds_bucket{route=\"/a\",le=\"0.5\"} 2\n"
			   "lat_seconds_bucket{route=\"/a\",le=\"1\"} 3\n"
			   "lat_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"
			   "lat_seconds_sum{route=\"/a\"} 3.9\n"
			   "lat_seconds_count{route=\"/a\"} 4\n");
	es_metrics_free(reg);
}
END_TEST

START_TEST(histogram_default_buckets_span_1ms_to_10s)
{
	struct es_metrics *reg = es_metrics_new();
	struct es_histogram *h;

	h = es_histogram_register(reg, "d_seconds", "D.", NULL, NULL, 0, errstr, sizeof(errstr));
	ck_assert_msg(h != NULL, "%s", errstr);
	es_histogram_observe(h, NULL, 0.002);
	assert_render(reg, "# HELP d_seconds D.\n"
			   "# TYPE d_seconds histogram\n"
			   "d_seconds_bucket{le=\"0.001\"} 0\n"
			   "d_seconds_bucket{le=\"0.0025\"} 1\n"
			   "d_seconds_bucket{le=\"0.005\"} 1\n"
			   "d_seconds_bucket{le=\"0.01\"} 1\n"
			   "d_seconds_bucket{le=\"0.025\"} 1\n"
			   "d_seconds_bucket{le=\"0.05\"} 1\n"
			   "d_seconds_bucket{le=\"0.1\"} 1\n"
			   "d_seconds_bucket{le=\"0.25\"} 1\n"
			   "d_seconds_bucket{le=\"0.5\"} 1\n"
			   "d_seconds_bucket{le=\"1\"} 1\n"
			   "d_seconds_bucket{le=\"2.5\"} 1\n"
			   "d_seconds_bucket{le=\"5\"} 1\n"
			   "d_seconds_bucket{le=\"10\"} 1\n"
			   "d_seconds_bucket{le=\"+Inf\"} 1\n"
			   "d_seconds_sum 0.002\n"
			   "d_seconds_count 1\n");
	es_metrics_free(reg);
}
END_TEST

static int backlog_fn(void *arg, double *value)
{
	int *calls = arg;

	(*calls)++;
	if (*calls > 1)
		return -1; /* e.g. the database went away */
	*value = 17;
	return 0;
}

START_TEST(callback_gauge_is_computed_at_render_and_left_out_on_failure)
{
	struct es_metrics *reg = es_metrics_new();
	int calls = 0;

	ck_assert_int_eq(es_gauge_register_fn(reg, "es_outbox_backlog", "Unpublished events.",
					      backlog_fn, &calls, errstr, sizeof(errstr)),
			 0);
	ck_assert_int_eq(calls, 0);
	assert_render(reg, "# HELP es_outbox_backlog Unpublished events.\n"
			   "# TYPE es_outbox_backlog gauge\n"
			   "es_outbox_backlog 17\n");
	ck_assert_int_eq(calls, 1);
	assert_render(reg, "# HELP es_outbox_backlog Unpublished events.\n"
			   "# TYPE es_outbox_backlog gauge\n");
	es_metrics_free(reg);
}
END_TEST

START_TEST(families_render_in_registration_order)
{
	struct es_metrics *reg = es_metrics_new();
	struct es_gauge *g;
	struct es_counter *c;

	g = es_gauge_register(reg, "b_gauge", "B.", NULL, errstr, sizeof(errstr));
	c = es_counter_register(reg, "a_total", "A.", NULL, errstr, sizeof(errstr));
	es_counter_inc(c, NULL);
	es_gauge_set(g, NULL, 2);
	assert_render(reg, "# HELP b_gauge B.\n# TYPE b_gauge gauge\nb_gauge 2\n"
			   "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n");
	es_metrics_free(reg);
}
END_TEST

START_TEST(registration_rejects_bad_names_duplicates_and_buckets)
{
	static const char *const le[] = {"le", NULL};
	static const char *const reserved[] = {"__name", NULL};
	static const char *const twice[] = {"a", "a", NULL};
	static const char *const dash[] = {"a-b", NULL};
	static const double unsorted[] = {1, 0.5};
	struct es_metrics *reg = es_metrics_new();

	ck_assert_ptr_null(es_counter_register(reg, "no_suffix", "", NULL, errstr, sizeof(errstr)));
	ck_assert_msg(strstr(errstr, "_total") != NULL, "%s", errstr);
	ck_assert_ptr_null(
		es_counter_register(reg, "1bad_total", "", NULL, errstr, sizeof(errstr)));
	ck_assert_ptr_null(es_gauge_register(reg, "bad-name", "", NULL, errstr, sizeof(errstr)));
	ck_assert_ptr_null(es_gauge_register(reg, "", "", NULL, errstr, sizeof(errstr)));
	ck_assert_ptr_null(es_gauge_register(reg, "g", "", reserved, errstr, sizeof(errstr)));
	ck_assert_ptr_null(es_gauge_register(reg, "g", "", twice, errstr, sizeof(errstr)));
	ck_assert_ptr_null(es_gauge_register(reg, "g", "", dash, errstr, sizeof(errstr)));
	ck_assert_ptr_null(
		es_histogram_register(reg, "h", "", le, NULL, 0, errstr, sizeof(errstr)));
	ck_assert_ptr_null(
		es_histogram_register(reg, "h", "", NULL, unsorted, 2, errstr, sizeof(errstr)));
	ck_assert_ptr_nonnull(es_gauge_register(reg, "ns:g", "", NULL, errstr, sizeof(errstr)));
	ck_assert_ptr_null(es_gauge_register(reg, "ns:g", "", NULL, errstr, sizeof(errstr)));
	ck_assert_msg(strstr(errstr, "already") != NULL, "%s", errstr);
	ck_assert_int_eq(
		es_gauge_register_fn(reg, "ns:g", "", backlog_fn, NULL, errstr, sizeof(errstr)),
		-1);
	es_metrics_free(reg);
}
END_TEST

START_TEST(updates_refuse_values_a_metric_cannot_take)
{
	static const char *const labels[] = {"a", NULL};
	struct es_metrics *reg = es_metrics_new();
	struct es_counter *c;
	struct es_histogram *h;

	c = es_counter_register(reg, "c_total", "", labels, errstr, sizeof(errstr));
	h = es_histogram_register(reg, "h", "", NULL, NULL, 0, errstr, sizeof(errstr));
	ck_assert_int_eq(es_counter_add(c, (const char *[]){"x"}, -1), -1);
	ck_assert_int_eq(es_counter_add(c, (const char *[]){"x"}, NAN), -1);
	ck_assert_int_eq(es_counter_inc(c, NULL), -1);
	ck_assert_int_eq(es_counter_inc(c, (const char *[]){NULL}), -1);
	ck_assert_int_eq(es_counter_inc(NULL, NULL), -1);
	ck_assert_int_eq(es_histogram_observe(h, NULL, NAN), -1);
	assert_render(reg, "# HELP c_total \n# TYPE c_total counter\n"
			   "# HELP h \n# TYPE h histogram\n");
	es_metrics_free(reg);
}
END_TEST

START_TEST(family_stops_growing_at_child_limit)
{
	static const char *const labels[] = {"id", NULL};
	struct es_metrics *reg = es_metrics_new();
	struct es_counter *c;
	char id[32];

	c = es_counter_register(reg, "ids_total", "", labels, errstr, sizeof(errstr));
	for (int i = 0; i < ES_METRICS_MAX_CHILDREN; i++) {
		snprintf(id, sizeof(id), "%d", i);
		ck_assert_int_eq(es_counter_inc(c, (const char *[]){id}), 0);
	}
	ck_assert_int_eq(es_counter_inc(c, (const char *[]){"one-more"}), -1);
	ck_assert_int_eq(es_counter_inc(c, (const char *[]){"0"}), 0); /* existing still counts */
	es_metrics_free(reg);
}
END_TEST

#define THREADS 8
#define ROUNDS 20000

struct worker {
	struct es_counter *c;
	struct es_histogram *h;
	const char *label;
};

static void *work(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < ROUNDS; i++) {
		es_counter_inc(w->c, (const char *[]){w->label});
		es_histogram_observe(w->h, NULL, 0.5);
	}
	return NULL;
}

static void *render_loop(void *arg)
{
	for (int i = 0; i < 50; i++)
		free(es_metrics_render(arg, NULL));
	return NULL;
}

START_TEST(concurrent_updates_from_threads_add_up)
{
	static const char *const labels[] = {"half", NULL};
	struct es_metrics *reg = es_metrics_new();
	struct worker w[THREADS];
	pthread_t tid[THREADS + 1];
	char want[128];
	char *text;

	struct es_counter *c = es_counter_register(reg, "work_total", "", labels, errstr,
						   sizeof(errstr));
	struct es_histogram *h = es_histogram_register(reg, "work_seconds", "", NULL, NULL, 0,
						       errstr, sizeof(errstr));
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){c, h, i % 2 ? "odd" : "even"};
		ck_assert_int_eq(pthread_create(&tid[i], NULL, work, &w[i]), 0);
	}
	ck_assert_int_eq(pthread_create(&tid[THREADS], NULL, render_loop, reg), 0);
	for (int i = 0; i <= THREADS; i++)
		pthread_join(tid[i], NULL);

	text = es_metrics_render(reg, NULL);
	ck_assert_ptr_nonnull(text);
	snprintf(want, sizeof(want), "work_total{half=\"even\"} %d\n", THREADS / 2 * ROUNDS);
	ck_assert_msg(strstr(text, want) != NULL, "%s", text);
	snprintf(want, sizeof(want), "work_total{half=\"odd\"} %d\n", THREADS / 2 * ROUNDS);
	ck_assert_msg(strstr(text, want) != NULL, "%s", text);
	snprintf(want, sizeof(want), "work_seconds_count %d\n", THREADS * ROUNDS);
	ck_assert_msg(strstr(text, want) != NULL, "%s", text);
	snprintf(want, sizeof(want), "work_seconds_bucket{le=\"0.5\"} %d\n", THREADS * ROUNDS);
	ck_assert_msg(strstr(text, want) != NULL, "%s", text);
	snprintf(want, sizeof(want), "work_seconds_sum %d\n", THREADS * ROUNDS / 2);
	ck_assert_msg(strstr(text, want) != NULL, "%s", text);
	free(text);
	es_metrics_free(reg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, empty_registry_renders_empty_text);
	tcase_add_test(tc, counter_without_labels_renders_help_type_and_value);
	tcase_add_test(tc, labelled_children_render_in_creation_order);
	tcase_add_test(tc, label_values_and_help_are_escaped);
	tcase_add_test(tc, gauge_set_add_inc_dec);
	tcase_add_test(tc, sample_values_use_shortest_exact_form);
	tcase_add_test(tc, histogram_buckets_are_cumulative_with_inf_sum_and_count);
	tcase_add_test(tc, histogram_default_buckets_span_1ms_to_10s);
	tcase_add_test(tc, callback_gauge_is_computed_at_render_and_left_out_on_failure);
	tcase_add_test(tc, families_render_in_registration_order);
	tcase_add_test(tc, registration_rejects_bad_names_duplicates_and_buckets);
	tcase_add_test(tc, updates_refuse_values_a_metric_cannot_take);
	tcase_add_test(tc, family_stops_growing_at_child_limit);
	tcase_add_test(tc, concurrent_updates_from_threads_add_up);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
