/*
 * -t: the pseudo-terminal of a foreground container. The launcher opens a pty pair before clone, in
 * a devpts instance of the container's own that the init then mounts as its /dev/pts (devpts.h: so
 * that ttyname() works inside); the slave becomes the init's fds 0, 1, 2 and its controlling
 * terminal (setup_tty in options.c), and /dev/console in the container (as docker binds it). An
 * exec'd process (join mode) gets a pty of the running container's /dev/pts. The launcher relays its own stdin to the
 * master and the master to its stdout, and copies its terminal's window size to the master at
 * start and on every SIGWINCH (the kernel then signals the container's foreground process group).
 * Raw mode of the user's terminal is TypeScript's business (it can restore it whatever happens here).
 * Ctrl-C and Ctrl-D are bytes like any other: the container's line discipline turns them into
 * SIGINT and end-of-file, as with docker.
 *
 * A detached container (run -d -t): tspod-monitor holds the master (it relays to the log and to
 * attach clients and sets the window size) and passes the slave as fd 5 (MONITOR_TTY_FD) and its
 * devpts instance as fd 6 (MONITOR_DEVPTS_FD). The launcher then uses them for the init exactly as
 * its own, and relays nothing.
 *
 * Without the new mount API (kernels before 5.2), or with a plan that mounts no devpts on /dev/pts,
 * the pty comes from the host's /dev/ptmx as before: it works, but inside the container ttyname()
 * only finds it as /dev/console (glibc), or not at all (musl).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>

#include "launcher.h"
#include "devpts.h"

static int master = -1, slave = -1;
static int devpts = -1; /* the slave's devpts instance, for the init's /dev/pts (pty_devpts) */
static char slave_name[64];
static int stdin_open = 1, master_open = 1;

#define MONITOR_TTY_FD 5
#define MONITOR_DEVPTS_FD 6

/* The plan's devpts mount on /dev/pts, whose options the container's instance gets; NULL if none. */
static const struct mountspec *devpts_record(const struct plan *p)
{
	for (size_t i = 0; i < p->nmounts; i++)
		if (p->mounts[i].fstype && strcmp(p->mounts[i].fstype, "devpts") == 0 && strcmp(p->mounts[i].dest, "/dev/pts") == 0)
			return &p->mounts[i];
	return NULL;
}

/* MOUNT_ATTR_* of a plan mount's flag list ("nosuid,noexec,…"); the rest are not devpts's business. */
static unsigned mount_attrs(const char *flags)
{
	static const struct { const char *name; unsigned attr; } names[] = {
		{ "nosuid", MOUNT_ATTR_NOSUID }, { "noexec", MOUNT_ATTR_NOEXEC }, { "nodev", MOUNT_ATTR_NODEV }, { "ro", MOUNT_ATTR_RDONLY },
	};
	unsigned attrs = 0;
	for (const char *f = flags; f && *f;) {
		size_t n = strcspn(f, ",");
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
			if (strlen(names[i].name) == n && strncmp(f, names[i].name, n) == 0)
				attrs |= names[i].attr;
		f += n + (f[n] == ',');
	}
	return attrs;
}

/*
 * exec -t: the master of a new pty in the running container's /dev/pts, opened through its root
 * with every path resolved inside it (RESOLVE_IN_ROOT: the container's symlinks cannot lead out),
 * and only if it is a devpts ptmx; -1 otherwise (the caller falls back to the host's).
 */
