/* Reading the go-ahead from TypeScript on the plan fd. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "launcher.h"

extern char g_leftover[64];
extern size_t g_nleftover;

/*
 * Returns 1 after reading the line "go", 0 on end of input (TypeScript gave up), and fails on
 * anything else. Reads byte by byte: the line is tiny and nothing may be consumed past it.
 */
int read_go(int fd)
{
	char line[8];
	size_t n = 0;
	for (;;) {
		char c;
		if (g_nleftover > 0) {
			c = g_leftover[0];
			memmove(g_leftover, g_leftover + 1, --g_nleftover);
		} else {
			ssize_t r = read(fd, &c, 1);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				fail(KIND_LAUNCH, "read go-ahead: %s", errstr(errno));
			if (r == 0)
				return 0;
		}
		if (c == '\n')
			break;
		if (n == sizeof line - 1)
			fail(KIND_LAUNCH, "read go-ahead: unexpected input");
		line[n++] = c;
	}
	line[n] = 0;
	if (strcmp(line, "go") != 0)
		fail(KIND_LAUNCH, "read go-ahead: expected \"go\", got \"%s\"", line);
	return 1;
}
