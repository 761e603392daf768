/*
 * The container's filesystem: premounts, the rootfs bind, the plan's mounts, device nodes,
 * symlinks, masked and read-only paths, and pivot_root. Runs in the container's init, inside its
 * new mount namespace, before pivot_root.
 *
 * Every container path is resolved under the rootfs by resolve() below: symlinks in the image are
 * followed as if the rootfs were "/" (like openat2's RESOLVE_IN_ROOT, but also creating what is
 * missing), so a hostile image cannot make a mount land on a host path (e.g. /proc -> /etc).
 * Mounts then target the resolved O_PATH fd through /proc/self/fd/N (the host's /proc, still
 * visible before pivot_root), never a path string that could be swapped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "launcher.h"

enum create { NO_CREATE, CREATE_DIR, CREATE_FILE };

struct mflags {
	unsigned long flags; /* MS_RDONLY, MS_NOSUID, ..., MS_BIND, MS_REC */
	unsigned long prop;  /* MS_PRIVATE / MS_SLAVE / MS_SHARED, with MS_REC */
};

static const struct { const char *name; unsigned long flag; int prop; } flag_names[] = {
	{"ro", MS_RDONLY, 0}, {"nosuid", MS_NOSUID, 0}, {"nodev", MS_NODEV, 0}, {"noexec", MS_NOEXEC, 0},
	{"bind", MS_BIND, 0}, {"rbind", MS_BIND | MS_REC, 0}, {"strictatime", MS_STRICTATIME, 0},
	{"relatime", MS_RELATIME, 0}, {"noatime", MS_NOATIME, 0},
	{"private", MS_PRIVATE, 1}, {"rprivate", MS_PRIVATE | MS_REC, 1}, {"slave", MS_SLAVE, 1},
	{"rslave", MS_SLAVE | MS_REC, 1}, {"shared", MS_SHARED, 1}, {"rshared", MS_SHARED | MS_REC, 1},
};

static struct mflags parse_flags(const char *list, const char *dest)
{
	struct mflags m = {0, 0};
	if (!list)
		return m;
	char *copy = xstrdup(list), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t i, n = sizeof flag_names / sizeof flag_names[0];
		for (i = 0; i < n; i++)
			if (strcmp(t, flag_names[i].name) == 0)
				break;
		if (i == n)
			fail(KIND_LAUNCH, "mount on %s: unknown mount flag %s", dest, t);
		if (flag_names[i].prop)
			m.prop |= flag_names[i].flag;
		else
			m.flags |= flag_names[i].flag;
	}
	free(copy);
	return m;
}

/* Rejects "..": a plan never needs it, and refusing it keeps the plan's intent obvious. */
static void check_components(const char *path)
{
	const char *s = path;
	while (*s) {
		while (*s == '/')
			s++;
		const char *e = strchrnul(s, '/');
		if (e - s == 2 && s[0] == '.' && s[1] == '.')
			fail(KIND_LAUNCH, "resolve %s: \"..\" is not allowed in container paths", path);
		s = e;
	}
}

#define MAX_DEPTH 256
#define MAX_HOPS 40

/*
 * Resolves a container-absolute path under the rootfs to an O_PATH fd, as if the rootfs were
 * "/": one component at a time with O_NOFOLLOW, a symlink's target spliced in front of what is
 * left (an absolute target restarts at the rootfs), ".." popping a stack of directory fds that
 * never goes above the rootfs. Missing components are created as directories (the last one as
 * an empty file for CREATE_FILE), including the targets of dangling symlinks, inside the rootfs.
 * Returns -1 with errno ENOENT when the path does not exist and create is NO_CREATE; any other
 * failure is fatal.
 */
