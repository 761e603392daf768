/**
 * pull: reference → registry → store, following DESIGN.md §3:
 * resolve (one manifest request) → pick the platform → manifest by digest → config → for each
 * layer whose chainID is not unpacked yet, in parallel (bounded): download with resume into the
 * ingest area, verified while streaming → blob → unpack by chainID (diffID verified while
 * streaming) → the ref is written last, so a ref only ever names a complete image.
 */
import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import type { Ingest, Store } from '../../store/index.js';
import { unpackLayer } from '../unpack/unpack.js';
import { RegistryClient } from '../registry/client.js';
import { fileCredentials } from '../registry/credentials.js';
import type { CredentialSource } from '../registry/auth.js';
import { parseReference, formatReference, familiarString, pullReference, type Reference } from '../reference/index.js';
import { parseManifest } from '../oci/manifest.js';
import { parseImageConfig } from '../oci/config.js';
import { hostPlatform, parsePlatform, selectManifest, formatPlatform } from '../oci/platform.js';
import type { Descriptor, Digest, ImageConfig, ImageManifest, Platform } from '../oci/types.js';
import type { EngineConfig } from '../config/index.js';
import { chainIds } from '../util/digest.js';
import { fail, messageOf } from '../util/errors.js';
import { forEachBounded } from '../util/bounded.js';

export type PullEvent =
  | { type: 'resolved'; reference: string; digest: Digest; platform?: string }
  | { type: 'layer'; digest: Digest; status: 'waiting' | 'exists' | 'downloading' | 'extracting' | 'done'; done?: number; total?: number };

export interface PullOptions {
  store: Store;
  config: EngineConfig;
  /** "os/arch[/variant]"; default: the host's. */
  platform?: string;
  /** Layers downloaded at once (default 3). */
  concurrency?: number;
  onEvent?: (e: PullEvent) => void;
  /** Default: the user's docker config.json / containers auth.json and their credential helpers. */
  credentials?: CredentialSource;
  /** For tests and the CLI: reuse a client (its request counters are read by tests). */
  client?: RegistryClient;
}

export interface PullResult {
  /** The normalised reference that now names the image, e.g. docker.io/library/alpine:3.19. */
  name: string;
  /** The short form docker shows, e.g. alpine:3.19. */
  familiarName: string;
  /** What the tag resolved to at the registry (an index or a manifest). */
  resolvedDigest: Digest;
  /** The platform manifest that was stored. */
  manifestDigest: Digest;
  /** The image ID: the config's digest. */
  imageId: Digest;
  platform: Platform;
  /** Layers that had to be downloaded (0 when the image was already complete). */
  layersFetched: number;
}

