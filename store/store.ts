/**
 * The content-addressed store: blobs, resumable ingests, unpacked layers keyed by chainID, refs
 * and container snapshots, all under one root. The on-disk format and its crash guarantees are
 * documented in store/LAYOUT.md; keep the two in step.
 */
import { createReadStream, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, open, readdir, readFile, readlink, rename, rm, symlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Digest } from '../src/oci/types.js';
import { realSys, type Sys } from '../src/sys/index.js';
import { addInodeFlags, FS_TOPDIR_FL } from '../src/sys/fsflags.js';
import { digestHex, digestOf, isDigest, newHash, sha256 } from '../src/util/digest.js';
import { fail, isErrno, messageOf, TspodError } from '../src/util/errors.js';
import { diskUsage, exists, fsyncDir, randomSuffix, readJson, writeFileDurable } from './fsutil.js';
import { acquireFlock, lockFileName, type HeldLock, type LockOptions } from './lock.js';
import { checkStore, collectGarbage, storeUsage, type CheckResult, type GcOptions, type GcResult, type StoreUsage } from './gc.js';

export const STORE_VERSION = 1;

/** layers/<hex>/layer.json */
export interface LayerRecord {
  chainId: Digest;
  diffId: Digest;
  /** chainID of the layer below, null for a base layer. */
  parent: Digest | null;
  /** Bytes of regular-file content in diff/ (hard links counted once). */
  size: number;
  /** RFC 3339 time the layer was unpacked. */
  created: string;
}

/** What `ensureLayer`'s fill callback returns: the diffID it computed, optionally with the size. */
export type FillResult = Digest | { diffId: Digest; size?: number };

export interface RefEntry {
  name: string;
  digest: Digest;
}

/** snapshots/<id>/snapshot.json */
export interface SnapshotRecord {
  id: string;
  /** chainIDs, base layer first (as computed by chainIds()). */
  chain: Digest[];
  /** The image's config digest (image ID), when given: GC keeps that blob (commit, inspect need it). */
  image?: Digest;
  created: string;
}

export interface Snapshot {
  id: string;
  /** snapshots/<id>/upper: the container's writable layer. */
  upperDir: string;
  /** snapshots/<id>/work: overlay's work directory (same file system as upperDir). */
  workDir: string;
  /** The layers' diff dirs, top layer first, as overlay's lowerdir= wants them. */
  lowerDirs: string[];
}

/** A resumable write of one blob; see Store.openIngest. */
export interface Ingest {
  readonly digest: Digest;
  readonly size: number;
  /**
   * Bytes on disk and hashed so far: at open, what an earlier attempt left (continue with an HTTP
   * Range from here); it grows with every write(), so after a dropped connection it is again the
   * place to resume from.
   */
  readonly offset: number;
  /** True when the blob is already in blobs/ (another process committed it): write nothing; commit() just releases. */
  readonly exists: boolean;
  write(chunk: Uint8Array): Promise<void>;
  /** Appends several chunks, in order, in one system call where it can (fewer thread-pool round trips than one write each). */
  writev(chunks: Uint8Array[]): Promise<void>;
  /** Checks size and digest, makes the blob durable and moves it into blobs/; EDIGEST (partial discarded) on mismatch. */
  commit(): Promise<void>;
  /** Releases the ingest; keeps the partial for a later resume unless `discard`. Idempotent; a no-op after commit. */
  abort(opts?: { discard?: boolean }): Promise<void>;
}

interface RefsFile {
  version: number;
  refs: Record<string, { digest: Digest; updated: string }>;
}

const SNAPSHOT_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const LAYER_TMP_PREFIX = 'layer-';

export class Store {
  readonly root: string;
  private readonly sys: Sys;
  private storeLock: HeldLock | undefined;
  /** tmp/ was marked an Orlov top directory (see spreadTmp). */
  private tmpSpread = false;

  private constructor(root: string, sys: Sys) {
    this.root = root;
    this.sys = sys;
  }

