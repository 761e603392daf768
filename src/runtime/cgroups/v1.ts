import { basename, join } from 'node:path';
import { fail } from '../../util/errors.js';
import {
  checkReusable, ensureChain, killPids, layout, layoutOfPath, memorySwapOf, pollUntil, teardown,
  validateLimits, withCleanup, type Layout,
} from './common.js';
import { causeOf, parseCount, parseKeyed, readOptional, readText, writeValue } from './io.js';
import type { Cgroup, CgroupDriver, CgroupIo, CgroupLimits, CgroupOpenOptions, CgroupStats, CgroupView } from './types.js';

/** One mounted v1 hierarchy and the caller's cgroup in it. */
export interface V1Hierarchy {
  mountPoint: string;
  /** ["memory"], ["cpu","cpuacct"], ["name=systemd"], … */
  controllers: string[];
  /** The caller's cgroup directory in this hierarchy. */
  base: string;
}

const FREEZE_WAIT_MS = 2000;

/** cgroup v1 (legacy and hybrid hosts): one directory per mounted hierarchy. */
export class V1Driver implements CgroupDriver {
  readonly version = 1 as const;
  constructor(
    private readonly io: CgroupIo,
    readonly hierarchies: V1Hierarchy[],
  ) {}

  view(): CgroupView {
    return { version: 1, hierarchies: this.hierarchies.map((h) => ({ name: basename(h.mountPoint), controllers: [...h.controllers] })) };
  }

  private hierarchyOf(controller: string): V1Hierarchy | undefined {
    return this.hierarchies.find((h) => h.controllers.includes(controller));
  }

  async create(name: string, limits: CgroupLimits, opts?: { parent?: string }): Promise<Cgroup> {
    validateLimits(limits);
    const need = (c: string, what: string): void => {
      if (!this.hierarchyOf(c)) throw fail('EUNSUPPORTED', `set ${what}: the cgroup v1 ${c} controller is not mounted`);
    };
    if (limits.memoryBytes !== undefined) need('memory', 'memory limit');
    if (limits.cpuQuotaUs !== undefined || limits.cpuPeriodUs !== undefined || limits.cpuShares !== undefined) need('cpu', 'cpu limit');
    if (limits.pidsLimit !== undefined) need('pids', 'pids limit');

    const lays = this.hierarchies.map((h) => layout(h.mountPoint, h.base, name, opts?.parent));
    const label = lays[0]?.label ?? name;
    if (lays.length === 0) throw fail('EUNSUPPORTED', `create cgroup ${name}: no cgroup v1 hierarchy is mounted`);
    await checkReusable(this.io, lays.map((l) => l.leaf), label);
    const cg = new V1Cgroup(this.io, label, this.hierarchies, lays);
    return withCleanup(async () => {
      for (let i = 0; i < this.hierarchies.length; i++) {
        const h = this.hierarchies[i]!;
        const isCpuset = h.controllers.includes('cpuset');
        await ensureChain(this.io, lays[i]!, isCpuset ? { afterDir: (d) => this.fillCpuset(d) } : {});
      }
      await this.applyLimits(cg, limits);
      return cg;
    }, () => cg.destroy());
  }

  async open(name: string, opts?: CgroupOpenOptions): Promise<Cgroup> {
    let hs = this.hierarchies;
    let lays: Layout[];
    if (opts?.paths) {
      hs = [];
      lays = [];
      for (const p of opts.paths) {
        const h = this.hierarchies.find((x) => p.startsWith(x.mountPoint + '/'));
        if (!h) throw fail('EINVAL', `open cgroup ${p}: not inside any mounted cgroup v1 hierarchy`);
        hs.push(h);
        lays.push(layoutOfPath(h.mountPoint, p, opts.parent));
      }
    } else {
      lays = hs.map((h) => layout(h.mountPoint, h.base, name, opts?.parent));
    }
    const keepH: V1Hierarchy[] = [];
    const keepL: Layout[] = [];
    for (let i = 0; i < hs.length; i++) {
      if (await this.io.exists(lays[i]!.leaf)) {
        keepH.push(hs[i]!);
        keepL.push(lays[i]!);
      }
    }
    const label = lays[0]?.label ?? name;
    if (keepL.length === 0) {
      throw fail('ENOTFOUND', `open cgroup ${label}: no such cgroup (looked for ${lays.map((l) => l.leaf).join(', ')})`);
    }
    return new V1Cgroup(this.io, keepL[0]!.label, keepH, keepL);
  }

