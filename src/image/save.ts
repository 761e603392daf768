/**
 * save: local images → one archive, in either of the two formats the other tools read:
 *
 * docker-archive (docker save, podman save, skopeo docker-archive:): a tar with
 *   <diffID hex>.tar      each layer UNCOMPRESSED (its sha256 is the diffID, which loaders check)
 *   <imageID hex>.json    the config, byte for byte (so the image ID survives the trip)
 *   manifest.json         [{"Config","RepoTags","Layers"}], one item per image
 *   repositories          {"repo":{"tag":"<top layer id>"}} for old docker versions
 * oci-archive (podman save --format oci-archive, skopeo oci-archive:): an OCI image layout in a tar:
 *   oci-layout, index.json (one manifest per name, annotated with org.opencontainers.image.ref.name
 *   = the full name, as podman writes it), blobs/sha256/<hex> (manifest, config, compressed layers
 *   as stored). A Docker v2 manifest is rewritten with OCI media types (blobs are unchanged).
 *
 * Entries are written in a fixed order with fixed metadata (mode 0644, mtime 0), so saving the same
 * images twice gives the same bytes. The archive is written to FILE.tmp-* and renamed into place.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Store } from '../../store/index.js';
import { tarEnd, tarHeader, tarPadding } from '../unpack/diff-tar.js';
import { familiarString, formatReference, parseReference } from '../reference/index.js';
import { MediaType, type Descriptor, type Digest, type ImageManifest } from '../oci/types.js';
import { digestHex, digestOf, newHash, sha256 } from '../util/digest.js';
import { fail, messageOf, TspodError } from '../util/errors.js';
import { findImage, type LocalImage } from './local.js';

export type ArchiveFormat = 'docker-archive' | 'oci-archive';

export interface SaveOptions {
  store: Store;
  format?: ArchiveFormat;
  /** A file path; the archive is written to `stream` instead when this is undefined. */
  output?: string;
  stream?: Writable;
}

export interface SaveResult {
  images: { name?: string; imageId: Digest; manifestDigest: Digest }[];
  bytes: number;
}

/** One entry of the archive: a header and a content producer. */
interface Entry {
  name: string;
  size: number;
  content: () => AsyncIterable<Buffer> | Iterable<Buffer>;
}

function bytesEntry(name: string, data: Buffer): Entry {
  return { name, size: data.length, content: () => [data] };
}

async function* archive(entries: Entry[]): AsyncGenerator<Buffer> {
  for (const e of entries) {
    yield tarHeader({ name: e.name, type: 'file', mode: 0o644, uid: 0, gid: 0, size: e.size, mtime: 0 });
    let n = 0;
    for await (const c of e.content()) {
      n += c.length;
      yield c;
    }
    if (n !== e.size) throw fail('EINTERNAL', `save: entry ${e.name} has ${n} bytes, expected ${e.size}`);
    yield tarPadding(e.size);
  }
  yield tarEnd();
}

function isGzip(desc: Descriptor): boolean {
  return desc.mediaType.endsWith('gzip');
}

/** The uncompressed layer stream of a stored blob (gzip or plain tar). */
function uncompressed(store: Store, desc: Descriptor): Readable {
  const raw = createReadStream(store.blobPath(desc.digest), { highWaterMark: 1 << 20 });
  if (!isGzip(desc)) return raw;
  const gz = createGunzip({ chunkSize: 256 * 1024 });
  raw.on('error', (err) => gz.destroy(err));
  return raw.pipe(gz);
}

/** Size and sha256 of the uncompressed layer (one pass). */
async function measure(store: Store, desc: Descriptor): Promise<{ size: number; diffId: Digest }> {
  const h = newHash();
  let size = 0;
  await pipeline(uncompressed(store, desc), new Writable({
    write(c: Buffer, _e, cb) { h.update(c); size += c.length; cb(); },
  }));
  return { size, diffId: digestOf(h) };
}

function checkLayerType(desc: Descriptor, what: string): void {
  const ok = desc.mediaType.endsWith('.tar') || desc.mediaType.endsWith('gzip') || desc.mediaType.endsWith('tar.gzip');
  if (!ok) throw fail('EUNSUPPORTED', `${what}: layer ${desc.digest} has media type ${desc.mediaType}; only gzip and plain tar layers can be saved`);
}

