/*
 * -t: the pseudo-terminal of a foreground container. The launcher opens a pty pair before clone;
 * the slave becomes the init's fds 0, 1, 2 and its controlling terminal (setup_tty in options.c),
 * and /dev/console in the container (as docker binds it). The launcher relays its own stdin to the
 * master and the master to its stdout, and copies its terminal's window size to the master at
 * start and on every SIGWINCH (the kernel then signals the container's foreground process group).
 * Raw mode of the user's terminal is TypeScript's business (it can restore it whatever happens here).
 * Ctrl-C and Ctrl-D are bytes like any other: the container's line discipline turns them into
 * SIGINT and end-of-file, as with docker.
 *
 * A detached container (run -d -t): tspod-monitor holds the master (it relays to the log and to
 * attach clients and sets the window size) and passes the slave as fd 5 (MONITOR_TTY_FD). The
 * launcher then uses that slave for the init exactly as its own, and relays nothing.
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

#include "launcher.h"

static int master = -1, slave = -1;
static char slave_name[64];
static int stdin_open = 1, master_open = 1;

#define MONITOR_TTY_FD 5

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
		int e = ttyname_r(slave, slave_name, sizeof slave_name);
		if (e != 0)
			fail(KIND_LAUNCH, "name of the monitor's pseudo-terminal: %s", errstr(e));
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

/* The slave's path on the host (/dev/pts/N); in the init's new mount namespace it names the same node. */
const char *pty_name(void)
{
	return slave_name;
}

void pty_parent(void)
{
	if (slave >= 0)
		close(slave);
	slave = -1;
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
