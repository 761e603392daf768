/**
 * cp: copies between a container and the host, through /proc/PID/root: a running container's init,
 * or for a created or stopped one a process that holds its filesystem (holdFilesystem). docker cp's
 * rules for what lands where (a trailing "/." copies a directory's contents, a trailing "/" on the
 * destination requires a directory, a directory merges into an existing one); symlinks are copied
 * as symlinks (no -L); the whole copy runs under the container's lock (so pause, commit, another cp,
 * start or rm wait for it).
 *
 * Safety against symlinks inside the container (CVE-2018-15664 is the docker bug this avoids): a
 * running container is frozen (cgroup freezer) for the whole copy, so none of its processes can swap
 * a path component for a symlink between the check and the use; and every container path is resolved
 * here one component at a time with lstat/readlink, with symlink targets interpreted inside the
 * container's root (an absolute target restarts at the root, ".." never climbs above it), so the
 * kernel is only ever handed a path without symlinks. Copying in creates each entry under a temporary
 * name (O_EXCL | O_NOFOLLOW) in its resolved parent and renames it over the target, so an existing
 * symlink is replaced, never written through, and a failed copy leaves the old file as it was.
 */
import { createReadStream, createWriteStream, readFileSync, type Stats } from 'node:fs';
import { chmod, cp, lstat, lutimes, mkdir, readdir, readlink, rename, rm, stat, symlink, utimes } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { basename, dirname, join } from 'node:path';
import type { EngineRoots } from '../state/paths.js';
import { TspodError, fail, isErrno, messageOf } from '../util/errors.js';
import { containerStore, isActive, openCgroup, reconcile } from './reconcile.js';
import { withFrozen } from './freeze.js';
import { loadPlan } from './start.js';
import type { ContainerRecord, ContainerStore } from '../state/containers.js';
import type { LaunchPlan } from '../runtime/plan.js';
import { launch, launcherPath } from '../runtime/launcher.js';
import { INIT_PATH_IN_CONTAINER, initBinaryPath } from '../runtime/options.js';

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
  const { rec: locked, release } = await containers.findAndLock(ref);
  try {
    const rec = await reconcile(containers, locked);
    // A created or stopped container: its filesystem is held by a process of tspod's meanwhile.
    if (!isActive(rec) || !rec.pid) return await holdFilesystem(containers, rec, copy);
    const cg = await openCgroup(rec);
    if (!cg) throw fail('ESTATE', `cp: container ${ref}: its cgroup is gone`);
    const root = `/proc/${rec.pid}/root`;
    await (rec.state === 'paused' ? copy(root) : withFrozen(containers.containerDir(rec.id), cg, () => copy(root)));
  } finally {
    release();
  }
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
  const holder: LaunchPlan = {
    rootfs: plan.rootfs,
    namespaces: ['mount'],
    premounts: plan.premounts,
    mounts: [
      { source: 'tmpfs', destination: '/dev', type: 'tmpfs', flags: ['nosuid'], data: 'mode=755,size=1m' },
      { source: initBinaryPath(launcherPath()), destination: HOLDER_IN_CONTAINER, type: 'bind', flags: ['bind', 'ro'] },
      // volumes, -v binds and /etc/hosts, hostname, resolv.conf (mount points made by the first start anyway)
      ...plan.mounts.filter((m) => m.type === 'bind' && m.destination !== INIT_PATH_IN_CONTAINER && !m.destination.startsWith('/dev/')),
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

/** "dir/." → { path: "dir", contents: true } (docker's "copy what is in it"). */
function contentsOf(p: string): { path: string; contents: boolean } {
  return /(^|\/)\.$/.test(p) ? { path: p.slice(0, -1) || '.', contents: true } : { path: p, contents: false };
}

async function copyOut(root: string, cpathArg: string, host: string): Promise<void> {
  const { path: cpath, contents } = contentsOf(cpathArg);
  const from = await resolveInRoot(root, cpath, contents);
  const st = await lstat(from).catch(() => undefined);
  if (!st) throw fail('ENOTFOUND', `cp: could not find ${cpathArg} in the container`);
  if (contents && !st.isDirectory()) throw fail('EINVAL', `cp: ${cpath} is not a directory in the container`);
  const hostSt = await stat(host).catch(() => undefined);
  let to: string;
  if (st.isDirectory()) {
    if (hostSt && !hostSt.isDirectory()) throw fail('EEXIST', `cp: cannot copy the directory ${cpath} to the file ${host}`);
    to = hostSt && !contents ? join(host, basename(from)) : host; // a new directory, or merged into one
  } else {
    if (!hostSt && host.endsWith('/')) throw fail('ENOTFOUND', `cp: the destination directory ${host} does not exist`);
    if (hostSt && !hostSt.isDirectory() && host.endsWith('/')) throw fail('EINVAL', `cp: ${host} is not a directory`);
    to = hostSt?.isDirectory() ? join(host, basename(from)) : host;
  }
  try {
    await cp(from, to, { recursive: true, verbatimSymlinks: true, dereference: false, preserveTimestamps: true, force: true, errorOnExist: false });
  } catch (err) {
    throw fail('ESYS', `cp: ${cpathArg} → ${host}: ${hostMessage(err, root)}`, err);
  }
}

/** An errno's message with the container's root (/proc/PID/root) taken out of the paths it names. */
function hostMessage(err: unknown, root: string): string {
  return messageOf(err).split(root).join('');
}

async function copyIn(root: string, hostArg: string, cpath: string): Promise<void> {
  const { path: host, contents } = contentsOf(hostArg);
  const hostSt = await lstat(host).catch(() => undefined);
  if (!hostSt) throw fail('ENOTFOUND', `cp: could not find ${hostArg} on the host`);
  if (contents && !hostSt.isDirectory()) throw fail('EINVAL', `cp: ${host} is not a directory`);
  await checkCopyable(host, hostSt); // refused before anything is written
  const dest = await resolveInRoot(root, cpath, true);
  const destSt = await lstat(dest).catch(() => undefined);
  const into = (name: string) => (cpath.endsWith('/') ? cpath : cpath + '/') + name;
  try {
    if (hostSt.isDirectory()) {
      if (destSt && !destSt.isDirectory()) throw fail('EEXIST', `cp: cannot copy the directory ${host} to the file ${cpath} in the container`);
      if (!destSt || !contents) return await copyEntry(root, host, destSt ? into(basename(host)) : cpath);
      for (const n of await readdir(host)) await copyEntry(root, join(host, n), into(n));
      return;
    }
    if (!destSt && cpath.endsWith('/')) throw fail('ENOTFOUND', `cp: the destination directory ${cpath} does not exist in the container`);
    if (destSt && !destSt.isDirectory() && cpath.endsWith('/')) throw fail('EINVAL', `cp: ${cpath} is not a directory in the container`);
    await copyEntry(root, host, destSt?.isDirectory() ? into(basename(host)) : cpath);
  } catch (err) {
    if (err instanceof TspodError) throw err;
    // An errno names /proc/PID/root/…, a path of the host's: say it with the container's path.
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) throw fail('ENOTFOUND', `cp: ${cpath}: no such directory in the container`, err);
    if (isErrno(err, 'EROFS')) throw fail('ESTATE', `cp: ${cpath}: the container's file system is read-only there`, err);
    throw fail('ESYS', `cp: ${hostArg} → ${cpath}: ${hostMessage(err, root)}`, err);
  }
}

/** Files, directories and symlinks only (no devices, FIFOs or sockets), checked through the whole tree first. */
async function checkCopyable(host: string, st: Stats): Promise<void> {
  if (st.isDirectory()) {
    for (const n of await readdir(host)) await checkCopyable(join(host, n), await lstat(join(host, n)));
  } else if (!st.isFile() && !st.isSymbolicLink()) {
    throw fail('EINVAL', `cp: ${host} is a ${st.isFIFO() ? 'FIFO' : st.isSocket() ? 'socket' : 'device'}: only files, directories and symlinks are copied`);
  }
}

/**
 * Copies the host entry `host` to the container path `cpath` (its final name): a directory merges into an
 * existing directory there; a file or symlink is made under a temporary name in the resolved parent and
 * renamed over whatever was there (never followed). Mode and times come with it; the owner is root.
 */
async function copyEntry(root: string, host: string, cpath: string): Promise<void> {
  const st = await lstat(host);
  const parent = await resolveInRoot(root, dirname(cpath), true);
  const target = join(parent, basename(cpath));
  const existing = await lstat(target).catch(() => undefined);
  if (st.isDirectory()) {
    if (existing && !existing.isDirectory()) throw fail('EEXIST', `cp: ${cpath} exists in the container and is not a directory`);
    if (!existing) await mkdir(target, { mode: 0o700 });
    for (const n of await readdir(host)) await copyEntry(root, join(host, n), cpath.replace(/\/$/, '') + '/' + n);
    await chmod(target, st.mode & 0o7777);
    await utimes(target, st.atime, st.mtime);
    return;
  }
  if (existing?.isDirectory()) throw fail('EEXIST', `cp: cannot overwrite the directory ${cpath} in the container with a non-directory`);
  const tmp = join(parent, `.tspod-cp-${randomBytes(6).toString('hex')}`);
  try {
    if (st.isSymbolicLink()) {
      await symlink(await readlink(host), tmp);
      await lutimes(tmp, st.atime, st.mtime);
    } else {
      // a new file of ours ('wx': O_CREAT | O_EXCL, which never follows a symlink; no process of the
      // container runs meanwhile: frozen or held)
      await pipeline(createReadStream(host), createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
      await chmod(tmp, st.mode & 0o7777);
      await utimes(tmp, st.atime, st.mtime);
    }
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
}
