/*
 * httpd_ready.c - GET /readyz: can this instance take and keep mail now?
 *
 * Ready means: every child in the master's table is up, the link to
 * queued is up, the spool's msg/ and tmp/ directories are writable and
 * searchable by the postern user, the LMDB index (index/data.mdb) is
 * readable, and the file system of spool_dir has at least ready_min_free
 * bytes available to unprivileged users. 200 {"status":"ready", ...} or
 * 503 {"status":"unavailable","problems":[...]} naming each failed check.
 * /healthz stays the liveness probe (children only).
 *
 * Owns: nothing but the checks. httpd runs as the same user as queued, so
 * access(2) answers for the user that writes the spool.
 * SECURITY: uses access(2) and statvfs(2) only: opens no spool file, and
 * reports fixed texts and numbers, never a path from a request.
 * STANDARDS: RFC 9110 (200, 503), RFC 8259 (JSON).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <event2/http.h>
#include <jansson.h>

#include "conf.h"
#include "httpd.h"
#include "spool.h"

/* One check: its name and function (appends problems, returns 0 or -1). */
struct ready_check {
	const char *name;
	int (*fn)(json_t *problems);
};

/* problem - append "what" (with an errno text when err != 0) */
static int
problem(json_t *problems, const char *what, int err)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s%s%s", what, err ? ": " : "",
	    err ? strerror(err) : "");
	json_array_append_new(problems, json_string(buf));
	return -1;
}

/* check_children - every child up */
static int
check_children(json_t *problems)
{
	json_t *down = json_array();
	size_t i, n = httpd_down_children(down);
	char buf[96];

	for (i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "child %s is down",
		    json_string_value(json_array_get(down, i)));
		problem(problems, buf, 0);
	}
	json_decref(down);
	return n == 0 ? 0 : -1;
}

/* check_queue - the link to queued is up */
static int
check_queue(json_t *problems)
{
	return httpd_queue() != NULL ? 0 :
	    problem(problems, "the link to queued is down", 0);
}

/* check_access - spool_dir/sub accessible with mode */
static int
check_access(json_t *problems, const char *sub, int mode, const char *what)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", httpd_conf()->spool_dir, sub);
	return access(path, mode) == 0 ? 0 : problem(problems, what, errno);
}

/* check_spool - msg/ and tmp/ writable */
static int
check_spool(json_t *problems)
{
	int r = check_access(problems, SPOOL_MSG, W_OK | X_OK,
	    "spool directory msg/ is not writable");

	return check_access(problems, SPOOL_TMP, W_OK | X_OK,
	    "spool directory tmp/ is not writable") | r;
}

/* check_index - the LMDB data file readable */
static int
check_index(json_t *problems)
{
	return check_access(problems, SPOOL_INDEX "/data.mdb", R_OK | W_OK,
	    "queue index (LMDB) is not accessible");
}

/* check_disk - free space above the floor */
static int
check_disk(json_t *problems)
{
	struct statvfs sv;
	unsigned long long avail;
	char buf[160];

	if (statvfs(httpd_conf()->spool_dir, &sv) == -1)
		return problem(problems, "cannot stat the spool file system", errno);
	avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
	if (avail >= httpd_conf()->http.ready_min_free)
		return 0;
	snprintf(buf, sizeof(buf), "spool disk space low: %llu bytes free, "
	    "ready_min_free is %zu", avail, httpd_conf()->http.ready_min_free);
	return problem(problems, buf, 0);
}

static const struct ready_check checks[] = {
	{ "children", check_children },
	{ "queue", check_queue },
	{ "spool", check_spool },
	{ "index", check_index },
	{ "disk", check_disk },
};

/* ready_route - run every check; 200 or 503 */
void
ready_route(struct evhttp_request *req)
{
	json_t *problems = json_array(), *ok = json_object();
	size_t i;
	int bad = 0;

	for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		int r = checks[i].fn(problems);

		json_object_set_new(ok, checks[i].name, json_string(r == 0 ? "ok" :
		    "failed"));
		bad |= r != 0;
	}
	if (!bad) {
		json_decref(problems);
		httpd_reply_json(req, HTTP_OK, "OK",
		    json_pack("{s:s,s:o}", "status", "ready", "checks", ok));
		return;
	}
	httpd_reply_json(req, HTTP_SERVUNAVAIL, "Service Unavailable",
	    json_pack("{s:s,s:o,s:o}", "status", "unavailable", "checks", ok,
	    "problems", problems));
}
