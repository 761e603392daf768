/**
 * rm: a running container is refused unless forced (then killed); the monitor, the cgroup, the
 * snapshot, the record and the name are released. Under the container's lock: of two concurrent
 * rm, the second waits, then finds the record gone and reports "no such container".
 */
import type { Store } from '../../store/index.js';
import type { EngineRoots } from '../state/paths.js';
import type { ContainerRecord } from '../state/containers.js';
import { fail, messageOf } from '../util/errors.js';
import { signalProcess } from '../state/proc.js';
import { containerStore, isActive, reconcile, releaseRuntime, waitGone, openCgroup } from './reconcile.js';
import { markStopped } from './detached.js';
import { releaseVolumes, volumesOf } from '../volume/index.js';

export async function removeContainer(roots: EngineRoots, store: Store, ref: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<string> {
  const containers = containerStore(roots);
  const { rec: locked, release } = await containers.findAndLock(ref);
  const { id } = locked;
  try {
    let rec = await reconcile(containers, locked);
    if (isActive(rec)) {
      if (!opts.force) {
        throw fail('ESTATE', `cannot remove container ${ref}: container is ${rec.state}: stop the container before removing or force remove (rm -f)`);
      }
      rec = { ...rec, stoppedByUser: true };
      // Not durable (ContainerStore.save): the record is removed below; after a power loss nothing of the
      // container runs, and stoppedByUser only matters to the restart policy of a live monitor.
      await containers.save(rec, { durable: false });
      await markStopped(containers.containerDir(id));
      if (rec.state === 'paused') await (await openCgroup(rec))?.thaw().catch(() => undefined);
      for (let round = 0; round < 3 && isActive(rec) && rec.pid && rec.pidStart !== undefined; round++) {
        signalProcess(rec.pid, rec.pidStart, 'SIGKILL');
        await waitGone(rec, 10_000);
        rec = await reconcile(containers, rec);
      }
    }
    const failures = await releaseRuntime(rec, containers);
    await store.removeSnapshot(rec.id).catch((e) => failures.push(messageOf(e)));
    if (failures.length) throw fail('ESYS', `remove container ${ref}: ${failures.join('; ')}`);
    const used = await volumesOf(roots, rec.id);
    await containers.remove(rec);
    // The container's marks on its volumes go with it; -v (and run --rm) removes its anonymous ones too.
    await releaseVolumes(roots, used, rec.id, !!opts.volumes).catch((e) => process.stderr.write(`tspod: release volumes of ${rec.name}: ${messageOf(e)}\n`));
    return rec.id;
  } finally {
    release();
  }
}

/**
 * Removes the `run --rm` containers whose run ended without its CLI to clean up (it was killed):
 * what docker's daemon would have done at once, the next tspod command that lists containers does.
 * A container whose CLI still lives, or that another command holds locked, is left alone.
 */
export async function sweepAutoRemoved(roots: EngineRoots, store: Store): Promise<string[]> {
  const containers = containerStore(roots);
  const removed: string[] = [];
  for (const rec of await containers.list()) {
    if (!rec.autoRemove) continue;
    const lk = await containers.tryLock(rec.id).catch(() => undefined);
    if (!lk) continue;
    let fresh: ContainerRecord;
    try {
      fresh = await reconcile(containers, lk.rec);
    } finally {
      lk.release();
    }
    if (fresh.state !== 'exited') continue;
    try {
      removed.push(await removeContainer(roots, store, rec.id, { force: true, volumes: true }));
    } catch (err) {
      process.stderr.write(`tspod: remove container ${rec.name} (run --rm): ${messageOf(err)}\n`);
    }
  }
  return removed;
}
