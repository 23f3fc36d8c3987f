/*
 * mime.c - building messages with GMime 3 (see mime.h): leaf parts from
 * text, multiparts, header fields, and the CR LF bytes of the result.
 * GMime chooses the boundaries, folds the header fields and encodes the
 * content; this file only wires its objects together.
 *
 * Owns: nothing beyond the objects it returns.
 * SECURITY: the text is the caller's (validated where it came from the
 * network); a boundary is GMime's random one, and a part's content in
 * base64 or checked by GMime cannot end a part early.
 * STANDARDS: RFC 2045 (Content-Type, Content-Transfer-Encoding), RFC 2046
 * 5.1 (multipart boundaries), RFC 5322 2.2.3 (folding).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mime.h"
#include "util.h"

/* mime_setup - see mime.h */
void
mime_setup(void)
{
	static int done;

	if (!done)
		g_mime_init();
	done = 1;
}

/* crlf_stream - text in a memory stream with every line end CR LF and a
 * final one (GMime's unix2dos filter) */
static GMimeStream *
crlf_stream(const char *text)
{
	GMimeStream *mem = g_mime_stream_mem_new();
	GMimeStream *f = g_mime_stream_filter_new(mem);
	GMimeFilter *dos = g_mime_filter_unix2dos_new(TRUE);

	g_mime_stream_filter_add(GMIME_STREAM_FILTER(f), dos);
	g_object_unref(dos);
	if (*text != '\0' && (g_mime_stream_write_string(f, text) == -1 ||
	    g_mime_stream_flush(f) == -1))
		fatalx("mime: cannot write to a memory stream");
	g_object_unref(f);
	g_mime_stream_reset(mem);
	return mem;
}

/* mime_leaf - see mime.h */
GMimeObject *
mime_leaf(const char *type, const char *subtype, const char *charset,
    const char *text, GMimeContentEncoding enc)
{
	GMimePart *p = g_mime_part_new_with_type(type, subtype);
	GMimeStream *s = crlf_stream(text);
	GMimeDataWrapper *w = g_mime_data_wrapper_new_with_stream(s,
	    GMIME_CONTENT_ENCODING_DEFAULT);

	g_object_unref(s);
	g_mime_part_set_content(p, w);
	g_object_unref(w);
	if (charset != NULL)
		g_mime_object_set_content_type_parameter(GMIME_OBJECT(p), "charset",
		    charset);
	if (enc != GMIME_CONTENT_ENCODING_DEFAULT)
		g_mime_part_set_content_encoding(p, enc);
	return GMIME_OBJECT(p);
}

/* mime_multipart - see mime.h */
GMimeMultipart *
mime_multipart(const char *type, const char *prologue)
{
	GMimeMultipart *mp = g_mime_multipart_new();
	GMimeContentType *ct = g_mime_content_type_parse(NULL, type);

	/* the caller's parameters first, then the boundary */
	g_mime_object_set_content_type(GMIME_OBJECT(mp), ct);
	g_object_unref(ct);
	g_mime_multipart_set_boundary(mp, NULL);
	g_mime_multipart_set_prologue(mp, prologue);
	return mp;
}

/* mime_header - see mime.h */
void
mime_header(GMimeObject *o, const char *name, const char *value)
{
	g_mime_object_append_header(o, name, value, "utf-8");
}

/* mime_bytes - see mime.h */
char *
mime_bytes(GMimeObject *o, size_t *len)
{
	GMimeFormatOptions *fo = g_mime_format_options_new();
	char *g, *s;

	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	g = g_mime_object_to_string(o, fo);
	g_mime_format_options_free(fo);
	g_object_unref(o);
	if (g == NULL)
		fatalx("mime: cannot serialise a message");
	*len = strlen(g);
	s = xstrndup(g, *len);
	g_free(g);
	return s;
}

/* mime_headers - see mime.h */
int
mime_headers(const char *msg, size_t len,
    void (*fn)(const char *name, const char *value, void *arg), void *arg)
{
	GMimeStream *st;
	GMimeParser *p;
	GMimeMessage *m;
	GMimeHeaderList *hl;
	GMimeHeader *h;
	int i, n;

	mime_setup();
	st = g_mime_stream_mem_new_with_buffer(msg, len);
	p = g_mime_parser_new_with_stream(st);
	g_object_unref(st);
	m = g_mime_parser_construct_message(p, NULL);
	g_object_unref(p);
	if (m == NULL)
		return -1;
	hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
	n = g_mime_header_list_get_count(hl);
	for (i = 0; i < n; i++) {
		h = g_mime_header_list_get_header_at(hl, i);
		fn(g_mime_header_get_name(h), g_mime_header_get_value(h), arg);
	}
	g_object_unref(m);
	return n;
}
