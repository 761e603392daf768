// Issue 7 end to end: detached containers under tspod-monitor, as a user drives them with the CLI,
// against the real fixture registry, real namespaces, OverlayFS and cgroups.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFileSync, spawn } from 'node:child_process';
import { startFixtureRegistry, type FixtureRegistry } from '../support/registry.js';
import { tspodEnv, TSPOD_BIN, type TspodEnv } from '../support/tspod.js';
import { isRoot, haveOverlay } from '../support/caps.js';
import { mountsUnder, findCgroups, networkSettled } from '../support/leftovers.js';
import { until } from '../support/wait.js';

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
    // docker's Go templates: ps --format, inspect -f
    expect((await t.run(['ps', '--filter', 'name=loop', '--format', '{{.Names}}:{{.State}}:{{.ID}}:{{.Image}}'])).stdout).toBe(`loop:running:${id.slice(0, 12)}:busybox:latest\n`);
    const tbl = (await t.run(['ps', '--filter', 'name=loop', '--format', 'table {{.Names}}\\t{{.Status}}'])).stdout.split('\n');
    expect(tbl[0]).toMatch(/^NAMES {3,}STATUS$/);
    expect(tbl[1]).toMatch(/^loop {3,}Up /);
    expect((await t.run(['inspect', '-f', '{{.State.Pid}} {{json .State.Running}}', 'loop'])).stdout).toBe(`${pid} true\n`);
    expect((await t.run(['ps', '-l', '--format', '{{.Names}}'])).stdout).toBe('loop\n'); // the latest created
    // ancestor= as docker normalises it: short name, with tag, full name, image ID prefix; another image does not match
    const imageId = (info.Image as string).replace(/^sha256:/, '');
    for (const a of ['busybox', 'busybox:latest', 'docker.io/library/busybox', imageId.slice(0, 12), `sha256:${imageId}`]) {
      expect((await t.run(['ps', '-q', '--filter', `ancestor=${a}`])).stdout, a).toBe(`${id.slice(0, 12)}\n`);
    }
    for (const a of ['busybox:1.36', 'alpine', 'busy']) expect((await t.run(['ps', '-q', '--filter', `ancestor=${a}`])).stdout, a).toBe('');

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
    const envFile = join(t.root, '..', 'exec.env');
    writeFileSync(envFile, 'FOO=from-file\nBAR=file\n');
    const fromFile = await t.run(['exec', '--env-file', envFile, '-e', 'FOO=flag', 'loop', 'sh', '-c', 'echo $FOO $BAR']);
    expect(fromFile.stdout, fromFile.stderr).toBe('flag file\n'); // -e wins over the file, as docker
    const opts = await t.run(['exec', '-u', '1000:1000', '-w', '/tmp', '-e', 'FOO=bar', 'loop', 'sh', '-c', 'id -u; id -g; pwd; echo $FOO; grep CapEff /proc/self/status']);
    expect(opts.code, opts.stderr).toBe(0);
    expect(opts.stdout.split('\n').slice(0, 4)).toEqual(['1000', '1000', '/tmp', 'bar']);
    expect(opts.stdout).toMatch(/CapEff:\s*0+\n/); // a non-root user has no effective capabilities, as in docker
    const code = await t.run(['exec', 'loop', 'sh', '-c', 'exit 3']);
    expect(code.code).toBe(3);
    const missing = await t.run(['exec', 'loop', 'nope']);
    expect(missing.code).toBe(127);
    const noDir = await t.run(['exec', '-w', '/no/such/dir', 'loop', 'true']);
    expect([noDir.code, noDir.stderr]).toEqual([126, 'tspod: chdir /no/such/dir: no such file or directory\n']);

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
    expect((await t.run(['ps', '-a', '-q', '--no-trunc', '--filter', 'exited=137', '--filter', 'name=loop'])).stdout.trim()).toBe(id);
    expect((await t.run(['ps', '-q', '--filter', 'status=running', '--filter', 'name=loop'])).stdout.trim()).toBe('');
    expect((await t.run(['ps', '--filter', 'bogus=1'])).code).toBe(1);
    // start -a: runs it again, streams its output, exits with its status
    const again = await t.run(['start', '-a', 'loop'], { timeoutMs: 3000 });
    expect(again.stdout).toMatch(/tick 0/); // killed by our timeout: the loop never ends
    expect((await t.run(['stop', '-t', '0', 'loop'])).code).toBe(0);

    // attach to a running container: its output from now on, and its exit status
    const att = await runD('busybox', 'sh', '-c', 'sleep 2; echo attached-out; echo attached-err >&2; exit 5');
    const at = await t.run(['attach', att]);
    expect(at.code).toBe(5);
    expect(at.stdout).toBe('attached-out\n');
    expect(at.stderr).toBe('attached-err\n');
    expect((await t.run(['rm', att])).code).toBe(0);

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

  it('run -d of a busybox httpd on the default bridge network with -p: port, a request, and rm removes its network', async () => {
    const hostPort = 20000 + (process.pid % 20000);
    const r = await t.run(['run', '-d', '--name', 'web', '-p', `127.0.0.1:${hostPort}:80`, 'busybox', 'sh', '-c', 'echo hello > /www.html; mkdir /www; mv /www.html /www/index.html; exec httpd -f -p 80 -h /www']);
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    created.add(id);
    expect((await t.run(['port', 'web'])).stdout).toBe(`80/tcp -> 127.0.0.1:${hostPort}\n`);
    expect((await t.run(['port', 'web', '80'])).stdout).toBe(`127.0.0.1:${hostPort}\n`);
    const body = await until('httpd answers', async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${hostPort}/`);
        return res.status === 200 ? await res.text() : undefined;
      } catch {
        return undefined;
      }
    });
    expect(body).toBe('hello\n');
    const net = JSON.parse(readFileSync(join(t.root, 'containers', id, 'network.json'), 'utf8'));
    const veth = net.attachments[0].hostVeth as string;
    expect(existsSync(`/sys/class/net/${veth}`)).toBe(true);
    const rm = await t.run(['rm', '-f', 'web']);
    expect(rm.code, rm.stderr).toBe(0);
    networkSettled(); // the last container's bridge (and a veth the kernel had not removed yet) go in a child holding the lock
    expect(existsSync(`/sys/class/net/${veth}`)).toBe(false);
    await expect(fetch(`http://127.0.0.1:${hostPort}/`)).rejects.toThrow();
    expect(cgroupsOf([id])).toEqual([]);
  }, 60_000);

  it('stop uses the container\'s --stop-signal and --stop-timeout', async () => {
    const id = await runD('--stop-signal', 'USR1', '--stop-timeout', '5', 'busybox', 'sh', '-c', 'trap "echo got usr1; exit 9" USR1; echo ready; while :; do sleep 0.1; done');
    await until('ready', async () => (await t.run(['logs', id])).stdout.includes('ready') || undefined);
    const stop = await t.run(['stop', id]);
    expect(stop.code, stop.stderr).toBe(0);
    expect((await t.run(['wait', id])).stdout.trim()).toBe('9');
    expect((await t.run(['logs', id])).stdout).toContain('got usr1');
    expect((await t.run(['rm', id])).code).toBe(0);
  }, 60_000);

  it('logs -f ends when its container is removed (rm -f), with what the container wrote', async () => {
    const id = await runD('busybox', 'sh', '-c', 'echo started; exec sleep 1000');
    const child = spawn(process.execPath, [TSPOD_BIN, 'logs', '-f', id], { env: t.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const ended = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await until('the follow to start', () => out.includes('started'));
    expect((await t.run(['rm', '-f', id])).code).toBe(0);
    const code = await Promise.race([ended, sleep(10_000).then(() => 'still running')]);
    if (code === 'still running') child.kill('SIGKILL');
    expect(code).toBe(0);
    expect(out).toBe('started\n');
  }, 60_000);

  it('a container over its --memory limit shows OOMKilled: true and exit 137 in inspect', async () => {
    const id = await runD('--memory', '16m', 'busybox', 'sh', '-c', 'x=aaaaaaaaaaaaaaaa; while true; do x="$x$x"; done');
    const w = await t.run(['wait', id]);
    expect(w.stdout.trim()).toBe('137');
    const info = await inspect(id);
    expect(info.State).toMatchObject({ Status: 'exited', OOMKilled: true, ExitCode: 137 });
    expect((await t.run(['rm', id])).code).toBe(0);
    expect(cgroupsOf([id])).toEqual([]);
  }, 60_000);

  it('SIGKILL of the monitor, of the init, or of the CLI during run -d: ps shows the truth, rm cleans up', async () => {
    // the monitor: the launcher and the container die with it (parent-death signals, pid namespace)
    const a = await runD('busybox', 'sleep', '1000');
    const ia = await inspect(a);
    process.kill(ia.Tspod.MonitorPid, 'SIGKILL');
    await until('init gone', () => { try { process.kill(ia.State.Pid, 0); return undefined; } catch { return true; } });
    const psA = await t.run(['ps', '-a', '--format', 'json']);
    const recA = psA.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((c) => a.startsWith(c.ID));
    expect(recA.State).toBe('exited');
    expect(cgroupsOf([a])).toEqual([]); // reconcile removed the cgroup
    expect((await t.run(['rm', a])).code).toBe(0);

    // the container's init: the monitor records its status
    const b = await runD('busybox', 'sleep', '1000');
    const ib = await inspect(b);
    process.kill(ib.State.Pid, 'SIGKILL');
    await until('monitor gone', () => monitorsOf(t.root).includes(ib.Tspod.MonitorPid) ? undefined : true);
    expect((await inspect(b)).State).toMatchObject({ Status: 'exited', ExitCode: 137 });
    expect((await t.run(['ps', '-q', '--no-trunc'])).stdout).not.toContain(b);
    expect((await t.run(['rm', b])).code).toBe(0);

    // the CLI, at several points during run -d
    const states = new Set<string>();
    for (const delay of [300, 500, 600, 700, 800, 900, 1000]) {
      const name = `killed-cli-${delay}`;
      const child = spawn(process.execPath, [TSPOD_BIN, 'run', '-d', '--network', 'none', '--name', name, 'busybox', 'sleep', '1000'], { env: t.env, stdio: 'ignore' });
      const closed = new Promise((r) => child.on('close', r));
      await sleep(delay);
      child.kill('SIGKILL');
      await closed;
      const ps = (await t.run(['ps', '-a', '--format', 'json'])).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
      const rec = ps.find((c) => c.Names === name);
      if (!rec) continue; // killed before the record existed: nothing to show, nothing claimed
      states.add(rec.State);
      const info = await inspect(name);
      created.add(info.Id);
      if (rec.State === 'running') {
        // it got as far as running: then it truly runs
        expect(() => process.kill(info.State.Pid, 0)).not.toThrow();
      } else {
        expect(processesIn([info.Id])).toEqual([]);
      }
      const rm = await t.run(['rm', '-f', name]);
      expect(rm.code, rm.stderr).toBe(0);
      expect(cgroupsOf([info.Id])).toEqual([]);
      expect(processesIn([info.Id])).toEqual([]);
      expect(existsSync(join(t.root, 'store', 'snapshots', info.Id))).toBe(false);
    }
    expect(monitorsOf(t.root)).toEqual([]);
    console.log(`states seen after a SIGKILL of the CLI during run -d: ${[...states].join(', ')}`);

    // and deterministically at each step of the start (fault injection: the CLI SIGKILLs itself there)
    const expected: Record<string, string> = { cgroup: 'created', record: 'exited', pid: 'exited', started: 'running' };
    for (const [point, state] of Object.entries(expected)) {
      const name = `crash-at-${point}`;
      const r = await t.run(['run', '-d', '--network', 'none', '--name', name, 'busybox', 'sleep', '1000'], { env: { TSPOD_TEST_CRASH_AT: point } });
      expect(r.signal).toBe('SIGKILL');
      // killed at the go-ahead, the launcher aborts (its plan fd closed): the monitor records 125
      if (point === 'pid') expect((await t.run(['wait', name])).stdout.trim()).toBe('125');
      const info = await inspect(name);
      created.add(info.Id);
      expect(info.State.Status, point).toBe(state);
      if (state === 'running') expect(() => process.kill(info.State.Pid, 0)).not.toThrow();
      else expect(processesIn([info.Id]), point).toEqual([]);
      if (state === 'exited') expect(cgroupsOf([info.Id]), point).toEqual([]); // reconcile released it
      const rm = await t.run(['rm', '-f', name]);
      expect(rm.code, rm.stderr).toBe(0);
      expect(cgroupsOf([info.Id]), point).toEqual([]);
      expect(processesIn([info.Id]), point).toEqual([]);
      expect(existsSync(join(t.root, 'containers', info.Id)), point).toBe(false);
    }
    expect(monitorsOf(t.root)).toEqual([]);
  }, 120_000);

  it('two rm -f of the same container at once: one succeeds, the other reports it gone', async () => {
    const id = await runD('--name', 'twice', 'busybox', 'sleep', '1000');
    const [r1, r2] = await Promise.all([t.run(['rm', '-f', 'twice']), t.run(['rm', '-f', id])]);
    const codes = [r1.code, r2.code].sort();
    expect(codes).toEqual([0, 1]);
    const loser = r1.code === 1 ? r1 : r2;
    expect(loser.stderr).toMatch(/no such container/);
    expect(existsSync(join(t.root, 'containers', id))).toBe(false);
    expect(existsSync(join(t.root, 'containers', 'names', 'twice'))).toBe(false);
    expect(cgroupsOf([id])).toEqual([]);
    expect(processesIn([id])).toEqual([]);
    // the name is free again and the state readable
    const again = await runD('--name', 'twice', 'busybox', 'true');
    expect((await t.run(['wait', 'twice'])).stdout.trim()).toBe('0');
    expect((await t.run(['rm', again])).code).toBe(0);
  }, 60_000);

  it('stop and rm of several containers work on them at once, as docker does, and report in the order given', async () => {
    // Each init ignores SIGTERM but notes when it came (host uptime: one clock for all three).
    const script = 'trap "cat /proc/uptime > /tmp/term" TERM; while :; do sleep 0.1; done';
    const names = ['par-a', 'par-b', 'par-c'];
    for (const n of names) await runD('--name', n, 'busybox', 'sh', '-c', script);
    const stop = await t.run(['stop', '-t', '3', ...names]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toBe('par-a\npar-b\npar-c\n');
    // One by one, each SIGTERM would come 3 s (the timeout) after the one before; at once, all within it.
    const host = join(t.root, '..', 'par-host');
    mkdirSync(host, { recursive: true });
    const termAt: number[] = [];
    for (const n of names) {
      const cp = await t.run(['cp', `${n}:/tmp/term`, join(host, n)]);
      expect(cp.code, cp.stderr).toBe(0);
      termAt.push(Number(readFileSync(join(host, n), 'utf8').split(' ')[0]));
    }
    expect(Math.max(...termAt) - Math.min(...termAt)).toBeLessThan(3);
    for (const n of names) expect((await inspect(n)).State.ExitCode).toBe(137);

    // rm: a missing name and a repeated one fail in their place; the others go, printed in order.
    const ids = await Promise.all(names.map(async (n) => (await inspect(n)).Id as string));
    const rm = await t.run(['rm', '-f', 'par-a', 'par-missing', 'par-b', 'par-a', 'par-c']);
    expect(rm.code).toBe(1);
    expect(rm.stdout).toBe('par-a\npar-b\npar-c\n');
    expect(rm.stderr).toBe('tspod: no such container: par-missing\ntspod: no such container: par-a\n');
    for (const id of ids) expect(existsSync(join(t.root, 'containers', id))).toBe(false);
    expect(cgroupsOf(ids)).toEqual([]);
  }, 120_000);

  it('create, start, pause, unpause, kill, restart, rename, stats, top', async () => {
    const c = await t.run(['create', '--network', 'none', '--name', 'later', 'busybox', 'sh', '-c', 'echo started; exec sleep 1000']);
    expect(c.code, c.stderr).toBe(0);
    const id = c.stdout.trim();
    created.add(id);
    expect((await inspect(id)).State.Status).toBe('created');
    expect((await t.run(['start', 'later'])).code).toBe(0);
    expect((await inspect(id)).State.Status).toBe('running');
    await until('log line', async () => (await t.run(['logs', 'later'])).stdout.includes('started') || undefined);

    expect((await t.run(['pause', 'later'])).code).toBe(0);
    const paused = await inspect(id);
    expect(paused.State).toMatchObject({ Status: 'paused', Paused: true });
    const st = readFileSync(`/proc/${paused.State.Pid}/status`, 'utf8');
    expect(/^State:\s+([A-Z])/m.exec(st)![1]).toMatch(/[DS]/); // frozen tasks sleep in the freezer
    expect((await t.run(['ps'])).stdout).toContain('(Paused)');
    expect((await t.run(['unpause', 'later'])).code).toBe(0);
    expect((await inspect(id)).State.Status).toBe('running');

    const stats = await t.run(['stats', '--no-stream', '--json', 'later']);
    expect(stats.code, stats.stderr).toBe(0);
    const s = JSON.parse(stats.stdout.trim());
    expect(s.pids).toBe(1);
    expect(s.memoryBytes).toBeGreaterThan(0);
    // --format json: docker's fields, as strings
    const dj = JSON.parse((await t.run(['stats', '--no-stream', '--format', 'json', 'later'])).stdout.trim());
    expect(dj).toMatchObject({ Name: 'later', ID: id.slice(0, 12), PIDs: '1', NetIO: '0B / 0B' });
    expect(dj.MemUsage).toMatch(/^[0-9.]+(B|KiB|MiB) \/ /);
    // docker's --format fields through the template engine; "table" as ps does
    const tpl = await t.run(['stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}} {{.Container}} {{.ID}} {{.MemUsage}} {{.CPUPerc}}', 'later']);
    expect(tpl.code, tpl.stderr).toBe(0);
    expect(tpl.stdout).toMatch(new RegExp(`^later 1 later ${id.slice(0, 12)} [0-9.]+(B|KiB|MiB) / [0-9.]+(MiB|GiB|TiB) [0-9]+\\.[0-9]{2}%\n$`));
    const st1 = (await t.run(['stats', '--no-stream', '--format', 'table {{.Name}}\\t{{.MemPerc}}\\t{{.NetIO}}', 'later'])).stdout.split('\n');
    expect(st1[0]).toMatch(/^NAME {3,}MEM % {3,}NET I\/O$/);
    expect(st1[1]).toMatch(/^later {3,}[0-9]+\.[0-9]{2}% {3,}0B \/ 0B$/); // --network none: no traffic
    const dflt = (await t.run(['stats', '--no-stream', 'later'])).stdout.split('\n');
    expect(dflt[0]).toMatch(/^CONTAINER ID {3,}NAME {3,}CPU % {3,}MEM USAGE \/ LIMIT {3,}MEM % {3,}NET I\/O {3,}BLOCK I\/O {3,}PIDS$/);
    expect(dflt[1]).toMatch(new RegExp(`^${id.slice(0, 12)} {3,}later `));
    const badTpl = await t.run(['stats', '--no-stream', '--format', '{{range .X}}', 'later']);
    expect([badTpl.code, badTpl.stdout]).toEqual([1, '']);
    expect(badTpl.stderr).toMatch(/^tspod: [^\n]*range[^\n]*\n$/);
    const top = await t.run(['top', 'later']);
    expect(top.stdout).toMatch(/sleep 1000/);

    expect((await t.run(['rename', 'later', 'renamed'])).code).toBe(0);
    expect((await inspect('renamed')).Id).toBe(id);
    expect((await t.run(['inspect', 'later'])).code).toBe(1);

    const pid1 = (await inspect(id)).State.Pid;
    const r = await t.run(['restart', '-t', '1', 'renamed']);
    expect(r.code, r.stderr).toBe(0);
    const after = await inspect(id);
    expect(after.State.Status).toBe('running');
    expect(after.State.Pid).not.toBe(pid1);

    expect((await t.run(['kill', '-s', 'TERM', 'renamed'])).code).toBe(0); // pid 1 without a handler ignores it
    await sleep(200);
    expect((await inspect(id)).State.Status).toBe('running');
    expect((await t.run(['kill', 'renamed'])).code).toBe(0);
    expect((await t.run(['wait', 'renamed'])).stdout.trim()).toBe('137');
    expect((await t.run(['kill', 'renamed'])).code).toBe(1);
    expect((await t.run(['rm', 'renamed'])).code).toBe(0);
    expect(cgroupsOf([id])).toEqual([]);
  }, 90_000);

  it("inspect shows the Config and HostConfig the container was created with, in docker's names and types", async () => {
    const env = join(t.root, 'inspect.env');
    writeFileSync(env, 'FROM_FILE=f\n');
    const id = await runD('--name', 'configured', '-e', 'A=1', '--env-file', env, '-w', '/tmp', '-u', '1000:1000', '-h', 'box', '--entrypoint', 'sh',
      '--cpus', '0.5', '--pids-limit', '50', '--cap-add', 'NET_ADMIN', '--cap-drop', 'MKNOD', '--read-only', '--privileged', '-m', '64m',
      'busybox', '-c', 'sleep 1000');
    const i = await inspect(id);
    expect(i.Config).toMatchObject({ Hostname: 'box', User: '1000:1000', WorkingDir: '/tmp', Entrypoint: ['sh'], Cmd: ['-c', 'sleep 1000'],
      Image: 'docker.io/library/busybox:latest' });
    expect(i.Config.Env[0]).toBe('FROM_FILE=f');
    expect(i.Config.Env[1]).toBe('A=1');
    expect(i.Config.Env.some((e: string) => e.startsWith('PATH='))).toBe(true); // the image's
    expect(i.HostConfig).toMatchObject({ NetworkMode: 'none', Privileged: true, AutoRemove: false, ReadonlyRootfs: true, NanoCpus: 500_000_000,
      PidsLimit: 50, CapAdd: ['NET_ADMIN'], CapDrop: ['MKNOD'], Memory: 64 * 1024 * 1024, PortBindings: {}, Binds: null });
    expect((await t.run(['inspect', '-f', '{{json .Config.Env}}', 'configured'])).stdout).toBe(JSON.stringify(i.Config.Env) + '\n');
    // what the container really runs with
    const e = await t.run(['exec', 'configured', 'sh', '-c', 'echo $A $FROM_FILE $(pwd) $(id -u) $(hostname)']);
    expect(e.stdout).toBe('1 f /tmp 1000 box\n');
    expect((await t.run(['rm', '-f', id])).code).toBe(0);

    // the defaults of the image, and -p/-v as docker's PortBindings and Binds (create: nothing is attached)
    const bind = join(t.root, 'inspect-bind');
    const c = await t.run(['create', '--rm', '-p', '127.0.0.1:18080:80', '-p', '9000/udp', '-v', `${bind}:/data:ro`, 'busybox']);
    expect(c.code, c.stderr).toBe(0);
    const cid = c.stdout.trim();
    created.add(cid);
    const ci = await inspect(cid);
    expect(ci.Config).toMatchObject({ Hostname: cid.slice(0, 12), User: '', WorkingDir: '', Entrypoint: null, Cmd: ['sh'] });
    expect(ci.HostConfig).toMatchObject({ NetworkMode: 'bridge', Privileged: false, AutoRemove: true, ReadonlyRootfs: false, NanoCpus: 0, PidsLimit: null,
      CapAdd: null, CapDrop: null, Memory: 0, Binds: [`${bind}:/data:ro`],
      PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '18080' }], '9000/udp': [{ HostIp: '', HostPort: '' }] } });
    expect((await t.run(['rm', cid])).code).toBe(0);
  }, 60_000);

  it('inspect NAME falls back to an image, a network, a volume as docker does; --type; image and volume inspect -f', async () => {
    const image = JSON.parse((await t.run(['image', 'inspect', 'busybox'])).stdout)[0];
    expect(image.Id).toMatch(/^sha256:[0-9a-f]{64}$/);
    const asImage = await inspect('busybox');
    expect(asImage.Id).toBe(image.Id);
    expect(asImage.RepoTags).toContain('busybox:latest');
    for (const args of [['inspect', '-f', '{{.Id}}', 'busybox'], ['image', 'inspect', '-f', '{{.Id}}', 'busybox'], ['image', 'inspect', '--format', '{{.Id}}', 'busybox']]) {
      const r = await t.run(args);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${image.Id}\n`);
    }
    // a container of that name comes first; --type picks the kind
    const c = await t.run(['create', '--network', 'none', '--name', 'busybox', 'busybox']);
    expect(c.code, c.stderr).toBe(0);
    const cid = c.stdout.trim();
    created.add(cid);
    expect((await t.run(['inspect', '-f', '{{.Id}} {{.State.Status}}', 'busybox'])).stdout).toBe(`${cid} created\n`);
    expect((await t.run(['inspect', '--type', 'image', '-f', '{{.Id}}', 'busybox'])).stdout).toBe(`${image.Id}\n`);
    expect((await t.run(['rm', cid])).code).toBe(0);
    const noCtr = await t.run(['inspect', '--type', 'container', 'busybox']);
    expect(noCtr.code).toBe(1);
    expect(noCtr.stderr).toBe('tspod: no such container: busybox\n');

    expect((await t.run(['volume', 'create', 'inspect-vol'])).code).toBe(0);
    try {
      const v = await t.run(['volume', 'inspect', '-f', '{{.Name}} {{.Driver}} {{.Scope}}', 'inspect-vol']);
      expect(v.code, v.stderr).toBe(0);
      expect(v.stdout).toBe('inspect-vol local local\n');
      expect((await t.run(['volume', 'inspect', '--format', '{{json .Labels}}', 'inspect-vol'])).stdout).toBe('{}\n');
      expect((await t.run(['inspect', '-f', '{{.Mountpoint}}', 'inspect-vol'])).stdout).toBe(join(t.root, 'volumes', 'inspect-vol', '_data') + '\n');
      expect((await t.run(['inspect', '--type', 'volume', '-f', '{{.Name}}', 'inspect-vol'])).stdout).toBe('inspect-vol\n');
      const missing = await t.run(['volume', 'inspect', '-f', '{{.Name}}', 'inspect-vol', 'no-such-vol']);
      expect(missing.code).toBe(1);
      expect(missing.stdout).toBe('inspect-vol\n');
      expect(missing.stderr).toBe('tspod: no such volume: no-such-vol\n');
    } finally {
      expect((await t.run(['volume', 'rm', 'inspect-vol'])).code).toBe(0);
    }
    expect((await t.run(['inspect', '-f', '{{.Name}} {{.Driver}}', 'bridge'])).stdout).toBe('bridge bridge\n'); // the default network, as docker shows it

    // nothing of that name: one line naming it, exit 1; several names: the found ones are printed
    const none = await t.run(['inspect', 'no-such-thing']);
    expect(none.code).toBe(1);
    expect(none.stderr).toBe('tspod: no such object: no-such-thing\n');
    expect(JSON.parse(none.stdout)).toEqual([]);
    const some = await t.run(['inspect', '-f', '{{.Id}}', 'no-such-thing', 'busybox:latest']);
    expect([some.code, some.stdout, some.stderr]).toEqual([1, `${image.Id}\n`, 'tspod: no such object: no-such-thing\n']);
    const badType = await t.run(['inspect', '--type', 'plugin', 'busybox']);
    expect(badType.code).toBe(1);
    expect(badType.stderr).toMatch(/^tspod: "plugin" is not a valid value for --type[^\n]*\n$/);
  }, 60_000);

  it('--restart on-failure:N and always are carried by the monitor; stop ends them', async () => {
    const f = await runD('--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'echo run; exit 3');
    expect((await t.run(['wait', f])).stdout.trim()).toBe('3');
    const fi = await inspect(f);
    expect(fi.RestartCount).toBe(2);
    expect(fi.HostConfig.RestartPolicy).toEqual({ Name: 'on-failure', MaximumRetryCount: 2 });
    expect((await t.run(['logs', f])).stdout).toBe('run\nrun\nrun\n');
    expect((await t.run(['rm', f])).code).toBe(0);

    const a = await runD('--restart', 'always', 'busybox', 'sh', '-c', 'echo up; sleep 1; exit 1');
    const first = (await inspect(a)).State.Pid;
    // a restarted init, caught while it runs, is in the container's cgroup
    const cgroupOfRestarted = await until('a restart', async () => {
      const i = await inspect(a);
      if (!(i.State.Running && i.State.Pid !== first && i.RestartCount >= 1)) return undefined;
      try {
        return readFileSync(`/proc/${i.State.Pid}/cgroup`, 'utf8');
      } catch {
        return undefined; // that one already ended; wait for the next
      }
    }, 30_000);
    expect(cgroupOfRestarted).toContain(a);
    expect(cgroupsOf([a]).length).toBeGreaterThan(0);
    const stop = await t.run(['stop', '-t', '1', a]);
    expect(stop.code, stop.stderr).toBe(0);
    await sleep(800); // longer than a back-off step: nothing comes back
    const stopped = await inspect(a);
    expect(stopped.State.Status).toBe('exited');
    expect(processesIn([a])).toEqual([]);
    expect(monitorsOf(t.root)).toEqual([]);
    expect((await t.run(['rm', a])).code).toBe(0);
    expect(cgroupsOf([a])).toEqual([]);

    // A bad policy is refused before anything is made, as docker does: one line, exit 125, no container.
    const before = (await t.run(['ps', '-a', '-q', '--no-trunc'])).stdout;
    for (const [args, message] of [
      [['run', '-d', '--restart', 'bogus'], 'invalid --restart "bogus"'],
      [['create', '--restart', 'always:3'], 'invalid --restart "always:3"'],
      [['run', '-d', '--rm', '--restart', 'always'], 'conflicting options: --restart always and --rm'],
    ] as const) {
      const r = await t.run([...args, 'busybox', 'true']);
      expect(r.code, args.join(' ')).toBe(125);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toContain(message);
    }
    expect((await t.run(['ps', '-a', '-q', '--no-trunc'])).stdout).toBe(before);
  }, 90_000);

  it('diff lists A/C/D from the upper dir; cp copies both ways and never follows a container symlink out', async () => {
    const id = await runD('--name', 'files', 'busybox', 'sh', '-c',
      'echo new > /new.txt; rm /etc/group; echo x >> /etc/passwd; mkdir -p /d/e; echo deep > /d/e/f; ' +
      'ln -s /etc /escape; ln -s ../../../../../../etc /dotdot; mkdir /in; exec sleep 1000');
    await until('setup done', async () => (await t.run(['exec', 'files', 'test', '-d', '/in'])).code === 0 || undefined);
    const diff = (await t.run(['diff', 'files'])).stdout.trim().split('\n');
    expect(diff).toContain('A /new.txt');
    expect(diff).toContain('D /etc/group');
    expect(diff).toContain('C /etc/passwd');
    expect(diff).toContain('C /etc');
    expect(diff).toContain('A /d');
    expect(diff).toContain('A /d/e/f');
    expect(diff.filter((l) => /\/etc\/(resolv\.conf|hosts|hostname)$/.test(l))).toEqual([]); // tspod's mount points are not changes
    // a container that changed nothing has an empty diff, though its upper dir holds those mount points
    const clean = await t.run(['run', '--name', 'clean', 'busybox', 'true']);
    expect(clean.code, clean.stderr).toBe(0);
    const cleanDiff = await t.run(['diff', 'clean']);
    expect([cleanDiff.code, cleanDiff.stdout]).toEqual([0, '']);
    expect((await t.run(['rm', 'clean'])).code).toBe(0);

    const host = join(t.root, '..', 'cp-host');
    mkdirSync(host, { recursive: true });
    // out: a file, a directory
    expect((await t.run(['cp', 'files:/new.txt', join(host, 'copy.txt')])).code).toBe(0);
    expect(readFileSync(join(host, 'copy.txt'), 'utf8')).toBe('new\n');
    expect((await t.run(['cp', `${id.slice(0, 12)}:/d`, host])).code).toBe(0);
    expect(readFileSync(join(host, 'd', 'e', 'f'), 'utf8')).toBe('deep\n');
    // through a symlink inside the container: resolved in the container's root, not the host's
    const viaLink = await t.run(['cp', 'files:/escape/passwd', join(host, 'passwd')]);
    expect(viaLink.code, viaLink.stderr).toBe(0);
    expect(readFileSync(join(host, 'passwd'), 'utf8')).toContain('x\n'); // the container's passwd (we appended x)
    expect(readFileSync(join(host, 'passwd'), 'utf8')).not.toBe(readFileSync('/etc/passwd', 'utf8'));
    const viaDots = await t.run(['cp', 'files:/dotdot/passwd', join(host, 'passwd2')]); // ".." stops at the container's root
    expect(viaDots.code, viaDots.stderr).toBe(0);
    expect(readFileSync(join(host, 'passwd2'), 'utf8')).toContain('x\n');
    // in: into a directory, and through an absolute symlink (lands in the container's /etc, not the host's)
    writeFileSync(join(host, 'hello'), 'from host\n');
    expect((await t.run(['cp', join(host, 'hello'), 'files:/in'])).code).toBe(0);
    expect((await t.run(['exec', 'files', 'cat', '/in/hello'])).stdout).toBe('from host\n');
    const marker = `tspod-cp-test-${process.pid}`;
    writeFileSync(join(host, marker), 'x');
    expect((await t.run(['cp', join(host, marker), 'files:/escape/'])).code).toBe(0);
    expect(existsSync(join('/etc', marker))).toBe(false);
    expect((await t.run(['exec', 'files', 'test', '-f', `/etc/${marker}`])).code).toBe(0);
    // the container runs again after the copy (it was frozen during it)
    expect((await inspect('files')).State.Status).toBe('running');
    expect((await t.run(['exec', 'files', 'true'])).code).toBe(0);
    expect((await t.run(['cp', 'files:/nope', host])).code).toBe(1);
    // bad input: one line naming the container path (not the host's /proc/PID/root/…); "-" is refused, not a file named "-"
    const noDir = await t.run(['cp', join(host, 'hello'), 'files:/nonexistdir/sub/']);
    expect(noDir.code).toBe(1);
    expect(noDir.stderr.trim()).toBe('tspod: cp: the destination directory /nonexistdir/sub/ does not exist in the container');
    const noParent = await t.run(['cp', join(host, 'hello'), 'files:/nonexistdir/sub']);
    expect([noParent.code, noParent.stderr]).toEqual([1, 'tspod: cp: /nonexistdir/sub: no such directory in the container\n']);
    const dash = await t.run(['cp', 'files:/new.txt', '-'], {});
    expect(dash.code).toBe(1);
    expect(dash.stderr).toContain('"-" (a tar archive on stdin or stdout) is not supported');
    expect((await t.run(['ps', '-a', '--filter', 'status=bogus'])).stderr.trim()).toMatch(/^tspod: invalid filter "status=bogus": a status is one of created, /);
    expect((await t.run(['rm', '-f', 'files'])).code).toBe(0);
  }, 60_000);

  it('cp into a created container and out of an exited one (volumes too, symlinks kept inside); a SIGKILLed cp leaves no holder', async () => {
    const holders = () => readdirSync('/proc').filter((p) => /^\d+$/.test(p) && (() => {
      try { return readFileSync(`/proc/${p}/cmdline`, 'latin1') === '/dev/.tspod-init\0--pause\0'; } catch { return false; }
    })());
    const host = join(t.root, '..', 'cp-stopped');
    mkdirSync(host, { recursive: true });
    writeFileSync(join(host, 'in.txt'), 'into a created container\n');
    const c = await t.run(['create', '--name', 'cpstop', '--network', 'none', '-v', 'cpvol:/vol', 'busybox', 'sh', '-c',
      'cat /in.txt /vol/in.txt; ln -s / /up; ln -s /etc/passwd /pw; echo out > /made']);
    expect(c.code, c.stderr).toBe(0);
    created.add(c.stdout.trim());
    expect((await t.run(['cp', join(host, 'in.txt'), 'cpstop:/'])).code).toBe(0);
    expect((await t.run(['cp', join(host, 'in.txt'), 'cpstop:/vol/in.txt'])).code).toBe(0);
    const started = await t.run(['start', '-a', 'cpstop']);
    expect([started.code, started.stdout]).toEqual([0, 'into a created container\ninto a created container\n']);
    // out of the exited container: a file, a symlink copied as a symlink
    expect((await t.run(['cp', 'cpstop:/made', join(host, 'made')])).code).toBe(0);
    expect(readFileSync(join(host, 'made'), 'utf8')).toBe('out\n');
    expect((await t.run(['cp', 'cpstop:/pw', join(host, 'pw')])).code).toBe(0);
    expect(readlinkSync(join(host, 'pw'))).toBe('/etc/passwd');
    // in through the container's symlink to "/": the container's root, never the host's
    expect((await t.run(['cp', join(host, 'in.txt'), 'cpstop:/up/escaped.txt'])).code).toBe(0);
    expect(existsSync('/escaped.txt')).toBe(false);
    expect((await t.run(['cp', 'cpstop:/escaped.txt', join(host, 'back.txt')])).code).toBe(0);
    expect(readFileSync(join(host, 'back.txt'), 'utf8')).toBe('into a created container\n');
    const missing = await t.run(['cp', 'cpstop:/nope', host]);
    expect([missing.code, missing.stderr]).toEqual([1, 'tspod: cp: could not find /nope in the container\n']);
    expect(holders()).toEqual([]);

    // docker cp's rules: a directory merges into an existing one (twice is fine), "SRC/." copies the contents
    // both ways, a trailing "/" on the destination wants a directory; symlinks come as symlinks; mode and mtime kept
    const tree = join(host, 'tree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    writeFileSync(join(tree, 'sub', 'f'), 'f1\n', { mode: 0o751 });
    utimesSync(join(tree, 'sub', 'f'), new Date('2020-01-02T03:04:05Z'), new Date('2020-01-02T03:04:05Z'));
    symlinkSync('/etc/passwd', join(tree, 'link'));
    const ok = async (args: string[]) => { const r = await t.run(args); expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0); };
    await ok(['cp', tree, 'cpstop:/']);
    writeFileSync(join(tree, 'sub', 'g'), 'g\n');
    await ok(['cp', tree, 'cpstop:/']); // merged: f stays, g added
    await ok(['cp', `${tree}/.`, 'cpstop:/flat']); // a new directory with the contents
    const back = join(host, 'back');
    mkdirSync(back);
    await ok(['cp', 'cpstop:/tree/.', back]); // the contents into an existing directory
    expect(readdirSync(back).sort()).toEqual(['link', 'sub']);
    expect(readFileSync(join(back, 'sub', 'g'), 'utf8')).toBe('g\n');
    expect(readlinkSync(join(back, 'link'))).toBe('/etc/passwd');
    const f = statSync(join(back, 'sub', 'f'));
    expect([f.mode & 0o777, f.mtime.toISOString()]).toEqual([0o751, '2020-01-02T03:04:05.000Z']);
    await ok(['cp', 'cpstop:/flat/sub/f', join(host, 'f-again')]);
    expect(readFileSync(join(host, 'f-again'), 'utf8')).toBe('f1\n');
    const notDir = await t.run(['cp', join(tree, 'sub', 'g'), 'cpstop:/flat/sub/f/']);
    expect([notDir.code, notDir.stderr]).toEqual([1, 'tspod: cp: /flat/sub/f/ is not a directory in the container\n']);
    const noDest = await t.run(['cp', join(tree, 'sub', 'g'), 'cpstop:/no-such-dir/']);
    expect([noDest.code, noDest.stderr]).toEqual([1, 'tspod: cp: the destination directory /no-such-dir/ does not exist in the container\n']);
    // a FIFO is refused before anything is written
    execFileSync('mkfifo', [join(host, 'fifo')]);
    const fifo = await t.run(['cp', join(host, 'fifo'), 'cpstop:/fifo']);
    expect([fifo.code, fifo.stderr]).toEqual([1, `tspod: cp: ${join(host, 'fifo')} is a FIFO: only files, directories and symlinks are copied\n`]);
    expect((await t.run(['cp', 'cpstop:/fifo', host])).code).toBe(1);

    // SIGKILL of the CLI while it holds the filesystem: the holder goes with it, and the container starts
    writeFileSync(join(host, 'big'), Buffer.alloc(256 * 1024 * 1024));
    const child = spawn(process.execPath, [TSPOD_BIN, 'cp', join(host, 'big'), 'cpstop:/big'], { env: t.env, stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await until('the holder', () => holders().length > 0, 10_000);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL'); // killed while it held the filesystem, not after a finished copy
    await until('the holder to go', () => holders().length === 0, 5_000);
    const again = await t.run(['start', '-a', 'cpstop']);
    expect(again.code, again.stderr).toBe(0);
    expect((await t.run(['rm', '-v', 'cpstop'])).code).toBe(0);
    expect((await t.run(['volume', 'rm', 'cpvol'])).code).toBe(0);
  }, 60_000);

  it('container prune and system prune remove stopped containers only', async () => {
    const done = await runD('busybox', 'sh', '-c', 'echo data > /file');
    const live = await runD('busybox', 'sleep', '1000');
    expect((await t.run(['wait', done])).stdout.trim()).toBe('0');
    const p = await t.run(['container', 'prune', '-f']);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toContain(done);
    expect(p.stdout).not.toContain(live);
    expect(existsSync(join(t.root, 'containers', done))).toBe(false);
    expect(existsSync(join(t.root, 'store', 'snapshots', done))).toBe(false);
    expect((await t.run(['kill', live])).code).toBe(0);
    expect((await t.run(['wait', live])).stdout.trim()).toBe('137');
    const sp = await t.run(['system', 'prune', '-f']);
    expect(sp.code, sp.stderr).toBe(0);
    expect(sp.stdout).toMatch(new RegExp(`Deleted Containers:\\n${live}`));
    expect(existsSync(join(t.root, 'containers', live))).toBe(false);
    expect(cgroupsOf([done, live])).toEqual([]);
  }, 60_000);

  it('100 detached containers run at once; the monitors\' resident memory is measured over 20 of them and reported', async () => {
    const ids: string[] = [];
    const N = 100;
    const workers = 4;
    let next = 0;
    await Promise.all(Array.from({ length: workers }, async () => {
      while (next < N) {
        next++;
        ids.push(await runD('busybox', 'sleep', '1000'));
      }
    }));
    expect(ids.length).toBe(N);
    const running = (await t.run(['ps', '-q', '--no-trunc'])).stdout.split('\n').filter(Boolean);
    expect(running.filter((id) => ids.includes(id)).length).toBe(N);
    const rssOf = async (id: string) => {
      const mpid = (await inspect(id)).Tspod.MonitorPid as number;
      return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${mpid}/status`, 'utf8'))![1]);
    };
    const rss: number[] = [];
    for (const id of ids.slice(0, 20)) rss.push(await rssOf(id));
    const avg = rss.reduce((a, b) => a + b, 0) / rss.length;
    console.log(`tspod-monitor resident memory over 20 detached containers (of ${N} running): avg ${avg.toFixed(0)} kB, max ${Math.max(...rss)} kB`);
    expect(Math.max(...rss)).toBeLessThan(2048);
    const chunks = Array.from({ length: workers }, (_, i) => ids.filter((_, j) => j % workers === i));
    const rms = await Promise.all(chunks.map((c) => t.run(['rm', '-f', ...c])));
    for (const rm of rms) expect(rm.code, rm.stderr).toBe(0);
    expect(cgroupsOf(ids)).toEqual([]);
    expect(processesIn(ids)).toEqual([]);
  }, 400_000);
});
