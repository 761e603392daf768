/*
 * tspod-sys.node: the host-side syscalls of src/sys/index.ts as a tiny Node-API module, so the hot
 * path of every command (the store's flock, the opaque-xattr check of an image lookup) costs one
 * dlopen of a few KiB instead of loading koffi (≈ 10 ms). Every call is safe in a multithreaded
 * process (DESIGN.md §2): no namespace changes, no fork.
 *
 * Calls return a number: >= 0 on success, -errno on failure (the TypeScript side turns that into a
 * SysError). lgetxattr returns a Buffer, null for ENODATA, or -errno; llistxattr a Buffer or -errno.
 *
 * The Node-API declarations below are written out instead of including node_api.h, so building needs
 * no Node headers: Node-API is a stable C ABI (napi_status is an enum, handles are opaque pointers),
 * and the symbols are resolved against the running node at dlopen time.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_link.h>
#include <net/if.h>

#define NL_OVERFLOW() abort()
#include "nlmsg.h"

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_callback_info__ *napi_callback_info;
typedef int napi_status; /* napi_ok == 0 */
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);

extern napi_status napi_get_cb_info(napi_env, napi_callback_info, size_t *argc, napi_value *argv, napi_value *this_arg, void **data);
extern napi_status napi_get_value_int32(napi_env, napi_value, int32_t *);
extern napi_status napi_get_value_double(napi_env, napi_value, double *);
extern napi_status napi_get_value_string_utf8(napi_env, napi_value, char *buf, size_t bufsize, size_t *result);
extern napi_status napi_get_buffer_info(napi_env, napi_value, void **data, size_t *length);
extern napi_status napi_create_int32(napi_env, int32_t, napi_value *);
extern napi_status napi_create_buffer_copy(napi_env, size_t length, const void *data, void **result_data, napi_value *result);
extern napi_status napi_create_string_utf8(napi_env, const char *str, size_t length, napi_value *);
extern napi_status napi_get_null(napi_env, napi_value *);
extern napi_status napi_create_object(napi_env, napi_value *);
extern napi_status napi_create_function(napi_env, const char *utf8name, size_t length, napi_callback cb, void *data, napi_value *result);
extern napi_status napi_set_named_property(napi_env, napi_value object, const char *utf8name, napi_value value);
extern napi_status napi_throw_type_error(napi_env, const char *code, const char *msg);

#define MAX_ARGS 5
#define PATH_BUF 4097

/* Arguments as the TypeScript side passes them; a type mismatch is a programming error: TypeError. */
struct args {
  napi_env env;
  size_t argc;
  napi_value argv[MAX_ARGS];
  char str[3][PATH_BUF]; /* up to three string arguments */
  int null[3];
};

static int get_args(napi_env env, napi_callback_info info, struct args *a, size_t want) {
  a->env = env;
  a->argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &a->argc, a->argv, NULL, NULL) != 0 || a->argc < want) {
    napi_throw_type_error(env, NULL, "tspod-sys: wrong number of arguments");
    return -1;
  }
  return 0;
}

/* String argument i into slot s; a non-string (null) sets null[s]. Too long → ENAMETOOLONG. */
static int get_str(struct args *a, size_t i, int s) {
  size_t len = 0;
  a->null[s] = 0;
  if (napi_get_value_string_utf8(a->env, a->argv[i], a->str[s], PATH_BUF, &len) != 0) {
    a->null[s] = 1;
    a->str[s][0] = 0;
    return 0;
  }
  return len >= PATH_BUF - 1 ? -ENAMETOOLONG : 0;
}

static int get_int(struct args *a, size_t i, int32_t *out) {
  if (napi_get_value_int32(a->env, a->argv[i], out) != 0) {
    napi_throw_type_error(a->env, NULL, "tspod-sys: expected an integer argument");
    return -1;
  }
  return 0;
}

