/*
 * msgbuf.c - typed, bounds-checked marshalling for IPC payloads and LMDB
 * records (OpenSMTPD mproc.c).
 *
 * Owns: the encoding: little-endian fixed-width integers, strings as u32
 * length + bytes + NUL.
 * SECURITY: readers never run past their data; an underflow or a string
 * without its NUL sets r->err. Writers stop at MSGBUF_MAX (panic: our own
 * processes never build such messages).
 * STANDARDS: none.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "msgbuf.h"
#include "util.h"

/* msgbuf_init - an empty buffer without storage */
void
msgbuf_init(struct msgbuf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/* msgbuf_reset - empty the buffer, keep its storage */
void
msgbuf_reset(struct msgbuf *b)
{
	b->len = 0;
}

/* msgbuf_free - release the storage */
void
msgbuf_free(struct msgbuf *b)
{
	free(b->data);
	msgbuf_init(b);
}

/* msgbuf_room - make room for n more bytes, growing geometrically */
static void
msgbuf_room(struct msgbuf *b, size_t n)
{
	size_t need, cap;

	if (n > MSGBUF_MAX || b->len > MSGBUF_MAX - n)
		panic("msgbuf: %zu + %zu bytes exceeds MSGBUF_MAX", b->len, n);
	need = b->len + n;
	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	if (cap > MSGBUF_MAX)
		cap = MSGBUF_MAX;
	b->data = xreallocarray(b->data, cap, 1);
	b->cap = cap;
}

/* msg_add_data - append raw bytes */
void
msg_add_data(struct msgbuf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	msgbuf_room(b, n);
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

/* msg_add_le - append v as an n-byte little-endian integer */
static void
msg_add_le(struct msgbuf *b, uint64_t v, size_t n)
{
	uint8_t tmp[8];
	size_t i;

	for (i = 0; i < n; i++)
		tmp[i] = (uint8_t)(v >> (8 * i));
	msg_add_data(b, tmp, n);
}

/* msg_add_u8 - one byte */
void
msg_add_u8(struct msgbuf *b, uint8_t v)
{
	msg_add_le(b, v, 1);
}

/* msg_add_u32 - 32-bit little-endian */
void
msg_add_u32(struct msgbuf *b, uint32_t v)
{
	msg_add_le(b, v, 4);
}

/* msg_add_u64 - 64-bit little-endian */
void
msg_add_u64(struct msgbuf *b, uint64_t v)
{
	msg_add_le(b, v, 8);
}

/* msg_add_i64 - signed 64-bit, two's complement */
void
msg_add_i64(struct msgbuf *b, int64_t v)
{
	msg_add_le(b, (uint64_t)v, 8);
}

/* msg_add_str - u32 length, bytes, NUL; NULL encodes as "" */
void
msg_add_str(struct msgbuf *b, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n >= MSGBUF_MAX)
		panic("msgbuf: string of %zu bytes", n);
	msg_add_u32(b, (uint32_t)n);
	msg_add_data(b, s ? s : "", n);
	msg_add_u8(b, 0);
}

/* msgreader_init - read len bytes at data */
void
msgreader_init(struct msgreader *r, const void *data, size_t len)
{
	r->data = data;
	r->len = len;
	r->off = 0;
	r->err = 0;
}

/* msg_take - pointer to the next n bytes, or NULL and r->err set */
static const uint8_t *
msg_take(struct msgreader *r, size_t n)
{
	const uint8_t *p;

	if (r->err || n > r->len - r->off) {
		r->err = 1;
		return NULL;
	}
	p = r->data + r->off;
	r->off += n;
	return p;
}

/* msg_get_le - an n-byte little-endian integer, 0 on underflow */
static uint64_t
msg_get_le(struct msgreader *r, size_t n)
{
	const uint8_t *p = msg_take(r, n);
	uint64_t v = 0;
	size_t i;

	if (p == NULL)
		return 0;
	for (i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* msg_get_u8 - one byte */
uint8_t
msg_get_u8(struct msgreader *r)
{
	return (uint8_t)msg_get_le(r, 1);
}

/* msg_get_u32 - 32-bit little-endian */
uint32_t
msg_get_u32(struct msgreader *r)
{
	return (uint32_t)msg_get_le(r, 4);
}

/* msg_get_u64 - 64-bit little-endian */
uint64_t
msg_get_u64(struct msgreader *r)
{
	return msg_get_le(r, 8);
}

/* msg_get_i64 - signed 64-bit */
int64_t
msg_get_i64(struct msgreader *r)
{
	return (int64_t)msg_get_le(r, 8);
}

/* msg_get_str - a string in place; "" and r->err on malformed input */
const char *
msg_get_str(struct msgreader *r)
{
	uint32_t n = msg_get_u32(r);
	const uint8_t *p;

	if (r->err)
		return "";
	if ((size_t)n >= r->len - r->off) {
		r->err = 1;
		return "";
	}
	p = msg_take(r, (size_t)n + 1);
	if (p == NULL || p[n] != '\0' || memchr(p, '\0', n) != NULL) {
		r->err = 1;
		return "";
	}
	return (const char *)p;
}

/* msg_get_data - copy n bytes into p (zeros on underflow) */
void
msg_get_data(struct msgreader *r, void *p, size_t n)
{
	const uint8_t *q = msg_take(r, n);

	if (q == NULL)
		memset(p, 0, n);
	else if (n > 0)
		memcpy(p, q, n);
}

/* msg_ok - no underflow and nothing left over */
int
msg_ok(const struct msgreader *r)
{
	return !r->err && r->off == r->len;
}

/* msg_end - die unless the message was consumed exactly */
void
msg_end(const struct msgreader *r, const char *what)
{
	if (r->err)
		panic("%s: malformed message (short read)", what);
	if (r->off != r->len)
		panic("%s: malformed message (%zu bytes left over)", what,
		    r->len - r->off);
}
