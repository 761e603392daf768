/**
 * LayerWriter: applies tar entries to a layer directory, safely and exactly.
 *
 * SAFETY. Every entry name is cleaned lexically (absolute names become relative, "." and empty
 * components dropped, ".." pops a component and may never climb above the layer root). The parent
 * directories are then walked component by component with lstat: a missing one is created, a
 * symlink is refused (EUNSAFE "entry "a/b" escapes through symlink "a""), so a symlink written by the
 * archive is never traversed. Leaves are created with O_EXCL / O_NOFOLLOW / mkdir / symlink /
 * mknod / link, none of which follow a symlink at the final component. Node has no openat(), so this
 * is check-then-use; it is race-free enough because the layer directory is a private temporary
 * directory of this process that nothing else writes into while we unpack. Verified directories
 * are remembered (`dirs`) so the common case costs no extra syscall; when an entry replaces a
 * directory, everything cached below it is forgotten.
 *
 * EXACTNESS. Ownership is applied before the mode (chown clears setuid/setgid), the mode is set
 * explicitly (umask never applies), xattrs come last (chown and writes drop security.capability),
 * then times. Directory times are applied at the very end, after their contents and after the
 * whiteouts, because creating an entry changes its parent's mtime.
 *
 * WHITEOUTS (OCI image-spec layer.md "Whiteouts"). A whiteout applies only to lower layers: an entry
 * of the same layer is never hidden by it, whatever the order in the archive. So markers are
 * collected and converted after the last entry:
 *   - `DIR/.wh..wh..opq` → xattr trusted.overlay.opaque=y on DIR (DIR is created if the layer has no
 *     entry for it); the layer's own entries in DIR stay.
 *   - `DIR/.wh.NAME` → a 0:0 character device at DIR/NAME if this layer has no NAME; if this layer
 *     has a directory NAME, that directory becomes opaque instead (lower NAME is deleted, this
 *     layer's NAME is what remains); if it has a non-directory NAME, that entry already hides the
 *     lower one and nothing is needed.
 *   - other `.wh..wh.*` names are AUFS bookkeeping and are skipped; `.wh.`, `.wh..`, `.wh...` (which
 *     would delete the directory holding them or its parent) are refused as EUNSAFE.
 * Only regular-file entries are markers; a directory or symlink named `.wh.x` is ordinary content.
 * Overlay metadata can never be forged by the archive: `trusted.overlay.*` and `user.overlay.*`
 * xattrs from the archive are dropped.
 */
import {
  closeSync, constants as fsc, fchmodSync, fchownSync, ftruncateSync, futimesSync, lchownSync, linkSync, lstatSync,
  lutimesSync, mkdirSync, openSync, rmSync, symlinkSync, unlinkSync, chmodSync, utimesSync, writeSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { S_IFBLK, S_IFCHR, S_IFIFO, type Sys } from '../sys/index.js';
import { fail, isErrno, messageOf, TspodError } from '../util/errors.js';
import type { TarEntry, TarHandler } from './tar-reader.js';

const OPEN_FLAGS = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW;
const WH_PREFIX = '.wh.';
const WH_OPAQUE = '.wh..wh..opq';
const WH_META_PREFIX = '.wh..wh.';

/**
 * Cleans a tar entry name into a path relative to the layer root ('' is the root itself).
 * Throws EUNSAFE when `..` would climb above the root.
 */
export function cleanEntryPath(name: string, what = name): string {
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) throw fail('EUNSAFE', `unpack layer: entry "${what}" escapes the layer directory`);
      out.pop();
      continue;
    }
    out.push(c);
  }
  return out.join('/');
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

function baseOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

export class LayerWriter implements TarHandler {
  /** Bytes of regular-file content written. */
  bytes = 0;
  entries = 0;
  private readonly root: string;
  /** Relative paths known to be real directories (not symlinks) that we may create entries in. */
  private readonly dirs = new Set<string>(['']);
  private readonly dirTimes = new Map<string, number>();
  private readonly whiteouts = new Map<string, string>(); // victim rel → entry name (for messages)
  private readonly opaques = new Map<string, string>();   // dir rel → entry name
  private fd: number | undefined;
  private cur: { e: TarEntry; rel: string; abs: string } | undefined;

  constructor(root: string, private readonly sys: Sys) {
    let st: Stats;
    try {
      st = lstatSync(root);
    } catch (err) {
      throw fail('ENOTFOUND', `unpack layer: directory ${root}: ${messageOf(err)}`, err);
    }
    if (!st.isDirectory()) throw fail('EINVAL', `unpack layer: ${root} is not a directory`);
    this.root = root;
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
  }

