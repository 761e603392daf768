/**
 * load: an archive → images in the store. Reads both formats save writes, and what docker save,
 * podman save and skopeo copy write:
 *   - docker-archive: manifest.json lists each image's config file, layer files and RepoTags. Layer
 *     files may be plain or gzipped tars, and may be symlinks (docker < 25 links duplicate layers;
 *     podman links <id>/layer.tar to <diffID>.tar); docker 25+ points into blobs/sha256/. Each layer
 *     is unpacked once and checked against the config's diff_ids; the config is kept byte for byte,
 *     so the image ID is the same as in the archive. The manifest is a new OCI manifest with the
 *     layers gzipped (deterministically, so loading twice gives the same digests).
 *   - oci-archive: an OCI layout (oci-layout, index.json, blobs/). Blobs are verified against their
 *     digests and stored as they are, so the manifest digest is the same as in the archive; an index
 *     entry that is itself an index is resolved for the host platform, as pull does. Names come from
 *     the io.containerd.image.name or org.opencontainers.image.ref.name annotation.
 * An image that comes without a usable name is stored as localhost/loaded-<image ID 12>:latest (the
 * store keeps only named images; an unnamed one would be garbage at the next GC).
 *
 * The archive (plain or gzipped) is first extracted into the store's tmp/ (regular files only, under
 * generated names; no path from the archive is ever used on disk), and removed afterwards.
 */
import { closeSync, createReadStream, openSync, writeSync, constants as fsc } from 'node:fs';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Store } from '../../store/index.js';
import { TarReader, type TarEntry } from '../unpack/tar-reader.js';
import { cleanEntryPath } from '../unpack/writer.js';
import { unpackLayer } from '../unpack/unpack.js';
import { parseManifest } from '../oci/manifest.js';
import { parseImageConfig } from '../oci/config.js';
import { hostPlatform, selectManifest } from '../oci/platform.js';
import { MediaType, type Descriptor, type Digest, type ImageManifest } from '../oci/types.js';
import { familiarString, parseReference } from '../reference/index.js';
import { chainIds, digestHex, isDigest, sha256 } from '../util/digest.js';
import { fail, messageOf, TspodError } from '../util/errors.js';
import { buildLayer, publishLayer } from './commit.js';
import { refName } from './pull.js';

export interface LoadOptions {
  store: Store;
  /** Names errors ("load /tmp/x.tar"). */
  what?: string;
}

export interface LoadResult {
  format: 'docker-archive' | 'oci-archive';
  images: { name: string; familiarName: string; imageId: Digest; manifestDigest: Digest }[];
}

interface Extracted {
  dir: string;
  files: Map<string, string>;
  links: Map<string, string>;
}

async function extract(input: Readable, dir: string, what: string): Promise<Extracted> {
  const files = new Map<string, string>();
  const links = new Map<string, string>();
  let n = 0;
  let fd: number | undefined;
  const reader = new TarReader({
    entry(e: TarEntry) {
      const name = cleanEntryPath(e.name);
      if (e.type === 'file') {
        const path = join(dir, `f${n++}`);
        fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
        files.set(name, path);
        links.delete(name);
      } else if (e.type === 'symlink') {
        links.set(name, e.linkname.startsWith('/') ? cleanEntryPath(e.linkname) : posix.normalize(posix.join(posix.dirname(name), e.linkname)));
      } else if (e.type === 'link') {
        links.set(name, cleanEntryPath(e.linkname));
      }
    },
    data(chunk: Buffer) {
      if (fd === undefined) return;
      let off = 0;
      while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
    },
    entryEnd() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  });
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      try {
        reader.write(chunk);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    },
  });
  // sniff gzip on the first bytes
  const head: Buffer[] = [];
  const iter = input[Symbol.asyncIterator]();
  const firstChunk = await iter.next();
  if (!firstChunk.done) head.push(firstChunk.value as Buffer);
  const rest = Readable.from((async function* () {
    for (const h of head) yield h;
    for (;;) {
      const r = await iter.next();
      if (r.done) return;
      yield r.value as Buffer;
    }
  })());
  const gz = head.length > 0 && head[0]![0] === 0x1f && head[0]![1] === 0x8b;
  try {
    if (gz) await pipeline(rest, createGunzip({ chunkSize: 256 * 1024 }), sink);
    else await pipeline(rest, sink);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (files.size === 0) throw fail('EINVAL', `${what}: the input is empty or not a tar archive`);
  if (!reader.done) throw fail('EINVAL', `${what}: the archive is truncated`);
  return { dir, files, links };
}

