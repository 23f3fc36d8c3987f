/*
 * mime.h - building messages with GMime 3, for the processes that compose
 * mail (httpd: the send API; queued: delivery status notifications), and
 * reading a message's header fields (httpd: the status page's queue
 * browser).
 * Only they include this header and link GMime (delivery links it too,
 * to read messages); smtpd, postern-sendmail, the master and posternctl
 * do not.
 *
 * STANDARDS: RFC 2045, RFC 2046 (parts, multiparts, boundaries), RFC 5322
 * (CR LF line ends on the wire and in the spool).
 */
#ifndef POSTERN_MIME_H
#define POSTERN_MIME_H

#include <stddef.h>

#include <gmime/gmime.h>

/* mime_setup - initialise GMime once per process */
void mime_setup(void);
/* mime_leaf - a part TYPE/SUBTYPE holding text (its line ends made CR
 * LF), with charset=CHARSET unless that is NULL, in encoding enc
 * (GMIME_CONTENT_ENCODING_DEFAULT: no Content-Transfer-Encoding); a new
 * reference */
GMimeObject *mime_leaf(const char *type, const char *subtype, const char *charset,
    const char *text, GMimeContentEncoding enc);
/* mime_multipart - an empty multipart from a full media type with its
 * parameters ("multipart/report; report-type=delivery-status"), the
 * boundary GMime's, and a prologue for readers without MIME */
GMimeMultipart *mime_multipart(const char *type, const char *prologue);
/* mime_header - append NAME: VALUE to o (GMime folds it; VALUE must be
 * ASCII, or UTF-8 that GMime may encode) */
void mime_header(GMimeObject *o, const char *name, const char *value);
/* mime_bytes - o serialised with CR LF line ends (malloc'd, NUL-
 * terminated, *len bytes); o is released */
char *mime_bytes(GMimeObject *o, size_t *len);
/* mime_headers - fn for every header field of the message in msg (len
 * bytes; its header alone will do), in order, as GMime reads it: the
 * name, and the value unfolded and RFC 2047-decoded. Returns how many,
 * or -1 when GMime cannot read it as a message. */
int mime_headers(const char *msg, size_t len,
    void (*fn)(const char *name, const char *value, void *arg), void *arg);

#endif