  entry(e: TarEntry): void {
    this.entries++;
    const rel = cleanEntryPath(e.name);
    if (rel === '') {
      if (e.type !== 'dir') throw fail('EUNSAFE', `unpack layer: entry "${e.name}" replaces the layer root with a ${e.type}`);
      this.applyDirMeta(e, '', this.root);
      return;
    }
    const parent = parentOf(rel);
    const base = baseOf(rel);
    if (e.type === 'file' && base.startsWith(WH_PREFIX)) {
      this.ensureDir(parent, e.name);
      if (base === WH_OPAQUE) {
        this.opaques.set(parent, e.name);
      } else if (!base.startsWith(WH_META_PREFIX)) {
        const victim = base.slice(WH_PREFIX.length);
        if (victim === '' || victim === '.' || victim === '..') {
          throw fail('EUNSAFE', `unpack layer: entry "${e.name}" is a whiteout of its own directory`);
        }
        this.whiteouts.set(parent === '' ? victim : parent + '/' + victim, e.name);
      }
      return; // content, if any, is skipped (fd stays undefined)
    }
    this.ensureDir(parent, e.name);
    const abs = this.abs(rel);
    try {
      this.create(e, rel, abs);
    } catch (err) {
      if (!isErrno(err, 'EEXIST') && !(err instanceof TspodError && (err as { errno?: string }).errno === 'EEXIST')) {
        throw this.wrap(e, err);
      }
      if (this.replace(e, rel, abs)) {
        try {
          this.create(e, rel, abs);
        } catch (err2) {
          throw this.wrap(e, err2);
        }
      }
    }
  }

  data(chunk: Buffer, position: number): void {
    if (this.fd === undefined) return;
    let off = 0;
    try {
      // Positional: a sparse file's segments land at their offsets, leaving holes between them.
      while (off < chunk.length) off += writeSync(this.fd, chunk, off, chunk.length - off, position + off);
    } catch (err) {
      throw this.wrap(this.cur!.e, err);
    }
    this.bytes += chunk.length;
  }

