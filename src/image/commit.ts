/**
 * commit: a container's upper directory → a new image (DESIGN.md §3).
 *
 * One pass over the container's changes: upper dir → OCI layer tar (src/unpack/diff.ts) → which
 * is, at the same time, (a) hashed into the diffID, (b) applied by the unpacker into a fresh layer
 * directory in the store's tmp/, and (c) gzipped, hashed into the blob digest and written to a
 * temp file. Then the layer directory is renamed into the store by chainID (so running the new
 * image unpacks nothing), the blob goes through the store's ingest (verified again), the new
 * config (diff_ids and history appended, -c changes applied) and manifest are stored as blobs,
 * and the ref is written last through Store.setRef (so GC keeps all of it).
 *
 * The manifest keeps the parent's format: a Docker v2 parent gives a Docker v2 manifest, an OCI
 * parent an OCI one; the new layer gets that family's gzip media type.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Store } from '../../store/index.js';
import { layerApplier, upperDirTar } from '../unpack/diff.js';
import type { Sys } from '../sys/index.js';
import { MediaType, type Descriptor, type Digest, type ExecConfig, type HistoryEntry, type ImageManifest } from '../oci/types.js';
import { parseReference, familiarString } from '../reference/index.js';
import { chainIds, digestOf, newHash } from '../util/digest.js';
import { fail, messageOf } from '../util/errors.js';
import { MOUNT_POINT_FILES } from '../util/mount-points.js';
import type { LocalImage } from './local.js';
import { refName } from './pull.js';

export interface CommitOptions {
  store: Store;
  /** The container's overlay upper directory. */
  upperDir: string;
  /** The image the container was created from. */
  parent: LocalImage;
  /** Target reference (e.g. "registry:5000/team/app:v2"); the image is stored under it. */
  ref: string;
  /** -m: the history comment. */
  message?: string;
  /** -a: the author. */
  author?: string;
  /** -c: Dockerfile instructions applied to the config (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME, STOPSIGNAL). */
  changes?: string[];
  /** history[].created_by (docker puts the container's command there). */
  createdBy?: string;
  /** For tests: a fixed clock. */
  now?: Date;
  /** Names errors ("commit container web1"). */
  what?: string;
  sys?: Sys;
}

export interface CommitResult {
  name: string;
  familiarName: string;
  imageId: Digest;
  manifestDigest: Digest;
  /** The new layer: compressed digest, diffID and sizes. */
  layer: { digest: Digest; diffId: Digest; size: number; uncompressedSize: number };
}

/** Gzip settings are part of the digest: keep them fixed (level 6 is zlib's and Go's default). */
const GZIP_LEVEL = 6;

export interface LayerBuild {
  diffId: Digest;
  digest: Digest;
  /** Compressed bytes. */
  size: number;
  uncompressedSize: number;
  /** Bytes of regular-file content in the unpacked layer. */
  contentSize: number;
  /** store tmp/<dir>: layer.tar.gz and diff/ (the layer in overlay format). */
  tmpDir: string;
}

/**
 * Streams `source` (a layer tar) once: diffID, unpack into tmpDir/diff, gzip into tmpDir/layer.tar.gz
 * with its digest. The caller publishes or removes tmpDir.
 */
