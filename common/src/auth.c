#include "es/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>

#include "es/config.h"

/* RFC 7518 asks an HMAC key to be at least as long as the hash. */
#define HMAC_KEY_MIN 32
#define KEY_FILE_MAX (64 * 1024)

struct es_auth {
	jwt_alg_t alg;
	unsigned char *key;
	size_t key_len;
};

static bool is_hmac(jwt_alg_t alg)
{
	return alg == JWT_ALG_HS256 || alg == JWT_ALG_HS384 || alg == JWT_ALG_HS512;
}

/* Reads a whole small file; NULL with errstr filled. */
static unsigned char *read_key(const char *path, size_t *len, char *errstr, size_t errstr_size)
{
	unsigned char *buf = NULL;
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		snprintf(errstr, errstr_size, "cannot read the key file %s: %s", path,
			 strerror(errno));
		return NULL;
	}
	buf = malloc(KEY_FILE_MAX + 1);
	if (!buf) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	n = fread(buf, 1, KEY_FILE_MAX + 1, f);
	if (ferror(f) || n == 0 || n > KEY_FILE_MAX) {
		snprintf(errstr, errstr_size, "the key file %s is %s", path,
			 n == 0		    ? "empty"
			 : n > KEY_FILE_MAX ? "too large"
					    : "unreadable");
		free(buf);
		buf = NULL;
		goto out;
	}
	/* A secret written with echo ends in a newline that is not part of it. */
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	*len = n;
out:
	fclose(f);
	return buf;
}

struct es_auth *es_auth_new(const char *alg, const char *key_file, char *errstr, size_t errstr_size)
{
	struct es_auth *auth;
	jwt_alg_t a = alg ? jwt_str_alg(alg) : JWT_ALG_INVAL;

	if (a == JWT_ALG_INVAL || a == JWT_ALG_NONE) {
		snprintf(errstr, errstr_size,
			 "AUTH_JWT_ALG: \"%s\" is not one of HS256, HS384, HS512, RS256, RS384, "
			 "RS512, ES256, ES384, ES512",
			 alg ? alg : "");
		return NULL;
	}
	auth = calloc(1, sizeof(*auth));
	if (!auth) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	auth->alg = a;
	auth->key = read_key(key_file, &auth->key_len, errstr, errstr_size);
	if (!auth->key) {
		free(auth);
		return NULL;
	}
	if (is_hmac(a) && auth->key_len < HMAC_KEY_MIN) {
		snprintf(errstr, errstr_size,
			 "the %s secret in %s is %zu bytes; it must be at least %d", alg, key_file,
			 auth->key_len, HMAC_KEY_MIN);
		es_auth_free(auth);
		return NULL;
	}
	return auth;
}

int es_auth_from_env(struct es_auth **out, char *errstr, size_t errstr_size)
{
	const char *file = es_config_str("AUTH_JWT_KEY_FILE", NULL);

	*out = NULL;
	if (!file || !*file)
		return 0;
	*out = es_auth_new(es_config_str("AUTH_JWT_ALG", "HS256"), file, errstr, errstr_size);
	return *out ? 0 : -1;
}

void es_auth_free(struct es_auth *auth)
{
	if (!auth)
		return;
	if (auth->key) {
		/* The secret does not stay behind in freed memory. */
		explicit_bzero(auth->key, auth->key_len);
		free(auth->key);
	}
	free(auth);
}

int es_auth_verify(const struct es_auth *auth, const char *token, long long now,
		   struct es_caller *caller, char *why, size_t why_size)
{
	jwt_t *jwt = NULL;
	const char *role, *sub;
	long exp;
	int result = -1;

	memset(caller, 0, sizeof(*caller));
	if (!token || !*token || strlen(token) > 8192) {
		snprintf(why, why_size, "the token is missing or too long");
		return -1;
	}
	if (jwt_decode(&jwt, token, auth->key, (int)auth->key_len) || !jwt) {
		snprintf(why, why_size, "the token is malformed or its signature does not verify");
		goto out;
	}
	/* Before anything else: a token of another algorithm proves nothing,
	 * whatever libjwt made of it. */
	if (jwt_get_alg(jwt) != auth->alg) {
		snprintf(why, why_size, "the token is signed with %s; this shop accepts only %s",
			 jwt_alg_str(jwt_get_alg(jwt)) ? jwt_alg_str(jwt_get_alg(jwt)) : "none",
			 jwt_alg_str(auth->alg));
		goto out;
	}
	errno = 0;
	exp = jwt_get_grant_int(jwt, "exp");
	if (errno == ENOENT) {
		snprintf(why, why_size, "the token has no expiry (exp)");
		goto out;
	}
	if (exp <= now) {
		snprintf(why, why_size, "the token has expired");
		goto out;
	}
	role = jwt_get_grant(jwt, "role");
	sub = jwt_get_grant(jwt, "sub");
	if (!role || !strcmp(role, "customer")) {
		caller->role = ES_AUTH_CUSTOMER;
		if (!sub || !*sub) {
			snprintf(why, why_size, "a customer's token must name the customer (sub)");
			goto out;
		}
	} else if (!strcmp(role, "operator")) {
		caller->role = ES_AUTH_OPERATOR;
	} else {
		snprintf(why, why_size, "the token's role is neither customer nor operator");
		goto out;
	}
	if (sub && strlen(sub) > ES_AUTH_SUBJECT_MAX) {
		snprintf(why, why_size, "the token's subject is over %d characters",
			 ES_AUTH_SUBJECT_MAX);
		goto out;
	}
	snprintf(caller->customer_id, sizeof(caller->customer_id), "%s", sub ? sub : "");
	result = 0;
out:
	if (result)
		memset(caller, 0, sizeof(*caller));
	jwt_free(jwt);
	return result;
}

char *es_auth_issue(const struct es_auth *auth, enum es_auth_role role, const char *customer_id,
		    long long now, long ttl_s, char *errstr, size_t errstr_size)
{
	jwt_t *jwt = NULL;
	char *token = NULL;

	if (role == ES_AUTH_CUSTOMER && (!customer_id || !*customer_id)) {
		snprintf(errstr, errstr_size, "a customer's token needs a customerId");
		return NULL;
	}
	if (customer_id && strlen(customer_id) > ES_AUTH_SUBJECT_MAX) {
		snprintf(errstr, errstr_size, "a customerId is at most %d characters",
			 ES_AUTH_SUBJECT_MAX);
		return NULL;
	}
	if (jwt_new(&jwt) ||
	    (customer_id && *customer_id && jwt_add_grant(jwt, "sub", customer_id)) ||
	    jwt_add_grant(jwt, "role", role == ES_AUTH_OPERATOR ? "operator" : "customer") ||
	    jwt_add_grant(jwt, "iss", "eventshop") || jwt_add_grant_int(jwt, "iat", (long)now) ||
	    jwt_add_grant_int(jwt, "exp", (long)(now + ttl_s)) ||
	    jwt_set_alg(jwt, auth->alg, auth->key, (int)auth->key_len)) {
		snprintf(errstr, errstr_size,
			 "cannot make the token (is the key a %s signing key?)",
			 jwt_alg_str(auth->alg));
		goto out;
	}
	token = jwt_encode_str(jwt);
	if (!token) {
		snprintf(errstr, errstr_size, "cannot sign the token with this key (%s needs %s)",
			 jwt_alg_str(auth->alg),
			 is_hmac(auth->alg) ? "the shared secret" : "the private key");
		goto out;
	}
out:
	jwt_free(jwt);
	return token; /* libjwt's, from malloc() */
}
