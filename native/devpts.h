/*
 * A container's terminal must come from the container's own devpts: inside the container, ttyname()
 * finds the terminal of fds 0-2 by the path /proc/self/fd/0 names (musl's checks only that path,
 * glibc's falls back to scanning /dev), and only a pty of the devpts mounted at the container's
 * /dev/pts has a path there. A pty opened on the host's /dev/ptmx is /dev/pts/N of the host's devpts,
 * which the container does not see: Alpine's `tty` then says "not a tty".
 *
 * The relay (launcher or monitor) runs on the host, before the container's mount namespace exists.
 * So it makes the devpts instance itself with the new mount API, not attached anywhere on the host
 * (fsopen + fsmount), opens the pty pair in it (ptmx through the mount fd, the slave with
 * TIOCGPTPEER: no path lookup), and hands the mount fd to the container's init, which moves it to
 * the container's /dev/pts (move_mount) in place of mounting a fresh devpts. A mount fd can be moved
 * once: each start of a container gets a new instance.
 *
 * Header-only: used by tspod-launch (pty.c, mounts.c) and tspod-monitor (monitor.c), separate programs.
 */
#ifndef TSPOD_DEVPTS_H
#define TSPOD_DEVPTS_H

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

/* What docker gives /dev/pts (src/runtime/spec.ts), for a caller without a plan (tspod-monitor). */
#define DEVPTS_DEFAULT_DATA "newinstance,ptmxmode=0666,mode=0620,gid=5"
#define DEVPTS_DEFAULT_ATTRS (MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC)

/*
 * A new devpts instance with mount options `data` ("key=value,flag,…") and MOUNT_ATTR_* `attrs`,
 * attached nowhere: its mount fd (close-on-exec), or -1 with errno set.
 */
static inline int devpts_new(const char *data, unsigned attrs)
{
	int fs = fsopen("devpts", FSOPEN_CLOEXEC);
	if (fs < 0)
		return -1;
	char opts[256];
	if (strlen(data) >= sizeof opts) {
		close(fs);
		errno = E2BIG;
		return -1;
	}
	strcpy(opts, data);
	for (char *save = NULL, *opt = strtok_r(opts, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(opt, '=');
		if (eq)
			*eq = 0;
		if (fsconfig(fs, eq ? FSCONFIG_SET_STRING : FSCONFIG_SET_FLAG, opt, eq ? eq + 1 : NULL, 0) < 0) {
			int e = errno;
			close(fs);
			errno = e;
			return -1;
		}
	}
	int mnt = -1;
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
		mnt = fsmount(fs, FSMOUNT_CLOEXEC, attrs);
	int e = errno;
	close(fs);
	errno = e;
	return mnt;
}

/* A pty pair of the instance `mnt`: 0 with *master and *slave (close-on-exec), or -1 with errno set. */
static inline int devpts_openpty(int mnt, int *master, int *slave)
{
	int m = openat(mnt, "ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return -1;
	int unlock = 0;
	int s = ioctl(m, TIOCSPTLCK, &unlock) < 0 ? -1 : ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0) {
		int e = errno;
		close(m);
		errno = e;
		return -1;
	}
	*master = m;
	*slave = s;
	return 0;
}

#endif
