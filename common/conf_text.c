/*
 * conf_text.c - reading postern.conf before libconfuse sees it: the size
 * limit, bytes a text file cannot hold, our comments blanked, and the
 * quoted strings checked for what libconfuse would take silently.
 *
 * Owns: CONF_MAX_BYTES, the errors about the file as text ("a NUL byte at
 * line N", "larger than the limit", "a quoted string that does not end on
 * its line", "an escaped NUL").
 * SECURITY: the file is the operator's, but its values reach the SMTP
 * greeting, headers and logs; libconfuse turns "\x00" and "\000" into a
 * NUL that silently cuts a value short, and lets a missing closing quote
 * swallow the following lines into one value. Both are refused here,
 * naming the line where the string started. Control bytes that survive
 * into a value are refused per option by conf_str_result().
 * STANDARDS: none.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

#define CONF_MAX_BYTES (1024 * 1024)

/* blank_comments - overwrite '#' and '//' comments (to the end of the
 * line) and C comments with spaces, keeping newlines and quoted strings.
 * libconfuse 3.3's lexer counts every comment as three lines, so its error
 * lines drift, and it rejects a comment inside a list (upstream issue
 * #150); it never sees our comments at all. */
static void
blank_comments(char *p)
{
	char quote = 0;

	for (; *p != '\0'; p++) {
		if (quote) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == quote)
				quote = 0;
		} else if (*p == '"' || *p == '\'') {
			quote = *p;
		} else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			for (; *p != '\0' && *p != '\n'; p++)
				*p = ' ';
			if (*p == '\0')
				break;
		} else if (p[0] == '/' && p[1] == '*') {
			for (; *p != '\0' && !(p[0] == '*' && p[1] == '/'); p++)
				if (*p != '\n')
					*p = ' ';
			if (*p == '\0')
				break;
			p[0] = p[1] = ' ';
			p++;
		}
	}
}

/* line_keyword - the first word of the line that starts at p */
static void
line_keyword(const char *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s", "?");
	sscanf(p, " %63[A-Za-z0-9_]", buf);
}

/* escape_is_nul - does the escape after a backslash at p decode to NUL?
 * libconfuse decodes \xH, \xHH and octal \O, \OO, \OOO */
static int
escape_is_nul(const char *p)
{
	const char *digits = "01234567";
	size_t k, max = 3;

	if (*p == 'x') {
		p++;
		digits = "0123456789abcdefABCDEF";
		max = 2;
	}
	k = strspn(p, digits);
	if (k > max)
		k = max;
	return k >= 1 && strspn(p, "0") >= k;
}

/* scan_string - check the quoted string opening at *pp (on line, which
 * starts at ls); *pp is left on its closing quote; 0 or -1 */
static int
scan_string(const char **pp, int line, const char *ls)
{
	const char *p = *pp;
	char quote = *p, word[64];

	line_keyword(ls, word, sizeof(word));
	for (p++; *p != quote; p++) {
		if (*p == '\0' || *p == '\n') {
			conf_errorf(conf_ctx.path, line, "option '%s': a quoted string "
			    "that does not end on its line (a missing closing %c?)",
			    word, quote);
			return -1;
		}
		if (*p == '\\' && quote == '"' && escape_is_nul(p + 1)) {
			conf_errorf(conf_ctx.path, line, "option '%s': expected no "
			    "control characters, got an escaped NUL byte", word);
			return -1;
		}
		if (*p == '\\' && (p[1] == quote || p[1] == '\\'))
			p++;
	}
	*pp = p;
	return 0;
}

/* scan_strings - every quoted string of the uncommented text; 0 or -1 */
static int
scan_strings(const char *text)
{
	const char *p, *ls = text;
	int line = 1;

	for (p = text; *p != '\0'; p++) {
		if (*p == '\n') {
			line++;
			ls = p + 1;
		} else if ((*p == '"' || *p == '\'') && scan_string(&p, line, ls) == -1) {
			return -1;
		}
	}
	return 0;
}

/* nul_line - the line of the first NUL byte among n bytes of buf */
static int
nul_line(const char *buf, size_t n)
{
	const char *nul = memchr(buf, '\0', n), *p;
	int line = 1;

	for (p = buf; p < nul; p++)
		line += *p == '\n';
	return line;
}

/* read_all - at most CONF_MAX_BYTES of path, NUL-terminated; NULL with
 * the error set */
static char *
read_all(const char *path)
{
	FILE *fp = fopen(path, "re");
	char *buf;
	size_t n;
	int bad;

	if (fp == NULL) {
		conf_errorf(path, 0, "cannot read: %s", strerror(errno));
		return NULL;
	}
	buf = xmalloc(CONF_MAX_BYTES + 1);
	n = fread(buf, 1, CONF_MAX_BYTES + 1, fp);
	bad = ferror(fp);
	fclose(fp);
	if (bad)
		conf_errorf(path, 0, "cannot read: %s", strerror(EIO));
	else if (n > CONF_MAX_BYTES)
		conf_errorf(path, 0, "larger than the limit of %d bytes (1 MiB)",
		    CONF_MAX_BYTES);
	else if (memchr(buf, '\0', n) != NULL)
		conf_errorf(path, nul_line(buf, n), "a NUL byte; a configuration "
		    "file is text");
	if (bad || n > CONF_MAX_BYTES || memchr(buf, '\0', n) != NULL) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* conf_text_read - the file with its comments blanked and its strings
 * checked, for cfg_parse_buf(); NULL with the first error set */
char *
conf_text_read(const char *path)
{
	char *text = read_all(path);

	if (text == NULL)
		return NULL;
	blank_comments(text);
	if (scan_strings(text) == -1) {
		free(text);
		return NULL;
	}
	return text;
}
