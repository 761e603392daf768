/*
 * tspod-monitor: the parent of a detached container's launcher, like podman's conmon. tspod has
 * no daemon; this small static process outlives the CLI that started it and
 *   - holds the container's stdout and stderr (pipes) and writes them to the log in docker's
 *     json-file format: {"log":"…","stream":"stdout","time":"RFC3339Nano"} per line,
 *   - waits for the launcher (which waits for the container's init and exits with its status),
 *   - records the exit status and the cgroup's OOM-kill count in an exit file (written atomically),
 *     even when no tspod process runs at that moment,
 *   - removes the container's (then empty) cgroup directories,
 *   - applies the restart policy (no, always, unless-stopped, on-failure[:N]): it runs the
 *     launcher again itself with the saved plan, placing the new init in the cgroup (--procs)
 *     before the go-ahead, and publishes the new init's pid in --state; a --stopped file (written
 *     by tspod stop/kill/rm) ends the policy,
 *   - serves attach clients (tspod attach, start -a) on a unix socket (--attach): the container's
 *     output goes to every client as well as to the log, the clients' input goes to the container's
 *     stdin (--stdin: a pipe the monitor holds) or to its terminal (--tty: the monitor holds the pty
 *     master, the launcher gets the slave as fd 5 and the pty's devpts instance as fd 6, which the
 *     init mounts as the container's /dev/pts: devpts.h; a new one for every run), window sizes go to
 *     the terminal.
 *
 * Usage: tspod-monitor --log PATH --exit PATH [--oom FILE] [--cgroup DIR]...
 *                      [--restart POLICY --plan FILE --state FILE --stopped FILE [--procs FILE]...]
 *                      [--exit-command ARG]... [--attach SOCKET [--stdin] [--tty]] -- LAUNCHER
 * fds 3 (plan) and 4 (report) are passed through to the launcher untouched, so the CLI still talks
 * to the launcher directly (the onPid step: cgroup placement, network) before it exits.
 * Lifetime: the launcher has PR_SET_PDEATHSIG(SIGKILL), so a SIGKILLed monitor takes the launcher
 * and, through the init's own setting and the pid namespace, the container down.
 * No allocation after start-up, small fixed buffers: a few hundred KB of RSS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include "devpts.h"
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CGROUPS 16
#define MAX_EXIT_ARGS 32
#define LINE_MAX_BYTES 16384 /* docker splits longer lines into 16 KiB records */

static int logfd = -1;

struct stream {
	const char *name;
	int type; /* attach frame type: 1 stdout, 2 stderr */
	int keep; /* the pty master: not closed at its end (new_terminal replaces it) */
	int fd;
	size_t len;
	char buf[LINE_MAX_BYTES];
};

static void die(const char *fmt, const char *arg)
{
	dprintf(2, "tspod-monitor: ");
	dprintf(2, fmt, arg);
	dprintf(2, "\n");
	/* Tell the CLI through the report fd when it is still ours. */
	if (fcntl(4, F_GETFD) >= 0) {
		dprintf(4, "error 125 monitor: ");
		dprintf(4, fmt, arg);
		dprintf(4, "\n");
	}
	exit(125);
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* a full disk loses log lines, never the container */
		p += w;
		n -= (size_t)w;
	}
}

