/**
 * Directory → tar layer: the inverse of unpack, for `commit` (an overlay upper directory → an OCI
 * layer) and `export` (a stack of layer directories → one flattened root file system).
 *
 * UPPER DIRECTORY → OCI LAYER (image-spec layer.md "Whiteouts"):
 *   - a 0:0 character device at DIR/NAME (overlay's whiteout) → an empty regular file DIR/.wh.NAME;
 *   - a directory with trusted.overlay.opaque=y (overlay marks a directory that was removed and
 *     created again, or created over a lower non-directory) → the directory entry, then
 *     DIR/.wh..wh..opq before any of its children (so even a reader that applies whiteouts in
 *     archive order never hides the layer's own children);
 *   - `trusted.overlay.*` xattrs are overlay bookkeeping and never go into the layer; a directory
 *     with trusted.overlay.redirect (a renamed lower directory, redirect_dir=on) or a file with
 *     trusted.overlay.metacopy (its data lives below) cannot be expressed as a layer and is refused;
 *   - a real file whose name starts with ".wh." is refused (EINVAL naming it): in the layer it would
 *     be a whiteout and delete a lower path for everyone who pulls the image;
 *   - sockets are skipped (docker does the same); hard links between files of the layer stay hard
 *     links (the first path in archive order carries the content).
 *
 * DETERMINISM. The same directory gives the same bytes, so the same diffID and, gzipped by the
 * same zlib, the same digest: entries depth first with the children of each directory sorted by
 * the bytes of their names; mtimes are kept (truncated to whole seconds), atime and ctime are not
 * written; owners are numeric only; xattrs sorted by name (see diff-tar.ts). The layer root itself
 * is not an entry (its metadata is the image's).
 */
import { constants as fsc, type BigIntStats } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { realSys, type Sys } from '../sys/index.js';
import { fail, isErrno, messageOf, TspodError } from '../util/errors.js';
import { tarEnd, tarHeader, tarPadding, type TarOutEntry } from './diff-tar.js';
import { LayerWriter } from './writer.js';
import { TarReader } from './tar-reader.js';

const WH_PREFIX = '.wh.';
const WH_OPAQUE = '.wh..wh..opq';
const READ_CHUNK = 1 << 20;

export interface DiffOptions {
  sys?: Sys;
  /** Names errors: "commit container web1". */
  what?: string;
  /**
   * Paths (relative, e.g. "etc/resolv.conf") left out when they are empty regular files: the mount
   * points tspod creates in the container for its bind-mounted files, not changes of the user's.
   */
  skipEmptyFiles?: readonly string[];
}

