/**
 * create and start. `create` (run.ts with `create`/`detach`) prepares the snapshot and the launch
 * plan and saves the plan beside the record (plan.json); `start` creates the cgroup and starts the
 * container detached under a tspod-monitor (detached.ts). Order of the record writes, each atomic,
 * so that a SIGKILL at any point leaves something reconcile() resolves:
 *   cgroup created → record "running" with cgroupPaths (no pid yet) → monitor spawned → started →
 *   record with pid + start time of the init and of the monitor.
 */
import { dirname } from 'node:path';
import { readFile } from 'node:fs/promises';
import type { EngineRoots } from '../state/paths.js';
import type { ContainerStore, ContainerRecord } from '../state/containers.js';
import type { LaunchPlan } from '../runtime/plan.js';
import { detectCgroups, prewarmAttach, type Cgroup, type CgroupLimits } from '../runtime/cgroups/index.js';
import { writeFileAtomic, writeFileRenamed } from '../util/fs.js';
import { TspodError, fail, messageOf } from '../util/errors.js';
import { planPath, startDetached, type DetachedOnPid } from './detached.js';
import { cliPath } from '../runtime/launcher.js';
import { containerStore, isActive, reconcile, releaseRuntime } from './reconcile.js';
import { attachSavedNetwork } from './network.js';

/**
 * Saves what `start` needs: the plan, the limits and the command line. `durable: false` (run -d) writes
 * both atomically without fsync: the start that follows at once syncs them with its last record save
 * (startLocked's `syncPlan`); see ContainerStore.save for why that keeps every guarantee.
 */
export async function saveCreated(containers: ContainerStore, rec: ContainerRecord, plan: LaunchPlan,
  opts: { limits: CgroupLimits; cgroupParent?: string; restartPolicy?: string; durable?: boolean }): Promise<ContainerRecord> {
  const next: ContainerRecord = {
    ...rec,
    state: 'created',
    limits: { ...opts.limits } as Record<string, number>,
    cgroupParent: opts.cgroupParent,
    path: plan.args[0],
    args: plan.args.slice(1),
    restartPolicy: opts.restartPolicy,
  };
  // Written side by side: when durable, their fsyncs share one journal commit.
  const durable = opts.durable ?? true;
  await Promise.all([(durable ? writeFileAtomic : writeFileRenamed)(planPath(containers.containerDir(rec.id)), JSON.stringify(plan) + '\n', 0o600),
    containers.save(next, { durable })]);
  return next;
}

export async function loadPlan(containers: ContainerStore, id: string): Promise<LaunchPlan> {
  try {
    return JSON.parse(await readFile(planPath(containers.containerDir(id)), 'utf8')) as LaunchPlan;
  } catch (err) {
    throw fail('ESTATE', `container ${id.slice(0, 12)} has no launch plan (it was created by tspod run in the foreground): ${messageOf(err)}`, err);
  }
}

/**
 * Starts a created or exited container detached; a running one is left alone. Returns the record.
 * run -d passes the plan it just saved, the `cgroup` it made while preparing the snapshot (this
 * function releases it if the start fails) and `syncPlan` (its plan.json was written without fsync).
 */
export async function startContainer(roots: EngineRoots, ref: string,
  opts: { onPid?: DetachedOnPid; beforeGo?: () => Promise<void>; plan?: LaunchPlan; cgroup?: Cgroup; syncPlan?: boolean } = {}): Promise<ContainerRecord> {
  let cgroup = opts.cgroup;
  try {
    const containers = containerStore(roots);
    const { rec: locked, release } = await containers.findAndLock(ref);
    try {
      const rec = await reconcile(containers, locked);
      if (isActive(rec)) return rec;
      const given = cgroup;
      cgroup = undefined; // startLocked owns it now
      return await startLocked(containers, rec, opts.onPid, opts.beforeGo, opts.plan, given, opts.syncPlan);
    } finally {
      release();
    }
  } finally {
    await cgroup?.destroy().catch(() => {});
  }
}

