/**
 * cgroup v1 on the real kernel (legacy or hybrid hosts), as root: limits land in the files, a child
 * process lands in the group, the OOM killer and the pids limit bite, destroy leaves nothing.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { detectCgroups, parseBytes, parseCpus, realCgroupIo, type Cgroup, type CgroupIo } from '../../../src/runtime/cgroups/index.js';
import { V1Driver } from '../../../src/runtime/cgroups/v1.js';

const isRoot = process.getuid?.() === 0;
const driver = isRoot ? await detectCgroups().catch(() => undefined) : undefined;
const v1 = driver instanceof V1Driver ? driver : undefined;
const why = !isRoot ? 'needs root' : !v1 ? 'needs cgroup v1 controllers mounted (legacy or hybrid host)' : '';
if (why) console.warn(`skipping cgroup v1 integration tests: ${why}`);

const runId = randomBytes(4).toString('hex');
const names: string[] = [];
const groups: Cgroup[] = [];
const children: ChildProcess[] = [];
const nameFor = (what: string) => {
  const n = `tspod-test-${runId}-${what}`;
  names.push(n);
  return n;
};

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const g of groups) await g.destroy().catch((e: unknown) => console.error(e));
});

const read = (p: string) => readFileSync(p, 'utf8').trim();
const selfPath = (controller: string) =>
  read('/proc/self/cgroup').split('\n').map((l) => l.split(':')).find((f) => f[1]!.split(',').includes(controller))![2]!;
const procCgroup = (pid: number, controller: string) =>
  read(`/proc/${pid}/cgroup`).split('\n').map((l) => l.split(':')).find((f) => f[1]!.split(',').includes(controller))?.[2];

/** Spawns sh -c SCRIPT; the script should start with `read go` so the test can place it first. */
function sh(script: string) {
  const child = spawn('sh', ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', () => {});
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, out })));
  return { child, pid: child.pid!, go: () => child.stdin!.write('go\n'), exit };
}

async function poll(what: string, ms: number, done: () => boolean): Promise<void> {
  for (const start = Date.now(); !done(); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
  }
}

/** Every directory with this name anywhere under /sys/fs/cgroup. */
const leftovers = (name: string) =>
  execFileSync('find', ['/sys/fs/cgroup', '-name', name], { encoding: 'utf8' }).split('\n').filter(Boolean);

const ALLOC = 'read go; x=$(head -c 100000000 /dev/zero | tr "\\0" x); echo survived ${#x}';

