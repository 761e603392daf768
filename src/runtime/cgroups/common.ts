import { basename, dirname, join } from 'node:path';
import { fail, isErrno } from '../../util/errors.js';
import { causeOf, errnoOf, readPids } from './io.js';
import type { CgroupIo, CgroupLimits } from './types.js';

/** Where one group lives in one hierarchy. */
export interface Layout {
  /** "tspod/<id>", "<relative parent>/<id>" or "/<absolute parent>/<id>". */
  label: string;
  /** The existing directory the chain grows from: the caller's cgroup, or the hierarchy root for an absolute parent. */
  start: string;
  /** Directories from below `start` down to the leaf, inclusive. */
  chain: string[];
  leaf: string;
  /** The default `tspod/` parent, removed when it is left empty. */
  tspodDir?: string;
}

export function validateName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/.test(name)) {
    throw fail('EINVAL', `create cgroup "${name}": a name is one path component of letters, digits, "_", "." and "-"`);
  }
}

function parentParts(parent: string): string[] {
  const parts = parent.split('/').filter(Boolean);
  if (parent.trim() === '' || parts.some((p) => p === '.' || p === '..')) {
    throw fail('EINVAL', `use cgroup parent "${parent}": expected a path such as "/tspod" or "batch/jobs" without "." or ".."`);
  }
  return parts;
}

/** Lays a group out under `base` (the caller's cgroup in this hierarchy) or, for an absolute parent, under `mountPoint`. */
export function layout(mountPoint: string, base: string, name: string, parent?: string): Layout {
  validateName(name);
  let start: string, parts: string[], label: string, tspodDir: string | undefined;
  if (parent === undefined) {
    start = base;
    parts = ['tspod', name];
    label = `tspod/${name}`;
    tspodDir = join(base, 'tspod');
  } else {
    const pp = parentParts(parent);
    const absolute = parent.startsWith('/');
    start = absolute ? mountPoint : base;
    parts = [...pp, name];
    label = (absolute ? '/' : '') + parts.join('/');
  }
  const chain: string[] = [];
  let dir = start;
  for (const p of parts) chain.push((dir = join(dir, p)));
  return { label, start, chain, leaf: dir, tspodDir };
}

/** A layout for a recorded leaf path (open with `paths`). */
export function layoutOfPath(mountPoint: string, leaf: string, parent: string | undefined): Layout {
  // Strictly inside: destroy() kills every process of the group, and the root holds the whole host.
  if (!leaf.startsWith(mountPoint.endsWith('/') ? mountPoint : mountPoint + '/') || leaf.length <= mountPoint.length + 1) {
    throw fail('EINVAL', `open cgroup ${leaf}: not a cgroup below the hierarchy root ${mountPoint}`);
  }
  if (leaf.split('/').includes('..')) throw fail('EINVAL', `open cgroup ${leaf}: the path contains ".."`);
  const up = dirname(leaf);
  const tspodDir = parent === undefined && basename(up) === 'tspod' ? up : undefined;
  const label = tspodDir ? `tspod/${basename(leaf)}` : leaf.slice(mountPoint.length) || '/';
  return { label, start: up, chain: [leaf], leaf, tspodDir };
}

export interface ChainHooks {
  /** Runs on a directory before a child is made in it (v2: enable controllers in its subtree_control). */
  beforeChild?(dir: string): Promise<void>;
  /** Runs on every directory of the chain once it exists (v1: give a cpuset its cpus and mems). */
  afterDir?(dir: string): Promise<void>;
}

const CHAIN_ATTEMPTS = 10;

/**
 * mkdir -p from `start` down to the leaf. A concurrent destroy() may remove an empty parent between
 * our mkdir of it and the mkdir of its child: ENOENT then restarts the walk (bounded).
 * An existing leaf is reused (a crashed earlier run); the caller has checked that it is empty.
 */
