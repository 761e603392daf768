/* Creating the container's init in its new namespaces. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher.h"

/*
 * Fork-like clone into new namespaces (no CLONE_VM: the child gets a copy of this single-threaded
 * process). clone3 first; plain clone when clone3 is filtered (ENOSYS), where an all-zero stack
 * and tid arguments make the differing argument order across architectures irrelevant. The
 * cgroup namespace is not created here: the child unshares it after the sync, once the parent
 * has placed it in its cgroup, so that this cgroup becomes the container's cgroup root.
 */
pid_t clone_namespaces(unsigned ns)
{
	unsigned long flags = 0;
	if (ns & NS_PID) flags |= CLONE_NEWPID;
	if (ns & NS_MOUNT) flags |= CLONE_NEWNS;
	if (ns & NS_UTS) flags |= CLONE_NEWUTS;
	if (ns & NS_IPC) flags |= CLONE_NEWIPC;
	if (ns & NS_NET) flags |= CLONE_NEWNET;

	struct clone_args ca;
	memset(&ca, 0, sizeof ca);
	ca.flags = flags;
	ca.exit_signal = SIGCHLD;
	long pid = syscall(SYS_clone3, &ca, sizeof ca);
	if (pid < 0 && errno == ENOSYS)
		pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		fail(KIND_LAUNCH, "clone container init: %s", errstr(errno));
	return (pid_t)pid;
}
