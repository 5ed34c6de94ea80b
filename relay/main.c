/* danerelay: command-line entry point. */
#include <stdio.h>
#include <string.h>

#include "danerelay_version.h"

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "version") == 0) {
		printf("danerelay %s\n", DANERELAY_VERSION);
		return 0;
	}
	fprintf(stderr, "usage: danerelay version\n");
	return 2;
}
