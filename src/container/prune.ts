/** container prune (and system prune's container part): removes every container that is not running. */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Store } from '../../store/index.js';
import type { EngineRoots } from '../state/paths.js';
import { TspodError } from '../util/errors.js';
import { containerStore, isActive } from './reconcile.js';
import { freshRecord } from './list.js';
import { removeContainer } from './remove.js';

/** Bytes of the files under `dir` (not following symlinks); 0 when it does not exist. */
async function treeSize(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) await walk(p);
      else total += st.size;
    }
  };
  await walk(dir);
  return total;
}

export async function pruneContainers(roots: EngineRoots, store: Store): Promise<{ deleted: string[]; reclaimed: number }> {
  const containers = containerStore(roots);
  const deleted: string[] = [];
  let reclaimed = 0;
  await containers.sweepIncomplete(); // a create killed before its first record: nothing to list or report
  for (const r of await containers.list()) {
    const rec = await freshRecord(containers, r);
    if (isActive(rec)) continue;
    const snap = await store.getSnapshot(rec.id);
    const size = snap ? await treeSize(snap.upperDir) : 0;
    try {
      await removeContainer(roots, store, rec.id);
    } catch (err) {
      // Removed or started by another command meanwhile: not ours to prune.
      if (err instanceof TspodError && (err.code === 'ENOTFOUND' || err.code === 'ESTATE')) continue;
      throw err;
    }
    deleted.push(rec.id);
    reclaimed += size;
  }
  return { deleted, reclaimed };
}
