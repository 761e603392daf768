/**
 * cp: copies between a running container and the host, through /proc/PID/root of its init.
 *
 * Safety against symlinks inside the container (CVE-2018-15664 is the docker bug this avoids):
 * the container is frozen (cgroup freezer) for the whole copy, so none of its processes can swap
 * a path component for a symlink between the check and the use; and every container path is
 * resolved here one component at a time with lstat/readlink, with symlink targets interpreted
 * inside the container's root (an absolute target restarts at the root, ".." never climbs above
 * it), so the kernel is only ever handed a path without symlinks. The last component of the
 * source is copied as it is (a symlink stays a symlink), like docker cp without -L. Copying in
 * never writes through an existing directory tree: a new entry is created, an existing regular
 * file is replaced (O_NOFOLLOW), an existing directory or symlink at the target name is refused.
 */
import { constants, cp, lstat, mkdir, open, readlink, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { EngineRoots } from '../state/paths.js';
import { fail, isErrno } from '../util/errors.js';
import { containerStore, isActive, openCgroup } from './reconcile.js';
import { freshRecord } from './list.js';
import { withFrozen } from './freeze.js';

/** The host path of container path `p` under `root` (/proc/PID/root), with no symlink left in it. */
export async function resolveInRoot(root: string, p: string, followLast: boolean): Promise<string> {
  const parts = p.split('/').filter(Boolean);
  let cur: string[] = [];
  let hops = 0;
  while (parts.length) {
    const c = parts.shift()!;
    if (c === '.') continue;
    if (c === '..') {
      cur.pop();
      continue;
    }
    const host = join(root, ...cur, c);
    const st = await lstat(host).catch(() => undefined);
    if (st?.isSymbolicLink() && (parts.length > 0 || followLast)) {
      if (++hops > 40) throw fail('EINVAL', `resolve ${p} in the container: too many levels of symbolic links`);
      const target = await readlink(host);
      if (target.startsWith('/')) cur = [];
      parts.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    cur.push(c);
  }
  return join(root, ...cur);
}

/** "NAME:PATH" → { container, path }; a host path otherwise. */
export function parseCpArg(a: string): { container?: string; path: string } {
  const m = /^([a-zA-Z0-9][a-zA-Z0-9_.-]*):(.*)$/.exec(a);
  if (m && !a.startsWith('/') && !a.startsWith('.')) return { container: m[1], path: m[2] || '/' };
  return { path: a };
}

export async function copyFiles(roots: EngineRoots, src: string, dest: string): Promise<void> {
  if (src === '-' || dest === '-') throw fail('EINVAL', `cp: "-" (a tar archive on stdin or stdout) is not supported yet; give a host path`);
  const s = parseCpArg(src);
  const d = parseCpArg(dest);
  if ((s.container === undefined) === (d.container === undefined)) {
    throw fail('EINVAL', 'cp: exactly one of SRC and DEST must be CONTAINER:PATH');
  }
  const ref = (s.container ?? d.container)!;
  const containers = containerStore(roots);
  const rec = await freshRecord(containers, await containers.find(ref));
  if (!isActive(rec) || !rec.pid) throw fail('ESTATE', `cp: container ${ref} is not running (tspod cp works on running containers)`);
  const cg = await openCgroup(rec);
  if (!cg) throw fail('ESTATE', `cp: container ${ref}: its cgroup is gone`);
  const root = `/proc/${rec.pid}/root`;
  const copy = () => (s.container !== undefined ? copyOut(root, s.path, d.path) : copyIn(root, s.path, d.path));
  await (rec.state === 'paused' ? copy() : withFrozen(containers.containerDir(rec.id), cg, copy));
}

async function copyOut(root: string, cpath: string, host: string): Promise<void> {
  const from = await resolveInRoot(root, cpath, false);
  const st = await lstat(from).catch(() => undefined);
  if (!st) throw fail('ENOTFOUND', `cp: could not find ${cpath} in the container`);
  const hostSt = await stat(host).catch(() => undefined);
  const to = hostSt?.isDirectory() ? join(host, basename(from)) : host;
  await cp(from, to, { recursive: true, verbatimSymlinks: true, dereference: false, preserveTimestamps: true, force: true, errorOnExist: false });
}

async function copyIn(root: string, host: string, cpath: string): Promise<void> {
  try {
    await copyInto(root, host, cpath);
  } catch (err) {
    // An errno names /proc/PID/root/…, a path of the host's: say it with the container's path.
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) throw fail('ENOTFOUND', `cp: ${cpath}: no such directory in the container`, err);
    throw err;
  }
}

async function copyInto(root: string, host: string, cpath: string): Promise<void> {
  const hostSt = await lstat(host).catch(() => undefined);
  if (!hostSt) throw fail('ENOTFOUND', `cp: could not find ${host} on the host`);
  let to = await resolveInRoot(root, cpath, true);
  const target = await lstat(to).catch(() => undefined);
  if (target?.isDirectory()) to = join(to, basename(host)); // a name we check again below
  const existing = await lstat(to).catch(() => undefined);
  if (existing && !existing.isFile()) throw fail('EEXIST', `cp: ${cpath}: cannot overwrite an existing ${existing.isDirectory() ? 'directory' : 'non-file'} in the container`);
  if (hostSt.isFile()) {
    // O_NOFOLLOW: the last component is never followed, and no component above is a symlink.
    const src = await open(host, 'r');
    try {
      const dst = await open(to, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, hostSt.mode & 0o7777);
      try {
        await dst.writeFile(await src.readFile());
      } finally {
        await dst.close();
      }
    } finally {
      await src.close();
    }
    return;
  }
  if (existing) throw fail('EEXIST', `cp: ${cpath} exists in the container`);
  try {
    await mkdir(to, { mode: hostSt.mode & 0o7777 });
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err;
    throw fail('EEXIST', `cp: ${cpath} exists in the container`);
  }
  // A fresh directory: everything below is created by us, no symlink of the container's in it.
  await cp(host, to, { recursive: true, verbatimSymlinks: true, dereference: false, preserveTimestamps: true, force: true, errorOnExist: false });
}
