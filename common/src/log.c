#include "es/log.h"

#include "es/envelope.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

static char log_service[64] = "eventshop";
static enum es_log_level log_min = ES_LOG_INFO;
static int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void es_log_init(const char *service, enum es_log_level min_level)
{
	snprintf(log_service, sizeof(log_service), "%s", service ? service : "eventshop");
	log_min = min_level;
}

int es_log_level_parse(const char *s, enum es_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (s && !strcmp(s, level_names[i])) {
			*out = (enum es_log_level)i;
			return 0;
		}
	}
	return -1;
}

enum es_log_level es_log_min_level(void)
{
	return log_min;
}

void es_log_set_fd(int fd)
{
	log_fd = fd;
}

void es_logv(enum es_log_level level, const struct es_log_ctx *ctx, const char *fmt, va_list ap)
{
	char msg[4096];
	char when[ES_TIME_LEN + 1];
	json_t *line;
	char *text;
	int saved_errno = errno;

	if (level < log_min || level > ES_LOG_ERROR)
		return;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	es_time_now(when);

	/* jansson does the escaping; insertion order keeps "time" first. */
	line = json_pack("{s:s, s:s, s:s, s:s}", "time", when, "level", level_names[level],
			 "service", log_service, "msg", msg);
	if (!line) {
		/* Invalid UTF-8 in the message: say so rather than lose the line. */
		line = json_pack("{s:s, s:s, s:s, s:s}", "time", when, "level", level_names[level],
				 "service", log_service, "msg",
				 "(log message was not valid UTF-8)");
	}
	if (line && ctx) {
		if (ctx->order_id)
			json_object_set_new(line, "orderId", json_string(ctx->order_id));
		if (ctx->event_id)
			json_object_set_new(line, "eventId", json_string(ctx->event_id));
		if (ctx->trace_id)
			json_object_set_new(line, "traceId", json_string(ctx->trace_id));
	}
	text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (text) {
		size_t len = strlen(text);

		/* One write per line: append the newline in place. */
		char *out = realloc(text, len + 2);
		if (out) {
			out[len] = '\n';
			out[len + 1] = '\0';
			if (write(log_fd, out, len + 1) < 0) {
				/* Nowhere left to report a failing stderr. */
			}
			free(out);
		} else {
			free(text);
		}
	}
	json_decref(line);
	errno = saved_errno;
}

void es_log(enum es_log_level level, const struct es_log_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	es_logv(level, ctx, fmt, ap);
	va_end(ap);
}
