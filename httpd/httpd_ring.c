/*
 * httpd_ring.c - fixed-capacity rings of counter samples and the
 * accumulator that turns fine samples into coarse ones (the status
 * page's last hour and last 24 hours).
 *
 * Owns: each ring's sample array, allocated once by ring_init().
 * SECURITY: no I/O; holds only numbers read from the shared stats.
 * STANDARDS: none.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "httpd_ring.h"
#include "log.h"
#include "util.h"

/* ring_init - cap slots, none used */
void
ring_init(struct ring *r, size_t cap)
{
	if (cap == 0)
		panic("ring_init: capacity 0");
	r->s = xcalloc(cap, sizeof(*r->s));
	r->cap = cap;
	r->n = r->next = 0;
}

/* ring_free - the slots */
void
ring_free(struct ring *r)
{
	free(r->s);
	r->s = NULL;
	r->cap = r->n = r->next = 0;
}

/* ring_push - s into the next slot; the oldest goes when full */
void
ring_push(struct ring *r, const struct ring_sample *s)
{
	r->s[r->next] = *s;
	r->next = (r->next + 1) % r->cap;
	if (r->n < r->cap)
		r->n++;
}

/* ring_len - how many samples it holds */
size_t
ring_len(const struct ring *r)
{
	return r->n;
}

/* ring_get - the i-th oldest sample */
const struct ring_sample *
ring_get(const struct ring *r, size_t i)
{
	if (i >= r->n)
		return NULL;
	return &r->s[(r->next + r->cap - r->n + i) % r->cap];
}

/* ring_acc_add - sum fine samples into one coarse sample */
int
ring_acc_add(struct ring_acc *a, const struct ring_sample *s, unsigned every,
    struct ring *coarse)
{
	int i;

	for (i = 0; i < RC_MAX; i++)
		a->sum.c[i] += s->c[i];
	memcpy(a->sum.g, s->g, sizeof(a->sum.g));
	a->sum.t = s->t;
	if (++a->n < every)
		return 0;
	ring_push(coarse, &a->sum);
	memset(a, 0, sizeof(*a));
	return 1;
}
