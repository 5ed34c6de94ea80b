/*
 * relay_queue: the durable spool.
 *
 * Layout of spool_dir (relay/QUEUE.md says the same for operators):
 *
 *     lock             flock(LOCK_EX) by the serving process; holds its pid
 *     tmp/             files being written; never meaningful after a crash
 *         ID.msg         content of a message being received
 *         ID.env         its first envelope, written at commit
 *         ID.upd         a new envelope version being written (update)
 *     queue/           committed messages
 *         ID.msg         content, immutable
 *         ID.env         envelope (relay_queue_env.c): sender, recipients
 *                        and their per-recipient state
 *     corrupt/         envelopes that did not parse at startup, kept for
 *                      a human
 *     pool/            spent files of removed messages, written over by
 *                      later ones (relay_queue_pool.c; QUEUE.md "The pool")
 *
 * A message EXISTS exactly when queue/ID.env exists. Every file enters
 * queue/ by rename(2) after its data was fsync'd, so readers never see a
 * partial file, and the directory is fsync'd before anyone is told.
 *
 * Commit protocol (relay_queue_writer_commit):
 *   1. content written to tmp/ID.msg as it arrives (thread pool), fsync
 *   2. envelope written to tmp/ID.env, fsync
 *   3. rename tmp/ID.msg -> queue/ID.msg
 *   4. rename tmp/ID.env -> queue/ID.env         <- commit point
 *   5. fsync(queue/)   (shared by all commits and updates ready at the
 *      time: group commit)
 *   6. callback: the SMTP server may now answer 250
 * Update protocol: tmp/ID.upd written + fsync, rename over queue/ID.env,
 * fsync(queue/), callback. Remove: rename queue/ID.env into pool/ (the
 * message is gone), then queue/ID.msg, both on the loop at once, callback; no fsync(queue/) of its
 * own (a crash before the next one repeats a delivery, never loses one);
 * only after the next successful one may a new message write over them. Files in tmp/ are pool files renamed there
 * when the pool has one ready (open_spool_file), written from offset 0
 * and cut to length (seal_file) before their fsync.
 *
 * Recovery at open (the spool lock proves no one else is writing):
 *   - queue/ID.env without queue/ID.msg but with tmp/ID.msg: step 4
 *     reached the disk before step 3 (allowed by POSIX); finish step 3.
 *   - queue/ID.env with no content anywhere: moved to corrupt/.
 *   - queue/ID.msg without queue/ID.env: a commit that never completed
 *     (no 250 was sent) or a remove cut short: unlinked.
 *   - everything in tmp/ is unlinked (torn content, torn envelopes and
 *     torn updates; the previous queue/ID.env survives an update).
 *   - pool/ is listed for reuse, except what may not be written over
 *     (pool_load).
 *
 * Loading at start (relay_queue_open_lazy + relay_queue_load_start): the
 * open lists queue/ by name only, recovers and sets the id clock, so
 * `serve` can answer before a single envelope was read; the envelopes are
 * then parsed in the thread pool in batches of LOAD_BATCH ids, at most
 * LOAD_INFLIGHT batches at a time, and each batch is added to the index
 * on the loop thread in id order. The spool stays the only truth: what a
 * batch could not read goes to corrupt/ exactly as at a blocking open.
 *
 * Memory: the index keeps one small struct entry per message (about 80
 * bytes), in id order; envelopes are read from disk when needed.
 * Removed entries are tombstones until more than half the array is dead.
 *
 * Threads: struct relay_queue and everything it points to are touched on
 * the loop thread only. A job (uv_work_t) carries copies of what its
 * thread-pool half needs (paths, buffers, an fd owned by one writer at a
 * time) and its result back.
 */
#include "relay_queue.h"
#include "queue_int.h"
#include "relay_clock.h"
#include "relay_log.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int (*queue__fault)(enum queue__op op, const char *path);

/* Content is written in pieces of this size (one write(2) each). */
#define CHUNK_SIZE (64 * 1024)
/* A removed message's files wait this long in the pool after their
 * removal is on disk before a new message writes over them, so that a
 * reader without the lock that opened one just before (queue show)
 * reads it whole. */
#define QUEUE_POOL_REUSE_US (1000 * 1000)
/* Content files larger than this are unlinked, not kept in the pool, so
 * that the pool holds at most QUEUE__POOL_MAX times this on disk. */
#define QUEUE_POOL_FILE_MAX (256 * 1024)
/* An envelope file larger than this is corrupt (10 attempts x rcpts). */
#define ENV_FILE_MAX (64 * 1024 * 1024)
/* Envelopes parsed by one start-up load job, and the jobs in flight: two
 * keep both cores busy and leave the rest of the pool to commits. */
#define LOAD_BATCH 1024
#define LOAD_INFLIGHT 2

/* ---------------------------------------------------------------- */
/* errors and blocking helpers (thread-pool side)                     */

const char *
relay_queue_strerror(int err)
{
	switch (err) {
	case RELAY_QUEUE_OK:
		return "success";
	case RELAY_QUEUE_ENOMEM:
		return "out of memory";
	case RELAY_QUEUE_ENOSPC:
		return "no space left in the spool";
	case RELAY_QUEUE_EIO:
		return "spool I/O error";
	case RELAY_QUEUE_ELOCKED:
		return "spool locked by another process";
	case RELAY_QUEUE_ENOENT:
		return "no such message";
	case RELAY_QUEUE_ECORRUPT:
		return "corrupt envelope file";
	case RELAY_QUEUE_EINVAL:
		return "invalid argument";
	case RELAY_QUEUE_ECANCELED:
		return "queue closing";
	case RELAY_QUEUE_EBUSY:
		return "writer busy";
	default:
		return "unknown error";
	}
}

static int
map_errno(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return RELAY_QUEUE_ENOSPC;
	case ENOMEM:
		return RELAY_QUEUE_ENOMEM;
	case ENOENT:
		return RELAY_QUEUE_ENOENT;
	default:
		return RELAY_QUEUE_EIO;
	}
}

/* Injected fault for op on path, as a negative errno, or 0. */
static int
fault(enum queue__op op, const char *path)
{
	int (*hook)(enum queue__op, const char *) = queue__fault;
	int e = hook != NULL ? hook(op, path) : 0;

	if (e != 0)
		errno = e;
	return e;
}

static int
write_full(int fd, const char *path, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w;

		if (fault(RELAY__QOP_WRITE, path))
			return -1;
		w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int
fsync_fd(int fd, const char *path, enum queue__op op)
{
	if (fault(op, path))
		return -1;
	return fsync(fd);
}

static int
create_file(const char *path)
{
	if (fault(RELAY__QOP_OPEN, path))
		return -1;
	return open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
}

/* A pool name as a file name: 16 upper-case hex digits. */
#define POOL_NAME_LEN 16

static void
pool_name_format(char s[POOL_NAME_LEN + 1], uint64_t name)
{
	static const char hex[] = "0123456789ABCDEF";

	for (int i = POOL_NAME_LEN - 1; i >= 0; i--) {
		s[i] = hex[name & 15];
		name >>= 4;
	}
	s[POOL_NAME_LEN] = '\0';
}

static bool pool_path(char *buf, size_t size, const char *dir, uint64_t name);

/*
 * Opens path (in tmp/) for writing from offset 0: the spent file pool
 * name *name renamed to path when there is one, to be written over and
 * cut to its length before its fsync (no inode is allocated), else a new
 * file. *name is used up either way (QUEUE__POOL_NONE afterwards).
 */
static int
open_spool_file(const char *dir, uint64_t *name, const char *path)
{
	char from[PATH_MAX];
	uint64_t n = *name;
	int fd;

	*name = QUEUE__POOL_NONE;
	if (n != QUEUE__POOL_NONE && pool_path(from, sizeof(from), dir, n)) {
		if (fault(RELAY__QOP_OPEN, path))
			return -1;
		if (rename(from, path) == 0) {
			fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0)
				return fd;
			(void)unlink(path);
		}
	}
	fd = create_file(path);
	if (fd < 0 && errno == EEXIST) {
		(void)unlink(path);
		fd = create_file(path);
	}
	return fd;
}

/*
 * Ends the data of fd at len (a recycled file may be longer) and fsyncs
 * it: the data and the inode are on disk when this returns 0.
 */
static int
seal_file(int fd, const char *path, uint64_t len)
{
	if (ftruncate(fd, (off_t)len) != 0)
		return -1;
	return fsync_fd(fd, path, RELAY__QOP_FSYNC);
}

static int
rename_file(const char *from, const char *to)
{
	if (fault(RELAY__QOP_RENAME, to))
		return -1;
	return rename(from, to);
}

/* Writes buf to path (open_spool_file(): pool name *name or a new file)
 * and fsyncs it; errno on failure (path is then gone). */
static int
write_spool_file(const char *dir, uint64_t *name, const char *path,
    const void *buf, size_t len)
{
	int fd = open_spool_file(dir, name, path), e;

	if (fd < 0)
		return -1;
	if (write_full(fd, path, buf, len) != 0 ||
	    seal_file(fd, path, len) != 0) {
		e = errno;
		(void)close(fd);
		(void)unlink(path);
		errno = e;
		return -1;
	}
	if (close(fd) != 0) {
		e = errno;
		(void)unlink(path);
		errno = e;
		return -1;
	}
	return 0;
}

static int
read_whole(const char *path, uint8_t **out, size_t *outlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *buf;
	size_t n = 0;
	int e;

	if (fd < 0)
		return map_errno(errno);
	if (fstat(fd, &st) != 0) {
		e = errno;
		(void)close(fd);
		return map_errno(e);
	}
	if (st.st_size > ENV_FILE_MAX) {
		(void)close(fd);
		return RELAY_QUEUE_ECORRUPT;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		(void)close(fd);
		return RELAY_QUEUE_ENOMEM;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = errno;
			free(buf);
			(void)close(fd);
			return map_errno(e);
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > (size_t)st.st_size)
			break; /* cannot grow: files are replaced by rename */
	}
	(void)close(fd);
	*out = buf;
	*outlen = n;
	return 0;
}

/*
 * A read buffer kept across many envelopes (the CLI's scan, the start-up
 * load), so that reading one costs open, read and close: no fstat, no
 * allocation once the buffer fits.
 */
struct rbuf {
	uint8_t *p;
	size_t cap;
};

/*
 * Reads the whole file name under the directory dirfd into b; *len
 * receives its length. A read that returns less than asked is the end of
 * a regular file (Linux reads regular files in full up to their end), so
 * a small envelope takes one read. Returns 0, or ENOENT (gone meanwhile),
 * ECORRUPT (larger than ENV_FILE_MAX), ENOMEM, EIO.
 */
