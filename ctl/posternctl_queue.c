/*
 * posternctl_queue.c - "posternctl queue ...": list the queue (like
 * mailq), search it, show one message, list it by destination, and
 * steer it (flush, hold, release, delete, requeue, flush-destination)
 * through queued's control socket (control_socket in postern.conf).
 *
 * Owns: the queue command table, the text and --json renderings, and the
 * exit statuses documented in posternctl(8): 0 done, 1 no such message or
 * the operation failed, 64 usage, 69 (EX_UNAVAILABLE) queued is not
 * running, 77 (EX_NOPERM) the caller may not do this, 78 configuration.
 * SECURITY: runs as its caller with no privilege of its own: queued
 * decides from SO_PEERCRED what the caller may do. Prints message text
 * (show --message) only as queued hands it over; control characters in
 * envelope fields are printed as '?'.
 * STANDARDS: none (sysexits(3) codes; the list imitates Postfix mailq).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "ctlsock.h"
#include "ipc.h"
#include "ipc_types.h"
#include "log.h"
#include "msgbuf.h"
#include "posternctl.h"
#include "util.h"

#define CTL_TIMEOUT 30                  /* seconds per reply */
#define MESSAGE_MAX (64u * 1024 * 1024) /* show --message in --json */

/* The options of one invocation, and what it printed. */
struct qopts {
	int json;
	int message;
	unsigned rows;
	unsigned long long bytes;
};

/* One queue command: its name, whether it takes an id, how it prints. */
struct qcmd {
	const char *name;
	int needs_id;           /* 1 required, 0 none, -1 optional */
	void (*row)(json_t *o, const struct qopts *q);
};

static void row_list(json_t *o, const struct qopts *q);
static void row_show(json_t *o, const struct qopts *q);
static void row_dest(json_t *o, const struct qopts *q);

static const struct qcmd qcmds[] = {
	{ "list", 0, row_list },
	{ "search", 1, row_list },
	{ "show", 1, row_show },
	{ "destinations", 0, row_dest },
	{ "flush-destination", 1, NULL },
	{ "flush", -1, NULL },
	{ "hold", 1, NULL },
	{ "release", 1, NULL },
	{ "delete", 1, NULL },
	{ "requeue", 1, NULL },
};

/* queue_usage - the synopsis on stderr; EXIT_USAGE */
static int
queue_usage(void)
{
	fprintf(stderr, "usage: posternctl [-c file] queue list [--json]\n"
	    "       posternctl [-c file] queue search [--json] TEXT\n"
	    "       posternctl [-c file] queue show [--json] [--message] ID\n"
	    "       posternctl [-c file] queue flush [--json] [ID]\n"
	    "       posternctl [-c file] queue hold|release|delete|requeue "
	    "[--json] ID\n"
	    "       posternctl [-c file] queue destinations [--json]\n"
	    "       posternctl [-c file] queue flush-destination [--json] "
	    "DESTINATION\n");
	return EXIT_USAGE;
}