  /** A new cpuset has empty cpus and mems and accepts no process: copy them from the parent. */
  private async fillCpuset(dir: string): Promise<void> {
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      const own = await readOptional(this.io, join(dir, f));
      if (own === undefined || own.trim() !== '') continue;
      const parent = (await readText(this.io, join(dir, '..', f))).trim();
      await writeValue(this.io, join(dir, f), parent);
    }
  }

  private async applyLimits(cg: V1Cgroup, l: CgroupLimits): Promise<void> {
    const io = this.io;
    const mem = cg.dirOf('memory');
    if (mem && l.memoryBytes !== undefined) {
      const limitFile = join(mem, 'memory.limit_in_bytes');
      const swapFile = join(mem, 'memory.memsw.limit_in_bytes');
      const swap = memorySwapOf(l)!;
      const curSwapText = await readOptional(io, swapFile);
      if (curSwapText === undefined) {
        // No swap accounting (memsw files absent): memory only, like docker.
        await writeValue(io, limitFile, String(l.memoryBytes));
      } else {
        // The kernel keeps memsw ≥ memory at every step: raise memsw first when the new memory
        // limit is above the current memsw limit (a reused group), else memory first.
        const curSwap = parseCount(curSwapText) ?? Infinity;
        if (l.memoryBytes <= curSwap) {
          await writeValue(io, limitFile, String(l.memoryBytes));
          await writeValue(io, swapFile, String(swap));
        } else {
          await writeValue(io, swapFile, String(swap));
          await writeValue(io, limitFile, String(l.memoryBytes));
        }
      }
    }
    const cpu = cg.dirOf('cpu');
    if (cpu) {
      if (l.cpuQuotaUs !== undefined || l.cpuPeriodUs !== undefined) {
        await writeValue(io, join(cpu, 'cpu.cfs_period_us'), String(l.cpuPeriodUs ?? 100_000));
      }
      if (l.cpuQuotaUs !== undefined) await writeValue(io, join(cpu, 'cpu.cfs_quota_us'), String(l.cpuQuotaUs));
      if (l.cpuShares !== undefined) await writeValue(io, join(cpu, 'cpu.shares'), String(l.cpuShares));
    }
    const pids = cg.dirOf('pids');
    if (pids && l.pidsLimit !== undefined) {
      await writeValue(io, join(pids, 'pids.max'), l.pidsLimit > 0 ? String(l.pidsLimit) : 'max');
    }
    const devices = cg.dirOf('devices');
    if (devices && l.devices !== undefined) {
      // Deny everything, then allow the listed devices (the kernel takes one rule per write).
      await writeValue(io, join(devices, 'devices.deny'), 'a');
      for (const rule of l.devices) await writeValue(io, join(devices, 'devices.allow'), rule);
    }
  }
}

export class V1Cgroup implements Cgroup {
  readonly version = 1 as const;
  readonly paths: string[];
  constructor(
    private readonly io: CgroupIo,
    readonly name: string,
    private readonly hierarchies: V1Hierarchy[],
    private readonly layouts: Layout[],
  ) {
    this.paths = layouts.map((l) => l.leaf);
  }

  /** The leaf directory in the hierarchy that has `controller`. */
  dirOf(controller: string): string | undefined {
    const i = this.hierarchies.findIndex((h) => h.controllers.includes(controller));
    return i < 0 ? undefined : this.layouts[i]!.leaf;
  }

  async addProcess(pid: number): Promise<void> {
    for (const dir of this.paths) {
      try {
        await this.io.writeFile(join(dir, 'cgroup.procs'), String(pid));
      } catch (err) {
        throw fail('ESYS', `add process ${pid} to cgroup ${dir}: ${causeOf(err)}`, err);
      }
    }
  }

  async oomKilled(): Promise<boolean> {
    const mem = this.dirOf('memory');
    if (!mem) return false;
    const text = await readOptional(this.io, join(mem, 'memory.oom_control'));
    if (text === undefined) return false;
    return Number(parseKeyed(text).get('oom_kill') ?? 0) > 0;
  }

  async stats(): Promise<CgroupStats> {
    const s: CgroupStats = {};
    const read = (dir: string | undefined, f: string) => (dir ? readOptional(this.io, join(dir, f)) : Promise.resolve(undefined));
    const mem = this.dirOf('memory');
    const usage = parseCount(await read(mem, 'memory.usage_in_bytes'));
    if (usage !== undefined) s.memoryBytes = usage;
    const limit = parseCount(await read(mem, 'memory.limit_in_bytes'));
    if (limit !== undefined) s.memoryLimitBytes = limit;
    const pids = parseCount(await read(this.dirOf('pids'), 'pids.current'));
    if (pids !== undefined) s.pids = pids;
    const cpu = parseCount(await read(this.dirOf('cpuacct'), 'cpuacct.usage'));
    if (cpu !== undefined) s.cpuUsageNs = cpu;
    return s;
  }

