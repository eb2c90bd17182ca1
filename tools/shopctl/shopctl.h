/*
 * shopctl: eventshop's command-line tool. One file per command
 * (topics.c, place.c, follow.c, dlq.c, outbox.c, rebuild.c, watch.c with its
 * parts watch_*.c), the HTTP client in httpc.c, reading topics with es/reader.h,
 * and what they share here (util.c).
 *
 * Every command is `int shopctl_cmd_<name>(int argc, char **argv)` with
 * argv[0] the command's name, and returns the process's exit status:
 */
#ifndef SHOPCTL_H
#define SHOPCTL_H

#include "es/auth.h"

/* How long the tokens shopctl makes for its own requests are valid (it
 * makes them when AUTH_JWT_KEY_FILE is set: es_auth_header_from_env). */
#define SHOPCTL_TOKEN_TTL_S 300

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

enum shopctl_exit {
	SHOPCTL_OK = 0, /* done */
	SHOPCTL_FAIL = 1, /* tried and failed: the message says why */
	SHOPCTL_USAGE = 2, /* the command line was wrong: nothing was tried */
};

int shopctl_cmd_create_topics(int argc, char **argv);
int shopctl_cmd_create_acls(int argc, char **argv);
int shopctl_cmd_place(int argc, char **argv);
int shopctl_cmd_follow(int argc, char **argv);
int shopctl_cmd_dlq(int argc, char **argv);
int shopctl_cmd_outbox(int argc, char **argv);
int shopctl_cmd_token(int argc, char **argv);
int shopctl_cmd_rebuild_analytics(int argc, char **argv);
int shopctl_cmd_watch(int argc, char **argv);
int shopctl_cmd_faults(int argc, char **argv);

/* Writes "shopctl: <message>\n" to stderr. */
void shopctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Writes "shopctl <cmd>: <message>\n" and "try 'shopctl <cmd> --help'" to
 * stderr and returns SHOPCTL_USAGE, so that a command can
 * `return shopctl_usage_error(...)`.
 */
int shopctl_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* true when s is "--help" or "-h". */
bool shopctl_is_help(const char *s);

/* KAFKA_BOOTSTRAP_SERVERS, default 127.0.0.1:9092. */
const char *shopctl_bootstrap(void);

/* A client for admin requests (create-topics, create-acls), configured as
 * the daemons' are (KAFKA_*); NULL with the reason printed. */
rd_kafka_t *shopctl_admin_client(const char *bootstrap);
/* The answer to an admin request on q, waited for up to 60 s; NULL with
 * the reason printed when none came or it is an error. The caller
 * destroys it. */
rd_kafka_event_t *shopctl_admin_result(rd_kafka_queue_t *q, const char *bootstrap);

enum shopctl_escape_flags {
	SHOPCTL_ESC_MULTILINE = (1 << 0), /* keep newlines and tabs as they are */
};

/*
 * Writes len bytes of buf to f so that a terminal shows them safely, the one
 * way shopctl shows bytes it did not write itself. Valid UTF-8 is written as
 * is, except control characters: C0 ones and DEL become \n \t \r or \xNN
 * (newlines and tabs stay with SHOPCTL_ESC_MULTILINE), C1 ones (U+0080 to
 * U+009F, which some terminals obey like ESC) \xc2\xNN. Bytes that are not
 * valid UTF-8 make the whole buffer escaped: every byte outside printable
 * ASCII becomes \xNN and a backslash \\. When cols is not NULL, *cols is
 * set to the columns written, for padding: one per character, an escape
 * counting its characters (a kept newline or tab counts one, and so does a
 * wide character: rare in events).
 * Returns true when buf was valid UTF-8 (written unescaped but for control
 * characters).
 */
bool shopctl_print_escaped(FILE *f, const void *buf, size_t len, int flags, size_t *cols);

/*
 * The length in bytes of the first n characters of buf (all of it when it
 * has fewer), so that a cut falls between characters: of its first n bytes
 * when buf is not valid UTF-8, as shopctl_print_escaped then writes every
 * byte on its own.
 */
size_t shopctl_utf8_prefix(const void *buf, size_t len, size_t n);

/* true when buf is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool shopctl_utf8_valid(const void *buf, size_t len);

#endif