/* One json-file record. The bytes are copied as they are except what JSON must escape. */
static void emit(const char *stream, const char *data, size_t n)
{
	static char out[LINE_MAX_BYTES * 6 + 128];
	size_t o = 0;
	o += (size_t)snprintf(out, sizeof out, "{\"log\":\"");
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)data[i];
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c == '\r') {
			out[o++] = '\\';
			out[o++] = 'r';
		} else if (c == '\t') {
			out[o++] = '\\';
			out[o++] = 't';
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, 7, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	o += (size_t)snprintf(out + o, sizeof out - o,
			      "\",\"stream\":\"%s\",\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ\"}\n", stream,
			      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
	write_all(logfd, out, o);
}

/* Emits every complete line; a line that fills the buffer is emitted as it is. */
static void drain_lines(struct stream *s, int final)
{
	size_t start = 0;
	for (;;) {
		char *nl = memchr(s->buf + start, '\n', s->len - start);
		if (!nl)
			break;
		size_t end = (size_t)(nl - s->buf) + 1;
		emit(s->name, s->buf + start, end - start);
		start = end;
	}
	if (start < s->len && (final || (start == 0 && s->len == sizeof s->buf))) {
		emit(s->name, s->buf + start, s->len - start);
		start = s->len;
	}
	memmove(s->buf, s->buf + start, s->len - start);
	s->len -= start;
}

/*
 * Attach. Clients connect to a unix socket in the container's directory (--attach; bound through
 * /proc/self/fd/N/NAME, so sun_path's 108 bytes never limit the data root's path). Frames both ways
 * use docker's stream framing: type (1 byte), 3 zero bytes, payload length (4 bytes, big endian),
 * payload. Monitor → client: 1 stdout, 2 stderr (a terminal's output is all stdout), 3 the exit code
 * as decimal text, after which the monitor closes the connection. Client → monitor: 0 bytes for the
 * container's stdin (only with --stdin), 1 a window size (rows, cols: 2 bytes each, big endian;
 * only with --tty), 2 close the container's stdin once the input before it is written (docker's
 * StdinOnce, sent by a client of a `create -i` container at the end of its input; not with --tty). A client that cannot take output at once is dropped: the container never waits
 * for a client. Input is taken from clients only while the container keeps up with it.
 */
#define MAX_CLIENTS 16
#define TTY_FD 5 /* the launcher's fd for the pty slave (pty.c) */
#define DEVPTS_FD 6 /* the launcher's fd for the slave's devpts instance (pty.c, devpts.h) */
#define FRAME_STDIN 0
#define FRAME_RESIZE 1
#define FRAME_EXIT 3
#define FRAME_CLOSE_STDIN 2

struct client {
	int fd;
	unsigned char hdr[8];
	size_t hlen; /* header bytes read so far (8: in a payload) */
	uint32_t left; /* payload bytes still to come */
	unsigned char ctl[4];
	size_t clen;
};
static struct client clients[MAX_CLIENTS];
static int listenfd = -1, attach_dir = -1;
static const char *attach_name;
static int stdin_r = -1, stdin_w = -1; /* --stdin without --tty: the container's stdin pipe */
static int master = -1; /* --tty: the current run's terminal */
static int tty_on; /* --tty */
static int next_slave = -1, next_devpts = -1; /* the terminal made for the next launcher (new_terminal) */
static char pts_path[64]; /* without a devpts instance of its own (an old kernel): the host's slave path */
static struct winsize winsz = { 24, 80, 0, 0 }; /* the last size a client asked for */
static int input_on; /* --stdin */
static char pending[8192]; /* input the container has not taken yet */
static size_t npending;
static int close_stdin; /* FRAME_CLOSE_STDIN seen: close the pipe once pending is written */

static int input_fd(void)
{
	if (!input_on)
		return -1;
	return master >= 0 ? master : stdin_w;
}

static void drop_client(struct client *c)
{
	close(c->fd);
	c->fd = -1;
}

static void broadcast(int type, const char *p, size_t n)
{
	unsigned char hdr[8] = { (unsigned char)type, 0, 0, 0, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
				 (unsigned char)(n >> 8), (unsigned char)n };
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &clients[i];
		if (c->fd < 0)
			continue;
		struct iovec iov[2] = { { hdr, 8 }, { (void *)p, n } };
		ssize_t w = writev(c->fd, iov, 2);
		if (w != (ssize_t)(n + 8))
			drop_client(c); /* gone, or too slow: a torn frame cannot be resumed */
	}
}

/*
 * The terminal of the next run: a pty in a new devpts instance (devpts.h), or, where the kernel has
 * no fsopen (before 5.2), on the host's /dev/ptmx as before. It replaces the current master (whose
 * run has ended: its slave is closed) and gets the last window size. 0, or -1 with errno.
 */
static int new_terminal(void)
{
	int m = -1, s = -1;
	int mnt = devpts_new(DEVPTS_DEFAULT_DATA, DEVPTS_DEFAULT_ATTRS);
	if (mnt >= 0 && devpts_openpty(mnt, &m, &s) < 0) {
		int e = errno;
		close(mnt);
		errno = e;
		return -1;
	}
	if (mnt < 0) {
		if (errno != ENOSYS)
			return -1;
		m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, pts_path, sizeof pts_path) != 0)
			return -1;
		s = open(pts_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (s < 0)
			return -1;
	}
	ioctl(m, TIOCSWINSZ, &winsz);
	fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
	if (master >= 0)
		close(master);
	if (next_slave >= 0)
		close(next_slave);
	if (next_devpts >= 0)
		close(next_devpts);
	master = m;
	next_slave = s;
	next_devpts = mnt;
	return 0;
}

