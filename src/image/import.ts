/**
 * import: a root file system tarball (plain or gzipped, e.g. from `export`) → a one-layer image
 * (docker import). The layer goes through the same single pass as commit (diffID, unpack, gzip);
 * the config is new: host platform, -c changes, one history entry.
 */
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Store } from '../../store/index.js';
import { hostPlatform } from '../oci/platform.js';
import { MediaType, type Digest, type ExecConfig, type ImageManifest } from '../oci/types.js';
import { familiarString, parseReference } from '../reference/index.js';
import { digestHex } from '../util/digest.js';
import { fail } from '../util/errors.js';
import { applyChange, buildLayer, parseChange, publishLayer } from './commit.js';
import { refName } from './pull.js';

export interface ImportOptions {
  store: Store;
  ref?: string;
  message?: string;
  changes?: string[];
  now?: Date;
}

export interface ImportResult {
  name: string;
  familiarName: string;
  imageId: Digest;
  manifestDigest: Digest;
}

async function plainTar(input: Readable): Promise<Readable> {
  const iter = input[Symbol.asyncIterator]();
  const first = await iter.next();
  const head = first.done ? Buffer.alloc(0) : (first.value as Buffer);
  const all = Readable.from((async function* () {
    if (head.length > 0) yield head;
    for (;;) {
      const r = await iter.next();
      if (r.done) return;
      yield r.value as Buffer;
    }
  })());
  if (head.length === 0) throw fail('EINVAL', 'import: the input is empty');
  if (head[0] === 0x1f && head[1] === 0x8b) return all.pipe(createGunzip({ chunkSize: 256 * 1024 }));
  return all;
}

export async function importTarball(input: Readable, opts: ImportOptions): Promise<ImportResult> {
  // GC must not collect what this writes before the ref names it (store/gc.ts: leases)
  const releaseLease = await opts.store.lease();
  try {
    const { store } = opts;
    const changes = (opts.changes ?? []).map((c) => parseChange(c));
    if (opts.ref !== undefined && parseReference(opts.ref).digest !== undefined) {
      throw fail('EINVAL', `import: target "${opts.ref}" names a digest; give name[:tag]`);
    }
    const built = await buildLayer(store, await plainTar(input));
    await publishLayer(store, built, built.diffId, null);
    const now = (opts.now ?? new Date()).toISOString();
    const p = hostPlatform();
    const exec: ExecConfig = {};
    for (const c of changes) applyChange(exec, c);
    const config = {
      created: now,
      architecture: p.architecture,
      os: p.os,
      ...(p.variant ? { variant: p.variant } : {}),
      config: exec,
      rootfs: { type: 'layers', diff_ids: [built.diffId] },
      history: [{ created: now, created_by: 'tspod import', ...(opts.message ? { comment: opts.message } : {}) }],
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const imageId = await store.putBlob(configBytes);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: imageId, size: configBytes.length },
      layers: [{ mediaType: MediaType.OciLayerGzip, digest: built.digest, size: built.size }],
    };
    const manifestDigest = await store.putBlob(Buffer.from(JSON.stringify(manifest)));
    const name = refName(parseReference(opts.ref ?? `localhost/imported-${digestHex(imageId).slice(0, 12)}:latest`));
    await store.setRef(name, manifestDigest);
    return { name, familiarName: familiarString(parseReference(name)), imageId, manifestDigest };
  } finally {
    await releaseLease();
  }
}
