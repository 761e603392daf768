/**
 * Images as they are in the local store: resolve a reference (or an image ID prefix) to its
 * manifest and config, list them, and remove them.
 */
import type { Store } from '../../store/index.js';
import { parseReference, familiarName, referenceName } from '../reference/index.js';
import { parseManifest } from '../oci/manifest.js';
import { parseImageConfig } from '../oci/config.js';
import type { Digest, ImageConfig, ImageManifest } from '../oci/types.js';
import { chainIds } from '../util/digest.js';
import { fail, TspodError } from '../util/errors.js';
import { refName } from './pull.js';

export interface LocalImage {
  /** The ref name it was found by, e.g. docker.io/library/alpine:3.19 (undefined when found by ID). */
  name?: string;
  manifestDigest: Digest;
  manifest: ImageManifest;
  imageId: Digest;
  config: ImageConfig;
  /** chainIDs, bottom layer first. */
  chain: Digest[];
  /** True when the user named it by image ID rather than by reference. */
  byId?: boolean;
}

export async function loadImage(store: Store, manifestDigest: Digest, name?: string): Promise<LocalImage> {
  const parsed = parseManifest(await store.readBlob(manifestDigest), undefined, name ?? manifestDigest);
  if (parsed.kind !== 'manifest') throw fail('EINTERNAL', `image ${name ?? manifestDigest}: stored ref names an index`);
  const manifest = parsed.manifest;
  const config = parseImageConfig(await store.readBlob(manifest.config.digest), `config of ${name ?? manifestDigest}`);
  return { name, manifestDigest, manifest, imageId: manifest.config.digest, config, chain: chainIds(config.rootfs.diff_ids) };
}

/**
 * Finds an image by reference ("alpine:3.19", "docker.io/library/alpine@sha256:…") or by image ID
 * (full "sha256:…" or a hex prefix of at least 4 characters, as docker accepts). ENOTFOUND otherwise.
 */
export async function findImage(store: Store, text: string): Promise<LocalImage> {
  const refs = await store.listRefs();
  const idPrefix = text.startsWith('sha256:') ? text.slice(7) : /^[a-f0-9]{4,64}$/.test(text) ? text : undefined;
  if (idPrefix !== undefined) {
    const matches = new Map<Digest, { name: string; digest: Digest }>();
    for (const r of refs) {
      const img = await loadImage(store, r.digest, r.name);
      if (img.imageId.slice(7).startsWith(idPrefix)) matches.set(img.imageId, r);
    }
    if (matches.size === 1) {
      const [r] = matches.values();
      return { ...(await loadImage(store, r!.digest, r!.name)), byId: true };
    }
    if (matches.size > 1) throw fail('EINVAL', `image ID prefix "${text}" is ambiguous`);
  }
  let ref;
  try {
    ref = parseReference(text);
  } catch (err) {
    if (idPrefix !== undefined) throw fail('ENOTFOUND', `no such image: ${text}`);
    throw err;
  }
  const name = refName(ref);
  const digest = ref.digest && ref.tag === undefined
    ? refs.find((r) => r.name === name)?.digest ?? (await store.hasBlob(ref.digest) ? ref.digest : undefined)
    : await store.getRef(name);
  if (digest === undefined) throw fail('ENOTFOUND', `no such image: ${text}`);
  return loadImage(store, digest, name);
}

export function isNotFound(err: unknown): boolean {
  return err instanceof TspodError && err.code === 'ENOTFOUND';
}

export interface ImageSummary {
  name: string;
  repository: string;
  tag: string;
  imageId: Digest;
  manifestDigest: Digest;
  created?: string;
  /** Sum of the compressed layer sizes, as the registry counts them. */
  size: number;
}

/**
 * `reference`: docker images' REPOSITORY[:TAG] argument: every tag of the repository ("busybox"), or the
 * one tag ("busybox:1.36"), names normalised as pull does. EINVAL naming it when it is not a reference.
 */
export async function listImages(store: Store, reference?: string): Promise<ImageSummary[]> {
  const want = reference === undefined ? undefined : parseReference(reference);
  const tagGiven = reference !== undefined && /:[^/]*$/.test(reference.split('@')[0]!);
  const out: ImageSummary[] = [];
  for (const r of await store.listRefs()) {
    const ref = parseReference(r.name);
    if (want && (referenceName(ref) !== referenceName(want) || (tagGiven && ref.tag !== want.tag) || (want.digest && ref.digest !== want.digest))) continue;
    const img = await loadImage(store, r.digest, r.name);
    out.push({
      name: r.name,
      repository: familiarName(ref),
      tag: ref.tag ?? '<none>',
      imageId: img.imageId,
      manifestDigest: r.digest,
      created: img.config.created,
      size: img.manifest.layers.reduce((n, l) => n + l.size, 0) + img.manifest.config.size,
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * docker rmi semantics, simplified: removes the named tag; when the name is an image ID, removes
 * every tag of that image. Returns the names untagged. Space is reclaimed by gc afterwards.
 */
export async function untagImage(store: Store, text: string): Promise<string[]> {
  const img = await findImage(store, text);
  const names = img.byId || img.name === undefined
    ? (await store.listRefs()).filter((r) => r.digest === img.manifestDigest).map((r) => r.name)
    : [img.name];
  for (const n of names) await store.deleteRef(n);
  return names;
}
