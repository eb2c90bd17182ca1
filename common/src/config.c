#include "es/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char **environ;

const char *es_config_str(const char *name, const char *def)
{
	const char *v = getenv(name);

	return (v && *v) ? v : def;
}

int es_parse_ll(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	/* strtoll skips leading blanks and takes a '+': a value written by
	 * a person or a program must not need either. */
	if (!s || !(isdigit((unsigned char)*s) || (*s == '-' && isdigit((unsigned char)s[1]))))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int es_config_long(const char *name, long def, long min, long max, long *out, char *errstr,
		   size_t errstr_size)
{
	const char *v = es_config_str(name, NULL);
	long long n;

	if (!v) {
		*out = def;
		return 0;
	}
	if (es_parse_ll(v, min, max, &n)) {
		snprintf(errstr, errstr_size,
			 "%s: \"%s\" is not a whole number between %ld and %ld", name, v, min, max);
		return -1;
	}
	*out = (long)n;
	return 0;
}

int es_config_bool(const char *name, bool def, bool *out, char *errstr, size_t errstr_size)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};
	const char *v = es_config_str(name, NULL);

	if (!v) {
		*out = def;
		return 0;
	}
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(v, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(v, no[i])) {
			*out = false;
			return 0;
		}
	}
	snprintf(errstr, errstr_size, "%s: \"%s\" is not a boolean (use true or false)", name, v);
	return -1;
}

int es_config_enum(const char *name, const char *def, const char *const *choices, const char **out,
		   char *errstr, size_t errstr_size)
{
	const char *v = es_config_str(name, def);
	size_t used = 0;

	for (size_t i = 0; choices[i]; i++) {
		if (v && !strcmp(v, choices[i])) {
			*out = choices[i];
			return 0;
		}
	}
	used = (size_t)snprintf(errstr, errstr_size, "%s: \"%s\" is not one of:", name, v ? v : "");
	for (size_t i = 0; choices[i] && used < errstr_size; i++)
		used += (size_t)snprintf(errstr + used, errstr_size - used, " %s", choices[i]);
	return -1;
}

int es_config_kafka_passthrough(rd_kafka_conf_t *conf, char *errstr, size_t errstr_size)
{
	static const char prefix[] = "KAFKA_";
	int count = 0;

	for (char **env = environ; env && *env; env++) {
		const char *eq = strchr(*env, '=');
		char prop[256];
		char why[256];
		size_t len;

		if (strncmp(*env, prefix, sizeof(prefix) - 1) || !eq)
			continue;
		len = (size_t)(eq - *env) - (sizeof(prefix) - 1);
		if (len == 0 || len >= sizeof(prop))
			continue;
		for (size_t i = 0; i < len; i++) {
			char c = (*env)[sizeof(prefix) - 1 + i];

			prop[i] = c == '_' ? '.' : (char)tolower((unsigned char)c);
		}
		prop[len] = '\0';
		if (rd_kafka_conf_set(conf, prop, eq + 1, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
			snprintf(errstr, errstr_size, "%.*s: %s", (int)(eq - *env), *env, why);
			return -1;
		}
		count++;
	}
	return count;
}
