/*
 * queued_index.c - the queue index: an LMDB environment in SPOOL/index
 * with two named databases.
 *
 *   "msg"   key: queue id (16 bytes)
 *           val: u32 version (1 to 3), str sender, i64 arrival, u64 size,
 *                str client, str helo, str authuser, u32 nrcpt,
 *                u32 envelope flags (ENV_F_*; version 3: absent before,
 *                read as 0, "not declared": delivery infers them)
 *   "rcpt"  key: queue id (16 bytes) + recipient index (u32 big-endian,
 *                so a message's recipients sort together and in order)
 *           val: u32 version (2 or 3, same layout; 1 without the
 *                flags), str address, u32 state, u32 attempts,
 *                i64 next_attempt, str last_dsn, str last_reply,
 *                u32 flags (QRCPT_F_*; absent in version 1 records)
 * Values use the msgbuf encoding (common/msgbuf.h).
 *
 * Owns: the LMDB environment, opened in this process after fork (LMDB
 * caveat: never across fork), default flags so every commit is durable
 * (no MDB_NOSYNC, no MDB_NOMETASYNC). Transactions are short: one per
 * group commit, one per delivery result, one read transaction at start.
 * Every mdb_* call goes through idx_rc(), which logs the call and, on
 * failure, mdb_strerror() (STYLE 12); MDB_PANIC is fatal so the master
 * restarts queued and recovery rebuilds the schedule.
 *
 * SECURITY: runs as the unprivileged user; keys are validated queue ids
 * and values are decoded with bounds-checked readers: a record that does
 * not decode marks its message broken (kept, never delivered), it never
 * crashes the process.
 * STANDARDS: none.
 */
#include "config.h"

#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "log.h"
#include "msgbuf.h"
#include "queued.h"
#include "spool.h"
#include "util.h"

#define IDX_MAXDBS 4
/* Less free space than this on the index's file system is "full". */
#define IDX_FS_LOW (1024u * 1024)
#define RCPT_KEY_LEN (QUEUE_ID_LEN + 4)

static MDB_env *idx_env;
static MDB_dbi dbi_msg;
static MDB_dbi dbi_rcpt;

/* idx_rc - the wrapper every mdb_* call goes through: log it, return rc */
static int
idx_rc(const char *call, const char *what, int rc)
{
	if (rc == MDB_PANIC)
		fatalx("lmdb: %s %s: %s", call, what, mdb_strerror(rc));
	if (rc == 0 || rc == MDB_NOTFOUND)
		log_debug("lmdb: %s %s: %s", call, what,
		    rc == 0 ? "ok" : "not found");
	else
		log_warnx("lmdb: %s %s: %s", call, what, mdb_strerror(rc));
	return rc;
}

/* idx_void - log a void mdb_* call (abort, close) */
static void
idx_void(const char *call, const char *what)
{
	log_debug("lmdb: %s %s", call, what);
}

/* key_msg - the "msg" key of a queue id */
static void
key_msg(MDB_val *k, const char *id)
{
	k->mv_size = QUEUE_ID_LEN;
	k->mv_data = (void *)(uintptr_t)id;
}

/* key_rcpt - the "rcpt" key of (id, index) into buf */
static void
key_rcpt(MDB_val *k, uint8_t *buf, const char *id, uint32_t index)
{
	memcpy(buf, id, QUEUE_ID_LEN);
	buf[QUEUE_ID_LEN] = (uint8_t)(index >> 24);
	buf[QUEUE_ID_LEN + 1] = (uint8_t)(index >> 16);
	buf[QUEUE_ID_LEN + 2] = (uint8_t)(index >> 8);
	buf[QUEUE_ID_LEN + 3] = (uint8_t)index;
	k->mv_size = RCPT_KEY_LEN;
	k->mv_data = buf;
}