static int
read_at(int dirfd, const char *name, struct rbuf *b, size_t *len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	int e;

	if (fd < 0)
		return map_errno(errno);
	for (;;) {
		ssize_t r;

		if (n == b->cap) {
			size_t cap = b->cap ? b->cap * 2 : 16384;
			uint8_t *np;

			if (b->cap > ENV_FILE_MAX) {
				(void)close(fd);
				return RELAY_QUEUE_ECORRUPT;
			}
			np = realloc(b->p, cap);
			if (np == NULL) {
				(void)close(fd);
				return RELAY_QUEUE_ENOMEM;
			}
			b->p = np;
			b->cap = cap;
		}
		r = read(fd, b->p + n, b->cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = errno;
			(void)close(fd);
			return map_errno(e);
		}
		n += (size_t)r;
		if (n < b->cap)
			break; /* short read: end of file */
	}
	(void)close(fd);
	if (n > ENV_FILE_MAX)
		return RELAY_QUEUE_ECORRUPT;
	*len = n;
	return 0;
}

/* ---------------------------------------------------------------- */
/* ids and paths                                                      */

bool
relay_queue_id_valid(const char *p, size_t len)
{
	if (len != RELAY_QUEUE_ID_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((p[i] >= '0' && p[i] <= '9') ||
		        (p[i] >= 'A' && p[i] <= 'F')))
			return false;
	return true;
}

static uint64_t
id_value(const char *id)
{
	uint64_t v = 0;

	for (size_t i = 0; i < RELAY_QUEUE_ID_LEN; i++)
		v = v * 16 +
		    (uint64_t)(id[i] <= '9' ? id[i] - '0' : id[i] - 'A' + 10);
	return v;
}

/* PATH_MAX is generous; a spool path that does not fit is refused. */
struct path {
	char s[PATH_MAX];
};

static bool
path_add(struct path *p, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (n >= sizeof(p->s) - *len)
		return false;
	memcpy(p->s + *len, s, n + 1);
	*len += n;
	return true;
}

/* p = dir "/" sub [ "/" id suffix ]; false if it does not fit. */
static bool
mkpath(struct path *p, const char *dir, const char *sub, const char *id,
    const char *suffix)
{
	size_t len = 0;

	p->s[0] = '\0';
	return path_add(p, &len, dir) && path_add(p, &len, "/") &&
	    path_add(p, &len, sub) &&
	    (id == NULL || (path_add(p, &len, "/") && path_add(p, &len, id))) &&
	    (suffix == NULL || path_add(p, &len, suffix));
}

/* buf = dir "/pool/" NAME; false if it does not fit. */
static bool
pool_path(char *buf, size_t size, const char *dir, uint64_t name)
{
	char s[POOL_NAME_LEN + 1];
	int n;

	pool_name_format(s, name);
	n = snprintf(buf, size, "%s/pool/%s", dir, s);
	return n > 0 && (size_t)n < size;
}

/*
 * Moves path (a file of a removed message) into the pool as name, or
 * unlinks it when name is QUEUE__POOL_NONE or the rename fails. Returns
 * 1 when it went into the pool, 0 when it is gone otherwise (or was
 * already), -1 with errno when it is still there.
 */
static int
retire_file(const char *dir, uint64_t name, const char *path)
{
	char to[PATH_MAX];

	if (name != QUEUE__POOL_NONE && pool_path(to, sizeof(to), dir, name)) {
		if (rename(path, to) == 0)
			return 1;
		if (errno == ENOENT)
			return 0;
	}
	if (unlink(path) != 0 && errno != ENOENT)
		return -1;
	return 0;
}

/* 14 upper-case hex digits; v < 16^14 (the year 4254). */
static void
format_id(char id[RELAY_QUEUE_ID_SIZE], uint64_t v)
{
	static const char hex[] = "0123456789ABCDEF";

	assert(v < (UINT64_C(1) << (4 * RELAY_QUEUE_ID_LEN)));
	for (int i = RELAY_QUEUE_ID_LEN - 1; i >= 0; i--) {
		id[i] = hex[v & 15];
		v >>= 4;
	}
	id[RELAY_QUEUE_ID_LEN] = '\0';
}

/* ---------------------------------------------------------------- */
/* structures                                                         */

struct op;
struct load_batch;

struct entry {
	struct relay_queue_info info;
	bool dead;      /* tombstone: skipped, compacted later */
	bool removing;  /* remove requested: invisible, ops draining */
	struct op *ops; /* FIFO of updates/removes, head running */
	struct op *ops_tail;
};

/* Something waiting for the next fsync of queue/. */
struct sync_wait {
	struct sync_wait *next;
	struct relay_queue *q;
	void (*done)(struct sync_wait *sw, int status);
};

struct chunk {
	struct chunk *next;
	size_t len;
	char data[CHUNK_SIZE];
};

struct wcb {
	struct wcb *next;
	uint64_t upto; /* fire when written >= upto */
	relay_queue_write_cb cb;
	void *arg;
};

enum writer_stage {
	WRITER_RECEIVING,  /* accepting content */
	WRITER_COMMITTING, /* commit job or directory sync in flight */
	WRITER_CLEANING,   /* removing files after an error or abort */
};

struct relay_queue_writer {
	struct relay_queue *q;
	struct relay_queue_envelope *env; /* owned copy */
	enum writer_stage stage;
	bool job_running; /* a job of this writer is in flight */
	bool aborted;     /* abandoned before commit: files go */
	bool silent;      /* owner gone: no more callbacks */
	bool commit_wanted;
	int fd; /* tmp/ID.msg once created (worker side) */
	/* Spent files from the pool for tmp/ID.msg and tmp/ID.env, or
	 * QUEUE__POOL_NONE; the worker uses them up (open_spool_file). */
	uint64_t msg_pool, env_pool;
	int error; /* sticky */
	struct chunk *head, *tail;
	size_t buffered;
	uint64_t appended, written;
	struct wcb *cbs, *cbs_tail;
	relay_queue_commit_cb commit_cb;
	void *commit_arg;
	struct sync_wait sw;
};

struct relay_queue {
	uv_loop_t *loop;
	char *dir;
	struct path tmpdir, qdir, pooldir;
	struct queue__pool pool; /* spent files in pooldir */
	/* Pool names of removed files waiting for the next directory fsync
	 * to start (pool_limbo_add). */
	uint64_t *limbo;
	size_t limbo_n, limbo_cap;
	int lockfd;
	int qdirfd;
	struct entry *ent;
	size_t n, cap, dead;
	uint64_t last_id;
	/* Wall time for ids and arrival stamps (relay_queue_set_clock). */
	const struct relay_clock *clock;
	unsigned jobs;    /* uv_work_t in flight */
	unsigned writers; /* writers not yet freed */
	bool closing;
	relay_queue_close_cb close_cb;
	void *close_arg;
	struct sync_wait *sync_next, *sync_next_tail; /* wait for next sync */
	bool sync_running;
	/* Start-up load: ids listed at open, sorted. [0, load_applied) are
	 * in the index (or went to corrupt/), [load_applied, load_submitted)
	 * are being parsed, the rest wait. Freed when all are applied. */
	char (*load_ids)[RELAY_QUEUE_ID_SIZE];
	size_t load_n, load_applied, load_submitted;
	struct load_batch *load_done; /* finished early, by first id */
	bool loading;                 /* load_start called, not finished */
	relay_queue_loaded_cb loaded_cb;
	void *loaded_arg;
	uint64_t load_started_ms, load_corrupt, load_failed;
};

/* ---------------------------------------------------------------- */
/* jobs                                                               */

enum job_kind {
	JOB_FLUSH,      /* writer: append chunks to tmp/ID.msg */
	JOB_COMMIT,     /* writer: fsync, envelope, renames */
	JOB_CLEAN,      /* writer: close fd, unlink its files */
	JOB_DIRSYNC,    /* fsync(queue/) */
	JOB_UPDATE,     /* write tmp/ID.upd, rename over queue/ID.env */
	JOB_REMOVE,     /* a removal's result (its renames ran on the loop) */
	JOB_LOAD,       /* read and parse queue/ID.env */
	JOB_LOAD_BATCH, /* start-up load: parse a batch of envelopes */
	JOB_NOOP,       /* lets close() finish asynchronously */
};

struct job {
	uv_work_t req;
	struct relay_queue *q;
	enum job_kind kind;
	int status; /* result: 0 or enum relay_queue_err */
	struct relay_queue_writer *w;
	struct chunk *chunks; /* JOB_FLUSH: owned by the job */
	size_t bytes;
	char *buf; /* envelope text (COMMIT, UPDATE) */
	size_t buflen;
	struct op *op; /* UPDATE, REMOVE */
	char id[RELAY_QUEUE_ID_SIZE];
	struct sync_wait *waiters;        /* JOB_DIRSYNC */
	uint64_t *limbo;                  /* JOB_DIRSYNC: pool names it */
	size_t limbo_n;                   /* makes usable (after_dirsync) */
	struct relay_queue_envelope *env; /* JOB_LOAD result */
	relay_queue_load_cb load_cb;
	void *arg;
	struct load_batch *batch; /* JOB_LOAD_BATCH */
};

enum op_kind {
	OP_UPDATE,
	OP_REMOVE
};

struct op {
	struct op *next;
	enum op_kind kind;
	char id[RELAY_QUEUE_ID_SIZE];
	char *buf; /* OP_UPDATE: serialised envelope */
	size_t buflen;
	struct relay_queue_info info; /* OP_UPDATE: summary to install */
	relay_queue_done_cb cb;
	void *arg;
	int status;
	struct sync_wait sw;
	/* OP_UPDATE: [0] a spent file for tmp/ID.upd (used up by the
	 * worker). OP_REMOVE: the pool names reserved for queue/ID.env
	 * [0] and queue/ID.msg [1], and whether each went in. */
	uint64_t pool[2];
	bool pooled[2];
};

static void work_cb(uv_work_t *req);
static void after_work_cb(uv_work_t *req, int status);
static void job_finished(struct relay_queue *q);
static void sync_request(struct relay_queue *q, struct sync_wait *sw);
static void writer_kick(struct relay_queue_writer *w);
static void op_start(struct relay_queue *q, struct entry *e);
static void load_batch_run(const char *dir, struct load_batch *b);
static void after_load_batch(struct job *j);

static struct job *
job_new(struct relay_queue *q, enum job_kind kind)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j != NULL) {
		j->q = q;
		j->kind = kind;
		j->req.data = j;
	}
	return j;
}

/* Submits j; on failure returns an error and j stays the caller's. */
static int
job_submit(struct job *j)
{
	struct relay_queue *q = j->q;

	if (uv_queue_work(q->loop, &j->req, work_cb, after_work_cb) != 0)
		return RELAY_QUEUE_EIO;
	q->jobs++;
	return 0;
}

/* ---- thread-pool halves ---- */

static void
work_flush(struct job *j)
{
	struct relay_queue_writer *w = j->w;
	struct path p;

	(void)mkpath(&p, j->q->dir, "tmp", w->env->id, ".msg");
	if (w->fd < 0) {
		w->fd = open_spool_file(j->q->dir, &w->msg_pool, p.s);
		if (w->fd < 0) {
			j->status = map_errno(errno);
			return;
		}
	}
	for (struct chunk *c = j->chunks; c != NULL; c = c->next) {
		if (write_full(w->fd, p.s, c->data, c->len) != 0) {
			j->status = map_errno(errno);
			return;
		}
		j->bytes += c->len;
	}
}

