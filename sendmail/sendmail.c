/*
 * sendmail.c - postern-sendmail, the sendmail(1)-compatible injector for
 * cron, PHP and scripts: reads a message on standard input and queues it
 * through queued's control socket with the same durability as SMTP
 * (queued opens the spool file and passes the descriptor; exit 0 only
 * after IPC_SMTPD_MSG_COMMITTED with status 0, i.e. file and envelope are
 * on stable storage). -bp, or the name "mailq", lists the queue
 * (posternctl queue list).
 *
 * Owns: the option parser (sendmail's traditional syntax: -t, -i, -oi,
 * -f, -r, -F, -bm, -bp, -C, other -o options and -v, -B, -N, -R ignored)
 * and the exit statuses of sysexits.h: EX_OK, EX_USAGE 64, EX_DATAERR 65,
 * EX_NOUSER 67 (bad address), EX_UNAVAILABLE 69 (queue down), EX_SOFTWARE,
 * EX_TEMPFAIL 75 (disk full, spool error), EX_CONFIG 78.
 * SECURITY: runs as the calling user with no privilege (install it
 * without set-id bits): queued writes the Received: header naming the
 * caller's uid from SO_PEERCRED and decides everything else. Addresses
 * pass the same parser as SMTP (common/addr.c).
 * STANDARDS: RFC 5321 (addresses), RFC 5322 (header fields),
 * sendmail(8) command-line conventions, sysexits(3).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "ctlsock.h"
#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "msgbuf.h"
#include "sendmail.h"
#include "spool.h"
#include "util.h"

#define SM_TIMEOUT 300          /* seconds per reply from queued */
#define SM_REQID 1

enum sm_mode { MODE_DELIVER, MODE_LIST };

/* The command line. */
struct sm_opts {
	enum sm_mode mode;
	int extract;            /* -t */
	int ignore_dots;        /* -i, -oi */
	const char *sender;     /* -f, -r */
	char *fullname;         /* -F */
	const char *config;     /* -C */
	char **rcpt;            /* operands */
	int nrcpt;
};

/* One option letter that takes a value, and where it goes. */
struct sm_valopt {
	char letter;
	int which;              /* 0 -f/-r, 1 -F, 2 -C, 3 ignored */
};

static const struct sm_valopt valopts[] = {
	{ 'f', 0 }, { 'r', 0 }, { 'F', 1 }, { 'C', 2 },
	{ 'B', 3 }, { 'N', 3 }, { 'R', 3 }, { 'V', 3 }, { 'X', 3 }, { 'L', 3 },
	{ 'h', 3 }, { 'p', 3 }, { 'q', 3 }, { 'O', 3 },
};

/* die - a message on stderr and exit with status */
static void NORETURN __attribute__((format(printf, 2, 3)))
die(int status, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "postern-sendmail: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(status);
}

/* usage - the synopsis, EX_USAGE */
static void NORETURN
usage(const char *why)
{
	fprintf(stderr, "postern-sendmail: %s\n"
	    "usage: postern-sendmail [-t] [-i] [-f sender] [-F name] [-C config] "
	    "[-bm] [recipient ...]\n"
	    "       postern-sendmail -bp [-C config]\n", why);
	exit(EX_USAGE);
}

