/**
 * The only module that calls into libc (through native/sys.c's small Node-API module, or koffi). Every call here is safe in a
 * multithreaded process (DESIGN.md §2): no namespace changes, no fork. Calls are synchronous
 * and throw a TspodError('ESYS') "<call> <path>: <strerror>" with the errno name in `errno`.
 *
 * Everything else uses the `Sys` interface, so unit tests can pass a recording fake.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TspodError } from '../util/errors.js';

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REMOUNT = 0x20;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;
export const MNT_DETACH = 0x2;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

export interface Sys {
  mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  /** mknod(2); `dev` as makedev(major, minor). */
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Uint8Array): void;
  /** The attribute's bytes, or null when it is not set (ENODATA). */
  lgetxattr(path: string, name: string): Buffer | null;
  llistxattr(path: string): string[];
  /** flock(2) on an open fd; with LOCK_NB returns false when the lock is held elsewhere. */
  flock(fd: number, op: number): boolean;
  /**
   * Loads `insns` (struct bpf_insn[]) as a cgroup device program and attaches it to the cgroup v2
   * directory `dir` (BPF_F_ALLOW_MULTI): the device policy of cgroup v2 (src/runtime/cgroups/devices-bpf.ts).
   */
  cgroupDeviceProgram(dir: string, insns: Uint8Array): void;
}

/** Error thrown by Sys calls; `errno` is the symbolic name (ENOENT, EBUSY, …). */
export class SysError extends TspodError {
  readonly errno: string;
  constructor(call: string, path: string, errnum: number) {
    const name = errnoName(errnum);
    super('ESYS', `${call} ${path}: ${strerror(errnum)} (${name})`);
    this.errno = name;
  }
}

const errnoNames = new Map<number, string>(
  Object.entries(osConstants.errno).map(([k, v]) => [v as number, k]),
);
function errnoName(n: number): string {
  return errnoNames.get(n) ?? `errno ${n}`;
}

let strerrorFn: ((n: number) => string) | undefined;
function strerror(n: number): string {
  return strerrorFn ? strerrorFn(n).toLowerCase() : errnoName(n);
}

function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major), mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

let real: Sys | undefined;

/** The native module's calls: a number >= 0 on success, -errno on failure (native/sys.c). */
interface NativeSys {
  flock(fd: number, op: number): number;
  mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): number;
  umount2(target: string, flags: number): number;
  mknod(path: string, mode: number, major: number, minor: number): number;
  lsetxattr(path: string, name: string, value: Uint8Array): number;
  lgetxattr(path: string, name: string): Buffer | null | number;
  llistxattr(path: string): Buffer | number;
  strerror(errnum: number): string;
  cgroupDeviceProgram(dir: string, insns: Buffer): number;
  /** Absent from a module built before it was added (a tree whose native part was not rebuilt). */
  addInodeFlags?(fd: number, flags: number): number;
  rawTerminalOutput?(fd: number): number;
  nftRun?(script: string, json: number): NftResult | number;
  bridgeCreate?(name: string, mtu: number, gateway: string, prefix: number): number | string;
}

/** What an nft script printed and its status, as the nft program gives them (0: success). */
export interface NftResult {
  status: number;
  out: string;
  err: string;
}

/**
 * native/build/tspod-sys.node ($TSPOD_SYS_MODULE overrides), found like the launcher: next to the
 * package.json above this module. Undefined when it is not built (then koffi does the calls).
 */
function loadNative(require: NodeRequire): NativeSys | undefined {
  let path = process.env.TSPOD_SYS_MODULE;
  if (!path) {
    for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
      if (existsSync(join(dir, 'package.json'))) {
        path = join(dir, 'native', 'build', 'tspod-sys.node');
        break;
      }
      if (dirname(dir) === dir) return undefined;
    }
  }
  try {
    return require(path) as NativeSys;
  } catch {
    return undefined;
  }
}

