/**
 * push: a local image → a registry. Every blob the manifest names (layers, then the config) is made
 * present in the target repository — skipped when the registry has it (HEAD), mounted when another
 * repository of the same registry that tspod pulled from or pushed to has it, uploaded otherwise —
 * and the manifest is PUT last, byte for byte as stored (its digest does not change).
 */
import { createReadStream } from 'node:fs';
import type { Store } from '../../store/index.js';
import type { EngineConfig } from '../config/index.js';
import { RegistryUploader, type BlobOutcome, type UploaderOptions } from '../registry/upload.js';
import type { CredentialSource } from '../registry/auth.js';
import { fileCredentials } from '../registry/credentials.js';
import { familiarString, formatReference, parseReference } from '../reference/index.js';
import { MediaType, type Descriptor, type Digest } from '../oci/types.js';
import { fail } from '../util/errors.js';
import { findImage, loadImage } from './local.js';

export type PushEvent = { type: 'blob'; digest: Digest; size: number; outcome: BlobOutcome | 'uploading' };

export interface PushOptions {
  store: Store;
  config: EngineConfig;
  credentials?: CredentialSource;
  /** Where to push (default: the image's own name). */
  destination?: string;
  onEvent?: (e: PushEvent) => void;
  /** Thresholds of the uploader (monolithicMax, chunkSize), and the environment for proxies and certs.d. */
  upload?: Pick<UploaderOptions, 'monolithicMax' | 'chunkSize' | 'env'>;
  /** For tests: read the uploader's counters. */
  onStats?: (s: RegistryUploader['stats']) => void;
}

export interface PushResult {
  name: string;
  familiarName: string;
  tag: string;
  manifestDigest: Digest;
  size: number;
}

export async function pushImage(source: string, opts: PushOptions): Promise<PushResult> {
  const releaseLease = await opts.store.lease();
  try {
    const { store } = opts;
    const img = await findImage(store, source);
    const dest = parseReference(opts.destination ?? (img.byId || img.name === undefined ? source : img.name));
    if (opts.destination === undefined && (img.byId || img.name === undefined)) {
      throw fail('EINVAL', `push ${source}: an image ID has no registry to push to; give a destination reference`);
    }
    const tag = dest.tag ?? 'latest';
    const destRef = { registry: dest.registry, repository: dest.repository, tag };
    const what = `push ${formatReference(destRef)}`;
    const manifestBytes = await store.readBlob(img.manifestDigest);
    const mediaType = img.manifest.mediaType ?? mediaTypeOf(manifestBytes) ?? MediaType.OciManifest;

    // Repositories of the same registry that hold each blob: candidates for a cross-repository mount.
    const mountFrom = new Map<Digest, string[]>();
    for (const r of await store.listRefs()) {
      let ref;
      try {
        ref = parseReference(r.name);
      } catch {
        continue;
      }
      if (ref.registry !== dest.registry || ref.repository === dest.repository) continue;
      const other = await loadImage(store, r.digest, r.name).catch(() => undefined);
      if (!other) continue;
      for (const d of [...other.manifest.layers, other.manifest.config]) {
        const list = mountFrom.get(d.digest) ?? [];
        if (!list.includes(ref.repository)) list.push(ref.repository);
        mountFrom.set(d.digest, list);
      }
    }

    const uploader = new RegistryUploader({ config: opts.config, credentials: opts.credentials ?? fileCredentials(), ...opts.upload });
    const emit = opts.onEvent ?? (() => {});
    try {
      // Foreign (non-distributable) layers stay where their URLs point, as docker push leaves them.
      const blobs: Descriptor[] = [...img.manifest.layers.filter((l) => !isForeign(l)), img.manifest.config];
      for (const b of blobs) {
        if (!(await store.hasBlob(b.digest))) {
          throw fail('ENOTFOUND', `${what}: blob ${b.digest} of ${source} is not in the local store`);
        }
      }
      for (const b of blobs) {
        emit({ type: 'blob', digest: b.digest, size: b.size, outcome: 'uploading' });
        const outcome = await uploader.pushBlob(destRef, b, () => createReadStream(store.blobPath(b.digest), { highWaterMark: 1 << 20 }), mountFrom.get(b.digest) ?? []);
        emit({ type: 'blob', digest: b.digest, size: b.size, outcome });
      }
      const digest = await uploader.putManifest(destRef, tag, manifestBytes, mediaType);
      if (digest !== img.manifestDigest) throw fail('EINTERNAL', `${what}: pushed manifest ${digest}, stored ${img.manifestDigest}`);
      const name = formatReference(destRef);
      opts.onStats?.(uploader.stats);
      return { name, familiarName: familiarString(destRef), tag, manifestDigest: digest, size: manifestBytes.length };
    } finally {
      await uploader.close();
    }
  } finally {
    await releaseLease();
  }
}

function isForeign(d: Descriptor): boolean {
  return (d.urls?.length ?? 0) > 0 && (d.mediaType === MediaType.DockerLayerForeignGzip || d.mediaType.includes('.nondistributable.'));
}

function mediaTypeOf(bytes: Buffer): string | undefined {
  try {
    const mt = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
    return typeof mt === 'string' ? mt : undefined;
  } catch {
    return undefined;
  }
}