/* key_rcpt_index - the recipient index of a "rcpt" key */
static uint32_t
key_rcpt_index(const MDB_val *k)
{
	const uint8_t *p = (const uint8_t *)k->mv_data + QUEUE_ID_LEN;

	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* key_has_id - 1 if key k starts with queue id 'id' */
static int
key_has_id(const MDB_val *k, const char *id, size_t len)
{
	return k->mv_size == len && memcmp(k->mv_data, id, QUEUE_ID_LEN) == 0;
}

/* qidx_open - open (creating) the environment and both databases with
 * a map of mapsize bytes (a larger map already in the file wins); fatal */
void
qidx_open(const char *dir, size_t mapsize)
{
	MDB_txn *txn;
	int rc, dead = 0;

	if (idx_rc("mdb_env_create", dir, mdb_env_create(&idx_env)) != 0 ||
	    idx_rc("mdb_env_set_maxdbs", dir,
	    mdb_env_set_maxdbs(idx_env, IDX_MAXDBS)) != 0 ||
	    idx_rc("mdb_env_set_mapsize", dir,
	    mdb_env_set_mapsize(idx_env, mapsize)) != 0)
		fatalx("cannot set up the queue index %s", dir);
	rc = idx_rc("mdb_env_open", dir, mdb_env_open(idx_env, dir, 0, 0600));
	if (rc != 0)
		fatalx("cannot open the queue index %s: %s", dir, mdb_strerror(rc));
	/* A SIGKILLed queued leaves its reader slot behind: clear it. */
	idx_rc("mdb_reader_check", dir, mdb_reader_check(idx_env, &dead));
	if (dead > 0)
		log_info("queue index: cleared %d stale reader slot(s)", dead);
	if (idx_rc("mdb_txn_begin", dir, mdb_txn_begin(idx_env, NULL, 0, &txn)) != 0)
		fatalx("cannot open the queue index %s", dir);
	if (idx_rc("mdb_dbi_open", "msg",
	    mdb_dbi_open(txn, "msg", MDB_CREATE, &dbi_msg)) != 0 ||
	    idx_rc("mdb_dbi_open", "rcpt",
	    mdb_dbi_open(txn, "rcpt", MDB_CREATE, &dbi_rcpt)) != 0) {
		qidx_abort(txn);
		fatalx("cannot open the queue index databases in %s", dir);
	}
	if (idx_rc("mdb_txn_commit", dir, mdb_txn_commit(txn)) != 0)
		fatalx("cannot open the queue index %s", dir);
}

/* qidx_close - close the environment (at exit; commits are durable) */
void
qidx_close(void)
{
	if (idx_env == NULL)
		return;
	mdb_env_close(idx_env);
	idx_void("mdb_env_close", "env");
	idx_env = NULL;
}

/* qidx_begin - start a write transaction */
int
qidx_begin(struct MDB_txn **txn)
{
	return idx_rc("mdb_txn_begin", "write", mdb_txn_begin(idx_env, NULL, 0, txn));
}

/* qidx_commit - commit durably; the handle is gone either way */
int
qidx_commit(struct MDB_txn *txn)
{
	return idx_rc("mdb_txn_commit", "write", mdb_txn_commit(txn));
}

/* qidx_abort - abandon a transaction */
void
qidx_abort(struct MDB_txn *txn)
{
	mdb_txn_abort(txn);
	idx_void("mdb_txn_abort", "txn");
}

/* qidx_map_info - the map's size and the bytes up to its last page
 * written (an upper bound of what is in use); page size in *psize */
void
qidx_map_info(uint64_t *mapsize, uint64_t *written, uint64_t *psize)
{
	MDB_envinfo info;
	MDB_stat st;

	mdb_env_info(idx_env, &info);
	mdb_env_stat(idx_env, &st);
	*psize = st.ms_psize;
	*mapsize = info.me_mapsize;
	*written = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
}

/* qidx_free_pages - pages on LMDB's free list (reusable), read as
 * mdb_stat -f does: each record of database 0 is a page-number list
 * whose first word is its length. -1 when it cannot be read. */
int64_t
qidx_free_pages(void)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int64_t n = 0;
	int rc;

	if (idx_rc("mdb_txn_begin", "free list",
	    mdb_txn_begin(idx_env, NULL, MDB_RDONLY, &txn)) != 0)
		return -1;
	if (idx_rc("mdb_cursor_open", "free list", mdb_cursor_open(txn, 0, &cur)) != 0) {
		qidx_abort(txn);
		return -1;
	}
	while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0) {
		size_t len;

		if (v.mv_size >= sizeof(len)) {
			memcpy(&len, v.mv_data, sizeof(len));
			n += (int64_t)len;
		}
	}
	mdb_cursor_close(cur);
	qidx_abort(txn);
	return rc == MDB_NOTFOUND ? n : -1;
}

