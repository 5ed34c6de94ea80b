#ifndef RELAY_QUEUE_INT_H
#define RELAY_QUEUE_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
/*
 * relay_queue internals shared with the unit tests only (fault injection).
 * STYLE.md puts module-private declarations in <mod>_int.h; this file is
 * the queue's own (queue/).
 */

/* The blocking operations a fault can be injected into. */
enum queue__op {
	RELAY__QOP_OPEN,    /* creating a spool file */
	RELAY__QOP_WRITE,   /* write(2) of content or envelope */
	RELAY__QOP_FSYNC,   /* fsync(2) of a file */
	RELAY__QOP_RENAME,  /* rename(2) into the queue */
	RELAY__QOP_DIRSYNC, /* fsync(2) of the queue directory */
};

/*
 * When set, called (in a thread-pool thread) before each such operation
 * with the path concerned; a non-zero return is an errno the operation
 * then fails with (ENOSPC to simulate a full disk). NULL in production.
 */
extern int (*queue__fault)(enum queue__op op, const char *path);

/*
 * The pool of spent spool files (spool_dir/pool/, relay_queue_pool.c):
 * the files of removed messages wait there, under a name that is a
 * number, to be written over by a later message instead of creating and
 * freeing an inode per file. A FIFO of names, each usable from its
 * ready time on. Loop thread only; no I/O.
 */
#define QUEUE__POOL_MAX 1024
/* No name: "create a new file" / "unlink instead of keeping". */
#define QUEUE__POOL_NONE UINT64_MAX

struct queue__pool_slot {
	uint64_t name;
	uint64_t ready_us; /* monotonic; usable from then on */
};

struct queue__pool {
	/* private */
	struct queue__pool_slot ring[QUEUE__POOL_MAX];
	size_t head, n;
	size_t pending;     /* names reserved for files on their way in */
	uint64_t next_name; /* never handed out before */
};

/* A fresh name for a file about to be moved into the pool, or
 * QUEUE__POOL_NONE when the pool is full (the file is unlinked). Every
 * reserved name is settled once with queue__pool_settle(). */
uint64_t queue__pool_reserve(struct queue__pool *p);
/* Ends a reservation: when the file was moved into the pool (in), it is
 * usable from ready_us on. */
void queue__pool_settle(struct queue__pool *p, uint64_t name, bool in,
    uint64_t ready_us);
/* Puts name (a file in the pool) at the end of the FIFO, ready at
 * ready_us; false when the pool is full (the file stays unlisted). */
bool queue__pool_put(struct queue__pool *p, uint64_t name, uint64_t ready_us);
/* The oldest name ready at now_us, taken out, or QUEUE__POOL_NONE. */
uint64_t queue__pool_take(struct queue__pool *p, uint64_t now_us);
/* Names of files in the pool (ready or not). */
size_t queue__pool_count(const struct queue__pool *p);

#endif
