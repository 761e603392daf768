/**
 * Garbage collection, space accounting and the consistency check (fsck) of the store.
 *
 * GC is mark and sweep from roots, under the exclusive lock `gc`:
 *   roots = every ref's manifest (→ its config and layer blobs, → the chain of its diff_ids; an
 *           index → its manifests), every snapshot's chain and image config (containers), and every in-progress
 *           writer: pulls and snapshot creation hold `gc` SHARED (Store.lease()) from before they
 *           look at the store until their ref/snapshot record is written, so GC either runs before
 *           they start (and they download again) or after they finish (and sees their root).
 *           A partial download (ingest/) whose lock is held is live; one whose lock is free
 *           belongs to a dead or interrupted pull.
 *   layers are kept together with their parents (layer.json.parent), so a chain never loses its base.
 * Sweep removes what is not marked: blobs (unlink), layers (renamed into tmp/ first, then removed,
 * so a crash never leaves a half layer under layers/), dangling short links in l/, and dead ingests.
 * With `candidates`, only those blobs and layers may be removed (what `rmi` untagged); the marking
 * is the same, so a layer still used by another image or a container is never removed.
 *
 * Unreadable manifests or configs are kept (never delete data because we could not parse it) and
 * left to `check`.
 */
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { parseManifest } from '../src/oci/manifest.js';
import { parseImageConfig } from '../src/oci/config.js';
import type { Digest } from '../src/oci/types.js';
import { chainIds, digestOf, newHash } from '../src/util/digest.js';
import { fail, isErrno, messageOf, TspodError } from '../src/util/errors.js';
import { diskUsage, exists, randomSuffix, readJson } from './fsutil.js';
import type { LayerRecord, SnapshotRecord, Store } from './store.js';

const HEX64 = /^[a-f0-9]{64}$/;

export interface GcOptions {
  /** Only these blobs / layers (chainIDs) may be removed; default: anything unreferenced. */
  candidates?: { blobs?: Digest[]; layers?: Digest[] };
  /** Report what would be removed, remove nothing. */
  dryRun?: boolean;
  /** Give up with EBUSY when a pull holds the store this long (default: wait). */
  timeoutMs?: number;
}

export interface GcResult {
  blobs: { digest: Digest; size: number }[];
  layers: { chainId: Digest; size: number }[];
  /** Partial downloads of dead pulls. */
  ingests: { digest: Digest; size: number }[];
  /** Bytes freed (blob and ingest file sizes, layer content sizes). */
  reclaimed: number;
}

export interface StoreUsage {
  blobs: { count: number; bytes: number };
  layers: { count: number; bytes: number };
  /** Container snapshots: the bytes in their upper dirs, in all and per snapshot (container id). */
  snapshots: { count: number; bytes: number; byId: Record<string, number> };
  ingest: { count: number; bytes: number };
  /** What gc would free now. */
  reclaimable: { blobs: number; layers: number; ingest: number };
}

export interface CheckProblem {
  kind: 'blob' | 'layer' | 'ref' | 'snapshot' | 'link' | 'ingest';
  /** The digest, chainID, ref name, snapshot id or file name at fault. */
  name: string;
  problem: string;
  /** Set when `repair` fixed it. */
  repaired?: string;
}

export interface CheckResult {
  checked: { blobs: number; layers: number; refs: number; snapshots: number };
  problems: CheckProblem[];
}

interface Marks {
  blobs: Set<string>;
  layers: Set<string>;
}

/** The digest of a file's bytes, streamed. */
async function fileDigest(path: string): Promise<Digest> {
  const h = newHash();
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return digestOf(h);
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await lstat(path)).size;
  } catch {
    return 0;
  }
}

/** Marks everything reachable from refs and snapshots. */
async function mark(store: Store): Promise<Marks> {
  const m: Marks = { blobs: new Set(), layers: new Set() };
  const markManifest = async (digest: Digest, depth: number): Promise<void> => {
    if (m.blobs.has(digest) || depth > 4) return;
    m.blobs.add(digest);
    let bytes: Buffer;
    try {
      bytes = await store.readBlob(digest);
    } catch {
      return; // missing: nothing below it to keep (check reports the ref)
    }
    let parsed;
    try {
      parsed = parseManifest(bytes, undefined, digest);
    } catch {
      return;
    }
    if (parsed.kind === 'index') {
      for (const d of parsed.index.manifests) if (await store.hasBlob(d.digest)) await markManifest(d.digest, depth + 1);
      return;
    }
    const man = parsed.manifest;
    m.blobs.add(man.config.digest);
    for (const l of man.layers) m.blobs.add(l.digest);
    try {
      const config = parseImageConfig(await store.readBlob(man.config.digest));
      for (const c of chainIds(config.rootfs.diff_ids)) m.layers.add(c);
    } catch { /* missing or unreadable config: its layers are unknown (check reports it) */ }
  };
  for (const r of await store.listRefs()) await markManifest(r.digest, 0);
  for (const id of await listDir(join(store.root, 'snapshots'))) {
    const rec = await readJson<SnapshotRecord>(join(store.root, 'snapshots', id, 'snapshot.json')).catch(() => undefined);
    for (const c of rec?.chain ?? []) m.layers.add(c);
    if (rec?.image) m.blobs.add(rec.image);
  }
  // Parents: a chain is only usable with its base.
  const queue = [...m.layers];
  while (queue.length) {
    const c = queue.pop()!;
    const rec = await store.getLayer(c as Digest).catch(() => undefined);
    if (rec?.parent && !m.layers.has(rec.parent)) {
      m.layers.add(rec.parent);
      queue.push(rec.parent);
    }
  }
  return m;
}

