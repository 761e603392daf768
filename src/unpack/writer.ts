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
 * whiteouts, because creating an entry changes its parent's mtime. A new file, directory or symlink
 * skips the chown and the chmod that would change nothing, as GNU tar's syscalls do not: the kernel
 * already gave it this process's fsuid and fsgid (or, below a setgid directory, that directory's
 * group; setgid directories are tracked), and open()/mkdir() already gave it the mode when that mode
 * has no setuid/setgid/sticky bit and no bit the process umask (read once from /proc) clears.
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
  lutimesSync, mkdirSync, openSync, rmSync, symlinkSync, unlinkSync, chmodSync, utimesSync, write, writeSync,
  readFileSync, type Stats,
} from 'node:fs';
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

/** Regular files at least this large get their content written on the libuv pool (asyncContent mode). */
const ASYNC_MIN_SIZE = 64 * 1024;
/** Writes on the pool at once: the rest wait in order here, so gunzip (also on the pool) is never queued behind them. */
const ASYNC_MAX_INFLIGHT = 2;

/** A file whose content is being written on the pool; its metadata and close follow the last write. */
interface PoolFile {
  fd: number;
  e: TarEntry;
  /** Writes handed over and not finished. */
  pending: number;
  /** The tar entry's content has all been handed over (entryEnd ran). */
  ended: boolean;
  /** Owner and mode still to set (false: the new file already has them). */
  chown: boolean;
  chmod: boolean;
}

export interface LayerWriterOptions {
  /**
   * Write the content of large regular files (no xattrs, not sparse) on the libuv pool while the
   * caller parses on: `data()` then keeps a reference to the chunk until it is written, so the caller
   * must never reuse a chunk's memory (fresh buffers from zlib, a file or a socket are fine). The
   * caller waits with `drain()` (and `below()` for back-pressure) before `finish()`, and with
   * `settle()` after `abort()`. Files with xattrs stay synchronous: a write drops security.capability,
   * so those are set by path after the content, and the path must still name that file.
   */
  asyncContent?: boolean;
}

const S_ISGID = 0o2000;