/* clean_name - -F's value without quotes, backslashes or control chars */
static char *
clean_name(const char *s)
{
	char *r = xstrdup(s), *p;

	for (p = r; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
			*p = ' ';
	return r;
}

/* opt_value - an option that takes a value ("-fX" or "-f X") */
static int
opt_value(struct sm_opts *o, int argc, char **argv, int *i, const char *arg)
{
	const char *v = arg + 2;
	size_t k;

	for (k = 0; k < sizeof(valopts) / sizeof(valopts[0]); k++) {
		if (arg[1] != valopts[k].letter)
			continue;
		if (*v == '\0') {
			if (*i + 1 >= argc)
				usage("option requires a value");
			v = argv[++*i];
		}
		if (valopts[k].which == 0)
			o->sender = v;
		else if (valopts[k].which == 1) {
			free(o->fullname);
			o->fullname = clean_name(v);
		} else if (valopts[k].which == 2)
			o->config = v;
		return 1;
	}
	return 0;
}

/* opt_flag - an option without a value; 0 if unknown */
static int
opt_flag(struct sm_opts *o, const char *arg)
{
	if (strcmp(arg, "-t") == 0)
		o->extract = 1;
	else if (strcmp(arg, "-i") == 0 || strcmp(arg, "-oi") == 0)
		o->ignore_dots = 1;
	else if (strcmp(arg, "-bm") == 0)
		o->mode = MODE_DELIVER;
	else if (strcmp(arg, "-bp") == 0)
		o->mode = MODE_LIST;
	else if (strncmp(arg, "-b", 2) == 0)
		usage("only -bm and -bp are supported");
	else if (strncmp(arg, "-o", 2) == 0 || strcmp(arg, "-v") == 0 ||
	    strcmp(arg, "-n") == 0 || strcmp(arg, "-U") == 0 ||
	    strcmp(arg, "-m") == 0 || strcmp(arg, "-G") == 0)
		;               /* sendmail options with no meaning here */
	else
		return 0;
	return 1;
}

/* parse_args - sendmail's command line into o */
static void
parse_args(int argc, char **argv, struct sm_opts *o)
{
	int i;

	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (!opt_flag(o, argv[i]) && !opt_value(o, argc, argv, &i, argv[i]))
			usage("unknown option");
	}
	o->rcpt = argv + i;
	o->nrcpt = argc - i;
}

/* login_name - the caller's login name (passwd entry of the real uid) */
static const char *
login_name(void)
{
	struct passwd *pw = getpwuid(getuid());
	const char *s;

	if (pw != NULL && pw->pw_name != NULL)
		return pw->pw_name;
	if ((s = getenv("LOGNAME")) != NULL && *s != '\0')
		return s;
	return "nobody";
}

/* qualify - addr as "local@domain": <> stripped, unqualified names get
 * @hostname; NULL if it does not parse (why set) */
static char *
qualify(const char *addr, const char *hostname, int allow_null, const char **why)
{
	struct mailaddr a;
	char buf[ADDR_MAX + 2], *s;
	size_t n = strlen(addr);

	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>')
		s = xstrndup(addr + 1, n - 2);
	else
		s = xstrdup(addr);
	if (*s == '\0' && allow_null)
		return s;
	if (*s != '\0' && strchr(s, '@') == NULL) {
		char *q = xasprintf("%s@%s", s, hostname);

		free(s);
		s = q;
	}
	if (addr_parse(s, ADDR_ALLOW_UTF8, &a, why) == -1) {
		free(s);
		return NULL;
	}
	free(s);
	return xstrdup(addr_format(&a, buf, sizeof(buf)));
}

/* recipients - the operands, then (with -t) the header's, qualified;
 * a bad one ends the program with EX_NOUSER */
static void
recipients(struct sm_list *raw, const char *hostname, struct sm_list *out)
{
	const char *why;
	char *a;
	size_t i;

	for (i = 0; i < raw->n; i++) {
		if ((a = qualify(raw->v[i], hostname, 0, &why)) == NULL)
			die(EX_NOUSER, "bad recipient address <%s>: %s", raw->v[i], why);
		sm_list_add(out, a);
	}
	if (out->n == 0)
		usage("no recipients (give them as arguments, or use -t)");
}

/* list_queue - -bp: posternctl queue list with the same configuration */
static void NORETURN
list_queue(const char *config)
{
	char self[PATH_MAX], *path = NULL;
	ssize_t n;

	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) > 0) {
		self[n] = '\0';
		path = xasprintf("%s/posternctl", dirname(self));
		if (access(path, X_OK) != 0) {
			free(path);
			path = NULL;
		}
	}
	if (path == NULL)
		path = xstrdup(SBINDIR "/posternctl");
	execl(path, "posternctl", "-c", config, "queue", "list", (char *)NULL);
	die(EX_UNAVAILABLE, "cannot execute %s: %s", path, strerror(errno));
}