export async function pullImage(refText: string, opts: PullOptions): Promise<PullResult> {
  const ref = parseReference(refText);
  const want = opts.platform ? parsePlatform(opts.platform) : hostPlatform();
  // Holds garbage collection off until the ref names what this pull adds (store/gc.ts).
  const releaseLease = await opts.store.lease();
  const client = opts.client ?? new RegistryClient({ config: opts.config, credentials: opts.credentials ?? fileCredentials() });
  const emit = opts.onEvent ?? (() => {});
  try {
    const what = formatReference(ref);
    const top = await client.getManifest(ref, pullReference(ref));
    const parsed = parseManifest(top.bytes, top.mediaType, what);
    emit({ type: 'resolved', reference: what, digest: top.digest });

    let manifestBytes = top.bytes;
    let manifestDigest = top.digest;
    let manifest: ImageManifest;
    const blobsToStore: { bytes: Buffer; digest: Digest }[] = [];
    if (parsed.kind === 'index') {
      blobsToStore.push({ bytes: top.bytes, digest: top.digest });
      const chosen = selectManifest(parsed.index, want, what);
      const child = await client.getManifest(ref, chosen.digest);
      const inner = parseManifest(child.bytes, child.mediaType, `${what}@${chosen.digest}`);
      if (inner.kind !== 'manifest') {
        throw fail('EUNSUPPORTED', `pull ${what}: index entry ${chosen.digest} is itself an index`);
      }
      manifest = inner.manifest;
      manifestBytes = child.bytes;
      manifestDigest = child.digest;
    } else {
      manifest = parsed.manifest;
    }

    const store = opts.store;
    const config = await fetchConfig(client, store, ref, manifest.config);
    checkPlatform(config, want, what, parsed.kind === 'index');
    const diffIds = config.rootfs.diff_ids;
    if (diffIds.length !== manifest.layers.length) {
      throw fail('EREGISTRY', `pull ${what}: manifest has ${manifest.layers.length} layers but the config lists ${diffIds.length} diff_ids`);
    }
    const chain = chainIds(diffIds);

    let fetched = 0;
    for (const layer of manifest.layers) emit({ type: 'layer', digest: layer.digest, status: 'waiting', total: layer.size });
    await forEachBounded(manifest.layers, opts.concurrency ?? 3, async (layer, i) => {
      const chainId = chain[i]!;
      if (await store.hasLayer(chainId)) {
        // The blob too (kept for push and save): `system check --repair` may have removed a damaged one.
        if (!(await store.hasBlob(layer.digest))) {
          fetched++;
          await downloadBlob(client, store, ref, layer, () => {});
        }
        emit({ type: 'layer', digest: layer.digest, status: 'exists' });
        return;
      }
      await store.ensureLayer(chainId, diffIds[i]!, i === 0 ? null : chain[i - 1]!, async (dir) => {
        if (!(await store.hasBlob(layer.digest))) {
          fetched++;
          const progress = (done: number) => emit({ type: 'layer', digest: layer.digest, status: 'downloading', done, total: layer.size });
          const streamed = await downloadAndUnpack(client, store, ref, layer, dir, progress);
          if (streamed !== undefined) return streamed;
          await downloadBlob(client, store, ref, layer, progress);
        }
        emit({ type: 'layer', digest: layer.digest, status: 'extracting' });
        const r = await unpackLayer(createReadStream(store.blobPath(layer.digest), { highWaterMark: 1 << 20 }), layer.mediaType, dir);
        // The size the unpack counted: ensureLayer would otherwise walk the whole tree again for it.
        return { diffId: r.diffId, size: r.size };
      });
      emit({ type: 'layer', digest: layer.digest, status: 'done' });
    });

    for (const b of blobsToStore) await store.putBlob(b.bytes, { digest: b.digest });
    await store.putBlob(manifestBytes, { digest: manifestDigest });
    // The ref is written last: it only ever names an image whose every piece is in the store.
    const name = refName(ref);
    await store.setRef(name, manifestDigest);
    return {
      name,
      familiarName: familiarString(parseReference(name)),
      resolvedDigest: top.digest,
      manifestDigest,
      imageId: manifest.config.digest,
      platform: { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) },
      layersFetched: fetched,
    };
  } finally {
    await releaseLease();
    if (!opts.client) await client.close();
  }
}

/** The name a pulled image is stored under: name:tag, or name@digest when pulled by digest alone. */
export function refName(ref: Reference): string {
  return formatReference(ref.tag !== undefined ? { registry: ref.registry, repository: ref.repository, tag: ref.tag } : ref);
}

async function fetchConfig(client: RegistryClient, store: Store, ref: Reference, desc: Descriptor): Promise<ImageConfig> {
  let bytes: Buffer;
  if (await store.hasBlob(desc.digest)) {
    bytes = await store.readBlob(desc.digest);
  } else {
    bytes = await client.getBlobBytes(ref, desc);
    await store.putBlob(bytes, { digest: desc.digest, size: desc.size });
  }
  return parseImageConfig(bytes, `config ${desc.digest} of ${familiarString(ref)}`);
}

function checkPlatform(config: ImageConfig, want: Platform, what: string, fromIndex: boolean): void {
  // A single-manifest image is taken as it is (docker warns but runs it); an index entry must agree with its config.
  if (fromIndex && (config.os !== want.os || config.architecture !== want.architecture)) {
    throw fail('EREGISTRY', `pull ${what}: the image for ${formatPlatform(want)} has a config for ${config.os}/${config.architecture}`);
  }
}

/**
 * Downloads one blob into the store, resuming a partial download left by an earlier attempt or an
 * earlier process, and retrying a dropped connection from the bytes already verified.
 */