/** Which implementation realSys() uses: the small native module, or koffi when it is not built. */
export function realSysKind(): 'native' | 'koffi' {
  realSys();
  return realKind;
}
let realKind: 'native' | 'koffi' = 'koffi';
let nativeModule: NativeSys | undefined;

/**
 * FS_IOC_SETFLAGS through the native module (src/sys/fsflags.ts): 0 when `flags` are set on the open
 * directory `fd`, -errno when the file system refuses; undefined when only koffi can do it.
 */
export function nativeAddInodeFlags(fd: number, flags: number): number | undefined {
  realSys();
  return nativeModule?.addInodeFlags?.(fd, flags);
}

/**
 * Turns off the output processing (OPOST) that Node's raw mode leaves on the terminal `fd`, as docker's
 * raw mode does (native/sys.c); best effort: a module built without it leaves the terminal as it is.
 * Node's setRawMode(false) restores the terminal's earlier settings, OPOST included.
 */
export function rawTerminalOutput(fd: number): void {
  realSys();
  nativeModule?.rawTerminalOutput?.(fd);
}

/**
 * Runs an nft script through libnftables in this process (native/sys.c nftRun; `json`: the output of
 * `nft -j -a`); undefined when the native module or the library is missing (src/runtime/network/exec.ts
 * then runs the nft program).
 */
export function nativeNftRun(script: string, json: boolean): NftResult | undefined {
  realSys();
  const r = nativeModule?.nftRun?.(script, json ? 1 : 0);
  return typeof r === 'object' ? r : undefined;
}

/**
 * Creates a bridge with its gateway address, up, through rtnetlink in this process (native/sys.c
 * bridgeCreate): true when done, false when the native module cannot (then the caller runs `ip`);
 * throws ESYS "create bridge NAME: STEP: REASON".
 */
export function nativeBridgeCreate(name: string, mtu: number, gateway: string, prefix: number): boolean {
  realSys();
  const r = nativeModule?.bridgeCreate?.(name, mtu, gateway, prefix);
  if (r === undefined) return false;
  if (r !== 0) throw new TspodError('ESYS', `create bridge ${name}: ${String(r)}`);
  return true;
}

/**
 * The real implementation, loaded on first use. The native module (native/sys.c, a dlopen of a few
 * KiB, ≈ 1 ms) is preferred; koffi (≈ 10 ms to load) is the fallback for a tree whose native part
 * is not built yet.
 */
export function realSys(): Sys {
  if (real) return real;
  const require = createRequire(import.meta.url);
  const n = loadNative(require);
  if (n) {
    realKind = 'native';
    nativeModule = n;
    return (real = nativeSys(n));
  }
  return (real = koffiSys(require));
}

function nativeSys(n: NativeSys): Sys {
  strerrorFn = (e) => n.strerror(e);
  const check = (rc: number, call: string, path: string): void => {
    if (rc < 0) throw new SysError(call, path, -rc);
  };
  const EWOULDBLOCK = osConstants.errno.EWOULDBLOCK as number;
  return {
    mount(source, target, fstype, flags, data) {
      check(n.mount(source, target, fstype, flags, data), 'mount', target);
    },
    umount2(target, flags) {
      check(n.umount2(target, flags), 'umount', target);
    },
    mknod(path, mode, major, minor) {
      check(n.mknod(path, mode, major, minor), 'mknod', path);
    },
    lsetxattr(path, name, value) {
      check(n.lsetxattr(path, name, Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)), `setxattr ${name}`, path);
    },
    lgetxattr(path, name) {
      const r = n.lgetxattr(path, name);
      if (typeof r === 'number') throw new SysError(`getxattr ${name}`, path, -r);
      return r;
    },
    llistxattr(path) {
      const r = n.llistxattr(path);
      if (typeof r === 'number') throw new SysError('listxattr', path, -r);
      return r.toString('latin1').split('\0').filter(Boolean);
    },
    flock(fd, op) {
      const rc = n.flock(fd, op);
      if (rc === 0) return true;
      if (-rc === EWOULDBLOCK && op & LOCK_NB) return false;
      throw new SysError('flock', `fd ${fd}`, -rc);
    },
    cgroupDeviceProgram(dir, insns) {
      check(n.cgroupDeviceProgram(dir, Buffer.isBuffer(insns) ? insns : Buffer.from(insns.buffer, insns.byteOffset, insns.byteLength)), 'attach device program to cgroup', dir);
    },
  };
}

