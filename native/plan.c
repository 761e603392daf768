/*
 * Plan parsing. One record per line: a keyword, then fields separated by single spaces. Each
 * field is percent-encoded (%XX for bytes outside 0x21-0x7E and for '%'); a field that is exactly
 * "-" is empty/absent. The plan ends with "end". Unknown keywords are errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>

#include "launcher.h"

#define MAX_PLAN (16u << 20)

/* Bytes read past the "end" line (`veth` records, "go"); read_go() consumes them first. */
char g_leftover[16384];
size_t g_nleftover;
unsigned g_plan_lines; /* lines read so far, for the messages about the records read by read_go() */

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Decodes in place; returns NULL for "-". */
static char *decode(char *f, unsigned lineno)
{
	if (strcmp(f, "-") == 0)
		return NULL;
	char *o = f;
	for (char *i = f; *i; i++) {
		if (*i != '%') {
			*o++ = *i;
			continue;
		}
		int h = hexval((unsigned char)i[1]), l = h < 0 ? -1 : hexval((unsigned char)i[2]);
		if (h < 0 || l < 0)
			fail(KIND_LAUNCH, "plan line %u: bad percent escape", lineno);
		if (h == 0 && l == 0)
			fail(KIND_LAUNCH, "plan line %u: NUL byte in field", lineno);
		*o++ = (char)(h * 16 + l);
		i += 2;
	}
	*o = 0;
	return f;
}

static char *need(char *s, const char *what, unsigned lineno)
{
	if (!s || !*s)
		fail(KIND_LAUNCH, "plan line %u: %s must not be empty", lineno, what);
	return s;
}

static char *abs_path(char *s, const char *what, unsigned lineno)
{
	need(s, what, lineno);
	if (s[0] != '/')
		fail(KIND_LAUNCH, "plan line %u: %s \"%s\" is not absolute", lineno, what, s);
	return s;
}

static unsigned long num(const char *s, unsigned long max, const char *what, unsigned lineno)
{
	char *end;
	if (!s || !*s)
		fail(KIND_LAUNCH, "plan line %u: %s missing", lineno, what);
	errno = 0;
	unsigned long v = strtoul(s, &end, 0);
	if (errno || *end || v > max || s[0] == '-')
		fail(KIND_LAUNCH, "plan line %u: bad %s \"%s\"", lineno, what, s);
	return v;
}

static const struct { const char *name; int res; } rlimit_names[] = {
	{"CPU", RLIMIT_CPU}, {"FSIZE", RLIMIT_FSIZE}, {"DATA", RLIMIT_DATA}, {"STACK", RLIMIT_STACK},
	{"CORE", RLIMIT_CORE}, {"RSS", RLIMIT_RSS}, {"NPROC", RLIMIT_NPROC}, {"NOFILE", RLIMIT_NOFILE},
	{"MEMLOCK", RLIMIT_MEMLOCK}, {"AS", RLIMIT_AS}, {"LOCKS", RLIMIT_LOCKS},
	{"SIGPENDING", RLIMIT_SIGPENDING}, {"MSGQUEUE", RLIMIT_MSGQUEUE}, {"NICE", RLIMIT_NICE},
	{"RTPRIO", RLIMIT_RTPRIO}, {"RTTIME", RLIMIT_RTTIME},
};

static rlim_t rlim_value(const char *s, unsigned lineno)
{
	if (s && strcmp(s, "unlimited") == 0)
		return RLIM_INFINITY;
	return (rlim_t)num(s, ULONG_MAX - 1, "rlimit value", lineno);
}

static void once(int *seen, const char *kw, unsigned lineno)
{
	if (*seen)
		fail(KIND_LAUNCH, "plan line %u: duplicate %s record", lineno, kw);
	*seen = 1;
}