  /**
   * Opens the store at `root`, creating the layout if missing. While no other Store is open on the
   * same root (in any process), leftovers of crashed writers in tmp/ are removed. The Store holds a
   * shared lock on locks/store.lock until close().
   */
  static async open(root: string, opts: { sys?: Sys } = {}): Promise<Store> {
    const s = new Store(root, opts.sys ?? realSys());
    // Synchronous: a dozen metadata calls that take microseconds each, on every command's path; a
    // thread-pool round trip per call cost more than the calls (≈ 3 ms of a `run`).
    try {
      // tmp/ is created under the lock below: an opener holding it exclusively may be emptying it.
      mkdirSync(root, { recursive: true, mode: 0o700 });
      for (const d of ['blobs/sha256', 'ingest', 'layers', 'l', 'snapshots', 'locks']) {
        mkdirSync(join(root, d), { recursive: true, mode: 0o700 });
      }
    } catch (err) {
      throw fail('ESYS', `open store ${root}: ${messageOf(err)}`, err);
    }
    const lockPath = join(root, 'locks', 'store.lock');
    // Exclusive for a moment if nobody else has the store open: then tmp/ holds only garbage.
    let held: HeldLock | undefined;
    try {
      held = await acquireFlock(s.sys, lockPath, `store ${root}`, { timeoutMs: 0 });
    } catch (err) {
      if (!(err instanceof TspodError && err.code === 'EBUSY')) throw err;
    }
    if (held) {
      try {
        emptyDirSync(join(root, 'tmp'));
      } finally {
        held.release();
      }
    }
    s.storeLock = await acquireFlock(s.sys, lockPath, `store ${root}`, { shared: true });
    try {
      mkdirSync(join(root, 'tmp'), { recursive: true, mode: 0o700 });
      const versionPath = join(root, 'version');
      let version: string | undefined;
      try {
        version = readFileSync(versionPath, 'utf8');
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
      if (version === undefined) {
        await writeFileDurable(versionPath, join(root, 'tmp', 'version-' + randomSuffix()), `${STORE_VERSION}\n`);
      } else {
        const v = Number(version.trim());
        if (v !== STORE_VERSION) {
          throw fail('EUNSUPPORTED', `open store ${root}: format version ${v}, this tspod reads version ${STORE_VERSION}`);
        }
      }
    } catch (err) {
      s.close();
      if (err instanceof TspodError) throw err;
      throw fail('ESYS', `open store ${root}: ${messageOf(err)}`, err);
    }
    return s;
  }

  /** Releases the store's shared lock. The Store must not be used afterwards. */
  close(): void {
    this.storeLock?.release();
    this.storeLock = undefined;
  }

  private tmpPath(prefix: string): string {
    return join(this.root, 'tmp', prefix + randomSuffix());
  }

  // ---------------------------------------------------------------- locks

  /**
   * Takes the named exclusive lock (a file under locks/) and returns its release function.
   * Used internally per blob/layer and by callers (e.g. one pull per reference at a time).
   */
  async lock(name: string, opts: LockOptions = {}): Promise<() => Promise<void>> {
    const file = lockFileName(name.length > 150 ? 'h-' + digestHex(sha256(name)) : name);
    const held = await acquireFlock(this.sys, join(this.root, 'locks', file), `"${name}"`, opts);
    return async () => held.release();
  }

  /**
   * Holds off garbage collection (the lock `gc`, shared) until the returned release is called.
   * A pull takes it before it looks at the store and releases it after its ref is written, so GC
   * never removes a layer or blob it has just added and not yet named. See store/gc.ts.
   */
  async lease(opts: LockOptions = {}): Promise<() => Promise<void>> {
    return this.lock('gc', { ...opts, shared: true });
  }

  /** Mark and sweep from refs, snapshots and in-progress pulls (store/gc.ts). */
  async gc(opts: GcOptions = {}): Promise<GcResult> {
    return collectGarbage(this, opts);
  }

  /** Space used by blobs, layers, snapshots and partial downloads, and what gc would reclaim. */
  async usage(): Promise<StoreUsage> {
    return storeUsage(this);
  }

  /** fsck: verifies blobs against their digests and layers, refs and snapshots against their records. */
  async check(opts: { repair?: boolean } = {}): Promise<CheckResult> {
    return checkStore(this, opts);
  }

  // ---------------------------------------------------------------- blobs

  blobPath(digest: Digest): string {
    return join(this.root, 'blobs', 'sha256', digestHex(digest));
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    return exists(this.blobPath(digest));
  }

  async readBlob(digest: Digest): Promise<Buffer> {
    try {
      return await readFile(this.blobPath(digest));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw fail('ENOTFOUND', `read blob ${digest}: not in store`, err);
      throw fail('ESYS', `read blob ${digest}: ${messageOf(err)}`, err);
    }
  }

  /** Stores `data`, verifying it against `expected` first; returns its digest. Idempotent. */
  async putBlob(data: Uint8Array, expected: { digest?: Digest; size?: number } = {}): Promise<Digest> {
    const digest = sha256(data);
    const name = expected.digest ?? digest;
    if (expected.size !== undefined && data.length !== expected.size) {
      throw fail('EDIGEST', `put blob ${name}: got ${data.length} bytes, want ${expected.size}`);
    }
    if (expected.digest !== undefined && digestHex(expected.digest) && expected.digest !== digest) {
      throw fail('EDIGEST', `put blob ${expected.digest}: content has digest ${digest}`);
    }
    const path = this.blobPath(digest);
    if (await exists(path)) return digest;
    try {
      await writeFileDurable(path, this.tmpPath('blob-'), data);
    } catch (err) {
      throw fail('ESYS', `put blob ${digest}: ${messageOf(err)}`, err);
    }
    return digest;
  }

  /**
   * Opens a resumable ingest for a blob of known digest and size: ingest/<hex> holds the partial
   * bytes, ingest/<hex>.json the expected size. Waits for (flock) any other process ingesting the
   * same digest. If a partial exists, its bytes are re-read to rebuild the hash and `offset` says
   * where to continue.
   */
  async openIngest(digest: Digest, size: number, opts: LockOptions = {}): Promise<Ingest> {
    const hex = digestHex(digest);
    if (!Number.isSafeInteger(size) || size < 0) throw fail('EINVAL', `open ingest ${digest}: invalid size ${size}`);
    const release = await this.lock('ingest-' + hex, opts);
    try {
      return await this.openIngestLocked(digest, hex, size, release);
    } catch (err) {
      await release();
      throw err;
    }
  }

  private async openIngestLocked(digest: Digest, hex: string, size: number, release: () => Promise<void>): Promise<Ingest> {
    const dataPath = join(this.root, 'ingest', hex);
    const statePath = join(this.root, 'ingest', hex + '.json');
    const blobPath = this.blobPath(digest);
    if (await exists(blobPath)) {
      let done = false;
      const finish = async (): Promise<void> => {
        if (!done) { done = true; await release(); }
      };
      return {
        digest, size, offset: size, exists: true,
        async write() { throw fail('EINVAL', `write ingest ${digest}: blob is already in the store`); },
        async writev() { throw fail('EINVAL', `write ingest ${digest}: blob is already in the store`); },
        commit: finish,
        abort: finish,
      };
    }
    const discardPartial = async (): Promise<void> => {
      await rm(dataPath, { force: true });
      await rm(statePath, { force: true });
    };
    const state = await readJson<{ digest: Digest; size: number }>(statePath).catch(() => undefined);
    if (state && (state.digest !== digest || state.size !== size)) await discardPartial();
    const hash = newHash();
    let offset = 0;
    if (state && state.size === size && (await exists(dataPath))) {
      const st = await lstat(dataPath);
      if (!st.isFile() || st.size > size) {
        await discardPartial();
      } else {
        for await (const chunk of createReadStream(dataPath, { highWaterMark: 1024 * 1024 })) {
          hash.update(chunk as Buffer);
          offset += (chunk as Buffer).length;
        }
      }
    } else {
      await rm(dataPath, { force: true });
    }
    if (offset === 0) {
      await writeFileDurable(statePath, this.tmpPath('ingest-'), JSON.stringify({ digest, size, started: new Date().toISOString() }) + '\n');
    }
    const fh: FileHandle = await open(dataPath, offset === 0 ? 'w' : 'a', 0o600);
    let written = offset;
    let closed = false;
    const closeFile = async (): Promise<void> => {
      if (!closed) { closed = true; await fh.close(); }
    };
    const discardAll = async (): Promise<void> => {
      await closeFile().catch(() => undefined);
      await discardPartial();
      await release();
    };
    const store = this;
    const write = async (chunk: Uint8Array): Promise<void> => {
      if (closed) throw fail('EINVAL', `write ingest ${digest}: ingest is closed`);
      if (written + chunk.length > size) {
        await discardAll();
        throw fail('EDIGEST', `write blob ${digest}: more than the expected ${size} bytes`);
      }
      hash.update(chunk);
      let off = 0;
      while (off < chunk.length) {
        const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
        off += bytesWritten;
      }
      written += chunk.length;
    };
    return {
      digest, size, exists: false,
      get offset() { return written; },
      write,
      async writev(chunks: Uint8Array[]) {
        if (chunks.length === 1) return write(chunks[0]!);
        if (closed) throw fail('EINVAL', `write ingest ${digest}: ingest is closed`);
        let total = 0;
        for (const c of chunks) total += c.length;
        if (written + total > size) {
          await discardAll();
          throw fail('EDIGEST', `write blob ${digest}: more than the expected ${size} bytes`);
        }
        for (const c of chunks) hash.update(c);
        let { bytesWritten: done } = await fh.writev(chunks);
        // A short writev (rare: a signal, a full disk on the way to ENOSPC): the rest chunk by chunk.
        for (const c of chunks) {
          if (done >= c.length) { done -= c.length; continue; }
          let off = done;
          done = 0;
          while (off < c.length) {
            const { bytesWritten } = await fh.write(c, off, c.length - off);
            off += bytesWritten;
          }
        }
        written += total;
      },
      async commit() {
        if (closed) throw fail('EINVAL', `commit blob ${digest}: ingest is closed`);
        if (written !== size) {
          await discardAll();
          throw fail('EDIGEST', `commit blob ${digest}: got ${written} bytes, want ${size}`);
        }
        const got = digestOf(hash);
        if (got !== digest) {
          await discardAll();
          throw fail('EDIGEST', `commit blob ${digest}: content has digest ${got}`);
        }
        try {
          await fh.sync();
          await closeFile();
          await rename(dataPath, blobPath);
          await fsyncDir(join(store.root, 'blobs', 'sha256'));
          await rm(statePath, { force: true });
        } catch (err) {
          await closeFile().catch(() => undefined);
          await release();
          throw fail('ESYS', `commit blob ${digest}: ${messageOf(err)}`, err);
        }
        await release();
      },
      async abort(opts: { discard?: boolean } = {}) {
        if (closed) return;
        if (opts.discard) {
          await discardAll();
        } else {
          await closeFile();
          await release();
        }
      },
    };
  }

  // ---------------------------------------------------------------- layers

  private layerPath(chainId: Digest): string {
    return join(this.root, 'layers', digestHex(chainId));
  }

  /** The directory used as an overlay lowerdir for this layer. */
  layerDiffDir(chainId: Digest): string {
    return join(this.layerPath(chainId), 'diff');
  }

  /**
   * The layer's short name for overlay options: `l/<short>`, relative to the store root, a
   * symlink to `../layers/<hex>/diff`, created on first use (atomically: tmp symlink + rename).
   * `<short>` is the first 12 hex digits of the chainID, longer on the (astronomically rare)
   * collision with another layer. With the launcher's chdir to the store root, each lower layer
   * then costs 15 bytes of the one-page option string instead of ~110 (see src/mount/overlay.ts).
   */
  async layerLink(chainId: Digest): Promise<string> {
    const hex = digestHex(chainId);
    const want = join('..', 'layers', hex, 'diff');
    for (let len = 12; len <= 64; len += 4) {
      const rel = join('l', hex.slice(0, len));
      const abs = join(this.root, rel);
      let cur: string | undefined;
      try {
        cur = await readlink(abs);
      } catch (err) {
        if (!isErrno(err, 'ENOENT') && !isErrno(err, 'EINVAL')) throw fail('ESYS', `layer link ${rel}: ${messageOf(err)}`, err);
        if (isErrno(err, 'EINVAL')) continue; // not a symlink: never ours, leave it and take a longer name
      }
      if (cur === want) return rel;
      if (cur !== undefined && (await exists(join(this.root, 'l', cur)))) continue; // another layer's link
      // Missing, or dangling (its layer was removed): (re)point it at this layer.
      const tmp = this.tmpPath('link-');
      try {
        await symlink(want, tmp);
        await rename(tmp, abs);
      } catch (err) {
        await rm(tmp, { force: true }).catch(() => undefined);
        throw fail('ESYS', `layer link ${rel}: ${messageOf(err)}`, err);
      }
      return rel;
    }
    throw fail('EINTERNAL', `layer link for ${chainId}: no free short name`);
  }

  /** Short lowerdir names (relative to the store root), top layer first, for `chain` (base first). */
  async overlayLowers(chain: Digest[]): Promise<string[]> {
    const out: string[] = [];
    for (const c of [...chain].reverse()) out.push(await this.layerLink(c));
    return out;
  }

  async hasLayer(chainId: Digest): Promise<boolean> {
    return exists(join(this.layerPath(chainId), 'layer.json'));
  }

  async getLayer(chainId: Digest): Promise<LayerRecord | undefined> {
    return readJson<LayerRecord>(join(this.layerPath(chainId), 'layer.json'));
  }

  /**
   * Unpacks a layer once. Fast path: the layer is there. Otherwise take the per-chainID lock,
   * look again (another process may have finished it while we waited), remove temp dirs left by a
   * crashed attempt, fill a fresh temp dir, check the diffID, write layer.json and rename the whole
   * directory into layers/<hex> (atomic: the layer appears complete or not at all).
   */
  async ensureLayer(chainId: Digest, diffId: Digest, parent: Digest | null,
    fill: (dir: string) => Promise<FillResult>): Promise<void> {
    const hex = digestHex(chainId);
    digestHex(diffId);
    if (parent !== null) digestHex(parent);
    if (await this.hasLayer(chainId)) return;
    const release = await this.lock('layer-' + hex);
    let tmp: string | undefined;
    let inFill = false;
    try {
      if (await this.hasLayer(chainId)) return;
      const tmpRoot = join(this.root, 'tmp');
      this.spreadTmp();
      for (const name of await readdir(tmpRoot)) {
        if (name.startsWith(LAYER_TMP_PREFIX + hex + '-')) await rm(join(tmpRoot, name), { recursive: true, force: true });
      }
      tmp = join(tmpRoot, LAYER_TMP_PREFIX + hex + '-' + randomSuffix());
      await mkdir(tmp, { mode: 0o700 });
      const diff = join(tmp, 'diff');
      await mkdir(diff, { mode: 0o755 });
      await chmod(diff, 0o755);
      inFill = true;
      const res = await fill(diff);
      inFill = false;
      const got = typeof res === 'string' ? res : res.diffId;
      if (got !== diffId) {
        throw fail('EDIGEST', `unpack layer ${chainId}: diffID is ${got}, want ${diffId}`);
      }
      const size = typeof res === 'object' && res.size !== undefined ? res.size : await diskUsage(diff);
      const record: LayerRecord = { chainId, diffId, parent, size, created: new Date().toISOString() };
      await writeFileDurable(join(tmp, 'layer.json'), join(tmp, 'layer.json.tmp'), JSON.stringify(record, null, 2) + '\n');
      const dest = this.layerPath(chainId);
      // A directory without layer.json cannot come from us (we rename complete dirs); clear it anyway.
      await rm(dest, { recursive: true, force: true });
      await rename(tmp, dest);
      tmp = undefined;
      await fsyncDir(join(this.root, 'layers'));
    } catch (err) {
      if (inFill || err instanceof TspodError) throw err; // fill's own errors pass through untouched
      throw fail('ESYS', `unpack layer ${chainId}: ${messageOf(err)}`, err);
    } finally {
      if (tmp !== undefined) await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
      await release();
    }
  }

  /**
   * Marks tmp/ (where every unpack's tree is born) as an Orlov top directory, once per Store: each
   * layer then starts in a block group of its own rather than where the last one was removed, which
   * on ext4 without a journal costs a scan of the freed inodes for every file created (see
   * src/sys/fsflags.ts; a fresh Debian layer: ≈ 1 s instead of 4–8 s here). Best effort: a file
   * system without inode flags just keeps its own placement.
   */
  private spreadTmp(): void {
    if (this.tmpSpread) return;
    this.tmpSpread = true;
    try {
      addInodeFlags(join(this.root, 'tmp'), FS_TOPDIR_FL);
    } catch {
      // tmp/ unreadable: the mkdir that follows reports it
    }
  }

  // ---------------------------------------------------------------- refs

  private refsPath(): string {
    return join(this.root, 'refs.json');
  }

  private async readRefs(): Promise<RefsFile> {
    let f: RefsFile | undefined;
    try {
      f = await readJson<RefsFile>(this.refsPath());
    } catch (err) {
      throw fail('ESYS', `read refs ${this.refsPath()}: ${messageOf(err)}`, err);
    }
    return f ?? { version: 1, refs: {} };
  }

  private async updateRefs(what: string, change: (refs: RefsFile['refs']) => boolean): Promise<void> {
    const release = await this.lock('refs');
    try {
      const f = await this.readRefs();
      if (!change(f.refs)) return;
      const sorted: RefsFile['refs'] = {};
      for (const k of Object.keys(f.refs).sort()) sorted[k] = f.refs[k];
      await writeFileDurable(this.refsPath(), this.tmpPath('refs-'), JSON.stringify({ version: 1, refs: sorted }, null, 2) + '\n');
    } catch (err) {
      if (err instanceof TspodError) throw err;
      throw fail('ESYS', `${what}: ${messageOf(err)}`, err);
    } finally {
      await release();
    }
  }

  /** Points `name` at a manifest digest (atomic: readers see the old or the new refs.json). */
  async setRef(name: string, manifestDigest: Digest): Promise<void> {
    checkRefName(name);
    if (!isDigest(manifestDigest)) throw fail('EINVAL', `set ref "${name}": invalid digest "${manifestDigest}"`);
    await this.updateRefs(`set ref "${name}"`, (refs) => {
      if (refs[name]?.digest === manifestDigest) return false;
      refs[name] = { digest: manifestDigest, updated: new Date().toISOString() };
      return true;
    });
  }

  async getRef(name: string): Promise<Digest | undefined> {
    const f = await this.readRefs();
    return Object.prototype.hasOwnProperty.call(f.refs, name) ? f.refs[name].digest : undefined;
  }

  /** Removes a ref; no error when it does not exist. */
  async deleteRef(name: string): Promise<void> {
    await this.updateRefs(`delete ref "${name}"`, (refs) => {
      if (!Object.prototype.hasOwnProperty.call(refs, name)) return false;
      delete refs[name];
      return true;
    });
  }

  /** All refs, sorted by name. */
  async listRefs(): Promise<RefEntry[]> {
    const f = await this.readRefs();
    return Object.keys(f.refs).sort().map((name) => ({ name, digest: f.refs[name].digest }));
  }

  // ---------------------------------------------------------------- snapshots

  private snapshotPath(id: string): string {
    if (!SNAPSHOT_ID_RE.test(id)) throw fail('EINVAL', `snapshot id "${id}": want [A-Za-z0-9][A-Za-z0-9_.-]{0,127}`);
    return join(this.root, 'snapshots', id);
  }

  private snapshotOf(id: string, chain: Digest[]): Snapshot {
    const dir = this.snapshotPath(id);
    return {
      id,
      upperDir: join(dir, 'upper'),
      workDir: join(dir, 'work'),
      lowerDirs: [...chain].reverse().map((c) => this.layerDiffDir(c)),
    };
  }

  /**
   * Creates snapshots/<id>/{upper,work} on top of `chain` (chainIDs, base layer first; every layer
   * must be in the store). `image`: the image's config digest, kept by GC while the snapshot exists. The upper dir takes the owner and mode of the top layer's root, so the
   * container's / looks like the image's. EEXIST when the id is taken.
   */
  async createSnapshot(id: string, chain: Digest[], opts: { image?: Digest } = {}): Promise<Snapshot> {
    this.snapshotPath(id);
    if (opts.image !== undefined && !isDigest(opts.image)) throw fail('EINVAL', `create snapshot ${id}: invalid image ID "${opts.image}"`);
    // Until snapshot.json is written the chain is no GC root: hold GC off meanwhile.
    const release = await this.lease();
    try {
      return await this.createSnapshotLeased(id, chain, opts.image);
    } finally {
      await release();
    }
  }

  private async createSnapshotLeased(id: string, chain: Digest[], image: Digest | undefined): Promise<Snapshot> {
    const dir = this.snapshotPath(id);
    for (const c of chain) {
      if (!(await this.hasLayer(c))) throw fail('ENOTFOUND', `create snapshot ${id}: layer ${c} is not in the store`);
    }
    try {
      await mkdir(dir, { mode: 0o700 });
    } catch (err) {
      if (isErrno(err, 'EEXIST')) throw fail('EEXIST', `create snapshot ${id}: already exists`, err);
      throw fail('ESYS', `create snapshot ${id}: ${messageOf(err)}`, err);
    }
    const snap = this.snapshotOf(id, chain);
    try {
      await mkdir(snap.upperDir, { mode: 0o755 });
      await mkdir(snap.workDir, { mode: 0o700 });
      if (chain.length > 0) {
        const top = await lstat(this.layerDiffDir(chain[chain.length - 1]));
        await chown(snap.upperDir, top.uid, top.gid);
        await chmod(snap.upperDir, top.mode & 0o7777);
      } else {
        await chmod(snap.upperDir, 0o755);
      }
      const rec: SnapshotRecord = { id, chain, ...(image ? { image } : {}), created: new Date().toISOString() };
      await writeFileDurable(join(dir, 'snapshot.json'), join(dir, 'snapshot.json.tmp'), JSON.stringify(rec, null, 2) + '\n');
    } catch (err) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw fail('ESYS', `create snapshot ${id}: ${messageOf(err)}`, err);
    }
    return snap;
  }

