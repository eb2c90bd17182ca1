/*
 * auth: who is calling. A caller proves who it is with a bearer token, a
 * JSON Web Token (RFC 7519) signed with the shop's key and verified with
 * libjwt (Debian's, on OpenSSL and jansson: no cryptography of our own).
 *
 *   Authorization: Bearer eyJhbGciOiJIUzI1NiIs...
 *
 * Claims the shop reads:
 *
 *   sub    the customerId, for a customer's token (required then)
 *   role   "customer" (the default) or "operator"
 *   exp    when the token expires, seconds since the epoch (required)
 *
 * One algorithm is accepted, the configured one (AUTH_JWT_ALG, HS256 by
 * default): a token naming another one is refused before any of its claims
 * is read, so "alg": "none" and algorithm confusion (an HS256 token
 * "signed" with an RS256 public key) never pass. The key (AUTH_JWT_KEY_FILE)
 * is the shared secret for HS256/384/512, the public key in PEM for
 * RS256/384/512 and ES256/384/512; a tool that issues tokens needs the
 * secret, or the private key.
 *
 * The daemons check tokens only when AUTH_JWT_KEY_FILE is set; without it
 * every route is open to everyone, which is for development only and is
 * said at start (es_service_init).
 */
#ifndef ES_AUTH_H
#define ES_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* The longest customerId a token may name (the contract's limit). */
#define ES_AUTH_SUBJECT_MAX 128

enum es_auth_role {
	ES_AUTH_ANYONE, /* no token was asked for (a public route, or auth is off) */
	ES_AUTH_CUSTOMER,
	ES_AUTH_OPERATOR,
};

/* Who a verified token says is calling. */
struct es_caller {
	enum es_auth_role role;
	char customer_id[ES_AUTH_SUBJECT_MAX + 1]; /* "" for an operator without sub */
};

struct es_auth; /* a verifier (or issuer): an algorithm and its key */

/*
 * A verifier for tokens of algorithm alg ("HS256", ...) with the key in
 * key_file (read once, now). Returns NULL with errstr filled: unknown or
 * "none" algorithm, unreadable or empty key file, a secret under 32 bytes
 * for HS*. Free with es_auth_free.
 */
struct es_auth *es_auth_new(const char *alg, const char *key_file, char *errstr,
			    size_t errstr_size);

/* The verifier the environment asks for (AUTH_JWT_KEY_FILE, AUTH_JWT_ALG):
 * *out NULL when AUTH_JWT_KEY_FILE is unset. Returns 0, or -1 with errstr
 * filled. */
int es_auth_from_env(struct es_auth **out, char *errstr, size_t errstr_size);

void es_auth_free(struct es_auth *auth);

/*
 * Verifies token (without "Bearer "): its algorithm, signature, expiry
 * (now: seconds since the epoch), role and subject. Returns 0 with *caller
 * filled, or -1 with why filled in words fit for a 401 ("the token has
 * expired", "the token's signature does not verify", ...). why never
 * holds the token.
 */
int es_auth_verify(const struct es_auth *auth, const char *token, long long now,
		   struct es_caller *caller, char *why, size_t why_size);

/*
 * Issues a token for role (customer_id required for a customer, optional
 * for an operator) valid for ttl_s seconds from now, signed with the key
 * (the secret, or the private key for RS and ES). Returns the token (free
 * with free()), or NULL with errstr filled.
 */
char *es_auth_issue(const struct es_auth *auth, enum es_auth_role role, const char *customer_id,
		    long long now, long ttl_s, char *errstr, size_t errstr_size);

#endif
