/* The process side of the container's init: rlimits, user, working directory, exec. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher.h"

/*
 * Without CAP_SYS_RESOURCE a hard limit cannot be raised. Rather than fail (podman's defaults
 * fail on this machine for that reason), a value above the current hard limit is clamped to it.
 */
void apply_rlimits(const struct plan *p)
{
	for (size_t i = 0; i < p->nrlimits; i++) {
		const struct rlimitspec *r = &p->rlimits[i];
		struct rlimit cur, want = { r->soft, r->hard };
		if (getrlimit(r->resource, &cur) < 0)
			fail(KIND_LAUNCH, "getrlimit %s: %s", r->name, errstr(errno));
		if (setrlimit(r->resource, &want) == 0)
			continue;
		if (errno != EPERM)
			fail(KIND_LAUNCH, "setrlimit %s: %s", r->name, errstr(errno));
		if (cur.rlim_max != RLIM_INFINITY && (want.rlim_max == RLIM_INFINITY || want.rlim_max > cur.rlim_max))
			want.rlim_max = cur.rlim_max;
		if (want.rlim_max != RLIM_INFINITY && (want.rlim_cur == RLIM_INFINITY || want.rlim_cur > want.rlim_max))
			want.rlim_cur = want.rlim_max;
		if (setrlimit(r->resource, &want) < 0)
			fail(KIND_LAUNCH, "setrlimit %s: %s", r->name, errstr(errno));
	}
}

void set_credentials(const struct plan *p)
{
	if (!p->have_user)
		return;
	if (p->have_caps && p->uid != 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		fail(KIND_LAUNCH, "keep capabilities across setuid: %s", errstr(errno));
	if (setgroups(p->ngroups, p->groups) < 0)
		fail(KIND_LAUNCH, "setgroups: %s", errstr(errno));
	if (setresgid(p->gid, p->gid, p->gid) < 0)
		fail(KIND_LAUNCH, "setgid %u: %s", (unsigned)p->gid, errstr(errno));
	if (setresuid(p->uid, p->uid, p->uid) < 0)
		fail(KIND_LAUNCH, "setuid %u: %s", (unsigned)p->uid, errstr(errno));
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		fail(KIND_LAUNCH, "reset keep-capabilities: %s", errstr(errno));
}

/* mkdir -p inside the container (after pivot_root), new directories owned by the plan's user. */
static void mkdir_p_owned(const struct plan *p, const char *path)
{
	char *buf = xstrdup(path);
	for (char *s = buf + 1;; s++) {
		if (*s != '/' && *s != 0)
			continue;
		char saved = *s;
		*s = 0;
		if (mkdir(buf, 0755) == 0) {
			if (p->have_user && chown(buf, p->uid, p->gid) < 0)
				fail(KIND_LAUNCH, "chown %s: %s", buf, errstr(errno));
		} else if (errno != EEXIST) {
			fail(KIND_LAUNCH, "mkdir %s: %s", buf, errstr(errno));
		}
		*s = saved;
		if (!saved)
			break;
	}
	free(buf);
}

/* exec -w into a missing directory: docker's 126 (the command cannot be invoked there); run makes its -w. */
static int cwd_failure_kind(const struct plan *p)
{
	return p->join_pid ? KIND_NOEXEC : KIND_LAUNCH;
}

/* chdir before dropping privileges; a directory only the user may enter is retried after. */
void setup_cwd(const struct plan *p, int *retry_after_setuid)
{
	*retry_after_setuid = 0;
	if (p->mkdir_cwd && strcmp(p->cwd, "/") != 0)
		mkdir_p_owned(p, p->cwd);
	if (chdir(p->cwd) == 0)
		return;
	if (errno == EACCES && p->have_user && p->uid != 0) {
		*retry_after_setuid = 1;
		return;
	}
	fail(cwd_failure_kind(p), "chdir %s: %s", p->cwd, errstr(errno));
}

static int exec_kind(int err)
{
	switch (err) {
	case ENOENT: case ENOTDIR:
		return KIND_NOTFOUND;
	case EACCES: case EPERM: case ENOEXEC: case EISDIR: case ETXTBSY: case ELIBBAD:
		return KIND_NOEXEC;
	default:
		return KIND_LAUNCH;
	}
}

/* Like execvp's search, but in the plan's PATH and without running shell scripts itself. */
static char *lookup(const struct plan *p)
{
	const char *arg0 = p->args[0];
	if (strchr(arg0, '/'))
		return xstrdup(arg0);
	const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	for (size_t i = 0; i < p->nenv; i++)
		if (strncmp(p->env[i], "PATH=", 5) == 0)
			path = p->env[i] + 5;
	int denied = 0;
	const char *s = path;
	for (;;) {
		const char *e = strchrnul(s, ':');
		size_t dl = (size_t)(e - s);
		char *cand = xmalloc(dl + strlen(arg0) + 3);
		if (dl == 0)
			sprintf(cand, "./%s", arg0);
		else
			sprintf(cand, "%.*s/%s", (int)dl, s, arg0);
		struct stat st;
		if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
			if (access(cand, X_OK) == 0)
				return cand;
			denied = 1;
		}
		free(cand);
		if (!*e)
			break;
		s = e + 1;
	}
	if (denied)
		fail(KIND_NOEXEC, "exec \"%s\": permission denied", arg0);
	fail(KIND_NOTFOUND, "exec \"%s\": executable file not found in $PATH", arg0);
}

