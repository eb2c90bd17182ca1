/*
 * unit.tools.console.admin: the switches panel's parsing (admin.h): the
 * name=URL lists, the admin server's URL by the demo's rule, the page's
 * change requests (anything else is refused with a reason, never a
 * crash), and which Origin and Host may change a switch.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"

START_TEST(named_urls_parsed)
{
	struct console_named_url l[3];
	char err[256];

	ck_assert_int_eq(
		console_parse_named_urls("V", "a=http://h:1/,,b=https://x", l, 3, err, sizeof(err)),
		2);
	ck_assert_str_eq(l[0].name, "a");
	ck_assert_str_eq(l[0].url, "http://h:1"); /* no trailing '/' */
	ck_assert_str_eq(l[1].name, "b");
	ck_assert_str_eq(l[1].url, "https://x");
	ck_assert_int_eq(console_parse_named_urls("V", "", l, 3, err, sizeof(err)), 0);
}
END_TEST

START_TEST(named_urls_refused)
{
	static const char *const bad[] = {
		"a",	     "=http://h:1", "a=ftp://h",
		"a=http://", "a=h:1",	    "a=http://1,b=http://2,c=http://3,d=http://4",
	};
	struct console_named_url l[3];
	char err[256], long_name[100];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_int_eq(
			console_parse_named_urls("CONSOLE_ADMIN", bad[i], l, 3, err, sizeof(err)),
			-1);
		ck_assert_msg(!strncmp(err, "CONSOLE_ADMIN: ", 15), "%s: %s", bad[i], err);
	}
	memset(long_name, 'n', 70);
	strcpy(long_name + 70, "=http://h:1");
	ck_assert_int_eq(console_parse_named_urls("V", long_name, l, 3, err, sizeof(err)), -1);
}
END_TEST

