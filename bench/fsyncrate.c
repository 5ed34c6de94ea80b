/*
 * fsyncrate: the disk's rate of "one small file + fsync" per message.
 *
 *   fsyncrate DIR SECONDS [SIZE]
 *
 * Each iteration creates DIR/f.N, writes SIZE bytes (default 4096), fsyncs
 * it, closes it, renames it into place, fsyncs DIR and unlinks the file: the
 * work a queue does to make one message durable before answering 250.  A
 * second figure, "file-only", skips the rename and the directory fsync.
 * Output: "full=R/s file-only=R/s".
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
run(const char *dir, double secs, size_t size, int full)
{
	static char buf[65536];
	memset(buf, 'x', sizeof(buf));
	if (size > sizeof(buf))
		size = sizeof(buf);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd < 0)
		return -1;
	char tmp[4096], fin[4096];
	unsigned long n = 0;
	double t0 = now(), t;
	while ((t = now()) - t0 < secs) {
		snprintf(tmp, sizeof(tmp), "%s/tmp.%lu", dir, n);
		snprintf(fin, sizeof(fin), "%s/msg.%lu", dir, n);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd < 0 || write(fd, buf, size) != (ssize_t)size ||
		    fsync(fd) != 0)
			return -1;
		close(fd);
		if (full) {
			if (rename(tmp, fin) != 0 || fsync(dfd) != 0)
				return -1;
			unlink(fin);
		} else {
			unlink(tmp);
		}
		n++;
	}
	close(dfd);
	return (double)n / (t - t0);
}

int
main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: fsyncrate DIR SECONDS [SIZE]\n");
		return 2;
	}
	double secs = strtod(argv[2], NULL);
	size_t size = argc > 3 ? strtoul(argv[3], NULL, 10) : 4096;
	double full = run(argv[1], secs, size, 1);
	double file = run(argv[1], secs, size, 0);
	if (full < 0 || file < 0) {
		perror("fsyncrate");
		return 1;
	}
	printf("full=%.0f/s file-only=%.0f/s\n", full, file);
	return 0;
}
