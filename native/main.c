/*
 * tspod-launch: the launcher process. Reads the plan (fd 3), clones the container's init into
 * its namespaces, reports its pid (fd 4), waits for TypeScript's go-ahead when the plan asks for
 * it, lets the init prepare itself and exec, then stays its parent: forwards signals, reports the
 * exit, and exits with the container's status (128+N for signal N, 125-127 before exec).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher.h"

static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };

/*
 * The container's init, from clone to execve. The steps and their order are the plan's contract
 * (README.md): wait for the go-ahead (the parent has meanwhile placed us in our cgroup), cgroup
 * namespace, loopback, filesystem, pivot_root, hostname, cwd, rlimits, bounding set, user, capabilities,
 * then exec_command (fds, no-new-privs, seccomp, execve).
 */
__attribute__((noreturn)) static void child_main(const struct plan *p, int syncfd)
{
	child_prologue(syncfd);

	if ((p->namespaces & NS_CGROUP) && unshare(CLONE_NEWCGROUP) < 0)
		fail(KIND_LAUNCH, "unshare cgroup namespace: %s", errstr(errno));
	if (p->loopback_up)
		loopback_up();
	apply_sysctls(p);
	setup_rootfs(p);
	bind_console(p);
	do_pivot_root(p->rootfs);
	remount_root_readonly(p);
	if (p->hostname && sethostname(p->hostname, strlen(p->hostname)) < 0)
		fail(KIND_LAUNCH, "set hostname %s: %s", p->hostname, errstr(errno));
	enter_command(p);
}

static int status_code(int st)
{
	if (WIFEXITED(st)) {
		report("exit %d", WEXITSTATUS(st));
		return WEXITSTATUS(st);
	}
	report("signal %d", WTERMSIG(st));
	return 128 + WTERMSIG(st);
}

static void check_fd(int fd, const char *what)
{
	if (fcntl(fd, F_GETFD) < 0) {
		fprintf(stderr, "tspod-launch: fd %d (%s) is not open; this program is run by tspod\n", fd, what);
		exit(KIND_LAUNCH);
	}
}

int main(int argc, char **argv, char **envp)
{
	(void)argc;
	check_fd(PLAN_FD, "plan");
	check_fd(REPORT_FD, "report");
	ensure_sealed_self(argv, envp);
	prctl(PR_SET_NAME, "tspod-launch", 0, 0, 0); /* not "memfd:tspod-lau" in ps */
	/* A SIGKILLed tspod takes the launcher, and through the init's own setting, the container down. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		fail(KIND_LAUNCH, "set parent-death signal: %s", errstr(errno));
	signal(SIGPIPE, SIG_IGN); /* a vanished reader of fd 4 must not kill us */

	struct plan plan;
	plan_read(PLAN_FD, &plan);
	if (plan.hostname && !(plan.namespaces & NS_UTS))
		fail(KIND_LAUNCH, "plan: a hostname needs the uts namespace");
	plan_load_seccomp(&plan);
	pty_open(&plan);

	/* Signals are read from a signalfd; the child unblocks them right after clone. */
	sigset_t mask;
	sigemptyset(&mask);
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaddset(&mask, forwarded[i]);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		fail(KIND_LAUNCH, "block signals: %s", errstr(errno));
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		fail(KIND_LAUNCH, "signalfd: %s", errstr(errno));

	int errpipe[2], syncpipe[2];
	if (pipe2(errpipe, O_CLOEXEC) < 0 || pipe2(syncpipe, O_CLOEXEC) < 0)
		fail(KIND_LAUNCH, "pipe: %s", errstr(errno));

	if (plan.netns_pid)
		join_net(plan.netns_pid, plan.netns_start); /* --network container:NAME */
	pid_t pid = plan.join_pid ? join_fork(&plan) : clone_namespaces(plan.namespaces); /* join: exec */
	if (pid == 0) {
		pty_child();
		close(sfd);
		close(errpipe[0]);
		close(syncpipe[1]);
		g_errpipe = errpipe[1];
		if (plan.join_pid)
			join_child_main(&plan, syncpipe[0]);
		child_main(&plan, syncpipe[0]);
	}
	close(errpipe[1]);
	close(syncpipe[0]);
	pty_parent();
	report("pid %d", (int)pid);

	if (plan.sync && !read_go(PLAN_FD, &plan)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail(KIND_LAUNCH, "launch aborted: the plan fd closed before the go-ahead");
	}
	close(PLAN_FD);
	veths_create(&plan, pid); /* the veth records read with the go-ahead (netlink.c) */
	if (write(syncpipe[1], "g", 1) != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail(KIND_LAUNCH, "release container init: %s", errstr(errno));
	}
	close(syncpipe[1]);

	/*
	 * The error pipe is CLOEXEC in the init: EOF without a message means execve succeeded (or the
	 * init died before it could say anything, which the exit status then shows).
	 */
	char msg[4096];
	size_t mlen = 0;
	int exec_done = 0, status = 0, exited = 0;
	while (!exited) {
		struct pollfd pfd[4] = { { sfd, POLLIN, 0 }, { exec_done ? -1 : errpipe[0], POLLIN, 0 } };
		int n = poll(pfd, 2 + (nfds_t)pty_pollfds(pfd + 2), -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail(KIND_LAUNCH, "poll: %s", errstr(errno));
		}
		pty_relay(pfd + 2);
		if (!exec_done && pfd[1].revents) {
			ssize_t r = read(errpipe[0], msg + mlen, sizeof msg - 1 - mlen);
			if (r < 0 && errno == EINTR)
				continue;
			if (r > 0 && mlen + (size_t)r < sizeof msg - 1) {
				mlen += (size_t)r;
				continue;
			}
			exec_done = 1;
			close(errpipe[0]);
			if (mlen > 0) {
				msg[mlen] = 0;
				int kind = atoi(msg);
				const char *text = strchr(msg, ' ');
				if (kind < KIND_LAUNCH || kind > KIND_NOTFOUND)
					kind = KIND_LAUNCH;
				waitpid(pid, NULL, 0);
				report("error %d %s", kind, text ? text + 1 : msg);
				return kind;
			}
			report("started");
		}
		if (pfd[0].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof si) != (ssize_t)sizeof si)
				continue;
			if (si.ssi_signo == SIGWINCH && pty_winch())
				continue;
			if (si.ssi_signo != SIGCHLD) {
				kill(pid, (int)si.ssi_signo);
				continue;
			}
			pid_t w;
			while ((w = waitpid(-1, &status, WNOHANG)) > 0)
				if (w == pid)
					exited = 1;
		}
	}
	pty_drain();
	if (!exec_done) {
		/* Died before exec without a message (killed by a signal): drain the pipe anyway. */
		ssize_t r = read(errpipe[0], msg, sizeof msg - 1);
		if (r > 0) {
			msg[r] = 0;
			int kind = atoi(msg);
			const char *text = strchr(msg, ' ');
			report("error %d %s", kind >= KIND_LAUNCH && kind <= KIND_NOTFOUND ? kind : KIND_LAUNCH,
			       text ? text + 1 : msg);
			return kind >= KIND_LAUNCH && kind <= KIND_NOTFOUND ? kind : KIND_LAUNCH;
		}
	}
	return status_code(status);
}