START_TEST(admin_url_is_port_plus_offset)
{
	char out[64];

	ck_assert_int_eq(console_admin_url("http://127.0.0.1:8081", 1000, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "http://127.0.0.1:9081");
	ck_assert_int_eq(console_admin_url("http://payment-service:8081/x", 1000, out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, "http://payment-service:9081");
	ck_assert_int_eq(console_admin_url("http://[::1]:8082", 1000, out, sizeof(out)), 0);
	ck_assert_str_eq(out, "http://[::1]:9082");
	/* No port, no admin server by this rule. */
	ck_assert_int_eq(console_admin_url("http://[::1]", 1000, out, sizeof(out)), -1);
	ck_assert_int_eq(console_admin_url("http://host", 1000, out, sizeof(out)), -1);
	ck_assert_int_eq(console_admin_url("http://host:", 1000, out, sizeof(out)), -1);
	ck_assert_int_eq(console_admin_url("http://host:80x", 1000, out, sizeof(out)), -1);
	ck_assert_int_eq(console_admin_url("http://host:65000", 1000, out, sizeof(out)), -1);
	ck_assert_int_eq(console_admin_url("host:8080", 1000, out, sizeof(out)), -1);
	ck_assert_int_eq(console_admin_url("http://127.0.0.1:8081", 1000, out, 10), -1);
}
END_TEST

static int parse(const char *body, struct console_fault_request *r)
{
	char err[256] = "";
	int rc = console_fault_request_parse(body, strlen(body), r, err, sizeof(err));

	ck_assert_msg(rc == 0 || err[0], "%s: no reason given", body);
	return rc;
}

START_TEST(change_requests_parsed)
{
	struct console_fault_request r;

	ck_assert_int_eq(
		parse("{\"service\":\"payment-service\",\"name\":\"pause\",\"value\":1}", &r), 0);
	ck_assert_str_eq(r.service, "payment-service");
	ck_assert_str_eq(r.name, "pause");
	ck_assert(!r.clear);
	ck_assert_int_eq(r.value, 1);
	ck_assert_int_eq(parse("{\"service\":\"p\",\"name\":\"fail_next\",\"value\":-3}", &r), 0);
	ck_assert_int_eq(r.value, -3); /* the daemon says what its range is */
	ck_assert_int_eq(parse("{\"service\":\"p\",\"name\":\"pause\",\"clear\":true}", &r), 0);
	ck_assert(r.clear);
	ck_assert_str_eq(r.name, "pause");
	ck_assert_int_eq(parse("{\"service\":\"p\",\"clear\":true}", &r), 0);
	ck_assert(r.clear);
	ck_assert_str_eq(r.name, "");
}
END_TEST

START_TEST(change_requests_refused)
{
	static const char *const bad[] = {
		"",
		"not json",
		"[]",
		"{}",
		"{\"name\":\"pause\",\"value\":1}",
		"{\"service\":\"\",\"name\":\"pause\",\"value\":1}",
		"{\"service\":1,\"name\":\"pause\",\"value\":1}",
		"{\"service\":\"p\",\"name\":\"Pause\",\"value\":1}",
		"{\"service\":\"p\",\"name\":\"../x\",\"value\":1}",
		"{\"service\":\"p\",\"name\":\"pause?x=1\",\"value\":1}",
		"{\"service\":\"p\",\"name\":\"\",\"value\":1}",
		"{\"service\":\"p\",\"name\":\"pause\"}",
		"{\"service\":\"p\",\"value\":1}",
		"{\"service\":\"p\",\"name\":\"pause\",\"value\":\"1\"}",
		"{\"service\":\"p\",\"name\":\"pause\",\"value\":1.5}",
		"{\"service\":\"p\",\"name\":\"pause\",\"value\":10000000000}",
		"{\"service\":\"p\",\"name\":\"pause\",\"value\":1,\"clear\":true}",
		"{\"service\":\"p\",\"name\":\"pause\",\"clear\":false}",
		"{\"service\":\"p\",\"name\":\"pause\",\"value\":1,\"extra\":0}",
		"{\"service\":\"p\",\"service\":\"q\",\"name\":\"pause\",\"value\":1}",
		"{\"service\":\"p\\u0000q\",\"name\":\"pause\",\"value\":1}",
		"{\"service\":"
		"\"pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp\","
		"\"name\":\"pause\",\"value\":1}",
	};
	struct console_fault_request r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(parse(bad[i], &r) == -1, "accepted: %s", bad[i]);
	/* A body with a NUL inside is not the object before it. */
	ck_assert_int_eq(console_fault_request_parse("{\"service\":\"p\",\"clear\":true}\0x", 33,
						     &r, (char[64]){0}, 64),
			 -1);
}
END_TEST

START_TEST(origin_must_be_the_console_by_a_local_name)
{
	ck_assert(console_origin_allowed("http://127.0.0.1:8085", "127.0.0.1:8085", "127.0.0.1"));
	ck_assert(console_origin_allowed("http://localhost:8085", "localhost:8085", "127.0.0.1"));
	ck_assert(console_origin_allowed("http://[::1]:8085", "[::1]:8085", "127.0.0.1"));
	ck_assert(console_origin_allowed("http://LOCALHOST:8085", "localhost:8085", NULL));
	/* The address the console is bound to is the console too. */
	ck_assert(console_origin_allowed("http://10.1.2.3:8085", "10.1.2.3:8085", "10.1.2.3"));
	/* No Origin (not a browser's page), another site, another port. */
	ck_assert(!console_origin_allowed(NULL, "127.0.0.1:8085", "127.0.0.1"));
	ck_assert(!console_origin_allowed("null", "127.0.0.1:8085", "127.0.0.1"));
	ck_assert(!console_origin_allowed("http://evil.example", "127.0.0.1:8085", "127.0.0.1"));
	ck_assert(!console_origin_allowed("http://127.0.0.1:9999", "127.0.0.1:8085", "127.0.0.1"));
	ck_assert(!console_origin_allowed("https://127.0.0.1:8085", "127.0.0.1:8085", "127.0.0.1"));
	ck_assert(!console_origin_allowed("http://127.0.0.1:8085", NULL, "127.0.0.1"));
	ck_assert(!console_origin_allowed("http://", "", "127.0.0.1"));
	/* DNS rebinding: Origin and Host agree, but on a name that is not
	 * this machine's. */
	ck_assert(!console_origin_allowed("http://evil.example:8085", "evil.example:8085",
					  "127.0.0.1"));
	ck_assert(!console_origin_allowed("http://127.0.0.1.evil.example:8085",
					  "127.0.0.1.evil.example:8085", "127.0.0.1"));
	/* A wildcard bind names no host. */
	ck_assert(!console_origin_allowed("http://evil.example:8085", "evil.example:8085",
					  "0.0.0.0"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tools.console.admin");
	TCase *tc = tcase_create("admin");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, named_urls_parsed);
	tcase_add_test(tc, named_urls_refused);
	tcase_add_test(tc, admin_url_is_port_plus_offset);
	tcase_add_test(tc, change_requests_parsed);
	tcase_add_test(tc, change_requests_refused);
	tcase_add_test(tc, origin_must_be_the_console_by_a_local_name);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
