/**
 * A running container frozen for a moment by a command that reads it (commit, cp), as docker's
 * commit pauses it. The command records itself (pid + start time) in the container's directory
 * before it freezes the cgroup and removes the record after the thaw. If it is killed in between,
 * the container would stay frozen while its record says running; reconcile (every command) finds the
 * holder gone and thaws it (thawIfAbandoned), so the freeze is undone as docker undoes commit's pause.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cgroup } from '../runtime/cgroups/index.js';
import { isAlive, processStartTime } from '../state/proc.js';
import { isErrno } from '../util/errors.js';

const holderPath = (containerDir: string) => join(containerDir, 'frozen-by');

/** Runs `fn` with the container's cgroup frozen, and thaws it afterwards whatever happens. */
export async function withFrozen<T>(containerDir: string, cgroup: Cgroup, fn: () => Promise<T>): Promise<T> {
  // Synchronous and not durable: it describes processes of this boot only.
  writeFileSync(holderPath(containerDir), `${process.pid} ${processStartTime(process.pid) ?? 0}\n`);
  try {
    await cgroup.freeze();
    return await fn();
  } finally {
    try {
      await cgroup.thaw();
    } finally {
      rmSync(holderPath(containerDir), { force: true });
    }
  }
}

/**
 * Thaws a container frozen by a command that died before its thaw (see above); a no-op (one failed
 * open) when no command holds it. The caller knows the container runs and is not paused by the user.
 */
export async function thawIfAbandoned(containerDir: string, openCgroup: () => Promise<Cgroup | undefined>): Promise<void> {
  let text: string;
  try {
    text = readFileSync(holderPath(containerDir), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return;
    throw err;
  }
  const [pid, start] = text.trim().split(' ').map(Number);
  if (isAlive(pid, start)) return;
  await (await openCgroup())?.thaw();
  rmSync(holderPath(containerDir), { force: true });
}
