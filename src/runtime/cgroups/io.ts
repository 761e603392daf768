import { accessSync, closeSync, constants as fsConstants, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeSync } from 'node:fs';
import { fail, isErrno, messageOf, TspodError } from '../../util/errors.js';
import { realSys } from '../../sys/index.js';
import type { CgroupIo } from './types.js';

/** Runs a synchronous call and hands its outcome over as a promise (a throw becomes a rejection). */
function now<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * The real cgroupfs. Writes open the existing file write-only (no O_CREAT, no O_TRUNC) and write once.
 * The calls are synchronous under the promise interface: cgroupfs lives in memory and answers in
 * microseconds, while a thread-pool round trip per call cost ≈ 10–25 ms over the ≈ 100 calls of a
 * v1 create + destroy (12 hierarchies, the device rules). The sleeps stay asynchronous.
 */
export const realCgroupIo: CgroupIo = {
  readFile: (path) => now(() => readFileSync(path, 'utf8')),
  writeFile: (path, data) => now(() => {
    const fd = openSync(path, fsConstants.O_WRONLY);
    try {
      writeSync(fd, data);
    } finally {
      closeSync(fd);
    }
  }),
  mkdir: (path) => now(() => { mkdirSync(path, { mode: 0o755 }); }),
  rmdir: (path) => now(() => rmdirSync(path)),
  listDirs: (path) => now(() => {
    try {
      return readdirSync(path, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
  }),
  exists: (path) => now(() => {
    try {
      accessSync(path);
      return true;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }),
  kill: (pid, signal) => {
    process.kill(pid, signal);
  },
  attachDeviceProgram: (dir, insns) => now(() => realSys().cgroupDeviceProgram(dir, insns)),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

const descriptions: Record<string, string> = {
  EBUSY: 'device or resource busy',
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EINVAL: 'invalid argument',
  ENOSPC: 'no space left on device',
  EEXIST: 'file exists',
  ENOTEMPTY: 'directory not empty',
  EROFS: 'read-only file system',
  ESRCH: 'no such process',
  EOPNOTSUPP: 'operation not supported',
  ENOTSUP: 'operation not supported',
};

/** "device or resource busy (EBUSY)" for errno errors, the message otherwise. */
export function causeOf(err: unknown): string {
  const code = errnoOf(err);
  if (code && descriptions[code]) return `${descriptions[code]} (${code})`;
  return messageOf(err);
}

/** The errno name of a Node system error (not of a TspodError, whose code is ours). */
export function errnoOf(err: unknown): string | undefined {
  if (err instanceof TspodError) return undefined;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export async function readText(io: CgroupIo, path: string): Promise<string> {
  try {
    return await io.readFile(path);
  } catch (err) {
    throw fail('ESYS', `read ${path}: ${causeOf(err)}`, err);
  }
}

/** Reads a file, or undefined when it does not exist. */
export async function readOptional(io: CgroupIo, path: string): Promise<string | undefined> {
  try {
    return await io.readFile(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw fail('ESYS', `read ${path}: ${causeOf(err)}`, err);
  }
}

export async function writeValue(io: CgroupIo, path: string, value: string): Promise<void> {
  try {
    await io.writeFile(path, value);
  } catch (err) {
    throw fail('ESYS', `write "${value}" to ${path}: ${causeOf(err)}`, err);
  }
}

/** Pids listed in a cgroup.procs file; none when the directory is gone. */
export async function readPids(io: CgroupIo, procsFile: string): Promise<number[]> {
  const text = await readOptional(io, procsFile);
  if (text === undefined) return [];
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map(Number)
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** "key value" lines (memory.events, memory.oom_control, cpu.stat, cgroup.events) → map. */
export function parseKeyed(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) m.set(k, v);
  }
  return m;
}

/** A counter or size from a cgroup file; undefined for "max" or values beyond 2^62 (v1's "unlimited"). */
export function parseCount(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (!/^\d+$/.test(t)) return undefined;
  const big = BigInt(t);
  if (big >= 1n << 62n) return undefined;
  return Number(big);
}
