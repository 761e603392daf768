/*
 * CVE-2019-5736 guard. A process in the container could open /proc/<pid>/exe of a process that
 * runs this binary and, once it exits, write through that fd, replacing the host's launcher. We
 * never run from the on-disk file: at start we copy ourselves into a memfd, seal it against any
 * write, and re-exec from it. /proc/self/exe of every launcher process (and of the container's
 * init before its execve) then points at an immutable anonymous file. On top of that the
 * container's init execs right away and, with a pid namespace, the launcher is not visible
 * inside the container at all.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launcher.h"

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

void ensure_sealed_self(char **argv, char **envp)
{
	int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		fail(KIND_LAUNCH, "open /proc/self/exe: %s", errstr(errno));
	int seals = fcntl(self, F_GET_SEALS);
	if (seals >= 0 && (seals & SEALS) == SEALS) {
		close(self); /* already running from a sealed copy */
		return;
	}
	struct stat st;
	if (fstat(self, &st) < 0)
		fail(KIND_LAUNCH, "stat /proc/self/exe: %s", errstr(errno));
	int mfd = memfd_create("tspod-launch", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		fail(KIND_LAUNCH, "memfd_create: %s", errstr(errno));
	off_t left = st.st_size;
	while (left > 0) {
		ssize_t n = sendfile(mfd, self, NULL, (size_t)left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fail(KIND_LAUNCH, "copy /proc/self/exe to memfd: %s", n < 0 ? errstr(errno) : "short copy");
		left -= n;
	}
	close(self);
	if (fcntl(mfd, F_ADD_SEALS, SEALS) < 0)
		fail(KIND_LAUNCH, "seal launcher memfd: %s", errstr(errno));
	fexecve(mfd, argv, envp);
	fail(KIND_LAUNCH, "re-exec launcher from memfd: %s", errstr(errno));
}