async function layerSize(store: Store, hex: string): Promise<number> {
  const rec = await readJson<LayerRecord>(join(store.root, 'layers', hex, 'layer.json')).catch(() => undefined);
  return typeof rec?.size === 'number' ? rec.size : 0;
}

/** Removes a layer directory: out of layers/ first (one rename), then recursively. */
export async function removeLayerDir(store: Store, hex: string): Promise<void> {
  const trash = join(store.root, 'tmp', `gc-layer-${hex}-${randomSuffix()}`);
  try {
    await rename(join(store.root, 'layers', hex), trash);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return;
    throw err;
  }
  await rm(trash, { recursive: true, force: true });
}

async function removeDanglingLinks(store: Store): Promise<number> {
  let n = 0;
  const dir = join(store.root, 'l');
  for (const name of await listDir(dir)) {
    const p = join(dir, name);
    const target = await readlink(p).catch(() => undefined);
    if (target === undefined || !(await exists(join(dir, target)))) {
      await unlink(p).catch(() => undefined);
      n++;
    }
  }
  return n;
}

export async function collectGarbage(store: Store, opts: GcOptions = {}): Promise<GcResult> {
  const release = await store.lock('gc', { timeoutMs: opts.timeoutMs });
  try {
    return await sweep(store, await mark(store), opts);
  } catch (err) {
    if (err instanceof TspodError) throw err;
    throw fail('ESYS', `garbage-collect store ${store.root}: ${messageOf(err)}`, err);
  } finally {
    await release();
  }
}

async function sweep(store: Store, m: Marks, opts: GcOptions): Promise<GcResult> {
  const res: GcResult = { blobs: [], layers: [], ingests: [], reclaimed: 0 };
  const onlyBlobs = opts.candidates ? new Set<string>(opts.candidates.blobs ?? []) : undefined;
  const onlyLayers = opts.candidates ? new Set<string>(opts.candidates.layers ?? []) : undefined;
  // Layers first: a crash then leaves blobs without layers (re-unpacked from them), not the reverse.
  for (const hex of await listDir(join(store.root, 'layers'))) {
    const chainId = `sha256:${hex}` as Digest;
    if (!HEX64.test(hex) || m.layers.has(chainId) || (onlyLayers && !onlyLayers.has(chainId))) continue;
    const size = await layerSize(store, hex);
    if (!opts.dryRun) await removeLayerDir(store, hex);
    res.layers.push({ chainId, size });
    res.reclaimed += size;
  }
  if (!opts.dryRun) await removeDanglingLinks(store);
  const blobDir = join(store.root, 'blobs', 'sha256');
  for (const hex of await listDir(blobDir)) {
    const digest = `sha256:${hex}` as Digest;
    if (!HEX64.test(hex) || m.blobs.has(digest) || (onlyBlobs && !onlyBlobs.has(digest))) continue;
    const size = await fileSize(join(blobDir, hex));
    if (!opts.dryRun) await rm(join(blobDir, hex), { force: true });
    res.blobs.push({ digest, size });
    res.reclaimed += size;
  }
  if (!opts.candidates) {
    const ingestDir = join(store.root, 'ingest');
    for (const name of await listDir(ingestDir)) {
      if (!HEX64.test(name)) continue;
      let unlock: (() => Promise<void>) | undefined;
      try {
        unlock = await store.lock('ingest-' + name, { timeoutMs: 0 });
      } catch {
        continue; // a live download
      }
      try {
        const size = await fileSize(join(ingestDir, name));
        if (!opts.dryRun) {
          await rm(join(ingestDir, name), { force: true });
          await rm(join(ingestDir, name + '.json'), { force: true });
        }
        res.ingests.push({ digest: `sha256:${name}` as Digest, size });
        res.reclaimed += size;
      } finally {
        await unlock();
      }
    }
  }
  return res;
}