static int resolve(int rootfd, const char *path, enum create create)
{
	check_components(path);
	int stack[MAX_DEPTH];
	int depth = 0, hops = 0, result = -1;
	stack[0] = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
	if (stack[0] < 0)
		fail(KIND_LAUNCH, "resolve %s in rootfs: %s", path, errstr(errno));
	char *rest = xstrdup(path);
	for (;;) {
		char *s = rest;
		while (*s == '/')
			s++;
		if (!*s) {
			result = fcntl(stack[depth], F_DUPFD_CLOEXEC, 0);
			break;
		}
		char *e = strchrnul(s, '/');
		size_t len = (size_t)(e - s);
		char comp[NAME_MAX + 1];
		if (len > NAME_MAX)
			fail(KIND_LAUNCH, "resolve %s in rootfs: %s", path, errstr(ENAMETOOLONG));
		memcpy(comp, s, len);
		comp[len] = 0;
		memmove(rest, e, strlen(e) + 1);
		int last = rest[strspn(rest, "/")] == 0;
		if (strcmp(comp, ".") == 0)
			continue;
		if (strcmp(comp, "..") == 0) { /* only from symlink targets */
			if (depth > 0)
				close(stack[depth--]);
			continue;
		}
		int cur = stack[depth];
		int fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT) {
			if (create == NO_CREATE)
				break;
			int r;
			if (last && create == CREATE_FILE) {
				r = openat(cur, comp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
				if (r >= 0)
					close(r);
			} else {
				r = mkdirat(cur, comp, 0755);
			}
			if (r < 0 && errno != EEXIST)
				fail(KIND_LAUNCH, "create %s in rootfs: %s", path, errstr(errno));
			fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd < 0)
			fail(KIND_LAUNCH, "resolve %s in rootfs: %s", path, errstr(errno));
		struct stat st;
		if (fstat(fd, &st) < 0)
			fail(KIND_LAUNCH, "resolve %s in rootfs: %s", path, errstr(errno));
		if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			if (++hops > MAX_HOPS)
				fail(KIND_LAUNCH, "resolve %s in rootfs: %s", path, errstr(ELOOP));
			ssize_t n = readlinkat(fd, "", target, sizeof target - 1);
			if (n < 0)
				fail(KIND_LAUNCH, "resolve %s in rootfs: read symlink %s: %s", path, comp, errstr(errno));
			target[n] = 0;
			close(fd);
			if (target[0] == '/')
				while (depth > 0)
					close(stack[depth--]);
			char *joined = xmalloc((size_t)n + strlen(rest) + 2);
			sprintf(joined, "%s/%s", target, rest);
			free(rest);
			rest = joined;
			continue;
		}
		if (last) {
			result = fd;
			break;
		}
		if (!S_ISDIR(st.st_mode))
			fail(KIND_LAUNCH, "resolve %s in rootfs: %s", path, errstr(ENOTDIR));
		if (depth + 1 == MAX_DEPTH)
			fail(KIND_LAUNCH, "resolve %s in rootfs: too deep", path);
		stack[++depth] = fd;
	}
	for (int i = 0; i <= depth; i++)
		close(stack[i]);
	free(rest);
	if (result < 0 && create == NO_CREATE)
		errno = ENOENT;
	return result;
}

/* Splits a container path into its parent (resolved, created if missing) and its last name. */
static int resolve_parent(int rootfd, const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	*name = slash + 1;
	if (!**name || strcmp(*name, ".") == 0 || strcmp(*name, "..") == 0)
		fail(KIND_LAUNCH, "create %s: not a file name", path);
	char *dir = xstrdup(path);
	dir[slash - path] = 0;
	int fd = resolve(rootfd, dir, CREATE_DIR);
	free(dir);
	return fd;
}

static const char *fdpath(int fd, char buf[static 32])
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
	return buf;
}

