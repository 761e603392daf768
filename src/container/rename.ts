/** rename: claims the new name (unique, atomically), then releases the old one. */
import type { EngineRoots } from '../state/paths.js';
import { containerStore } from './reconcile.js';

export async function renameContainer(roots: EngineRoots, ref: string, name: string): Promise<void> {
  const containers = containerStore(roots);
  const { rec, release } = await containers.findAndLock(ref);
  try {
    if (rec.name === name) return;
    await containers.rename(rec, name);
  } finally {
    release();
  }
}
