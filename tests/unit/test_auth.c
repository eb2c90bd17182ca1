/*
 * Unit tests for auth: tokens issued and verified; every way a token can
 * be wrong (expired, forged, "alg": "none", another algorithm than the
 * configured one, algorithm confusion with an RSA public key used as an
 * HMAC secret, missing claims, garbage) refused with a reason; keys that
 * cannot serve refused at start. The RSA key pair is made by OpenSSL for
 * each run, into a temporary directory: no key lives in the repository.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <jwt.h>

#include "es/auth.h"

static char dir[64], secret_file[128], short_file[128], rsa_private[128], rsa_public[128];
static const long long NOW = 1800000000;

/* Outside the tests (main's set-up) as well as in them: no ck_assert. */
static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static int write_pem(const char *path, EVP_PKEY *key, bool private)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f)
		return -1;
	ok = private ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
		     : PEM_write_PUBKEY(f, key);
	return fclose(f) || ok != 1 ? -1 : 0;
}

static int make_keys(void)
{
	EVP_PKEY *key = EVP_RSA_gen(2048);
	int rc;

	if (!key)
		return -1;
	rc = write_pem(rsa_private, key, true) || write_pem(rsa_public, key, false) ? -1 : 0;
	EVP_PKEY_free(key);
	return rc;
}

static struct es_auth *auth_new(const char *alg, const char *file)
{
	char err[256];
	struct es_auth *a = es_auth_new(alg, file, err, sizeof(err));

	ck_assert_msg(a != NULL, "%s", err);
	return a;
}

/* base64url without padding, as JWTs have it. */
static void b64url(const char *in, char *out, size_t size)
{
	unsigned char buf[1024];
	int n = EVP_EncodeBlock(buf, (const unsigned char *)in, (int)strlen(in));
	size_t j = 0;

	for (int i = 0; i < n && j + 1 < size; i++) {
		if (buf[i] == '=')
			break;
		out[j++] = buf[i] == '+' ? '-' : buf[i] == '/' ? '_' : (char)buf[i];
	}
	out[j] = '\0';
}

/* A token put together by hand: header and claims as given, the signature
 * as given (base64url already), as an attacker would write one. */
static char *hand_made(const char *header, const char *claims, const char *signature)
{
	char h[512], c[512];
	char *t = malloc(1200);

	b64url(header, h, sizeof(h));
	b64url(claims, c, sizeof(c));
	snprintf(t, 1200, "%s.%s.%s", h, c, signature);
	return t;
}

/* Expects token to be refused by auth, with a reason containing want. */
static void refused(const struct es_auth *auth, const char *token, const char *want)
{
	struct es_caller caller;
	char why[256] = "";

	ck_assert_int_eq(es_auth_verify(auth, token, NOW, &caller, why, sizeof(why)), -1);
	ck_assert_msg(strstr(why, want), "refused for \"%s\", expected \"%s\"", why, want);
	ck_assert_int_eq(caller.role, ES_AUTH_ANYONE);
	ck_assert_str_eq(caller.customer_id, "");
	/* The reason never quotes the token. */
	if (*token)
		ck_assert_ptr_null(strstr(why, token));
}

START_TEST(issued_tokens_verify_with_their_role_and_customer)
{
	struct es_auth *auth = auth_new("HS256", secret_file);
	struct es_caller caller;
	char err[256], why[256];
	char *customer, *op;

	customer = es_auth_issue(auth, ES_AUTH_CUSTOMER, "c-42", NOW, 60, err, sizeof(err));
	op = es_auth_issue(auth, ES_AUTH_OPERATOR, NULL, NOW, 60, err, sizeof(err));
	ck_assert_ptr_nonnull(customer);
	ck_assert_ptr_nonnull(op);
	ck_assert_int_eq(es_auth_verify(auth, customer, NOW + 59, &caller, why, sizeof(why)), 0);
	ck_assert_int_eq(caller.role, ES_AUTH_CUSTOMER);
	ck_assert_str_eq(caller.customer_id, "c-42");
	ck_assert_int_eq(es_auth_verify(auth, op, NOW, &caller, why, sizeof(why)), 0);
	ck_assert_int_eq(caller.role, ES_AUTH_OPERATOR);
	ck_assert_str_eq(caller.customer_id, "");
	/* A customer's token without a customer is not made. */
	ck_assert_ptr_null(es_auth_issue(auth, ES_AUTH_CUSTOMER, "", NOW, 60, err, sizeof(err)));
	free(customer);
	free(op);
	es_auth_free(auth);
}
END_TEST