/** Space used by the store, and what gc would reclaim (a dry run under the gc lock). */
export async function storeUsage(store: Store): Promise<StoreUsage> {
  const u: StoreUsage = {
    blobs: { count: 0, bytes: 0 }, layers: { count: 0, bytes: 0 }, snapshots: { count: 0, bytes: 0, byId: {} },
    ingest: { count: 0, bytes: 0 }, reclaimable: { blobs: 0, layers: 0, ingest: 0 },
  };
  const blobDir = join(store.root, 'blobs', 'sha256');
  for (const hex of await listDir(blobDir)) {
    u.blobs.count++;
    u.blobs.bytes += await fileSize(join(blobDir, hex));
  }
  for (const hex of await listDir(join(store.root, 'layers'))) {
    if (!(await exists(join(store.root, 'layers', hex, 'layer.json')))) continue;
    u.layers.count++;
    u.layers.bytes += await layerSize(store, hex);
  }
  for (const id of await listDir(join(store.root, 'snapshots'))) {
    u.snapshots.count++;
    const bytes = await diskUsage(join(store.root, 'snapshots', id, 'upper')).catch(() => 0);
    u.snapshots.bytes += bytes;
    u.snapshots.byId[id] = bytes;
  }
  for (const name of await listDir(join(store.root, 'ingest'))) {
    if (!HEX64.test(name)) continue;
    u.ingest.count++;
    u.ingest.bytes += await fileSize(join(store.root, 'ingest', name));
  }
  const dry = await collectGarbage(store, { dryRun: true });
  u.reclaimable = {
    blobs: dry.blobs.reduce((n, b) => n + b.size, 0),
    layers: dry.layers.reduce((n, l) => n + l.size, 0),
    ingest: dry.ingests.reduce((n, i) => n + i.size, 0),
  };
  return u;
}

/**
 * fsck: every blob against its digest, every layer record against its directory name and parent,
 * every ref against its manifest, config and layers, every snapshot against its layers, every
 * short link. With `repair`: corrupt blobs and broken layers (and the layers above them) are
 * removed, so the next pull fetches and unpacks them again; refs whose manifest is gone are
 * deleted; dangling links and snapshot dirs without a record are removed. Runs under the gc lock,
 * so no pull or snapshot creation is half-way.
 */
export async function checkStore(store: Store, opts: { repair?: boolean } = {}): Promise<CheckResult> {
  const release = await store.lock('gc');
  try {
    return await check(store, opts.repair ?? false);
  } catch (err) {
    if (err instanceof TspodError) throw err;
    throw fail('ESYS', `check store ${store.root}: ${messageOf(err)}`, err);
  } finally {
    await release();
  }
}