export async function ensureChain(io: CgroupIo, lay: Layout, hooks: ChainHooks): Promise<void> {
  if (!(await io.exists(lay.start))) {
    throw fail('ENOTFOUND', `create cgroup ${lay.leaf}: the parent cgroup ${lay.start} does not exist`);
  }
  for (let attempt = 1; ; attempt++) {
    try {
      let parent = lay.start;
      for (const dir of lay.chain) {
        await hooks.beforeChild?.(parent);
        try {
          await io.mkdir(dir);
        } catch (err) {
          if (!isErrno(err, 'EEXIST')) throw err;
        }
        await hooks.afterDir?.(dir);
        parent = dir;
      }
      return;
    } catch (err) {
      // ENOENT, or ENODEV from a control file of a directory being removed: a concurrent destroy()
      // took an empty parent away between our mkdir and our use of it; build the chain again.
      const code = errnoOf(err) ?? errnoOf((err as { cause?: unknown })?.cause);
      if (code === 'ENOENT' || code === 'ENODEV') {
        if (attempt < CHAIN_ATTEMPTS) {
          await io.sleep(5 * attempt);
          continue;
        }
      }
      if (errnoOf(err)) throw fail('ESYS', `create cgroup ${lay.leaf}: ${causeOf(err)}`, err);
      throw err;
    }
  }
}

/** Fails EEXIST when a leaf left by an earlier run still has processes (an empty one is reused). */
export async function checkReusable(io: CgroupIo, leaves: string[], label: string): Promise<void> {
  for (const leaf of leaves) {
    const pids = await readPids(io, join(leaf, 'cgroup.procs'));
    if (pids.length) {
      throw fail('EEXIST', `create cgroup ${label}: ${leaf} already exists and has processes (${pids.slice(0, 5).join(', ')})`);
    }
  }
}

export function validateLimits(l: CgroupLimits): void {
  const int = (v: number | undefined, what: string, ok: (n: number) => boolean, range: string): void => {
    if (v !== undefined && (!Number.isSafeInteger(v) || !ok(v))) throw fail('EINVAL', `set ${what} ${v}: expected ${range}`);
  };
  for (const rule of l.devices ?? []) {
    if (!/^[abc] (\*|\d+):(\*|\d+) [rwm]{1,3}$/.test(rule)) throw fail('EINVAL', `set device rule "${rule}": expected "TYPE MAJOR:MINOR ACCESS" such as "c 1:3 rwm"`);
  }
  int(l.memoryBytes, 'memory limit', (n) => n > 0, 'a positive number of bytes');
  int(l.memorySwapBytes, 'memory+swap limit', (n) => n === -1 || n > 0, 'a positive number of bytes or -1');
  int(l.cpuQuotaUs, 'cpu quota', (n) => n === -1 || n >= 1000, 'at least 1000 µs, or -1');
  int(l.cpuPeriodUs, 'cpu period', (n) => n >= 1000 && n <= 1_000_000, '1000 to 1000000 µs');
  int(l.cpuShares, 'cpu shares', (n) => n >= 2 && n <= 262144, '2 to 262144');
  int(l.pidsLimit, 'pids limit', () => true, 'an integer (0 or less is unlimited)');
  if (l.memorySwapBytes !== undefined && l.memoryBytes === undefined) {
    throw fail('EINVAL', 'set memory+swap limit: a memory limit must be set with it');
  }
  if (l.memorySwapBytes !== undefined && l.memorySwapBytes !== -1 && l.memorySwapBytes < l.memoryBytes!) {
    throw fail('EINVAL', `set memory+swap limit ${l.memorySwapBytes}: it must be at least the memory limit ${l.memoryBytes}`);
  }
}

/** docker's default: memory + swap = 2 × memory when only memory is given. -1 is unlimited. */
export function memorySwapOf(l: CgroupLimits): number | undefined {
  if (l.memoryBytes === undefined) return undefined;
  return l.memorySwapBytes ?? 2 * l.memoryBytes;
}