/* qidx_set_mapsize - grow the map; only with no transaction open */
int
qidx_set_mapsize(size_t size)
{
	return idx_rc("mdb_env_set_mapsize", "grow",
	    mdb_env_set_mapsize(idx_env, size));
}

/* index_fs_full - 1 if the index's file system has (almost) no room:
 * LMDB turns a short write into EIO, which is a full disk there */
static int
index_fs_full(void)
{
	struct statvfs vfs;

	if (statvfs(qspool_index_dir(), &vfs) == -1)
		return 0;
	return (uint64_t)vfs.f_bavail * vfs.f_frsize < IDX_FS_LOW;
}

/* qidx_errno - an errno for a reply: MDB_MAP_FULL, and a write error on
 * a full file system, are "no room" (ENOSPC: the client gets 452) */
int
qidx_errno(int rc)
{
	if (rc == MDB_MAP_FULL || rc == ENOSPC)
		return ENOSPC;
	if (rc == EIO && index_fs_full())
		return ENOSPC;
	if (rc > 0)
		return rc;      /* LMDB passes system errors through */
	return EIO;
}

/* qidx_put_msg - store the message record of m */
int
qidx_put_msg(struct MDB_txn *txn, const struct qmsg *m)
{
	struct msgbuf b;
	MDB_val k, v;
	int rc;

	msgbuf_init(&b);
	msg_add_u32(&b, QUEUED_RECORD_VERSION);
	msg_add_str(&b, m->sender);
	msg_add_i64(&b, m->arrival);
	msg_add_u64(&b, m->size);
	msg_add_str(&b, m->client);
	msg_add_str(&b, m->helo);
	msg_add_str(&b, m->authuser);
	msg_add_u32(&b, m->nrcpt);
	msg_add_u32(&b, m->envflags);
	key_msg(&k, m->id);
	v.mv_size = b.len;
	v.mv_data = b.data;
	rc = idx_rc("mdb_put", "msg", mdb_put(txn, dbi_msg, &k, &v, 0));
	msgbuf_free(&b);
	return rc;
}

/* qidx_put_rcpt - store (or replace) the record of recipient r of m */
int
qidx_put_rcpt(struct MDB_txn *txn, const struct qmsg *m, const struct qrcpt *r)
{
	uint8_t kb[RCPT_KEY_LEN];
	struct msgbuf b;
	MDB_val k, v;
	int rc;

	msgbuf_init(&b);
	msg_add_u32(&b, QUEUED_RECORD_VERSION);
	msg_add_str(&b, r->address);
	msg_add_u32(&b, r->state);
	msg_add_u32(&b, r->attempts);
	msg_add_i64(&b, r->next_attempt);
	msg_add_str(&b, r->last_dsn);
	msg_add_str(&b, r->last_reply);
	msg_add_u32(&b, r->flags);
	key_rcpt(&k, kb, m->id, r->index);
	v.mv_size = b.len;
	v.mv_data = b.data;
	rc = idx_rc("mdb_put", "rcpt", mdb_put(txn, dbi_rcpt, &k, &v, 0));
	msgbuf_free(&b);
	return rc;
}

/* qidx_del_msg - delete the message record of id and all its recipients */
int
qidx_del_msg(struct MDB_txn *txn, const char *id)
{
	uint8_t kb[RCPT_KEY_LEN];
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	key_msg(&k, id);
	rc = idx_rc("mdb_del", "msg", mdb_del(txn, dbi_msg, &k, NULL));
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if ((rc = idx_rc("mdb_cursor_open", "rcpt",
	    mdb_cursor_open(txn, dbi_rcpt, &cur))) != 0)
		return rc;
	for (;;) {
		key_rcpt(&k, kb, id, 0);
		rc = idx_rc("mdb_cursor_get", "rcpt",
		    mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE));
		if (rc == MDB_NOTFOUND || (rc == 0 && !key_has_id(&k, id, RCPT_KEY_LEN))) {
			rc = 0;
			break;
		}
		if (rc != 0 || (rc = idx_rc("mdb_cursor_del", "rcpt",
		    mdb_cursor_del(cur, 0))) != 0)
			break;
	}
	mdb_cursor_close(cur);
	idx_void("mdb_cursor_close", "rcpt");
	return rc;
}