async function dockerEntries(store: Store, images: LocalImage[]): Promise<Entry[]> {
  const entries: Entry[] = [];
  const seenLayers = new Set<string>();
  const seenConfigs = new Set<string>();
  const manifest: { Config: string; RepoTags: string[] | null; Layers: string[] }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const img of images) {
    const what = `save ${img.name ?? img.imageId}`;
    const layers: string[] = [];
    for (let i = 0; i < img.manifest.layers.length; i++) {
      const desc = img.manifest.layers[i]!;
      checkLayerType(desc, what);
      const diffId = img.config.rootfs.diff_ids[i]!;
      const file = `${digestHex(diffId)}.tar`;
      layers.push(file);
      if (seenLayers.has(file)) continue;
      seenLayers.add(file);
      const m = await measure(store, desc);
      if (m.diffId !== diffId) throw fail('EDIGEST', `${what}: layer ${desc.digest} uncompresses to ${m.diffId}, the config says ${diffId}`);
      entries.push({ name: file, size: m.size, content: () => uncompressed(store, desc) });
    }
    const configFile = `${digestHex(img.imageId)}.json`;
    if (!seenConfigs.has(configFile)) {
      seenConfigs.add(configFile);
      entries.push(bytesEntry(configFile, await store.readBlob(img.imageId)));
    }
    const tags: string[] = [];
    if (img.name !== undefined) {
      const ref = parseReference(img.name);
      if (ref.tag !== undefined) {
        tags.push(familiarString(ref));
        const repo = familiarString({ registry: ref.registry, repository: ref.repository });
        const top = img.config.rootfs.diff_ids.at(-1);
        if (top) (repositories[repo] ??= {})[ref.tag] = digestHex(top);
      }
    }
    const existing = manifest.find((m) => m.Config === configFile);
    if (existing) existing.RepoTags = [...(existing.RepoTags ?? []), ...tags];
    else manifest.push({ Config: configFile, RepoTags: tags.length > 0 ? tags : null, Layers: layers });
  }
  entries.push(bytesEntry('manifest.json', Buffer.from(JSON.stringify(manifest))));
  entries.push(bytesEntry('repositories', Buffer.from(JSON.stringify(repositories))));
  return entries;
}

/** The manifest as an OCI manifest (media types rewritten when it is a Docker v2 one). */
export function ociManifest(manifest: ImageManifest, bytes: Buffer): { bytes: Buffer; digest: Digest } {
  if (manifest.mediaType === MediaType.OciManifest || (manifest.mediaType === undefined && !bytes.includes('vnd.docker'))) {
    return { bytes, digest: sha256(bytes) };
  }
  const layerType = (mt: string) => (mt === MediaType.DockerLayerGzip ? MediaType.OciLayerGzip
    : mt === MediaType.DockerLayerForeignGzip ? MediaType.OciLayerNondistributableGzip : mt);
  const m: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: manifest.config.digest, size: manifest.config.size },
    layers: manifest.layers.map((l) => ({ ...l, mediaType: layerType(l.mediaType) })),
  };
  if (manifest.annotations) m.annotations = manifest.annotations;
  const out = Buffer.from(JSON.stringify(m));
  return { bytes: out, digest: sha256(out) };
}

async function ociEntries(store: Store, images: LocalImage[]): Promise<Entry[]> {
  const blobs = new Map<string, Entry>();
  const index: Descriptor[] = [];
  const blobEntry = (digest: Digest, size: number): Entry => ({
    name: `blobs/sha256/${digestHex(digest)}`,
    size,
    content: () => createReadStream(store.blobPath(digest), { highWaterMark: 1 << 20 }),
  });
  for (const img of images) {
    const m = ociManifest(img.manifest, await store.readBlob(img.manifestDigest));
    for (const l of img.manifest.layers) blobs.set(l.digest, blobEntry(l.digest, l.size));
    blobs.set(img.imageId, blobEntry(img.imageId, img.manifest.config.size));
    blobs.set(m.digest, bytesEntry(`blobs/sha256/${digestHex(m.digest)}`, m.bytes));
    const d: Descriptor = { mediaType: MediaType.OciManifest, digest: m.digest, size: m.bytes.length };
    if (img.name !== undefined) d.annotations = { 'org.opencontainers.image.ref.name': formatReference(parseReference(img.name)) };
    index.push(d);
  }
  return [
    bytesEntry('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }))),
    bytesEntry('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: index }))),
    ...[...blobs.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  ];
}

export async function saveImages(refs: string[], opts: SaveOptions): Promise<SaveResult> {
  const releaseLease = await opts.store.lease();
  try {
    if (refs.length === 0) throw fail('EINVAL', 'save: name at least one image');
    const format = opts.format ?? 'docker-archive';
    if (format !== 'docker-archive' && format !== 'oci-archive') {
      throw fail('EINVAL', `save: unknown format "${format as string}": use docker-archive or oci-archive`);
    }
    const images: LocalImage[] = [];
    for (const r of refs) images.push(await findImage(opts.store, r));
    const entries = format === 'docker-archive' ? await dockerEntries(opts.store, images) : await ociEntries(opts.store, images);
    let bytes = 0;
    const counter = async function* (src: AsyncIterable<Buffer>) {
      for await (const c of src) {
        bytes += c.length;
        yield c;
      }
    };
    if (opts.output !== undefined) {
      const tmp = `${opts.output}.tmp-${randomBytes(4).toString('hex')}`;
      try {
        await pipeline(Readable.from(counter(archive(entries))), createWriteStream(tmp, { mode: 0o644 }));
        await rename(tmp, opts.output);
      } catch (err) {
        await rm(tmp, { force: true }).catch(() => undefined);
        if (err instanceof TspodError) throw err;
        throw fail('ESYS', `save to ${opts.output}: ${messageOf(err)}`, err);
      }
    } else if (opts.stream) {
      await pipeline(Readable.from(counter(archive(entries))), opts.stream, { end: false });
    } else {
      throw fail('EINVAL', 'save: no output');
    }
    return { images: images.map((i) => ({ name: i.name, imageId: i.imageId, manifestDigest: i.manifestDigest })), bytes };
  } finally {
    await releaseLease();
  }
}