let umaskCache: number | null | undefined;
/** The process umask, read without changing it (process.umask() sets it twice: racy with pool threads); null if unknown. */
function processUmask(): number | null {
  if (umaskCache === undefined) {
    umaskCache = null;
    try {
      const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
      if (m) umaskCache = parseInt(m[1]!, 8);
    } catch {
      // no /proc: always chmod
    }
  }
  return umaskCache;
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
  private readonly prefix: string;
  /** Relative paths known to be real directories (not symlinks) that we may create entries in. */
  private readonly dirs = new Set<string>(['']);
  private readonly dirTimes = new Map<string, number>();
  private readonly whiteouts = new Map<string, string>(); // victim rel → entry name (for messages)
  private readonly opaques = new Map<string, string>();   // dir rel → entry name
  /** Setgid directories (rel → their gid): what they give new entries instead of this process's fsgid. */
  private readonly sgidDirs = new Map<string, number>();
  private readonly umask: number | null;
  private readonly euid: number;
  private readonly egid: number;
  private fd: number | undefined;
  private cur: { e: TarEntry; rel: string; abs: string; pool?: PoolFile; chown: boolean; chmod: boolean } | undefined;
  /** asyncContent: bytes handed to the pool (queued or being written) and not yet written. */
  pendingBytes = 0;
  private readonly asyncContent: boolean;
  private readonly poolFiles = new Set<PoolFile>();
  private readonly queue: { f: PoolFile; buf: Buffer; pos: number }[] = [];
  private queueHead = 0;
  private inflight = 0;
  private poolError: Error | undefined;
  private aborted = false;
  private waiters: { ok: () => boolean; resolve: () => void }[] = [];

  constructor(root: string, private readonly sys: Sys, opts: LayerWriterOptions = {}) {
    this.asyncContent = opts.asyncContent === true;
    let st: Stats;
    try {
      st = lstatSync(root);
    } catch (err) {
      throw fail('ENOTFOUND', `unpack layer: directory ${root}: ${messageOf(err)}`, err);
    }
    if (!st.isDirectory()) throw fail('EINVAL', `unpack layer: ${root} is not a directory`);
    if (st.mode & S_ISGID) this.sgidDirs.set('', st.gid);
    this.umask = processUmask();
    this.euid = process.geteuid?.() ?? -1;
    this.egid = process.getegid?.() ?? -1;
    this.root = root;
    this.prefix = root.endsWith('/') ? root : root + '/';
  }

  /** `rel` is always clean (cleanEntryPath: no "", ".", ".." components): a concatenation is its join, without path.join's cost on every entry. */
  private abs(rel: string): string {
    return rel === '' ? this.root : this.prefix + rel;
  }

  /** A new inode in `parent` already has owner uid:gid (no chown needed). */
  private ownedAs(parent: string, uid: number, gid: number): boolean {
    return uid === this.euid && gid === (this.sgidDirs.get(parent) ?? this.egid);
  }

  /** open()/mkdir() with `mode` gives exactly `mode` (no chmod needed): no special bits, none the umask clears, no setgid parent. */
  private exactMode(parent: string, mode: number): boolean {
    return this.umask !== null && (mode & 0o7000) === 0 && (mode & this.umask) === 0 && !this.sgidDirs.has(parent);
  }

  entry(e: TarEntry): void {
    if (this.poolError) throw this.poolError;
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
    const pool = this.cur!.pool;
    if (pool) {
      if (chunk.length === 0) return;
      pool.pending++;
      this.pendingBytes += chunk.length;
      this.bytes += chunk.length;
      this.queue.push({ f: pool, buf: chunk, pos: position });
      this.pump();
      return;
    }
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
    if (c.pool) {
      c.pool.ended = true;
      if (c.pool.pending === 0) this.completePoolFile(c.pool);
      return;
    }
    try {
      if (c.e.sparseMap) ftruncateSync(fd, c.e.size); // a trailing hole: the real size, no blocks
      if (c.chown) fchownSync(fd, c.e.uid, c.e.gid);
      if (c.chmod) fchmodSync(fd, c.e.mode);
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
      case 'file': {
        const parent = parentOf(rel);
        const exact = this.exactMode(parent, e.mode);
        const fd = openSync(abs, OPEN_FLAGS, exact ? e.mode : 0o600);
        this.fd = fd;
        const chown = !this.ownedAs(parent, e.uid, e.gid);
        this.cur = { e, rel, abs, chown, chmod: !exact };
        if (this.asyncContent && e.size >= ASYNC_MIN_SIZE && !e.sparseMap && e.xattrs.size === 0) {
          const pool: PoolFile = { fd, e, pending: 0, ended: false, chown, chmod: !exact };
          this.poolFiles.add(pool);
          this.cur.pool = pool;
        }
        return; // metadata in entryEnd (or after the last pool write), after the content
      }
      case 'dir': {
        const parent = parentOf(rel);
        const exact = this.exactMode(parent, e.mode);
        mkdirSync(abs, exact ? e.mode : 0o700);
        this.applyDirMeta(e, rel, abs, !this.ownedAs(parent, e.uid, e.gid), !exact);
        return;
      }
      case 'symlink':
        symlinkSync(e.linkname, abs);
        if (!this.ownedAs(parentOf(rel), e.uid, e.gid)) lchownSync(abs, e.uid, e.gid);
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
    for (const d of this.sgidDirs.keys()) if (d === rel || d.startsWith(rel + '/')) this.sgidDirs.delete(d);
    for (const d of this.dirTimes.keys()) if (d === rel || d.startsWith(rel + '/')) this.dirTimes.delete(d);
  }

  /** `chown`/`chmod` false: a directory just made with that owner and mode. */
  private applyDirMeta(e: TarEntry, rel: string, abs: string, chown = true, chmod = true): void {
    try {
      if (chown) lchownSync(abs, e.uid, e.gid);
      if (chmod) chmodSync(abs, e.mode);
    } catch (err) {
      throw this.wrap(e, err);
    }
    if (e.mode & S_ISGID) this.sgidDirs.set(rel, e.gid);
    else this.sgidDirs.delete(rel);
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
        if (!this.exactMode(parentOf(cur), 0o755)) chmodSync(abs, 0o755);
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
    if (this.poolError) throw this.poolError;
    if (this.poolFiles.size > 0 || this.inflight > 0) throw new Error('LayerWriter.finish: content still being written (await drain() first)');
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

  /** Releases the open file, if any, after a failure. With asyncContent, then await settle(). */
  abort(): void {
    this.aborted = true;
    const pool = this.cur?.pool;
    if (this.fd !== undefined && !pool) {
      try { closeSync(this.fd); } catch { /* ignore */ }
    }
    this.fd = undefined;
    this.cur = undefined;
    this.queue.length = 0; // never started: drop them (their files close below)
    this.queueHead = 0;
    this.pendingBytes = 0;
    for (const f of this.poolFiles) {
      f.ended = true;
      f.pending = 0;
      if (!this.inflightFds.has(f.fd)) this.completePoolFile(f);
    }
    this.wake();
  }

  // ------------------------------------------------------------ content on the pool (asyncContent)

  /** Resolves once every pool write has finished and every pool file is closed; rejects with the first write error. */
  async drain(): Promise<void> {
    await this.until(() => this.poolFiles.size === 0 && this.inflight === 0);
    if (this.poolError) throw this.poolError;
  }

  /** Files whose content is still being written on the pool (each holds an fd). */
  get poolFileCount(): number {
    return this.poolFiles.size;
  }

  /** Back-pressure: resolves once at most `bytes` wait for the pool and at most `files` are open on it (or a write failed). */
  async below(bytes: number, files: number): Promise<void> {
    await this.until(() => (this.pendingBytes <= bytes && this.poolFiles.size <= files) || this.poolError !== undefined);
    if (this.poolError) throw this.poolError;
  }

  /** After abort(): resolves once no write is in flight and every file is closed. Never rejects. */
  async settle(): Promise<void> {
    await this.until(() => this.poolFiles.size === 0 && this.inflight === 0);
  }

  private until(ok: () => boolean): Promise<void> {
    if (ok()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ ok, resolve }));
  }

  private wake(): void {
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const w of this.waiters) (w.ok() ? w.resolve() : still.push(w));
    this.waiters = still;
  }

  /** fds with a write in flight (abort must not close them under the pool thread). */
  private readonly inflightFds = new Map<number, number>();

  private pump(): void {
    while (this.inflight < ASYNC_MAX_INFLIGHT && this.queueHead < this.queue.length) {
      const job = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined as never;
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
      this.startWrite(job.f, job.buf, job.pos);
    }
  }

  private startWrite(f: PoolFile, buf: Buffer, pos: number): void {
    this.inflight++;
    this.inflightFds.set(f.fd, (this.inflightFds.get(f.fd) ?? 0) + 1);
    write(f.fd, buf, 0, buf.length, pos, (err, n) => {
      this.inflight--;
      const left = this.inflightFds.get(f.fd)! - 1;
      if (left === 0) this.inflightFds.delete(f.fd);
      else this.inflightFds.set(f.fd, left);
      if (this.aborted) {
        if (f.ended && f.pending === 0 && left === 0) this.completePoolFile(f);
        this.wake();
        return;
      }
      if (!err && n > 0 && n < buf.length) { // a short write: the rest, at once
        this.pendingBytes -= n;
        this.startWrite(f, buf.subarray(n), pos + n);
        return;
      }
      this.pendingBytes -= buf.length;
      if (err || n === 0) this.poolError ??= this.wrap(f.e, err ?? new Error('write returned 0 bytes'));
      f.pending--;
      if (f.ended && f.pending === 0) this.completePoolFile(f);
      this.pump();
      this.wake();
    });
  }

  /** The last write of a pool file is done: owner, mode, times (as entryEnd does), then close. */
  private completePoolFile(f: PoolFile): void {
    if (!this.poolFiles.delete(f)) return;
    try {
      if (!this.aborted && !this.poolError) {
        if (f.chown) fchownSync(f.fd, f.e.uid, f.e.gid);
        if (f.chmod) fchmodSync(f.fd, f.e.mode);
        futimesSync(f.fd, f.e.mtime, f.e.mtime);
      }
    } catch (err) {
      this.poolError ??= this.wrap(f.e, err);
    } finally {
      try { closeSync(f.fd); } catch { /* ignore */ }
    }
  }
}