/* decode_msg - a struct qmsg from a "msg" record; broken if malformed */
static struct qmsg *
decode_msg(const char *id, const MDB_val *v)
{
	struct msgreader r;
	struct qmsg *m;
	const char *sender, *client, *helo, *authuser;
	uint32_t version, nrcpt, envflags;
	int64_t arrival;
	uint64_t size;

	msgreader_init(&r, v->mv_data, v->mv_size);
	version = msg_get_u32(&r);
	sender = msg_get_str(&r);
	arrival = msg_get_i64(&r);
	size = msg_get_u64(&r);
	client = msg_get_str(&r);
	helo = msg_get_str(&r);
	authuser = msg_get_str(&r);
	nrcpt = msg_get_u32(&r);
	envflags = version >= 3 ? msg_get_u32(&r) : 0;
	if (!msg_ok(&r) || version < 1 || version > QUEUED_RECORD_VERSION ||
	    nrcpt == 0 ||
	    nrcpt > 10 * 1000 * 1000) {
		log_warnx("%s: unreadable message record (version %u), kept aside",
		    id, version);
		m = qmsg_new(id, 0);
		m->broken = 1;
		return m;
	}
	m = qmsg_new(id, nrcpt);
	m->sender = xstrdup(sender);
	m->arrival = arrival;
	m->arrival_ms = (uint64_t)(arrival > 0 ? arrival : 0) * 1000;
	m->size = size;
	m->client = xstrdup(client);
	m->helo = xstrdup(helo);
	m->authuser = xstrdup(authuser);
	m->envflags = envflags;
	return m;
}

/* decode_rcpt - fill r from a "rcpt" record; -1 if malformed */
static int
decode_rcpt(struct qrcpt *r, const MDB_val *v)
{
	struct msgreader rd;
	const char *address, *dsn, *reply;
	uint32_t version;

	msgreader_init(&rd, v->mv_data, v->mv_size);
	version = msg_get_u32(&rd);
	address = msg_get_str(&rd);
	r->state = msg_get_u32(&rd);
	r->attempts = msg_get_u32(&rd);
	r->next_attempt = msg_get_i64(&rd);
	dsn = msg_get_str(&rd);
	reply = msg_get_str(&rd);
	r->flags = version >= 2 ? msg_get_u32(&rd) : 0;
	if (!msg_ok(&rd) || version < 1 || version > QUEUED_RECORD_VERSION ||
	    r->state > RCPT_HELD)
		return -1;
	r->address = xstrdup(address);
	r->last_dsn = xstrdup(dsn);
	r->last_reply = xstrdup(reply);
	return 0;
}

/* load_rcpts - read the recipient records of m (broken if any is bad) */
static void
load_rcpts(MDB_txn *txn, struct qmsg *m)
{
	uint8_t kb[RCPT_KEY_LEN];
	MDB_cursor *cur;
	MDB_val k, v;
	uint32_t i, index;
	int rc;

	if (idx_rc("mdb_cursor_open", "rcpt", mdb_cursor_open(txn, dbi_rcpt, &cur)) != 0) {
		m->broken = 1;
		return;
	}
	key_rcpt(&k, kb, m->id, 0);
	for (rc = idx_rc("mdb_cursor_get", "rcpt", mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE));
	    rc == 0 && key_has_id(&k, m->id, RCPT_KEY_LEN);
	    rc = idx_rc("mdb_cursor_get", "rcpt", mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
		index = key_rcpt_index(&k);
		if (index >= m->nrcpt || decode_rcpt(&m->rcpt[index], &v) != 0) {
			log_warnx("%s: unreadable recipient record %u", m->id, index);
			m->broken = 1;
		}
	}
	mdb_cursor_close(cur);
	idx_void("mdb_cursor_close", "rcpt");
	for (i = 0; i < m->nrcpt && !m->broken; i++)
		if (m->rcpt[i].address == NULL) {
			log_warnx("%s: recipient record %u missing", m->id, i);
			m->broken = 1;
		}
}

