import { join } from 'node:path';
import { fail, TspodError } from '../../util/errors.js';
import {
  checkReusable, ensureChain, killPids, layout, layoutOfPath, memorySwapOf, pollUntil, teardown,
  validateLimits, withCleanup, type Layout,
} from './common.js';
import { causeOf, errnoOf, parseCount, parseKeyed, readOptional, readText, writeValue } from './io.js';
import { sharesToWeight } from './parse.js';
import { compileDeviceRules, encodeProgram } from './devices-bpf.js';
import type { Cgroup, CgroupDriver, CgroupIo, CgroupLimits, CgroupOpenOptions, CgroupStats, CgroupView } from './types.js';

/** The controllers tspod enables down to its groups (io is left alone: no limit uses it yet). */
export const V2_CONTROLLERS = ['cpu', 'memory', 'pids'] as const;

const FREEZE_WAIT_MS = 5000;

/** cgroup v2 (unified hosts): one directory; controllers enabled along the path in each subtree_control. */
export class V2Driver implements CgroupDriver {
  readonly version = 2 as const;
  constructor(
    private readonly io: CgroupIo,
    /** The cgroup2 mount point. */
    readonly mountPoint: string,
    /** The caller's cgroup directory. */
    readonly base: string,
  ) {}

  view(): CgroupView {
    return { version: 2 };
  }

  /**
   * Nests the group under the caller's cgroup (`tspod/<name>`), or under --cgroup-parent. A caller's cgroup
   * that has processes of its own (a login shell's session scope on a systemd host) cannot enable
   * controllers below it (cgroup v2's no-internal-processes rule): when a limit needs one, the group is
   * made at the top of the hierarchy instead (`/tspod/<name>`, where docker's cgroupfs driver puts its
   * `/docker/<id>`); no process is ever moved out of the caller's cgroup.
   */
  async create(name: string, limits: CgroupLimits, opts?: { parent?: string }): Promise<Cgroup> {
    validateLimits(limits);
    const busy = new Set<string>();
    try {
      return await this.createAt(layout(this.mountPoint, this.base, name, opts?.parent), limits, busy);
    } catch (err) {
      const callerBusy = opts?.parent === undefined && this.base !== this.mountPoint && busy.size > 0;
      if (!callerBusy || !(err instanceof TspodError && err.code === 'EUNSUPPORTED')) throw err;
      return this.createAt(layout(this.mountPoint, this.mountPoint, name), limits, new Set());
    }
  }

  /** Creates the group at `lay`; `busy` collects the directories that refused controllers with EBUSY. */
  private async createAt(lay: Layout, limits: CgroupLimits, busy: Set<string>): Promise<Cgroup> {
    await checkReusable(this.io, [lay.leaf], lay.label);
    const cg = new V2Cgroup(this.io, lay);
    /** Why a controller could not be enabled: the first failure on the way down. */
    const why = new Map<string, string>();
    const enable = (dir: string) => this.enableControllers(dir, why, busy);
    return withCleanup(async () => {
      await ensureChain(this.io, lay, { beforeChild: enable });
      const have = (await readText(this.io, join(lay.leaf, 'cgroup.controllers'))).trim().split(/\s+/);
      const need = (c: string, what: string): void => {
        if (have.includes(c)) return;
        throw fail('EUNSUPPORTED', `set ${what} on cgroup ${lay.leaf}: the ${c} controller is not enabled: ${why.get(c) ?? `the kernel does not delegate it to ${lay.start}`}`);
      };
      if (limits.memoryBytes !== undefined) need('memory', 'memory limit');
      if (limits.cpuQuotaUs !== undefined || limits.cpuPeriodUs !== undefined || limits.cpuShares !== undefined) need('cpu', 'cpu limit');
      if (limits.pidsLimit !== undefined) need('pids', 'pids limit');
      await this.applyLimits(lay.leaf, limits);
      return cg;
    }, () => cg.destroy());
  }

  async open(name: string, opts?: CgroupOpenOptions): Promise<Cgroup> {
    let lay: Layout;
    if (opts?.paths) {
      if (opts.paths.length !== 1) throw fail('EINVAL', `open cgroup ${name}: cgroup v2 has one directory, got ${opts.paths.length}`);
      lay = layoutOfPath(this.mountPoint, opts.paths[0]!, opts.parent);
    } else {
      lay = layout(this.mountPoint, this.base, name, opts?.parent);
    }
    if (!(await this.io.exists(lay.leaf))) throw fail('ENOTFOUND', `open cgroup ${lay.label}: no such cgroup (looked for ${lay.leaf})`);
    return new V2Cgroup(this.io, lay);
  }

  /**
   * Adds the wanted controllers that `dir` has to its subtree_control, so its children get them.
   * Failures are recorded, not thrown: only a limit that needs a missing controller fails the create.
   */
  private async enableControllers(dir: string, why: Map<string, string>, busy: Set<string>): Promise<void> {
    const available = (await readText(this.io, join(dir, 'cgroup.controllers'))).trim().split(/\s+/);
    const enabled = (await readText(this.io, join(dir, 'cgroup.subtree_control'))).trim().split(/\s+/);
    const missing: string[] = [];
    for (const c of V2_CONTROLLERS) {
      if (enabled.includes(c)) continue;
      if (available.includes(c)) missing.push(c);
      else if (!why.has(c)) why.set(c, `${dir}/cgroup.controllers does not list it`);
    }
    if (missing.length === 0) return;
    const file = join(dir, 'cgroup.subtree_control');
    try {
      await this.io.writeFile(file, missing.map((c) => `+${c}`).join(' '));
      return;
    } catch {
      // One at a time to learn which ones fail.
    }
    for (const c of missing) {
      try {
        await this.io.writeFile(file, `+${c}`);
      } catch (err) {
        if (errnoOf(err) === 'ENOENT' && !(await this.io.exists(dir))) throw err; // removed under us: retry the chain
        if (errnoOf(err) === 'EBUSY') busy.add(dir);
        const hint = errnoOf(err) === 'EBUSY'
          ? ' (cgroup v2 forbids enabling controllers below a cgroup that has processes of its own: run tspod from a cgroup without other processes, or pass a --cgroup-parent)'
          : '';
        if (!why.has(c)) why.set(c, `write "+${c}" to ${file}: ${causeOf(err)}${hint}`);
      }
    }
  }