static void parse_line(struct plan *p, char *line, unsigned lineno, int *done)
{
	static int seen_rootfs, seen_ns, seen_host, seen_cwd, seen_args, seen_user, seen_caps, seen_sec;
	char *f[4096];
	size_t n = 0;
	char *save = NULL;
	if (*line == 0)
		fail(KIND_LAUNCH, "plan line %u: empty line", lineno);
	for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (n == sizeof f / sizeof f[0])
			fail(KIND_LAUNCH, "plan line %u: too many fields", lineno);
		f[n++] = t;
	}
	if (n == 0)
		fail(KIND_LAUNCH, "plan line %u: no keyword", lineno);
	const char *kw = f[0];
	size_t nf = n - 1; /* number of fields after the keyword */
	for (size_t i = 1; i < n; i++)
		f[i] = decode(f[i], lineno);

#define ARITY(k) do { if (nf != (k)) fail(KIND_LAUNCH, "plan line %u: %s takes %d field(s), got %zu", lineno, kw, (k), nf); } while (0)
	if (strcmp(kw, "rootfs") == 0) {
		ARITY(1);
		once(&seen_rootfs, kw, lineno);
		p->rootfs = abs_path(f[1], "rootfs", lineno);
	} else if (strcmp(kw, "namespaces") == 0) {
		once(&seen_ns, kw, lineno);
		for (size_t i = 1; i < n; i++) {
			const char *s = need(f[i], "namespace", lineno);
			if (strcmp(s, "pid") == 0) p->namespaces |= NS_PID;
			else if (strcmp(s, "mount") == 0) p->namespaces |= NS_MOUNT;
			else if (strcmp(s, "uts") == 0) p->namespaces |= NS_UTS;
			else if (strcmp(s, "ipc") == 0) p->namespaces |= NS_IPC;
			else if (strcmp(s, "net") == 0) p->namespaces |= NS_NET;
			else if (strcmp(s, "cgroup") == 0) p->namespaces |= NS_CGROUP;
			else fail(KIND_LAUNCH, "plan line %u: unknown namespace %s", lineno, s);
		}
	} else if (strcmp(kw, "premount") == 0) {
		ARITY(6);
		struct premount m = { f[1], abs_path(f[2], "premount destination", lineno), f[3], f[4], f[5], f[6] };
		PUSH(p->premounts, p->npremounts, m);
	} else if (strcmp(kw, "mount") == 0) {
		ARITY(5);
		struct mountspec m = { f[1], abs_path(f[2], "mount destination", lineno), f[3], f[4], f[5] };
		PUSH(p->mounts, p->nmounts, m);
	} else if (strcmp(kw, "mknod") == 0) {
		ARITY(7);
		struct devnode d;
		d.path = abs_path(f[1], "device path", lineno);
		if (!f[2] || strlen(f[2]) != 1 || !strchr("cbp", f[2][0]))
			fail(KIND_LAUNCH, "plan line %u: device type must be c, b or p", lineno);
		d.type = f[2][0];
		d.major = (unsigned)num(f[3], 0xfff, "major", lineno);
		d.minor = (unsigned)num(f[4], 0xfffff, "minor", lineno);
		d.mode = (unsigned)num(f[5], 07777, "mode", lineno);
		d.uid = (uid_t)num(f[6], 0xfffffffeUL, "uid", lineno);
		d.gid = (gid_t)num(f[7], 0xfffffffeUL, "gid", lineno);
		PUSH(p->devices, p->ndevices, d);
	} else if (strcmp(kw, "symlink") == 0) {
		ARITY(2);
		struct symlinkspec s = { need(f[1], "symlink target", lineno), abs_path(f[2], "symlink path", lineno) };
		PUSH(p->symlinks, p->nsymlinks, s);
	} else if (strcmp(kw, "mask") == 0) {
		ARITY(1);
		PUSH(p->masked, p->nmasked, abs_path(f[1], "masked path", lineno));
	} else if (strcmp(kw, "readonly") == 0) {
		ARITY(1);
		PUSH(p->readonly, p->nreadonly, abs_path(f[1], "read-only path", lineno));
	} else if (strcmp(kw, "hostname") == 0) {
		ARITY(1);
		once(&seen_host, kw, lineno);
		p->hostname = need(f[1], "hostname", lineno);
	} else if (strcmp(kw, "cwd") == 0) {
		ARITY(1);
		once(&seen_cwd, kw, lineno);
		p->cwd = abs_path(f[1], "cwd", lineno);
	} else if (strcmp(kw, "mkdir-cwd") == 0) {
		ARITY(0);
		p->mkdir_cwd = 1;
	} else if (strcmp(kw, "env") == 0) {
		ARITY(1);
		char *e = need(f[1], "env entry", lineno);
		if (!strchr(e, '=') || e[0] == '=')
			fail(KIND_LAUNCH, "plan line %u: env entry \"%s\" is not KEY=VALUE", lineno, e);
		PUSH(p->env, p->nenv, e);
	} else if (strcmp(kw, "args") == 0) {
		once(&seen_args, kw, lineno);
		if (nf < 1)
			fail(KIND_LAUNCH, "plan line %u: args needs at least one field", lineno);
		need(f[1], "args[0]", lineno);
		for (size_t i = 1; i < n; i++)
			PUSH(p->args, p->nargs, f[i] ? f[i] : (char *)"");
	} else if (strcmp(kw, "user") == 0) {
		once(&seen_user, kw, lineno);
		if (nf < 2)
			fail(KIND_LAUNCH, "plan line %u: user takes UID GID [GID...]", lineno);
		p->have_user = 1;
		p->uid = (uid_t)num(f[1], 0xfffffffeUL, "uid", lineno);
		p->gid = (gid_t)num(f[2], 0xfffffffeUL, "gid", lineno);
		for (size_t i = 3; i < n; i++) {
			gid_t g = (gid_t)num(f[i], 0xfffffffeUL, "supplementary gid", lineno);
			PUSH(p->groups, p->ngroups, g);
		}
	} else if (strcmp(kw, "rlimit") == 0) {
		ARITY(3);
		struct rlimitspec r = { -1, need(f[1], "rlimit name", lineno), 0, 0 };
		for (size_t i = 0; i < sizeof rlimit_names / sizeof rlimit_names[0]; i++)
			if (strcmp(r.name, rlimit_names[i].name) == 0)
				r.resource = rlimit_names[i].res;
		if (r.resource < 0)
			fail(KIND_LAUNCH, "plan line %u: unknown rlimit %s", lineno, r.name);
		r.soft = rlim_value(f[2], lineno);
		r.hard = rlim_value(f[3], lineno);
		if (r.hard != RLIM_INFINITY && (r.soft == RLIM_INFINITY || r.soft > r.hard))
			fail(KIND_LAUNCH, "plan line %u: rlimit %s soft limit above hard limit", lineno, r.name);
		PUSH(p->rlimits, p->nrlimits, r);
	} else if (strcmp(kw, "caps") == 0) {
		once(&seen_caps, kw, lineno);
		p->have_caps = 1;
		for (size_t i = 1; i < n; i++)
			p->caps |= 1ULL << num(f[i], 63, "capability", lineno);
	} else if (strcmp(kw, "no-new-privs") == 0) {
		ARITY(0);
		p->no_new_privs = 1;
	} else if (strcmp(kw, "seccomp") == 0) {
		ARITY(1);
		once(&seen_sec, kw, lineno);
		p->seccomp_path = abs_path(f[1], "seccomp program path", lineno);
	} else if (strcmp(kw, "join") == 0) {
		ARITY(2);
		p->join_pid = (pid_t)num(f[1], 0x3fffffff, "join pid", lineno);
		p->join_start = num(f[2], ~0UL, "join start time", lineno);
		if (p->join_pid < 1)
			fail(KIND_LAUNCH, "plan line %u: join pid must be positive", lineno);
	} else if (strcmp(kw, "join-net") == 0) {
		ARITY(2);
		p->netns_pid = (pid_t)num(f[1], 0x3fffffff, "join-net pid", lineno);
		p->netns_start = num(f[2], ~0UL, "join-net start time", lineno);
		if (p->netns_pid < 1)
			fail(KIND_LAUNCH, "plan line %u: join-net pid must be positive", lineno);
	} else if (strcmp(kw, "sysctl") == 0) {
		ARITY(2);
		struct sysctlspec sc = { need(f[1], "sysctl name", lineno), f[2] ? f[2] : (char *)"" };
		PUSH(p->sysctls, p->nsysctls, sc);
	} else if (strcmp(kw, "readonly-rootfs") == 0) {
		ARITY(0);
		p->readonly_rootfs = 1;
	} else if (strcmp(kw, "tty") == 0) {
		ARITY(0);
		p->tty = 1;
	} else if (strcmp(kw, "loopback-up") == 0) {
		ARITY(0);
		p->loopback_up = 1;
	} else if (strcmp(kw, "sync") == 0) {
		ARITY(0);
		p->sync = 1;
	} else if (strcmp(kw, "end") == 0) {
		ARITY(0);
		*done = 1;
	} else {
		fail(KIND_LAUNCH, "plan line %u: unknown keyword %s", lineno, kw);
	}