void exec_command(const struct plan *p)
{
	char *file = lookup(p);
	/* Changing credentials cleared the parent-death signal: set it again. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		fail(KIND_LAUNCH, "set parent-death signal: %s", errstr(errno));
	/* A container must never inherit an engine fd: everything but 0-2 closes on exec. */
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = 3; fd < 65536; fd++)
			if (fd != g_errpipe)
				fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail(KIND_LAUNCH, "set no-new-privileges: %s", errstr(errno));
	umask(022);
	install_seccomp(p);
	execve(file, p->args, p->env);
	int err = errno;
	fail(exec_kind(err), "exec \"%s\": %s", file, errstr(err));
}

/*
 * First steps of a new container process (init or exec'd), both paths: die with the launcher, reset
 * the signal dispositions and mask (Node ignores SIGPIPE, and ignored signals survive execve), a
 * known umask, then wait for the launcher's go-ahead (sent once the cgroup and network are set).
 */
/*
 * The last steps of every container process, a new container's init (main.c) and a process exec'd
 * into a running one (join.c) alike, in the kernel's order: cwd, rlimits, seccomp (here already when
 * there is no no-new-privs: loading it then needs CAP_SYS_ADMIN, as runc does), bounding set,
 * credentials, capabilities, the cwd again if root could not enter it, the terminal, execve.
 */
__attribute__((noreturn)) void enter_command(const struct plan *p)
{
	int retry_cwd;

	setup_cwd(p, &retry_cwd);
	apply_rlimits(p);
	if (!p->no_new_privs)
		install_seccomp(p);
	drop_bounding(p);
	set_credentials(p);
	apply_caps(p);
	if (retry_cwd && chdir(p->cwd) < 0)
		fail(cwd_failure_kind(p), "chdir %s: %s", p->cwd, errstr(errno));
	setup_tty(p);
	exec_command(p);
}

void child_prologue(int syncfd)
{
	char go;
	sigset_t none;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		fail(KIND_LAUNCH, "set parent-death signal: %s", errstr(errno));
	for (int sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	umask(022);

	ssize_t r;
	do
		r = read(syncfd, &go, 1);
	while (r < 0 && errno == EINTR);
	if (r != 1)
		_exit(KIND_LAUNCH); /* the launcher gave up and is killing us */
	close(syncfd);
}