function resolvePath(x: Extracted, name: string, what: string): string {
  let cur = cleanEntryPath(name);
  for (let hops = 0; hops < 16; hops++) {
    const f = x.files.get(cur);
    if (f !== undefined) return f;
    const l = x.links.get(cur);
    if (l === undefined) break;
    cur = cleanEntryPath(l);
  }
  throw fail('EINVAL', `${what}: the archive has no file "${name}"`);
}

function json<T>(bytes: Buffer, what: string, file: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (err) {
    throw fail('EINVAL', `${what}: ${file} is not valid JSON: ${messageOf(err)}`, err);
  }
}

/** A plain-tar stream of a layer file that may be gzipped. */
async function layerStream(path: string, what: string, name: string): Promise<Readable> {
  const fh = await open(path, 'r');
  const head = Buffer.alloc(4);
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  if (head[0] === 0x1f && head[1] === 0x8b) {
    const gz = createGunzip({ chunkSize: 256 * 1024 });
    raw.on('error', (err) => gz.destroy(err));
    return raw.pipe(gz);
  }
  if (head.equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) {
    throw fail('EUNSUPPORTED', `${what}: layer ${name} is zstd-compressed; load supports plain and gzip layers`);
  }
  return raw;
}

async function nameImage(store: Store, names: string[], imageId: Digest, manifestDigest: Digest): Promise<LoadResult['images']> {
  const out: LoadResult['images'] = [];
  const list = names.length > 0 ? names : [`localhost/loaded-${digestHex(imageId).slice(0, 12)}:latest`];
  for (const n of list) {
    const name = refName(parseReference(n));
    await store.setRef(name, manifestDigest);
    out.push({ name, familiarName: familiarString(parseReference(name)), imageId, manifestDigest });
  }
  return out;
}

async function loadDocker(store: Store, x: Extracted, what: string): Promise<LoadResult> {
  const items = json<{ Config?: unknown; RepoTags?: unknown; Layers?: unknown }[]>(await readFile(resolvePath(x, 'manifest.json', what)), what, 'manifest.json');
  if (!Array.isArray(items) || items.length === 0) throw fail('EINVAL', `${what}: manifest.json lists no images`);
  const images: LoadResult['images'] = [];
  for (const item of items) {
    if (typeof item?.Config !== 'string' || !Array.isArray(item.Layers) || !item.Layers.every((l) => typeof l === 'string')) {
      throw fail('EINVAL', `${what}: manifest.json: an item without Config or Layers`);
    }
    const configBytes = await readFile(resolvePath(x, item.Config, what));
    const config = parseImageConfig(configBytes, `${item.Config} in ${what}`);
    const diffIds = config.rootfs.diff_ids;
    const layerFiles = item.Layers as string[];
    if (diffIds.length !== layerFiles.length) {
      throw fail('EINVAL', `${what}: ${item.Config} lists ${diffIds.length} diff_ids but manifest.json ${layerFiles.length} layers`);
    }
    const chain = chainIds(diffIds);
    const layers: Descriptor[] = [];
    for (let i = 0; i < layerFiles.length; i++) {
      const b = await buildLayer(store, await layerStream(resolvePath(x, layerFiles[i]!, what), what, layerFiles[i]!));
      if (b.diffId !== diffIds[i]) {
        await rm(b.tmpDir, { recursive: true, force: true });
        throw fail('EDIGEST', `${what}: layer ${layerFiles[i]} has diffID ${b.diffId}, the config says ${diffIds[i]}`);
      }
      await publishLayer(store, b, chain[i]!, i === 0 ? null : chain[i - 1]!);
      layers.push({ mediaType: MediaType.OciLayerGzip, digest: b.digest, size: b.size });
    }
    const imageId = await store.putBlob(configBytes);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: imageId, size: configBytes.length },
      layers,
    };
    const manifestDigest = await store.putBlob(Buffer.from(JSON.stringify(manifest)));
    const tags = Array.isArray(item.RepoTags) ? (item.RepoTags as unknown[]).filter((t): t is string => typeof t === 'string') : [];
    images.push(...(await nameImage(store, tags, imageId, manifestDigest)));
  }
  return { format: 'docker-archive', images };
}

async function readVerified(x: Extracted, d: Descriptor, what: string): Promise<Buffer> {
  if (!isDigest(d.digest)) throw fail('EINVAL', `${what}: invalid digest "${d.digest}"`);
  const bytes = await readFile(resolvePath(x, `blobs/sha256/${digestHex(d.digest)}`, what));
  if (bytes.length !== d.size || sha256(bytes) !== d.digest) throw fail('EDIGEST', `${what}: blob ${d.digest} does not match its descriptor`);
  return bytes;
}

