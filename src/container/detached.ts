/**
 * Starting a container detached: the CLI spawns native/build/tspod-monitor in a new session, the
 * monitor spawns the launcher with the container's stdout/stderr on pipes it turns into the
 * json-file log, and passes fds 3 (plan) and 4 (report) straight through, so this process still
 * runs the onPid step (cgroup placement) between the launcher's `pid` report and the go-ahead.
 * Once the launcher reports `started`, the CLI lets go: the monitor outlives it, records the
 * exit status in exit.json (see native/monitor.c) and a later tspod command reconciles the record.
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { readFile, writeFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { launcherPath } from '../runtime/launcher.js';
import { serializePlan, type LaunchPlan } from '../runtime/plan.js';
import type { Cgroup } from '../runtime/cgroups/index.js';
import { processStartTime } from '../state/proc.js';
import { fail, messageOf, type ErrorCode } from '../util/errors.js';
import { monitorAttachArgs } from './attach-io.js';

/** $TSPOD_MONITOR, else tspod-monitor next to the launcher. */
export function monitorPath(): string {
  return process.env.TSPOD_MONITOR || join(dirname(launcherPath()), 'tspod-monitor');
}

/** Files of a container's detached life, in its record directory. */
export function logPath(containerDir: string): string {
  return join(containerDir, 'json.log');
}
export function exitPath(containerDir: string): string {
  return join(containerDir, 'exit.json');
}
export function planPath(containerDir: string): string {
  return join(containerDir, 'plan.json');
}
/** The serialized plan the monitor replays for a restart, its pid file, and the "stopped by the user" marker. */
export const planTextPath = (d: string) => join(d, 'plan.txt');
const statePath = (d: string) => join(d, 'monitor-state.json');
const stoppedPath = (d: string) => join(d, 'stopped');

/** Tells the monitor not to apply the restart policy any more (stop, kill, rm). */
export async function markStopped(containerDir: string): Promise<void> {
  await writeFile(stoppedPath(containerDir), '');
}

export async function isMarkedStopped(containerDir: string): Promise<boolean> {
  return readFile(stoppedPath(containerDir)).then(() => true, () => false);
}

/** The init the monitor started last (after restarts), if it wrote one. */
export async function monitorState(containerDir: string): Promise<{ pid: number; restartCount: number } | undefined> {
  try {
    return JSON.parse(await readFile(statePath(containerDir), 'utf8')) as { pid: number; restartCount: number };
  } catch {
    return undefined;
  }
}

