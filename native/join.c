/*
 * Join mode (`tspod exec`): instead of creating namespaces, the launcher enters those of a running
 * container's init (plan record `join PID STARTTIME`) and runs the plan's command there with the
 * plan's security settings (rlimits, bounding set, user, capabilities, no-new-privs, seccomp).
 *
 * The pid is pinned: /proc/PID is opened as a directory first, its start time (field 22 of stat)
 * is compared with the recorded one, and every namespace is opened relative to that directory fd,
 * which fails with ESRCH once the process is gone, so a reused pid is never joined.
 *
 * setns(CLONE_NEWPID) only affects children, so the launcher joins the pid namespace and then
 * forks; the child waits for the go-ahead (TypeScript has meanwhile put it into the container's
 * cgroup), joins ipc, uts, net, cgroup and mount namespaces, takes the init's root (fchdir to
 * /proc/PID/root, chroot) and goes through the same credential and exec steps as a new init.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launcher.h"

static int procdir = -1, rootfd = -1;
static pid_t target;
static const struct { const char *name; int type; } ns_order[] = {
	{ "ipc", CLONE_NEWIPC }, { "uts", CLONE_NEWUTS }, { "net", CLONE_NEWNET },
	{ "cgroup", CLONE_NEWCGROUP }, { "mnt", CLONE_NEWNS },
};
static int nsfd[sizeof ns_order / sizeof ns_order[0]];

static unsigned long long start_time(int dir, pid_t pid)
{
	char buf[1024];
	int fd = openat(dir, "stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail(KIND_LAUNCH, "container process %d: %s", (int)pid, errstr(errno));
	ssize_t r = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (r <= 0)
		fail(KIND_LAUNCH, "read /proc/%d/stat: %s", (int)pid, r < 0 ? errstr(errno) : "empty");
	buf[r] = 0;
	char *p = strrchr(buf, ')'); /* the command name may contain spaces and parentheses */
	if (!p)
		fail(KIND_LAUNCH, "parse /proc/%d/stat", (int)pid);
	/* after ") " come fields 3, 4, …: skip to field 22 */
	p += 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p)
		fail(KIND_LAUNCH, "parse /proc/%d/stat", (int)pid);
	return strtoull(p, NULL, 10);
}

static int open_ns(const char *name)
{
	char path[64];
	snprintf(path, sizeof path, "ns/%s", name);
	int fd = openat(procdir, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		fail(KIND_LAUNCH, "open namespace %s of container process %d: %s", name, (int)target, errstr(errno));
	return fd;
}

pid_t join_fork(const struct plan *p)
{
	char path[64];
	target = p->join_pid;
	snprintf(path, sizeof path, "/proc/%d", (int)p->join_pid);
	procdir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (procdir < 0)
		fail(KIND_LAUNCH, "container process %d is not running: %s", (int)p->join_pid, errstr(errno));
	if (start_time(procdir, p->join_pid) != p->join_start)
		fail(KIND_LAUNCH, "container process %d is not running (its pid belongs to another process now)",
		     (int)p->join_pid);
	for (size_t i = 0; i < sizeof ns_order / sizeof ns_order[0]; i++)
		nsfd[i] = open_ns(ns_order[i].name);
	rootfd = openat(procdir, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		fail(KIND_LAUNCH, "open root of container process %d: %s", (int)p->join_pid, errstr(errno));
	int pidns = open_ns("pid");
	if (setns(pidns, CLONE_NEWPID) < 0)
		fail(KIND_LAUNCH, "join pid namespace: %s", errstr(errno));
	close(pidns);
	pid_t pid = fork();
	if (pid < 0)
		fail(KIND_LAUNCH, "fork: %s", errstr(errno));
	return pid;
}

__attribute__((noreturn)) void join_child_main(const struct plan *p, int syncfd)
{
	child_prologue(syncfd);

	for (size_t i = 0; i < sizeof ns_order / sizeof ns_order[0]; i++) {
		if (setns(nsfd[i], ns_order[i].type) < 0)
			fail(KIND_LAUNCH, "join %s namespace: %s", ns_order[i].name, errstr(errno));
		close(nsfd[i]);
	}
	/* The mount namespace's root is not necessarily the init's root (pivot_root): take the init's. */
	if (fchdir(rootfd) < 0 || chroot(".") < 0)
		fail(KIND_LAUNCH, "enter container root: %s", errstr(errno));
	close(rootfd);
	close(procdir);
	enter_command(p); /* exec -t: its setup_tty makes the pty slave (fds 0-2) the controlling terminal of a new session */
}