  entryEnd(): void {
    const c = this.cur;
    if (!c || this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    this.cur = undefined;
    try {
      if (c.e.sparseMap) ftruncateSync(fd, c.e.size); // a trailing hole: the real size, no blocks
      fchownSync(fd, c.e.uid, c.e.gid);
      fchmodSync(fd, c.e.mode);
      futimesSync(fd, c.e.mtime, c.e.mtime);
    } catch (err) {
      closeSync(fd);
      throw this.wrap(c.e, err);
    }
    closeSync(fd);
    this.setXattrs(c.e, c.abs, false);
  }

  /** Creates the entry; throws EEXIST (from fs or Sys) when something is already at `abs`. */
  private create(e: TarEntry, rel: string, abs: string): void {
    switch (e.type) {
      case 'file':
        this.fd = openSync(abs, OPEN_FLAGS, 0o600);
        this.cur = { e, rel, abs };
        return; // metadata in entryEnd, after the content
      case 'dir':
        mkdirSync(abs, 0o700);
        this.applyDirMeta(e, rel, abs);
        return;
      case 'symlink':
        symlinkSync(e.linkname, abs);
        lchownSync(abs, e.uid, e.gid);
        this.setXattrs(e, abs, true);
        lutimesSync(abs, e.mtime, e.mtime);
        return;
      case 'link': {
        const target = this.linkTarget(e);
        linkSync(this.abs(target), abs);
        return;
      }
      case 'char':
      case 'block':
      case 'fifo': {
        const kind = e.type === 'char' ? S_IFCHR : e.type === 'block' ? S_IFBLK : S_IFIFO;
        const [ma, mi] = e.type === 'fifo' ? [0, 0] : [e.devmajor, e.devminor];
        this.sys.mknod(abs, kind | 0o600, ma, mi);
        lchownSync(abs, e.uid, e.gid);
        chmodSync(abs, e.mode); // abs is the node just created, not a symlink
        this.setXattrs(e, abs, false);
        utimesSync(abs, e.mtime, e.mtime);
        return;
      }
    }
  }

  /**
   * Something is already at `rel` (an earlier entry of this archive, or a directory we created
   * implicitly): the later entry wins. Returns false when the existing directory is simply kept.
   */
  private replace(e: TarEntry, rel: string, abs: string): boolean {
    const st = lstatSync(abs);
    if (st.isDirectory()) {
      if (e.type === 'dir') {
        this.applyDirMeta(e, rel, abs);
        return false;
      }
      rmSync(abs, { recursive: true, force: true }); // removes symlinks inside, never follows them
      this.forgetDirsUnder(rel);
    } else {
      unlinkSync(abs);
    }
    return true;
  }

  private forgetDirsUnder(rel: string): void {
    for (const d of this.dirs) if (d === rel || d.startsWith(rel + '/')) this.dirs.delete(d);
    for (const d of this.dirTimes.keys()) if (d === rel || d.startsWith(rel + '/')) this.dirTimes.delete(d);
  }

  private applyDirMeta(e: TarEntry, rel: string, abs: string): void {
    try {
      lchownSync(abs, e.uid, e.gid);
      chmodSync(abs, e.mode);
    } catch (err) {
      throw this.wrap(e, err);
    }
    this.setXattrs(e, abs, false);
    this.dirs.add(rel);
    this.dirTimes.set(rel, e.mtime);
  }

  /**
   * Makes sure `rel` is a real directory inside the layer, creating missing components (root-owned,
   * 0755, like docker and containerd) and refusing to pass through a symlink.
   */
  private ensureDir(rel: string, entryName: string): void {
    if (this.dirs.has(rel)) return;
    const parts = rel.split('/');
    let cur = '';
    for (const part of parts) {
      cur = cur === '' ? part : cur + '/' + part;
      if (this.dirs.has(cur)) continue;
      const abs = this.abs(cur);
      let st: Stats | undefined;
      try {
        st = lstatSync(abs);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw fail('ESYS', `unpack layer: entry "${entryName}": lstat ${cur}: ${messageOf(err)}`, err);
      }
      if (st === undefined) {
        mkdirSync(abs, 0o755);
        chmodSync(abs, 0o755);
      } else if (st.isSymbolicLink()) {
        throw fail('EUNSAFE', `unpack layer: entry "${entryName}" escapes through symlink "${cur}"`);
      } else if (!st.isDirectory()) {
        throw fail('EINVAL', `unpack layer: entry "${entryName}": parent "${cur}" is not a directory`);
      }
      this.dirs.add(cur);
    }
  }

  /** Resolves a hard link's target: inside the layer, not through a symlink, already unpacked, not a directory. */
  private linkTarget(e: TarEntry): string {
    const target = cleanEntryPath(e.linkname, e.name);
    if (target === '') throw fail('EUNSAFE', `unpack layer: entry "${e.name}" is a hard link to the layer root`);
    const parts = target.split('/');
    let cur = '';
    for (let i = 0; i < parts.length; i++) {
      cur = cur === '' ? parts[i] : cur + '/' + parts[i];
      const last = i === parts.length - 1;
      if (!last && this.dirs.has(cur)) continue;
      let st: Stats;
      try {
        st = lstatSync(this.abs(cur));
      } catch {
        throw fail('EUNSAFE', `unpack layer: entry "${e.name}" links to "${e.linkname}", which is not in the layer`);
      }
      if (!last && st.isSymbolicLink()) {
        throw fail('EUNSAFE', `unpack layer: entry "${e.name}" links through symlink "${cur}"`);
      }
      if (!last && !st.isDirectory()) {
        throw fail('EUNSAFE', `unpack layer: entry "${e.name}" links to "${e.linkname}", which is not in the layer`);
      }
      if (last && st.isDirectory()) {
        throw fail('EUNSAFE', `unpack layer: entry "${e.name}" is a hard link to directory "${e.linkname}"`);
      }
    }
    return target;
  }

  private setXattrs(e: TarEntry, abs: string, symlink: boolean): void {
    if (e.xattrs.size === 0) return;
    for (const [name, value] of e.xattrs) {
      if (name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.')) continue;
      if (symlink && name.startsWith('user.')) continue; // the kernel refuses user.* on symlinks
      try {
        this.sys.lsetxattr(abs, name, value);
      } catch (err) {
        throw this.wrap(e, err);
      }
    }
  }

  private wrap(e: TarEntry, err: unknown): Error {
    if (err instanceof TspodError && err.code !== 'ESYS') return err;
    return fail('ESYS', `unpack layer: entry "${e.name}": ${messageOf(err)}`, err);
  }

  /** Converts the collected whiteouts, then applies directory times. Call once after the last entry. */
  finish(): void {
    for (const [victim, name] of this.whiteouts) {
      this.ensureDir(parentOf(victim), name);
      const abs = this.abs(victim);
      let st: Stats | undefined;
      try {
        st = lstatSync(abs);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw fail('ESYS', `unpack layer: entry "${name}": ${messageOf(err)}`, err);
      }
      if (st === undefined) {
        try {
          this.sys.mknod(abs, S_IFCHR, 0, 0);
        } catch (err) {
          throw fail('ESYS', `unpack layer: whiteout "${name}": ${messageOf(err)}`, err);
        }
      } else if (st.isDirectory()) {
        if (!this.opaques.has(victim)) this.opaques.set(victim, name);
      }
      // a non-directory of this layer already hides the lower entry
    }
    for (const [dir, name] of this.opaques) {
      this.ensureDir(dir, name);
      try {
        this.sys.lsetxattr(this.abs(dir), 'trusted.overlay.opaque', Buffer.from('y'));
      } catch (err) {
        throw fail('ESYS', `unpack layer: opaque marker "${name}": ${messageOf(err)}`, err);
      }
    }
    for (const [rel, mtime] of this.dirTimes) {
      try {
        utimesSync(this.abs(rel), mtime, mtime); // a directory we verified; never a symlink
      } catch (err) {
        throw fail('ESYS', `unpack layer: set times of "${rel || '.'}": ${messageOf(err)}`, err);
      }
    }
  }

  /** Releases the open file, if any, after a failure. */
  abort(): void {
    if (this.fd !== undefined) {
      try { closeSync(this.fd); } catch { /* ignore */ }
      this.fd = undefined;
    }
  }
}
