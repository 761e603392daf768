/* Error reporting and small allocation helpers. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "launcher.h"

int g_errpipe = -1;

const char *errstr(int err)
{
	static char buf[128];
	snprintf(buf, sizeof buf, "%s", strerror(err));
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return; /* the reader is gone (EPIPE): nothing more we can do */
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* One line on the report fd. Newlines inside the text become spaces. */
void report(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof buf - 2)
		n = sizeof buf - 2;
	for (int i = 0; i < n; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	buf[n++] = '\n';
	write_all(REPORT_FD, buf, (size_t)n);
}

/*
 * Report a failure before exec and exit with its kind. In the container's init (before exec)
 * the message goes through the error pipe to the launcher, which reports it; in the launcher it
 * goes straight to the report fd.
 */
void fail(int kind, const char *fmt, ...)
{
	char msg[3072];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (g_errpipe >= 0) {
		char buf[3200];
		int n = snprintf(buf, sizeof buf, "%d %s", kind, msg);
		if (n > 0)
			write_all(g_errpipe, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
		_exit(kind);
	}
	report("error %d %s", kind, msg);
	exit(kind);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		fail(KIND_LAUNCH, "allocate %zu bytes: %s", n, errstr(ENOMEM));
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		fail(KIND_LAUNCH, "allocate %zu bytes: %s", n, errstr(ENOMEM));
	return p;
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = xmalloc(n);
	memcpy(d, s, n);
	return d;
}