async function downloadBlob(client: RegistryClient, store: Store, ref: Reference, desc: Descriptor,
  onProgress: (done: number) => void): Promise<void> {
  const ingest = await store.openIngest(desc.digest, desc.size);
  let committed = false;
  try {
    for (let attempt = 1; !ingest.exists; attempt++) {
      const before = ingest.offset;
      try {
        if (ingest.offset < desc.size) {
          const { body, offset } = await client.getBlob(ref, desc, ingest.offset);
          // A server that ignores Range sends the blob from `offset` (0): skip what we already have.
          await drainInto(body, ingest.offset - offset, ingest, onProgress);
        }
        break;
      } catch (err) {
        const progressed = ingest.offset > before;
        const retryable = (err as { code?: string }).code === 'ENETWORK' || isStreamCut(err);
        if (!retryable || (!progressed && attempt >= 3)) throw err;
      }
    }
    await ingest.commit();
    committed = true;
  } finally {
    if (!committed) await ingest.abort().catch(() => {});
  }
}

/**
 * The fast path of a fresh layer: one pass over the bytes as they arrive — written and hashed into the
 * ingest and, at the same time, decompressed and unpacked into `dir` — instead of downloading the whole
 * blob and reading it back. The blob's digest is checked when the download ends (commit) and the diffID
 * by ensureLayer, before anything becomes visible; a layer dir unpacked from bytes that fail either is
 * discarded with the rest of ensureLayer's temporary dir (the unpacker treats every archive as hostile
 * anyway). Returns the diffID and content size, or undefined when the slow path must finish the job: a partial ingest is
 * there to resume, or the connection broke (what had arrived stays in the ingest; `dir` is emptied).
 */
async function downloadAndUnpack(client: RegistryClient, store: Store, ref: Reference, desc: Descriptor, dir: string,
  onProgress: (done: number) => void): Promise<{ diffId: Digest; size: number } | undefined> {
  const ingest = await store.openIngest(desc.digest, desc.size);
  if (ingest.exists || ingest.offset > 0) {
    await ingest.abort();
    return undefined;
  }
  let committed = false;
  try {
    let body: Readable;
    try {
      ({ body } = await client.getBlob(ref, desc, 0));
    } catch (err) {
      if (isRetryable(err)) return undefined;
      throw err;
    }
    const tee = new PassThrough({ highWaterMark: 4 << 20 });
    const unpacked = unpackLayer(tee, desc.mediaType, dir);
    let unpackError: unknown; // set when the unpack failed first (bad content), not as a consequence of a broken download
    let downloadFailed = false;
    let unpackSettled = false;
    let wake: (() => void) | undefined;
    unpacked.catch((err) => { if (!downloadFailed) { unpackError = err; body.destroy(); tee.destroy(); } })
      .finally(() => { unpackSettled = true; wake?.(); });
    const sink = async (chunk: Buffer): Promise<void> => {
      if (unpackError !== undefined) throw unpackError;
      if (unpackSettled || tee.destroyed) return; // the archive ended: what follows (padding) only goes to the ingest
      if (!tee.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = (): void => { tee.off('drain', done); tee.off('close', done); wake = undefined; resolve(); };
          wake = done;
          tee.once('drain', done);
          tee.once('close', done);
        });
      }
    };
    const downloaded = drainInto(body, 0, ingest, onProgress, sink).then(() => { tee.end(); }, (err) => { downloadFailed = true; tee.destroy(); throw err; });
    // The blob is verified, made durable and moved into blobs/ as soon as its last byte is in,
    // while the unpack works through what is still queued (its fsync then costs no wall time).
    let committing = false;
    const stored = downloaded.then(async () => {
      committing = true;
      await ingest.commit();
      committed = true;
    });
    const [down, unpack] = await Promise.allSettled([stored, unpacked]);
    if (down.status === 'rejected' && !committing && unpackError === undefined) {
      if (!isRetryable(down.reason)) throw down.reason;
      await ingest.abort();
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { mode: 0o755 });
      return undefined;
    }
    if (down.status === 'rejected' && committing) throw down.reason; // EDIGEST before any complaint about the content
    if (unpack.status === 'rejected') throw unpack.reason;
    return { diffId: unpack.value.diffId, size: unpack.value.size };
  } finally {
    if (!committed) await ingest.abort().catch(() => {});
  }
}

