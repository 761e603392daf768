import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeCgroupFs, type FakeOptions } from '../../../src/runtime/cgroups/fake.js';
import { V1Driver, type V1Hierarchy } from '../../../src/runtime/cgroups/v1.js';
import { V2Driver } from '../../../src/runtime/cgroups/v2.js';
import { compileDeviceRules, encodeProgram } from '../../../src/runtime/cgroups/devices-bpf.js';

const tmp = mkdtempSync(join(tmpdir(), 'tspod-cgdrv-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const read = (p: string) => readFileSync(p, 'utf8').trim();
const MiB = 1024 * 1024;

/** A unified tree: root → user.slice → session-1.scope (the caller), controllers delegated down to the caller. */
async function v2Tree(opts?: FakeOptions & { callerPids?: number[] }) {
  const mount = join(mkdtempSync(join(tmp, 'v2-')), 'sys/fs/cgroup');
  const fs = new FakeCgroupFs([{ dir: mount, version: 2, controllers: ['cpuset', 'cpu', 'io', 'memory', 'pids'] }], opts);
  await fs.writeFile(join(mount, 'cgroup.subtree_control'), '+cpu +io +memory +pids');
  await fs.mkdir(join(mount, 'user.slice'));
  await fs.writeFile(join(mount, 'user.slice/cgroup.subtree_control'), '+cpu +memory +pids');
  const caller = join(mount, 'user.slice/session-1.scope');
  await fs.mkdir(caller);
  if (opts?.callerPids) fs.addPids(caller, ...opts.callerPids);
  return { fs, mount, caller, driver: new V2Driver(fs, mount, caller) };
}

describe('v2 driver (fake cgroupfs)', () => {
  it('nests under the caller, enables controllers on the way and writes the limits', async () => {
    const { fs, caller, driver } = await v2Tree();
    const cg = await driver.create('c1', { memoryBytes: 32 * MiB, cpuQuotaUs: 50000, cpuShares: 512, pidsLimit: 20 });
    const leaf = join(caller, 'tspod/c1');
    expect(cg).toMatchObject({ name: 'tspod/c1', version: 2, paths: [leaf] });
    for (const dir of [caller, join(caller, 'tspod')]) {
      expect(read(join(dir, 'cgroup.subtree_control')).split(' ').sort()).toEqual(['cpu', 'memory', 'pids']);
    }
    expect(read(join(leaf, 'memory.max'))).toBe(String(32 * MiB));
    expect(read(join(leaf, 'memory.swap.max'))).toBe(String(32 * MiB)); // docker: memory+swap = 2 × memory
    expect(read(join(leaf, 'cpu.max'))).toBe('50000 100000');
    expect(read(join(leaf, 'cpu.weight'))).toBe('20');
    expect(read(join(leaf, 'pids.max'))).toBe('20');
    await cg.destroy();
    expect(existsSync(leaf)).toBe(false);
    expect(existsSync(join(caller, 'tspod'))).toBe(false);
    expect(existsSync(caller)).toBe(true);
    expect(fs.killed).toEqual([]);
  });

  it('attaches the device policy as a program compiled from the rules, only when rules are given', async () => {
    const { fs, driver } = await v2Tree();
    const cg = await driver.create('dev', { devices: ['c *:* m', 'c 1:3 rwm'] });
    expect(fs.devicePrograms).toHaveLength(1);
    const { dir, insns } = fs.devicePrograms[0]!;
    expect(dir).toBe(cg.paths[0]);
    expect(insns).toEqual(encodeProgram(compileDeviceRules(['c *:* m', 'c 1:3 rwm'])));
    await cg.destroy();
    const open = await driver.create('privileged', {});
    expect(fs.devicePrograms).toHaveLength(1); // --privileged: no rules, no program
    await open.destroy();
    await expect(driver.create('bad', { devices: ['c 1:3 x'] })).rejects.toThrow(/set device rule "c 1:3 x"/);
  });

  it('adds processes, reads stats and OOM kills, freezes and thaws', async () => {
    const { driver } = await v2Tree();
    const cg = await driver.create('c2', { memoryBytes: 64 * MiB });
    const leaf = cg.paths[0]!;
    await cg.addProcess(4242);
    expect(read(join(leaf, 'cgroup.procs'))).toBe('4242');
    writeFileSync(join(leaf, 'memory.current'), '1234\n');
    writeFileSync(join(leaf, 'pids.current'), '3\n');
    writeFileSync(join(leaf, 'cpu.stat'), 'usage_usec 1500\nuser_usec 1000\n');
    expect(await cg.stats()).toEqual({ memoryBytes: 1234, memoryLimitBytes: 64 * MiB, pids: 3, cpuUsageNs: 1_500_000 });
    expect(await cg.oomKilled()).toBe(false);
    writeFileSync(join(leaf, 'memory.events'), 'low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n');
    expect(await cg.oomKilled()).toBe(true);
    await cg.freeze();
    expect(read(join(leaf, 'cgroup.freeze'))).toBe('1');
    await cg.thaw();
    expect(read(join(leaf, 'cgroup.freeze'))).toBe('0');
    await cg.destroy();
  });

  it('destroy kills what is left through cgroup.kill, removes the dirs and is idempotent', async () => {
    const { fs, caller, driver } = await v2Tree();
    const cg = await driver.create('c3', {});
    await cg.addProcess(101);
    await cg.addProcess(102);
    await cg.destroy();
    expect(fs.killed.map((k) => k.pid).sort()).toEqual([101, 102]);
    expect(fs.writes.some((w) => w.path.endsWith('tspod/c3/cgroup.kill'))).toBe(true);
    expect(existsSync(join(caller, 'tspod'))).toBe(false);
    await cg.destroy();
  });

  it('destroy also empties and removes cgroups the container made below its group', async () => {
    const { fs, caller, driver } = await v2Tree({ cgroupKill: false });
    const cg = await driver.create('n1', {});
    await fs.mkdir(join(cg.paths[0]!, 'inner'));
    await fs.mkdir(join(cg.paths[0]!, 'inner/deeper'));
    fs.addPids(join(cg.paths[0]!, 'inner/deeper'), 77);
    await cg.destroy();
    expect(fs.killed).toEqual([{ pid: 77, signal: 'SIGKILL' }]);
    expect(existsSync(join(caller, 'tspod'))).toBe(false);
  });

  it('without cgroup.kill, freezes and SIGKILLs each pid', async () => {
    const { fs, driver } = await v2Tree({ cgroupKill: false });
    const cg = await driver.create('c4', {});
    await cg.addProcess(7);
    await cg.destroy();
    expect(fs.killed).toEqual([{ pid: 7, signal: 'SIGKILL' }]);
    expect(fs.writes.filter((w) => w.path.endsWith('cgroup.freeze')).map((w) => w.data)).toEqual(['1', '0']);
  });

  it('destroy keeps a tspod/ parent that another container still uses', async () => {
    const { caller, driver } = await v2Tree();
    const a = await driver.create('a', {});
    const b = await driver.create('b', {});
    await a.destroy();
    expect(existsSync(join(caller, 'tspod/b'))).toBe(true);
    await b.destroy();
    expect(existsSync(join(caller, 'tspod'))).toBe(false);
  });

  it('a caller cgroup with processes of its own cannot delegate: a group with limits goes to the top of the hierarchy', async () => {
    const { fs, mount, caller, driver } = await v2Tree({ callerPids: [1] });
    // Without limits the group nests under the caller as always (tracking, freeze, kill need no controller).
    const plain = await driver.create('c5', {});
    expect(plain.paths).toEqual([join(caller, 'tspod/c5')]);
    expect(existsSync(join(plain.paths[0]!, 'memory.max'))).toBe(false);
    await plain.destroy();
    // With a limit: /tspod/<id> below the root (docker's cgroupfs layout), the caller's pids untouched.
    const cg = await driver.create('c6', { memoryBytes: 32 * MiB });
    expect(cg.paths).toEqual([join(mount, 'tspod/c6')]);
    expect(read(join(mount, 'tspod/c6/memory.max'))).toBe(String(32 * MiB));
    expect(existsSync(join(caller, 'tspod'))).toBe(false); // the failed attempt left nothing
    expect(read(join(caller, 'cgroup.procs'))).toBe('1');
    await cg.destroy();
    expect(existsSync(join(mount, 'tspod'))).toBe(false);
    // Reopened from its recorded path by a later command.
    const again = await driver.create('c7', { pidsLimit: 5 });
    const reopened = await driver.open('c7', { paths: again.paths });
    await reopened.destroy();
    expect(existsSync(join(mount, 'tspod'))).toBe(false);
    expect(fs.killed).toEqual([]);
  });

  it('with --cgroup-parent below a busy caller, a limit fails clearly and nothing is left', async () => {
    const { caller, driver } = await v2Tree({ callerPids: [1] });
    const err = await driver.create('c8', { memoryBytes: 32 * MiB }, { parent: 'jobs' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EUNSUPPORTED' });
    expect((err as Error).message).toContain('the memory controller is not enabled');
    expect((err as Error).message).toContain('EBUSY');
    expect((err as Error).message).toContain('--cgroup-parent');
    expect(existsSync(join(caller, 'jobs/c8'))).toBe(false);
  });

  it('skips memory.swap.max without swap accounting and writes "max" for unlimited swap', async () => {
    const a = await v2Tree({ swapAccounting: false });
    const cg = await a.driver.create('s1', { memoryBytes: 32 * MiB });
    expect(read(join(cg.paths[0]!, 'memory.max'))).toBe(String(32 * MiB));
    await cg.destroy();
    const b = await v2Tree();
    const cg2 = await b.driver.create('s2', { memoryBytes: 32 * MiB, memorySwapBytes: -1 });
    expect(read(join(cg2.paths[0]!, 'memory.swap.max'))).toBe('max');
    await cg2.destroy();
    const cg3 = await b.driver.create('s3', { memoryBytes: 32 * MiB, memorySwapBytes: 48 * MiB });
    expect(read(join(cg3.paths[0]!, 'memory.swap.max'))).toBe(String(16 * MiB));
    await cg3.destroy();
  });

  it('rejects bad limits, names and parents before creating anything', async () => {
    const { caller, driver } = await v2Tree();
    await expect(driver.create('x', { memoryBytes: 64 * MiB, memorySwapBytes: 32 * MiB })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(driver.create('x', { memorySwapBytes: 32 * MiB })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(driver.create('x', { cpuShares: 1 })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(driver.create('a/b', {})).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(driver.create('..', {})).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(driver.create('x', {}, { parent: '../escape' })).rejects.toMatchObject({ code: 'EINVAL' });
    expect(existsSync(join(caller, 'tspod'))).toBe(false);
  });

  it('reuses an empty group left by a crashed run, refuses one with processes and leaves it alone', async () => {
    const { fs, caller, driver } = await v2Tree();
    const first = await driver.create('r1', {});
    // "crash": the group stays; a new run creates it again
    const again = await driver.create('r1', { pidsLimit: 5 });
    expect(read(join(again.paths[0]!, 'pids.max'))).toBe('5');
    await first.addProcess(55);
    await expect(driver.create('r1', {})).rejects.toMatchObject({ code: 'EEXIST', message: expect.stringContaining('55') });
    expect(read(join(caller, 'tspod/r1/cgroup.procs'))).toBe('55');
    expect(fs.killed).toEqual([]);
    await again.destroy();
  });

  it('retries when a concurrent destroy removes the empty tspod/ parent under the mkdir', async () => {
    const { fs, caller, driver } = await v2Tree();
    const warm = await driver.create('w', {});
    await warm.destroy();
    let raced = false;
    const racy = Object.create(fs) as FakeCgroupFs;
    racy.mkdir = async (p: string) => {
      if (!raced && p.endsWith('tspod/late')) {
        raced = true;
        await fs.rmdir(join(caller, 'tspod')); // the other container's destroy wins the race
      }
      return fs.mkdir(p);
    };
    await fs.mkdir(join(caller, 'tspod'));
    const cg = await new V2Driver(racy, driverMount(driver), caller).create('late', { memoryBytes: 32 * MiB });
    expect(raced).toBe(true);
    expect(read(join(cg.paths[0]!, 'memory.max'))).toBe(String(32 * MiB));
    await cg.destroy();
  });

  it('honours --cgroup-parent: absolute from the root, relative to the caller; a user parent is kept', async () => {
    const { mount, caller, driver } = await v2Tree();
    const abs = await driver.create('p1', { pidsLimit: 3 }, { parent: '/batch' });
    expect(abs.paths).toEqual([join(mount, 'batch/p1')]);
    expect(abs.name).toBe('/batch/p1');
    expect(read(join(mount, 'batch/p1/pids.max'))).toBe('3');
    await abs.destroy();
    expect(existsSync(join(mount, 'batch/p1'))).toBe(false);
    expect(existsSync(join(mount, 'batch'))).toBe(true);
    const rel = await driver.create('p2', {}, { parent: 'jobs/nightly' });
    expect(rel.paths).toEqual([join(caller, 'jobs/nightly/p2')]);
    await rel.destroy();
  });

  it('opens a group by name, or by recorded paths from another caller cgroup; ENOTFOUND when gone', async () => {
    const { fs, mount, driver } = await v2Tree();
    const cg = await driver.create('o1', {});
    expect((await driver.open('o1')).paths).toEqual(cg.paths);
    await fs.mkdir(join(mount, 'other'));
    const elsewhere = new V2Driver(fs, mount, join(mount, 'other'));
    await expect(elsewhere.open('o1')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    const reopened = await elsewhere.open('o1', { paths: cg.paths });
    expect(reopened.name).toBe('tspod/o1');
    await reopened.addProcess(9);
    await reopened.destroy();
    expect(existsSync(join(driverBase(driver), 'tspod'))).toBe(false);
    await expect(driver.open('o1')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(elsewhere.open('x', { paths: ['/etc'] })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(elsewhere.open('x', { paths: [mount] })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(elsewhere.open('x', { paths: [mount + '/'] })).rejects.toMatchObject({ code: 'EINVAL' });
  });
});

function driverMount(d: V2Driver): string {
  return d.mountPoint;
}
function driverBase(d: V2Driver): string {
  return d.base;
}

/** A hybrid-like v1 tree: memory nested at /process_api/abc, the rest at the root. */
async function v1Tree(opts?: FakeOptions & { without?: string[] }) {
  const root = join(mkdtempSync(join(tmp, 'v1-')), 'sys/fs/cgroup');
  const all = [['cpu'], ['cpuacct'], ['cpuset'], ['memory'], ['freezer'], ['pids'], ['name=systemd']];
  const sets = all.filter((c) => !opts?.without?.includes(c[0]!));
  const dirOf = (c: string[]) => join(root, c[0]!.replace('name=', ''));
  const fs = new FakeCgroupFs(sets.map((c) => ({ dir: dirOf(c), version: 1 as const, controllers: c })), opts);
  await fs.mkdir(join(root, 'memory/process_api'));
  await fs.mkdir(join(root, 'memory/process_api/abc'));
  const hierarchies: V1Hierarchy[] = sets.map((c) => ({
    mountPoint: dirOf(c), controllers: c, base: c[0] === 'memory' ? join(root, 'memory/process_api/abc') : dirOf(c),
  }));
  return { fs, root, driver: new V1Driver(fs, hierarchies) };
}

describe('v1 driver (fake cgroupfs)', () => {
  it('creates one nested directory per hierarchy and writes the limits', async () => {
    const { root, driver } = await v1Tree();
    const cg = await driver.create('g1', { memoryBytes: 32 * MiB, cpuQuotaUs: 50000, cpuShares: 512, pidsLimit: 20 });
    const mem = join(root, 'memory/process_api/abc/tspod/g1');
    expect(cg.version).toBe(1);
    expect(cg.paths).toEqual([
      join(root, 'cpu/tspod/g1'), join(root, 'cpuacct/tspod/g1'), join(root, 'cpuset/tspod/g1'), mem,
      join(root, 'freezer/tspod/g1'), join(root, 'pids/tspod/g1'), join(root, 'systemd/tspod/g1'),
    ]);
    expect(read(join(mem, 'memory.limit_in_bytes'))).toBe(String(32 * MiB));
    expect(read(join(mem, 'memory.memsw.limit_in_bytes'))).toBe(String(64 * MiB));
    expect(read(join(root, 'cpu/tspod/g1/cpu.cfs_quota_us'))).toBe('50000');
    expect(read(join(root, 'cpu/tspod/g1/cpu.cfs_period_us'))).toBe('100000');
    expect(read(join(root, 'cpu/tspod/g1/cpu.shares'))).toBe('512');
    expect(read(join(root, 'pids/tspod/g1/pids.max'))).toBe('20');
    // a new cpuset has no cpus and would refuse processes: copied from the parent, level by level
    expect(read(join(root, 'cpuset/tspod/cpuset.cpus'))).toBe('0-1');
    expect(read(join(root, 'cpuset/tspod/g1/cpuset.mems'))).toBe('0');
    await cg.addProcess(300);
    for (const p of cg.paths) expect(read(join(p, 'cgroup.procs'))).toBe('300');
    await cg.destroy();
    for (const p of cg.paths) expect(existsSync(p)).toBe(false);
    expect(existsSync(join(root, 'cpu/tspod'))).toBe(false);
    expect(existsSync(join(root, 'memory/process_api/abc/tspod'))).toBe(false);
    expect(existsSync(join(root, 'memory/process_api/abc'))).toBe(true);
  });

  it('destroy freezes, SIGKILLs every pid, thaws, then removes', async () => {
    const { fs, driver } = await v1Tree();
    const cg = await driver.create('g2', {});
    await cg.addProcess(11);
    await cg.addProcess(12);
    await cg.destroy();
    expect(fs.killed).toEqual([{ pid: 11, signal: 'SIGKILL' }, { pid: 12, signal: 'SIGKILL' }]);
    expect(fs.writes.filter((w) => w.path.endsWith('freezer.state')).map((w) => w.data)).toEqual(['FROZEN', 'THAWED']);
    await cg.destroy();
  });

  it('destroy removes child cgroups in every hierarchy, deepest first', async () => {
    const { fs, root, driver } = await v1Tree();
    const cg = await driver.create('n2', {});
    for (const p of cg.paths) await fs.mkdir(join(p, 'sub'));
    fs.addPids(join(cg.paths[5]!, 'sub'), 88);
    await cg.destroy();
    expect(fs.killed).toEqual([{ pid: 88, signal: 'SIGKILL' }]);
    expect(existsSync(join(root, 'pids/tspod'))).toBe(false);
  });

  it('skips memsw without swap accounting; -1 is unlimited swap', async () => {
    const a = await v1Tree({ swapAccounting: false });
    const cg = await a.driver.create('g3', { memoryBytes: 32 * MiB });
    expect(read(join(cg.paths[3]!, 'memory.limit_in_bytes'))).toBe(String(32 * MiB));
    expect(existsSync(join(cg.paths[3]!, 'memory.memsw.limit_in_bytes'))).toBe(false);
    await cg.destroy();
    const b = await v1Tree();
    const cg2 = await b.driver.create('g4', { memoryBytes: 32 * MiB, memorySwapBytes: -1 });
    expect(read(join(cg2.paths[3]!, 'memory.memsw.limit_in_bytes'))).toBe('9223372036854771712');
    await cg2.destroy();
  });

  it('orders memory and memsw writes so memsw ≥ memory holds when a reused group grows', async () => {
    const { driver } = await v1Tree();
    await driver.create('g5', { memoryBytes: 32 * MiB });
    const cg = await driver.create('g5', { memoryBytes: 128 * MiB });
    expect(read(join(cg.paths[3]!, 'memory.limit_in_bytes'))).toBe(String(128 * MiB));
    expect(read(join(cg.paths[3]!, 'memory.memsw.limit_in_bytes'))).toBe(String(256 * MiB));
    const shrunk = await driver.create('g5', { memoryBytes: 16 * MiB });
    expect(read(join(shrunk.paths[3]!, 'memory.memsw.limit_in_bytes'))).toBe(String(32 * MiB));
    await cg.destroy();
  });

  it('stats, oomKilled, freeze and thaw', async () => {
    const { driver } = await v1Tree();
    const cg = await driver.create('g6', {});
    const mem = cg.paths[3]!;
    writeFileSync(join(mem, 'memory.usage_in_bytes'), '4096\n');
    writeFileSync(join(cg.paths[1]!, 'cpuacct.usage'), '777\n');
    writeFileSync(join(cg.paths[5]!, 'pids.current'), '2\n');
    expect(await cg.stats()).toEqual({ memoryBytes: 4096, pids: 2, cpuUsageNs: 777 }); // no limit: unlimited
    expect(await cg.oomKilled()).toBe(false);
    writeFileSync(join(mem, 'memory.oom_control'), 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n');
    expect(await cg.oomKilled()).toBe(true);
    await cg.freeze();
    expect(read(join(cg.paths[4]!, 'freezer.state'))).toBe('FROZEN');
    await cg.thaw();
    expect(read(join(cg.paths[4]!, 'freezer.state'))).toBe('THAWED');
    await cg.destroy();
  });

  it('fails clearly for a limit whose controller is not mounted', async () => {
    const { root, driver } = await v1Tree({ without: ['pids', 'freezer'] });
    await expect(driver.create('g7', { pidsLimit: 10 })).rejects.toMatchObject({ code: 'EUNSUPPORTED', message: expect.stringContaining('pids') });
    expect(existsSync(join(root, 'cpu/tspod'))).toBe(false);
    const cg = await driver.create('g7', {});
    await expect(cg.freeze()).rejects.toMatchObject({ code: 'EUNSUPPORTED' });
    await cg.addProcess(5);
    await cg.destroy(); // no freezer: plain SIGKILL
    expect(existsSync(join(root, 'cpu/tspod'))).toBe(false);
  });

  it('a failed limit write removes what the create made', async () => {
    const { fs, root, driver } = await v1Tree();
    const broken = Object.create(fs) as FakeCgroupFs;
    broken.writeFile = async (p: string, d: string) => {
      if (p.endsWith('pids.max')) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
      return fs.writeFile(p, d);
    };
    const d = new V1Driver(broken, driver.hierarchies);
    await expect(d.create('g8', { pidsLimit: 10 })).rejects.toMatchObject({ code: 'ESYS', message: expect.stringContaining('pids.max') });
    expect(existsSync(join(root, 'cpu/tspod'))).toBe(false);
    expect(existsSync(join(root, 'memory/process_api/abc/tspod'))).toBe(false);
  });

  it('opens by name and by recorded paths', async () => {
    const { driver } = await v1Tree();
    const cg = await driver.create('g9', {});
    expect((await driver.open('g9')).paths).toEqual(cg.paths);
    const byPaths = await driver.open('g9', { paths: cg.paths });
    expect(byPaths.paths).toEqual(cg.paths);
    await byPaths.destroy();
    await expect(driver.open('g9')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });
});
