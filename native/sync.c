/* Reading the go-ahead from TypeScript on the plan fd, and the `veth` records that may precede it. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "launcher.h"

extern char g_leftover[];
extern size_t g_nleftover;
extern unsigned g_plan_lines;

/*
 * Returns 1 after reading the line "go", 0 on end of input (TypeScript gave up), and fails on
 * anything else. Lines before "go" may be `veth` records (decided by TypeScript once it knows the
 * init's pid: README.md), parsed into `p`. Reads byte by byte: the lines are short and nothing may
 * be consumed past "go".
 */
int read_go(int fd, struct plan *p)
{
	char line[4096];
	size_t n = 0;
	size_t used = 0; /* of g_leftover */
	for (;;) {
		char c;
		if (used < g_nleftover) {
			c = g_leftover[used++];
		} else {
			ssize_t r = read(fd, &c, 1);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				fail(KIND_LAUNCH, "read go-ahead: %s", errstr(errno));
			if (r == 0)
				return 0;
		}
		if (c != '\n') {
			if (n == sizeof line - 1)
				fail(KIND_LAUNCH, "read go-ahead: line too long");
			line[n++] = c;
			continue;
		}
		line[n] = 0;
		n = 0;
		if (strcmp(line, "go") == 0)
			break;
		plan_read_late(p, line, ++g_plan_lines);
	}
	if (used < g_nleftover)
		fail(KIND_LAUNCH, "read go-ahead: unexpected data after \"go\"");
	return 1;
}
