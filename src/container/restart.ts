/** restart: stop (signal, timeout, SIGKILL) then start, under one lock. */
import type { EngineRoots } from '../state/paths.js';
import type { ContainerRecord } from '../state/containers.js';
import { containerStore, isActive, reconcile } from './reconcile.js';
import { stopLocked } from './stop.js';
import { startLocked } from './start.js';

export async function restartContainer(roots: EngineRoots, ref: string, opts: { timeoutSeconds?: number } = {}): Promise<ContainerRecord> {
  const containers = containerStore(roots);
  const { rec: locked, release } = await containers.findAndLock(ref);
  const { id } = locked;
  try {
    let rec = await reconcile(containers, locked);
    if (isActive(rec)) rec = await stopLocked(rec, opts, (r) => reconcile(containers, r), (r) => containers.save(r), containers.containerDir(id));
    const started = await startLocked(containers, rec);
    return started;
  } finally {
    release();
  }
}
