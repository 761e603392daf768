/**
 * Removing images and reclaiming their space: `rmi` (untag, then collect what only that image
 * used) and `image prune` (collect everything unreferenced; with `all`, first untag every image
 * no container uses). The collection itself is the store's GC (store/gc.ts): marking is always
 * from every root, so a layer shared with another image or used by a container is never removed.
 */
import type { GcResult, Store } from '../../store/index.js';
import type { Digest } from '../oci/types.js';
import { parseReference, referenceName } from '../reference/index.js';
import { fail } from '../util/errors.js';
import { findImage, loadImage, untagImage } from './local.js';

export interface RemoveResult {
  /** Ref names removed, as docker prints them after "Untagged:". */
  untagged: string[];
  /** The image ID (when its config went) then the chainIDs of the layers removed, top first: docker's "Deleted:" lines. */
  deleted: Digest[];
  reclaimed: number;
}

/** docker rmi: untags; when no name is left for the image, removes its blobs and the layers nothing else uses. */
export async function removeImage(store: Store, text: string, opts: { force?: boolean } = {}): Promise<RemoveResult> {
  const img = await findImage(store, text);
  if (!opts.force) {
    const names = (await store.listRefs()).filter((r) => r.digest === img.manifestDigest);
    // by ID, docker removes every tag of one repository (a:1 and a:2) but not of several (a:1 and b:1)
    if (img.byId && new Set(names.map((r) => repositoryOf(r.name))).size > 1) {
      throw fail('ESTATE', `conflict: unable to delete ${img.imageId.slice(7, 19)} (must be forced) - image is referenced in multiple repositories`);
    }
    const lastName = img.byId || names.length <= 1;
    const user = (await store.listSnapshots()).find((s) => s.chain.join(' ') === img.chain.join(' '));
    if (lastName && user) {
      throw fail('ESTATE', `conflict: unable to remove repository reference "${text}" (must force) - container ${user.id.slice(0, 12)} is using its referenced image ${img.imageId.slice(7, 19)}`);
    }
  }
  const untagged = await untagImage(store, text);
  const res: RemoveResult = { untagged, deleted: [], reclaimed: 0 };
  if ((await store.listRefs()).some((r) => r.digest === img.manifestDigest)) return res;
  const gc = await store.gc({
    candidates: {
      blobs: [img.manifestDigest, img.manifest.config.digest, ...img.manifest.layers.map((l) => l.digest)],
      layers: img.chain,
    },
  });
  return { untagged, ...deletedLines(gc, [img]) };
}

/** "docker.io/library/busybox:latest" → "docker.io/library/busybox". */
function repositoryOf(name: string): string {
  try {
    return referenceName(parseReference(name));
  } catch {
    return name;
  }
}

function deletedLines(gc: GcResult, images: { imageId: Digest; chain: Digest[] }[]): { deleted: Digest[]; reclaimed: number } {
  const blobs = new Set(gc.blobs.map((b) => b.digest));
  const layers = new Set(gc.layers.map((l) => l.chainId));
  const deleted: Digest[] = [];
  for (const img of images) {
    if (blobs.has(img.imageId)) deleted.push(img.imageId);
    for (const c of [...img.chain].reverse()) {
      if (layers.has(c)) {
        deleted.push(c);
        layers.delete(c);
      }
    }
  }
  deleted.push(...layers); // layers of no listed image (left by an earlier rmi or a crash)
  return { deleted, reclaimed: gc.reclaimed };
}

export interface PruneResult extends RemoveResult {
  /** Everything the GC removed. */
  gc: GcResult;
}

/**
 * docker image prune: tspod has no dangling (untagged but kept) images, so without `all` this
 * frees what no ref, container or running pull uses (blobs, layers, partial downloads). With
 * `all`, every image that no container (snapshot) is built on is untagged first.
 */
export async function pruneImages(store: Store, opts: { all?: boolean } = {}): Promise<PruneResult> {
  const untagged: string[] = [];
  const images: { imageId: Digest; chain: Digest[] }[] = [];
  if (opts.all) {
    const used = new Set((await store.listSnapshots()).map((s) => s.chain.join(' ')));
    for (const r of await store.listRefs()) {
      const img = await loadImage(store, r.digest, r.name).catch(() => undefined);
      if (img && used.has(img.chain.join(' '))) continue;
      await store.deleteRef(r.name);
      untagged.push(r.name);
      if (img) images.push(img);
    }
  }
  const gc = await store.gc();
  return { untagged, ...deletedLines(gc, images), gc };
}