export async function buildLayer(store: Store, source: AsyncIterable<Buffer> | Readable, sys?: Sys): Promise<LayerBuild> {
  const tmpDir = join(store.root, 'tmp', 'build-' + randomBytes(6).toString('hex'));
  await mkdir(join(tmpDir, 'diff'), { recursive: true, mode: 0o755 });
  try {
    const diffHash = newHash();
    const blobHash = newHash();
    let uncompressedSize = 0;
    let size = 0;
    const applier = layerApplier(join(tmpDir, 'diff'), sys);
    const tap = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        try {
          diffHash.update(chunk);
          uncompressedSize += chunk.length;
          applier.write(chunk);
          cb(null, chunk);
        } catch (err) {
          cb(err as Error);
        }
      },
    });
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        blobHash.update(chunk);
        size += chunk.length;
        cb(null, chunk);
      },
    });
    try {
      await pipeline(source instanceof Readable ? source : Readable.from(source, { objectMode: false }), tap,
        createGzip({ level: GZIP_LEVEL, chunkSize: 256 * 1024 }), count, createWriteStream(join(tmpDir, 'layer.tar.gz')));
      applier.finish();
    } finally {
      applier.abort();
    }
    return { diffId: digestOf(diffHash), digest: digestOf(blobHash), size, uncompressedSize, contentSize: applier.bytes, tmpDir };
  } catch (err) {
    await rm(tmpDir, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * Moves a built layer into the store: the unpacked directory by chainID (unless that layer exists),
 * the compressed blob through a verified ingest. Removes tmpDir in every case.
 */
export async function publishLayer(store: Store, b: LayerBuild, chainId: Digest, parent: Digest | null): Promise<void> {
  try {
    await store.ensureLayer(chainId, b.diffId, parent, async (dir) => {
      await rm(dir, { recursive: true, force: true });
      await rename(join(b.tmpDir, 'diff'), dir);
      return { diffId: b.diffId, size: b.contentSize };
    });
    const ingest = await store.openIngest(b.digest, b.size);
    let done = false;
    try {
      if (!ingest.exists) {
        await pipeline(createReadStream(join(b.tmpDir, 'layer.tar.gz'), { highWaterMark: 1 << 20 }), new Writable({
          write(chunk: Buffer, _enc, cb) { ingest.write(chunk).then(() => cb(), cb); },
        }));
      }
      await ingest.commit();
      done = true;
    } finally {
      if (!done) await ingest.abort({ discard: true }).catch(() => undefined);
    }
  } finally {
    await rm(b.tmpDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

export async function commitContainer(opts: CommitOptions): Promise<CommitResult> {
  // GC must not collect what this writes before the ref names it (store/gc.ts: leases)
  const releaseLease = await opts.store.lease();
  try {
    const what = opts.what ?? `commit ${opts.upperDir}`;
    const { store, parent } = opts;
    const ref = parseReference(opts.ref);
    if (ref.digest !== undefined) throw fail('EINVAL', `${what}: target "${opts.ref}" names a digest; give a name[:tag]`);
    const name = refName(ref);
    const changes = (opts.changes ?? []).map((c) => parseChange(c));
    const upper = await stat(opts.upperDir).catch((err) => {
      throw fail('ENOTFOUND', `${what}: its upper directory ${opts.upperDir}: ${messageOf(err)}`, err);
    });
    if (!upper.isDirectory()) throw fail('EINVAL', `${what}: ${opts.upperDir} is not a directory`);

    const built = await buildLayer(store, upperDirTar(opts.upperDir, { sys: opts.sys, what, skipEmptyFiles: MOUNT_POINT_FILES }), opts.sys);
    const parentDiffIds = parent.config.rootfs.diff_ids;
    const diffIds = [...parentDiffIds, built.diffId];
    const chain = chainIds(diffIds);
    await publishLayer(store, built, chain[chain.length - 1]!, parent.chain.length > 0 ? parent.chain[parent.chain.length - 1]! : null);

    const now = (opts.now ?? new Date()).toISOString();
    const config = JSON.parse((await store.readBlob(parent.imageId)).toString('utf8')) as Record<string, unknown>;
    config.created = now;
    if (opts.author !== undefined) config.author = opts.author;
    const exec: ExecConfig = { ...((config.config as ExecConfig | undefined) ?? {}) };
    for (const c of changes) applyChange(exec, c);
    config.config = exec;
    config.rootfs = { type: 'layers', diff_ids: diffIds };
    const history: HistoryEntry[] = Array.isArray(config.history) ? [...(config.history as HistoryEntry[])] : [];
    const entry: HistoryEntry = { created: now };
    if (opts.author !== undefined) entry.author = opts.author;
    entry.created_by = opts.createdBy ?? 'tspod commit';
    if (opts.message !== undefined && opts.message !== '') entry.comment = opts.message;
    history.push(entry);
    config.history = history;
    delete config.container;
    delete config.container_config;
    const configBytes = Buffer.from(JSON.stringify(config));
    const imageId = await store.putBlob(configBytes);

    const docker = parent.manifest.mediaType === MediaType.DockerManifest;
    const layer: Descriptor = { mediaType: docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip, digest: built.digest, size: built.size };
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: docker ? MediaType.DockerManifest : MediaType.OciManifest,
      config: { mediaType: docker ? MediaType.DockerConfig : MediaType.OciConfig, digest: imageId, size: configBytes.length },
      layers: [...parent.manifest.layers.map(stripDescriptor), layer],
    };
    const manifestDigest = await store.putBlob(Buffer.from(JSON.stringify(manifest)));
    await store.setRef(name, manifestDigest);
    return {
      name,
      familiarName: familiarString(parseReference(name)),
      imageId,
      manifestDigest,
      layer: { digest: built.digest, diffId: built.diffId, size: built.size, uncompressedSize: built.uncompressedSize },
    };
  } finally {
    await releaseLease();
  }
}

function stripDescriptor(d: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.urls) out.urls = d.urls;
  if (d.annotations) out.annotations = d.annotations;
  return out;
}

// ---------------------------------------------------------------- -c / --change

export type Change =
  | { kind: 'CMD' | 'ENTRYPOINT'; value: string[] }
  | { kind: 'ENV'; pairs: [string, string][] }
  | { kind: 'LABEL'; pairs: [string, string][] }
  | { kind: 'WORKDIR' | 'USER' | 'STOPSIGNAL'; value: string }
  | { kind: 'EXPOSE'; ports: string[] }
  | { kind: 'VOLUME'; paths: string[] };

const SUPPORTED = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'];

function jsonArray(text: string): string[] | undefined {
  if (!text.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[];
  } catch {
    /* not JSON: shell form */
  }
  return undefined;
}

/** Splits on whitespace, honouring double and single quotes (as docker's change parser does for ENV/LABEL). */
function words(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | undefined;
  let any = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      any = true;
    } else if (/\s/.test(ch)) {
      if (cur !== '' || any) out.push(cur);
      cur = '';
      any = false;
    } else if (ch === '\\' && i + 1 < text.length) {
      cur += text[++i];
    } else {
      cur += ch;
    }
  }
  if (quote) throw fail('EINVAL', `unterminated quote in "${text}"`);
  if (cur !== '' || any) out.push(cur);
  return out;
}

function pairs(kind: string, rest: string, change: string): [string, string][] {
  const ws = words(rest);
  if (ws.length === 0) throw fail('EINVAL', `invalid change "${change}": ${kind} needs arguments`);
  if (!ws[0]!.includes('=')) {
    // legacy form: ENV KEY value with spaces
    const m = /^(\S+)\s+([\s\S]*)$/.exec(rest.trim());
    if (!m) throw fail('EINVAL', `invalid change "${change}": ${kind} needs KEY=VALUE`);
    return [[m[1]!, words(m[2]!).join(' ')]];
  }
  return ws.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) throw fail('EINVAL', `invalid change "${change}": "${w}" is not KEY=VALUE`);
    return [w.slice(0, i), w.slice(i + 1)] as [string, string];
  });
}

