/* Unit tests for catalog: the built-in seed matches the contract, and a
 * bad CATALOG_FILE is refused with a reason. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "es/catalog.h"

START_TEST(builtin_catalog_is_the_contract_seed)
{
	struct es_catalog cat;
	char err[256];
	const struct es_product *p;

	unsetenv("CATALOG_FILE");
	ck_assert_msg(es_catalog_load(&cat, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(cat.currency, "EUR");
	ck_assert_uint_eq(cat.count, 5);
	p = es_catalog_find(&cat, "poster-limited");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(p->price_cents, 1999);
	ck_assert_int_eq(p->initial_stock, 5);
	ck_assert_int_eq(es_catalog_find(&cat, "sticker-pack")->initial_stock, 1000000);
	ck_assert_ptr_null(es_catalog_find(&cat, "nope"));
	es_catalog_release(&cat);
}
END_TEST

START_TEST(bad_catalogs_are_refused_with_a_reason)
{
	struct es_catalog cat;
	char err[256];

	ck_assert_int_eq(es_catalog_parse(&cat, "{", err, sizeof(err)), -1);
	ck_assert_int_eq(
		es_catalog_parse(&cat, "{\"currency\":\"EUR\",\"products\":[]}", err, sizeof(err)),
		-1);
	ck_assert_int_eq(es_catalog_parse(&cat,
					  "{\"currency\":\"EUR\",\"products\":[{\"sku\":\"a\","
					  "\"name\":\"A\",\"priceCents\":-1,\"initialStock\":1}]}",
					  err, sizeof(err)),
			 -1);
	ck_assert_int_eq(
		es_catalog_parse(
			&cat,
			"{\"currency\":\"EUR\",\"products\":["
			"{\"sku\":\"a\",\"name\":\"A\",\"priceCents\":1,\"initialStock\":1},"
			"{\"sku\":\"a\",\"name\":\"B\",\"priceCents\":1,\"initialStock\":1}]}",
			err, sizeof(err)),
		-1);
	ck_assert_ptr_nonnull(strstr(err, "listed twice"));
	setenv("CATALOG_FILE", "/nonexistent/catalog.json", 1);
	ck_assert_int_eq(es_catalog_load(&cat, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "CATALOG_FILE"));
	unsetenv("CATALOG_FILE");
}
END_TEST

START_TEST(catalog_file_replaces_the_builtin_one)
{
	char path[] = "/tmp/es-catalog-XXXXXX";
	int fd = mkstemp(path);
	const char *text = "{\"currency\":\"USD\",\"products\":[{\"sku\":\"x\",\"name\":\"X\","
			   "\"priceCents\":5,\"initialStock\":2}]}";
	struct es_catalog cat;
	char err[256];

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	setenv("CATALOG_FILE", path, 1);
	ck_assert_msg(es_catalog_load(&cat, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(cat.currency, "USD");
	ck_assert_uint_eq(cat.count, 1);
	es_catalog_release(&cat);
	unsetenv("CATALOG_FILE");
	unlink(path);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("catalog");
	TCase *tc = tcase_create("load");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, builtin_catalog_is_the_contract_seed);
	tcase_add_test(tc, bad_catalogs_are_refused_with_a_reason);
	tcase_add_test(tc, catalog_file_replaces_the_builtin_one);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