  private async applyLimits(leaf: string, l: CgroupLimits): Promise<void> {
    const io = this.io;
    if (l.memoryBytes !== undefined) {
      await writeValue(io, join(leaf, 'memory.max'), String(l.memoryBytes));
      const swap = memorySwapOf(l)!;
      // memory.swap.max is swap alone (docker's --memory-swap is memory + swap); absent without swap accounting.
      if (await io.exists(join(leaf, 'memory.swap.max'))) {
        await writeValue(io, join(leaf, 'memory.swap.max'), swap === -1 ? 'max' : String(swap - l.memoryBytes));
      }
    }
    if (l.cpuQuotaUs !== undefined || l.cpuPeriodUs !== undefined) {
      const quota = l.cpuQuotaUs === undefined || l.cpuQuotaUs === -1 ? 'max' : String(l.cpuQuotaUs);
      await writeValue(io, join(leaf, 'cpu.max'), `${quota} ${l.cpuPeriodUs ?? 100_000}`);
    }
    if (l.cpuShares !== undefined) await writeValue(io, join(leaf, 'cpu.weight'), String(sharesToWeight(l.cpuShares)));
    if (l.pidsLimit !== undefined) await writeValue(io, join(leaf, 'pids.max'), l.pidsLimit > 0 ? String(l.pidsLimit) : 'max');
    if (l.devices !== undefined) {
      try {
        await io.attachDeviceProgram(leaf, encodeProgram(compileDeviceRules(l.devices)));
      } catch (err) {
        throw fail('ESYS', `set the device policy of cgroup ${leaf}: ${causeOf(err)}`, err);
      }
    }
  }
}

export class V2Cgroup implements Cgroup {
  readonly version = 2 as const;
  readonly name: string;
  readonly paths: string[];
  private readonly dir: string;
  constructor(
    private readonly io: CgroupIo,
    private readonly lay: Layout,
  ) {
    this.name = lay.label;
    this.dir = lay.leaf;
    this.paths = [lay.leaf];
  }

  async addProcess(pid: number): Promise<void> {
    try {
      await this.io.writeFile(join(this.dir, 'cgroup.procs'), String(pid));
    } catch (err) {
      throw fail('ESYS', `add process ${pid} to cgroup ${this.dir}: ${causeOf(err)}`, err);
    }
  }

  async oomKilled(): Promise<boolean> {
    const text = await readOptional(this.io, join(this.dir, 'memory.events'));
    return text !== undefined && Number(parseKeyed(text).get('oom_kill') ?? 0) > 0;
  }

  async stats(): Promise<CgroupStats> {
    const s: CgroupStats = {};
    const read = (f: string) => readOptional(this.io, join(this.dir, f));
    const mem = parseCount(await read('memory.current'));
    if (mem !== undefined) s.memoryBytes = mem;
    const limit = parseCount(await read('memory.max'));
    if (limit !== undefined) s.memoryLimitBytes = limit;
    const pids = parseCount(await read('pids.current'));
    if (pids !== undefined) s.pids = pids;
    const cpuStat = await read('cpu.stat');
    const usec = cpuStat === undefined ? undefined : parseCount(parseKeyed(cpuStat).get('usage_usec'));
    if (usec !== undefined) s.cpuUsageNs = usec * 1000;
    return s;
  }

  private async setFrozen(frozen: boolean, waitMs: number): Promise<boolean> {
    await writeValue(this.io, join(this.dir, 'cgroup.freeze'), frozen ? '1' : '0');
    return pollUntil(this.io, waitMs, async () => {
      const events = parseKeyed(await readText(this.io, join(this.dir, 'cgroup.events')));
      return events.get('frozen') === (frozen ? '1' : '0');
    });
  }

  async freeze(): Promise<void> {
    if (!(await this.setFrozen(true, FREEZE_WAIT_MS))) {
      await this.setFrozen(false, 200).catch(() => false);
      throw fail('EBUSY', `freeze cgroup ${this.name}: not frozen after ${FREEZE_WAIT_MS / 1000} s`);
    }
  }

  async isFrozen(): Promise<boolean> {
    return (await readText(this.io, join(this.dir, 'cgroup.freeze'))).trim() === '1';
  }

  async thaw(): Promise<void> {
    if (!(await this.setFrozen(false, FREEZE_WAIT_MS))) {
      throw fail('EBUSY', `thaw cgroup ${this.name}: still frozen after ${FREEZE_WAIT_MS / 1000} s`);
    }
  }

  async destroy(): Promise<void> {
    const killFile = join(this.dir, 'cgroup.kill');
    await teardown(this.io, {
      label: this.name,
      leaves: this.paths,
      parents: this.lay.tspodDir ? [this.lay.tspodDir] : [],
      killRound: async (pids) => {
        // cgroup.kill (Linux 5.14+) kills the whole subtree at once, forks included.
        if (await this.io.exists(killFile)) {
          await writeValue(this.io, killFile, '1');
          return;
        }
        await this.setFrozen(true, 200).catch(() => false);
        try {
          killPids(this.io, pids);
        } finally {
          await this.setFrozen(false, 200).catch(() => false);
        }
      },
    });
  }
}