static void attach_setup(const char *path, int want_stdin, int want_tty)
{
	for (int i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;
	tty_on = want_tty;
	if (want_tty) {
		if (new_terminal() < 0)
			die("open pseudo-terminal: %s", strerror(errno));
	} else if (want_stdin) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) < 0)
			die("pipe: %s", strerror(errno));
		stdin_r = p[0];
		stdin_w = p[1];
		fcntl(stdin_w, F_SETFL, fcntl(stdin_w, F_GETFL) | O_NONBLOCK);
	}
	input_on = want_stdin;
	if (!path)
		return;
	static char dir[4096];
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path || (size_t)(slash - path) >= sizeof dir || !slash[1])
		die("--attach %s: want an absolute path of a file", path);
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = 0;
	attach_name = slash + 1;
	attach_dir = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (attach_dir < 0)
		die("open attach directory: %s", strerror(errno));
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d/%s", attach_dir, attach_name) >= (int)sizeof sa.sun_path)
		die("--attach: socket name %s too long", attach_name);
	unlinkat(attach_dir, attach_name, 0); /* left by a monitor that was killed */
	listenfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (listenfd < 0)
		die("attach socket: %s", strerror(errno));
	mode_t old = umask(077);
	int b = bind(listenfd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (b < 0 || listen(listenfd, MAX_CLIENTS) < 0)
		die("bind attach socket: %s", strerror(errno));
}

/*
 * What the launcher gets for -t: the slave of a terminal made for it (the first run's by attach_setup,
 * so that clients can attach before it starts; a restart's here) and its devpts instance in *devpts.
 */
static int take_slave(int *devpts)
{
	*devpts = -1;
	if (!tty_on || (next_slave < 0 && new_terminal() < 0))
		return -1;
	int s = next_slave;
	*devpts = next_devpts;
	next_slave = next_devpts = -1;
	return s;
}

/* Slots in the poll set: the listening socket, the container's input (when input waits), the clients. */
#define ATTACH_POLLFDS (2 + MAX_CLIENTS)
static void attach_pollfds(struct pollfd *p, int quiet)
{
	p[0] = (struct pollfd){ quiet ? -1 : listenfd, POLLIN, 0 };
	p[1] = (struct pollfd){ npending ? input_fd() : -1, POLLOUT, 0 };
	for (int i = 0; i < MAX_CLIENTS; i++)
		p[2 + i] = (struct pollfd){ quiet || npending ? -1 : clients[i].fd, POLLIN, 0 };
}

static void flush_input(void)
{
	int fd = input_fd();
	while (npending) {
		ssize_t w = fd < 0 ? -1 : write(fd, pending, npending);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w <= 0) {
			npending = 0; /* nobody reads the container's stdin any more */
			break;
		}
		memmove(pending, pending + w, npending - (size_t)w);
		npending -= (size_t)w;
	}
	if (close_stdin) {
		close_stdin = 0;
		if (stdin_w >= 0) {
			close(stdin_w); /* the container reads end of file; a restart gets a new pipe (reopen_stdin) */
			stdin_w = -1;
		}
	}
}

/* The container's stdin pipe again after a FRAME_CLOSE_STDIN closed it (a restart of a -i container). */
static void reopen_stdin(void)
{
	int p[2];
	if (stdin_r < 0 || stdin_w >= 0 || pipe2(p, O_CLOEXEC) < 0)
		return;
	close(stdin_r);
	stdin_r = p[0];
	stdin_w = p[1];
	fcntl(stdin_w, F_SETFL, fcntl(stdin_w, F_GETFL) | O_NONBLOCK);
}

