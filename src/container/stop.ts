/** stop: the stop signal (SIGTERM), then SIGKILL after the timeout, as docker stop does. */
import type { EngineRoots } from '../state/paths.js';
import type { ContainerRecord } from '../state/containers.js';
import { signalProcess } from '../state/proc.js';
import { containerStore, isActive, reconcile, waitGone } from './reconcile.js';
import { openCgroup } from './reconcile.js';

export async function stopContainer(roots: EngineRoots, ref: string, opts: { timeoutSeconds?: number; signal?: string } = {}): Promise<ContainerRecord> {
  const containers = containerStore(roots);
  const { id } = await containers.find(ref);
  const { rec: locked, release } = await containers.lock(id);
  try {
    const rec = await reconcile(containers, locked);
    if (!isActive(rec)) return rec;
    return await stopLocked(rec, opts, async (r) => reconcile(containers, r), async (r) => { await containers.save(r); });
  } finally {
    release();
  }
}

/** With the lock held: signal, wait, SIGKILL, wait, reconcile. */
export async function stopLocked(rec: ContainerRecord, opts: { timeoutSeconds?: number; signal?: string },
  settle: (r: ContainerRecord) => Promise<ContainerRecord>, save: (r: ContainerRecord) => Promise<void>): Promise<ContainerRecord> {
  const marked = { ...rec, stoppedByUser: true };
  await save(marked);
  const timeout = (opts.timeoutSeconds ?? 10) * 1000;
  if (rec.pid && rec.pidStart !== undefined) {
    // A frozen container cannot handle the signal: thaw it first (docker does the same).
    if (rec.state === 'paused') await (await openCgroup(rec))?.thaw();
    signalProcess(rec.pid, rec.pidStart, (opts.signal ?? 'SIGTERM') as NodeJS.Signals);
    if (!(await waitGone(rec, timeout))) {
      signalProcess(rec.pid, rec.pidStart, 'SIGKILL');
      await waitGone(rec, 10_000);
    }
  }
  return settle(marked);
}
