/*
 * shopctl token: a bearer token for the front door (es/auth.h), signed with
 * the shop's key, for a customer or an operator.
 *
 *   TOKEN=$(shopctl token c-42)
 *   curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/orders
 *
 * A shop asks for tokens when its daemons have AUTH_JWT_KEY_FILE; the
 * token is signed with the same file (the shared secret for HS256, the
 * default), or with --key (the private key when the daemons hold the
 * public one, RS256 or ES256).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "es/auth.h"
#include "es/config.h"
#include "shopctl.h"

#define DEFAULT_TTL_S 86400
#define MAX_TTL_S (366L * 86400)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: shopctl token [--operator] [--ttl SECONDS] [--key FILE] [CUSTOMER_ID]\n"
		"\n"
		"Prints a bearer token (a JSON Web Token) for CUSTOMER_ID, or with\n"
		"--operator for the shop's operators (CUSTOMER_ID optional then), valid\n"
		"for --ttl seconds (default %d, one day). A customer's token lets its\n"
		"holder place orders as that customer and read and cancel that customer's\n"
		"orders; an operator's also opens every order and the daemons' diagnostic\n"
		"routes.\n"
		"\n"
		"  --key FILE  the signing key (default AUTH_JWT_KEY_FILE: the daemons'\n"
		"              shared secret); for RS256 or ES256 the private key\n"
		"\n"
		"Environment: AUTH_JWT_KEY_FILE, AUTH_JWT_ALG (default HS256), as for the\n"
		"daemons.\n"
		"\n"
		"Exit status: 0 printed, 1 no usable key, 2 bad command line.\n",
		DEFAULT_TTL_S);
}

int shopctl_cmd_token(int argc, char **argv)
{
	static const struct option opts[] = {
		{"operator", no_argument, NULL, 'o'},
		{"ttl", required_argument, NULL, 't'},
		{"key", required_argument, NULL, 'k'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *key = es_config_str("AUTH_JWT_KEY_FILE", NULL), *customer = NULL;
	bool as_operator = false;
	long long ttl = DEFAULT_TTL_S;
	char errstr[512];
	struct es_auth *auth;
	char *token;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			as_operator = true;
			break;
		case 't':
			if (es_parse_ll(optarg, 1, MAX_TTL_S, &ttl)) {
				shopctl_err("token: --ttl must be a whole number of seconds from 1 "
					    "to %ld",
					    MAX_TTL_S);
				return 2;
			}
			break;
		case 'k':
			key = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		customer = argv[optind++];
	if (optind < argc || (!as_operator && !customer)) {
		usage(stderr);
		return 2;
	}
	if (!key || !*key) {
		shopctl_err("token: no key: set AUTH_JWT_KEY_FILE (the daemons' key file) or "
			    "give --key FILE");
		return 1;
	}
	auth = es_auth_new(es_config_str("AUTH_JWT_ALG", "HS256"), key, errstr, sizeof(errstr));
	if (!auth) {
		shopctl_err("token: %s", errstr);
		return 1;
	}
	token = es_auth_issue(auth, as_operator ? ES_AUTH_OPERATOR : ES_AUTH_CUSTOMER, customer,
			      (long long)time(NULL), (long)ttl, errstr, sizeof(errstr));
	es_auth_free(auth);
	if (!token) {
		shopctl_err("token: %s", errstr);
		return 1;
	}
	printf("%s\n", token);
	free(token);
	return 0;
}