static void read_client(struct client *c)
{
	char buf[4096];
	size_t cap = sizeof pending - npending < sizeof buf ? sizeof pending - npending : sizeof buf;
	if (cap == 0)
		return;
	ssize_t r = read(c->fd, buf, cap);
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (r <= 0) {
		drop_client(c); /* the container's stdin stays open (docker's attach to a run -d -i container) */
		return;
	}
	for (size_t i = 0; i < (size_t)r;) {
		if (c->hlen < 8) {
			c->hdr[c->hlen++] = (unsigned char)buf[i++];
			if (c->hlen == 8) {
				c->left = (uint32_t)c->hdr[4] << 24 | (uint32_t)c->hdr[5] << 16 | (uint32_t)c->hdr[6] << 8 | c->hdr[7];
				c->clen = 0;
			}
		} else {
			size_t take = (size_t)r - i < c->left ? (size_t)r - i : c->left;
			if (c->hdr[0] == FRAME_STDIN && input_fd() >= 0) {
				memcpy(pending + npending, buf + i, take);
				npending += take;
			} else if (c->hdr[0] == FRAME_RESIZE) {
				for (size_t k = 0; k < take && c->clen < sizeof c->ctl; k++)
					c->ctl[c->clen++] = (unsigned char)buf[i + k];
			}
			i += take;
			c->left -= (uint32_t)take;
		}
		if (c->hlen == 8 && c->left == 0) {
			if (c->hdr[0] == FRAME_RESIZE && c->clen == 4 && master >= 0) {
				struct winsize ws = { (unsigned short)(c->ctl[0] << 8 | c->ctl[1]), (unsigned short)(c->ctl[2] << 8 | c->ctl[3]), 0, 0 };
				winsz = ws; /* for the terminal of a restart too */
				ioctl(master, TIOCSWINSZ, &ws); /* the kernel signals the terminal's foreground process group */
			}
			if (c->hdr[0] == FRAME_CLOSE_STDIN && master < 0)
				close_stdin = 1;
			c->hlen = 0;
		}
	}
}

