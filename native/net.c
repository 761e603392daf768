/* Bringing up the loopback interface of a new network namespace (it starts down); joining another container's. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "launcher.h"

void loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		fail(KIND_LAUNCH, "bring up lo: socket: %s", errstr(errno));
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		fail(KIND_LAUNCH, "bring up lo: read flags: %s", errstr(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		fail(KIND_LAUNCH, "bring up lo: %s", errstr(errno));
	close(s);
}

/*
 * --network container:NAME: the launcher enters the net namespace of that container's init before
 * cloning (setns is fine here: the launcher is single-threaded), and the clone flags leave out
 * CLONE_NEWNET, so the new container shares it. The pid is pinned like join.c does: /proc/PID is
 * opened as a directory, its start time compared with the recorded one, and the namespace opened
 * relative to that fd, so a reused pid is never joined.
 */
void join_net(pid_t pid, unsigned long long start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d", (int)pid);
	int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		fail(KIND_LAUNCH, "join network of container process %d: %s", (int)pid, errstr(errno));
	int fd = openat(dir, "stat", O_RDONLY | O_CLOEXEC);
	ssize_t r = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	int e = errno;
	if (fd >= 0)
		close(fd);
	if (r <= 0)
		fail(KIND_LAUNCH, "join network of container process %d: %s", (int)pid, r < 0 ? errstr(e) : "empty stat");
	buf[r] = 0;
	char *p = strrchr(buf, ')');
	for (int field = 2; field < 22 && p; field++) {
		p = strchr(p + 1, ' ');
	}
	if (!p || strtoull(p + 1, NULL, 10) != start)
		fail(KIND_LAUNCH, "join network of container process %d: the process is gone", (int)pid);
	int ns = openat(dir, "ns/net", O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		fail(KIND_LAUNCH, "join network of container process %d: open ns/net: %s", (int)pid, errstr(errno));
	if (setns(ns, CLONE_NEWNET) < 0)
		fail(KIND_LAUNCH, "join network of container process %d: setns: %s", (int)pid, errstr(errno));
	close(ns);
	close(dir);
}
