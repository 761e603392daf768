/**
 * A cgroupfs stand-in for unit tests: a temp directory whose mkdir, rmdir and writes follow the
 * kernel's rules closely enough that a driver bug shows. mkdir populates the interface files (v2:
 * controller files only for controllers the parent enabled in subtree_control); writes never create
 * files; rmdir fails EBUSY on a group with processes or children, and otherwise removes the interface
 * files with the directory as the kernel does; subtree_control obeys availability and the
 * no-internal-process rule; cgroup.procs moves a pid within its hierarchy; kill() and cgroup.kill
 * remove pids, and are recorded, never sent to real processes.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { CgroupIo } from './types.js';

export interface FakeHierarchy {
  /** Directory of the hierarchy's root cgroup (a mount point in the fake tree). */
  dir: string;
  version: 1 | 2;
  /** v1: the hierarchy's controllers; v2: the root's cgroup.controllers. */
  controllers: string[];
}

export interface FakeOptions {
  /** memory.memsw.* (v1) and memory.swap.max (v2) exist. Default true. */
  swapAccounting?: boolean;
  /** cgroup.kill exists (v2, Linux 5.14+). Default true. */
  cgroupKill?: boolean;
}

function errno(code: string, what: string): Error {
  return Object.assign(new Error(`${code}: ${what}`), { code });
}

const V1_UNLIMITED = 9223372036854771712n;

export class FakeCgroupFs implements CgroupIo {
  readonly writes: { path: string; data: string }[] = [];
  readonly killed: { pid: number; signal: string }[] = [];
  /** Device programs attached (cgroup v2), as the kernel would get them. */
  readonly devicePrograms: { dir: string; insns: Buffer }[] = [];
  private readonly opts: Required<FakeOptions>;

  constructor(
    readonly hierarchies: FakeHierarchy[],
    opts: FakeOptions = {},
  ) {
    this.opts = { swapAccounting: opts.swapAccounting ?? true, cgroupKill: opts.cgroupKill ?? true };
    for (const h of hierarchies) {
      mkdirSync(h.dir, { recursive: true });
      const files: Record<string, string> = { 'cgroup.procs': '' };
      if (h.version === 2) {
        files['cgroup.controllers'] = h.controllers.join(' ');
        files['cgroup.subtree_control'] = '';
        files['cgroup.stat'] = '';
      } else {
        files['tasks'] = '';
        files['cgroup.clone_children'] = '0';
        if (h.controllers.includes('cpuset')) Object.assign(files, { 'cpuset.cpus': '0-1', 'cpuset.mems': '0' });
        if (h.controllers.includes('memory')) Object.assign(files, { 'memory.limit_in_bytes': String(V1_UNLIMITED), 'memory.usage_in_bytes': '0' });
      }
      for (const [f, v] of Object.entries(files)) writeFileSync(join(h.dir, f), v ? v + '\n' : '');
    }
  }

  private hierarchyOf(path: string): { h: FakeHierarchy; rel: string } | undefined {
    for (const h of this.hierarchies) {
      const rel = relative(h.dir, path);
      if (rel === '' || (!rel.startsWith('..') && !rel.startsWith('/'))) return { h, rel };
    }
    return undefined;
  }

  private read(path: string): string {
    return readFileSync(path, 'utf8');
  }

  private set(path: string, value: string): void {
    writeFileSync(path, value === '' ? '' : value + '\n');
  }

  private pidsOf(dir: string): number[] {
    const f = join(dir, 'cgroup.procs');
    if (!existsSync(f)) return [];
    return this.read(f).split('\n').filter(Boolean).map(Number);
  }

