/**
 * Named volumes (docker volume create|ls|inspect|rm): directories under the data root,
 *   <root>/volumes/<name>/volume.json   name, driver "local", created, labels, anonymous
 *   <root>/volumes/<name>/_data         what containers see (bind-mounted)
 *   <root>/volumes/<name>/users/<id>    one empty file per container that mounts it
 * A volume is in use while a container that mounted it still exists (its record directory is
 * there); `rm` refuses it then, as docker does. An empty volume is seeded from the image's
 * directory at the mount point when a container first mounts it (docker's copy-up), unless nocopy.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, lchown, lstat, lutimes, chmod, mkdir, readdir, readFile, readlink, rm, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EngineRoots } from '../state/paths.js';
import { containersRoot } from '../state/paths.js';
import type { Sys } from '../sys/index.js';
import { fail, isErrno, messageOf } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';

export interface VolumeInfo {
  name: string;
  driver: 'local';
  mountpoint: string;
  created: string;
  labels: Record<string, string>;
  anonymous: boolean;
  /** Containers (ids) that use it. */
  usedBy: string[];
}

/** A volume as `docker volume inspect` shows it (its keys), plus the containers that use it. */
export function dockerVolume(v: VolumeInfo): Record<string, unknown> {
  return { CreatedAt: v.created, Driver: v.driver, Labels: v.labels, Mountpoint: v.mountpoint, Name: v.name, Options: {}, Scope: 'local', UsedBy: v.usedBy };
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function volumesRoot(roots: EngineRoots): string {
  return join(roots.root, 'volumes');
}

function checkName(name: string): void {
  if (!NAME_RE.test(name) || name.length > 255) throw fail('EINVAL', `invalid volume name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
}

async function readMeta(roots: EngineRoots, name: string): Promise<VolumeInfo | undefined> {
  const dir = join(volumesRoot(roots), name);
  let meta: Omit<VolumeInfo, 'mountpoint' | 'usedBy'>;
  try {
    meta = JSON.parse(await readFile(join(dir, 'volume.json'), 'utf8')) as typeof meta;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw fail('ESYS', `read volume ${name}: ${messageOf(err)}`, err);
  }
  const users = await readdir(join(dir, 'users')).catch(() => [] as string[]);
  const live = users.filter((id) => existsSync(join(containersRoot(roots), id)));
  return { ...meta, mountpoint: join(dir, '_data'), usedBy: live };
}

/** docker volume create [NAME] [--label k=v]: creating an existing name returns it unchanged, as docker does. */
export async function createVolume(roots: EngineRoots, name?: string, opts: { labels?: Record<string, string>; anonymous?: boolean } = {}): Promise<VolumeInfo> {
  const vname = name ?? randomBytes(32).toString('hex');
  checkName(vname);
  const existing = await readMeta(roots, vname);
  if (existing) return existing;
  const root = volumesRoot(roots);
  await mkdir(root, { recursive: true, mode: 0o700 });
  // build it under a temporary name, then rename: a crash leaves no half volume behind a real name
  const tmp = join(root, `.tmp-${vname}-${randomBytes(4).toString('hex')}`);
  await mkdir(join(tmp, '_data'), { recursive: true });
  await mkdir(join(tmp, 'users'));
  const meta = { name: vname, driver: 'local' as const, created: new Date().toISOString(), labels: opts.labels ?? {}, anonymous: opts.anonymous ?? name === undefined };
  await writeFileAtomic(join(tmp, 'volume.json'), JSON.stringify(meta, null, 2) + '\n');
  try {
    await rename(tmp, join(root, vname));
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    if (isErrno(err, 'ENOTEMPTY') || isErrno(err, 'EEXIST')) return (await readMeta(roots, vname))!;
    throw fail('ESYS', `create volume ${vname}: ${messageOf(err)}`, err);
  }
  return (await readMeta(roots, vname))!;
}

export async function inspectVolume(roots: EngineRoots, name: string): Promise<VolumeInfo> {
  const v = await readMeta(roots, name);
  if (!v) throw fail('ENOTFOUND', `no such volume: ${name}`);
  return v;
}

export async function listVolumes(roots: EngineRoots): Promise<VolumeInfo[]> {
  const names = await readdir(volumesRoot(roots)).catch(() => [] as string[]);
  const out: VolumeInfo[] = [];
  for (const n of names.sort()) {
    if (n.startsWith('.')) continue;
    const v = await readMeta(roots, n);
    if (v) out.push(v);
  }
  return out;
}

/** docker volume rm: refuses a volume in use unless force... docker refuses even with -f; so do we. */
export async function removeVolume(roots: EngineRoots, name: string): Promise<void> {
  const v = await inspectVolume(roots, name);
  if (v.usedBy.length) throw fail('ESTATE', `remove volume ${name}: volume is in use - [${v.usedBy.join(', ')}]`);
  const root = volumesRoot(roots);
  const doomed = join(root, `.rm-${name}-${randomBytes(4).toString('hex')}`);
  await rename(join(root, name), doomed);
  await rm(doomed, { recursive: true, force: true });
}

/** Marks a volume as used by a container (before it starts). */
export async function attachVolume(roots: EngineRoots, name: string, containerId: string): Promise<void> {
  await writeFile(join(volumesRoot(roots), name, 'users', containerId), '');
}

/** The volumes a container uses (its marker in their users/ directory), live record or not. */
export async function volumesOf(roots: EngineRoots, containerId: string): Promise<string[]> {
  const names = await readdir(volumesRoot(roots)).catch(() => [] as string[]);
  return names.filter((n) => !n.startsWith('.') && existsSync(join(volumesRoot(roots), n, 'users', containerId)));
}

/** Drops a container's use of its volumes; with `removeAnonymous` (run --rm), its anonymous volumes go too. */
export async function releaseVolumes(roots: EngineRoots, names: string[], containerId: string, removeAnonymous: boolean): Promise<void> {
  for (const n of names) {
    await rm(join(volumesRoot(roots), n, 'users', containerId), { force: true });
    if (!removeAnonymous) continue;
    const v = await readMeta(roots, n);
    if (v?.anonymous && v.usedBy.filter((id) => id !== containerId).length === 0) await removeVolume(roots, n).catch(() => {});
  }
}

/**
 * Docker's copy-up: when an empty volume is mounted where the image has a directory, the
 * directory's content (and its owner and mode) is copied into the volume. `lowerDirs` are the
 * image's layer directories, top first; the merged view is computed as OverlayFS would
 * (whiteouts and opaque directories hide what is below).
 */
export async function seedVolume(mountpoint: string, lowerDirs: string[], path: string, sys: Sys): Promise<boolean> {
  if ((await readdir(mountpoint)).length > 0) return false;
  const parts = path.split('/').filter(Boolean);
  const top = await mergedEntry(lowerDirs, parts, sys);
  if (!top || !top.isDir) return false;
  await copyMergedDir(lowerDirs, parts, mountpoint, sys);
  const st = await lstat(top.path);
  await lchown(mountpoint, st.uid, st.gid);
  await chmod(mountpoint, st.mode & 0o7777);
  return true;
}

interface Entry { path: string; isDir: boolean }

/** The topmost layer's entry for a path, or undefined when absent or hidden. */
async function mergedEntry(lowerDirs: string[], parts: string[], sys: Sys): Promise<Entry | undefined> {
  for (let li = 0; li < lowerDirs.length; li++) {
    const r = await inLayer(lowerDirs[li]!, parts, sys);
    if (r === 'hidden') return undefined;
    if (r !== 'absent') return r;
  }
  return undefined;
}

async function inLayer(dir: string, parts: string[], sys: Sys): Promise<Entry | 'absent' | 'hidden'> {
  let cur = dir;
  for (let i = 0; i < parts.length; i++) {
    cur = join(cur, parts[i]!);
    const st = await lstat(cur).catch(() => undefined);
    if (!st) return 'absent';
    if (st.isCharacterDevice() && st.rdev === 0) return 'hidden';
    if (i === parts.length - 1) return { path: cur, isDir: st.isDirectory() };
    if (!st.isDirectory()) return 'hidden';
    if (sys.lgetxattr(cur, 'trusted.overlay.opaque')?.toString() === 'y') {
      const rest = await inLayer(cur, parts.slice(i + 1), sys);
      return rest === 'absent' ? 'hidden' : rest;
    }
  }
  return { path: cur, isDir: true };
}

async function copyMergedDir(lowerDirs: string[], parts: string[], dest: string, sys: Sys): Promise<void> {
  // entries of the merged directory: the first layer (top down) that names an entry decides it
  const seen = new Map<string, string | null>();
  for (const layer of lowerDirs) {
    const r = await inLayer(layer, parts, sys);
    if (r === 'hidden') break;
    if (r === 'absent') continue;
    if (!r.isDir) break;
    for (const name of await readdir(r.path)) {
      if (seen.has(name)) continue;
      const p = join(r.path, name);
      const st = await lstat(p);
      seen.set(name, st.isCharacterDevice() && st.rdev === 0 ? null : p);
    }
    if (sys.lgetxattr(r.path, 'trusted.overlay.opaque')?.toString() === 'y') break;
  }
  for (const [name, src] of seen) {
    if (src === null) continue;
    const st = await lstat(src);
    const to = join(dest, name);
    if (st.isDirectory()) {
      await mkdir(to);
      await copyMergedDir(lowerDirs, [...parts, name], to, sys);
    } else if (st.isSymbolicLink()) {
      await symlink(await readlink(src), to);
    } else if (st.isFile()) {
      await copyFile(src, to);
    } else {
      continue; // devices, fifos, sockets: not copied
    }
    await lchown(to, st.uid, st.gid);
    if (!st.isSymbolicLink()) await chmod(to, st.mode & 0o7777); // after chown, which clears set-id bits
    await lutimes(to, st.atime, st.mtime);
  }
}