function koffiSys(require: NodeRequire): Sys {
  const koffi = require('koffi') as typeof import('koffi');
  const libc = koffi.load('libc.so.6');
  const cMount = libc.func('int mount(const char *src, const char *target, const char *fstype, unsigned long flags, const char *data)');
  const cUmount2 = libc.func('int umount2(const char *target, int flags)');
  const cMknod = libc.func('int mknod(const char *path, uint32_t mode, uint64_t dev)');
  const cLsetxattr = libc.func('int lsetxattr(const char *path, const char *name, const uint8_t *value, size_t size, int flags)');
  const cLgetxattr = libc.func('intptr_t lgetxattr(const char *path, const char *name, _Out_ uint8_t *value, size_t size)');
  const cLlistxattr = libc.func('intptr_t llistxattr(const char *path, _Out_ uint8_t *list, size_t size)');
  const cFlock = libc.func('int flock(int fd, int op)');
  const cStrerror = libc.func('const char *strerror(int errnum)');
  strerrorFn = (n) => cStrerror(n) as string;
  const ENODATA = osConstants.errno.ENODATA as number;
  const EWOULDBLOCK = osConstants.errno.EWOULDBLOCK as number;
  const EINTR = osConstants.errno.EINTR as number;

  const check = (rc: number | bigint, call: string, path: string): void => {
    if (Number(rc) < 0) throw new SysError(call, path, koffi.errno());
  };

  return {
    mount(source, target, fstype, flags, data) {
      check(cMount(source, target, fstype, flags, data) as number, 'mount', target);
    },
    umount2(target, flags) {
      check(cUmount2(target, flags) as number, 'umount', target);
    },
    mknod(path, mode, major, minor) {
      check(cMknod(path, mode, makedev(major, minor)) as number, 'mknod', path);
    },
    lsetxattr(path, name, value) {
      check(cLsetxattr(path, name, value, value.length, 0) as number, `setxattr ${name}`, path);
    },
    lgetxattr(path, name) {
      for (let size = 256; ; size *= 4) {
        const buf = Buffer.alloc(size);
        const n = Number(cLgetxattr(path, name, buf, size));
        if (n >= 0) return buf.subarray(0, n);
        const e = koffi.errno();
        if (e === ENODATA) return null;
        if (e === osConstants.errno.ERANGE && size < 1 << 20) continue;
        throw new SysError(`getxattr ${name}`, path, e);
      }
    },
    llistxattr(path) {
      for (let size = 1024; ; size *= 4) {
        const buf = Buffer.alloc(size);
        const n = Number(cLlistxattr(path, buf, size));
        if (n >= 0) return buf.subarray(0, n).toString('latin1').split('\0').filter(Boolean);
        const e = koffi.errno();
        if (e === osConstants.errno.ERANGE && size < 1 << 20) continue;
        throw new SysError('listxattr', path, e);
      }
    },
    flock(fd, op) {
      for (;;) {
        const rc = cFlock(fd, op) as number;
        if (rc === 0) return true;
        const e = koffi.errno();
        if (e === EINTR) continue;
        if (e === EWOULDBLOCK && op & LOCK_NB) return false;
        throw new SysError('flock', `fd ${fd}`, e);
      }
    },
    cgroupDeviceProgram(dir) {
      // bpf(2) takes a union of pointers: the native module does it; this fallback is for a tree whose
      // native part is not built, where no container can start anyway.
      throw new SysError('attach device program to cgroup (needs native/build/tspod-sys.node)', dir, osConstants.errno.ENOSYS as number);
    },
  };
}
