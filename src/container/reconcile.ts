/**
 * Reconciling a record with the truth. No daemon watches containers, so every command that reads
 * a record first checks it: a record that says running (or paused) whose init (pid + start time)
 * is gone is marked exited with the status the monitor recorded in exit.json (137 when the monitor
 * died too: the kernel killed the container with it), and what it held is released: the monitor
 * (if somehow alive), the cgroup (destroy kills leftovers and removes the directories). The
 * snapshot stays until rm. This is what makes `ps` true after a SIGKILL of anything.
 */
import { readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { teardownNetwork } from '../runtime/network/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EngineRoots } from '../state/paths.js';
import { containersRoot } from '../state/paths.js';
import { ContainerStore, type ContainerRecord } from '../state/containers.js';
import { isAlive, signalProcess } from '../state/proc.js';
import { detectCgroups, type Cgroup } from '../runtime/cgroups/index.js';
import { TspodError, isErrno, messageOf } from '../util/errors.js';
import { exitPath, isMarkedStopped, monitorState } from './detached.js';
import { attachSocketPath } from './attach-io.js';
import { thawIfAbandoned } from './freeze.js';
import { childrenOf, processStartTime } from '../state/proc.js';
import { access } from 'node:fs/promises';

const exists = (p: string) => access(p).then(() => true, () => false);

export interface ExitInfo {
  exitCode: number;
  oomKills: number;
  finishedAt: string;
}

export function containerStore(roots: EngineRoots): ContainerStore {
  return new ContainerStore(containersRoot(roots));
}

export async function readExit(containers: ContainerStore, id: string): Promise<ExitInfo | undefined> {
  try {
    return JSON.parse(await readFile(exitPath(containers.containerDir(id)), 'utf8')) as ExitInfo;
  } catch (err) {
    if (isErrno(err, 'ENOENT') || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/** A foreground run still being set up whose CLI is gone. */
export function isOrphanedForeground(rec: ContainerRecord): boolean {
  return !!rec.foreground && rec.state === 'created' && rec.monitorPid !== undefined && !isAlive(rec.monitorPid, rec.monitorStart);
}

export function isActive(rec: ContainerRecord): boolean {
  return rec.state === 'running' || rec.state === 'paused';
}

/** The container's cgroup, reopened from its recorded paths; undefined when it is gone. */
export async function openCgroup(rec: ContainerRecord): Promise<Cgroup | undefined> {
  const driver = await detectCgroups();
  try {
    return await driver.open(rec.id, rec.cgroupPaths ? { paths: rec.cgroupPaths, parent: rec.cgroupParent } : { parent: rec.cgroupParent });
  } catch (err) {
    if (err instanceof TspodError && err.code === 'ENOTFOUND') return undefined;
    throw err;
  }
}

/**
 * Kills a still-running monitor, removes the cgroup and the container's network attachments
 * (issue 6's teardown). Idempotent; failures are returned, not thrown.
 */
export async function releaseRuntime(rec: ContainerRecord, containers: ContainerStore): Promise<string[]> {
  const failures: string[] = [];
  if (rec.monitorPid && rec.monitorStart !== undefined) signalProcess(rec.monitorPid, rec.monitorStart, 'SIGKILL');
  // The attach socket of a monitor that was killed (a monitor that ends removes its own).
  await rm(attachSocketPath(containers.containerDir(rec.id)), { force: true }).catch(() => {});
  try {
    const cg = await openCgroup(rec);
    await cg?.destroy();
  } catch (err) {
    failures.push(`remove cgroup of ${rec.name}: ${messageOf(err)}`);
  }
  try {
    // containers.dir is <root>/containers: the network state lives under <root>.
    await teardownNetwork(dirname(containers.dir), rec.id);
  } catch (err) {
    failures.push(`remove network of ${rec.name}: ${messageOf(err)}`);
  }
  return failures;
}

/**
 * Brings `rec` up to date (see above) and saves the change. The caller should hold the lock;
 * `ps` calls it without, which is safe: every outcome is written atomically and is the same
 * whoever computes it.
 */
export async function reconcile(containers: ContainerStore, rec: ContainerRecord): Promise<ContainerRecord> {
  if (isOrphanedForeground(rec)) {
    // A foreground run whose CLI died while setting up (before the record said running).
    const next: ContainerRecord = { ...rec, state: 'exited', exitCode: 137, finished: new Date().toISOString() };
    const failures = await releaseRuntime(next, containers);
    if (failures.length) process.stderr.write(`tspod: cleanup of container ${rec.name}: ${failures.join('; ')}\n`);
    if (await containers.get(rec.id)) await containers.save(next);
    return next;
  }
  if (!isActive(rec)) return rec;
  // A commit or cp killed while it held the container frozen: undo its freeze (freeze.ts).
  if (rec.state === 'running') await thawIfAbandoned(containers.containerDir(rec.id), () => openCgroup(rec));
  let exit = await readExit(containers, rec.id);
  if (!exit && rec.restartPolicy && rec.restartPolicy !== 'no' && isAlive(rec.monitorPid, rec.monitorStart)) {
    // The monitor applies a restart policy: follow the init it started last; between two runs
    // (its back-off) the container counts as running, as docker shows "Restarting".
    const st = await monitorState(containers.containerDir(rec.id));
    if (st && st.pid !== rec.pid) {
      const start = processStartTime(st.pid);
      if (start !== undefined) {
        const next = { ...rec, pid: st.pid, pidStart: start, restartCount: st.restartCount };
        await containers.save(next);
        return next;
      }
    }
    // Stopped by the user: the monitor is about to write the exit file; wait for it below.
    if (isAlive(rec.pid, rec.pidStart) || !(await isMarkedStopped(containers.containerDir(rec.id)))) return rec;
  }
  if (!exit) {
    // Running: the init lives; or no init recorded yet and its starter (monitor, or the CLI of a
    // foreground run) lives. A detached start whose CLI died before it recorded the init: the init
    // is the monitor's grandchild (monitor → launcher → init); record it.
    if (rec.pid ? isAlive(rec.pid, rec.pidStart) : isAlive(rec.monitorPid, rec.monitorStart)) {
      if (rec.pid || !rec.monitorPid || rec.monitorPid === process.pid) return rec;
      const init = childrenOf(rec.monitorPid).flatMap((launcher) => childrenOf(launcher))[0];
      const start = init !== undefined ? processStartTime(init) : undefined;
      if (init === undefined || start === undefined || !(await exists(exitPath(containers.containerDir(rec.id))).then((e) => !e))) return rec;
      const next = { ...rec, pid: init, pidStart: start };
      await containers.save(next);
      return next;
    }
    // The init is gone; its monitor may be writing the exit file right now (it does within a millisecond or two
    // of the reap, so the first looks come soon: rm -f of a running container waits here once). At most ≈ 3 s.
    for (let i = 0, delay = 2; i < 70 && !exit && isAlive(rec.monitorPid, rec.monitorStart); i++, delay = Math.min(delay * 2, 50)) {
      await sleep(delay);
      exit = await readExit(containers, rec.id);
    }
    exit ??= await readExit(containers, rec.id);
  }
  const next: ContainerRecord = {
    ...rec,
    state: 'exited',
    exitCode: exit?.exitCode ?? 137,
    oomKilled: (exit?.oomKills ?? 0) > 0,
    finished: exit?.finishedAt ?? new Date().toISOString(),
    restartCount: (await monitorState(containers.containerDir(rec.id)))?.restartCount ?? rec.restartCount,
  };
  const failures = await releaseRuntime(next, containers);
  if (failures.length) process.stderr.write(`tspod: cleanup of container ${rec.name}: ${failures.join('; ')}\n`);
  if (await containers.get(rec.id)) await containers.save(next);
  return next;
}

/** Waits until the init of `rec` is gone (polling), at most `ms`; true when it is. */
export async function waitGone(rec: ContainerRecord, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  // A SIGKILLed init is reaped within a millisecond or two: look again soon, then every 20 ms.
  for (let delay = 1; isAlive(rec.pid, rec.pidStart); delay = Math.min(delay * 2, 20)) {
    if (Date.now() >= deadline) return false;
    await sleep(delay);
  }
  return true;
}
