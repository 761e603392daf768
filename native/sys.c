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
#include <errno.h>
#include <stdint.h>
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

__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports);

napi_value napi_register_module_v1(napi_env env, napi_value exports) {
  static const struct { const char *name; napi_callback cb; } fns[] = {
    { "flock", js_flock }, { "mount", js_mount }, { "umount2", js_umount2 }, { "mknod", js_mknod },
    { "lsetxattr", js_lsetxattr }, { "lgetxattr", js_lgetxattr }, { "llistxattr", js_llistxattr },
    { "strerror", js_strerror }, { "cgroupDeviceProgram", js_cgroup_device_program },
    { "addInodeFlags", js_add_inode_flags }, { "rawTerminalOutput", js_raw_terminal_output },
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, (size_t)-1, fns[i].cb, NULL, &f) != 0) return NULL;
    if (napi_set_named_property(env, exports, fns[i].name, f) != 0) return NULL;
  }
  return exports;
}