/* jstr - a string member of o, "" when absent; control chars -> '?' */
static const char *
jstr(json_t *o, const char *key, char *buf, size_t len)
{
	const char *s = json_string_value(json_object_get(o, key));
	size_t i;

	for (i = 0; s != NULL && s[i] != '\0' && i + 1 < len; i++)
		buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

/* jint - an integer member of o, 0 when absent */
static long long
jint(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

/* local_time - unix seconds as "Sun Nov 22 03:00:00" (local time) */
static const char *
local_time(long long t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%a %b %e %H:%M:%S", &tm) == 0)
		strlcpy(buf, "?", len);
	return buf;
}

/* print_rcpt - one recipient under a message, mailq style */
static void
print_rcpt(json_t *r, int detail)
{
	char addr[600], state[32], dsn[32], reply[1100], when[64];
	long long next = jint(r, "next_attempt");

	printf("%48s%s  %s", "", jstr(r, "address", addr, sizeof(addr)),
	    jstr(r, "state", state, sizeof(state)));
	if (jint(r, "attempts") > 0)
		printf(", %lld attempt(s)", jint(r, "attempts"));
	if (next > 0 && strcmp(state, "deferred") == 0)
		printf(", next %s", local_time(next, when, sizeof(when)));
	if (json_is_true(json_object_get(r, "in_flight")))
		printf(", in delivery");
	printf("\n");
	jstr(r, "last_reply", reply, sizeof(reply));
	jstr(r, "dsn", dsn, sizeof(dsn));
	if (reply[0] != '\0' || (detail && dsn[0] != '\0'))
		printf("%50s(%s%s%s)\n", "", dsn,
		    dsn[0] != '\0' && reply[0] != '\0' ? " " : "", reply);
}

/* msg_mark - mailq's mark after the id: '*' in delivery, '!' held (all
 * waiting recipients are), ' ' otherwise */
static char
msg_mark(json_t *rc)
{
	char state[32];
	json_t *r;
	size_t i;
	int waiting = 0, held = 0;

	json_array_foreach(rc, i, r) {
		if (json_is_true(json_object_get(r, "in_flight")))
			return '*';
		jstr(r, "state", state, sizeof(state));
		if (strcmp(state, "delivered") != 0 && strcmp(state, "bounced") != 0)
			waiting++;
		if (strcmp(state, "held") == 0)
			held++;
	}
	return waiting > 0 && held == waiting ? '!' : ' ';
}

/* row_list - one message of "queue list" */
static void
row_list(json_t *o, const struct qopts *q)
{
	char id[64], sender[600], when[64];
	json_t *rc = json_object_get(o, "recipients"), *r;
	size_t i;

	if (q->rows == 0)
		printf("-Queue ID-        --Size-- ----Arrival Time---- "
		    "-Sender/Recipient-------\n");
	printf("%-16s%c %8lld %-20s  %s\n", jstr(o, "id", id, sizeof(id)),
	    msg_mark(rc), jint(o, "size"),
	    local_time(jint(o, "arrival"), when, sizeof(when)),
	    *jstr(o, "sender", sender, sizeof(sender)) ? sender : "<>");
	if (json_is_true(json_object_get(o, "broken")))
		printf("%48s(the index record is unreadable)\n", "");
	json_array_foreach(rc, i, r)
		print_rcpt(r, 0);
	printf("\n");
}

/* row_show - the one message of "queue show" */
static void
row_show(json_t *o, const struct qopts *q)
{
	char b1[600], b2[600], b3[600], when[64];
	json_t *rc = json_object_get(o, "recipients"), *r;
	size_t i;

	printf("Queue ID: %s\n", jstr(o, "id", b1, sizeof(b1)));
	printf("Size:     %lld\n", jint(o, "size"));
	printf("Arrival:  %s (%s)\n", local_time(jint(o, "arrival"), when,
	    sizeof(when)), jstr(o, "arrival_time", b1, sizeof(b1)));
	printf("Sender:   <%s>\n", jstr(o, "sender", b1, sizeof(b1)));
	printf("Client:   %s helo=%s user=%s\n", jstr(o, "client", b1, sizeof(b1)),
	    jstr(o, "helo", b2, sizeof(b2)), jstr(o, "auth_user", b3, sizeof(b3)));
	printf("Recipients:\n");
	json_array_foreach(rc, i, r) {
		printf("  <%s> %s attempts=%lld", jstr(r, "address", b1, sizeof(b1)),
		    jstr(r, "state", b2, sizeof(b2)), jint(r, "attempts"));
		if (json_object_get(r, "next_attempt") != NULL)
			printf(" next=%s", local_time(jint(r, "next_attempt"), when,
			    sizeof(when)));
		if (json_is_true(json_object_get(r, "in_flight")))
			printf(" (in delivery)");
		printf("\n");
		jstr(r, "dsn", b1, sizeof(b1));
		jstr(r, "last_reply", b2, sizeof(b2));
		if (b1[0] != '\0' || b2[0] != '\0')
			printf("    last: %s %s\n", b1, b2);
	}
}

/* row_dest - one destination of "queue destinations" */
static void
row_dest(json_t *o, const struct qopts *q)
{
	char dest[300], dsn[32], err[1100], when[64];
	long long until = jint(o, "backoff_until");

	if (q->rows == 0)
		printf("%-32s %7s %8s %5s %9s %6s  %s\n", "-Destination-",
		    "Waiting", "Deferred", "Held", "Delivered", "In use",
		    "Backoff until");
	printf("%-32s %7lld %8lld %5lld %9lld %3lld/%-3lld %s\n",
	    jstr(o, "destination", dest, sizeof(dest)), jint(o, "waiting"),
	    jint(o, "deferred"), jint(o, "held"), jint(o, "delivered_1h"),
	    jint(o, "in_flight"), jint(o, "concurrency"),
	    until > 0 ? local_time(until, when, sizeof(when)) : "-");
	if (*jstr(o, "last_error", err, sizeof(err)) != '\0')
		printf("%34s(%s %s)\n", "", jstr(o, "last_dsn", dsn, sizeof(dsn)),
		    err);
}

/* read_fd - the whole file behind fd (from its start), NUL-terminated */
static char *
read_fd(int fd, size_t *lenp)
{
	size_t len = 0, cap = 65536;
	char *buf = xmalloc(cap + 1);
	ssize_t n;
	off_t off = 0;

	while ((n = pread(fd, buf + len, cap - len, off)) > 0) {
		len += (size_t)n;
		off += n;
		if (len == cap) {
			if (cap >= MESSAGE_MAX)
				break;
			cap *= 2;
			buf = xreallocarray(buf, cap + 1, 1);
		}
	}
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

/* print_message - the message file, CR LF shown as LF */
static void
print_message(int fd)
{
	size_t len, i;
	char *buf = read_fd(fd, &len);

	printf("\n");
	for (i = 0; i < len; i++)
		if (!(buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n'))
			putchar(buf[i]);
	free(buf);
}

/* json_message - add the message to o as "message" (if it is UTF-8) */
static void
json_message(json_t *o, int fd)
{
	size_t len;
	char *buf = read_fd(fd, &len);
	json_t *s = json_stringn(buf, len);

	if (s != NULL)
		json_object_set_new(o, "message", s);
	else
		json_object_set_new(o, "message_error",
		    json_string("the message is not valid UTF-8"));
	free(buf);
}

/* print_json - one object on one line */
static void
print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	if (s != NULL) {
		printf("%s\n", s);
		free(s);
	}
}

/* print_result - the --json line of a command that changes the queue */
static void
print_result(const char *name, const char *id, const char *text)
{
	json_t *o = json_object();

	json_object_set_new(o, "command", json_string(name));
	json_object_set_new(o, "id", id != NULL ? json_string(id) : json_null());
	json_object_set_new(o, "status", json_string("ok"));
	json_object_set_new(o, "result", json_string(text));
	print_json(o);
	json_decref(o);
}

/* exit_for - the exit status for a DONE status */
static int
exit_for(uint32_t status)
{
	switch (status) {
	case 0:
		return 0;
	case EPERM:
		return EX_NOPERM;
	case EINVAL:
		return EXIT_USAGE;
	default:
		return 1;
	}
}

/* report_outcome - what a finished queue request prints: the message of
 * `show -m`, the mailq trailer, the error or the result line */
static void
report_outcome(const struct qcmd *cmd, const char *id, const struct qopts *q,
    uint32_t status, const char *text, json_t *last, int fd)
{
	if (status == 0 && cmd->row == row_show && q->message && fd != -1) {
		if (q->json && last != NULL) {
			json_message(last, fd);
			print_json(last);
		} else if (!q->json)
			print_message(fd);
	}
	if (status == 0 && cmd->row == row_list && !q->json)
		printf(q->rows == 0 ? "Mail queue is empty\n" :
		    "-- %llu Kbytes in %u Request%s.\n", (q->bytes + 1023) / 1024,
		    q->rows, q->rows == 1 ? "" : "s");
	if (status != 0)
		fprintf(stderr, "posternctl: queue %s%s%s: %s\n", cmd->name,
		    id ? " " : "", id ? id : "", text);
	else if (cmd->row == NULL && q->json)
		print_result(cmd->name, id, text);
	else if (cmd->row == NULL)
		printf("%s%s%s\n", id ? id : "queue", ": ", text);
}

/* request - send the command; print rows and the outcome; exit status */
static int
request(int sock, const struct qcmd *cmd, const char *id, struct qopts *q)
{
	struct msgbuf b, store;
	struct ipc_msg m;
	json_t *o, *last = NULL;
	uint32_t status = 0;
	const char *text = "", *s;
	int rc = -1, fd = -1;

	msgbuf_init(&b);
	msgbuf_init(&store);
	msg_add_str(&b, cmd->name);
	msg_add_str(&b, id != NULL ? id : "");
	msg_add_u32(&b, q->message ? IPC_CTL_F_MESSAGE : 0);
	if (ipc_send_blocking(sock, IPC_QUEUED_CTL_REQUEST, &b, -1) == -1)
		goto down;
	while (rc == -1 && ipc_recv_blocking(sock, &store, &m) == 0) {
		if (m.type == IPC_CTL_ROW) {
			s = msg_get_str(&m.r);
			if (!msg_ok(&m.r) || (o = json_loads(s, 0, NULL)) == NULL)
				goto down;
			q->bytes += (unsigned long long)jint(o, "size");
			if (q->json && !q->message)
				print_json(o);
			else if (!q->json)
				cmd->row(o, q);
			q->rows++;
			json_decref(last);
			last = o;
		} else if (m.type == IPC_CTL_DONE) {
			status = msg_get_u32(&m.r);
			text = msg_get_str(&m.r);
			fd = m.fd;
			if (!msg_ok(&m.r))
				goto down;
			rc = exit_for(status);
		} else
			goto down;
	}
	if (rc == -1)
		goto down;
	report_outcome(cmd, id, q, status, text, last, fd);
	goto out;
down:
	fprintf(stderr, "posternctl: the queue manager did not answer "
	    "(is postern running?)\n");
	rc = EX_UNAVAILABLE;
out:
	if (fd != -1)
		close(fd);
	json_decref(last);
	msgbuf_free(&b);
	msgbuf_free(&store);
	return rc;
}

/* qcmd_find - the queue command called name, or NULL */
static const struct qcmd *
qcmd_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(qcmds) / sizeof(qcmds[0]); i++)
		if (strcmp(qcmds[i].name, name) == 0)
			return &qcmds[i];
	return NULL;
}

/* parse_opts - --json, --message; the index of the first operand, or -1 */
static int
parse_opts(int argc, char **argv, struct qopts *q)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "message", no_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "jm", longopts, NULL)) != -1) {
		if (ch == 'j')
			q->json = 1;
		else if (ch == 'm')
			q->message = 1;
		else
			return -1;
	}
	return optind;
}

