/*
 * Replay driver for the fuzz targets under gcc: runs every file of a corpus
 * directory through LLVMFuzzerTestOneInput once and reports one TAP case per
 * file. A target that crashes or trips a sanitizer kills the run, which the
 * suite summary counts as a failure.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Corpus entries are small; anything larger is a mistake in the corpus. */
#define REPLAY_MAX_INPUT (1024 * 1024)

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	DIR *d = opendir(argv[1]);
	if (d == NULL) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **nn = realloc(names, cap * sizeof(*names));
			if (nn == NULL)
				abort();
			names = nn;
		}
		names[n] = strdup(de->d_name);
		if (names[n] == NULL)
			abort();
		n++;
	}
	closedir(d);
	if (n == 0) {
		fprintf(stderr, "%s: empty corpus\n", argv[1]);
		printf("1..1\nnot ok 1 - corpus %s is empty\n", argv[1]);
		return 1;
	}
	qsort(names, n, sizeof(*names), name_cmp);

	int failed = 0;
	uint8_t *buf = malloc(REPLAY_MAX_INPUT);
	if (buf == NULL)
		abort();
	printf("1..%zu\n", n);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		int w =
		    snprintf(path, sizeof(path), "%s/%s", argv[1], names[i]);
		FILE *f = (w > 0 && (size_t)w < sizeof(path))
		    ? fopen(path, "rb")
		    : NULL;
		size_t len = 0;
		if (f != NULL) {
			len = fread(buf, 1, REPLAY_MAX_INPUT, f);
			int bad = ferror(f) || !feof(f);
			fclose(f);
			if (bad)
				f = NULL;
		}
		if (f == NULL) {
			printf(
			    "not ok %zu - %s (unreadable or over %d bytes)\n",
			    i + 1, names[i], REPLAY_MAX_INPUT);
			failed++;
		} else {
			/* Copy into an exact-size block so ASan sees over-reads. */
			uint8_t *exact = malloc(len ? len : 1);
			if (exact == NULL)
				abort();
			memcpy(exact, buf, len);
			LLVMFuzzerTestOneInput(exact, len);
			free(exact);
			printf("ok %zu - %s\n", i + 1, names[i]);
		}
		fflush(stdout);
		free(names[i]);
	}
	free(names);
	free(buf);
	return failed ? 1 : 0;
}
