/*
 * httpd_mime.c - the message the send API queues: trace field, header
 * and a text/plain body, or a multipart/alternative of text and HTML,
 * built with GMime (common/mime.c): the library encodes the bodies
 * (base64, CR LF line ends), chooses the boundary and folds every field.
 *
 * Owns: the header layout of send API messages (documented in
 * postern-httpd(8)).
 * Why the Subject's encoded words are not GMime's: GMime 3.2's
 * g_mime_utils_header_encode_text() makes one encoded word of each run
 * without white space, however long (a Chinese or Japanese subject gives
 * words of hundreds of characters), where RFC 2047 2 allows 75. So the
 * subject is cut here at UTF-8 character boundaries into words of at
 * most 45 octets (60 base64 characters, 72 with "=?UTF-8?B?...?="; the
 * first 39, to fit after "Subject: "), base64 by OpenSSL, and GMime
 * folds the result between the words.
 * SECURITY: every value comes from the network. The caller has refused
 * CR, LF and other control characters in the header-bound fields and
 * checked addresses with addr_parse(), so nothing here can start a new
 * header line; a subject that is not plain ASCII becomes RFC 2047
 * encoded words; bodies are base64, so their bytes never reach the
 * header or a MIME boundary.
 * STANDARDS: RFC 5322 (message format), RFC 5321 4.4 (Received:),
 * RFC 2045/2046 (MIME, base64, multipart/alternative), RFC 2047
 * (encoded words), RFC 3629 (UTF-8).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "httpd.h"
#include "log.h"
#include "mime.h"
#include "util.h"

#define EW_CHUNK 45             /* input octets per encoded word (60 chars) */
#define EW_FIRST 39             /* ... the first, after "Subject: " (52 chars) */

/* is_plain - only printable ASCII and tab */
static int
is_plain(const char *s)
{
	for (; *s != '\0'; s++)
		if ((*s < ' ' || *s > '~') && *s != '\t')
			return 0;
	return 1;
}

/* utf8_cut - the largest n <= max so that s[n] starts a character */
static size_t
utf8_cut(const char *s, size_t len, size_t max)
{
	size_t n = len < max ? len : max;

	while (n > 0 && n < len && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n > 0 ? n : (len < max ? len : max);
}

/* subject_words - the subject as is, or as RFC 2047 B encoded words of
 * whole characters separated by spaces (malloc'd) */
static char *
subject_words(const char *subject)
{
	unsigned char word[EW_CHUNK * 2];
	size_t len = strlen(subject), off, k, o = 0, cap;
	char *out;
	int n;

	if (is_plain(subject))
		return xstrdup(subject);
	/* a word after the first holds at least EW_CHUNK - 3 octets and
	 * takes at most 73 characters with its space */
	cap = (len / (EW_CHUNK - 3) + 2) * 73 + 1;
	out = xmalloc(cap);
	for (off = 0; off < len; off += k) {
		k = utf8_cut(subject + off, len - off, off == 0 ? EW_FIRST : EW_CHUNK);
		n = EVP_EncodeBlock(word, (const unsigned char *)subject + off, (int)k);
		o += (size_t)snprintf(out + o, cap - o, "%s=?UTF-8?B?%.*s?=",
		    off == 0 ? "" : " ", n, (const char *)word);
	}
	return out;
}

/* add_header - trace field, originator, destination and identification */
static void
add_header(GMimeObject *m, const struct mime_in *in)
{
	char date[64], *v;

	rfc5322_date(in->date, date, sizeof(date));
	v = xasprintf("from [%s%s] by %s (Postern) with HTTP id %s; %s",
	    strchr(in->client_ip, ':') != NULL ? "IPv6:" : "", in->client_ip,
	    in->hostname, in->qid, date);
	mime_header(m, "Received", v);
	free(v);
	mime_header(m, "From", in->from);
	mime_header(m, "To", in->to);
	if (in->reply_to != NULL)
		mime_header(m, "Reply-To", in->reply_to);
	v = subject_words(in->subject);
	mime_header(m, "Subject", v);
	free(v);
	mime_header(m, "Date", date);
	v = xasprintf("<%s.%08x@%s>", in->qid, arc4random(), in->hostname);
	mime_header(m, "Message-ID", v);
	free(v);
	mime_header(m, "MIME-Version", "1.0");
}

/* text_part - a UTF-8 text part in base64 */
static GMimeObject *
text_part(const char *subtype, const char *text)
{
	return mime_leaf("text", subtype, "UTF-8", text, GMIME_CONTENT_ENCODING_BASE64);
}

/* mime_message - header, then one part or multipart/alternative */
char *
mime_message(const struct mime_in *in, size_t *len)
{
	GMimeMessage *m;
	GMimeMultipart *alt;
	GMimeObject *part;

	mime_setup();
	m = g_mime_message_new(FALSE);
	add_header(GMIME_OBJECT(m), in);
	if (in->html == NULL)
		part = text_part("plain", in->body);
	else {
		alt = mime_multipart("multipart/alternative", "This is a MIME message.");
		g_mime_multipart_add(alt, (part = text_part("plain", in->body)));
		g_object_unref(part);
		g_mime_multipart_add(alt, (part = text_part("html", in->html)));
		g_object_unref(part);
		part = GMIME_OBJECT(alt);
	}
	g_mime_message_set_mime_part(m, part);
	g_object_unref(part);
	return mime_bytes(GMIME_OBJECT(m), len);
}
