/*
 * delivery_file.c - the file transport: each message becomes one file in
 * the transport's directory, named from a template (seed 002's file
 * output), written to a hidden temporary name, fsync'd, renamed, and the
 * directory fsync'd, so a reader never sees a partial file.
 *
 * Owns: the template language: %i queue id, %Y %m %d %H %M date and time
 * (UTC), %t seconds since the epoch, %s envelope sender, %r recipient,
 * %S Subject:, %% a percent sign. With %r in the template, each
 * recipient gets its own file; otherwise one file holds the message for
 * all. Content: "Return-Path: <sender>" then the message with LF line
 * ends (as the maildir transport).
 * SECURITY: runs unprivileged; every value put into a name is sanitised
 * (only letters, digits and "@._+=-" kept, anything else - '/', '\\',
 * control characters, spaces - becomes '_', ".." becomes "_.", each value
 * at most 64 bytes) and a name never starts with '.', so no value can
 * leave the directory or hide as a temporary file. Files are created
 * O_EXCL|O_NOFOLLOW mode 0600; an existing file of the same name is
 * replaced atomically (a redelivery after a crash rewrites it).
 * STANDARDS: RFC 5322 (Subject:, Return-Path: from RFC 5321 4.4).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "util.h"

#include "delivery.h"

/* A template value is cut to this many bytes. */
#define FILE_VALUE_MAX 64

/* files written by this process: part of the temporary names */
static unsigned long file_count;

/* sanitise - append value to out[*o..] keeping only safe characters */
static void
sanitise(const char *value, char *out, size_t *o, size_t outlen)
{
	size_t n = 0;
	char c;

	for (; *value != '\0' && n < FILE_VALUE_MAX && *o + 1 < outlen; value++, n++) {
		c = *value;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("@._+=-", c) != NULL))
			c = '_';
		/* no ".." anywhere: the second dot becomes '_' */
		if (c == '.' && *o > 0 && out[*o - 1] == '.')
			c = '_';
		out[(*o)++] = c;
	}
	out[*o] = '\0';
}

/* file_name_for - expand tmpl for j and the recipient rcpt into out */
static int
file_name_for(const char *tmpl, const struct delivery_job *j, const char *rcpt,
    time_t now, char *out, size_t outlen)
{
	char num[32], *subject = NULL;
	const char *v;
	struct tm tm;
	size_t o = 0;

	gmtime_r(&now, &tm);
	for (; *tmpl != '\0' && o + 1 < outlen; tmpl++) {
		if (*tmpl != '%' || tmpl[1] == '\0') {
			sanitise((char[2]){ *tmpl, '\0' }, out, &o, outlen);
			continue;
		}
		v = num;
		switch (*++tmpl) {
		case 'i': v = j->queueid; break;
		case 's': v = j->sender[0] != '\0' ? j->sender : "MAILER-DAEMON"; break;
		case 'r': v = rcpt; break;
		case 'Y': snprintf(num, sizeof(num), "%04d", tm.tm_year + 1900); break;
		case 'm': snprintf(num, sizeof(num), "%02d", tm.tm_mon + 1); break;
		case 'd': snprintf(num, sizeof(num), "%02d", tm.tm_mday); break;
		case 'H': snprintf(num, sizeof(num), "%02d", tm.tm_hour); break;
		case 'M': snprintf(num, sizeof(num), "%02d", tm.tm_min); break;
		case 't': snprintf(num, sizeof(num), "%lld", (long long)now); break;
		case '%': v = "%"; break;
		case 'S':
			if (subject == NULL)
				subject = delivery_header_value(j->msg, j->msglen, "Subject");
			v = subject != NULL && subject[0] != '\0' ? subject : "no-subject";
			while (*v == ' ' || *v == '\t')
				v++;
			break;
		default:        /* unknown: kept as "_X" */
			snprintf(num, sizeof(num), "_%c", *tmpl);
			break;
		}
		if (*tmpl == '%') {
			out[o++] = '_';         /* a literal '%' is unsafe in names */
			out[o] = '\0';
		} else
			sanitise(v, out, &o, outlen);
	}
	free(subject);
	out[o] = '\0';
	if (out[0] == '.')
		out[0] = '_';
	return o > 0 ? 0 : -1;
}

/* delivery_file_name - the file name of j's first recipient */
int
delivery_file_name(const char *tmpl, const struct delivery_job *j, time_t now,
    char *out, size_t outlen)
{
	return file_name_for(tmpl, j, j->nrcpt > 0 ? j->rcpt[0].addr : "", now, out,
	    outlen);
}

/* file_store - DIR/.tmp-..., then DIR/NAME atomically
 * (delivery_store_atomic); 0 or an errno with *what naming the step */
static int
file_store(const char *dir, const char *name, const char *data, size_t len,
    const char **what)
{
	char *tmp = xasprintf("%s/.tmp-%ld-%lu", dir, (long)getpid(), ++file_count);
	char *dst = xasprintf("%s/%s", dir, name);
	int err = delivery_store_atomic(tmp, dst, dir, data, len, what);

	free(tmp);
	free(dst);
	return err;
}

/* file_one - write one file for the recipients in [from, to); 0 or errno */
static int
file_one(struct delivery_job *j, size_t from, size_t to, const char *data, size_t len)
{
	const struct conf_transport *t = j->transport;
	char name[256], *relay;
	const char *what = "expand the template";
	size_t i;
	int err = 0;

	if (file_name_for(t->name_template, j, j->rcpt[from].addr, time(NULL), name,
	    sizeof(name)) == -1)
		err = EINVAL;
	else
		err = file_store(t->path, name, data, len, &what);
	relay = xasprintf("file:%s/%s", t->path, err == 0 ? name : "");
	for (i = from; i < to; i++) {
		if (err == 0)
			delivery_rcpt_result(&j->rcpt[i], 2, "2.0.0", relay, "written to %s",
			    name);
		else
			delivery_rcpt_result(&j->rcpt[i], 4, "4.3.0", relay,
			    "file transport: cannot %s: %s", what, strerror(err));
	}
	if (err == 0)
		log_debug("%s: written to %s/%s", j->queueid, t->path, name);
	else
		log_warnx("%s: file %s: cannot %s: %s", j->queueid, t->path, what,
		    strerror(err));
	free(relay);
	return err;
}

/* delivery_file_run - one file (or one per recipient with %r), report */
void
delivery_file_run(struct delivery_job *j)
{
	const struct conf_transport *t = j->transport;
	size_t len, i;
	char *data;

	if (j->nrcpt == 0 || mkdir_p(t->path, 0700) == -1) {
		delivery_job_result(j, 0, 4, "4.3.0", NULL, "file transport: cannot create "
		    "%s: %s", t->path, strerror(errno));
		delivery_job_done(j);
		return;
	}
	data = delivery_local_content(j, &len);
	if (strstr(t->name_template, "%r") != NULL)
		for (i = 0; i < j->nrcpt; i++)
			file_one(j, i, i + 1, data, len);
	else
		file_one(j, 0, j->nrcpt, data, len);
	free(data);
	delivery_job_done(j);
}