  private cgroupsUnder(dir: string): string[] {
    const out = [dir];
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) out.push(...this.cgroupsUnder(join(dir, e.name)));
    return out;
  }

  /** Test helper: puts pids into a cgroup directly (like processes the test did not start through a driver). */
  addPids(dir: string, ...pids: number[]): void {
    for (const pid of pids) this.movePid(dir, pid);
  }

  private movePid(dir: string, pid: number): void {
    const hh = this.hierarchyOf(dir);
    if (!hh) throw errno('ENOENT', dir);
    for (const cg of this.cgroupsUnder(hh.h.dir)) this.set(join(cg, 'cgroup.procs'), this.pidsOf(cg).filter((p) => p !== pid).join('\n'));
    this.set(join(dir, 'cgroup.procs'), [...this.pidsOf(dir), pid].join('\n'));
  }

  private removePid(pid: number): void {
    for (const h of this.hierarchies) {
      for (const cg of this.cgroupsUnder(h.dir)) {
        const pids = this.pidsOf(cg);
        if (pids.includes(pid)) this.set(join(cg, 'cgroup.procs'), pids.filter((p) => p !== pid).join('\n'));
      }
    }
  }

  async readFile(path: string): Promise<string> {
    if (!existsSync(path)) throw errno('ENOENT', path);
    return this.read(path);
  }

  async exists(path: string): Promise<boolean> {
    return existsSync(path);
  }

  async mkdir(path: string): Promise<void> {
    const hh = this.hierarchyOf(path);
    if (!hh || hh.rel === '') throw errno('EPERM', `mkdir ${path}`);
    if (!existsSync(dirname(path))) throw errno('ENOENT', `mkdir ${path}`);
    if (existsSync(path)) throw errno('EEXIST', `mkdir ${path}`);
    mkdirSync(path);
    const files: Record<string, string> = { 'cgroup.procs': '' };
    const c = hh.h.version === 2 ? this.read(join(dirname(path), 'cgroup.subtree_control')).trim().split(/\s+/).filter(Boolean) : hh.h.controllers;
    const swap = this.opts.swapAccounting;
    if (hh.h.version === 2) {
      Object.assign(files, {
        'cgroup.controllers': c.join(' '), 'cgroup.subtree_control': '', 'cgroup.freeze': '0',
        'cgroup.events': 'populated 0\nfrozen 0', 'cgroup.type': 'domain',
      });
      if (this.opts.cgroupKill) files['cgroup.kill'] = '';
      if (c.includes('memory')) {
        Object.assign(files, { 'memory.max': 'max', 'memory.current': '0', 'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0' });
        if (swap) files['memory.swap.max'] = 'max';
      }
      if (c.includes('cpu')) Object.assign(files, { 'cpu.max': 'max 100000', 'cpu.weight': '100', 'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0' });
      if (c.includes('pids')) Object.assign(files, { 'pids.max': 'max', 'pids.current': '0' });
      if (c.includes('io')) files['io.max'] = '';
    } else {
      Object.assign(files, { tasks: '', 'cgroup.clone_children': '0', notify_on_release: '0' });
      if (c.includes('memory')) {
        Object.assign(files, {
          'memory.limit_in_bytes': String(V1_UNLIMITED), 'memory.usage_in_bytes': '0',
          'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0',
        });
        if (swap) files['memory.memsw.limit_in_bytes'] = String(V1_UNLIMITED);
      }
      if (c.includes('cpu')) Object.assign(files, { 'cpu.cfs_quota_us': '-1', 'cpu.cfs_period_us': '100000', 'cpu.shares': '1024' });
      if (c.includes('cpuacct')) files['cpuacct.usage'] = '0';
      if (c.includes('pids')) Object.assign(files, { 'pids.max': 'max', 'pids.current': '0' });
      if (c.includes('cpuset')) Object.assign(files, { 'cpuset.cpus': '', 'cpuset.mems': '' });
      if (c.includes('freezer')) files['freezer.state'] = 'THAWED';
    }
    for (const [f, v] of Object.entries(files)) this.set(join(path, f), v);
  }

  async rmdir(path: string): Promise<void> {
    const hh = this.hierarchyOf(path);
    if (!existsSync(path)) throw errno('ENOENT', `rmdir ${path}`);
    if (!hh || hh.rel === '') throw errno('EBUSY', `rmdir ${path}`);
    const entries = readdirSync(path, { withFileTypes: true });
    if (entries.some((e) => e.isDirectory())) throw errno('EBUSY', `rmdir ${path}: has child cgroups`);
    if (this.pidsOf(path).length) throw errno('EBUSY', `rmdir ${path}: has processes`);
    rmSync(path, { recursive: true });
  }

  async listDirs(path: string): Promise<string[]> {
    if (!existsSync(path)) return [];
    return readdirSync(path, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  }

  kill(pid: number, signal: NodeJS.Signals): void {
    this.killed.push({ pid, signal });
    if (signal === 'SIGKILL') this.removePid(pid);
  }

  async attachDeviceProgram(dir: string, insns: Buffer): Promise<void> {
    if (!existsSync(join(dir, 'cgroup.procs'))) throw errno('ENOENT', `open ${dir}`);
    this.devicePrograms.push({ dir, insns });
  }

    async sleep(): Promise<void> {
    await new Promise((r) => setImmediate(r));
  }

  async writeFile(path: string, data: string): Promise<void> {
    if (!existsSync(path) || !statSync(path).isFile()) throw errno('ENOENT', `open ${path}`);
    const dir = dirname(path);
    const hh = this.hierarchyOf(dir)!;
    const isRoot = hh.rel === '';
    const file = path.slice(dir.length + 1);
    const value = data.trim();
    this.writes.push({ path, data });
    switch (file) {
      case 'cgroup.procs': {
        const pid = Number(value);
        if (!Number.isInteger(pid) || pid <= 0) throw errno('EINVAL', path);
        if (hh.h.version === 1 && existsSync(join(dir, 'cpuset.cpus')) && this.read(join(dir, 'cpuset.cpus')).trim() === '') {
          throw errno('ENOSPC', path);
        }
        if (hh.h.version === 2 && !isRoot && this.read(join(dir, 'cgroup.subtree_control')).trim() !== '') throw errno('EBUSY', path);
        this.movePid(dir, pid);
        return;
      }
      case 'cgroup.subtree_control': {
        const available = this.read(join(dir, 'cgroup.controllers')).trim().split(/\s+/);
        const current = new Set(this.read(path).trim().split(/\s+/).filter(Boolean));
        for (const tok of value.split(/\s+/)) {
          const c = tok.slice(1);
          if (!/^[+-]/.test(tok) || !available.includes(c)) throw errno('ENOENT', `${path}: ${tok}`);
          if (tok[0] === '+' && !isRoot && this.pidsOf(dir).length) throw errno('EBUSY', `${path}: has processes`);
        }
        for (const tok of value.split(/\s+/)) {
          if (tok[0] === '+') current.add(tok.slice(1));
          else current.delete(tok.slice(1));
        }
        this.set(path, [...current].join(' '));
        return;
      }
      case 'cgroup.kill':
        if (value !== '1') throw errno('EINVAL', path);
        for (const cg of this.cgroupsUnder(dir)) for (const pid of this.pidsOf(cg)) this.kill(pid, 'SIGKILL');
        return;
      case 'cgroup.freeze': {
        if (value !== '0' && value !== '1') throw errno('EINVAL', path);
        this.set(path, value);
        this.set(join(dir, 'cgroup.events'), `populated ${this.pidsOf(dir).length ? 1 : 0}\nfrozen ${value}`);
        return;
      }
      case 'freezer.state':
        if (value !== 'FROZEN' && value !== 'THAWED') throw errno('EINVAL', path);
        this.set(path, value);
        return;
      case 'memory.limit_in_bytes':
      case 'memory.memsw.limit_in_bytes': {
        const v = value === '-1' ? V1_UNLIMITED : BigInt(value);
        const other = join(dir, file === 'memory.limit_in_bytes' ? 'memory.memsw.limit_in_bytes' : 'memory.limit_in_bytes');
        if (existsSync(other)) {
          const o = BigInt(this.read(other).trim());
          // The kernel keeps memsw ≥ memory.
          if (file === 'memory.limit_in_bytes' ? v > o : v < o) throw errno('EINVAL', path);
        }
        this.set(path, String(v));
        return;
      }
      case 'cpuset.cpus':
      case 'cpuset.mems': {
        const parent = this.read(join(dirname(dir), file)).trim();
        if (value !== '' && parent === '') throw errno('EINVAL', `${path}: the parent's is empty`);
        this.set(path, value);
        return;
      }
      default:
        if (file.startsWith('cgroup.') && !['cgroup.clone_children'].includes(file)) throw errno('EINVAL', path);
        this.set(path, value);
    }
  }
}
