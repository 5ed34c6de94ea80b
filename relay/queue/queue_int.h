#ifndef RELAY_QUEUE_INT_H
#define RELAY_QUEUE_INT_H
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

#endif
