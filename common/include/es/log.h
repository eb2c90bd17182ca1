/*
 * log: one JSON object per line on stderr.
 *
 *   {"time":"2026-11-22T04:15:10.123Z","level":"info","service":"payment-service",
 *    "msg":"charged","orderId":"...","eventId":"...","traceId":"..."}
 *
 * Lines are written with a single write(2) so that lines from several
 * threads never interleave. librdkafka's own log lines are routed here by
 * the log callback that es_kafka_conf_new installs (see kafka.c).
 */
#ifndef ES_LOG_H
#define ES_LOG_H

#include <stdarg.h>

enum es_log_level {
	ES_LOG_DEBUG = 0,
	ES_LOG_INFO,
	ES_LOG_WARN,
	ES_LOG_ERROR,
};

/* The ids in hand when the line is written; any member may be NULL. */
struct es_log_ctx {
	const char *order_id;
	const char *event_id;
	const char *trace_id;
};

/* Sets the service name written on every line (copied) and the lowest
 * level written. Not thread-safe: call once at start. */
void es_log_init(const char *service, enum es_log_level min_level);

/* Parses "debug", "info", "warn", "error". Returns 0, or -1 if unknown. */
int es_log_level_parse(const char *s, enum es_log_level *out);

enum es_log_level es_log_min_level(void);

/* Redirects output to fd (default 2). Tests use it to capture lines. */
void es_log_set_fd(int fd);

/* Writes one line; ctx may be NULL. The message is printf-formatted and
 * JSON-escaped; it is cut at 4 KiB. */
void es_log(enum es_log_level level, const struct es_log_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void es_logv(enum es_log_level level, const struct es_log_ctx *ctx, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

#define es_debug(...) es_log(ES_LOG_DEBUG, NULL, __VA_ARGS__)
#define es_info(...) es_log(ES_LOG_INFO, NULL, __VA_ARGS__)
#define es_warn(...) es_log(ES_LOG_WARN, NULL, __VA_ARGS__)
#define es_error(...) es_log(ES_LOG_ERROR, NULL, __VA_ARGS__)

#endif