function major(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
function minor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

function isWhiteoutDevice(st: BigIntStats): boolean {
  return st.isCharacterDevice() && st.rdev === 0n;
}

/** Names of a directory, sorted by their UTF-8 bytes. */
async function sortedNames(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  return names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

function xattrsOf(sys: Sys, abs: string, isLink: boolean): { user: [string, Buffer][]; overlay: Map<string, Buffer> } {
  const user: [string, Buffer][] = [];
  const overlay = new Map<string, Buffer>();
  for (const name of sys.llistxattr(abs)) {
    const v = sys.lgetxattr(abs, name);
    if (v === null) continue;
    if (name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.')) {
      overlay.set(name.slice(name.indexOf('overlay.') + 'overlay.'.length), v);
      continue;
    }
    if (isLink && name.startsWith('user.')) continue;
    user.push([name, Buffer.from(v)]);
  }
  return { user, overlay };
}

/** The tar entry for a file-system object (not a whiteout); undefined for a socket. */
function entryOf(rel: string, st: BigIntStats, xattrs: [string, Buffer][], linkTarget?: string): TarOutEntry | undefined {
  const base = {
    name: rel,
    mode: Number(st.mode) & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: 0,
    mtime: Number(st.mtimeMs / 1000n),
    xattrs,
  };
  if (st.isDirectory()) return { ...base, type: 'dir' };
  if (st.isFile()) return { ...base, type: 'file', size: Number(st.size) };
  if (st.isSymbolicLink()) return { ...base, type: 'symlink', linkname: linkTarget ?? '' };
  if (st.isCharacterDevice()) return { ...base, type: 'char', devmajor: major(st.rdev), devminor: minor(st.rdev) };
  if (st.isBlockDevice()) return { ...base, type: 'block', devmajor: major(st.rdev), devminor: minor(st.rdev) };
  if (st.isFIFO()) return { ...base, type: 'fifo' };
  return undefined; // socket
}

/** Reads a regular file's content, exactly `size` bytes (a file that changes size meanwhile is an error). */
async function* fileContent(abs: string, size: number, rel: string, what: string): AsyncGenerator<Buffer> {
  const fh = await open(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    let left = size;
    while (left > 0) {
      const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, left));
      const { bytesRead } = await fh.read(buf, 0, buf.length, size - left);
      if (bytesRead === 0) throw fail('ESYS', `${what}: file "/${rel}" shrank while it was read`);
      left -= bytesRead;
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
  yield tarPadding(size);
}

/**
 * The OCI layer tar of an overlay upper directory, as a stream of chunks (see the module comment).
 * Throws EINVAL for a file named like a whiteout, EUNSUPPORTED for overlay redirects/metacopy.
 */
export async function* upperDirTar(upperDir: string, opts: DiffOptions = {}): AsyncGenerator<Buffer> {
  const sys = opts.sys ?? realSys();
  const what = opts.what ?? `diff ${upperDir}`;
  const links = new Map<string, string>(); // dev:ino → first path
  async function* walk(dirRel: string): AsyncGenerator<Buffer> {
    const dirAbs = dirRel === '' ? upperDir : join(upperDir, dirRel);
    for (const name of await sortedNames(dirAbs)) {
      const rel = dirRel === '' ? name : dirRel + '/' + name;
      const abs = join(dirAbs, name);
      const st = await lstat(abs, { bigint: true });
      if (isWhiteoutDevice(st)) {
        if (name.startsWith(WH_PREFIX)) {
          throw fail('EINVAL', `${what}: "/${rel}" is deleted, but its name starts with ".wh.", which a layer cannot express`);
        }
        yield tarHeader({ name: (dirRel === '' ? '' : dirRel + '/') + WH_PREFIX + name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0 });
        continue;
      }
      if (st.isFile() && st.size === 0n && opts.skipEmptyFiles?.includes(rel)) continue;
      if (name.startsWith(WH_PREFIX)) {
        throw fail('EINVAL', `${what}: file "/${rel}" has a name starting with ".wh.", reserved for whiteouts: in an image layer it would delete "/${dirRel === '' ? '' : dirRel + '/'}${name.slice(WH_PREFIX.length)}" for everyone who pulls it; rename or remove it and commit again`);
      }
      const { user, overlay } = xattrsOf(sys, abs, st.isSymbolicLink());
      if (overlay.has('redirect')) {
        throw fail('EUNSUPPORTED', `${what}: directory "/${rel}" was renamed with overlay redirect_dir; such a change cannot be written as a layer`);
      }
      if (overlay.has('metacopy')) {
        throw fail('EUNSUPPORTED', `${what}: file "/${rel}" is an overlay metacopy (its data is in a lower layer); mount without metacopy=on`);
      }
      if (!st.isDirectory() && st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        const first = links.get(key);
        if (first !== undefined) {
          yield tarHeader({ name: rel, type: 'link', mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid), size: 0, mtime: Number(st.mtimeMs / 1000n), linkname: first });
          continue;
        }
        links.set(key, rel);
      }
      const e = entryOf(rel, st, user, st.isSymbolicLink() ? await readlink(abs) : undefined);
      if (e === undefined) continue;
      yield tarHeader(e);
      if (e.type === 'file') {
        yield* fileContent(abs, e.size, rel, what);
      } else if (e.type === 'dir') {
        const opaque = overlay.get('opaque');
        if (opaque !== undefined && opaque.toString() === 'y') {
          yield tarHeader({ name: rel + '/' + WH_OPAQUE, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0 });
        }
        yield* walk(rel);
      }
    }
  }
  try {
    yield* walk('');
  } catch (err) {
    if (err instanceof TspodError) throw err;
    throw fail('ESYS', `${what}: ${messageOf(err)}`, err);
  }
  yield tarEnd();
}

/**
 * The flattened root file system of a stack of overlay layer directories (`dirs` top first: the
 * container's upper dir, then the image's layers), as a plain tar without whiteouts: what the
 * container sees. A path is taken from the topmost layer that has it; a whiteout there hides it;
 * an opaque directory hides the same directory of the layers below.
 */
export async function* mergedTar(dirs: string[], opts: DiffOptions = {}): AsyncGenerator<Buffer> {
  const sys = opts.sys ?? realSys();
  const what = opts.what ?? 'export';
  const links = new Map<string, string>();
  /** `layers`: indexes into dirs of the layers that contribute to directory `rel`, top first. */
  async function* walk(rel: string, layers: number[]): AsyncGenerator<Buffer> {
    const seen = new Map<string, number>(); // name → topmost layer index that has it
    for (const li of layers) {
      const abs = rel === '' ? dirs[li]! : join(dirs[li]!, rel);
      let names: string[];
      try {
        names = await readdir(abs);
      } catch (err) {
        if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) continue;
        throw err;
      }
      for (const n of names) if (!seen.has(n)) seen.set(n, li);
    }
    const names = [...seen.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const top = seen.get(name)!;
      const childRel = rel === '' ? name : rel + '/' + name;
      const abs = join(dirs[top]!, childRel);
      const st = await lstat(abs, { bigint: true });
      if (isWhiteoutDevice(st)) continue;
      const { user, overlay } = xattrsOf(sys, abs, st.isSymbolicLink());
      if (!st.isDirectory() && st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        const first = links.get(key);
        if (first !== undefined) {
          yield tarHeader({ name: childRel, type: 'link', mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid), size: 0, mtime: Number(st.mtimeMs / 1000n), linkname: first });
          continue;
        }
        links.set(key, childRel);
      }
      const e = entryOf(childRel, st, user, st.isSymbolicLink() ? await readlink(abs) : undefined);
      if (e === undefined) continue;
      yield tarHeader(e);
      if (e.type === 'file') {
        yield* fileContent(abs, e.size, childRel, what);
      } else if (e.type === 'dir') {
        // the layers below contribute only while no layer from `top` down makes the directory opaque
        const below: number[] = [];
        for (const li of layers) {
          if (li < top) continue;
          let s: BigIntStats;
          try {
            s = await lstat(join(dirs[li]!, childRel), { bigint: true });
          } catch (err) {
            if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) continue;
            throw err;
          }
          if (!s.isDirectory()) break; // a non-directory here hides everything below
          below.push(li);
          const op = li === top ? overlay.get('opaque') : sys.lgetxattr(join(dirs[li]!, childRel), 'trusted.overlay.opaque');
          if (op !== undefined && op !== null && op.toString() === 'y') break;
        }
        yield* walk(childRel, below);
      }
    }
  }
  try {
    yield* walk('', dirs.map((_, i) => i));
  } catch (err) {
    if (err instanceof TspodError) throw err;
    throw fail('ESYS', `${what}: ${messageOf(err)}`, err);
  }
  yield tarEnd();
}

/**
 * Applies a layer tar, fed chunk by chunk, to an (empty) directory in the overlay format: the same
 * code path as pull's unpack, so a committed or loaded layer is exactly what a pull would produce.
 */
export function layerApplier(dir: string, sys?: Sys): { write(chunk: Buffer): void; finish(): void; abort(): void; readonly bytes: number } {
  const writer = new LayerWriter(dir, sys ?? realSys());
  const reader = new TarReader(writer);
  return {
    write: (chunk) => { reader.write(chunk); },
    finish: () => {
      if (!reader.done) throw fail('EINVAL', `apply layer to ${dir}: the tar stream ended without an end-of-archive marker`);
      writer.finish();
    },
    abort: () => writer.abort(),
    get bytes() { return writer.bytes; },
  };
}