/* load_msgs - every message record with its recipients, into *out */
static size_t
load_msgs(MDB_txn *txn, struct qmsg ***out)
{
	char id[QUEUE_ID_LEN + 1];
	MDB_cursor *cur;
	MDB_val k, v;
	struct qmsg **list = NULL, *m;
	size_t n = 0, cap = 0;
	int rc;

	if (idx_rc("mdb_cursor_open", "msg", mdb_cursor_open(txn, dbi_msg, &cur)) != 0)
		fatalx("cannot read the queue index");
	for (rc = idx_rc("mdb_cursor_get", "msg", mdb_cursor_get(cur, &k, &v, MDB_FIRST));
	    rc == 0;
	    rc = idx_rc("mdb_cursor_get", "msg", mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
		if (k.mv_size != QUEUE_ID_LEN)
			goto badkey;
		memcpy(id, k.mv_data, QUEUE_ID_LEN);
		id[QUEUE_ID_LEN] = '\0';
		if (!queue_id_valid(id))
			goto badkey;
		m = decode_msg(id, &v);
		if (!m->broken)
			load_rcpts(txn, m);
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			list = xreallocarray(list, cap, sizeof(*list));
		}
		list[n++] = m;
		continue;
badkey:
		log_warnx("queue index: ignoring a message record with a bad key");
	}
	if (rc != MDB_NOTFOUND)
		fatalx("cannot read the queue index");
	mdb_cursor_close(cur);
	idx_void("mdb_cursor_close", "msg");
	*out = list;
	return n;
}

/* find_orphans - queue ids of recipient records without a message record */
static size_t
find_orphans(MDB_txn *txn, char (**out)[QUEUE_ID_LEN + 1])
{
	char (*ids)[QUEUE_ID_LEN + 1] = NULL;
	MDB_cursor *cur;
	MDB_val k, v, mk, mv;
	size_t n = 0, cap = 0;
	int rc;

	if (idx_rc("mdb_cursor_open", "rcpt", mdb_cursor_open(txn, dbi_rcpt, &cur)) != 0)
		fatalx("cannot read the queue index");
	for (rc = idx_rc("mdb_cursor_get", "rcpt", mdb_cursor_get(cur, &k, &v, MDB_FIRST));
	    rc == 0;
	    rc = idx_rc("mdb_cursor_get", "rcpt", mdb_cursor_get(cur, &k, &v, MDB_NEXT))) {
		if (k.mv_size < QUEUE_ID_LEN)
			continue;
		if (n > 0 && memcmp(ids[n - 1], k.mv_data, QUEUE_ID_LEN) == 0)
			continue;
		mk.mv_size = QUEUE_ID_LEN;
		mk.mv_data = k.mv_data;
		if (idx_rc("mdb_get", "msg", mdb_get(txn, dbi_msg, &mk, &mv)) != MDB_NOTFOUND)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			ids = xreallocarray(ids, cap, sizeof(*ids));
		}
		memcpy(ids[n], k.mv_data, QUEUE_ID_LEN);
		ids[n][QUEUE_ID_LEN] = '\0';
		n++;
	}
	mdb_cursor_close(cur);
	idx_void("mdb_cursor_close", "rcpt");
	*out = ids;
	return n;
}

/* drop_orphans - delete the recipient records of ids (one transaction) */
static void
drop_orphans(char (*ids)[QUEUE_ID_LEN + 1], size_t n)
{
	MDB_txn *txn;
	size_t i;

	if (n == 0 || qidx_begin(&txn) != 0)
		return;
	for (i = 0; i < n; i++) {
		log_warnx("%s: recipient records without a message record, removed",
		    ids[i]);
		if (qidx_del_msg(txn, ids[i]) != 0) {
			qidx_abort(txn);
			return;
		}
	}
	qidx_commit(txn);
}

/* qidx_load - hand every indexed message to fn; drop orphan records */
void
qidx_load(void (*fn)(struct qmsg *m, void *arg), void *arg)
{
	char (*orphans)[QUEUE_ID_LEN + 1] = NULL;
	struct qmsg **list = NULL;
	MDB_txn *txn;
	size_t n, norphans, i;

	if (idx_rc("mdb_txn_begin", "read", mdb_txn_begin(idx_env, NULL,
	    MDB_RDONLY, &txn)) != 0)
		fatalx("cannot read the queue index");
	n = load_msgs(txn, &list);
	norphans = find_orphans(txn, &orphans);
	qidx_abort(txn);        /* end the read txn before any write txn */
	drop_orphans(orphans, norphans);
	free(orphans);
	for (i = 0; i < n; i++)
		fn(list[i], arg);
	free(list);
}