async function check(store: Store, repair: boolean): Promise<CheckResult> {
  const res: CheckResult = { checked: { blobs: 0, layers: 0, refs: 0, snapshots: 0 }, problems: [] };
  const problem = (p: CheckProblem): CheckProblem => {
    res.problems.push(p);
    return p;
  };
  // Blobs: the name is the sha256 of the bytes.
  const blobDir = join(store.root, 'blobs', 'sha256');
  for (const hex of await listDir(blobDir)) {
    res.checked.blobs++;
    const path = join(blobDir, hex);
    let why: string | undefined;
    const st = await lstat(path);
    if (!HEX64.test(hex)) why = 'file name is not a sha256 digest';
    else if (!st.isFile()) why = 'not a regular file';
    else {
      const got = await fileDigest(path);
      if (got !== `sha256:${hex}`) why = `content has digest ${got}`;
    }
    if (why) {
      const p = problem({ kind: 'blob', name: HEX64.test(hex) ? `sha256:${hex}` : hex, problem: why });
      if (repair) {
        await rm(path, { recursive: true, force: true });
        p.repaired = 'removed (pull the image again to fetch it)';
      }
    }
  }
  // Layers: record present and consistent; parent present.
  const broken = new Set<string>();
  const records = new Map<string, LayerRecord>();
  for (const hex of await listDir(join(store.root, 'layers'))) {
    res.checked.layers++;
    const chainId = `sha256:${hex}`;
    const rec = await readJson<LayerRecord>(join(store.root, 'layers', hex, 'layer.json')).catch(() => null);
    let why: string | undefined;
    if (!HEX64.test(hex)) why = 'directory name is not a chainID';
    else if (rec === undefined) why = 'no layer.json (an unfinished unpack)';
    else if (rec === null) why = 'layer.json is unreadable';
    else if (rec.chainId !== chainId) why = `layer.json names chainID ${rec.chainId}`;
    else if (rec.parent === null ? rec.diffId !== chainId : sha256Chain(rec.parent, rec.diffId) !== chainId) {
      why = `chainID does not match diffID ${rec.diffId} over parent ${rec.parent ?? 'none'}`;
    } else if (!(await lstat(join(store.root, 'layers', hex, 'diff')).then((s) => s.isDirectory(), () => false))) why = 'diff/ is missing';
    if (why) {
      broken.add(chainId);
      problem({ kind: 'layer', name: chainId, problem: why });
    } else {
      records.set(chainId, rec!);
    }
  }
  // A layer over a broken or missing parent is broken too.
  let changed = true;
  while (changed) {
    changed = false;
    for (const [c, rec] of records) {
      if (rec.parent && (broken.has(rec.parent) || !records.has(rec.parent))) {
        records.delete(c);
        broken.add(c);
        changed = true;
        problem({ kind: 'layer', name: c, problem: `parent layer ${rec.parent} is ${broken.has(rec.parent) ? 'broken' : 'missing'}` });
      }
    }
  }
  if (repair) {
    for (const p of res.problems) {
      if (p.kind !== 'layer') continue;
      const hex = p.name.startsWith('sha256:') ? p.name.slice(7) : p.name;
      await removeLayerDir(store, hex);
      p.repaired = 'removed (pull the image again to unpack it)';
    }
  }
  const hasBlob = async (d: Digest): Promise<boolean> => exists(store.blobPath(d));
  // Refs: manifest, config and layer blobs present, layers unpacked.
  for (const r of await store.listRefs()) {
    res.checked.refs++;
    const issues: string[] = [];
    let manifestGone = false;
    if (!(await hasBlob(r.digest))) {
      issues.push(`manifest ${r.digest} is missing`);
      manifestGone = true;
    } else {
      try {
        const parsed = parseManifest(await store.readBlob(r.digest), undefined, r.name);
        if (parsed.kind === 'manifest') {
          const man = parsed.manifest;
          for (const l of man.layers) if (!(await hasBlob(l.digest))) issues.push(`layer blob ${l.digest} is missing`);
          if (!(await hasBlob(man.config.digest))) issues.push(`config ${man.config.digest} is missing`);
          else {
            const config = parseImageConfig(await store.readBlob(man.config.digest));
            for (const c of chainIds(config.rootfs.diff_ids)) if (!records.has(c)) issues.push(`layer ${c} is not unpacked`);
          }
        }
      } catch (err) {
        issues.push(messageOf(err));
      }
    }
    for (const why of issues) {
      const p = problem({ kind: 'ref', name: r.name, problem: manifestGone ? why : `${why} (pull the image again)` });
      if (repair && manifestGone) p.repaired = 'ref removed';
      else if (repair) p.repaired = undefined;
    }
    if (repair && manifestGone) await store.deleteRef(r.name);
  }
  // Snapshots: a record, and every layer of its chain.
  for (const id of await listDir(join(store.root, 'snapshots'))) {
    res.checked.snapshots++;
    const rec = await readJson<SnapshotRecord>(join(store.root, 'snapshots', id, 'snapshot.json')).catch(() => null);
    if (!rec) {
      const p = problem({ kind: 'snapshot', name: id, problem: 'no snapshot.json (an unfinished creation)' });
      if (repair) {
        await store.removeSnapshot(id);
        p.repaired = 'removed';
      }
      continue;
    }
    for (const c of rec.chain) {
      if (!records.has(c)) problem({ kind: 'snapshot', name: id, problem: `layer ${c} of its chain is ${broken.has(c) ? 'broken' : 'missing'}` });
    }
  }
  // Short links.
  const ldir = join(store.root, 'l');
  for (const name of await listDir(ldir)) {
    const target = await readlink(join(ldir, name)).catch(() => undefined);
    if (target === undefined || !(await exists(join(ldir, target)))) {
      const p = problem({ kind: 'link', name: `l/${name}`, problem: target === undefined ? 'not a symlink' : `dangling (→ ${target})` });
      if (repair) {
        await rm(join(ldir, name), { recursive: true, force: true });
        p.repaired = 'removed';
      }
    }
  }
  // Ingests: a partial with its state file, not longer than the blob.
  const idir = join(store.root, 'ingest');
  for (const name of await listDir(idir)) {
    if (name.endsWith('.json')) {
      if (!(await exists(join(idir, name.slice(0, -5))))) {
        // A state file whose partial was never written: harmless, openIngest rewrites it.
      }
      continue;
    }
    const state = await readJson<{ size: number }>(join(idir, name + '.json')).catch(() => undefined);
    const size = await fileSize(join(idir, name));
    if (!HEX64.test(name) || !state || size > state.size) {
      const p = problem({ kind: 'ingest', name, problem: !HEX64.test(name) ? 'unexpected file' : !state ? 'partial download without its state file' : 'partial download longer than its blob' });
      if (repair) {
        await rm(join(idir, name), { recursive: true, force: true });
        await rm(join(idir, name + '.json'), { force: true });
        p.repaired = 'removed';
      }
    }
  }
  return res;
}

function sha256Chain(parent: string, diffId: string): string {
  return chainIds([parent as Digest, diffId as Digest])[1]!;
}