  private freezerFile(what: string): string {
    const dir = this.dirOf('freezer');
    if (!dir) throw fail('EUNSUPPORTED', `${what} cgroup ${this.name}: the cgroup v1 freezer controller is not mounted`);
    return join(dir, 'freezer.state');
  }

  /** Writes the state and waits for it; FREEZING is rewritten until it settles (bounded). */
  private async setFrozen(frozen: boolean, what: string, waitMs = FREEZE_WAIT_MS): Promise<boolean> {
    const file = this.freezerFile(what);
    const want = frozen ? 'FROZEN' : 'THAWED';
    await writeValue(this.io, file, want);
    return pollUntil(this.io, waitMs, async () => {
      const state = (await readText(this.io, file)).trim();
      if (state === want) return true;
      await writeValue(this.io, file, want);
      return false;
    });
  }

  async freeze(): Promise<void> {
    if (!(await this.setFrozen(true, 'freeze'))) {
      await this.setFrozen(false, 'thaw').catch(() => false);
      throw fail('EBUSY', `freeze cgroup ${this.name}: still freezing after ${FREEZE_WAIT_MS / 1000} s`);
    }
  }

  async isFrozen(): Promise<boolean> {
    return (await readText(this.io, this.freezerFile('read the freezer state of'))).trim() !== 'THAWED';
  }

  async thaw(): Promise<void> {
    if (!(await this.setFrozen(false, 'thaw'))) {
      throw fail('EBUSY', `thaw cgroup ${this.name}: still frozen after ${FREEZE_WAIT_MS / 1000} s`);
    }
  }

  async destroy(): Promise<void> {
    const hasFreezer = this.dirOf('freezer') !== undefined;
    const memory = this.dirOf('memory');
    await teardown(this.io, {
      label: this.name,
      leaves: this.paths,
      parents: [...new Set(this.layouts.flatMap((l) => (l.tspodDir ? [l.tspodDir] : [])))],
      killRound: async (pids) => {
        // Frozen processes cannot fork between our reading cgroup.procs and the kills (runc does the same).
        if (hasFreezer) await this.setFrozen(true, 'freeze', 200).catch(() => false);
        try {
          killPids(this.io, pids);
        } finally {
          if (hasFreezer) await this.setFrozen(false, 'thaw', 200).catch(() => false);
        }
      },
      beforeRemove: async (dir) => {
        if (memory !== undefined && (dir === memory || dir.startsWith(memory + '/'))) await giveBackPageCache(this.io, dir);
      },
    });
  }
}

/** Above this, a group's page cache is left to the kernel (see giveBackPageCache). */
const FORCE_EMPTY_MAX_BYTES = 64 * 1024 * 1024;
/** Dirty pages a group may hold and still be emptied: what a container's metadata writes leave (its mount points). */
const FORCE_EMPTY_MAX_DIRTY_BYTES = 1024 * 1024;

/**
 * Makes an emptied v1 memory cgroup give back the page cache charged to it (memory.force_empty), so the
 * kernel frees the group when it is removed. Otherwise a removed memcg lives on, invisible, for as long
 * as any page charged to it stays cached (the files the container read first, the metadata blocks it
 * wrote): every container leaves one, they are freed only under memory pressure, and hundreds of them
 * slow every process start on the host (measured: `node -e 0` 55 → 80 ms with ≈ 380 of them;
 * BENCHMARKS.md, "Noise"). kubelet does the same for pod cgroups.
 * Only a small group with next to nothing unwritten: v1's reclaim waits for pages under writeback (a
 * slow disk, an NFS server that is down), which would hold up rm, stop and ps (the write is synchronous).
 * A group with pages under writeback, more than FORCE_EMPTY_MAX_DIRTY_BYTES dirty (data a container wrote
 * in its last half minute), or more than FORCE_EMPTY_MAX_BYTES in all is left to the kernel, as docker
 * leaves every group. The dirty pages allowed are the few a container's own metadata leaves.
 */
async function giveBackPageCache(io: CgroupIo, dir: string): Promise<void> {
  const usage = Number((await io.readFile(join(dir, 'memory.usage_in_bytes'))).trim());
  if (!(usage > 0 && usage <= FORCE_EMPTY_MAX_BYTES)) return;
  const stat = parseKeyed(await io.readFile(join(dir, 'memory.stat')));
  const dirty = Number(stat.get('total_dirty') ?? NaN);
  const writeback = Number(stat.get('total_writeback') ?? NaN);
  if (writeback === 0 && dirty <= FORCE_EMPTY_MAX_DIRTY_BYTES) await io.writeFile(join(dir, 'memory.force_empty'), '0');
}