static napi_value num(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

static napi_value rc(napi_env env, int r) {
  return num(env, r < 0 ? -errno : r);
}

/* flock(fd, op): 0 or -errno (EINTR is retried here). */
static napi_value js_flock(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t fd, op;
  if (get_args(env, info, &a, 2) || get_int(&a, 0, &fd) || get_int(&a, 1, &op)) return NULL;
  int r;
  do r = flock(fd, op); while (r < 0 && errno == EINTR);
  return rc(env, r);
}

/* mount(source, target, fstype|null, flags, data|null) */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  struct args a;
  double flags;
  if (get_args(env, info, &a, 5)) return NULL;
  int e = get_str(&a, 0, 0); if (!e) e = get_str(&a, 1, 1);
  if (e) return num(env, e);
  if (napi_get_value_double(env, a.argv[3], &flags) != 0) {
    napi_throw_type_error(env, NULL, "tspod-sys: mount flags must be a number");
    return NULL;
  }
  /* fstype and data: reuse slot 2 for fstype, copy data after it (both may be null) */
  char fstype[256];
  size_t len = 0;
  int fsnull = napi_get_value_string_utf8(env, a.argv[2], fstype, sizeof fstype, &len) != 0;
  if (!fsnull && len >= sizeof fstype - 1) return num(env, -ENAMETOOLONG);
  if ((e = get_str(&a, 4, 2))) return num(env, e);
  return rc(env, mount(a.null[0] ? NULL : a.str[0], a.str[1], fsnull ? NULL : fstype,
                       (unsigned long)flags, a.null[2] ? NULL : a.str[2]));
}

static napi_value js_umount2(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t flags;
  if (get_args(env, info, &a, 2) || get_int(&a, 1, &flags)) return NULL;
  int e = get_str(&a, 0, 0);
  if (e) return num(env, e);
  return rc(env, umount2(a.str[0], flags));
}

/* mknod(path, mode, major, minor) */
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t mode, major, minor;
  if (get_args(env, info, &a, 4) || get_int(&a, 1, &mode) || get_int(&a, 2, &major) || get_int(&a, 3, &minor)) return NULL;
  int e = get_str(&a, 0, 0);
  if (e) return num(env, e);
  return rc(env, mknod(a.str[0], (mode_t)mode, makedev((unsigned)major, (unsigned)minor)));
}

/* lsetxattr(path, name, buffer) */
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  struct args a;
  void *data;
  size_t len;
  if (get_args(env, info, &a, 3)) return NULL;
  int e = get_str(&a, 0, 0); if (!e) e = get_str(&a, 1, 1);
  if (e) return num(env, e);
  if (napi_get_buffer_info(env, a.argv[2], &data, &len) != 0) {
    napi_throw_type_error(env, NULL, "tspod-sys: lsetxattr value must be a Buffer");
    return NULL;
  }
  return rc(env, lsetxattr(a.str[0], a.str[1], data, len, 0));
}

/* Calls get(size) with a growing buffer until the value fits; returns a Buffer or -errno. */
static napi_value sized(napi_env env, const char *path, const char *name, int nodata_is_null) {
  size_t size = 256;
  for (;;) {
    char *buf = malloc(size);
    if (!buf) return num(env, -ENOMEM);
    ssize_t n = name ? lgetxattr(path, name, buf, size) : llistxattr(path, buf, size);
    if (n >= 0) {
      napi_value r;
      napi_create_buffer_copy(env, (size_t)n, buf, NULL, &r);
      free(buf);
      return r;
    }
    int e = errno;
    free(buf);
    if (e == ENODATA && nodata_is_null) {
      napi_value r;
      napi_get_null(env, &r);
      return r;
    }
    if (e == ERANGE && size < (1u << 20)) {
      size *= 4;
      continue;
    }
    return num(env, -e);
  }
}

static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  struct args a;
  if (get_args(env, info, &a, 2)) return NULL;
  int e = get_str(&a, 0, 0); if (!e) e = get_str(&a, 1, 1);
  if (e) return num(env, e);
  return sized(env, a.str[0], a.str[1], 1);
}

static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  struct args a;
  if (get_args(env, info, &a, 1)) return NULL;
  int e = get_str(&a, 0, 0);
  if (e) return num(env, e);
  return sized(env, a.str[0], NULL, 0);
}