  /** Every complete snapshot's record (containers' layers: GC roots), sorted by id. */
  async listSnapshots(): Promise<SnapshotRecord[]> {
    const out: SnapshotRecord[] = [];
    for (const id of (await readdir(join(this.root, 'snapshots'))).sort()) {
      if (!SNAPSHOT_ID_RE.test(id)) continue;
      const rec = await readJson<SnapshotRecord>(join(this.root, 'snapshots', id, 'snapshot.json')).catch(() => undefined);
      if (rec) out.push(rec);
    }
    return out;
  }

  /** The snapshot's dirs, or undefined when there is no (complete) snapshot with this id. */
  async getSnapshot(id: string): Promise<Snapshot | undefined> {
    const rec = await readJson<SnapshotRecord>(join(this.snapshotPath(id), 'snapshot.json'));
    return rec ? this.snapshotOf(id, rec.chain) : undefined;
  }

  /** Removes snapshots/<id> and everything in it (the overlay must be unmounted). No error if absent. */
  async removeSnapshot(id: string): Promise<void> {
    const dir = this.snapshotPath(id);
    try {
      // Make it invisible first, so a crash mid-removal never leaves a half snapshot under its id.
      const trash = this.tmpPath('snapshot-' + id + '-');
      try {
        await rename(dir, trash);
      } catch (err) {
        if (isErrno(err, 'ENOENT')) return;
        throw err;
      }
      await rm(trash, { recursive: true, force: true });
    } catch (err) {
      throw fail('ESYS', `remove snapshot ${id}: ${messageOf(err)}`, err);
    }
  }
}

/** Empties `dir` (creating it if missing), keeping the directory itself: nothing to re-create. */
function emptyDirSync(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
    // recursive: another process opening the store may have created it meanwhile in its layout step
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return;
  }
  for (const n of names) rmSync(join(dir, n), { recursive: true, force: true });
}

function checkRefName(name: string): void {
  if (name === '' || name.length > 1024 || /[\0\n]/.test(name)) {
    throw fail('EINVAL', `set ref "${name}": invalid name`);
  }
}