START_TEST(expired_and_forged_tokens_are_refused)
{
	struct es_auth *auth = auth_new("HS256", secret_file);
	struct es_auth *other;
	char err[256], other_file[160];
	char *old, *forged, *tampered;

	old = es_auth_issue(auth, ES_AUTH_CUSTOMER, "c-1", NOW - 120, 60, err, sizeof(err));
	refused(auth, old, "expired");
	/* Signed with another secret. */
	snprintf(other_file, sizeof(other_file), "%s/other", dir);
	ck_assert_int_eq(write_file(other_file,
				    "another secret of more than thirty-two bytes, not the shop's"),
			 0);
	other = auth_new("HS256", other_file);
	forged = es_auth_issue(other, ES_AUTH_OPERATOR, NULL, NOW, 60, err, sizeof(err));
	refused(auth, forged, "signature");
	/* A real token with its claims changed (another customer). */
	tampered = es_auth_issue(auth, ES_AUTH_CUSTOMER, "c-1", NOW, 60, err, sizeof(err));
	{
		char claims[256], *dot1 = strchr(tampered, '.'), *dot2 = strrchr(tampered, '.');
		char *t;

		b64url("{\"sub\":\"c-2\",\"exp\":1900000000}", claims, sizeof(claims));
		t = malloc(strlen(tampered) + strlen(claims) + 1);
		snprintf(t, strlen(tampered) + strlen(claims) + 1, "%.*s.%s%s",
			 (int)(dot1 - tampered), tampered, claims, dot2);
		refused(auth, t, "signature");
		free(t);
	}
	free(old);
	free(forged);
	free(tampered);
	unlink(other_file);
	es_auth_free(other);
	es_auth_free(auth);
}
END_TEST

START_TEST(alg_none_and_other_algorithms_are_refused)
{
	struct es_auth *hs = auth_new("HS256", secret_file);
	struct es_auth *hs512 = auth_new("HS512", secret_file);
	char err[256];
	char *none, *none_sig, *other_alg;

	none = hand_made("{\"alg\":\"none\",\"typ\":\"JWT\"}",
			 "{\"sub\":\"c-1\",\"role\":\"operator\",\"exp\":1900000000}", "");
	refused(hs, none, "");
	none_sig = hand_made("{\"alg\":\"none\"}", "{\"sub\":\"c-1\",\"exp\":1900000000}", "AAAA");
	refused(hs, none_sig, "");
	/* Right secret, wrong algorithm: refused all the same. */
	other_alg = es_auth_issue(hs512, ES_AUTH_CUSTOMER, "c-1", NOW, 60, err, sizeof(err));
	ck_assert_ptr_nonnull(other_alg);
	refused(hs, other_alg, "accepts only HS256");
	free(none);
	free(none_sig);
	free(other_alg);
	es_auth_free(hs);
	es_auth_free(hs512);
}
END_TEST

START_TEST(rsa_public_key_used_as_hmac_secret_is_refused)
{
	struct es_auth *rs = auth_new("RS256", rsa_public);
	struct es_auth *signer = auth_new("RS256", rsa_private);
	struct es_auth *confused = auth_new("HS256", rsa_public);
	struct es_caller caller;
	char err[256], why[256];
	char *good, *attack;

	/* The private key signs, the public one verifies. */
	good = es_auth_issue(signer, ES_AUTH_CUSTOMER, "c-7", NOW, 60, err, sizeof(err));
	ck_assert_msg(good != NULL, "%s", err);
	ck_assert_int_eq(es_auth_verify(rs, good, NOW, &caller, why, sizeof(why)), 0);
	ck_assert_str_eq(caller.customer_id, "c-7");
	/* The attacker knows the public key and "signs" with HMAC over it. */
	attack = es_auth_issue(confused, ES_AUTH_OPERATOR, NULL, NOW, 60, err, sizeof(err));
	ck_assert_ptr_nonnull(attack);
	refused(rs, attack, "accepts only RS256");
	free(good);
	free(attack);
	es_auth_free(rs);
	es_auth_free(signer);
	es_auth_free(confused);
}
END_TEST

/* A token with exactly the claims given (JSON), well signed with the
 * shop's secret: only its claims can be wrong. */