#undef ARITY
}

void plan_read(int fd, struct plan *p)
{
	size_t cap = 65536, len = 0;
	char *buf = xmalloc(cap);
	unsigned lineno = 0;
	size_t start = 0;
	int done = 0;

	memset(p, 0, sizeof *p);
	while (!done) {
		char *nl = memchr(buf + start, '\n', len - start);
		if (!nl) {
			if (len == cap) {
				if (cap >= MAX_PLAN)
					fail(KIND_LAUNCH, "read plan: larger than %u bytes", MAX_PLAN);
				/* Lines already parsed point into buf, so copy the tail into a fresh buffer. */
				size_t ncap = cap * 2;
				char *nbuf = xmalloc(ncap);
				memcpy(nbuf, buf + start, len - start);
				len -= start;
				start = 0;
				buf = nbuf; /* the old buffer stays alive: parsed fields point into it */
				cap = ncap;
			}
			ssize_t r = read(fd, buf + len, cap - len);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				fail(KIND_LAUNCH, "read plan: %s", errstr(errno));
			if (r == 0)
				fail(KIND_LAUNCH, "read plan: unexpected end of input after line %u (no \"end\" record)", lineno);
			len += (size_t)r;
			continue;
		}
		*nl = 0;
		lineno++;
		char *line = buf + start;
		start = (size_t)(nl - buf) + 1;
		if (memchr(line, 0, (size_t)(nl - line)))
			fail(KIND_LAUNCH, "plan line %u: NUL byte", lineno);
		parse_line(p, line, lineno, &done);
	}
	g_plan_lines = lineno;
	g_nleftover = len - start;
	if (g_nleftover > sizeof g_leftover)
		fail(KIND_LAUNCH, "read plan: unexpected data after \"end\"");
	memcpy(g_leftover, buf + start, g_nleftover);

	if (!p->rootfs)
		fail(KIND_LAUNCH, "plan: no rootfs record");
	if (!p->args)
		fail(KIND_LAUNCH, "plan: no args record");
	if (!(p->namespaces & NS_MOUNT))
		fail(KIND_LAUNCH, "plan: a rootfs needs the mount namespace");
	if (p->loopback_up && !(p->namespaces & NS_NET))
		fail(KIND_LAUNCH, "plan: loopback-up needs the net namespace");
	if (p->netns_pid && (p->namespaces & NS_NET))
		fail(KIND_LAUNCH, "plan: join-net and a new net namespace exclude each other");
	if (!p->cwd)
		p->cwd = "/";
	PUSH(p->args, p->nargs, NULL);
	p->nargs--;
	PUSH(p->env, p->nenv, NULL);
	p->nenv--;
}

