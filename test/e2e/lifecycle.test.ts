// Issue 7 end to end: detached containers under tspod-monitor, as a user drives them with the CLI,
// against the real fixture registry, real namespaces, OverlayFS and cgroups.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { startFixtureRegistry, type FixtureRegistry } from '../support/registry.js';
import { tspodEnv, TSPOD_BIN, type TspodEnv } from '../support/tspod.js';
import { isRoot, haveOverlay } from '../support/caps.js';
import { mountsUnder, findCgroups } from '../support/leftovers.js';

// Other tspod instances may run on this host at the same time: leftovers are checked per container id.
const created = new Set<string>();
const cgroupsOf = (ids: Iterable<string>) => { const set = new Set(ids); return findCgroups((name) => set.has(name)); };
function processesIn(ids: Iterable<string>): number[] {
  const set = [...ids];
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const cg = readFileSync(`/proc/${p}/cgroup`, 'utf8');
      if (set.some((id) => cg.includes(id))) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}
/** tspod-monitor processes of this test's data root. */
function monitorsOf(root: string): number[] {
  return processesNamed('tspod-monitor').filter((p) => {
    try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(root + '/'); } catch { return false; }
  });
}

const gate = isRoot() ?? haveOverlay();

function processesNamed(name: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/comm`, 'utf8').trim() === name) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}

function capEff(pid: number | string): string {
  return /^CapEff:\s*([0-9a-f]+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]!;
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe.skipIf(gate)('container life cycle end to end', () => {
  let registry: FixtureRegistry;
  let t: TspodEnv;

  beforeAll(async () => {
    registry = await startFixtureRegistry();
    t = tspodEnv({ mirrorUrl: registry.url });
    const r = await t.run(['pull', 'busybox']);
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    try {
      // Everything the tests created is removed by them; nothing may be left, pass or fail.
      const left = (await t.run(['ps', '-a', '-q', '--no-trunc'])).stdout.split('\n').filter(Boolean);
      for (const id of left) await t.run(['rm', '-f', id]);
      expect(left).toEqual([]);
      expect(mountsUnder(t.root)).toEqual([]);
      expect(processesIn(created)).toEqual([]);
      expect(cgroupsOf(created)).toEqual([]);
      expect(monitorsOf(t.root)).toEqual([]);
      expect(readdirSync(join(t.root, 'containers')).filter((n) => n !== 'names')).toEqual([]);
      expect(readdirSync(join(t.root, 'containers', 'names'))).toEqual([]);
    } finally {
      t?.cleanup();
      await registry?.stop();
    }
  }, 120_000);

  const runD = async (...args: string[]) => {
    const r = await t.run(['run', '-d', '--network', 'none', ...args]);
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    created.add(id);
    return id;
  };
  const inspect = async (ref: string) => {
    const r = await t.run(['inspect', ref]);
    expect(r.code, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as any[])[0];
  };

  it('run -d, ps, logs -f, exec, stop, wait, rm: nothing left behind', async () => {
    const id = await runD('--name', 'loop', 'busybox', 'sh', '-c', 'i=0; while true; do echo "tick $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.2; done');
    const ps = await t.run(['ps']);
    expect(ps.stdout).toContain(id.slice(0, 12));
    expect(ps.stdout).toMatch(/Up /);
    expect(ps.stdout).toContain('loop');

    // ps --format json and a prefix of the id
    const js = (await t.run(['ps', '--format', 'json'])).stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(js.find((c) => c.Names === 'loop')?.State).toBe('running');
    const info = await inspect(id.slice(0, 8));
    expect(info.Id).toBe(id);
    expect(info.State.Running).toBe(true);
    const pid = info.State.Pid as number;
    expect(pid).toBeGreaterThan(1);

    // logs -f streams while the container runs (stdout and stderr kept apart, json-file on disk)
    const child = spawn(process.execPath, [TSPOD_BIN, 'logs', '-f', 'loop'], { env: t.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    await until('streamed logs', () => /tick [3-9]/.test(out) && /err [3-9]/.test(err));
    const raw = readFileSync(info.LogPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(raw[0]).toMatchObject({ log: 'tick 0\n', stream: 'stdout' });
    expect(raw[0].time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    expect(raw.some((e) => e.stream === 'stderr' && e.log === 'err 0\n')).toBe(true);

    // exec sees the container's processes only, with the main process's capability mask
    const ex = await t.run(['exec', 'loop', 'sh', '-c', 'ps -o pid,comm; grep CapEff /proc/self/status; echo $$ > /tmp/execpid']);
    expect(ex.code, ex.stderr).toBe(0);
    const pids = ex.stdout.split('\n').filter((l) => /^\s*\d+\s/.test(l)).map((l) => l.trim().split(/\s+/));
    expect(pids.find((p) => p[0] === '1')?.[1]).toBe('sh'); // the init is pid 1 in its namespace
    expect(pids.length).toBeLessThan(8); // only the container's processes (sh, sleep, exec's sh, ps)
    expect(/CapEff:\s*([0-9a-f]+)/.exec(ex.stdout)![1]).toBe(capEff(pid));
    const ex2 = await t.run(['exec', id.slice(0, 12), 'cat', '/tmp/execpid']);
    expect(ex2.stdout.trim()).toMatch(/^\d+$/); // it ran in the container's mount namespace (its /tmp)
    expect(existsSync('/tmp/execpid') && readFileSync('/tmp/execpid', 'utf8') === ex2.stdout).toBe(false);
    const code = await t.run(['exec', 'loop', 'sh', '-c', 'exit 3']);
    expect(code.code).toBe(3);
    const missing = await t.run(['exec', 'loop', 'nope']);
    expect(missing.code).toBe(127);

    // rm of a running container is refused
    const refused = await t.run(['rm', 'loop']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/stop the container before removing or force remove/);

    // stop: sh as pid 1 ignores SIGTERM, so SIGKILL after -t 1; returns within the timeout
    const t0 = Date.now();
    const stop = await t.run(['stop', '-t', '1', 'loop']);
    expect(stop.code, stop.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(8000);
    const w = await t.run(['wait', 'loop']);
    expect(w.stdout.trim()).toBe('137');
    await until('logs -f to end', () => child.exitCode !== null || undefined);
    expect(child.exitCode).toBe(0);
    const exited = await inspect('loop');
    expect(exited.State).toMatchObject({ Status: 'exited', Running: false, ExitCode: 137, OOMKilled: false });
    expect((await t.run(['ps'])).stdout).not.toContain(id.slice(0, 12));
    expect((await t.run(['ps', '-a'])).stdout).toMatch(/Exited \(137\)/);

    // logs after the end, --tail
    const tail = await t.run(['logs', '--tail', '2', 'loop']);
    expect(tail.stdout.split('\n').filter(Boolean).length).toBeLessThanOrEqual(2);

    const rm = await t.run(['rm', 'loop']);
    expect(rm.code, rm.stderr).toBe(0);
    expect(existsSync(join(t.root, 'containers', id))).toBe(false);
    expect(existsSync(join(t.root, 'store', 'snapshots', id))).toBe(false);
    expect(cgroupsOf([id])).toEqual([]);
    expect(processesIn([id])).toEqual([]);
    expect(monitorsOf(t.root)).toEqual([]);
    expect((await t.run(['inspect', 'loop'])).code).toBe(1);
  }, 120_000);
});
