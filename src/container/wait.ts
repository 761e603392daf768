/** wait: blocks until the container is not running, then gives its exit code (docker wait). */
import { setTimeout as sleep } from 'node:timers/promises';
import type { EngineRoots } from '../state/paths.js';
import { fail } from '../util/errors.js';
import { containerStore, isActive } from './reconcile.js';
import { freshRecord } from './list.js';

export async function waitContainer(roots: EngineRoots, ref: string): Promise<number> {
  const containers = containerStore(roots);
  const { id } = await containers.find(ref);
  for (let delay = 20; ; delay = Math.min(delay * 2, 200)) {
    const rec = await containers.get(id);
    if (!rec) throw fail('ENOTFOUND', `no such container: ${ref}`);
    const now = await freshRecord(containers, rec);
    if (!isActive(now)) return now.exitCode ?? 0;
    await sleep(delay);
  }
}