/* The nosuid/nodev/noexec flags a mount already has, to keep across a bind remount. */
static unsigned long kept_flags(int fd)
{
	struct statvfs sv;
	unsigned long f = 0;
	if (fstatvfs(fd, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
	return f;
}

#define REMOUNT_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_STRICTATIME | MS_RELATIME | MS_NOATIME)

/*
 * One mount onto a target given as a path (host path or /proc/self/fd/N). For a bind, the kernel
 * ignores every flag but MS_BIND|MS_REC, so ro/nosuid/nodev/noexec need a remount; reopen is
 * called to get a path naming the new mount (not the mount point beneath it).
 */
static void mount_one(const char *src, const char *target, const char *shown, const char *fstype,
		      struct mflags m, const char *data, int (*reopen)(void *), void *ctx)
{
	const char *what = src ? src : (fstype ? fstype : "none");
	if (m.flags & MS_BIND) {
		if (mount(src, target, NULL, m.flags & (MS_BIND | MS_REC), NULL) < 0)
			fail(KIND_LAUNCH, "mount %s on %s: %s", what, shown, errstr(errno));
	} else {
		if (mount(src ? src : fstype, target, fstype, m.flags, data) < 0)
			fail(KIND_LAUNCH, "mount %s on %s: %s", what, shown, errstr(errno));
	}
	if (!(m.flags & MS_BIND && m.flags & REMOUNT_FLAGS) && !m.prop)
		return;
	int fd = reopen(ctx);
	char p[32];
	if (m.flags & MS_BIND && m.flags & REMOUNT_FLAGS) {
		unsigned long f = MS_REMOUNT | MS_BIND | (m.flags & REMOUNT_FLAGS) | kept_flags(fd);
		if (mount(NULL, fdpath(fd, p), NULL, f, NULL) < 0)
			fail(KIND_LAUNCH, "remount %s with its flags: %s", shown, errstr(errno));
		/* The remount only changes the top mount: make an rbind's submounts read-only too. */
		if ((m.flags & MS_REC) && (m.flags & MS_RDONLY)) {
			struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
			if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
				fail(KIND_LAUNCH, "make %s and its submounts read-only: %s", shown, errstr(errno));
		}
	}
	if (m.prop && mount(NULL, fdpath(fd, p), NULL, m.prop, NULL) < 0)
		fail(KIND_LAUNCH, "set propagation of %s: %s", shown, errstr(errno));
	close(fd);
}

struct rootctx { int rootfd; const char *path; };

static int reopen_in_root(void *ctx)
{
	struct rootctx *c = ctx;
	return resolve(c->rootfd, c->path, NO_CREATE);
}

static int reopen_host(void *ctx)
{
	int fd = open((const char *)ctx, O_PATH | O_CLOEXEC);
	if (fd < 0)
		fail(KIND_LAUNCH, "open %s: %s", (const char *)ctx, errstr(errno));
	return fd;
}

static void do_premount(const struct premount *m)
{
	struct mflags f = parse_flags(m->flags, m->dest);
	if (m->chdir && chdir(m->chdir) < 0)
		fail(KIND_LAUNCH, "chdir %s: %s", m->chdir, errstr(errno));
	mount_one(m->src, m->dest, m->dest, m->fstype, f, m->data, reopen_host, m->dest);
	if (m->chdir && chdir("/") < 0)
		fail(KIND_LAUNCH, "chdir /: %s", errstr(errno));
}

static void do_mount(int rootfd, const struct mountspec *m)
{
	/* -t: the devpts instance that holds the container's terminal (pty.c, devpts.h) instead of a new one. */
	if (pty_devpts() >= 0 && m->fstype && strcmp(m->fstype, "devpts") == 0 && strcmp(m->dest, "/dev/pts") == 0) {
		int fd = resolve(rootfd, m->dest, CREATE_DIR);
		if (move_mount(pty_devpts(), "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			fail(KIND_LAUNCH, "mount the terminal's devpts on %s: %s", m->dest, errstr(errno));
		close(fd);
		return;
	}
	struct mflags f = parse_flags(m->flags, m->dest);
	enum create create = CREATE_DIR;
	if (f.flags & MS_BIND) {
		struct stat st;
		if (!m->src)
			fail(KIND_LAUNCH, "mount on %s: a bind mount needs a source", m->dest);
		if (stat(m->src, &st) < 0)
			fail(KIND_LAUNCH, "mount %s on %s: %s", m->src, m->dest, errstr(errno));
		if (!S_ISDIR(st.st_mode))
			create = CREATE_FILE;
	}
	int fd = resolve(rootfd, m->dest, create);
	char p[32];
	struct rootctx ctx = { rootfd, m->dest };
	mount_one(m->src, fdpath(fd, p), m->dest, m->fstype, f, m->data, reopen_in_root, &ctx);
	close(fd);
}

static void do_mknod(int rootfd, const struct devnode *d)
{
	const char *name;
	int dir = resolve_parent(rootfd, d->path, &name);
	mode_t type = d->type == 'c' ? S_IFCHR : d->type == 'b' ? S_IFBLK : S_IFIFO;
	if (mknodat(dir, name, type | (d->mode & 07777), makedev(d->major, d->minor)) < 0)
		fail(KIND_LAUNCH, "mknod %s: %s", d->path, errstr(errno));
	/* mknod is subject to the umask; set the exact mode and owner. */
	if (fchmodat(dir, name, d->mode & 07777, 0) < 0)
		fail(KIND_LAUNCH, "chmod %s: %s", d->path, errstr(errno));
	if (fchownat(dir, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
		fail(KIND_LAUNCH, "chown %s: %s", d->path, errstr(errno));
	close(dir);
}

static void do_symlink(int rootfd, const struct symlinkspec *s)
{
	const char *name;
	int dir = resolve_parent(rootfd, s->path, &name);
	if (symlinkat(s->target, dir, name) < 0 && errno != EEXIST) /* an existing entry is kept */
		fail(KIND_LAUNCH, "symlink %s -> %s: %s", s->path, s->target, errstr(errno));
	close(dir);
}

/* Hides a path: /dev/null over a file, an empty read-only tmpfs over a directory. */
static void do_mask(int rootfd, const char *path)
{
	int fd = resolve(rootfd, path, NO_CREATE);
	if (fd < 0)
		return; /* nothing to hide */
	struct stat st;
	char p[32];
	if (fstat(fd, &st) < 0)
		fail(KIND_LAUNCH, "stat %s: %s", path, errstr(errno));
	int r = S_ISDIR(st.st_mode)
		? mount("tmpfs", fdpath(fd, p), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=0555")
		: mount("/dev/null", fdpath(fd, p), NULL, MS_BIND, NULL);
	if (r < 0)
		fail(KIND_LAUNCH, "mask %s: %s", path, errstr(errno));
	close(fd);
}

/* Whether fd is the root of a mount (statx's STATX_ATTR_MOUNT_ROOT; 0 where the kernel cannot say). */
static int is_mount_root(int fd)
{
	struct statx stx;
	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, 0, &stx) < 0)
		return 0;
	return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/*
 * A path inside a mount (/proc/sys) is bound onto itself first, so that the read-only flag applies
 * to it alone; a mount point of the plan's own (the /sys/fs/cgroup tmpfs) is remounted in place.
 */
static void do_readonly(int rootfd, const char *path)
{
	int fd = resolve(rootfd, path, NO_CREATE);
	if (fd < 0)
		return;
	char p[32];
	if (!is_mount_root(fd)) {
		if (mount(fdpath(fd, p), fdpath(fd, p), NULL, MS_BIND | MS_REC, NULL) < 0)
			fail(KIND_LAUNCH, "bind %s read-only: %s", path, errstr(errno));
		close(fd);
		fd = resolve(rootfd, path, NO_CREATE);
	}
	if (fd < 0 || mount(NULL, fdpath(fd, p), NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | kept_flags(fd), NULL) < 0)
		fail(KIND_LAUNCH, "remount %s read-only: %s", path, errstr(errno));
	close(fd);
}

/*
 * Order matters: "/" becomes recursively private first so that nothing below propagates to the
 * host; premounts (the overlay rootfs) next; then the rootfs is bound onto itself (pivot_root
 * needs a mount point; binding an existing mount point again is harmless); then the plan's mounts
 * in order, device nodes and symlinks (which usually live on the /dev tmpfs just mounted), and
 * last masks and read-only paths, which usually refer to /proc and /sys mounted above.
 */
void setup_rootfs(const struct plan *p)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		fail(KIND_LAUNCH, "make / private: %s", errstr(errno));
	for (size_t i = 0; i < p->npremounts; i++)
		do_premount(&p->premounts[i]);
	if (mount(p->rootfs, p->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
		fail(KIND_LAUNCH, "bind rootfs %s: %s", p->rootfs, errstr(errno));
	int rootfd = open(p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		fail(KIND_LAUNCH, "open rootfs %s: %s", p->rootfs, errstr(errno));
	for (size_t i = 0; i < p->nmounts; i++)
		do_mount(rootfd, &p->mounts[i]);
	for (size_t i = 0; i < p->ndevices; i++)
		do_mknod(rootfd, &p->devices[i]);
	for (size_t i = 0; i < p->nsymlinks; i++)
		do_symlink(rootfd, &p->symlinks[i]);
	for (size_t i = 0; i < p->nmasked; i++)
		do_mask(rootfd, p->masked[i]);
	for (size_t i = 0; i < p->nreadonly; i++)
		do_readonly(rootfd, p->readonly[i]);
	close(rootfd);
}

/*
 * pivot_root(".", ".") stacks the old root on top of the new one at "/"; detaching it leaves only
 * the new root. No directory for the old root is needed inside the image. The old root is made
 * a slave first so that the detach cannot propagate anywhere.
 */
void do_pivot_root(const char *rootfs)
{
	int fd = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail(KIND_LAUNCH, "open rootfs %s: %s", rootfs, errstr(errno));
	if (fchdir(fd) < 0)
		fail(KIND_LAUNCH, "chdir rootfs %s: %s", rootfs, errstr(errno));
	close(fd);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		fail(KIND_LAUNCH, "pivot_root %s: %s", rootfs, errstr(errno));
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		fail(KIND_LAUNCH, "make old root a slave: %s", errstr(errno));
	if (umount2(".", MNT_DETACH) < 0)
		fail(KIND_LAUNCH, "detach old root: %s", errstr(errno));
	if (chdir("/") < 0)
		fail(KIND_LAUNCH, "chdir /: %s", errstr(errno));
}
