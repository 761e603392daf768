/** tag: another name for a local image (docker tag SOURCE TARGET). */
import type { Store } from '../../store/index.js';
import { familiarString, parseReference } from '../reference/index.js';
import { fail } from '../util/errors.js';
import { findImage } from './local.js';
import { refName } from './pull.js';

export async function tagImage(store: Store, source: string, target: string): Promise<{ name: string; familiarName: string }> {
  const img = await findImage(store, source);
  const ref = parseReference(target);
  if (ref.digest !== undefined) throw fail('EINVAL', `tag ${source} ${target}: a tag cannot name a digest; give name[:tag]`);
  const name = refName(ref);
  await store.setRef(name, img.manifestDigest);
  return { name, familiarName: familiarString(parseReference(name)) };
}
