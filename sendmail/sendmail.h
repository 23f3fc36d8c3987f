/*
 * sendmail.h - postern-sendmail's internal interfaces.
 *
 *   sendmail.c       options, addresses, submission over the control
 *                    socket, exit statuses (sysexits.h)
 *   sendmail_msg.c   the message: reading standard input, the header
 *                    (To/Cc/Bcc for -t, Bcc removed, From/Date/Message-ID
 *                    added when missing), CR LF line endings
 */
#ifndef POSTERN_SENDMAIL_H
#define POSTERN_SENDMAIL_H

#include <stddef.h>

/* A growable byte buffer (messages may be larger than msgbuf allows). */
struct sm_buf {
	char *data;
	size_t len;
	size_t cap;
};

/* A growable list of strings. */
struct sm_list {
	char **v;
	size_t n;
	size_t cap;
};

/* The message as read: its lines without their line ends. */
struct sm_text {
	struct sm_buf raw;      /* standard input, as read */
	struct sm_list lines;   /* pointers into a copy, one per line */
	char *store;            /* the copy the lines point into */
};

/* What the header needs from the command line. */
struct sm_hdr_opts {
	int extract;            /* -t: collect To, Cc, Bcc */
	const char *sender;     /* envelope sender ("" for <>) */
	const char *fullname;   /* -F, or NULL */
	const char *hostname;   /* for Message-ID */
};

/* sendmail_msg.c */
void sm_buf_add(struct sm_buf *b, const void *p, size_t n);
void sm_buf_free(struct sm_buf *b);
void sm_list_add(struct sm_list *l, char *s);
void sm_list_free(struct sm_list *l);
/* sm_read - standard input into t; a lone "." line ends it unless
 * ignore_dots; 0, or an EX_* status with *why set (NUL byte, too big) */
int sm_read(int fd, int ignore_dots, size_t max, struct sm_text *t,
    const char **why);
/* sm_build - the message to queue (CR LF) into out; with o->extract the
 * To/Cc/Bcc addresses are added to rcpts; 0, or sm_header_addrs' status
 * with *why when one of those fields is refused */
int sm_build(const struct sm_text *t, const struct sm_hdr_opts *o,
    struct sm_list *rcpts, struct sm_buf *out, const char **why);
/* sm_header_addrs - the addr-spec of each mailbox of an address list
 * header value ("local@domain", or "local" without a domain) appended to
 * out (common/addrlist.c: groups, display names, comments); 0, or with
 * *why EX_DATAERR (it does not parse) or EX_NOUSER (a source route) */
int sm_header_addrs(const char *value, struct sm_list *out, const char **why);
void sm_text_free(struct sm_text *t);

#endif