/** start with the lock held (also used by restart). */
export async function startLocked(containers: ContainerStore, rec: ContainerRecord, onPid?: DetachedOnPid, beforeGo?: () => Promise<void>,
  given?: LaunchPlan, made?: Cgroup, syncPlan?: boolean): Promise<ContainerRecord> {
  const plan = given ?? await loadPlan(containers, rec.id); // `given`: run -d has the plan it just saved
  let cgroup: Cgroup;
  if (made) {
    cgroup = made; // run -d made it while it prepared the snapshot
  } else {
    const driver = await detectCgroups();
    try {
      cgroup = await driver.create(rec.id, (rec.limits ?? {}) as CgroupLimits, rec.cgroupParent ? { parent: rec.cgroupParent } : undefined);
    } catch (err) {
      // A group left by a crash before reconcile could remove it: remove and retry once.
      if (!(err instanceof TspodError && err.code === 'EEXIST')) throw err;
      await releaseRuntime({ ...rec, cgroupPaths: undefined }, containers);
      cgroup = await driver.create(rec.id, (rec.limits ?? {}) as CgroupLimits, rec.cgroupParent ? { parent: rec.cgroupParent } : undefined);
    }
  }
  prewarmAttach(); // the init's placement (addProcess) then skips the kernel's wait (cgroups/detect.ts)
  const starting: ContainerRecord = {
    ...rec,
    state: 'running',
    cgroupPaths: [...cgroup.paths],
    started: new Date().toISOString(),
    pid: undefined, pidStart: undefined, monitorPid: undefined, monitorStart: undefined,
    exitCode: undefined, oomKilled: undefined, finished: undefined, error: undefined, stoppedByUser: undefined, restartCount: 0,
  };
  try {
    crashPoint('cgroup');
    await containers.save(starting, { durable: false }); // see ContainerStore.save: the final save below is durable
    crashPoint('record');
    const dir = containers.containerDir(rec.id);
    // Without a caller's hook (tspod start, restart): the network recorded at create time (network.ts).
    const s = await startDetached(dir, plan, cgroup, thenBeforeGo(onPid ?? ((pid, owner) => attachSavedNetwork(dirname(containers.dir), rec, dir, pid, owner)), beforeGo), rec.restartPolicy,
      (monitorPid, monitorStart) => containers.save({ ...starting, monitorPid, monitorStart }, { durable: false }),
      rec.autoRemove ? autoRemoveCommand(dirname(containers.dir), rec.id) : undefined);
    const running: ContainerRecord = { ...starting, ...s };
    crashPoint('started');
    // Durable; with `syncPlan` (run -d), plan.json's data is fsync'd before this record's rename, and the
    // directory's fsync after it makes plan.json's earlier rename durable too: one journal round for both.
    await containers.save(running, syncPlan ? { syncFirst: [planPath(dir)] } : {});
    return running;
  } catch (err) {
    const failed: ContainerRecord = { ...starting, state: 'exited', exitCode: exitCodeOf(err), error: messageOf(err), finished: new Date().toISOString() };
    const failures = await releaseRuntime(failed, containers);
    await containers.save(failed).catch((e) => failures.push(messageOf(e)));
    if (failures.length) process.stderr.write(`tspod: cleanup of container ${rec.name}: ${failures.join('; ')}\n`);
    throw err;
  }
}

/**
 * run -d --rm: what the monitor runs once the container has ended for good (tspod rm -v of it, with this
 * data root). If it cannot run, the next `ps` or `container prune` removes the container instead
 * (sweepAutoRemoved), as for a foreground `run --rm` whose CLI was killed.
 */
function autoRemoveCommand(root: string, id: string): string[] {
  return [process.execPath, cliPath(), 'rm', '-v', '--root', root, id];
}

/** start -a: the attach client connects to the monitor after the onPid step, before the container's command runs. */
function thenBeforeGo<A extends unknown[], R>(onPid: (...a: A) => Promise<R>, beforeGo?: () => Promise<void>): (...a: A) => Promise<R> {
  if (!beforeGo) return onPid;
  return async (...a: A) => {
    const r = await onPid(...a);
    await beforeGo();
    return r;
  };
}

/**
 * Fault injection for the crash-recovery tests: TSPOD_TEST_CRASH_AT=<point> makes this process
 * SIGKILL itself there, deterministically, where a timed kill from outside may or may not land.
 * Points: cgroup (created, nothing recorded), record (recorded running, no monitor yet), pid (in
 * the onPid step: the init exists and waits for the go-ahead), started (running, pids not recorded).
 */
export function crashPoint(point: string): void {
  if (process.env.TSPOD_TEST_CRASH_AT === point) process.kill(process.pid, 'SIGKILL');
}

function exitCodeOf(err: unknown): number {
  if (err instanceof TspodError && err.code === 'ENOCMD') return 127;
  if (err instanceof TspodError && err.code === 'ENOEXEC') return 126;
  return 125;
}
