/*
 * tspod-init: the tiny init of `tspod run --init` (as docker-init/tini is for docker). It runs as
 * PID 1 of the container, starts the command as its child, forwards the signals it receives to it,
 * reaps every zombie that is re-parented to it, and exits with the command's status (128+N when
 * the command was killed by signal N). Usage: tspod-init -- COMMAND [ARG...]
 *
 * tspod-init --pause only waits until it is killed: the process that holds a stopped container's
 * filesystem (its overlay and volumes, in a mount namespace of its own) while `tspod cp` copies
 * through /proc/PID/root (src/container/cp.ts).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--pause") == 0) {
		for (;;)
			pause();
	}
	int first = 1;
	if (argc > 1 && strcmp(argv[1], "--") == 0)
		first = 2;
	if (first >= argc) {
		fprintf(stderr, "tspod-init: usage: tspod-init -- COMMAND [ARG...]\n");
		return 125;
	}
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);

	pid_t child = fork();
	if (child < 0) {
		fprintf(stderr, "tspod-init: fork: %s\n", strerror(errno));
		return 125;
	}
	if (child == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		/* its own process group, with the terminal if there is one, as tini does */
		setpgid(0, 0);
		if (isatty(0)) {
			signal(SIGTTOU, SIG_IGN);
			tcsetpgrp(0, getpid());
			signal(SIGTTOU, SIG_DFL);
		}
		execvp(argv[first], argv + first);
		fprintf(stderr, "tspod-init: exec %s: %s\n", argv[first], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		if (sig < 0)
			continue;
		if (sig != SIGCHLD) {
			/* SIGTTIN/SIGTTOU/SIGTSTP have no meaning for PID 1; everything else goes to the command */
			if (sig != SIGTTIN && sig != SIGTTOU && sig != SIGTSTP)
				kill(child, sig);
			continue;
		}
		int st;
		pid_t w;
		while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
			if (w != child)
				continue; /* an orphan re-parented to us: reaped, nothing else */
			/* reap whatever is left, then leave with the command's status */
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
			if (WIFEXITED(st))
				return WEXITSTATUS(st);
			return 128 + WTERMSIG(st);
		}
	}
}