/** Parses one `-c` instruction, as docker commit --change does. EINVAL naming the change otherwise. */
export function parseChange(change: string): Change {
  const m = /^\s*([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(change);
  if (!m) throw fail('EINVAL', `invalid change "${change}": want an instruction such as CMD ["sh"]`);
  const kind = m[1]!.toUpperCase();
  const rest = (m[2] ?? '').trim();
  if (!SUPPORTED.includes(kind)) {
    throw fail('EINVAL', `invalid change "${change}": ${kind} is not supported (use one of ${SUPPORTED.join(', ')})`);
  }
  if (rest === '') throw fail('EINVAL', `invalid change "${change}": ${kind} needs an argument`);
  switch (kind) {
    case 'CMD':
    case 'ENTRYPOINT':
      return { kind, value: jsonArray(rest) ?? ['/bin/sh', '-c', rest] };
    case 'ENV':
    case 'LABEL':
      return { kind, pairs: pairs(kind, rest, change) };
    case 'WORKDIR':
    case 'USER':
    case 'STOPSIGNAL':
      return { kind, value: rest };
    case 'EXPOSE': {
      const ports = words(rest).map((p) => {
        const pm = /^([0-9]{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(p);
        if (!pm || Number(pm[1]) > 65535 || Number(pm[1]) === 0) throw fail('EINVAL', `invalid change "${change}": invalid port "${p}"`);
        return `${Number(pm[1])}/${(pm[2] ?? 'tcp').toLowerCase()}`;
      });
      return { kind, ports };
    }
    default: // VOLUME
      return { kind: 'VOLUME', paths: jsonArray(rest) ?? words(rest) };
  }
}

export function applyChange(c: ExecConfig, ch: Change): void {
  switch (ch.kind) {
    case 'CMD':
      c.Cmd = ch.value;
      break;
    case 'ENTRYPOINT':
      c.Entrypoint = ch.value;
      break;
    case 'ENV': {
      const env = [...(c.Env ?? [])];
      for (const [k, v] of ch.pairs) {
        const i = env.findIndex((e) => e === k || e.startsWith(k + '='));
        if (i >= 0) env[i] = `${k}=${v}`;
        else env.push(`${k}=${v}`);
      }
      c.Env = env;
      break;
    }
    case 'LABEL':
      c.Labels = { ...(c.Labels ?? {}), ...Object.fromEntries(ch.pairs) };
      break;
    case 'WORKDIR':
      c.WorkingDir = ch.value;
      break;
    case 'USER':
      c.User = ch.value;
      break;
    case 'STOPSIGNAL':
      c.StopSignal = ch.value;
      break;
    case 'EXPOSE':
      c.ExposedPorts = { ...(c.ExposedPorts ?? {}), ...Object.fromEntries(ch.ports.map((p) => [p, {}])) };
      break;
    case 'VOLUME':
      c.Volumes = { ...(c.Volumes ?? {}), ...Object.fromEntries(ch.paths.map((p) => [p, {}])) };
      break;
  }
}