/* posternctl_queue - "queue SUBCOMMAND [--json] [--message] [ID]" */
int
posternctl_queue(const char *config, int argc, char **argv)
{
	struct qopts q = { 0 };
	const struct qcmd *cmd;
	const char *id = NULL;
	char err[1024];
	struct conf *c;
	int first, sock, rc;

	if (argc < 2 || (cmd = qcmd_find(argv[1])) == NULL)
		return queue_usage();
	if ((first = parse_opts(argc - 1, argv + 1, &q)) == -1)
		return queue_usage();
	first++;                /* index in argv */
	if (argc - first > 1 || (cmd->needs_id == 1 && argc - first != 1) ||
	    (cmd->needs_id == 0 && argc - first != 0) ||
	    (q.message && cmd->row != row_show))
		return queue_usage();
	if (argc - first == 1)
		id = argv[first];
	if ((c = conf_load(config, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return EXIT_CONFIG;
	}
	if ((sock = ctlsock_connect(c->control_socket, CTL_TIMEOUT)) == -1) {
		fprintf(stderr, "posternctl: cannot connect to %s: %s (is postern "
		    "running?)\n", c->control_socket, strerror(errno));
		conf_free(&c);
		return EX_UNAVAILABLE;
	}
	conf_free(&c);
	rc = request(sock, cmd, id, &q);
	close(sock);
	return rc;
}