static int container_ptmx(pid_t pid)
{
	char root_path[64];
	snprintf(root_path, sizeof root_path, "/proc/%d/root", (int)pid);
	int root = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return -1;
	struct open_how how = { .flags = O_RDWR | O_NOCTTY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
	int m = (int)syscall(SYS_openat2, root, "dev/pts/ptmx", &how, sizeof how);
	close(root);
	if (m < 0)
		return -1;
	struct statfs fs;
	struct stat st;
	if (fstatfs(m, &fs) < 0 || fs.f_type != DEVPTS_SUPER_MAGIC || fstat(m, &st) < 0 || !S_ISCHR(st.st_mode)) {
		close(m);
		return -1;
	}
	return m;
}

/* The slave of master `m` (TIOCGPTPEER: no path lookup), after unlocking it; -1 with errno. */
static int peer_of(int m)
{
	int unlock = 0;
	return ioctl(m, TIOCSPTLCK, &unlock) < 0 ? -1 : ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
}

static void copy_winsize(void)
{
	struct winsize ws;
	if (ioctl(0, TIOCGWINSZ, &ws) == 0 || ioctl(1, TIOCGWINSZ, &ws) == 0)
		ioctl(master, TIOCSWINSZ, &ws);
}

void pty_open(const struct plan *p)
{
	if (!p->tty)
		return;
	if (isatty(MONITOR_TTY_FD)) {
		slave = MONITOR_TTY_FD;
		fcntl(slave, F_SETFD, FD_CLOEXEC);
		struct statfs fs;
		if (fstatfs(MONITOR_DEVPTS_FD, &fs) == 0 && fs.f_type == DEVPTS_SUPER_MAGIC) {
			devpts = MONITOR_DEVPTS_FD;
			fcntl(devpts, F_SETFD, FD_CLOEXEC);
			strcpy(slave_name, "/proc/self/fd/0"); /* see bind_console: the init's fd 0 */
			return;
		}
		int e = ttyname_r(slave, slave_name, sizeof slave_name);
		if (e != 0)
			fail(KIND_LAUNCH, "name of the monitor's pseudo-terminal: %s", errstr(e));
		return;
	}
	const struct mountspec *rec = p->join_pid ? NULL : devpts_record(p);
	if (p->join_pid && (master = container_ptmx(p->join_pid)) >= 0) {
		if ((slave = peer_of(master)) < 0)
			fail(KIND_LAUNCH, "open pseudo-terminal slave in the container: %s", errstr(errno));
	} else if (rec && (devpts = devpts_new(rec->data ? rec->data : "", mount_attrs(rec->flags))) >= 0) {
		if (devpts_openpty(devpts, &master, &slave) < 0)
			fail(KIND_LAUNCH, "open pseudo-terminal in the container's devpts: %s", errstr(errno));
		strcpy(slave_name, "/proc/self/fd/0"); /* see bind_console: the init's fd 0 */
	} else if (rec && errno != ENOSYS) {
		fail(KIND_LAUNCH, "make the container's devpts: %s", errstr(errno));
	}
	if (master >= 0) {
		copy_winsize();
		fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
		return;
	}
	master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		fail(KIND_LAUNCH, "open pseudo-terminal: %s", errstr(errno));
	if (grantpt(master) < 0 || unlockpt(master) < 0)
		fail(KIND_LAUNCH, "unlock pseudo-terminal: %s", errstr(errno));
	const char *name = ptsname(master);
	if (!name || strlen(name) >= sizeof slave_name || (slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
		fail(KIND_LAUNCH, "open pseudo-terminal slave: %s", errstr(errno));
	strcpy(slave_name, name);
	copy_winsize();
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
}

/* In the init, right after clone: the slave on 0, 1, 2 (dup2 leaves them without close-on-exec). */
void pty_child(void)
{
	if (slave < 0)
		return;
	if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
		fail(KIND_LAUNCH, "attach pseudo-terminal: %s", errstr(errno));
	close(slave);
	close(master);
}

/* What bind_console binds on /dev/console: the host's /dev/pts/N, or the init's fd 0 once its own devpts is mounted. */
const char *pty_name(void)
{
	return slave_name;
}

void pty_parent(void)
{
	if (slave >= 0)
		close(slave);
	slave = -1;
	if (devpts >= 0)
		close(devpts); /* the init has its own copy, to mount */
	devpts = -1;
}

/* The devpts instance for the init's /dev/pts (mounts.c), or -1: the plan's devpts is mounted as usual. */
int pty_devpts(void)
{
	return devpts;
}

int pty_pollfds(struct pollfd *p)
{
	if (master < 0)
		return 0;
	p[0] = (struct pollfd){ stdin_open ? 0 : -1, POLLIN, 0 };
	p[1] = (struct pollfd){ master_open ? master : -1, POLLIN, 0 };
	return 2;
}

static void write_all(int fd, const char *b, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pw = { fd, POLLOUT, 0 };
			poll(&pw, 1, 1000);
			continue;
		}
		if (w <= 0)
			return; /* the other side is gone: drop the rest */
		b += w;
		n -= (size_t)w;
	}
}

/* One round of relaying; p as filled by pty_pollfds and then by poll. */
void pty_relay(struct pollfd *p)
{
	if (master < 0)
		return;
	char buf[8192];
	if (stdin_open && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
		ssize_t r = read(0, buf, sizeof buf);
		if (r > 0)
			write_all(master, buf, (size_t)r);
		else if (r == 0 || (errno != EINTR && errno != EAGAIN))
			stdin_open = 0; /* the input ended; the terminal stays open, as with docker -t */
	}
	if (master_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
		ssize_t r = read(master, buf, sizeof buf);
		if (r > 0)
			write_all(1, buf, (size_t)r);
		else if (r == 0 || (errno != EINTR && errno != EAGAIN))
			master_open = 0; /* EIO: every slave fd in the container is closed */
	}
}

/* SIGWINCH: the user's terminal changed size; returns 0 when there is no pty (forward the signal). */
int pty_winch(void)
{
	if (master < 0)
		return 0;
	copy_winsize();
	return 1;
}

/* After the init ended: what the container wrote last is still in the master. */
void pty_drain(void)
{
	if (master < 0)
		return;
	char buf[8192];
	while (master_open) {
		struct pollfd pm = { master, POLLIN, 0 };
		if (poll(&pm, 1, 200) <= 0)
			break;
		ssize_t r = read(master, buf, sizeof buf);
		if (r <= 0)
			break;
		write_all(1, buf, (size_t)r);
	}
	close(master);
	master = -1;
}