static void attach_events(struct pollfd *p)
{
	if (p[0].revents & POLLIN) {
		int fd = accept4(listenfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			int i = 0;
			while (i < MAX_CLIENTS && clients[i].fd >= 0)
				i++;
			if (i == MAX_CLIENTS)
				close(fd);
			else
				clients[i] = (struct client){ .fd = fd };
		}
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (p[2 + i].fd >= 0 && p[2 + i].revents && clients[i].fd >= 0)
			read_client(&clients[i]);
	if (npending || close_stdin)
		flush_input();
}

/* The launcher ended: every client gets the exit code and is let go. */
static void attach_exit(int code)
{
	char text[16];
	int n = snprintf(text, sizeof text, "%d", code);
	broadcast(FRAME_EXIT, text, (size_t)n);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			drop_client(&clients[i]);
}

static void attach_close(void)
{
	if (listenfd >= 0)
		close(listenfd);
	if (attach_dir >= 0)
		unlinkat(attach_dir, attach_name, 0);
}

/* Reads what is there; returns 0 at EOF. */
static int pump(struct stream *s)
{
	ssize_t r = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
	if (r < 0 && (errno == EINTR || errno == EAGAIN))
		return 1;
	if (r <= 0) {
		drain_lines(s, 1);
		if (!s->keep)
			close(s->fd);
		s->fd = -1;
		return 0;
	}
	broadcast(s->type, s->buf + s->len, (size_t)r);
	s->len += (size_t)r;
	drain_lines(s, 0);
	return 1;
}

/* "oom_kill N" from memory.oom_control (v1) or memory.events (v2); 0 when unknown. */
static long read_oom_kills(const char *path)
{
	if (!path)
		return 0;
	char buf[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t r = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (r <= 0)
		return 0;
	buf[r] = 0;
	for (char *p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, "oom_kill ", 9) == 0)
			return atol(p + 9);
	return 0;
}

static void write_exit_file(const char *path, int status, long oom)
{
	char tmp[4096], text[512];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(text, sizeof text,
			 "{\"exitCode\":%d,\"oomKills\":%ld,\"finishedAt\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ\"}\n", code,
			 oom, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	write_all(fd, text, (size_t)n);
	fsync(fd);
	close(fd);
	rename(tmp, path);
}

struct policy {
	int kind; /* 0 no, 1 always/unless-stopped, 2 on-failure */
	long max; /* on-failure:N; 0 = unlimited */
};

static void parse_policy(const char *s, struct policy *p)
{
	p->kind = 0;
	p->max = 0;
	if (strcmp(s, "no") == 0)
		return;
	if (strcmp(s, "always") == 0 || strcmp(s, "unless-stopped") == 0) {
		p->kind = 1;
		return;
	}
	if (strncmp(s, "on-failure", 10) == 0 && (s[10] == 0 || s[10] == ':')) {
		p->kind = 2;
		if (s[10] == ':')
			p->max = atol(s + 11);
		return;
	}
	die("unknown restart policy %s", s);
}

/* Forks the launcher with stdout/stderr on the log pipes and fds 3/4 as given (-1: already in place). */
static pid_t fork_launcher(char *const *launcher, int out, int err, int planfd, int reportfd)
{
	reopen_stdin();
	/* Opened here, before the fork: the master must not see "no slave" (EIO) before the launcher runs. */
	int devpts;
	int pts = take_slave(&devpts);
	if (tty_on && pts < 0)
		return -1;
	pid_t child = fork();
	if (child != 0 && pts >= 0)
		close(pts);
	if (child != 0 && devpts >= 0)
		close(devpts);
	if (child < 0)
		return -1;
	if (child == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		int null = open("/dev/null", O_RDONLY);
		if (null < 0 || dup2(stdin_r >= 0 ? stdin_r : null, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			die("stdio: %s", strerror(errno));
		if ((planfd >= 0 && dup2(planfd, 3) < 0) || (reportfd >= 0 && dup2(reportfd, 4) < 0))
			die("launcher fds: %s", strerror(errno));
		/* The terminal's two fds out of the way of each other's target first (5 and 6). */
		if ((pts >= 0 && (pts = fcntl(pts, F_DUPFD_CLOEXEC, 10)) < 0) || (devpts >= 0 && (devpts = fcntl(devpts, F_DUPFD_CLOEXEC, 10)) < 0))
			die("terminal fds: %s", strerror(errno));
		if ((pts >= 0 && dup2(pts, TTY_FD) < 0) || (devpts >= 0 && dup2(devpts, DEVPTS_FD) < 0))
			die("terminal fds: %s", strerror(errno));
		execv(launcher[0], launcher);
		die("exec launcher: %s", strerror(errno));
	}
	return child;
}

static int read_file_fd(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = 0;
	ssize_t r;
	while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	close(fd);
	buf[n] = 0;
	return (int)n;
}

static void write_state(const char *path, pid_t pid, long restarts)
{
	char tmp[4096], text[128];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return;
	int n = snprintf(text, sizeof text, "{\"pid\":%d,\"restartCount\":%ld}\n", (int)pid, restarts);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	write_all(fd, text, (size_t)n);
	close(fd);
	rename(tmp, path);
}

/*
 * A restart: the launcher protocol driven by the monitor itself. Plan (with `sync`) on a pipe as
 * fd 3; on `pid N` the init is written into every cgroup.procs file, then `go`. Returns the new
 * launcher's pid (whatever happens next, it is reaped by the main loop), or -1.
 */
static pid_t relaunch(char *const *launcher, int out, int err, const char *planfile, const char **procs, size_t nprocs,
		      const char *statefile, long restarts)
{
	static char plan[256 * 1024];
	int plen = read_file_fd(planfile, plan, sizeof plan);
	if (plen <= 0)
		return -1;
	int pp[2], rp[2];
	if (pipe2(pp, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(rp, O_CLOEXEC) < 0) {
		close(pp[0]);
		close(pp[1]);
		return -1;
	}
	pid_t child = fork_launcher(launcher, out, err, pp[0], rp[1]);
	close(pp[0]);
	close(rp[1]);
	if (child < 0) {
		close(pp[1]);
		close(rp[0]);
		return -1;
	}
	write_all(pp[1], plan, (size_t)plen);
	char line[4096];
	size_t len = 0;
	int done = 0;
	while (!done) {
		ssize_t r = read(rp[0], line + len, sizeof line - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		line[len] = 0;
		char *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = 0;
			if (strncmp(line, "pid ", 4) == 0) {
				for (size_t i = 0; i < nprocs; i++) {
					int fd = open(procs[i], O_WRONLY | O_CLOEXEC);
					if (fd >= 0) {
						write_all(fd, line + 4, strlen(line + 4));
						close(fd);
					}
				}
				write_state(statefile, (pid_t)atoi(line + 4), restarts);
				write_all(pp[1], "go\n", 3);
				close(pp[1]);
				pp[1] = -1;
			} else if (strncmp(line, "started", 7) == 0) {
				done = 1;
			} else if (strncmp(line, "error", 5) == 0) {
				/* nobody else will see it: put it in the log, as the container's stderr */
				char msg[4200];
				int m = snprintf(msg, sizeof msg, "tspod: restart failed: %s\n", line + 6);
				emit("stderr", msg, (size_t)(m < (int)sizeof msg ? m : (int)sizeof msg - 1));
				done = 1;
			}
			size_t used = (size_t)(nl - line) + 1;
			memmove(line, nl + 1, len - used + 1);
			len -= used;
		}
		if (len == sizeof line - 1)
			len = 0;
	}
	if (pp[1] >= 0)
		close(pp[1]);
	close(rp[0]);
	return child;
}

/*
 * --exit-command ARG… (run -d --rm): once the exit file is written, the command (tspod rm ID) is
 * started in a session of its own and not waited for, as podman's conmon runs its exit command.
 */
static void run_exit_command(char *const *argv)
{
	pid_t pid = fork();
	if (pid != 0)
		return;
	setsid();
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	execv(argv[0], argv);
	_exit(127);
}

int main(int argc, char **argv)
{
	const char *log = NULL, *exitpath = NULL, *oom = NULL, *cgroups[MAX_CGROUPS], *procs[MAX_CGROUPS];
	const char *planfile = NULL, *statefile = NULL, *stoppedfile = NULL;
	char *exitcmd[MAX_EXIT_ARGS + 1];
	size_t nexit = 0;
	struct policy pol = { 0, 0 };
	size_t ncg = 0, nprocs = 0;
	const char *attach = NULL;
	int want_stdin = 0, want_tty = 0;
	int i;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (strcmp(argv[i], "--stdin") == 0 || strcmp(argv[i], "--tty") == 0) {
			*(argv[i][2] == 's' ? &want_stdin : &want_tty) = 1;
			continue;
		}
		if (i + 1 >= argc)
			die("option %s needs a value", argv[i]);
		if (strcmp(argv[i], "--log") == 0)
			log = argv[++i];
		else if (strcmp(argv[i], "--exit") == 0)
			exitpath = argv[++i];
		else if (strcmp(argv[i], "--oom") == 0)
			oom = argv[++i];
		else if (strcmp(argv[i], "--cgroup") == 0 && ncg < MAX_CGROUPS)
			cgroups[ncg++] = argv[++i];
		else if (strcmp(argv[i], "--procs") == 0 && nprocs < MAX_CGROUPS)
			procs[nprocs++] = argv[++i];
		else if (strcmp(argv[i], "--restart") == 0)
			parse_policy(argv[++i], &pol);
		else if (strcmp(argv[i], "--plan") == 0)
			planfile = argv[++i];
		else if (strcmp(argv[i], "--state") == 0)
			statefile = argv[++i];
		else if (strcmp(argv[i], "--stopped") == 0)
			stoppedfile = argv[++i];
		else if (strcmp(argv[i], "--exit-command") == 0 && nexit < MAX_EXIT_ARGS)
			exitcmd[nexit++] = argv[++i];
		else if (strcmp(argv[i], "--attach") == 0)
			attach = argv[++i];
		else
			die("unknown option %s", argv[i]);
	}
	if (!log || !exitpath || i >= argc)
		die("usage: %s", "tspod-monitor --log PATH --exit PATH [--oom FILE] [--cgroup DIR]... [--restart POLICY --plan FILE --state FILE --stopped FILE [--procs FILE]...] [--exit-command ARG]... -- LAUNCHER");
	if (pol.kind && (!planfile || !statefile || !stoppedfile))
		die("option %s needs --plan, --state and --stopped", "--restart");
	char *const *launcher = argv + i;

	setsid(); /* already a session leader when tspod spawned us detached: harmless */
	prctl(PR_SET_NAME, "tspod-monitor", 0, 0, 0);
	if (chdir("/") < 0)
		die("chdir /: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);

	logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (logfd < 0)
		die("open log: %s", strerror(errno));

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		die("signalfd: %s", strerror(errno));

	int out[2], err[2];
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	attach_setup(attach, want_stdin, want_tty); /* listening before the launcher runs: start -a connects at its pid step */
	pid_t child = fork_launcher(launcher, out[1], err[1], -1, -1);
	if (child < 0)
		die("fork: %s", strerror(errno));
	/* The plan and report fds belong to the launcher now; stdio goes nowhere. fds 3 and 4 are
	 * kept occupied (by /dev/null) so that no later pipe lands there: dup2 onto itself would
	 * leave close-on-exec set when a restart hands the launcher its fds 3 and 4. */
	for (int fd = 3; fd <= 4; fd++) {
		int n = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (n >= 0 && n != fd) {
			dup3(n, fd, O_CLOEXEC);
			close(n);
		}
	}
	/* With a restart policy the write ends stay open for the next launcher; then the end of the
	 * output is not an EOF but "launcher reaped and nothing left to read". */
	if (!pol.kind) {
		close(out[1]);
		close(err[1]);
	}
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}

	static struct stream so = { "stdout", 1, 0, -1, 0, { 0 } }, se = { "stderr", 2, 0, -1, 0, { 0 } },
			     st = { "stdout", 1, 1, -1, 0, { 0 } }; /* st: the terminal (--tty) */
	so.fd = out[0];
	se.fd = err[0];
	st.fd = master;
	int status = 0;
	long restarts = 0;
	for (;;) {
		int reaped = 0;
		while (!reaped || so.fd >= 0 || se.fd >= 0 || st.fd >= 0) {
			struct pollfd pfd[4 + ATTACH_POLLFDS] = { { sfd, POLLIN, 0 }, { so.fd, POLLIN, 0 }, { se.fd, POLLIN, 0 }, { st.fd, POLLIN, 0 } };
			attach_pollfds(pfd + 4, reaped);
			/* Once the launcher is gone, take what is buffered and stop: a leftover process without
			 * a pid namespace could keep the pipes open forever. */
			int n = poll(pfd, 4 + ATTACH_POLLFDS, reaped ? 0 : -1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				break;
			if (reaped && n == 0)
				break;
			attach_events(pfd + 4); /* first: a client that just connected gets this round's output */
			if (pfd[1].revents)
				pump(&so);
			if (pfd[2].revents)
				pump(&se);
			if (pfd[3].revents)
				pump(&st);
			if (pfd[0].revents) {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof si) != (ssize_t)sizeof si)
					continue;
				if (si.ssi_signo != SIGCHLD) {
					kill(child, (int)si.ssi_signo); /* the launcher forwards it to the init */
					continue;
				}
				int st;
				pid_t w;
				while ((w = waitpid(-1, &st, WNOHANG)) > 0)
					if (w == child) {
						status = st;
						reaped = 1;
					}
			}
		}
		if (!pol.kind || (stoppedfile && access(stoppedfile, F_OK) == 0))
			break;
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (pol.kind == 2 && (code == 0 || (pol.max > 0 && restarts >= pol.max)))
			break;
		/* docker's back-off: 100 ms, doubling, at most 2 s here */
		long delay_ms = 100L << (restarts < 5 ? restarts : 5);
		if (delay_ms > 2000)
			delay_ms = 2000;
		struct timespec ts = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };
		attach_exit(code); /* clients see this run end; the socket and the terminal stay for the next */
		nanosleep(&ts, NULL);
		if (stoppedfile && access(stoppedfile, F_OK) == 0)
			break;
		restarts++;
		child = relaunch(launcher, out[1], err[1], planfile, procs, nprocs, statefile, restarts);
		if (child < 0)
			break;
		st.fd = master;
	}
	if (so.fd >= 0)
		drain_lines(&so, 1);
	if (se.fd >= 0)
		drain_lines(&se, 1);
	if (st.fd >= 0)
		drain_lines(&st, 1);
	fsync(logfd);
	write_exit_file(exitpath, status, read_oom_kills(oom));
	attach_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	attach_close();
	/* Empty now when the container had a pid namespace; tspod removes it otherwise. */
	for (size_t c = 0; c < ncg; c++)
		rmdir(cgroups[c]);
	if (nexit) {
		exitcmd[nexit] = NULL;
		run_exit_command(exitcmd);
	}
	return 0;
}
