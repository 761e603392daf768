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
import { readFileSync } from 'node:fs';
import { constants, cp, lstat, mkdir, open, readlink, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { basename, join } from 'node:path';
import type { EngineRoots } from '../state/paths.js';
import { fail, isErrno, messageOf } from '../util/errors.js';
import { containerStore, isActive, openCgroup } from './reconcile.js';
import { freshRecord } from './list.js';
import { withFrozen } from './freeze.js';
import { loadPlan } from './start.js';
import type { ContainerRecord, ContainerStore } from '../state/containers.js';
import type { LaunchPlan } from '../runtime/plan.js';
import { launch, launcherPath } from '../runtime/launcher.js';
import { INIT_PATH_IN_CONTAINER, initBinaryPath } from '../runtime/options.js';
import { MOUNT_POINT_FILES } from '../util/mount-points.js';

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
  // the root itself with a trailing slash: /proc/PID/root is a symlink that lstat would not follow
  return cur.length ? join(root, ...cur) : root + '/';
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
  const copy = (root: string) => (s.container !== undefined ? copyOut(root, s.path, d.path) : copyIn(root, s.path, d.path));
  const rec = await freshRecord(containers, await containers.find(ref));
  if (!isActive(rec) || !rec.pid) {
    // A created or stopped container: its filesystem is held by a process of tspod's (holdFilesystem),
    // under the container's lock so that no start runs meanwhile.
    const { rec: locked, release } = await containers.lock(rec.id);
    try {
      if (!isActive(await freshRecord(containers, locked))) return await holdFilesystem(containers, locked, copy);
    } finally {
      release();
    }
    return copyFiles(roots, src, dest); // started meanwhile
  }
  const cg = await openCgroup(rec);
  if (!cg) throw fail('ESTATE', `cp: container ${ref}: its cgroup is gone`);
  const root = `/proc/${rec.pid}/root`;
  await (rec.state === 'paused' ? copy(root) : withFrozen(containers.containerDir(rec.id), cg, () => copy(root)));
}

const HOLDER_IN_CONTAINER = '/dev/.tspod-init';

function cmdlineOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return undefined; // gone
  }
}

/**
 * Runs `fn` with the root of a stopped container's filesystem as a running container sees it: the overlay of
 * its saved plan and its bind mounts (volumes, -v) mounted in a new mount namespace by the launcher, whose
 * init pauses (tspod-init --pause, bound on a /dev tmpfs so that nothing is written into the container for
 * it). `fn` gets /proc/PID/root. The holder is killed after, and with tspod if tspod dies (the launcher's
 * parent-death signals): the mounts never outlive the copy.
 */
async function holdFilesystem<T>(containers: ContainerStore, rec: ContainerRecord, fn: (root: string) => Promise<T>): Promise<T> {
  let plan: LaunchPlan;
  try {
    plan = await loadPlan(containers, rec.id);
  } catch (err) {
    throw fail('ESTATE', `cp: container ${rec.name} has no saved filesystem plan: ${messageOf(err)}`, err);
  }
  const etcFiles = new Set(MOUNT_POINT_FILES.map((f) => '/' + f));
  const holder: LaunchPlan = {
    rootfs: plan.rootfs,
    namespaces: ['mount'],
    premounts: plan.premounts,
    mounts: [
      { source: 'tmpfs', destination: '/dev', type: 'tmpfs', flags: ['nosuid'], data: 'mode=755,size=1m' },
      { source: initBinaryPath(launcherPath()), destination: HOLDER_IN_CONTAINER, type: 'bind', flags: ['bind', 'ro'] },
      ...plan.mounts.filter((m) => m.type === 'bind' && !etcFiles.has(m.destination) && m.destination !== INIT_PATH_IN_CONTAINER && !m.destination.startsWith('/dev/')),
    ],
    devices: [], symlinks: [], maskedPaths: [], readonlyPaths: [],
    readonlyRootfs: plan.readonlyRootfs,
    cwd: '/',
    env: [],
    args: [HOLDER_IN_CONTAINER, '--pause'],
    user: { uid: 0, gid: 0, additionalGids: [] },
    rlimits: [],
    noNewPrivileges: true,
    sync: false,
  };
  let pid = 0;
  const ended = launch(holder, { stdio: ['ignore', 'ignore', 'inherit'], forwardSignals: false, onPid: (p) => { pid = p; } });
  ended.catch(() => {}); // awaited below
  try {
    // ready once the init has exec'd the holder: its mounts are all made
    const want = `${HOLDER_IN_CONTAINER}\0--pause\0`;
    for (let i = 0; ; i++) {
      const done = await Promise.race([ended.then(() => true, () => true), sleep(Math.min(1 + i, 20)).then(() => false)]);
      if (done) {
        await ended; // its error: a mount that failed
        throw fail('ELAUNCH', `cp: container ${rec.name}: its filesystem holder ended at once`);
      }
      if (pid && cmdlineOf(pid) === want) break;
    }
    return await fn(`/proc/${pid}/root`);
  } finally {
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await ended.catch(() => {});
  }
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
