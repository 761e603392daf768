/** pause / unpause: the freezer (cgroup v1 freezer, v2 cgroup.freeze) of the container's cgroup. */
import type { EngineRoots } from '../state/paths.js';
import { fail } from '../util/errors.js';
import { containerStore, openCgroup, reconcile } from './reconcile.js';

export async function pauseContainer(roots: EngineRoots, ref: string, pause: boolean): Promise<string> {
  const containers = containerStore(roots);
  const { rec: locked, release } = await containers.findAndLock(ref);
  try {
    const rec = await reconcile(containers, locked);
    if (pause && rec.state !== 'running') throw fail('ESTATE', `cannot pause container ${ref}: it is ${rec.state === 'paused' ? 'already paused' : 'not running'}`);
    const cg = await openCgroup(rec);
    // A running container whose cgroup is frozen was left so by a command killed while it held the
    // container frozen (commit --pause, cp): unpause thaws it, as it would a paused one.
    const strayFrozen = !pause && rec.state === 'running' && cg !== undefined && (await cg.isFrozen());
    if (!pause && rec.state !== 'paused' && !strayFrozen) throw fail('ESTATE', `cannot unpause container ${ref}: it is not paused`);
    if (!cg) throw fail('ESTATE', `container ${ref}: its cgroup is gone`);
    if (pause) await cg.freeze();
    else await cg.thaw();
    await containers.save({ ...rec, state: pause ? 'paused' : 'running' });
    return rec.id;
  } finally {
    release();
  }
}