static napi_value js_strerror(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t n;
  if (get_args(env, info, &a, 1) || get_int(&a, 0, &n)) return NULL;
  napi_value r;
  napi_create_string_utf8(env, strerror(n), (size_t)-1, &r); /* NAPI_AUTO_LENGTH */
  return r;
}

/*
 * addInodeFlags(fd, flags): FS_IOC_GETFLAGS, then FS_IOC_SETFLAGS with `flags` added unless they are all set
 * already (chattr +T on the store's tmp/, src/sys/fsflags.ts). 0 when they are set, or -errno (ENOTTY,
 * EOPNOTSUPP: a file system without inode flags). The kernel reads and writes an int through the pointer.
 */
static napi_value js_add_inode_flags(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t fd, flags;
  if (get_args(env, info, &a, 2) || get_int(&a, 0, &fd) || get_int(&a, 1, &flags)) return NULL;
  int v = 0;
  if (ioctl(fd, FS_IOC_GETFLAGS, &v) < 0) return num(env, -errno);
  if ((v & flags) == flags) return num(env, 0);
  v |= flags;
  return rc(env, ioctl(fd, FS_IOC_SETFLAGS, &v));
}

/*
 * cgroupDeviceProgram(dir, insns): loads insns (struct bpf_insn[], from src/runtime/cgroups/devices-bpf.ts)
 * as a BPF_PROG_TYPE_CGROUP_DEVICE program and attaches it to the cgroup v2 directory dir, with
 * BPF_F_ALLOW_MULTI so that programs of the parents (systemd's) still apply too. The attachment holds
 * the program; it goes with the cgroup. 0 or -errno.
 */