export interface Teardown {
  label: string;
  leaves: string[];
  /** Tried after the leaves; EBUSY/ENOENT/ENOTEMPTY ignored (another container may use it). */
  parents: string[];
  /** One kill round over the listed pids (v1: freeze, SIGKILL each, thaw; v2: cgroup.kill). */
  killRound(pids: number[]): Promise<void>;
  /** Called for each directory once its processes are gone, just before it is removed (best effort). */
  beforeRemove?(dir: string): Promise<void>;
}

const KILL_ROUNDS = 60; // ≈ 5 s of back-off in all
const RMDIR_ATTEMPTS = 20;

export function killPids(io: CgroupIo, pids: number[]): void {
  for (const pid of pids) {
    try {
      io.kill(pid, 'SIGKILL');
    } catch (err) {
      if (!isErrno(err, 'ESRCH')) throw fail('ESYS', `kill process ${pid}: ${causeOf(err)}`, err);
    }
  }
}

/** The leaf and every cgroup the container made below it, deepest first (the order rmdir needs). */
async function subtree(io: CgroupIo, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const child of await io.listDirs(dir)) out.push(...(await subtree(io, join(dir, child))));
  if (await io.exists(dir)) out.push(dir);
  return out;
}

async function listPids(io: CgroupIo, dirs: string[]): Promise<number[]> {
  const all = new Set<number>();
  for (const dir of dirs) for (const pid of await readPids(io, join(dir, 'cgroup.procs'))) all.add(pid);
  return [...all];
}

/**
 * Kills every process left in the group and in cgroups the container made below it (bounded), then
 * removes those directories deepest first, then the empty default parent.
 */
export async function teardown(io: CgroupIo, t: Teardown): Promise<void> {
  const dirsOf = async () => (await Promise.all(t.leaves.map((l) => subtree(io, l)))).flat();
  for (let round = 0; ; round++) {
    const pids = await listPids(io, await dirsOf());
    if (pids.length === 0) break;
    if (round >= KILL_ROUNDS) {
      throw fail('EBUSY', `destroy cgroup ${t.label}: processes ${pids.slice(0, 10).join(', ')} are still running after SIGKILL`);
    }
    await t.killRound(pids);
    await io.sleep(Math.min(10 * (round + 1), 100));
  }
  const errors: string[] = [];
  let firstErr: unknown;
  for (const leaf of await dirsOf()) {
    await t.beforeRemove?.(leaf).catch(() => undefined);
    for (let attempt = 1; ; attempt++) {
      try {
        await io.rmdir(leaf);
        break;
      } catch (err) {
        if (isErrno(err, 'ENOENT')) break;
        // Tasks that were just killed can keep a cgroup busy for a moment.
        if (isErrno(err, 'EBUSY') && attempt < RMDIR_ATTEMPTS) {
          await io.sleep(10 * attempt);
          continue;
        }
        errors.push(`remove ${leaf}: ${causeOf(err)}`);
        firstErr ??= err;
        break;
      }
    }
  }
  for (const dir of t.parents) {
    try {
      await io.rmdir(dir);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT' || code === 'EBUSY' || code === 'ENOTEMPTY') continue;
      errors.push(`remove ${dir}: ${causeOf(err)}`);
      firstErr ??= err;
    }
  }
  if (errors.length) throw fail('ESYS', `destroy cgroup ${t.label}: ${errors.join('; ')}`, firstErr);
}

/** Polls `done` with back-off until it holds or `ms` elapse (by the sum of the sleeps, not the clock). */
export async function pollUntil(io: CgroupIo, ms: number, done: () => Promise<boolean>): Promise<boolean> {
  for (let waited = 0, step = 1; ; step = Math.min(step * 2, 50)) {
    if (await done()) return true;
    if (waited >= ms) return false;
    await io.sleep(step);
    waited += step;
  }
}

/** Runs a create; on failure destroys what was made and reports both failures. */
export async function withCleanup<T>(work: () => Promise<T>, cleanup: () => Promise<void>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    try {
      await cleanup();
    } catch (cleanupErr) {
      if (err instanceof Error) err.message += `; cleanup failed too: ${(cleanupErr as Error).message}`;
    }
    throw err;
  }
}
