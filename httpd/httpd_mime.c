/*
 * httpd_mime.c - the message the send API queues: trace field, header
 * and a text/plain body, or a multipart/alternative of text and HTML.
 *
 * Owns: the header layout and MIME encoding of send API messages
 * (documented in postern-httpd(8)).
 * SECURITY: every value comes from the network. The caller has refused
 * CR, LF and other control characters in the header-bound fields and
 * checked addresses with addr_parse(), so nothing here can start a new
 * header line; a subject that is not plain ASCII becomes RFC 2047
 * encoded words; bodies are base64, so their bytes never reach the
 * header or a MIME boundary (which is not in the base64 alphabet).
 * STANDARDS: RFC 5322 (message format), RFC 5321 4.4 (Received:),
 * RFC 2045/2046 (MIME, base64, multipart/alternative), RFC 2047
 * (encoded words), RFC 3629 (UTF-8).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "httpd.h"
#include "log.h"
#include "util.h"

#define B64_LINE 57             /* input bytes per 76-character line */
#define EW_CHUNK 45             /* input bytes per encoded word (60 chars) */
#define EW_FIRST 39             /* ... after "Subject: " (52 chars) */

/* crlf_text - text with every CR LF, bare CR and bare LF as CR LF, and a
 * final CR LF (malloc'd into *out, its length returned) */
static size_t
crlf_text(const char *s, char **out)
{
	size_t n = strlen(s), i, o = 0;
	char *d = xmalloc(2 * n + 3);

	for (i = 0; i < n; i++) {
		if (s[i] == '\r' || s[i] == '\n') {
			if (s[i] == '\r' && s[i + 1] == '\n')
				i++;
			d[o++] = '\r';
			d[o++] = '\n';
		} else
			d[o++] = s[i];
	}
	if (o < 2 || d[o - 2] != '\r' || d[o - 1] != '\n') {
		d[o++] = '\r';
		d[o++] = '\n';
	}
	d[o] = '\0';
	*out = d;
	return o;
}

/* add_base64 - text (line ends made CR LF) as base64 lines */
static void
add_base64(struct evbuffer *b, const char *text)
{
	unsigned char line[80];
	char *t;
	size_t len = crlf_text(text, &t), off, k;
	int n;

	for (off = 0; off < len; off += k) {
		k = len - off < B64_LINE ? len - off : B64_LINE;
		n = EVP_EncodeBlock(line, (const unsigned char *)t + off, (int)k);
		evbuffer_add(b, line, (size_t)n);
		evbuffer_add(b, "\r\n", 2);
	}
	free(t);
}

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

/* add_subject - Subject: as is, or as RFC 2047 B encoded words folded so
 * that no line is longer than 78 characters */
static void
add_subject(struct evbuffer *b, const char *subject)
{
	unsigned char word[EW_CHUNK * 2];
	size_t len = strlen(subject), off, k;
	int n;

	if (is_plain(subject)) {
		evbuffer_add_printf(b, "Subject: %s\r\n", subject);
		return;
	}
	evbuffer_add(b, "Subject:", 8);
	for (off = 0; off < len; off += k) {
		k = utf8_cut(subject + off, len - off, off == 0 ? EW_FIRST : EW_CHUNK);
		n = EVP_EncodeBlock(word, (const unsigned char *)subject + off, (int)k);
		evbuffer_add_printf(b, "%s=?UTF-8?B?%.*s?=", off == 0 ? " " : "\r\n ",
		    n, (const char *)word);
	}
	evbuffer_add(b, "\r\n", 2);
}

/* add_header - trace field, originator, destination and identification */
static void
add_header(struct evbuffer *b, const struct mime_in *in)
{
	char date[64], rnd[9];

	rfc5322_date(in->date, date, sizeof(date));
	snprintf(rnd, sizeof(rnd), "%08x", arc4random());
	evbuffer_add_printf(b, "Received: from [%s%s] by %s (Postern) with HTTP "
	    "id %s;\r\n\t%s\r\n", strchr(in->client_ip, ':') != NULL ? "IPv6:" : "",
	    in->client_ip, in->hostname, in->qid, date);
	evbuffer_add_printf(b, "From: %s\r\n", in->from);
	evbuffer_add_printf(b, "To: %s\r\n", in->to);
	if (in->reply_to != NULL)
		evbuffer_add_printf(b, "Reply-To: %s\r\n", in->reply_to);
	add_subject(b, in->subject);
	evbuffer_add_printf(b, "Date: %s\r\n", date);
	evbuffer_add_printf(b, "Message-ID: <%s.%s@%s>\r\n", in->qid, rnd,
	    in->hostname);
	evbuffer_add(b, "MIME-Version: 1.0\r\n", 19);
}

/* add_part - the Content-Type/-Transfer-Encoding lines and the text */
static void
add_part(struct evbuffer *b, const char *type, const char *text)
{
	evbuffer_add_printf(b, "Content-Type: %s; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n", type);
	add_base64(b, text);
}

/* mime_message - header, then one part or multipart/alternative */
char *
mime_message(const struct mime_in *in, size_t *len)
{
	struct evbuffer *b = evbuffer_new();
	char boundary[64], *s;

	if (b == NULL)
		fatalx("out of memory");
	add_header(b, in);
	if (in->html == NULL)
		add_part(b, "text/plain", in->body);
	else {
		snprintf(boundary, sizeof(boundary), "=_postern_%s_%08x", in->qid,
		    arc4random());
		evbuffer_add_printf(b, "Content-Type: multipart/alternative; "
		    "boundary=\"%s\"\r\n\r\nThis is a MIME message.\r\n", boundary);
		evbuffer_add_printf(b, "\r\n--%s\r\n", boundary);
		add_part(b, "text/plain", in->body);
		evbuffer_add_printf(b, "\r\n--%s\r\n", boundary);
		add_part(b, "text/html", in->html);
		evbuffer_add_printf(b, "\r\n--%s--\r\n", boundary);
	}
	*len = evbuffer_get_length(b);
	s = xmalloc(*len + 1);
	evbuffer_remove(b, s, *len);
	s[*len] = '\0';
	evbuffer_free(b);
	return s;
}