static napi_value js_cgroup_device_program(napi_env env, napi_callback_info info) {
  struct args a;
  void *insns;
  size_t len;
  if (get_args(env, info, &a, 2)) return NULL;
  int e = get_str(&a, 0, 0);
  if (e) return num(env, e);
  if (napi_get_buffer_info(env, a.argv[1], &insns, &len) != 0 || len == 0 || len % 8) {
    napi_throw_type_error(env, NULL, "tspod-sys: cgroupDeviceProgram wants a Buffer of struct bpf_insn");
    return NULL;
  }
  static const char license[] = "Apache-2.0";
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = (uint32_t)(len / 8);
  attr.license = (uint64_t)(uintptr_t)license;
  int prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
  if (prog < 0) return num(env, -errno);
  int dir = open(a.str[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    e = -errno;
    close(prog);
    return num(env, e);
  }
  memset(&attr, 0, sizeof attr);
  attr.target_fd = (uint32_t)dir;
  attr.attach_bpf_fd = (uint32_t)prog;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  e = syscall(SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof attr) < 0 ? -errno : 0;
  close(dir);
  close(prog);
  return num(env, e);
}

/*
 * rawTerminalOutput(fd): turns off output processing (OPOST) of the terminal on fd, which Node's raw
 * mode keeps (libuv sets ONLCR): the container's own pty already turns \n into \r\n, and a second
 * translation here would break full-screen programs. Node's setRawMode(false) restores the terminal
 * as it was before raw mode, OPOST included. 0 or -errno.
 */
static napi_value js_raw_terminal_output(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t fd;
  if (get_args(env, info, &a, 1) || get_int(&a, 0, &fd)) return NULL;
  struct termios t;
  if (tcgetattr(fd, &t) < 0) return num(env, -errno);
  if (!(t.c_oflag & OPOST)) return num(env, 0);
  t.c_oflag &= ~(tcflag_t)OPOST;
  return rc(env, tcsetattr(fd, TCSANOW, &t));
}

/*
 * nftRun(script, json): runs an nft script (the `nft -f` language) through libnftables in this process,
 * instead of starting the nft program (≈ 5–10 ms each, most of it the program's start): returns
 * { status, out, err } as `nft [-j -a] -f -` would (status 0 on success; out and err as nft prints them),
 * or -ENOENT when libnftables.so.1 cannot be loaded (then the caller runs the program). The library is
 * the nft program's own (Debian's libnftables1, a dependency of nftables); its API is declared here, as
 * Node-API above, so building needs no headers. A context per call: nothing cached goes stale when other
 * processes change the ruleset. No reverse DNS or service names: the flags are JSON and handles only.
 */
struct nft_ctx;
static struct {
  int tried;
  struct nft_ctx *(*ctx_new)(uint32_t flags);
  void (*ctx_free)(struct nft_ctx *);
  int (*buffer_output)(struct nft_ctx *);
  int (*buffer_error)(struct nft_ctx *);
  const char *(*output)(struct nft_ctx *);
  const char *(*error)(struct nft_ctx *);
  void (*set_flags)(struct nft_ctx *, unsigned int);
  int (*run)(struct nft_ctx *, const char *);
} nftlib;

#define NFT_CTX_OUTPUT_HANDLE (1u << 3)
#define NFT_CTX_OUTPUT_JSON (1u << 4)

static int nft_load(void) {
  if (nftlib.tried) return nftlib.run != NULL;
  nftlib.tried = 1;
  void *h = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!h) return 0;
  nftlib.ctx_new = (struct nft_ctx *(*)(uint32_t))dlsym(h, "nft_ctx_new");
  nftlib.ctx_free = (void (*)(struct nft_ctx *))dlsym(h, "nft_ctx_free");
  nftlib.buffer_output = (int (*)(struct nft_ctx *))dlsym(h, "nft_ctx_buffer_output");
  nftlib.buffer_error = (int (*)(struct nft_ctx *))dlsym(h, "nft_ctx_buffer_error");
  nftlib.output = (const char *(*)(struct nft_ctx *))dlsym(h, "nft_ctx_get_output_buffer");
  nftlib.error = (const char *(*)(struct nft_ctx *))dlsym(h, "nft_ctx_get_error_buffer");
  nftlib.set_flags = (void (*)(struct nft_ctx *, unsigned int))dlsym(h, "nft_ctx_output_set_flags");
  nftlib.run = (int (*)(struct nft_ctx *, const char *))dlsym(h, "nft_run_cmd_from_buffer");
  if (!nftlib.ctx_new || !nftlib.ctx_free || !nftlib.buffer_output || !nftlib.buffer_error || !nftlib.output ||
      !nftlib.error || !nftlib.set_flags || !nftlib.run) {
    nftlib.run = NULL;
    dlclose(h);
    return 0;
  }
  return 1;
}

