/**
 * Process identity: a pid alone can be reused after the process died, so tspod records a pid
 * together with its start time (field 22 of /proc/PID/stat, in clock ticks since boot) and only
 * ever signals or joins a pid whose start time still matches.
 */
import { readFileSync } from 'node:fs';

/** The start time of `pid`, or undefined when it does not exist (or is a zombie being reaped). */
export function processStartTime(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  const start = Number(fields[22 - 3]);
  return Number.isFinite(start) ? start : undefined;
}

/** Whether the process recorded as (pid, start) still runs. */
export function isAlive(pid: number | undefined, start: number | undefined): boolean {
  if (!pid || start === undefined) return false;
  return processStartTime(pid) === start;
}

/** Sends `signal` only when (pid, start) still names the recorded process; false when it is gone. */
export function signalProcess(pid: number, start: number, signal: NodeJS.Signals | number): boolean {
  if (!isAlive(pid, start)) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** The children of `pid` (from /proc/PID/task/PID/children); [] when it is gone. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