describe.skipIf(!!why)('cgroup v1 on the real kernel', () => {
  it('creates nested groups with the limits, holds a real process, freezes it, and destroy leaves nothing', async () => {
    const name = nameFor('limits');
    const { quotaUs, periodUs } = parseCpus('0.5');
    const cg = await v1!.create(name, { memoryBytes: parseBytes('32m'), pidsLimit: 20, cpuQuotaUs: quotaUs, cpuPeriodUs: periodUs });
    groups.push(cg);
    const memDir = join('/sys/fs/cgroup/memory', selfPath('memory'), 'tspod', name);
    expect(cg.paths).toContain(memDir);
    expect(read(join(memDir, 'memory.limit_in_bytes'))).toBe(String(32 * 1024 * 1024));
    if (existsSync(join(memDir, 'memory.memsw.limit_in_bytes'))) {
      expect(read(join(memDir, 'memory.memsw.limit_in_bytes'))).toBe(String(64 * 1024 * 1024));
    }
    const cpuDir = cg.paths.find((p) => p.startsWith('/sys/fs/cgroup/cpu/') || p.startsWith('/sys/fs/cgroup/cpu,cpuacct/'))!;
    expect(read(join(cpuDir, 'cpu.cfs_quota_us'))).toBe('50000');
    expect(read(join(cpuDir, 'cpu.cfs_period_us'))).toBe('100000');
    const pidsDir = cg.paths.find((p) => existsSync(join(p, 'pids.max')))!;
    expect(read(join(pidsDir, 'pids.max'))).toBe('20');

    const p = sh('read go; exec sleep 30');
    await cg.addProcess(p.pid);
    p.go();
    expect(procCgroup(p.pid, 'memory')).toBe(join(selfPath('memory'), 'tspod', name));
    expect(procCgroup(p.pid, 'pids')).toBe(join(selfPath('pids'), 'tspod', name));
    const stats = await cg.stats();
    expect(stats.pids).toBe(1);
    expect(stats.memoryLimitBytes).toBe(32 * 1024 * 1024);
    expect(typeof stats.memoryBytes).toBe('number'); // charges stay with the old group on a move: may be 0
    expect(typeof stats.cpuUsageNs).toBe('number');

    const freezer = cg.paths.find((x) => existsSync(join(x, 'freezer.state')));
    if (freezer) {
      await cg.freeze();
      expect(read(join(freezer, 'freezer.state'))).toBe('FROZEN');
      await cg.thaw();
      expect(read(join(freezer, 'freezer.state'))).toBe('THAWED');
    }
    expect(await cg.oomKilled()).toBe(false);

    await cg.destroy();
    expect((await p.exit).signal).toBe('SIGKILL');
    expect(leftovers(name)).toEqual([]);
    await cg.destroy(); // idempotent
  });

  it('the allocator really allocates ~100 MB when unlimited (control for the OOM test)', async () => {
    const cg = await v1!.create(nameFor('alloc'), {});
    groups.push(cg);
    const p = sh(ALLOC);
    await cg.addProcess(p.pid);
    p.go();
    const r = await p.exit;
    expect(r).toMatchObject({ code: 0, out: 'survived 100000000\n' });
    const memDir = cg.paths.find((x) => existsSync(join(x, 'memory.max_usage_in_bytes')))!;
    expect(Number(read(join(memDir, 'memory.max_usage_in_bytes')))).toBeGreaterThan(100_000_000);
    expect(await cg.oomKilled()).toBe(false);
    await cg.destroy();
  });

  it('a process allocating 100 MB in a 32 MiB group is OOM-killed and oomKilled() says so', async () => {
    const name = nameFor('oom');
    const cg = await v1!.create(name, { memoryBytes: parseBytes('32m') });
    groups.push(cg);
    const p = sh(ALLOC);
    await cg.addProcess(p.pid);
    p.go();
    const r = await p.exit;
    expect(r.signal).toBe('SIGKILL');
    expect(r.out).not.toContain('survived');
    expect(await cg.oomKilled()).toBe(true);
    await cg.destroy();
    expect(leftovers(name)).toEqual([]);
  });

  it('a fork loop stops at the pids limit, and destroy kills every process left', async () => {
    const name = nameFor('pids');
    const cg = await v1!.create(name, { pidsLimit: 20 });
    groups.push(cg);
    const pidsDir = cg.paths.find((x) => existsSync(join(x, 'pids.max')))!;
    const p = sh('read go; i=0; while [ $i -lt 60 ]; do sleep 60 & i=$((i+1)); done; wait');
    await cg.addProcess(p.pid);
    p.go();
    await poll('the pids limit to refuse a fork', 20_000, () => Number(read(join(pidsDir, 'pids.events')).split(/\s+/)[1]) > 0);
    const current = Number(read(join(pidsDir, 'pids.current')));
    expect(current).toBeLessThanOrEqual(20);
    expect(current).toBeGreaterThan(10);
    expect((await cg.stats()).pids).toBeLessThanOrEqual(20);
    const inGroup = read(join(pidsDir, 'cgroup.procs')).split('\n').filter(Boolean).map(Number);
    expect(inGroup.length).toBeGreaterThan(10);
    await cg.destroy();
    for (const pid of inGroup) {
      await poll(`process ${pid} to die`, 5000, () => {
        try {
          return read(`/proc/${pid}/stat`).split(') ')[1]!.startsWith('Z');
        } catch {
          return true; // gone
        }
      });
    }
    expect(leftovers(name)).toEqual([]);
  });

  /**
   * A group under a parent of its own (a parent's usage is hierarchical, and a removed memcg's pages go on
   * counting there for as long as the kernel keeps it) in which `script` has written 8 MiB to FILE. `check`
   * gets the group and its memory dir; the group, its parents and the file are removed afterwards.
   */
  async function afterWriting(what: string, script: string, check: (cg: Cgroup, memDir: string) => Promise<void>): Promise<void> {
    const parent = nameFor(what);
    const cg = await v1!.create('c', {}, { parent });
    const file = join(tmpdir(), `${parent}.data`);
    try {
      const p = sh(`read go; head -c 8388608 /dev/zero > ${file} && ${script.replaceAll('FILE', file)} echo written`);
      await cg.addProcess(p.pid);
      p.go();
      expect((await p.exit).out).toBe('written\n');
      await check(cg, cg.paths.find((x) => existsSync(join(x, 'memory.force_empty')))!);
    } finally {
      await cg.destroy().catch(() => undefined);
      rmSync(file, { force: true }); // its pages go with it, and the kernel can free a removed group
      for (const leaf of cg.paths) {
        try {
          rmdirSync(dirname(leaf)); // the parent this test made, in each hierarchy
        } catch { /* gone */ }
      }
    }
  }
  const usage = (dir: string) => Number(read(join(dir, 'memory.usage_in_bytes')));

  it('destroy gives back the page cache charged to the group, so the kernel does not keep the removed memcg', async () => {
    await afterWriting('pagecache', 'sync FILE &&', async (cg, memDir) => {
      // the control: the 8 MiB of page cache are charged to the group and to its parent
      expect(usage(memDir)).toBeGreaterThan(8 * 1024 * 1024);
      expect(usage(dirname(memDir))).toBeGreaterThan(8 * 1024 * 1024);
      await cg.destroy();
      expect(existsSync(memDir)).toBe(false);
      expect(usage(dirname(memDir))).toBeLessThan(1024 * 1024);
    });
  });

  it('destroy leaves a group with dirty pages to the kernel: it does not wait for their writeback', async () => {
    // The same without the sync: force_empty would have to write 8 MiB back first (on a slow disk or a
    // dead NFS server, rm, stop and ps would wait that long).
    await afterWriting('dirty', '', async (cg, memDir) => {
      const dirty = Number(/^total_dirty (\d+)$/m.exec(read(join(memDir, 'memory.stat')))![1]);
      expect(dirty).toBeGreaterThan(4 * 1024 * 1024); // the control: the data is not on disk yet
      await cg.destroy();
      expect(existsSync(memDir)).toBe(false);
      // still charged: the removed group's pages were not reclaimed (nor written back by force)
      expect(usage(dirname(memDir))).toBeGreaterThan(8 * 1024 * 1024);
    });
  });

  it('concurrent creates and destroys sharing the tspod/ parent do not trip over each other', async () => {
    const made: string[] = [];
    const worker = async (w: number) => {
      for (let i = 0; i < 30; i++) {
        const name = nameFor(`race${w}-${i}`);
        made.push(name);
        const cg = await v1!.create(name, {});
        groups.push(cg);
        await cg.destroy();
      }
    };
    await Promise.all([0, 1, 2, 3].map(worker));
    const left = execFileSync('find', ['/sys/fs/cgroup', '-name', `tspod-test-${runId}-race*`], { encoding: 'utf8' });
    expect(left).toBe('');
  });

  it('retries when a concurrent destroy removes the empty tspod/ parent between its mkdir and the leaf mkdir', async () => {
    const name = nameFor('enoent');
    const memBase = v1!.hierarchies.find((h) => h.controllers.includes('memory'))!;
    const tspodDir = join(memBase.base, 'tspod');
    let raced = 0;
    const racyIo: CgroupIo = {
      ...realCgroupIo,
      async mkdir(p) {
        // The other container's destroy() wins: the parent we just saw is gone when we make the leaf.
        if (p === join(tspodDir, name) && raced === 0) {
          raced++;
          await realCgroupIo.rmdir(tspodDir).catch(() => undefined);
          if (existsSync(tspodDir)) raced = -1; // someone else holds it: the race cannot be staged
        }
        return realCgroupIo.mkdir(p);
      },
    };
    const cg = await new V1Driver(racyIo, v1!.hierarchies).create(name, { memoryBytes: parseBytes('16m') });
    groups.push(cg);
    if (raced === -1) console.warn('race not staged: another group is using', tspodDir);
    else expect(raced).toBe(1);
    expect(read(join(tspodDir, name, 'memory.limit_in_bytes'))).toBe(String(16 * 1024 * 1024));
    await cg.destroy();
    expect(leftovers(name)).toEqual([]);
  });

  it('refuses to reuse a group that still has processes, reuses an empty one', async () => {
    const name = nameFor('reuse');
    const cg = await v1!.create(name, {});
    groups.push(cg);
    const p = sh('read go; exec sleep 30');
    await cg.addProcess(p.pid);
    await expect(v1!.create(name, {})).rejects.toMatchObject({ code: 'EEXIST' });
    expect(p.child.exitCode).toBeNull();
    const opened = await v1!.open(name, { paths: cg.paths });
    await opened.destroy();
    expect((await p.exit).signal).toBe('SIGKILL');
    const again = await v1!.create(name, { pidsLimit: 5 });
    groups.push(again);
    await again.destroy();
    expect(leftovers(name)).toEqual([]);
  });
});