/* exit_for - the sysexits status for a queued errno */
static int
exit_for(uint32_t err)
{
	switch (err) {
	case 0:
		return EX_OK;
	case EFBIG:
		return EX_DATAERR;
	case EINVAL:
		return EX_NOUSER;
	case E2BIG:
		return EX_USAGE;
	default:
		return EX_TEMPFAIL;     /* ENOSPC, EIO, EDQUOT: try again later */
	}
}

/* recv_reply - the next frame, which must be of type want; EOF or a
 * broken reply means the message was not acknowledged: EX_TEMPFAIL */
static void
recv_reply(int sock, struct msgbuf *store, struct ipc_msg *m, uint16_t want)
{
	if (ipc_recv_blocking(sock, store, m) == -1)
		die(EX_TEMPFAIL, "the queue manager went away (%s); the message "
		    "was NOT queued", strerror(errno));
	if (m->type != want)
		die(EX_SOFTWARE, "unexpected reply %s from the queue manager",
		    ipc_type_name(m->type));
}

/* open_spool - MSG_OPEN: the queue id and the spool descriptor */
static int
open_spool(int sock, struct msgbuf *store, char *id, size_t idlen)
{
	struct msgbuf b;
	struct ipc_msg m;
	uint32_t status;

	msgbuf_init(&b);
	msg_add_u32(&b, SM_REQID);
	if (ipc_send_blocking(sock, IPC_QUEUED_MSG_OPEN, &b, -1) == -1)
		die(EX_UNAVAILABLE, "cannot talk to the queue manager: %s",
		    strerror(errno));
	msgbuf_free(&b);
	recv_reply(sock, store, &m, IPC_SMTPD_MSG_OPENED);
	(void)msg_get_u32(&m.r);
	status = msg_get_u32(&m.r);
	strlcpy(id, msg_get_str(&m.r), idlen);
	if (!msg_ok(&m.r))
		die(EX_SOFTWARE, "malformed reply from the queue manager");
	if (status != 0)
		die(exit_for(status), "the queue cannot take the message now: %s",
		    strerror((int)status));
	if (m.fd == -1)
		die(EX_SOFTWARE, "the queue manager sent no spool file");
	return m.fd;
}

