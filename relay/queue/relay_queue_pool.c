/*
 * The pool of spent spool files: which names in spool_dir/pool/ hold a
 * file that a new message may write over, and from when (queue_int.h).
 *
 * Why a pool: on ext4 creating a file (inode allocation, its bitmap
 * search) and freeing one (eviction, block freeing) cost more CPU than
 * writing the message. Postfix keeps one file per message; we keep two,
 * and recycle both (relay/QUEUE.md, "The pool").
 *
 * Why a FIFO with a ready time: a file leaves queue/ by rename into the
 * pool, and the queue directory is fsync'd before its name is put here,
 * so on disk no queue/ name can still point at a file being rewritten.
 * Readers without the lock (queue show) may still hold it open for a
 * moment: the ready time keeps it untouched a while longer.
 */
#include "queue_int.h"

#include <assert.h>

uint64_t
queue__pool_reserve(struct queue__pool *p)
{
	if (p->n + p->pending >= QUEUE__POOL_MAX ||
	    p->next_name == QUEUE__POOL_NONE)
		return QUEUE__POOL_NONE;
	p->pending++;
	return p->next_name++;
}

void
queue__pool_settle(struct queue__pool *p, uint64_t name, bool in,
    uint64_t ready_us)
{
	if (name == QUEUE__POOL_NONE)
		return;
	assert(p->pending > 0);
	p->pending--;
	if (in)
		(void)queue__pool_put(p, name, ready_us);
}

bool
queue__pool_put(struct queue__pool *p, uint64_t name, uint64_t ready_us)
{
	if (name == QUEUE__POOL_NONE || p->n >= QUEUE__POOL_MAX)
		return false;
	p->ring[(p->head + p->n) % QUEUE__POOL_MAX] =
	    (struct queue__pool_slot){ .name = name, .ready_us = ready_us };
	p->n++;
	if (name >= p->next_name)
		p->next_name = name + 1;
	return true;
}

uint64_t
queue__pool_take(struct queue__pool *p, uint64_t now_us)
{
	uint64_t name;

	if (p->n == 0 || p->ring[p->head].ready_us > now_us)
		return QUEUE__POOL_NONE;
	name = p->ring[p->head].name;
	p->head = (p->head + 1) % QUEUE__POOL_MAX;
	p->n--;
	return name;
}

size_t
queue__pool_count(const struct queue__pool *p)
{
	return p->n;
}
