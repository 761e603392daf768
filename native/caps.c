/*
 * Capabilities, without libcap. Two steps, because they straddle the change of user:
 * drop_bounding() runs as root before setresuid (PR_CAPBSET_DROP needs CAP_SETPCAP in the
 * effective set); apply_caps() runs after it (PR_SET_KEEPCAPS kept the permitted set) and sets
 * permitted = effective = inheritable = the plan's set, then clears the ambient set.
 *
 * The plan's set is intersected with what this process holds: a capability we do not have can
 * never be given to the container, and asking for it would make capset fail with EPERM (this
 * machine's root lacks CAP_SYS_RESOURCE, for instance). No "caps" record = keep everything.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher.h"

static int last_cap(void)
{
	/* PR_CAPBSET_READ fails with EINVAL past the kernel's last capability: no /proc needed. */
	int n = 0;
	while (n < 64 && prctl(PR_CAPBSET_READ, n, 0, 0, 0) >= 0)
		n++;
	return n - 1;
}

void drop_bounding(const struct plan *p)
{
	if (!p->have_caps)
		return;
	int last = last_cap();
	for (int c = 0; c <= last; c++) {
		if (p->caps & (1ULL << c))
			continue;
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1 && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0)
			fail(KIND_LAUNCH, "drop capability %d from the bounding set: %s", c, errstr(errno));
	}
}

void apply_caps(const struct plan *p)
{
	if (!p->have_caps)
		return;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	if (syscall(SYS_capget, &hdr, data) < 0)
		fail(KIND_LAUNCH, "capget: %s", errstr(errno));
	uint64_t have = (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
	uint64_t keep = p->caps & have;
	for (int i = 0; i < 2; i++) {
		uint32_t v = (uint32_t)(keep >> (32 * i));
		data[i].permitted = data[i].effective = data[i].inheritable = v;
	}
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	hdr.pid = 0;
	if (syscall(SYS_capset, &hdr, data) < 0)
		fail(KIND_LAUNCH, "capset: %s", errstr(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		fail(KIND_LAUNCH, "clear ambient capabilities: %s", errstr(errno));
}