static void
work_commit(struct job *j)
{
	struct relay_queue_writer *w = j->w;
	const char *id = w->env->id;
	struct path tmsg, tenv, qmsg, qenv;
	int e;

	(void)mkpath(&tmsg, j->q->dir, "tmp", id, ".msg");
	(void)mkpath(&tenv, j->q->dir, "tmp", id, ".env");
	(void)mkpath(&qmsg, j->q->dir, "queue", id, ".msg");
	(void)mkpath(&qenv, j->q->dir, "queue", id, ".env");
	if (w->fd < 0 &&
	    (w->fd = open_spool_file(j->q->dir, &w->msg_pool, tmsg.s)) < 0)
		goto fail;
	if (seal_file(w->fd, tmsg.s, w->env->size) != 0)
		goto fail;
	e = close(w->fd);
	w->fd = -1;
	if (e != 0)
		goto fail;
	if (write_spool_file(j->q->dir, &w->env_pool, tenv.s, j->buf,
	        j->buflen) != 0)
		goto fail;
	if (rename_file(tmsg.s, qmsg.s) != 0)
		goto fail;
	if (rename_file(tenv.s, qenv.s) != 0) {
		e = errno;
		(void)unlink(qmsg.s);
		errno = e;
		goto fail;
	}
	return;
fail:
	j->status = map_errno(errno);
	if (j->status == RELAY_QUEUE_ENOENT)
		j->status = RELAY_QUEUE_EIO;
	if (w->fd >= 0) {
		(void)close(w->fd);
		w->fd = -1;
	}
	(void)unlink(tmsg.s);
	(void)unlink(tenv.s);
}

static void
work_clean(struct job *j)
{
	struct relay_queue_writer *w = j->w;
	const char *id = w->env->id;
	struct path p;

	if (w->fd >= 0) {
		(void)close(w->fd);
		w->fd = -1;
	}
	/* After a failed directory sync the files may be in queue/ too. */
	if (mkpath(&p, j->q->dir, "queue", id, ".env"))
		(void)unlink(p.s);
	if (mkpath(&p, j->q->dir, "queue", id, ".msg"))
		(void)unlink(p.s);
	if (mkpath(&p, j->q->dir, "tmp", id, ".msg"))
		(void)unlink(p.s);
	if (mkpath(&p, j->q->dir, "tmp", id, ".env"))
		(void)unlink(p.s);
}

static void
work_dirsync(struct job *j)
{
	if (fsync_fd(j->q->qdirfd, j->q->qdir.s, RELAY__QOP_DIRSYNC) != 0)
		j->status = map_errno(errno) == RELAY_QUEUE_ENOSPC
		    ? RELAY_QUEUE_ENOSPC
		    : RELAY_QUEUE_EIO;
}

static void
work_update(struct job *j)
{
	struct path tmp, dst;

	(void)mkpath(&tmp, j->q->dir, "tmp", j->id, ".upd");
	(void)mkpath(&dst, j->q->dir, "queue", j->id, ".env");
	if (access(dst.s, F_OK) != 0) {
		j->status = RELAY_QUEUE_ENOENT;
		return;
	}
	if (write_spool_file(j->q->dir, &j->op->pool[0], tmp.s, j->buf,
	        j->buflen) != 0 ||
	    rename_file(tmp.s, dst.s) != 0) {
		j->status = map_errno(errno);
		if (j->status == RELAY_QUEUE_ENOENT)
			j->status = RELAY_QUEUE_EIO;
		(void)unlink(tmp.s);
	}
}

static void
work_remove(struct job *j)
{
	struct op *op = j->op;
	struct path p;
	int r;

	/* Envelope first: from that moment the message does not exist. Both
	 * files go into the pool (retire_file), where they wait until the
	 * directory fsync that follows has made this removal durable. */
	(void)mkpath(&p, j->q->dir, "queue", j->id, ".env");
	r = retire_file(j->q->dir, op->pool[0], p.s);
	if (r < 0) {
		j->status = map_errno(errno);
		return;
	}
	op->pooled[0] = r == 1;
	(void)mkpath(&p, j->q->dir, "queue", j->id, ".msg");
	op->pooled[1] = retire_file(j->q->dir, op->pool[1], p.s) == 1;
}

static void
work_load(struct job *j)
{
	struct path p;
	uint8_t *buf;
	size_t len;

	(void)mkpath(&p, j->q->dir, "queue", j->id, ".env");
	j->status = read_whole(p.s, &buf, &len);
	if (j->status != 0)
		return;
	j->status = relay_queue_envelope_parse(buf, len, &j->env);
	free(buf);
	/* A message removed since the load was asked for may have left its
	 * file to the pool and a later message: not this one any more. */
	if (j->status == 0 && strcmp(j->env->id, j->id) != 0) {
		relay_queue_envelope_free(j->env);
		j->env = NULL;
		j->status = RELAY_QUEUE_ENOENT;
	}
}

static void
work_cb(uv_work_t *req)
{
	struct job *j = req->data;

	switch (j->kind) {
	case JOB_FLUSH:
		work_flush(j);
		break;
	case JOB_COMMIT:
		work_commit(j);
		break;
	case JOB_CLEAN:
		work_clean(j);
		break;
	case JOB_DIRSYNC:
		work_dirsync(j);
		break;
	case JOB_UPDATE:
		work_update(j);
		break;
	case JOB_REMOVE:
		break; /* done on the loop (op_start); carries the result */
	case JOB_LOAD:
		work_load(j);
		break;
	case JOB_LOAD_BATCH:
		load_batch_run(j->q->dir, j->batch);
		break;
	case JOB_NOOP:
		break;
	}
}

/* ---------------------------------------------------------------- */
/* the index                                                          */

static int
entry_cmp_id(const void *key, const void *elem)
{
	const struct entry *e = elem;
	return strcmp(key, e->info.id);
}

static struct entry *
entry_find(const struct relay_queue *q, const char *id)
{
	struct entry *e;

	if (q->n == 0)
		return NULL;
	e = bsearch(id, q->ent, q->n, sizeof(*q->ent), entry_cmp_id);
	return e != NULL && !e->dead ? e : NULL;
}

static bool
entry_visible(const struct entry *e)
{
	return e != NULL && !e->dead && !e->removing;
}

/*
 * Inserts an entry in id order. Ids are handed out in increasing order,
 * and commits usually finish in that order too, so this is an append or
 * a short move at the end.
 */
static struct entry *
entry_append(struct relay_queue *q, const struct relay_queue_info *info)
{
	struct entry *e;
	size_t pos;

	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 64;
		struct entry *n = realloc(q->ent, cap * sizeof(*n));
		if (n == NULL)
			return NULL;
		q->ent = n;
		q->cap = cap;
	}
	pos = q->n;
	while (pos > 0 && strcmp(q->ent[pos - 1].info.id, info->id) > 0)
		pos--;
	assert(pos == 0 || strcmp(q->ent[pos - 1].info.id, info->id) < 0);
	memmove(&q->ent[pos + 1], &q->ent[pos], (q->n - pos) * sizeof(*e));
	q->n++;
	e = &q->ent[pos];
	memset(e, 0, sizeof(*e));
	e->info = *info;
	return e;
}

/* Drops tombstones when they are the majority. */
static void
entry_compact(struct relay_queue *q)
{
	size_t o = 0;

	if (q->dead * 2 <= q->n)
		return;
	for (size_t i = 0; i < q->n; i++)
		if (!q->ent[i].dead)
			q->ent[o++] = q->ent[i];
	q->n = o;
	q->dead = 0;
}

static void
entry_kill(struct relay_queue *q, struct entry *e)
{
	assert(e->ops == NULL);
	e->dead = true;
	q->dead++;
	entry_compact(q);
}

static void
info_from_env(struct relay_queue_info *info,
    const struct relay_queue_envelope *env)
{
	memset(info, 0, sizeof(*info));
	memcpy(info->id, env->id, sizeof(info->id));
	info->arrival_us = env->arrival_us;
	info->size = env->size;
	info->hold = env->hold;
	info->next_attempt_us = UINT64_MAX;
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const struct relay_queue_rcpt *r = &env->rcpt[i];

		switch (r->status) {
		case RELAY_QUEUE_RCPT_DEFERRED:
			info->deferred = true;
			__attribute__((fallthrough));
		case RELAY_QUEUE_RCPT_PENDING:
			info->rcpt_open++;
			if (r->next_attempt_us < info->next_attempt_us)
				info->next_attempt_us = r->next_attempt_us;
			break;
		case RELAY_QUEUE_RCPT_SENT:
		case RELAY_QUEUE_RCPT_BOUNCED:
			break;
		}
	}
}

size_t
relay_queue_count(const struct relay_queue *q)
{
	size_t n = 0;

	for (size_t i = 0; i < q->n; i++)
		n += entry_visible(&q->ent[i]);
	return n;
}

