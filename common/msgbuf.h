/*
 * msgbuf.h - typed, bounds-checked marshalling (OpenSMTPD mproc.c).
 *
 * The same encoding carries IPC payloads and LMDB records: little-endian
 * fixed integers and length-prefixed strings (u32 length, bytes, NUL).
 * Writers grow a buffer up to MSGBUF_MAX; readers never run past the end:
 * an underflow sets r->err and returns 0 / "" so a caller can check once.
 * For IPC, msg_end() panics on an error or leftover bytes: a malformed
 * message between our own processes is a bug, and the process must die so
 * the master restarts it.
 */
#ifndef POSTERN_MSGBUF_H
#define POSTERN_MSGBUF_H

#include <stddef.h>
#include <stdint.h>

#define MSGBUF_MAX (4u * 1024 * 1024)

struct msgbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

struct msgreader {
	const uint8_t *data;
	size_t len;
	size_t off;
	int err;
};

/* msgbuf_init - empty buffer; msgbuf_reset keeps the storage */
void msgbuf_init(struct msgbuf *b);
void msgbuf_reset(struct msgbuf *b);
void msgbuf_free(struct msgbuf *b);
void msg_add_u8(struct msgbuf *b, uint8_t v);
void msg_add_u32(struct msgbuf *b, uint32_t v);
void msg_add_u64(struct msgbuf *b, uint64_t v);
void msg_add_i64(struct msgbuf *b, int64_t v);
/* msg_add_str - NULL is encoded as the empty string */
void msg_add_str(struct msgbuf *b, const char *s);
void msg_add_data(struct msgbuf *b, const void *p, size_t n);

void msgreader_init(struct msgreader *r, const void *data, size_t len);
uint8_t msg_get_u8(struct msgreader *r);
uint32_t msg_get_u32(struct msgreader *r);
uint64_t msg_get_u64(struct msgreader *r);
int64_t msg_get_i64(struct msgreader *r);
/* msg_get_str - pointer into the reader's data, valid while it lives */
const char *msg_get_str(struct msgreader *r);
/* msg_get_data - copy n bytes into p */
void msg_get_data(struct msgreader *r, void *p, size_t n);
/* msg_ok - 1 when nothing underflowed and every byte was consumed */
int msg_ok(const struct msgreader *r);
/* msg_end - panic(what) unless msg_ok() */
void msg_end(const struct msgreader *r, const char *what);

#endif