static char *signed_claims(const char *claims)
{
	static const char secret[] = "a shop's secret of more than thirty-two bytes";
	jwt_t *jwt = NULL;
	char *t;

	ck_assert_int_eq(jwt_new(&jwt), 0);
	ck_assert_int_eq(jwt_add_grants_json(jwt, claims), 0);
	ck_assert_int_eq(
		jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)),
		0);
	t = jwt_encode_str(jwt);
	jwt_free(jwt);
	ck_assert_ptr_nonnull(t);
	return t;
}

START_TEST(tokens_without_the_claims_the_shop_needs_are_refused)
{
	static const struct {
		const char *claims;
		const char *why;
	} cases[] = {
		{"{\"sub\":\"c-1\"}", "no expiry"},
		{"{\"exp\":1900000000}", "must name the customer"},
		{"{\"sub\":\"c-1\",\"role\":\"admin\",\"exp\":1900000000}", "role"},
		{"{\"sub\":\"c-1\",\"exp\":1700000000}", "expired"},
	};
	struct es_auth *auth = auth_new("HS256", secret_file);
	char *t;

	/* The secret file's newline is not part of the secret: a token made
	 * with the bare secret verifies. */
	t = signed_claims("{\"sub\":\"c-1\",\"exp\":1900000000}");
	{
		struct es_caller caller;
		char why[256];

		ck_assert_int_eq(es_auth_verify(auth, t, NOW, &caller, why, sizeof(why)), 0);
	}
	free(t);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		t = signed_claims(cases[i].claims);
		refused(auth, t, cases[i].why);
		free(t);
	}
	refused(auth, "", "missing");
	refused(auth, "not.a.token", "malformed");
	refused(auth, "eyJhbGciOiJIUzI1NiJ9", "malformed");
	es_auth_free(auth);
}
END_TEST

START_TEST(keys_that_cannot_serve_are_refused_at_start)
{
	char err[256];

	ck_assert_ptr_null(es_auth_new("none", secret_file, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "AUTH_JWT_ALG"));
	ck_assert_ptr_null(es_auth_new("HS1", secret_file, err, sizeof(err)));
	ck_assert_ptr_null(es_auth_new("HS256", short_file, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "at least 32"));
	ck_assert_ptr_null(es_auth_new("HS256", "/nonexistent/key", err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/key"));
	/* The environment: no file, no verifier (and no error). */
	{
		struct es_auth *a = (struct es_auth *)1;

		unsetenv("AUTH_JWT_KEY_FILE");
		ck_assert_int_eq(es_auth_from_env(&a, err, sizeof(err)), 0);
		ck_assert_ptr_null(a);
		setenv("AUTH_JWT_KEY_FILE", secret_file, 1);
		setenv("AUTH_JWT_ALG", "HS384", 1);
		ck_assert_int_eq(es_auth_from_env(&a, err, sizeof(err)), 0);
		ck_assert_ptr_nonnull(a);
		es_auth_free(a);
		unsetenv("AUTH_JWT_KEY_FILE");
		unsetenv("AUTH_JWT_ALG");
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	snprintf(dir, sizeof(dir), "/tmp/es-auth-XXXXXX");
	if (!mkdtemp(dir))
		return EXIT_FAILURE;
	snprintf(secret_file, sizeof(secret_file), "%s/secret", dir);
	snprintf(short_file, sizeof(short_file), "%s/short", dir);
	snprintf(rsa_private, sizeof(rsa_private), "%s/rsa.pem", dir);
	snprintf(rsa_public, sizeof(rsa_public), "%s/rsa.pub", dir);
	if (write_file(secret_file, "a shop's secret of more than thirty-two bytes\n") ||
	    write_file(short_file, "too short") || make_keys()) {
		fprintf(stderr, "auth: cannot write the test's keys into %s\n", dir);
		return EXIT_FAILURE;
	}
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, issued_tokens_verify_with_their_role_and_customer);
	tcase_add_test(tc, expired_and_forged_tokens_are_refused);
	tcase_add_test(tc, alg_none_and_other_algorithms_are_refused);
	tcase_add_test(tc, rsa_public_key_used_as_hmac_secret_is_refused);
	tcase_add_test(tc, tokens_without_the_claims_the_shop_needs_are_refused);
	tcase_add_test(tc, keys_that_cannot_serve_are_refused_at_start);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	unlink(secret_file);
	unlink(short_file);
	unlink(rsa_private);
	unlink(rsa_public);
	rmdir(dir);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
