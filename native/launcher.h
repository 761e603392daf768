/*
 * tspod-launch: executes a launch plan written by tspod's TypeScript side.
 * See README.md for the plan format and the protocol on fds 3 and 4.
 */
#ifndef TSPOD_LAUNCHER_H
#define TSPOD_LAUNCHER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/resource.h>

#define PLAN_FD 3
#define REPORT_FD 4

/* Exit codes / error kinds, as docker run uses them. */
#define KIND_LAUNCH 125
#define KIND_NOEXEC 126
#define KIND_NOTFOUND 127

enum ns_bit { NS_PID = 1, NS_MOUNT = 2, NS_UTS = 4, NS_IPC = 8, NS_NET = 16, NS_CGROUP = 32 };

struct premount {
	char *src, *dest, *fstype, *flags, *data, *chdir; /* NULL when absent ("-") */
};

struct mountspec {
	char *src, *dest, *fstype, *flags, *data;
};

struct devnode {
	char *path;
	char type; /* c, b or p */
	unsigned major, minor, mode;
	uid_t uid;
	gid_t gid;
};

struct symlinkspec {
	char *target, *path;
};

struct sysctlspec {
	char *key, *value;
};

/* A `veth` record (netlink.c): addresses in network byte order. */
struct vethspec {
	char *host, *peer, *bridge;
	unsigned char mac[6];
	unsigned mtu;
	uint32_t addr, gateway;
	unsigned prefix;
	int has_gateway;
};
#define MAX_VETHS 8

struct rlimitspec {
	int resource;
	char *name;
	rlim_t soft, hard;
};

struct plan {
	char *rootfs;
	unsigned namespaces;
	struct premount *premounts; size_t npremounts;
	struct mountspec *mounts; size_t nmounts;
	struct devnode *devices; size_t ndevices;
	struct symlinkspec *symlinks; size_t nsymlinks;
	char **masked; size_t nmasked;
	char **readonly; size_t nreadonly;
	char *hostname;
	char *cwd;
	int mkdir_cwd;
	char **env; size_t nenv;           /* NULL-terminated after parsing */
	char **args; size_t nargs;         /* NULL-terminated after parsing */
	int have_user;
	uid_t uid;
	gid_t gid;
	gid_t *groups; size_t ngroups;
	struct rlimitspec *rlimits; size_t nrlimits;
	int have_caps;
	uint64_t caps;
	int no_new_privs;
	char *seccomp_path;
	unsigned char *seccomp_prog; size_t seccomp_len; /* loaded by the parent before clone */
	int sync;
	int loopback_up;
	struct sysctlspec *sysctls; size_t nsysctls; /* options.c */
	int readonly_rootfs;
	int tty;
	pid_t join_pid; /* join mode (exec): enter this running init's namespaces; 0 = create new ones */
	unsigned long long join_start; /* its start time (field 22 of /proc/PID/stat) */
	pid_t netns_pid; /* join-net: share this running init's network namespace (net.c); 0 = none */
	unsigned long long netns_start;
	struct vethspec *veths; size_t nveths; /* read after the plan, before "go" (sync.c, netlink.c) */
};

/* util.c */
extern int g_errpipe; /* in the child: the CLOEXEC error pipe; -1 in the launcher */
__attribute__((noreturn, format(printf, 2, 3))) void fail(int kind, const char *fmt, ...);
const char *errstr(int err); /* strerror, first letter lowercased */
void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
#define PUSH(arr, n, val) do { (arr) = xrealloc((arr), ((n) + 1) * sizeof *(arr)); (arr)[(n)++] = (val); } while (0)

/* plan.c */
void plan_read(int fd, struct plan *p);
void plan_load_seccomp(struct plan *p);

/* selfexe.c */
void ensure_sealed_self(char **argv, char **envp);

/* clone.c */
pid_t clone_namespaces(unsigned namespaces);

/* sync.c */
int read_go(int fd, struct plan *p);
void plan_read_late(struct plan *p, char *line, unsigned lineno); /* plan.c: a record between "end" and "go" */

/* netlink.c */
void veths_create(const struct plan *p, pid_t pid);

/* mounts.c */
void setup_rootfs(const struct plan *p);
void do_pivot_root(const char *rootfs);

/* caps.c */
void drop_bounding(const struct plan *p);
void apply_caps(const struct plan *p);

/* seccomp.c */
void install_seccomp(const struct plan *p);

/* net.c */
void loopback_up(void);
void join_net(pid_t pid, unsigned long long start);

/* join.c */
pid_t join_fork(const struct plan *p);
__attribute__((noreturn)) void join_child_main(const struct plan *p, int syncfd);
void child_prologue(int syncfd);

/* options.c */
void apply_sysctls(const struct plan *p);
void remount_root_readonly(const struct plan *p);
void bind_console(const struct plan *p);
void setup_tty(const struct plan *p);

/* pty.c */
struct pollfd;
void pty_open(const struct plan *p);
void pty_child(void);
void pty_parent(void);
int pty_pollfds(struct pollfd *p);
void pty_relay(struct pollfd *p);
int pty_winch(void);
void pty_drain(void);
const char *pty_name(void);
int pty_devpts(void);

/* process.c */
void apply_rlimits(const struct plan *p);
void set_credentials(const struct plan *p);
void setup_cwd(const struct plan *p, int *retry_after_setuid);
__attribute__((noreturn)) void exec_command(const struct plan *p);
__attribute__((noreturn)) void enter_command(const struct plan *p);

#endif
