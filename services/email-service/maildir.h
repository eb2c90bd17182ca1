/*
 * maildir: delivery into a Maildir (the format of qmail, Dovecot, mutt).
 *
 * A message is written to tmp/<unique>, made durable, then renamed to
 * new/<name>; the rename is atomic, so a reader never sees half a message,
 * and it comes after the bytes are durable, so not after a power cut
 * either. new/ is fsync'd afterwards, so that the names survive one too.
 *
 * A batch's messages are staged in tmp/ one by one and published together
 * (email_maildir_publish), with two disk flushes however many they are:
 * one syncfs(2) for all their bytes and one fsync of new/ for all their
 * names. An fsync of each file would cost a flush per message, the most
 * expensive part of a delivery (docs/benchmarks.md). syncfs writes out
 * whatever else is waiting on the same filesystem too: a Maildir that
 * shares one with a busy database or broker is better given its own.
 *
 * The caller picks a deterministic name ("<orderId>.<template>.eml"): a
 * delivery repeated after a crash then replaces the same file instead of
 * adding a second copy of the email. (Once a mail reader has moved the file
 * on to cur/, a repeat lands in new/ again: the same Message-ID then lets
 * the reader see it as the same message.)
 */
#ifndef EMAIL_MAILDIR_H
#define EMAIL_MAILDIR_H

#include <stddef.h>

/* A file in tmp/ this much older than now (seconds) was left by a
 * delivery that was killed: the Maildir convention's 36 hours. */
#define EMAIL_MAILDIR_TMP_MAX_AGE (36 * 3600)

/*
 * Creates dir (and its parents) with tmp/, new/ and cur/ in it, where
 * missing, and removes what killed deliveries left in tmp/ (files older
 * than EMAIL_MAILDIR_TMP_MAX_AGE). Returns 0, or -1 with errstr naming the directory that could
 * not be made.
 */
int email_maildir_prepare(const char *dir, char *errstr, size_t errstr_size);

/* One message staged in tmp/, waiting for email_maildir_publish. */
struct email_maildir_file {
	char *tmp; /* dir/tmp/<unique> */
	char *dst; /* dir/new/<name> */
};

/*
 * The messages of a batch, staged and not yet published. Starts zeroed;
 * one per thread that delivers. fd is tmp/ opened with the first message
 * staged, valid while n > 0: syncfs reports through it the write-back
 * errors from that moment on, so a background write of a staged message
 * that failed is not missed.
 */
struct email_maildir_staged {
	struct email_maildir_file *files;
	size_t n, cap;
	int fd;
};

/*
 * Writes len bytes of message to dir/tmp/<unique>, to become dir/new/<name>
 * (replacing a file of that name) when s is published. name is a plain
 * file name (no '/', not starting with '.'). Nothing is durable yet.
 * Returns 0, or -1 with errstr filled (disk full, permissions: worth
 * retrying once fixed), leaving no file for this message in tmp/.
 */
int email_maildir_stage(struct email_maildir_staged *s, const char *dir, const char *name,
			const char *message, size_t len, char *errstr, size_t errstr_size);

/*
 * Publishes every message staged in s into dir/new, durably: one syncfs of
 * the Maildir's filesystem makes their bytes durable, each is renamed into
 * new/, and one fsync of new/ makes the names durable. Returns 0 once they
 * all are, or -1 with errstr filled; s is empty afterwards either way (what
 * was not published is removed from tmp/). Nothing staged: nothing done.
 */
int email_maildir_publish(struct email_maildir_staged *s, const char *dir, char *errstr,
			  size_t errstr_size);

/* Removes the messages staged in s from tmp/ (a batch that will not
 * commit) and empties s. */
void email_maildir_discard(struct email_maildir_staged *s);

#endif
