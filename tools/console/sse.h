/*
 * sse: Server-Sent Events framing (the WHATWG HTML "text/event-stream"
 * format), apart from the console so that it can be tested on its own.
 *
 * An event is "id: ...", "event: ...", one "data: ..." line per line of
 * its data, and an empty line; a line starting with ':' is a comment,
 * which browsers ignore (a keep-alive that stops proxies and the server's
 * own idle timeout from closing a quiet stream).
 *
 * Event ids are "<boot>.<seq>": boot names one run of the console (it
 * changes at every start), seq counts the events of that run. A page that
 * reconnects sends the last id it saw as Last-Event-ID; the same boot
 * means "go on after seq", another one means the console restarted and
 * the page gets everything the console holds again (it drops what it has
 * already drawn by topic, partition and offset).
 */
#ifndef CONSOLE_SSE_H
#define CONSOLE_SSE_H

#include <stdbool.h>
#include <stddef.h>

#define CONSOLE_SSE_BOOT_LEN 16 /* characters of a boot id, [0-9a-f] */

/*
 * One event: id and event may be NULL (left out) and may not contain CR
 * or LF; data (len bytes, any content) is split at CRLF, CR and LF into
 * data lines, so that a newline in it can never end the event early.
 * Returns the frame (malloc'd, NUL-terminated; *out_len its length), or
 * NULL when an id or event has a line break, or out of memory.
 */
char *console_sse_event(const char *id, const char *event, const char *data, size_t len,
			size_t *out_len);

/* A comment ": text" (line breaks in text become spaces) followed by the
 * empty line. Returns it malloc'd, or NULL when out of memory. */
char *console_sse_comment(const char *text, size_t *out_len);

/* Writes "<boot>.<seq>" into buf. */
void console_sse_id(char *buf, size_t size, const char *boot, unsigned long long seq);

/*
 * Reads a Last-Event-ID. Returns true with *seq set when it is an id of
 * this boot; false for anything else (absent, malformed, another boot).
 */
bool console_sse_resume_after(const char *last_event_id, const char *boot, unsigned long long *seq);

#endif
