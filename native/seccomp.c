/*
 * Installing a precompiled seccomp program, the very last step before execve. The file holds
 * struct sock_filter entries, 8 bytes each, little endian: u16 code, u8 jt, u8 jf, u32 k.
 * Without no-new-privs this needs CAP_SYS_ADMIN (the kernel's rule), so plans that drop it should
 * also ask for no-new-privs.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher.h"

void install_seccomp(const struct plan *p)
{
	static int installed; /* early (before the capability drop) or last, once */
	if (!p->seccomp_prog || installed)
		return;
	installed = 1;
	size_t n = p->seccomp_len / 8;
	struct sock_filter *f = xmalloc(n * sizeof *f);
	for (size_t i = 0; i < n; i++) {
		const unsigned char *b = p->seccomp_prog + 8 * i;
		uint16_t code;
		uint32_t k;
		memcpy(&code, b, 2);
		memcpy(&k, b + 4, 4);
		f[i].code = le16toh(code);
		f[i].jt = b[2];
		f[i].jf = b[3];
		f[i].k = le32toh(k);
	}
	struct sock_fprog prog = { (unsigned short)n, f };
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
		fail(KIND_LAUNCH, "load seccomp program %s: %s", p->seccomp_path, errstr(errno));
}
