/*
 * Run options executed by the container's init: namespaced sysctls (--sysctl), a read-only root
 * (--read-only) and the controlling terminal (-t).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include "launcher.h"

/*
 * Sysctls are written right after clone, through the host's /proc/sys, before the container's
 * /proc is mounted and made read-only: the namespaced ones (net.*, the IPC ones, fs.mqueue.*,
 * kernel.domainname) act on the namespaces of the writing task, which are the container's already.
 * TypeScript accepts only namespaced keys; the path is checked again here.
 */
void apply_sysctls(const struct plan *p)
{
	for (size_t i = 0; i < p->nsysctls; i++) {
		const char *key = p->sysctls[i].key, *val = p->sysctls[i].value;
		char path[512];
		size_t n = (size_t)snprintf(path, sizeof path, "/proc/sys/%s", key);
		if (n >= sizeof path || strstr(key, "..") || key[0] == '.' || key[0] == '/')
			fail(KIND_LAUNCH, "sysctl %s: invalid name", key);
		for (char *c = path + 10; *c; c++)
			if (*c == '.')
				*c = '/';
		int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			fail(KIND_LAUNCH, "sysctl %s: %s", key, errstr(errno));
		ssize_t w = write(fd, val, strlen(val));
		if (w < 0)
			fail(KIND_LAUNCH, "sysctl %s=%s: %s", key, val, errstr(errno));
		close(fd);
	}
}

/*
 * -t: the pty slave is bound on /dev/console, as docker does. Done before pivot_root, from
 * pty_name(): the init's fd 0 when the slave is of the container's own devpts (now mounted in this
 * namespace), else its host path (the bind source must be a mount of our own namespace: the copy of
 * the host's devpts, which the host's /dev/pts/N as opened before clone is not). The target is in the /dev tmpfs the plan just mounted (the plan
 * always mounts one), so no path from the image is followed.
 */
void bind_console(const struct plan *p)
{
	if (!p->tty)
		return;
	char path[4096];
	if ((size_t)snprintf(path, sizeof path, "%s/dev/console", p->rootfs) >= sizeof path)
		fail(KIND_LAUNCH, "bind /dev/console: rootfs path too long");
	int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		fail(KIND_LAUNCH, "create /dev/console: %s", errstr(errno));
	close(fd);
	if (mount(pty_name(), path, NULL, MS_BIND, NULL) < 0)
		fail(KIND_LAUNCH, "bind the terminal on /dev/console: %s", errstr(errno));
}

/* After pivot_root, with --read-only: the root mount (the bind of the overlay) becomes read-only; submounts keep theirs. */
void remount_root_readonly(const struct plan *p)
{
	if (p->readonly_rootfs && mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
		fail(KIND_LAUNCH, "remount / read-only: %s", errstr(errno));
}

/* -t: fd 0 is the slave of a pseudo-terminal; make it the controlling terminal of a new session. */
void setup_tty(const struct plan *p)
{
	if (!p->tty)
		return;
	if (setsid() < 0)
		fail(KIND_LAUNCH, "setsid: %s", errstr(errno));
	if (ioctl(0, TIOCSCTTY, 0) < 0)
		fail(KIND_LAUNCH, "set controlling terminal: %s", errstr(errno));
}