/* write_spool - the whole message into fd; 0 or an errno */
static int
write_spool(int fd, const struct sm_buf *msg)
{
	size_t off = 0;
	ssize_t n;

	while (off < msg->len) {
		n = write(fd, msg->data + off, msg->len - off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == -1 ? errno : EIO;
		off += (size_t)n;
	}
	return 0;
}

/* abort_spool - MSG_ABORT after a failed write, then exit */
static void NORETURN
abort_spool(int sock, const char *id, int err)
{
	struct msgbuf b;

	msgbuf_init(&b);
	msg_add_str(&b, id);
	(void)ipc_send_blocking(sock, IPC_QUEUED_MSG_ABORT, &b, -1);
	msgbuf_free(&b);
	die(exit_for((uint32_t)err), "cannot write the message into the queue "
	    "(%s); the message was NOT queued", strerror(err));
}

/* commit - MSG_COMMIT and wait until the message is durable */
static void
commit(int sock, struct msgbuf *store, const char *id, const char *sender,
    uint64_t size, const struct sm_list *rcpts)
{
	struct msgbuf b;
	struct ipc_msg m;
	uint32_t status;
	size_t i;

	msgbuf_init(&b);
	msg_add_u32(&b, SM_REQID);
	msg_add_str(&b, id);
	msg_add_str(&b, sender);
	msg_add_u64(&b, size);
	msg_add_str(&b, "");            /* client, helo, user: queued's */
	msg_add_str(&b, "");
	msg_add_str(&b, "");
	msg_add_u32(&b, (uint32_t)rcpts->n);
	for (i = 0; i < rcpts->n; i++)
		msg_add_str(&b, rcpts->v[i]);
	msg_add_u32(&b, 0);     /* envelope flags: inferred at delivery */
	if (ipc_send_blocking(sock, IPC_QUEUED_MSG_COMMIT, &b, -1) == -1)
		die(EX_TEMPFAIL, "cannot talk to the queue manager: %s; the "
		    "message was NOT queued", strerror(errno));
	msgbuf_free(&b);
	recv_reply(sock, store, &m, IPC_SMTPD_MSG_COMMITTED);
	(void)msg_get_u32(&m.r);
	status = msg_get_u32(&m.r);
	if (m.fd != -1)
		close(m.fd);
	if (status != 0)
		die(exit_for(status), "the message was NOT queued: %s",
		    status == EINVAL ? "bad address" : strerror((int)status));
}

/* submit - the message through the control socket; returns on success */
static void
submit(const struct conf *c, const char *sender, const struct sm_buf *msg,
    const struct sm_list *rcpts)
{
	char id[QUEUE_ID_LEN + 1];
	struct msgbuf store;
	int sock, fd, err;

	if ((sock = ctlsock_connect(c->control_socket, SM_TIMEOUT)) == -1)
		die(EX_UNAVAILABLE, "cannot connect to %s: %s (is postern running?)",
		    c->control_socket, strerror(errno));
	msgbuf_init(&store);
	fd = open_spool(sock, &store, id, sizeof(id));
	if ((err = write_spool(fd, msg)) != 0)
		abort_spool(sock, id, err);
	close(fd);
	commit(sock, &store, id, sender, msg->len, rcpts);
	msgbuf_free(&store);
	close(sock);
}

/* main - postern-sendmail [options] [recipient ...] */
int
main(int argc, char **argv)
{
	struct sm_opts o = { .mode = MODE_DELIVER };
	struct sm_list raw = { 0 }, rcpts = { 0 };
	struct sm_buf msg = { 0 };
	struct sm_text text;
	struct sm_hdr_opts ho;
	struct conf *c;
	char err[1024], *sender;
	const char *why;
	int i, rc;

	log_init("sendmail", 1, LOG_LEVEL_WARNING);
	o.config = getenv("POSTERN_CONFIG");
	if (strcmp(basename(argv[0]), "mailq") == 0)
		o.mode = MODE_LIST;     /* a mailq link lists, as with sendmail */
	parse_args(argc, argv, &o);
	if (o.config == NULL || *o.config == '\0')
		o.config = SYSCONFDIR "/postern/postern.conf";
	if ((c = conf_load(o.config, err, sizeof(err))) == NULL)
		die(EX_CONFIG, "%s", err);
	if (o.mode == MODE_LIST)
		list_queue(o.config);
	if (o.nrcpt == 0 && !o.extract)
		usage("no recipients (give them as arguments, or use -t)");
	if (o.sender == NULL)
		sender = xasprintf("%s@%s", login_name(), c->hostname);
	else if ((sender = qualify(o.sender, c->hostname, 1, &why)) == NULL)
		die(EX_NOUSER, "bad sender address <%s>: %s", o.sender, why);
	for (i = 0; i < o.nrcpt; i++)
		sm_list_add(&raw, xstrdup(o.rcpt[i]));
	if ((rc = sm_read(STDIN_FILENO, o.ignore_dots, c->max_message_size, &text,
	    &why)) != 0)
		die(rc, "%s", why);
	ho = (struct sm_hdr_opts){ o.extract, sender, o.fullname, c->hostname };
	if ((rc = sm_build(&text, &ho, &raw, &msg, &why)) != 0)
		die(rc, "%s", why);
	recipients(&raw, c->hostname, &rcpts);
	submit(c, sender, &msg, &rcpts);
	sm_text_free(&text);
	sm_buf_free(&msg);
	sm_list_free(&raw);
	sm_list_free(&rcpts);
	free(sender);
	free(o.fullname);
	conf_free(&c);
	return EX_OK;
}
