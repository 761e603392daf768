/** image inspect: what docker image inspect shows, from the manifest and the config. */
import type { Store } from '../../store/index.js';
import { familiarString, parseReference } from '../reference/index.js';
import type { Digest, ExecConfig } from '../oci/types.js';
import { findImage } from './local.js';

export interface ImageInspect {
  Id: Digest;
  RepoTags: string[];
  RepoDigests: string[];
  Created?: string;
  Author?: string;
  Architecture: string;
  Os: string;
  Variant?: string;
  Config: ExecConfig;
  /** Sum of the compressed layer sizes plus the config. */
  Size: number;
  RootFS: { Type: 'layers'; Layers: Digest[] };
  Manifest: { Digest: Digest; MediaType: string; Layers: { MediaType: string; Digest: Digest; Size: number }[] };
  History: unknown[];
}

export async function inspectImage(store: Store, text: string): Promise<ImageInspect> {
  const img = await findImage(store, text);
  const refs = (await store.listRefs()).filter((r) => r.digest === img.manifestDigest);
  const tags: string[] = [];
  const digests = new Set<string>();
  for (const r of refs) {
    const ref = parseReference(r.name);
    if (ref.tag !== undefined) tags.push(familiarString(ref));
    digests.add(`${familiarString({ registry: ref.registry, repository: ref.repository })}@${img.manifestDigest}`);
  }
  const c = img.config;
  return {
    Id: img.imageId,
    RepoTags: tags,
    RepoDigests: [...digests],
    ...(c.created !== undefined ? { Created: c.created } : {}),
    ...(c.author !== undefined ? { Author: c.author } : {}),
    Architecture: c.architecture,
    Os: c.os,
    ...(c.variant !== undefined ? { Variant: c.variant } : {}),
    Config: c.config ?? {},
    Size: img.manifest.layers.reduce((n, l) => n + l.size, 0) + img.manifest.config.size,
    RootFS: { Type: 'layers', Layers: c.rootfs.diff_ids },
    Manifest: {
      Digest: img.manifestDigest,
      MediaType: img.manifest.mediaType ?? '',
      Layers: img.manifest.layers.map((l) => ({ MediaType: l.mediaType, Digest: l.digest, Size: l.size })),
    },
    History: c.history ?? [],
  };
}
