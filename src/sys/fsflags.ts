/**
 * Inode flags: FS_IOC_GETFLAGS / FS_IOC_SETFLAGS on a directory, what lsattr/chattr do.
 *
 * Used for one flag, FS_TOPDIR_FL (chattr +T): ext4's Orlov allocator places each subdirectory of
 * such a directory in a block group of its own (one with many free inodes and few directories),
 * instead of next to its parent. The store's tmp/ carries it, so every layer unpack starts its tree
 * in a fresh group. Why that matters: ext4 without a journal (these machines' root file system)
 * skips every inode freed in the last 60–360 s when it allocates one (`recently_deleted()` in
 * fs/ext4/ialloc.c), scanning the group's bitmap from the start on each allocation; a layer
 * unpacked where another was just removed pays that scan on every file, 0.3–0.8 ms each (a
 * 10 000-entry layer: 5 s of system time instead of 0.4). With a journal the flag only spreads
 * unrelated trees, which is what Orlov is for (/home is the classic TOPDIR).
 *
 * addInodeFlags goes through the native module (native/sys.c, already loaded for the store's flock);
 * koffi (≈ 8–15 ms to load, on a pull's path before its first layer byte) only when that is not built,
 * and for inodeFlags (tests).
 */
import { closeSync, constants as fsc, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import { nativeAddInodeFlags } from './index.js';

export const FS_TOPDIR_FL = 0x00020000;

// _IOR('f', 1, long) / _IOW('f', 2, long); the kernel reads and writes an int through the pointer.
const LONG_SIZE = ['x64', 'arm64', 'ppc64', 's390x', 'riscv64', 'loong64', 'mips64el'].includes(process.arch) ? 8 : 4;
const FS_IOC_GETFLAGS = ((2 << 30) | (LONG_SIZE << 16) | (0x66 << 8) | 1) >>> 0;
const FS_IOC_SETFLAGS = ((1 << 30) | (LONG_SIZE << 16) | (0x66 << 8) | 2) >>> 0;

type Ioctl = (fd: number, req: number, arg: number[]) => number;
let ioctlFn: Ioctl | undefined;

function ioctl(): Ioctl {
  if (!ioctlFn) {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    const f = koffi.load('libc.so.6').func('int ioctl(int fd, unsigned long req, _Inout_ int *arg)');
    ioctlFn = (fd, req, arg) => f(fd, req, arg) as number;
  }
  return ioctlFn;
}

/**
 * Adds `flags` to the inode flags of directory `path` (a no-op when they are set already). Returns
 * false when the file system has no such flags or refuses them (tmpfs, overlay, xfs for most
 * flags: ENOTTY, EOPNOTSUPP, EINVAL, EPERM); throws only when `path` cannot be opened.
 */
export function addInodeFlags(path: string, flags: number): boolean {
  const fd = openSync(path, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
  try {
    const native = nativeAddInodeFlags(fd, flags);
    if (native !== undefined) return native === 0;
    const call = ioctl();
    const v = [0];
    if (call(fd, FS_IOC_GETFLAGS, v) < 0) return false;
    if ((v[0]! & flags) === flags) return true;
    v[0] = v[0]! | flags;
    return call(fd, FS_IOC_SETFLAGS, v) === 0;
  } finally {
    closeSync(fd);
  }
}

/** The directory's inode flags, or undefined when the file system has none. */
export function inodeFlags(path: string): number | undefined {
  const fd = openSync(path, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
  try {
    const v = [0];
    return ioctl()(fd, FS_IOC_GETFLAGS, v) < 0 ? undefined : v[0];
  } finally {
    closeSync(fd);
  }
}