/** The cgroup file whose `oom_kill N` line counts OOM kills (v1 memory.oom_control, v2 memory.events). */
export function oomCounterFile(cg: Cgroup): string | undefined {
  if (cg.version === 2) return cg.paths[0] ? join(cg.paths[0], 'memory.events') : undefined;
  const mem = cg.paths.find((p) => /\/memory(,[^/]*)?\//.test(p) || /\/[^/]*,memory[^/]*\//.test(p));
  return mem ? join(mem, 'memory.oom_control') : undefined;
}

export interface DetachedStart {
  pid: number;
  pidStart: number;
  monitorPid: number;
  monitorStart: number;
}

const KIND_CODES: Record<string, ErrorCode> = { '125': 'ELAUNCH', '126': 'ENOEXEC', '127': 'ENOCMD' };

/**
 * The onPid step of a detached start: `owner` is the monitor (pid + start time), which outlives the
 * restarts of the init. It may return plan records (veth) for the launcher: they are sent with the
 * go-ahead and appended to the plan the monitor replays.
 */
export type DetachedOnPid = (pid: number, owner?: { pid: number; startTime: number }) => Promise<void | string>;

/**
 * Spawns the monitor for `plan` and resolves once the container's command was exec'd. The caller
 * has created `cgroup`; the init is placed in it before it runs anything of its own.
 */
export async function startDetached(containerDir: string, plan: LaunchPlan, cgroup: Cgroup, onPid?: DetachedOnPid, restartPolicy?: string,
  onMonitor?: (monitorPid: number, monitorStart: number) => Promise<void>, exitCommand?: string[]): Promise<DetachedStart> {
  // Synchronous: three unlinks of µs each (usually of nothing), where each fs.promises call costs a thread-pool round trip.
  for (const f of [exitPath(containerDir), stoppedPath(containerDir), statePath(containerDir)]) rmSync(f, { force: true });
  const text = serializePlan({ ...plan, sync: true });
  const oom = oomCounterFile(cgroup);
  const restart: string[] = [];
  if (restartPolicy && restartPolicy !== 'no') {
    await writeFile(planTextPath(containerDir), text, { mode: 0o600 });
    restart.push('--restart', restartPolicy, '--plan', planTextPath(containerDir), '--state', statePath(containerDir),
      '--stopped', stoppedPath(containerDir), ...cgroup.paths.flatMap((p) => ['--procs', join(p, 'cgroup.procs')]));
  }
  const exit = (exitCommand ?? []).flatMap((a) => ['--exit-command', a]);
  const args = ['--log', logPath(containerDir), '--exit', exitPath(containerDir), ...(oom ? ['--oom', oom] : []), ...restart, ...exit,
    ...(await monitorAttachArgs(containerDir, !!plan.tty)), '--', launcherPath()];
  const path = monitorPath();
  // The exit command is a tspod command: it gets this environment (PATH, TSPOD_* settings); the launcher does
  // not pass it on (the container's environment is exactly the plan's).
  const child = spawn(path, args, { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'], detached: true, env: exitCommand ? process.env : {} });
  const planOut = child.stdio[3] as Writable;
  const reportIn = child.stdio[4] as Readable;
  planOut.on('error', () => {});
  reportIn.on('error', () => {});
  planOut.write(text);
  const monitorPid = child.pid;
  const monitorStart = monitorPid ? processStartTime(monitorPid) : undefined;
  // Recorded before anything else happens: a CLI killed from here on leaves a monitor reconcile can find.
  if (monitorPid && monitorStart !== undefined) await onMonitor?.(monitorPid, monitorStart);

  try {
    return await new Promise<DetachedStart>((resolve, reject) => {
      let pid: number | undefined;
      let settled = false;
      const done = (fn: () => void) => { if (!settled) { settled = true; fn(); } };
      child.on('error', (err) => done(() => reject(fail('ELAUNCH', `spawn monitor ${path}: ${messageOf(err)}`, err))));
      const lines = createInterface({ input: reportIn, crlfDelay: Infinity });
      lines.on('line', (line) => {
        const [kw, ...rest] = line.split(' ');
        if (kw === 'pid') {
          pid = Number(rest[0]);
          const n = pid;
          void (async () => {
            try {
              await cgroup.addProcess(n);
              if (process.env.TSPOD_TEST_CRASH_AT === 'pid') process.kill(process.pid, 'SIGKILL'); // see start.ts crashPoint
              // The records (veth) go with the go-ahead, and into the plan the monitor replays on a restart.
              const records = (await onPid?.(n, monitorPid && monitorStart !== undefined ? { pid: monitorPid, startTime: monitorStart } : undefined)) || '';
              if (records && restart.length) await writeFile(planTextPath(containerDir), text + records, { mode: 0o600 });
              planOut.end(records + 'go\n');
            } catch (err) {
              try { process.kill(n, 'SIGKILL'); } catch { /* gone */ }
              planOut.destroy();
              done(() => reject(err));
            }
          })();
        } else if (kw === 'started') {
          const start = pid ? processStartTime(pid) : undefined;
          if (!pid || start === undefined || !monitorPid || monitorStart === undefined) {
            // Exec'd and already gone: the monitor records the exit; report what we know.
            done(() => resolve({ pid: pid ?? 0, pidStart: start ?? -1, monitorPid: monitorPid ?? 0, monitorStart: monitorStart ?? -1 }));
          } else {
            done(() => resolve({ pid: pid!, pidStart: start, monitorPid, monitorStart }));
          }
        } else if (kw === 'error') {
          const m = /^(\d+) (.*)$/.exec(rest.join(' '));
          done(() => reject(fail(KIND_CODES[m?.[1] ?? ''] ?? 'ELAUNCH', m ? m[2]! : rest.join(' '))));
        }
      });
      lines.on('close', () => done(() => reject(fail('ELAUNCH', `start container: the monitor ended before the container's command ran`))));
    });
  } finally {
    planOut.destroy();
    reportIn.destroy();
    child.unref();
  }
}
