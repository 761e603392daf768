/**
 * The end of `tspod create` and `run -d`: run.ts prepares everything a foreground run prepares
 * (record, name, snapshot, /etc files, the launch plan) and hands over here; the plan is saved
 * beside the record and, for `run -d`, the container is started detached (start.ts).
 */
import type { EngineRoots } from '../state/paths.js';
import type { ContainerStore, ContainerRecord } from '../state/containers.js';
import { processStartTime } from '../state/proc.js';
import type { LaunchPlan } from '../runtime/plan.js';
import type { Cgroup, CgroupLimits } from '../runtime/cgroups/index.js';
import { fail } from '../util/errors.js';
import { saveCreated, startContainer } from './start.js';
import type { DetachedOnPid } from './detached.js';

const RESTART_RE = /^(no|always|unless-stopped|on-failure(:[0-9]+)?)$/;

/** Refuses a --restart value docker would refuse; run.ts calls it before anything is created. */
export function checkRestartPolicy(policy: string | undefined): void {
  if (policy !== undefined && !RESTART_RE.test(policy)) {
    throw fail('EINVAL', `invalid --restart "${policy}": want no, always, unless-stopped or on-failure[:N]`);
  }
}

export async function createDetached(roots: EngineRoots, containers: ContainerStore, rec: ContainerRecord, plan: LaunchPlan,
  opts: { limits: CgroupLimits; cgroupParent?: string; restartPolicy?: string }, start: boolean, onPid?: DetachedOnPid, cgroup?: Cgroup) {
  try {
    // run -d: the start's last record save is durable and syncs the plan with it (start.ts), so these
    // two writes are atomic only; a CLI killed in between leaves them whole, as a durable write would.
    await saveCreated(containers, rec, plan, { ...opts, durable: !start });
  } catch (err) {
    await cgroup?.destroy().catch(() => {}); // made by run.ts for the start that does not happen
    throw err;
  }
  if (start) await startContainer(roots, rec.id, { onPid, plan, cgroup, syncPlan: true });
  return { id: rec.id, name: rec.name, exitCode: 0, oomKilled: false };
}

/**
 * A foreground run records its own CLI process as the owner (in the monitor fields): while it
 * lives, reconcile() leaves the record alone; after a SIGKILL of it, the next command finds the
 * owner gone and marks the container exited.
 */
export function foregroundOwner(): Pick<ContainerRecord, 'monitorPid' | 'monitorStart'> {
  return { monitorPid: process.pid, monitorStart: processStartTime(process.pid) };
}
