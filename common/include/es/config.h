/*
 * config: environment variables with local defaults (twelve-factor).
 *
 * Every getter validates and, on failure, fills errstr with a message that
 * names the variable, so a daemon can refuse to start with a clear reason:
 *   HTTP_PORT: "80x" is not a whole number between 1 and 65535
 */
#ifndef ES_CONFIG_H
#define ES_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

/* Returns the variable's value, or def when unset or empty. Never NULL
 * unless def is NULL. The pointer is the environment's: do not free. */
const char *es_config_str(const char *name, const char *def);

/* Parses all of s as a decimal whole number in [min, max]: an optional
 * '-' and digits only (no blank, no '+', nothing after). The one number
 * parser of the daemons and the tools. Returns 0, or -1 (*out untouched). */
int es_parse_ll(const char *s, long long min, long long max, long long *out);

/* Reads a whole number in [min, max] (es_parse_ll). Returns 0, or -1
 * (errstr filled). */
int es_config_long(const char *name, long def, long min, long max, long *out, char *errstr,
		   size_t errstr_size);

/* Reads true/false/1/0/yes/no/on/off. Returns 0, or -1 (errstr filled). */
int es_config_bool(const char *name, bool def, bool *out, char *errstr, size_t errstr_size);

/* Reads a value that must be one of the NULL-terminated choices. */
int es_config_enum(const char *name, const char *def, const char *const *choices, const char **out,
		   char *errstr, size_t errstr_size);

/*
 * Copies every KAFKA_<NAME>=value from the environment into conf as the
 * librdkafka property <name> (lower case, '_' becomes '.'), e.g.
 * KAFKA_BOOTSTRAP_SERVERS -> bootstrap.servers, KAFKA_SASL_MECHANISMS ->
 * sasl.mechanisms. Unknown properties or bad values fail with errstr naming
 * the variable. Returns the number of properties set, or -1.
 */
int es_config_kafka_passthrough(rd_kafka_conf_t *conf, char *errstr, size_t errstr_size);

#endif