int
relay_queue_foreach(const struct relay_queue *q, relay_queue_foreach_fn fn,
    void *arg)
{
	for (size_t i = 0; i < q->n; i++) {
		struct relay_queue_info info;
		int rc;

		if (!entry_visible(&q->ent[i]))
			continue;
		info = q->ent[i].info;
		rc = fn(&info, arg);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int
relay_queue_foreach_after(const struct relay_queue *q, const char *after,
    size_t limit, relay_queue_foreach_fn fn, void *arg)
{
	/* The first entry whose id sorts after `after` (the index is kept in
	 * id order): a binary search, so a caller walking the index in
	 * slices pays for each slice, not for what lies before it. */
	size_t lo = 0, hi = q->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(q->ent[mid].info.id, after) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t seen = 0;
	for (size_t i = lo; i < q->n && seen < limit; i++) {
		struct relay_queue_info info;
		int rc;

		if (!entry_visible(&q->ent[i]))
			continue;
		seen++;
		info = q->ent[i].info;
		rc = fn(&info, arg);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int
relay_queue_lookup(const struct relay_queue *q, const char *id,
    struct relay_queue_info *info)
{
	const struct entry *e;

	if (id == NULL || !relay_queue_id_valid(id, strlen(id)))
		return RELAY_QUEUE_ENOENT;
	e = entry_find(q, id);
	if (!entry_visible(e))
		return relay_queue_load_pending(q, id) ? RELAY_QUEUE_EBUSY
		                                       : RELAY_QUEUE_ENOENT;
	*info = e->info;
	return 0;
}

void
relay_queue_set_clock(struct relay_queue *q, const struct relay_clock *clock)
{
	q->clock = clock;
}

const char *
relay_queue_dir(const struct relay_queue *q)
{
	return q->dir;
}

int
relay_queue_content_path(const struct relay_queue *q, const char *id, char *buf,
    size_t size)
{
	int n;

	if (id == NULL || !relay_queue_id_valid(id, strlen(id)))
		return RELAY_QUEUE_EINVAL;
	n = snprintf(buf, size, "%s/queue/%s.msg", q->dir, id);
	return n > 0 && (size_t)n < size ? 0 : RELAY_QUEUE_EINVAL;
}

/* ---------------------------------------------------------------- */
/* directory fsync, shared (group commit)                             */

static int
sync_start(struct relay_queue *q)
{
	struct job *j;
	int rc;

	if (q->sync_running || q->sync_next == NULL)
		return 0;
	j = job_new(q, JOB_DIRSYNC);
	if (j == NULL)
		return RELAY_QUEUE_ENOMEM;
	j->waiters = q->sync_next;
	rc = job_submit(j);
	if (rc != 0) {
		free(j);
		return rc;
	}
	/* Removals renamed before this fsync starts are on disk when it
	 * succeeds: their files may then be written over. */
	j->limbo = q->limbo;
	j->limbo_n = q->limbo_n;
	q->limbo = NULL;
	q->limbo_n = q->limbo_cap = 0;
	q->sync_next = q->sync_next_tail = NULL;
	q->sync_running = true;
	return 0;
}

/*
 * A removed message's file went into the pool as name; it may be written
 * over only once its removal is on disk, i.e. after the next directory
 * fsync that starts from now on succeeded (a removal does not ask for one
 * itself). Out of memory: the file stays unused in pool/.
 */
static void
pool_limbo_add(struct relay_queue *q, uint64_t name)
{
	if (q->limbo_n == q->limbo_cap) {
		size_t cap = q->limbo_cap ? q->limbo_cap * 2 : 64;
		uint64_t *n = realloc(q->limbo, cap * sizeof(*n));

		if (n == NULL) {
			queue__pool_settle(&q->pool, name, false, 0);
			return;
		}
		q->limbo = n;
		q->limbo_cap = cap;
	}
	q->limbo[q->limbo_n++] = name;
}

static void
sync_fail_all(struct sync_wait *list, int status)
{
	while (list != NULL) {
		struct sync_wait *next = list->next;
		list->done(list, status);
		list = next;
	}
}

static void
sync_request(struct relay_queue *q, struct sync_wait *sw)
{
	int rc;

	sw->next = NULL;
	sw->q = q;
	if (q->sync_next_tail != NULL)
		q->sync_next_tail->next = sw;
	else
		q->sync_next = sw;
	q->sync_next_tail = sw;
	rc = sync_start(q);
	if (rc != 0) {
		struct sync_wait *list = q->sync_next;
		q->sync_next = q->sync_next_tail = NULL;
		sync_fail_all(list, rc);
	}
}

static void
after_dirsync(struct job *j)
{
	struct relay_queue *q = j->q;

	int rc;

	q->sync_running = false;
	for (size_t i = 0; i < j->limbo_n; i++)
		queue__pool_settle(&q->pool, j->limbo[i], j->status == 0,
		    relay_clock_mono_us(q->clock) + QUEUE_POOL_REUSE_US);
	free(j->limbo);
	j->limbo = NULL;
	/* Those who arrived while this fsync ran may have renamed after it
	 * started: they need a fresh one. Start it before reporting. */
	rc = sync_start(q);
	if (rc != 0) {
		struct sync_wait *list = q->sync_next;
		q->sync_next = q->sync_next_tail = NULL;
		sync_fail_all(list, rc);
	}
	sync_fail_all(j->waiters, j->status);
}

/* ---------------------------------------------------------------- */
/* writers                                                            */

static void
writer_free(struct relay_queue_writer *w)
{
	struct relay_queue *q = w->q;

	while (w->head != NULL) {
		struct chunk *c = w->head;
		w->head = c->next;
		free(c);
	}
	while (w->cbs != NULL) {
		struct wcb *c = w->cbs;
		w->cbs = c->next;
		free(c);
	}
	/* Pool files the writer did not use are still in the pool. */
	(void)queue__pool_put(&q->pool, w->msg_pool, 0);
	(void)queue__pool_put(&q->pool, w->env_pool, 0);
	relay_queue_envelope_free(w->env);
	free(w);
	q->writers--;
}

/* Runs the write callbacks that are due (or all, with an error). */
static void
writer_fire(struct relay_queue_writer *w)
{
	while (w->cbs != NULL && !w->silent &&
	    (w->error != 0 || w->cbs->upto <= w->written)) {
		struct wcb *c = w->cbs;

		w->cbs = c->next;
		if (w->cbs == NULL)
			w->cbs_tail = NULL;
		c->cb(w, w->error, c->arg);
		free(c);
	}
}

static int
writer_job(struct relay_queue_writer *w, enum job_kind kind, struct job **out)
{
	struct job *j = job_new(w->q, kind);

	if (j == NULL)
		return RELAY_QUEUE_ENOMEM;
	j->w = w;
	*out = j;
	return 0;
}

static void
writer_clean(struct relay_queue_writer *w)
{
	struct job *j;

	w->stage = WRITER_CLEANING;
	j = NULL;
	if (writer_job(w, JOB_CLEAN, &j) != 0 || job_submit(j) != 0) {
		free(j);
		/* Cannot even clean: leave the files to startup recovery. */
		if (w->fd >= 0) {
			(void)close(w->fd);
			w->fd = -1;
		}
		w->job_running = false;
		if (!w->silent && w->commit_wanted && w->commit_cb != NULL)
			w->commit_cb(w, w->error, w->env->id, w->commit_arg);
		writer_free(w);
		return;
	}
	w->job_running = true;
}

static void
commit_synced(struct sync_wait *sw, int status)
{
	struct relay_queue_writer *w =
	    (struct relay_queue_writer *)(void *)((char *)sw -
	        offsetof(struct relay_queue_writer, sw));
	struct relay_queue *q = w->q;
	struct relay_queue_info info;

	if (status != 0) {
		/* Durability unknown: take the message back out. */
		w->error = status;
		writer_clean(w);
		return;
	}
	info_from_env(&info, w->env);
	if (entry_append(q, &info) == NULL) {
		w->error = RELAY_QUEUE_ENOMEM;
		writer_clean(w);
		return;
	}
	if (!w->silent && w->commit_cb != NULL)
		w->commit_cb(w, 0, w->env->id, w->commit_arg);
	writer_free(w);
}

/* Starts the next job the writer needs, if none is running. */
static void
writer_kick(struct relay_queue_writer *w)
{
	struct job *j;
	int rc;

	if (w->job_running || w->stage != WRITER_RECEIVING)
		return;
	if (w->aborted || w->error != 0) {
		if (w->aborted || w->commit_wanted)
			writer_clean(w);
		return;
	}
	if (w->head != NULL &&
	    (w->buffered >= CHUNK_SIZE || w->cbs != NULL || w->commit_wanted)) {
		rc = writer_job(w, JOB_FLUSH, &j);
		if (rc == 0) {
			/* The job owns the chunks from before it is queued:
			 * a pool thread may run it at once. */
			j->chunks = w->head;
			rc = job_submit(j);
			if (rc == 0) {
				w->head = w->tail = NULL;
				w->buffered = 0;
			} else {
				free(j);
			}
		}
		if (rc != 0)
			w->error = rc;
		if (rc == 0) {
			w->job_running = true;
			return;
		}
		/* Error: report through the queue's async path (clean). */
		if (w->commit_wanted)
			writer_clean(w);
		return;
	}
	if (w->head == NULL && w->commit_wanted) {
		w->env->size = w->appended;
		rc = writer_job(w, JOB_COMMIT, &j);
		if (rc == 0) {
			j->buf =
			    relay_queue_envelope_format(w->env, &j->buflen);
			if (j->buf == NULL) {
				rc = RELAY_QUEUE_ENOMEM;
			} else {
				rc = job_submit(j);
				if (rc != 0)
					free(j->buf);
			}
			if (rc != 0)
				free(j);
		}
		if (rc != 0) {
			w->error = rc;
			writer_clean(w);
			return;
		}
		w->stage = WRITER_COMMITTING;
		w->job_running = true;
	}
}

static void
after_writer_job(struct job *j)
{
	struct relay_queue_writer *w = j->w;

	w->job_running = false;
	switch (j->kind) {
	case JOB_FLUSH:
		while (j->chunks != NULL) {
			struct chunk *c = j->chunks;
			j->chunks = c->next;
			free(c);
		}
		w->written += j->bytes;
		if (j->status != 0 && w->error == 0)
			w->error = j->status;
		writer_fire(w);
		/* On error without commit or abort: wait for one of them to
		 * clean up (writer_kick does nothing then). */
		writer_kick(w);
		break;
	case JOB_COMMIT:
		if (j->status != 0) {
			w->error = j->status;
			/* work_commit removed its own files; report. */
			if (!w->silent && w->commit_cb != NULL)
				w->commit_cb(w, w->error, w->env->id,
				    w->commit_arg);
			writer_free(w);
			break;
		}
		w->sw.done = commit_synced;
		sync_request(w->q, &w->sw);
		break;
	case JOB_CLEAN:
		if (!w->silent && w->commit_wanted && w->commit_cb != NULL)
			w->commit_cb(w,
			    w->error != 0 ? w->error : RELAY_QUEUE_EIO,
			    w->env->id, w->commit_arg);
		writer_free(w);
		break;
	case JOB_DIRSYNC:
	case JOB_UPDATE:
	case JOB_REMOVE:
	case JOB_LOAD:
	case JOB_LOAD_BATCH:
	case JOB_NOOP:
		abort();
	}
}

int
relay_queue_msg_begin(struct relay_queue *q, struct relay_queue_envelope *env,
    struct relay_queue_writer **out)
{
	struct relay_queue_writer *w;
	uint64_t now, idv;

	if (q->closing)
		return RELAY_QUEUE_ECANCELED;
	if (env->rcpt_count == 0)
		return RELAY_QUEUE_EINVAL;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return RELAY_QUEUE_ENOMEM;
	/* Strictly increasing even if the clock steps back (ids sort by
	 * arrival and never repeat within a spool). */
	now = relay_clock_wall_us(q->clock);
	idv = now > q->last_id ? now : q->last_id + 1;
	env->arrival_us = now;
	format_id(env->id, idv);
	w->env = relay_queue_envelope_dup(env);
	if (w->env == NULL) {
		free(w);
		return RELAY_QUEUE_ENOMEM;
	}
	q->last_id = idv;
	w->q = q;
	w->fd = -1;
	w->msg_pool = queue__pool_take(&q->pool, relay_clock_mono_us(q->clock));
	w->env_pool = queue__pool_take(&q->pool, relay_clock_mono_us(q->clock));
	w->stage = WRITER_RECEIVING;
	q->writers++;
	*out = w;
	return 0;
}

const char *
relay_queue_writer_id(const struct relay_queue_writer *w)
{
	return w->env->id;
}

void
relay_queue_writer_set_8bit(struct relay_queue_writer *w)
{
	w->env->content_8bit = true;
}

size_t
relay_queue_writer_buffered(const struct relay_queue_writer *w)
{
	return (size_t)(w->appended - w->written);
}

int
relay_queue_writer_write(struct relay_queue_writer *w, const void *buf,
    size_t len, relay_queue_write_cb cb, void *arg)
{
	const char *p = buf;
	struct wcb *c = NULL;

	if (w->commit_wanted || w->silent)
		return RELAY_QUEUE_EBUSY;
	if (w->error != 0)
		return w->error;
	if (cb != NULL && (c = calloc(1, sizeof(*c))) == NULL)
		return RELAY_QUEUE_ENOMEM;
	while (len > 0) {
		size_t n;

		if (w->tail == NULL || w->tail->len == CHUNK_SIZE) {
			struct chunk *k = malloc(sizeof(*k));
			if (k == NULL) {
				/* Bytes already copied stay; the message is
				 * incomplete, so fail it as a whole. */
				w->error = RELAY_QUEUE_ENOMEM;
				free(c);
				return w->error;
			}
			k->next = NULL;
			k->len = 0;
			if (w->tail != NULL)
				w->tail->next = k;
			else
				w->head = k;
			w->tail = k;
		}
		n = CHUNK_SIZE - w->tail->len;
		if (n > len)
			n = len;
		memcpy(w->tail->data + w->tail->len, p, n);
		w->tail->len += n;
		w->buffered += n;
		w->appended += n;
		p += n;
		len -= n;
	}
	if (c != NULL) {
		c->upto = w->appended;
		c->cb = cb;
		c->arg = arg;
		if (w->cbs_tail != NULL)
			w->cbs_tail->next = c;
		else
			w->cbs = c;
		w->cbs_tail = c;
	}
	writer_kick(w);
	return 0;
}

int
relay_queue_writer_commit(struct relay_queue_writer *w,
    relay_queue_commit_cb cb, void *arg)
{
	if (w->commit_wanted || w->silent)
		return RELAY_QUEUE_EBUSY;
	w->commit_wanted = true;
	w->commit_cb = cb;
	w->commit_arg = arg;
	if (w->q->closing && w->error == 0)
		w->error = RELAY_QUEUE_ECANCELED;
	if (w->error != 0 && !w->job_running) {
		writer_clean(w); /* reports the error when done */
		return 0;
	}
	writer_kick(w);
	return 0;
}

void
relay_queue_writer_abort(struct relay_queue_writer *w)
{
	if (w->silent)
		return;
	w->silent = true;
	if (w->commit_wanted || w->stage != WRITER_RECEIVING)
		return; /* commit or cleaning runs to its end, silently */
	w->aborted = true;
	while (w->head != NULL) {
		struct chunk *c = w->head;
		w->head = c->next;
		free(c);
	}
	w->tail = NULL;
	w->buffered = 0;
	if (w->job_running)
		return; /* after_writer_job -> writer_kick -> clean */
	if (w->fd < 0 && w->written == 0) {
		/* No file was ever created (files are made by jobs). */
		struct relay_queue *q = w->q;
		writer_free(w);
		if (q->closing)
			job_finished(q);
		return;
	}
	writer_clean(w);
}

/* ---------------------------------------------------------------- */
/* updates and removals (serialised per message)                      */

static void
op_free(struct op *op)
{
	free(op->buf);
	free(op);
}

/* Files an op took from or gave to the pool, once it is done. */
static void
pool_settle_op(struct relay_queue *q, struct op *op, int status)
{
	switch (op->kind) {
	case OP_UPDATE:
		(void)queue__pool_put(&q->pool, op->pool[0], 0);
		break;
	case OP_REMOVE:
		for (size_t i = 0; i < 2; i++) {
			if (op->pooled[i] && status == 0)
				pool_limbo_add(q, op->pool[i]);
			else
				queue__pool_settle(&q->pool, op->pool[i], false,
				    0);
		}
		break;
	}
	op->pool[0] = op->pool[1] = QUEUE__POOL_NONE;
}

/* Finishes the head op of entry e and starts the next. */
static void
op_done(struct relay_queue *q, struct entry *e, int status)
{
	struct op *op = e->ops;
	char id[RELAY_QUEUE_ID_SIZE];

	memcpy(id, op->id, sizeof(id));
	pool_settle_op(q, op, status);
	e->ops = op->next;
	if (e->ops == NULL)
		e->ops_tail = NULL;
	if (op->kind == OP_UPDATE && status == 0)
		e->info = op->info;
	if (op->kind == OP_REMOVE && status != 0)
		e->removing = false; /* still queued: visible again */
	if (op->kind == OP_REMOVE && status == 0 && e->ops == NULL)
		entry_kill(q, e); /* e is invalid from here */
	else if (e->ops != NULL)
		op_start(q, e);
	if (op->cb != NULL)
		op->cb(status, op->arg);
	op_free(op);
}

static void op_sync_done(struct sync_wait *sw, int status);

static void
op_start(struct relay_queue *q, struct entry *e)
{
	struct op *op = e->ops;

	if (op->kind == OP_REMOVE) {
		/* The removal runs here, on the loop, not on the thread pool:
		 * queued behind the commits' fsyncs it waited seconds under
		 * load, and a crash in that time delivered the message again.
		 * Two renames into pool/ (or unlinks) are cheap. No directory
		 * fsync of its own: a power cut before the next one at worst
		 * repeats a delivery, never loses one (Postfix does not fsync
		 * a removal either); the files wait for that fsync before
		 * reuse (pool_limbo_add). */
		struct job rm = { .q = q, .kind = JOB_REMOVE, .op = op };
		memcpy(rm.id, op->id, sizeof(rm.id));
		op->pool[0] = queue__pool_reserve(&q->pool);
		/* A large content file is freed: the pool would keep its
		 * blocks for as long as it waits there. */
		op->pool[1] = e->info.size <= QUEUE_POOL_FILE_MAX
		    ? queue__pool_reserve(&q->pool)
		    : QUEUE__POOL_NONE;
		work_remove(&rm);
		/* The callback still runs from the loop later, never inside
		 * relay_queue_remove(): a job that only carries the result. */
		struct job *j = job_new(q, JOB_REMOVE);
		if (j == NULL) {
			op_done(q, e,
			    rm.status != 0 ? rm.status : RELAY_QUEUE_ENOMEM);
			return;
		}
		memcpy(j->id, op->id, sizeof(j->id));
		j->op = op;
		j->status = rm.status;
		if (job_submit(j) != 0) {
			free(j);
			op_done(q, e, rm.status);
		}
		return;
	}

	struct job *j = job_new(q, JOB_UPDATE);
	int rc;

	if (j == NULL) {
		op_done(q, e, RELAY_QUEUE_ENOMEM);
		return;
	}
	memcpy(j->id, op->id, sizeof(j->id));
	j->op = op;
	switch (op->kind) {
	case OP_UPDATE:
		op->pool[0] =
		    queue__pool_take(&q->pool, relay_clock_mono_us(q->clock));
		break;
	case OP_REMOVE:
		break; /* done on the loop above */
	}
	j->buf = op->buf;
	j->buflen = op->buflen;
	rc = job_submit(j);
	if (rc != 0) {
		free(j);
		op_done(q, e, rc);
	}
}

static void
after_op_job(struct job *j)
{
	struct relay_queue *q = j->q;
	struct op *op = j->op;
	struct entry *e = entry_find(q, op->id);

	j->buf = NULL; /* owned by op */
	assert(e != NULL && e->ops == op);
	/* A removal was done on the loop (op_start()) and has no directory
	 * fsync of its own: a power cut before the next one at worst repeats
	 * a delivery, never loses one (Postfix does not fsync a removal
	 * either). Its files wait for that fsync before reuse
	 * (pool_limbo_add). */
	if (j->status != 0 || op->kind == OP_REMOVE) {
		op_done(q, e, j->status);
		return;
	}
	op->sw.done = op_sync_done;
	sync_request(q, &op->sw);
}

static void
op_sync_done(struct sync_wait *sw, int status)
{
	struct op *op =
	    (struct op *)(void *)((char *)sw - offsetof(struct op, sw));
	struct relay_queue *q = sw->q;
	struct entry *e = entry_find(q, op->id);

	assert(e != NULL && e->ops == op);
	op_done(q, e, status);
}

static int
op_enqueue(struct relay_queue *q, struct entry *e, struct op *op)
{
	op->next = NULL;
	if (e->ops_tail != NULL) {
		e->ops_tail->next = op;
		e->ops_tail = op;
		return 0;
	}
	e->ops = e->ops_tail = op;
	op_start(q, e);
	return 0;
}

int
relay_queue_update(struct relay_queue *q,
    const struct relay_queue_envelope *env, relay_queue_done_cb cb, void *arg)
{
	struct entry *e;
	struct op *op;

	if (q->closing)
		return RELAY_QUEUE_ECANCELED;
	if (!relay_queue_id_valid(env->id, strlen(env->id)) ||
	    env->rcpt_count == 0)
		return RELAY_QUEUE_EINVAL;
	e = entry_find(q, env->id);
	if (!entry_visible(e))
		return RELAY_QUEUE_ENOENT;
	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return RELAY_QUEUE_ENOMEM;
	op->kind = OP_UPDATE;
	op->pool[0] = op->pool[1] = QUEUE__POOL_NONE;
	memcpy(op->id, env->id, sizeof(op->id));
	op->buf = relay_queue_envelope_format(env, &op->buflen);
	if (op->buf == NULL) {
		free(op);
		return RELAY_QUEUE_ENOMEM;
	}
	info_from_env(&op->info, env);
	op->cb = cb;
	op->arg = arg;
	return op_enqueue(q, e, op);
}

int
relay_queue_remove(struct relay_queue *q, const char *id,
    relay_queue_done_cb cb, void *arg)
{
	struct entry *e;
	struct op *op;

	if (q->closing)
		return RELAY_QUEUE_ECANCELED;
	if (id == NULL || !relay_queue_id_valid(id, strlen(id)))
		return RELAY_QUEUE_ENOENT;
	e = entry_find(q, id);
	if (!entry_visible(e))
		return RELAY_QUEUE_ENOENT;
	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return RELAY_QUEUE_ENOMEM;
	op->kind = OP_REMOVE;
	op->pool[0] = op->pool[1] = QUEUE__POOL_NONE;
	memcpy(op->id, id, sizeof(op->id));
	op->cb = cb;
	op->arg = arg;
	e->removing = true;
	return op_enqueue(q, e, op);
}

int
relay_queue_load(struct relay_queue *q, const char *id, relay_queue_load_cb cb,
    void *arg)
{
	struct job *j;

	if (q->closing)
		return RELAY_QUEUE_ECANCELED;
	if (id == NULL || !relay_queue_id_valid(id, strlen(id)))
		return RELAY_QUEUE_ENOENT;
	if (!entry_visible(entry_find(q, id)))
		return RELAY_QUEUE_ENOENT;
	j = job_new(q, JOB_LOAD);
	if (j == NULL)
		return RELAY_QUEUE_ENOMEM;
	memcpy(j->id, id, sizeof(j->id));
	j->load_cb = cb;
	j->arg = arg;
	if (job_submit(j) != 0) {
		free(j);
		return RELAY_QUEUE_EIO;
	}
	return 0;
}

/* ---------------------------------------------------------------- */
/* completion dispatch and close                                      */

static void
queue_free(struct relay_queue *q)
{
	relay_queue_close_cb cb = q->close_cb;
	void *arg = q->close_arg;

	if (q->qdirfd >= 0)
		(void)close(q->qdirfd);
	if (q->lockfd >= 0)
		(void)close(q->lockfd); /* releases the flock */
	free(q->ent);
	free(q->load_ids);
	assert(q->load_done == NULL);
	free(q->limbo);
	free(q->dir);
	free(q);
	if (cb != NULL)
		cb(arg);
}

static void
job_finished(struct relay_queue *q)
{
	if (q->closing && q->jobs == 0 && q->writers == 0 && !q->sync_running &&
	    q->sync_next == NULL)
		queue_free(q);
}

static void
after_work_cb(uv_work_t *req, int status)
{
	struct job *j = req->data;
	struct relay_queue *q = j->q;

	(void)status; /* uv_cancel is never used: work always ran */
	/* q->jobs stays counted until the end, so that nothing a callback
	 * does can free q under us (job_finished below). */
	switch (j->kind) {
	case JOB_FLUSH:
	case JOB_COMMIT:
	case JOB_CLEAN:
		after_writer_job(j);
		break;
	case JOB_DIRSYNC:
		after_dirsync(j);
		break;
	case JOB_UPDATE:
	case JOB_REMOVE:
		after_op_job(j);
		break;
	case JOB_LOAD:
		j->load_cb(j->status, j->status == 0 ? j->env : NULL, j->arg);
		break;
	case JOB_LOAD_BATCH:
		after_load_batch(j);
		break;
	case JOB_NOOP:
		break;
	}
	free(j->buf);
	free(j);
	q->jobs--;
	job_finished(q);
}

void
relay_queue_close(struct relay_queue *q, relay_queue_close_cb cb, void *arg)
{
	struct job *j;

	assert(!q->closing);
	q->closing = true;
	q->close_cb = cb;
	q->close_arg = arg;
	/* Finish from the loop even when idle, so cb never runs inside
	 * this call. */
	j = job_new(q, JOB_NOOP);
	if (j == NULL || job_submit(j) != 0) {
		free(j);
		job_finished(q); /* best effort: may run cb now */
	}
}

/* ---------------------------------------------------------------- */
/* open and recovery (blocking; startup only)                         */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int
mkdir_p(const char *dir)
{
	char buf[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(buf))
		return ENAMETOOLONG;
	memcpy(buf, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (buf[i] == '/' || buf[i] == '\0') {
			char c = buf[i];
			buf[i] = '\0';
			if (mkdir(buf, 0700) != 0 && errno != EEXIST)
				return errno;
			buf[i] = c;
		}
	}
	return 0;
}

/* Lists the ids with the given suffix in dir (sorted). */
struct idlist {
	char (*id)[RELAY_QUEUE_ID_SIZE];
	size_t n, cap;
};

static int
idlist_add(struct idlist *l, const char *id)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		char(*n)[RELAY_QUEUE_ID_SIZE] =
		    realloc(l->id, cap * sizeof(*n));
		if (n == NULL)
			return RELAY_QUEUE_ENOMEM;
		l->id = n;
		l->cap = cap;
	}
	memcpy(l->id[l->n], id, RELAY_QUEUE_ID_LEN);
	l->id[l->n][RELAY_QUEUE_ID_LEN] = '\0';
	l->n++;
	return 0;
}

static int
idcmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static bool
idlist_has(const struct idlist *l, const char *id)
{
	return l->n > 0 &&
	    bsearch(id, l->id, l->n, sizeof(*l->id), idcmp) != NULL;
}

/* Reads dir: ids of NAME.env into envs and of NAME.msg into msgs. */
static int
list_dir(const char *dir, struct idlist *envs, struct idlist *msgs)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (d == NULL)
		return map_errno(errno);
	while (rc == 0 && (de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len != RELAY_QUEUE_ID_LEN + 4 ||
		    !relay_queue_id_valid(de->d_name, RELAY_QUEUE_ID_LEN))
			continue;
		if (envs != NULL &&
		    strcmp(de->d_name + RELAY_QUEUE_ID_LEN, ".env") == 0)
			rc = idlist_add(envs, de->d_name);
		else if (msgs != NULL &&
		    strcmp(de->d_name + RELAY_QUEUE_ID_LEN, ".msg") == 0)
			rc = idlist_add(msgs, de->d_name);
	}
	(void)closedir(d);
	if (envs != NULL && envs->n > 1)
		qsort(envs->id, envs->n, sizeof(*envs->id), idcmp);
	if (msgs != NULL && msgs->n > 1)
		qsort(msgs->id, msgs->n, sizeof(*msgs->id), idcmp);
	return rc;
}

static void
log_recovery(const char *what, const char *id, const char *why)
{
	struct relay_log_line l;

	if (relay_log_begin(&l, RELAY_LOG_WARNING, "queue-recovery")) {
		relay_log_str(&l, "id", id);
		relay_log_str(&l, "action", what);
		relay_log_str(&l, "why", why);
		relay_log_end(&l);
	}
}

/* The renames of move_corrupt(), without the log line: safe in a
 * thread-pool thread (start-up load). */
static void
move_corrupt_files(const char *spool, const char *id)
{
	struct path from, to, dir;

	(void)mkpath(&dir, spool, "corrupt", NULL, NULL);
	(void)mkdir(dir.s, 0700);
	(void)mkpath(&from, spool, "queue", id, ".env");
	(void)mkpath(&to, spool, "corrupt", id, ".env");
	(void)rename(from.s, to.s);
	(void)mkpath(&from, spool, "queue", id, ".msg");
	(void)mkpath(&to, spool, "corrupt", id, ".msg");
	(void)rename(from.s, to.s);
}

static void
move_corrupt(struct relay_queue *q, const char *id, const char *why)
{
	move_corrupt_files(q->dir, id);
	log_recovery("moved-to-corrupt", id, why);
}

/* Recovers the spool (see the top of this file); *keep receives the ids
 * of the envelopes left in queue/, sorted (the caller frees keep->id). */
static int
recover(struct relay_queue *q, char *err, size_t errlen, struct idlist *keep)
{
	struct idlist envs = { 0 }, msgs = { 0 }, tmsgs = { 0 };
	bool changed = false;
	int rc;
	DIR *d;
	struct dirent *de;

	rc = list_dir(q->qdir.s, &envs, &msgs);
	if (rc == 0)
		rc = list_dir(q->tmpdir.s, NULL, &tmsgs);
	if (rc != 0) {
		seterr(err, errlen, "%s: cannot list the spool: %s", q->dir,
		    relay_queue_strerror(rc));
		goto out;
	}
	/* Envelope without content. */
	for (size_t i = 0; i < envs.n; i++) {
		const char *id = envs.id[i];
		struct path from, to;

		if (idlist_has(&msgs, id))
			goto keep;
		if (idlist_has(&tmsgs, id)) {
			(void)mkpath(&from, q->dir, "tmp", id, ".msg");
			(void)mkpath(&to, q->dir, "queue", id, ".msg");
			if (rename(from.s, to.s) == 0) {
				changed = true;
				log_recovery("content-rename-completed", id,
				    "envelope committed before content rename");
				goto keep;
			}
		}
		move_corrupt(q, id, "envelope without content");
		changed = true;
		continue;
	keep:
		/* Still sorted: envs is, and keep takes a subsequence. */
		if ((rc = idlist_add(keep, id)) != 0) {
			seterr(err, errlen, "%s: %s", q->dir,
			    relay_queue_strerror(rc));
			goto out;
		}
	}
	/* Content without envelope: never committed (or a remove cut
	 * short); no 250 was given for it. */
	for (size_t i = 0; i < msgs.n; i++) {
		struct path p;

		if (idlist_has(&envs, msgs.id[i]))
			continue;
		(void)mkpath(&p, q->dir, "queue", msgs.id[i], ".msg");
		if (unlink(p.s) == 0) {
			changed = true;
			log_recovery("removed-uncommitted", msgs.id[i],
			    "content without envelope");
		}
	}
	if (changed && fsync(q->qdirfd) != 0) {
		seterr(err, errlen, "%s: fsync: %s", q->qdir.s,
		    strerror(errno));
		rc = RELAY_QUEUE_EIO;
		goto out;
	}
	/* tmp/ holds nothing that matters any more. */
	d = opendir(q->tmpdir.s);
	if (d == NULL) {
		rc = RELAY_QUEUE_EIO;
		seterr(err, errlen, "%s: %s", q->tmpdir.s, strerror(errno));
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		struct path p;
		if (de->d_name[0] == '.')
			continue;
		if (mkpath(&p, q->tmpdir.s, de->d_name, NULL, NULL))
			(void)unlink(p.s);
	}
	(void)closedir(d);
out:
	free(envs.id);
	free(msgs.id);
	free(tmsgs.id);
	return rc;
}

/* The value of a pool file name (16 upper-case hex digits), or
 * QUEUE__POOL_NONE when name is not one. */
static uint64_t
pool_name_parse(const char *name)
{
	uint64_t v = 0;

	if (strlen(name) != POOL_NAME_LEN)
		return QUEUE__POOL_NONE;
	for (size_t i = 0; i < POOL_NAME_LEN; i++) {
		char c = name[i];

		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			return QUEUE__POOL_NONE;
		v = v * 16 + (uint64_t)(c <= '9' ? c - '0' : c - 'A' + 10);
	}
	return v;
}

/*
 * Lists the spent files in pool/ for reuse (after tmp/ was emptied). A
 * file the pool may not write over is unlinked instead: a name that is
 * not a pool name, anything but a plain file, and a file with a second
 * link. The last happens only after a power cut on a file system that
 * does not order its metadata (ext4 without a journal): a removal's
 * rename may then have reached pool/ but not queue/, and fsck leaves
 * the file under both names; writing over it would change a queued
 * message. More than QUEUE__POOL_MAX files: the rest are unlinked.
 */
static void
pool_load(struct relay_queue *q)
{
	DIR *d = opendir(q->pooldir.s);
	struct dirent *de;

	if (d == NULL)
		return; /* no reuse; new files are created as before */
	while ((de = readdir(d)) != NULL) {
		uint64_t name = pool_name_parse(de->d_name);
		struct path p;
		struct stat st;

		if (de->d_name[0] == '.' ||
		    !mkpath(&p, q->pooldir.s, de->d_name, NULL, NULL))
			continue;
		if (name != QUEUE__POOL_NONE && lstat(p.s, &st) == 0 &&
		    S_ISREG(st.st_mode) && st.st_nlink == 1 &&
		    queue__pool_put(&q->pool, name, 0))
			continue;
		(void)unlink(p.s);
	}
	(void)closedir(d);
}

/* ---- loading the index from the envelopes ---- */

/* One id of a load batch and what reading its envelope gave. */
struct load_item {
	char id[RELAY_QUEUE_ID_SIZE];
	int status; /* 0: info is set; else why not */
	bool kept;  /* not loaded but left in queue/ (ENOMEM, queue/ not
	               readable): loaded at the next start */
	struct relay_queue_info info;
};

struct load_batch {
	struct load_batch *next; /* q->load_done, by first */
	size_t first, n;         /* q->load_ids[first .. first + n) */
	struct load_item item[];
};

/*
 * Reads and parses the batch's envelopes (thread pool, or the caller of a
 * blocking open): touches only the spool under dir and b. An envelope that
 * cannot be read or parsed, or that names another id, goes to corrupt/ as
 * at every start (the caller logs it).
 */
static void
load_batch_run(const char *dir, struct load_batch *b)
{
	struct path qdir;
	struct rbuf rb = { 0 };
	int qfd;

	(void)mkpath(&qdir, dir, "queue", NULL, NULL);
	qfd = open(qdir.s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i < b->n; i++) {
		struct load_item *it = &b->item[i];
		struct relay_queue_envelope *env = NULL;
		char name[RELAY_QUEUE_ID_LEN + 5];
		size_t len = 0;
		int r;

		memcpy(name, it->id, RELAY_QUEUE_ID_LEN);
		memcpy(name + RELAY_QUEUE_ID_LEN, ".env", 5);
		r = qfd >= 0 ? read_at(qfd, name, &rb, &len) : RELAY_QUEUE_EIO;
		if (r == 0)
			r = relay_queue_envelope_parse(rb.p, len, &env);
		if (r == 0 && strcmp(env->id, it->id) != 0)
			r = RELAY_QUEUE_ECORRUPT;
		if (r == 0)
			info_from_env(&it->info, env);
		relay_queue_envelope_free(env);
		/* As at every start, what cannot be read goes to corrupt/;
		 * but a queue/ that cannot be opened says nothing about its
		 * envelopes: they stay (logged as not loaded). */
		it->kept = r == RELAY_QUEUE_ENOMEM || qfd < 0;
		if (r != 0 && !it->kept)
			move_corrupt_files(dir, it->id);
		it->status = r;
	}
	if (qfd >= 0)
		(void)close(qfd);
	free(rb.p);
}

/*
 * Adds what load_batch_run() found to the index (loop thread). Returns 0
 * or the error of an envelope left out (ENOMEM, EIO): its files stay in
 * queue/ for the next start.
 */
static int
load_batch_apply(struct relay_queue *q, const struct load_batch *b)
{
	int rc = 0;

	for (size_t i = 0; i < b->n; i++) {
		const struct load_item *it = &b->item[i];

		if (it->kept) {
			rc = it->status;
			q->load_failed++;
			continue;
		}
		if (it->status != 0) {
			q->load_corrupt++;
			log_recovery("moved-to-corrupt", it->id,
			    relay_queue_strerror(it->status));
			continue;
		}
		if (entry_append(q, &it->info) == NULL) {
			rc = RELAY_QUEUE_ENOMEM;
			q->load_failed++;
		}
	}
	return rc;
}

/* A batch for ids [first, first + n), or NULL when out of memory. */
static struct load_batch *
load_batch_new(const struct relay_queue *q, size_t first, size_t n)
{
	struct load_batch *b =
	    calloc(1, sizeof(*b) + n * sizeof(struct load_item));

	if (b == NULL)
		return NULL;
	b->first = first;
	b->n = n;
	for (size_t i = 0; i < n; i++)
		memcpy(b->item[i].id, q->load_ids[first + i],
		    RELAY_QUEUE_ID_SIZE);
	return b;
}

/* Reserves index room for what is still to load (one allocation instead
 * of doublings that briefly hold two copies of a large index). */
static void
load_reserve(struct relay_queue *q)
{
	size_t want = q->n + (q->load_n - q->load_applied);

	if (want > q->cap) {
		struct entry *n = realloc(q->ent, want * sizeof(*n));
		if (n != NULL) {
			q->ent = n;
			q->cap = want;
		}
	}
}

bool
relay_queue_load_pending(const struct relay_queue *q, const char *id)
{
	if (q->load_applied >= q->load_n)
		return false;
	return bsearch(id, q->load_ids + q->load_applied,
	           q->load_n - q->load_applied, sizeof(*q->load_ids),
	           idcmp) != NULL;
}

bool
relay_queue_loading(const struct relay_queue *q)
{
	return q->load_applied < q->load_n;
}

size_t
relay_queue_load_left(const struct relay_queue *q)
{
	return q->load_n - q->load_applied;
}

/* The blocking load of relay_queue_open(): every envelope, in order. */
static int
load_all_now(struct relay_queue *q, char *err, size_t errlen)
{
	int rc = 0;

	load_reserve(q);
	while (rc == 0 && q->load_applied < q->load_n) {
		size_t n = q->load_n - q->load_applied;
		struct load_batch *b = load_batch_new(q, q->load_applied,
		    n < LOAD_BATCH ? n : LOAD_BATCH);

		if (b == NULL) {
			rc = RELAY_QUEUE_ENOMEM;
			break;
		}
		load_batch_run(q->dir, b);
		rc = load_batch_apply(q, b);
		q->load_applied += b->n;
		free(b);
	}
	q->load_submitted = q->load_applied;
	if (rc != 0)
		seterr(err, errlen, "%s: %s", q->dir, relay_queue_strerror(rc));
	return rc;
}

static void
load_finished(struct relay_queue *q)
{
	struct relay_log_line l;

	free(q->load_ids);
	q->load_ids = NULL;
	q->load_n = q->load_applied = q->load_submitted = 0;
	q->loading = false;
	if (relay_log_begin(&l,
	        q->load_failed > 0 ? RELAY_LOG_ERROR : RELAY_LOG_INFO,
	        "queue-loaded")) {
		relay_log_u64(&l, "messages", relay_queue_count(q));
		relay_log_u64(&l, "corrupt", q->load_corrupt);
		if (q->load_failed > 0)
			relay_log_u64(&l, "not_loaded_until_restart",
			    q->load_failed);
		relay_log_u64(&l, "ms",
		    relay_clock_mono_ms(q->clock) - q->load_started_ms);
		relay_log_end(&l);
	}
}

/* Keeps LOAD_INFLIGHT batches in the pool while ids are left. */
static void
load_submit_more(struct relay_queue *q)
{
	while (!q->closing && q->load_submitted < q->load_n &&
	    q->load_submitted - q->load_applied < LOAD_INFLIGHT * LOAD_BATCH) {
		size_t n = q->load_n - q->load_submitted;
		struct load_batch *b = load_batch_new(q, q->load_submitted,
		    n < LOAD_BATCH ? n : LOAD_BATCH);
		struct job *j = b != NULL ? job_new(q, JOB_LOAD_BATCH) : NULL;

		if (j == NULL) {
			free(b);
			break; /* retried when a batch in flight ends */
		}
		j->batch = b;
		if (job_submit(j) != 0) {
			free(b);
			free(j);
			break;
		}
		q->load_submitted += b->n;
	}
	if (!q->closing && q->load_submitted == q->load_applied &&
	    q->load_applied < q->load_n) {
		/* Nothing in flight and nothing could be submitted: out of
		 * memory. Give up loudly rather than spin; the messages stay
		 * on disk for the next start. */
		q->load_failed += q->load_n - q->load_applied;
		q->load_applied = q->load_n;
	}
}

static void
after_load_batch(struct job *j)
{
	struct relay_queue *q = j->q;
	struct load_batch **pp;
	uint64_t due = UINT64_MAX;

	j->batch->next = NULL;
	for (pp = &q->load_done; *pp != NULL && (*pp)->first < j->batch->first;
	     pp = &(*pp)->next)
		;
	j->batch->next = *pp;
	*pp = j->batch;
	j->batch = NULL;
	/* Apply in id order: each batch goes at the end of the loaded part. */
	while (q->load_done != NULL && q->load_done->first == q->load_applied) {
		struct load_batch *b = q->load_done;

		q->load_done = b->next;
		if (!q->closing) {
			(void)load_batch_apply(q, b);
			for (size_t i = 0; i < b->n; i++)
				if (b->item[i].status == 0 &&
				    b->item[i].info.next_attempt_us < due &&
				    b->item[i].info.rcpt_open > 0)
					due = b->item[i].info.next_attempt_us;
		}
		q->load_applied += b->n;
		free(b);
	}
	if (q->closing) {
		if (q->load_applied == q->load_submitted)
			q->loading = false;
		return;
	}
	load_submit_more(q);
	if (q->load_applied == q->load_n) {
		load_finished(q);
		if (q->loaded_cb != NULL)
			q->loaded_cb(true, due, q->loaded_arg);
	} else if (due != UINT64_MAX && q->loaded_cb != NULL)
		q->loaded_cb(false, due, q->loaded_arg);
}

int
relay_queue_load_start(struct relay_queue *q, relay_queue_loaded_cb cb,
    void *arg)
{
	if (q->closing)
		return RELAY_QUEUE_ECANCELED;
	if (q->loading)
		return RELAY_QUEUE_EBUSY;
	q->loaded_cb = cb;
	q->loaded_arg = arg;
	q->loading = true;
	q->load_started_ms = relay_clock_mono_ms(q->clock);
	load_reserve(q);
	if (q->load_n == 0) {
		/* Nothing to read: report from the loop, never from here. */
		struct job *j = job_new(q, JOB_LOAD_BATCH);
		struct load_batch *b = load_batch_new(q, 0, 0);

		if (j == NULL || b == NULL) {
			free(j);
			free(b);
			q->loading = false;
			return RELAY_QUEUE_ENOMEM;
		}
		j->batch = b;
		if (job_submit(j) != 0) {
			free(j);
			free(b);
			q->loading = false;
			return RELAY_QUEUE_EIO;
		}
		return 0;
	}
	load_submit_more(q);
	if (q->load_submitted == q->load_applied) {
		q->loading = false;
		return RELAY_QUEUE_ENOMEM;
	}
	return 0;
}

static int
take_lock(struct relay_queue *q, char *err, size_t errlen)
{
	struct path p;
	char pid[32];
	int n;

	if (!mkpath(&p, q->dir, "lock", NULL, NULL))
		return RELAY_QUEUE_EINVAL;
	q->lockfd = open(p.s, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (q->lockfd < 0) {
		seterr(err, errlen, "%s: cannot open: %s", p.s,
		    strerror(errno));
		return RELAY_QUEUE_EIO;
	}
	if (flock(q->lockfd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		ssize_t r = pread(q->lockfd, pid, sizeof(pid) - 1, 0);

		pid[r > 0 ? r : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		if (e == EWOULDBLOCK) {
			seterr(err, errlen,
			    "spool %s is in use by another "
			    "danerelay serve (pid %s); only one may run per "
			    "spool_dir",
			    q->dir, pid[0] ? pid : "unknown");
			return RELAY_QUEUE_ELOCKED;
		}
		seterr(err, errlen, "%s: flock: %s", p.s, strerror(e));
		return RELAY_QUEUE_EIO;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(q->lockfd, 0) != 0 ||
	    pwrite(q->lockfd, pid, (size_t)n, 0) != n) {
		seterr(err, errlen, "%s: cannot write pid: %s", p.s,
		    strerror(errno));
		return RELAY_QUEUE_EIO;
	}
	return 0;
}

/* Lock, directories, recovery and the list of ids to load (names only). */
static int
open_spool(uv_loop_t *loop, const char *dir, struct relay_queue **out,
    char *err, size_t errlen)
{
	struct relay_queue *q;
	int rc, e;

	if (dir == NULL || dir[0] == '\0' || strlen(dir) > PATH_MAX - 64) {
		seterr(err, errlen, "spool directory name missing or too long");
		return RELAY_QUEUE_EINVAL;
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return RELAY_QUEUE_ENOMEM;
	q->loop = loop;
	q->clock = relay_clock_system();
	q->lockfd = -1;
	q->qdirfd = -1;
	q->dir = strdup(dir);
	if (q->dir == NULL) {
		free(q);
		return RELAY_QUEUE_ENOMEM;
	}
	(void)mkpath(&q->tmpdir, dir, "tmp", NULL, NULL);
	(void)mkpath(&q->qdir, dir, "queue", NULL, NULL);
	(void)mkpath(&q->pooldir, dir, "pool", NULL, NULL);
	if ((e = mkdir_p(dir)) != 0) {
		seterr(err, errlen, "%s: cannot create: %s", dir, strerror(e));
		rc = RELAY_QUEUE_EIO;
		goto fail;
	}
	rc = take_lock(q, err, errlen);
	if (rc != 0)
		goto fail;
	if (((e = mkdir_p(q->tmpdir.s)) != 0) ||
	    ((e = mkdir_p(q->qdir.s)) != 0) ||
	    ((e = mkdir_p(q->pooldir.s)) != 0)) {
		seterr(err, errlen, "%s: cannot create spool directories: %s",
		    dir, strerror(e));
		rc = RELAY_QUEUE_EIO;
		goto fail;
	}
	q->qdirfd = open(q->qdir.s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->qdirfd < 0) {
		seterr(err, errlen, "%s: %s", q->qdir.s, strerror(errno));
		rc = RELAY_QUEUE_EIO;
		goto fail;
	}
	struct idlist keep = { 0 };
	rc = recover(q, err, errlen, &keep);
	if (rc == 0)
		pool_load(q);
	if (rc != 0) {
		free(keep.id);
		goto fail;
	}
	q->load_ids = keep.id;
	q->load_n = keep.n;
	/* Ids handed out from now on sort after every listed one, loaded or
	 * not (the listing is sorted). */
	if (keep.n > 0)
		q->last_id = id_value(keep.id[keep.n - 1]);
	*out = q;
	return 0;
fail:
	q->close_cb = NULL;
	queue_free(q);
	return rc;
}

int
relay_queue_open(uv_loop_t *loop, const char *dir, struct relay_queue **out,
    char *err, size_t errlen)
{
	struct relay_queue *q;
	int rc = open_spool(loop, dir, &q, err, errlen);

	if (rc != 0)
		return rc;
	rc = load_all_now(q, err, errlen);
	if (rc != 0) {
		q->close_cb = NULL;
		queue_free(q);
		return rc;
	}
	free(q->load_ids);
	q->load_ids = NULL;
	q->load_n = q->load_applied = q->load_submitted = 0;
	*out = q;
	return 0;
}

int
relay_queue_open_lazy(uv_loop_t *loop, const char *dir,
    struct relay_queue **out, char *err, size_t errlen)
{
	return open_spool(loop, dir, out, err, errlen);
}

/* ---------------------------------------------------------------- */
/* lock-free readers                                                  */

int
relay_queue_read(const char *dir, const char *id,
    struct relay_queue_envelope **out)
{
	struct path p;
	uint8_t *buf;
	size_t len;
	int rc;

	if (id == NULL || !relay_queue_id_valid(id, strlen(id)))
		return RELAY_QUEUE_ENOENT;
	if (!mkpath(&p, dir, "queue", id, ".env"))
		return RELAY_QUEUE_EINVAL;
	rc = read_whole(p.s, &buf, &len);
	if (rc != 0)
		return rc;
	rc = relay_queue_envelope_parse(buf, len, out);
	free(buf);
	return rc;
}

/* The number of entries in dir/corrupt/ into *n; a spool without one has
 * none. Returns 0 or RELAY_QUEUE_EIO / ENOMEM. */
static int
count_corrupt(const char *dir, uint64_t *n)
{
	struct path cdir;
	struct dirent *de;
	DIR *d;

	*n = 0;
	if (!mkpath(&cdir, dir, "corrupt", NULL, NULL))
		return RELAY_QUEUE_EINVAL;
	d = opendir(cdir.s);
	if (d == NULL)
		return errno == ENOENT ? 0 : map_errno(errno);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			(*n)++;
	(void)closedir(d);
	return 0;
}

/*
 * The scan reads and parses envelopes on SCAN_THREADS threads, a chunk of
 * SCAN_CHUNK ids at a time, at most SCAN_AHEAD chunks ahead of the caller,
 * who gets them in id order on its own thread: reading a large queue is
 * mostly system calls, which the threads overlap. The CLI has no loop.
 */
#define SCAN_THREADS 2
#define SCAN_CHUNK 256
#define SCAN_AHEAD 16

struct scan_slot {
	struct relay_queue_envelope *env; /* status 0 */
	int status;
};

struct scan_shared {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const struct idlist *ids;
	int qfd;
	size_t nchunks;
	size_t next;     /* next chunk to take */
	size_t consumed; /* chunks handed to fn and freed */
	bool stop;
	bool *done;              /* per chunk */
	struct scan_slot *slots; /* per id */
};

static void
scan_read_one(int qfd, const char *id, struct rbuf *b, struct scan_slot *sl)
{
	char name[RELAY_QUEUE_ID_LEN + 5];
	size_t len = 0;
	int r;

	memcpy(name, id, RELAY_QUEUE_ID_LEN);
	memcpy(name + RELAY_QUEUE_ID_LEN, ".env", 5);
	r = read_at(qfd, name, b, &len);
	if (r == 0)
		r = relay_queue_envelope_parse(b->p, len, &sl->env);
	/* The same test as serve's start-up index (load_batch_run). */
	if (r == 0 && strcmp(sl->env->id, id) != 0) {
		relay_queue_envelope_free(sl->env);
		sl->env = NULL;
		r = RELAY_QUEUE_ECORRUPT;
	}
	sl->status = r;
}

static void *
scan_thread(void *arg)
{
	struct scan_shared *sh = arg;
	struct rbuf b = { 0 };

	(void)pthread_mutex_lock(&sh->mu);
	for (;;) {
		size_t k;

		while (!sh->stop && sh->next < sh->nchunks &&
		    sh->next >= sh->consumed + SCAN_AHEAD)
			(void)pthread_cond_wait(&sh->cv, &sh->mu);
		if (sh->stop || sh->next >= sh->nchunks)
			break;
		k = sh->next++;
		(void)pthread_mutex_unlock(&sh->mu);
		size_t end = (k + 1) * SCAN_CHUNK;
		if (end > sh->ids->n)
			end = sh->ids->n;
		for (size_t i = k * SCAN_CHUNK; i < end; i++)
			scan_read_one(sh->qfd, sh->ids->id[i], &b,
			    &sh->slots[i]);
		(void)pthread_mutex_lock(&sh->mu);
		sh->done[k] = true;
		(void)pthread_cond_broadcast(&sh->cv);
	}
	(void)pthread_mutex_unlock(&sh->mu);
	free(b.p);
	return NULL;
}

/* Hands the parsed envelopes to fn in id order; returns as the scan does. */
static int
scan_consume(struct scan_shared *sh, relay_queue_scan_fn fn, void *arg,
    struct relay_queue_scan_counts *mine)
{
	int rc = 0;

	for (size_t k = 0; k < sh->nchunks && rc == 0; k++) {
		size_t end = (k + 1) * SCAN_CHUNK;

		(void)pthread_mutex_lock(&sh->mu);
		while (!sh->done[k])
			(void)pthread_cond_wait(&sh->cv, &sh->mu);
		(void)pthread_mutex_unlock(&sh->mu);
		if (end > sh->ids->n)
			end = sh->ids->n;
		for (size_t i = k * SCAN_CHUNK; i < end && rc == 0; i++) {
			struct scan_slot *sl = &sh->slots[i];

			if (sl->status == RELAY_QUEUE_ENOENT)
				continue; /* delivered or deleted meanwhile */
			if (sl->status == RELAY_QUEUE_ECORRUPT)
				mine->unparsable++;
			else if (sl->status != 0)
				rc = sl->status;
			else
				rc = fn(sl->env, arg);
		}
		/* Free this chunk's envelopes, whatever stopped us. */
		for (size_t i = k * SCAN_CHUNK; i < end; i++) {
			relay_queue_envelope_free(sh->slots[i].env);
			sh->slots[i].env = NULL;
		}
		(void)pthread_mutex_lock(&sh->mu);
		sh->consumed = k + 1;
		if (rc != 0)
			sh->stop = true;
		(void)pthread_cond_broadcast(&sh->cv);
		(void)pthread_mutex_unlock(&sh->mu);
	}
	return rc;
}

int
relay_queue_scan(const char *dir, relay_queue_scan_fn fn, void *arg,
    struct relay_queue_scan_counts *counts)
{
	struct relay_queue_scan_counts mine = { 0 };
	struct idlist envs = { 0 };
	struct scan_shared sh = { .qfd = -1 };
	pthread_t th[SCAN_THREADS];
	size_t nth = 0;
	struct path qdir;
	int rc;

	if (!mkpath(&qdir, dir, "queue", NULL, NULL))
		return RELAY_QUEUE_EINVAL;
	rc = list_dir(qdir.s, &envs, NULL);
	if (rc == 0 && envs.n > 0) {
		sh.qfd = open(qdir.s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sh.qfd < 0)
			rc = map_errno(errno);
	}
	if (rc == 0 && envs.n > 0) {
		sh.ids = &envs;
		sh.nchunks = (envs.n + SCAN_CHUNK - 1) / SCAN_CHUNK;
		sh.done = calloc(sh.nchunks, sizeof(*sh.done));
		sh.slots = calloc(envs.n, sizeof(*sh.slots));
		if (sh.done == NULL || sh.slots == NULL)
			rc = RELAY_QUEUE_ENOMEM;
	}
	if (rc == 0 && envs.n > 0) {
		(void)pthread_mutex_init(&sh.mu, NULL);
		(void)pthread_cond_init(&sh.cv, NULL);
		while (nth < SCAN_THREADS &&
		    pthread_create(&th[nth], NULL, scan_thread, &sh) == 0)
			nth++;
		if (nth == 0) {
			/* No thread to be had: read on this one. */
			sh.next = sh.nchunks;
			struct rbuf b = { 0 };
			for (size_t i = 0; i < envs.n; i++)
				scan_read_one(sh.qfd, envs.id[i], &b,
				    &sh.slots[i]);
			for (size_t k = 0; k < sh.nchunks; k++)
				sh.done[k] = true;
			free(b.p);
		}
		rc = scan_consume(&sh, fn, arg, &mine);
		(void)pthread_mutex_lock(&sh.mu);
		sh.stop = true;
		(void)pthread_cond_broadcast(&sh.cv);
		(void)pthread_mutex_unlock(&sh.mu);
		for (size_t i = 0; i < nth; i++)
			(void)pthread_join(th[i], NULL);
		/* Chunks read ahead of a stop are freed here. */
		for (size_t i = 0; i < envs.n; i++)
			relay_queue_envelope_free(sh.slots[i].env);
		(void)pthread_cond_destroy(&sh.cv);
		(void)pthread_mutex_destroy(&sh.mu);
	}
	if (sh.qfd >= 0)
		(void)close(sh.qfd);
	free(sh.done);
	free(sh.slots);
	free(envs.id);
	if (rc == 0)
		rc = count_corrupt(dir, &mine.corrupt);
	if (counts != NULL)
		*counts = mine;
	return rc;
}
