/*
 * maildir: delivery into a Maildir (the format of qmail, Dovecot, mutt).
 *
 * A message is written to tmp/<unique>, fsync'd, then renamed to
 * new/<name>; the rename is atomic, so a reader never sees half a message.
 * new/ is fsync'd afterwards (email_maildir_sync), once for any number of
 * deliveries, so that they survive a power cut.
 * The caller picks a deterministic name ("<orderId>.<template>.eml"): a
 * delivery repeated after a crash then replaces the same file instead of
 * adding a second copy of the email. (Once a mail reader has moved the file
 * on to cur/, a repeat lands in new/ again: the same Message-ID then lets
 * the reader see it as the same message.)
 */
#ifndef EMAIL_MAILDIR_H
#define EMAIL_MAILDIR_H

#include <stddef.h>

/*
 * Creates dir (and its parents) with tmp/, new/ and cur/ in it, where
 * missing. Returns 0, or -1 with errstr naming the directory that could
 * not be made.
 */
int email_maildir_prepare(const char *dir, char *errstr, size_t errstr_size);

/*
 * Delivers len bytes of message as dir/new/<name>, replacing a file of that
 * name. name is a plain file name (no '/', not starting with '.'). Returns
 * 0 once the message is in new/ (its bytes durable, its name durable only
 * after email_maildir_sync), or -1 with errstr filled (disk full,
 * permissions: worth retrying once fixed); no file is left in tmp/.
 */
int email_maildir_deliver(const char *dir, const char *name, const char *message, size_t len,
			  char *errstr, size_t errstr_size);

/* Makes the deliveries into dir/new so far durable (fsync of the
 * directory). Returns 0, or -1 with errstr filled. */
int email_maildir_sync(const char *dir, char *errstr, size_t errstr_size);

#endif