static napi_value js_nft_run(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t json;
  size_t len = 0;
  if (get_args(env, info, &a, 2) || get_int(&a, 1, &json)) return NULL;
  if (napi_get_value_string_utf8(env, a.argv[0], NULL, 0, &len) != 0) {
    napi_throw_type_error(env, NULL, "tspod-sys: nftRun wants a script");
    return NULL;
  }
  if (!nft_load()) return num(env, -ENOENT);
  char *script = malloc(len + 1);
  if (!script) return num(env, -ENOMEM);
  napi_get_value_string_utf8(env, a.argv[0], script, len + 1, &len);
  struct nft_ctx *ctx = nftlib.ctx_new(0);
  if (!ctx) {
    free(script);
    return num(env, -ENOMEM);
  }
  nftlib.buffer_output(ctx);
  nftlib.buffer_error(ctx);
  if (json) nftlib.set_flags(ctx, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
  int status = nftlib.run(ctx, script);
  free(script);
  const char *out = nftlib.output(ctx), *err = nftlib.error(ctx);
  napi_value r, v;
  napi_create_object(env, &r);
  napi_create_int32(env, status, &v);
  napi_set_named_property(env, r, "status", v);
  napi_create_string_utf8(env, out ? out : "", (size_t)-1, &v);
  napi_set_named_property(env, r, "out", v);
  napi_create_string_utf8(env, err ? err : "", (size_t)-1, &v);
  napi_set_named_property(env, r, "err", v);
  nftlib.ctx_free(ctx);
  return r;
}

/*
 * bridgeCreate(name, mtu, gateway, prefix): creates the bridge `name` with that MTU, gives it the address
 * gateway/prefix and brings it up, through rtnetlink (what `ip link add … type bridge; ip addr add; ip
 * link set up` do, without the program's ≈ 5 ms start). 0, or a string saying which step failed and why.
 * The bridge may be left half made on failure: the caller deletes it, as after a failed `ip -batch`.
 */
static napi_value bridge_error(napi_env env, const char *step, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", step, strerror(err));
  napi_value r;
  napi_create_string_utf8(env, msg, (size_t)-1, &r);
  return r;
}

static napi_value js_bridge_create(napi_env env, napi_callback_info info) {
  struct args a;
  int32_t mtu, prefix;
  if (get_args(env, info, &a, 4) || get_int(&a, 1, &mtu) || get_int(&a, 3, &prefix)) return NULL;
  if (get_str(&a, 0, 0) || get_str(&a, 2, 1) || a.null[0] || a.null[1]) {
    napi_throw_type_error(env, NULL, "tspod-sys: bridgeCreate wants a name and a gateway address");
    return NULL;
  }
  struct in_addr gw;
  if (strlen(a.str[0]) >= IFNAMSIZ) return bridge_error(env, "the name", ENAMETOOLONG);
  if (inet_pton(AF_INET, a.str[1], &gw) != 1 || prefix < 0 || prefix > 32) return bridge_error(env, "the gateway address", EINVAL);
  int fd = nl_socket();
  if (fd < 0) return bridge_error(env, "open a netlink socket", errno);

  struct nlbuf b;
  struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
  nl_init(&b, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
  nl_attr(&b, IFLA_IFNAME, a.str[0], strlen(a.str[0]) + 1);
  nl_attr(&b, IFLA_MTU, &mtu, sizeof mtu);
  struct rtattr *linkinfo = nl_nest(&b, IFLA_LINKINFO);
  nl_attr(&b, IFLA_INFO_KIND, "bridge", 7);
  nl_nest_end(&b, linkinfo);
  int r = nl_talk(fd, &b);
  const char *step = "create the link";
  unsigned index = 0;
  if (r == 0) {
    step = "find the link";
    index = if_nametoindex(a.str[0]);
    r = index ? 0 : -errno;
  }
  if (r == 0) {
    step = "add the gateway address";
    struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_prefixlen = (unsigned char)prefix, .ifa_scope = RT_SCOPE_UNIVERSE, .ifa_index = index };
    nl_init(&b, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
    nl_attr(&b, IFA_LOCAL, &gw, sizeof gw);
    nl_attr(&b, IFA_ADDRESS, &gw, sizeof gw);
    r = nl_talk(fd, &b);
  }
  if (r == 0) {
    step = "bring it up";
    struct ifinfomsg up = { .ifi_family = AF_UNSPEC, .ifi_index = (int)index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
    nl_init(&b, RTM_NEWLINK, 0, &up, sizeof up);
    r = nl_talk(fd, &b);
  }
  close(fd);
  return r == 0 ? num(env, 0) : bridge_error(env, step, -r);
}

__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports);

napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  static const struct { const char *name; napi_callback cb; } fns[] = {
    { "flock", js_flock }, { "mount", js_mount }, { "umount2", js_umount2 }, { "mknod", js_mknod },
    { "lsetxattr", js_lsetxattr }, { "lgetxattr", js_lgetxattr }, { "llistxattr", js_llistxattr },
    { "strerror", js_strerror }, { "cgroupDeviceProgram", js_cgroup_device_program },
    { "addInodeFlags", js_add_inode_flags }, { "rawTerminalOutput", js_raw_terminal_output },
    { "nftRun", js_nft_run }, { "bridgeCreate", js_bridge_create },
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, (size_t)-1, fns[i].cb, NULL, &f) != 0) return NULL;
    if (napi_set_named_property(env, exports, fns[i].name, f) != 0) return NULL;
  }
  return exports;
}
