/** stop: the stop signal (SIGTERM), then SIGKILL after the timeout, as docker stop does. */
import type { EngineRoots } from '../state/paths.js';
import type { ContainerRecord } from '../state/containers.js';
import { signalProcess } from '../state/proc.js';
import { containerStore, isActive, reconcile, waitGone } from './reconcile.js';
import { openCgroup } from './reconcile.js';
import { markStopped } from './detached.js';
import { parseSignal } from './kill.js';

export async function stopContainer(roots: EngineRoots, ref: string, opts: { timeoutSeconds?: number; signal?: string } = {}): Promise<ContainerRecord> {
  const containers = containerStore(roots);
  const { rec: locked, release } = await containers.findAndLock(ref);
  const { id } = locked;
  try {
    const rec = await reconcile(containers, locked);
    if (!isActive(rec)) return rec;
    return await stopLocked(rec, opts, async (r) => reconcile(containers, r), async (r) => { await containers.save(r); }, containers.containerDir(id));
  } finally {
    release();
  }
}

/** With the lock held: signal, wait, SIGKILL, wait, reconcile. */
export async function stopLocked(rec: ContainerRecord, opts: { timeoutSeconds?: number; signal?: string },
  settle: (r: ContainerRecord) => Promise<ContainerRecord>, save: (r: ContainerRecord) => Promise<void>, dir: string): Promise<ContainerRecord> {
  let cur: ContainerRecord = { ...rec, stoppedByUser: true };
  await save(cur);
  await markStopped(dir); // ends a restart policy in the monitor
  // -t / -s, else the container's --stop-timeout / --stop-signal (or its image's StopSignal), else docker's 10 s and SIGTERM.
  const timeout = (opts.timeoutSeconds ?? rec.stopTimeout ?? 10) * 1000;
  const stopSignal = opts.signal !== undefined ? parseSignal(opts.signal) : rec.stopSignal !== undefined ? parseSignal(rec.stopSignal) : 'SIGTERM';
  // A restart that was already under way when the marker was written brings up one more init: stop that too.
  for (let round = 0; round < 3 && isActive(cur) && cur.pid && cur.pidStart !== undefined; round++) {
    // A frozen container cannot handle the signal: thaw it first (docker does the same).
    if (cur.state === 'paused') await (await openCgroup(cur))?.thaw();
    signalProcess(cur.pid, cur.pidStart, stopSignal);
    if (!(await waitGone(cur, timeout))) {
      signalProcess(cur.pid, cur.pidStart, 'SIGKILL');
      await waitGone(cur, 10_000);
    }
    cur = await settle(cur);
  }
  return settle(cur);
}