/** The name an index entry's annotations give it, when they give a full reference. */
function annotatedName(d: Descriptor): string | undefined {
  const a = d.annotations ?? {};
  for (const v of [a['io.containerd.image.name'], a['org.opencontainers.image.ref.name']]) {
    if (typeof v !== 'string' || v === '' || !/[/:]/.test(v)) continue; // a bare tag names no repository
    try {
      const ref = parseReference(v);
      if (ref.digest === undefined || ref.tag !== undefined) return v;
    } catch {
      /* not a reference */
    }
  }
  return undefined;
}

async function loadOci(store: Store, x: Extracted, what: string): Promise<LoadResult> {
  const index = json<{ manifests?: unknown }>(await readFile(resolvePath(x, 'index.json', what)), what, 'index.json');
  if (!Array.isArray(index.manifests) || index.manifests.length === 0) throw fail('EINVAL', `${what}: index.json lists no manifests`);
  const images: LoadResult['images'] = [];
  for (const top of index.manifests as Descriptor[]) {
    let desc = top;
    let bytes = await readVerified(x, desc, what);
    let parsed = parseManifest(bytes, desc.mediaType, `${what} ${desc.digest}`);
    if (parsed.kind === 'index') {
      await store.putBlob(bytes, { digest: desc.digest });
      desc = selectManifest(parsed.index, hostPlatform(), `${what} ${desc.digest}`);
      bytes = await readVerified(x, desc, what);
      parsed = parseManifest(bytes, desc.mediaType, `${what} ${desc.digest}`);
      if (parsed.kind !== 'manifest') throw fail('EUNSUPPORTED', `${what}: nested index ${desc.digest}`);
    }
    const m = parsed.manifest;
    const configBytes = await readVerified(x, m.config, what);
    const config = parseImageConfig(configBytes, `config ${m.config.digest} in ${what}`);
    if (config.rootfs.diff_ids.length !== m.layers.length) {
      throw fail('EINVAL', `${what}: manifest ${desc.digest} has ${m.layers.length} layers, its config ${config.rootfs.diff_ids.length} diff_ids`);
    }
    const chain = chainIds(config.rootfs.diff_ids);
    for (let i = 0; i < m.layers.length; i++) {
      const l = m.layers[i]!;
      const path = resolvePath(x, `blobs/sha256/${digestHex(l.digest)}`, what);
      const ingest = await store.openIngest(l.digest, l.size);
      let ok = false;
      try {
        if (!ingest.exists) {
          await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), new Writable({
            write(c: Buffer, _e, cb) { ingest.write(c).then(() => cb(), cb); },
          }));
        }
        await ingest.commit();
        ok = true;
      } finally {
        if (!ok) await ingest.abort({ discard: true }).catch(() => undefined);
      }
      await store.ensureLayer(chain[i]!, config.rootfs.diff_ids[i]!, i === 0 ? null : chain[i - 1]!, async (dir) => {
        const r = await unpackLayer(createReadStream(store.blobPath(l.digest), { highWaterMark: 1 << 20 }), l.mediaType, dir);
        return { diffId: r.diffId, size: r.size };
      });
    }
    await store.putBlob(configBytes, { digest: m.config.digest });
    await store.putBlob(bytes, { digest: desc.digest });
    const name = annotatedName(top);
    images.push(...(await nameImage(store, name ? [name] : [], m.config.digest, desc.digest)));
  }
  return { format: 'oci-archive', images };
}

export async function loadArchive(input: Readable, opts: LoadOptions): Promise<LoadResult> {
  // GC must not collect what this writes before the ref names it (store/gc.ts: leases)
  const releaseLease = await opts.store.lease();
  try {
    const what = opts.what ?? 'load';
    const dir = join(opts.store.root, 'tmp', 'load-' + randomBytes(6).toString('hex'));
    await mkdir(dir, { mode: 0o700 });
    try {
      let x: Extracted;
      try {
        x = await extract(input, dir, what);
      } catch (err) {
        if (err instanceof TspodError) throw fail(err.code, err.message.startsWith(what) ? err.message : `${what}: ${err.message}`, err);
        throw fail('EINVAL', `${what}: ${messageOf(err)}`, err);
      }
      if (x.files.has('manifest.json')) return await loadDocker(opts.store, x, what);
      if (x.files.has('index.json')) return await loadOci(opts.store, x, what);
      throw fail('EINVAL', `${what}: neither a docker-archive (no manifest.json) nor an oci-archive (no index.json)`);
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  } finally {
    await releaseLease();
  }
}