function isRetryable(err: unknown): boolean {
  return (err as { code?: string }).code === 'ENETWORK' || isStreamCut(err);
}

/** Bytes received but not yet on disk (or not yet taken by the sink) before the body is paused (the socket then holds the rest). */
const QUEUE_HIGH = 8 * 1024 * 1024;
/** Most bytes handed to the ingest in one writev. */
const WRITE_BATCH = 4 * 1024 * 1024;

/**
 * Writes `body` into the ingest, skipping its first `skip` bytes, and hands every chunk to `sink` too.
 * Chunks are taken off the socket as they arrive and queued twice: for the disk, written in batches
 * (one writev per ≈ what arrived meanwhile, not one thread-pool round trip per 64 KiB socket read), and
 * for the sink, which never waits for the disk (the blob's digest is checked at commit, before anything
 * unpacked from it becomes visible). When the connection dies every byte that had arrived is still
 * written (and hashed) before the error is reported: the resume's Range then starts exactly where the
 * bytes received end, and nothing is downloaded twice.
 */
function drainInto(body: Readable, skip: number, ingest: Ingest, onProgress: (done: number) => void,
  sink?: (chunk: Buffer) => Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const disk: Buffer[] = [];
    let diskQueued = 0;
    const toSink: Buffer[] = [];
    let sinkQueued = 0;
    let writing = false;
    let sinking = false;
    let ended = false;
    let failure: unknown;
    let settled = false;
    const settle = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      if (err !== undefined) reject(err);
      else resolve();
    };
    const failWith = (err: unknown): void => {
      body.destroy();
      settle(err);
    };
    const maybeResume = (): void => {
      if (diskQueued < QUEUE_HIGH / 2 && sinkQueued < QUEUE_HIGH / 2 && body.isPaused() && !ended) body.resume();
    };
    const maybeDone = (): void => {
      if (ended && !writing && !sinking && disk.length === 0 && toSink.length === 0) settle(failure);
    };
    const pumpDisk = async (): Promise<void> => {
      if (writing || settled) return;
      writing = true;
      try {
        while (disk.length > 0 && !settled) {
          let n = 0;
          let k = 0;
          while (k < disk.length && (k === 0 || n + disk[k]!.length <= WRITE_BATCH)) n += disk[k++]!.length;
          const batch = disk.splice(0, k);
          diskQueued -= n;
          await ingest.writev(batch);
          onProgress(ingest.offset);
          maybeResume();
        }
      } catch (err) {
        writing = false;
        failWith(err);
        return;
      }
      writing = false;
      maybeDone();
    };
    const pumpSink = async (): Promise<void> => {
      if (sinking || settled || !sink) return;
      sinking = true;
      try {
        while (toSink.length > 0 && !settled) {
          const chunk = toSink.shift()!;
          sinkQueued -= chunk.length;
          await sink(chunk);
          maybeResume();
        }
      } catch (err) {
        sinking = false;
        failWith(err);
        return;
      }
      sinking = false;
      maybeDone();
    };
    body.on('data', (chunk: Buffer) => {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length);
        skip -= n;
        chunk = chunk.subarray(n);
        if (chunk.length === 0) return;
      }
      disk.push(chunk);
      diskQueued += chunk.length;
      if (sink) {
        toSink.push(chunk);
        sinkQueued += chunk.length;
      }
      if (diskQueued > QUEUE_HIGH || sinkQueued > QUEUE_HIGH) body.pause();
      void pumpDisk();
      void pumpSink();
    });
    const onEnd = (): void => { ended = true; maybeDone(); };
    body.once('end', onEnd);
    body.once('error', (err) => { failure = err; onEnd(); });
    body.once('close', () => {
      if (!ended) { failure ??= Object.assign(new Error('premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }); onEnd(); }
    });
  });
}

function isStreamCut(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return ['ECONNRESET', 'UND_ERR_SOCKET', 'ERR_STREAM_PREMATURE_CLOSE', 'UND_ERR_ABORTED', 'EPIPE'].includes(code)
    || /terminated|other side closed|premature close/i.test(messageOf(err));
}