static uint32_t ipv4(const char *s, const char *what, unsigned lineno)
{
	struct in_addr a;
	if (!s || inet_pton(AF_INET, s, &a) != 1)
		fail(KIND_LAUNCH, "plan line %u: bad %s \"%s\"", lineno, what, s ? s : "-");
	return a.s_addr;
}

/*
 * A record between "end" and "go" (read_go): only `veth HOSTIF PEERIF MAC MTU BRIDGE ADDR/PREFIX
 * GATEWAY|-` (README.md). The line is copied: the fields outlive the caller's buffer.
 */
void plan_read_late(struct plan *p, char *line, unsigned lineno)
{
	char *f[9], *save = NULL;
	size_t n = 0;
	line = xstrdup(line);
	for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (n == sizeof f / sizeof f[0])
			fail(KIND_LAUNCH, "plan line %u: too many fields", lineno);
		f[n++] = t;
	}
	if (n == 0 || strcmp(f[0], "veth") != 0)
		fail(KIND_LAUNCH, "plan line %u: only veth records may come between end and go, got \"%s\"", lineno, n ? f[0] : "");
	if (n != 8)
		fail(KIND_LAUNCH, "plan line %u: veth takes 7 field(s), got %zu", lineno, n - 1);
	for (size_t i = 1; i < n; i++)
		f[i] = decode(f[i], lineno);
	if (!(p->namespaces & NS_NET) || p->join_pid)
		fail(KIND_LAUNCH, "plan line %u: veth needs a new net namespace", lineno);
	if (p->nveths == MAX_VETHS)
		fail(KIND_LAUNCH, "plan line %u: more than %d veth records", lineno, MAX_VETHS);
	struct vethspec v;
	memset(&v, 0, sizeof v);
	v.host = need(f[1], "veth host interface", lineno);
	v.peer = need(f[2], "veth peer interface", lineno);
	if (strlen(v.host) >= IFNAMSIZ || strlen(v.peer) >= IFNAMSIZ || strchr(v.host, '/') || strchr(v.peer, '/'))
		fail(KIND_LAUNCH, "plan line %u: bad interface name", lineno);
	unsigned m[6];
	char tail;
	if (!f[3] || sscanf(f[3], "%2x:%2x:%2x:%2x:%2x:%2x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &tail) != 6)
		fail(KIND_LAUNCH, "plan line %u: bad veth MAC address \"%s\"", lineno, f[3] ? f[3] : "-");
	for (int i = 0; i < 6; i++)
		v.mac[i] = (unsigned char)m[i];
	v.mtu = (unsigned)num(f[4], 65535, "veth MTU", lineno);
	if (v.mtu < 68)
		fail(KIND_LAUNCH, "plan line %u: bad veth MTU \"%s\"", lineno, f[4]);
	v.bridge = need(f[5], "veth bridge", lineno);
	char *slash = f[6] ? strchr(f[6], '/') : NULL;
	if (!slash)
		fail(KIND_LAUNCH, "plan line %u: veth address must be ADDR/PREFIX", lineno);
	*slash = 0;
	v.addr = ipv4(f[6], "veth address", lineno);
	v.prefix = (unsigned)num(slash + 1, 32, "veth prefix length", lineno);
	if (f[7]) {
		v.gateway = ipv4(f[7], "veth gateway", lineno);
		v.has_gateway = 1;
	}
	PUSH(p->veths, p->nveths, v);
}

/* The seccomp program is a host file: read it before the container's root replaces ours. */
void plan_load_seccomp(struct plan *p)
{
	if (!p->seccomp_path)
		return;
	int fd = open(p->seccomp_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail(KIND_LAUNCH, "open seccomp program %s: %s", p->seccomp_path, errstr(errno));
	struct stat st;
	if (fstat(fd, &st) < 0)
		fail(KIND_LAUNCH, "stat seccomp program %s: %s", p->seccomp_path, errstr(errno));
	if (!S_ISREG(st.st_mode) || st.st_size == 0 || st.st_size % 8 != 0 || st.st_size > 8 * 4096)
		fail(KIND_LAUNCH, "load seccomp program %s: size %lld is not a positive multiple of 8 (max 4096 instructions)",
		     p->seccomp_path, (long long)st.st_size);
	p->seccomp_len = (size_t)st.st_size;
	p->seccomp_prog = xmalloc(p->seccomp_len);
	size_t got = 0;
	while (got < p->seccomp_len) {
		ssize_t r = read(fd, p->seccomp_prog + got, p->seccomp_len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			fail(KIND_LAUNCH, "read seccomp program %s: %s", p->seccomp_path, r < 0 ? errstr(errno) : "short read");
		got += (size_t)r;
	}
	close(fd);
}
