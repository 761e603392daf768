// Issue 7, `run -d -t` / `run -d -i` and `attach` (and `start -a -i`) through the monitor's attach socket
// (native/monitor.c, src/container/attach.ts). The interactive client runs under a real pseudo-terminal
// (test/support/ptydrive.py makes it the CLI's controlling terminal); extra clients are plain processes.
// Every synchronisation point is observed (the monitor's connected sockets, the log), never slept for.
import { describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from '../support/registry.js';
import { TSPOD_BIN } from '../support/tspod.js';
import { useTspodSuite } from '../support/suite.js';
import { isRoot, haveOverlay } from '../support/caps.js';

const gate = isRoot() ?? haveOverlay();
type Step = { expect: string; timeout?: number } | { send: string } | { resize: [number, number] } | { sleep: number };

describe.skipIf(gate)('attach (issue 7)', () => {
  const s = useTspodSuite('attach', { pull: ['alpine:3.20', 'busybox'] });
  const base = () => ['--network', 'none', '--cgroup-parent', s.parent];

  function onPty(args: string[], steps: Step[], size: [number, number] = [24, 80]): Promise<{ out: string; exit: number }> {
    return new Promise((resolve, reject) => {
      execFile('python3', [join(repoRoot(), 'test', 'support', 'ptydrive.py'), String(size[0]), String(size[1]), JSON.stringify(steps), '--',
        process.execPath, TSPOD_BIN, ...args], { env: s.t.env, timeout: 90_000 }, (err, stdout) => {
        const m = /\nEXIT (-?\d+)\n$/.exec(stdout);
        if (!m) return reject(new Error(`ptydrive: ${err?.message ?? ''}\n${stdout}`));
        resolve({ out: stdout.slice(0, m.index).replace(/\r/g, ''), exit: Number(m[1]) });
      });
    });
  }

  /** A CLI left running in the background, its output collected. */
  function background(args: string[], input?: string): { child: ChildProcess; out: () => string; err: () => string; done: Promise<number | null> } {
    const child = spawn(process.execPath, [TSPOD_BIN, ...args], { env: s.t.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    if (input !== undefined) child.stdin!.end(input);
    const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    return { child, out: () => out, err: () => err, done };
  }

  const record = (name: string) => {
    const link = readlinkSync(join(s.t.root, 'containers', 'names', name));
    return { dir: join(s.t.root, 'containers', link), ...JSON.parse(readFileSync(join(s.t.root, 'containers', link, 'container.json'), 'utf8')) } as
      { dir: string; monitorPid: number; state: string };
  };
  /** Clients connected to a monitor: its sockets but the listening one. */
  const clients = (monitorPid: number) => readdirSync(`/proc/${monitorPid}/fd`)
    .filter((fd) => { try { return readlinkSync(`/proc/${monitorPid}/fd/${fd}`).startsWith('socket:'); } catch { return false; } }).length - 1;
  async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000, detail?: () => string): Promise<void> {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}${detail ? `: ${detail()}` : ''}`);
      await sleep(25);
    }
  }
  const state = async (name: string) => JSON.parse((await s.t.run(['inspect', name])).stdout)[0].State as { Status: string; Running: boolean; ExitCode: number };
  /** Runs tspod and expects success, naming what went wrong. */
  const ok = async (args: string[]) => {
    const r = await s.t.run(args);
    expect(r.code, `tspod ${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r;
  };
  const sockets = (dir: string) => existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.sock')) : [];

  it('run -dit: attach gets a raw terminal of its size, input, resizes; ctrl-p ctrl-q detaches; two clients; exit code', async () => {
    const name = `tty-${process.pid}`;
    const r = await s.t.run(['run', '-dit', '--name', name, ...base(), 'alpine:3.20', 'sh']);
    expect(r.code, r.stderr).toBe(0);
    const { monitorPid, dir } = record(name);

    // first session: input, the terminal's size at attach and after a resize, then the detach keys
    const a = await onPty(['attach', name], [
      { send: '\r' },
      { expect: '# ' },
      { send: 'echo hi-$((1+2)); stty size\r' },
      { expect: 'hi-3' },
      { expect: '30 90' },
      { resize: [40, 100] },
      { sleep: 0.5 },
      { send: 'stty size\r' },
      { expect: '40 100' },
      { send: '\u0010\u0011' },
    ], [30, 90]);
    expect(a.out).toContain('hi-3');
    expect(a.out).toContain('30 90');
    expect(a.out).toContain('40 100');
    expect(a.exit).toBe(0);
    expect((await state(name)).Running).toBe(true);
    await until('the detached client to be gone', () => clients(monitorPid) === 0);

    // a client killed with SIGKILL: the container runs on and stays attachable
    const victim = background(['attach', '--no-stdin', name]);
    await until('the victim to connect', () => clients(monitorPid) === 1);
    victim.child.kill('SIGKILL');
    await victim.done;
    await until('the monitor to drop the killed client', () => clients(monitorPid) === 0);
    expect((await state(name)).Running).toBe(true);

    // two clients: an observer (no input) and the terminal; both see the output and both get the status
    const observer = background(['attach', '--no-stdin', name]);
    await until('the observer to connect', () => clients(monitorPid) === 1);
    const b = await onPty(['attach', name], [
      { send: '\r' },
      { expect: '# ' },
      { send: 'echo both-$((2+2)); exit 3\r' },
      { expect: 'both-4' },
    ], [25, 70]);
    expect(b.out).toContain('both-4');
    expect(b.exit).toBe(3);
    expect(await observer.done).toBe(3);
    expect(observer.out()).toContain('both-4');

    const st = await state(name);
    expect(st.Status).toBe('exited');
    expect(st.ExitCode).toBe(3);
    const logs = await s.t.run(['logs', name]);
    expect(logs.stdout).toContain('hi-3');
    expect(logs.stdout).toContain('both-4');
    expect(sockets(dir)).toEqual([]); // the monitor removed its socket

    // attach to a stopped container: one line, exit 1 (docker's)
    const stopped = await s.t.run(['attach', name]);
    expect(stopped.code).toBe(1);
    expect(stopped.stderr.trim().split('\n')).toHaveLength(1);
    expect(stopped.stderr).toMatch(/cannot attach to container .*: it is not running/);
    await ok(['rm', name]);
  });

  it('run -di: attach forwards stdin (the container keeps it open between clients), stdout and stderr stay apart', async () => {
    const name = `stdin-${process.pid}`;
    const r = await s.t.run(['run', '-di', '--name', name, ...base(), 'alpine:3.20', 'sh', '-c',
      'read l; echo got:$l; echo err:$l >&2; read m; echo got2:$m; exit 4']);
    expect(r.code, r.stderr).toBe(0);
    const { monitorPid } = record(name);

    // the first client's input ends after one line: the container's stdin stays open (docker's attach)
    const first = background(['attach', name], 'one\n');
    const seen = () => `client exit ${first.child.exitCode}, stdout ${JSON.stringify(first.out())}, stderr ${JSON.stringify(first.err())}`;
    await until('the container to read the first line', () => first.out().includes('got:one'), 20_000, seen);
    await until('the first client to get stderr', () => first.err().includes('err:one'), 20_000, seen);
    expect(clients(monitorPid)).toBe(1);
    expect((await state(name)).Running).toBe(true);

    const second = await s.t.run(['attach', name], { input: 'two\n' });
    expect(second.code, second.stderr).toBe(4);
    expect(second.stdout).toBe('got2:two\n');
    expect(await first.done).toBe(4);
    expect(first.out()).toBe('got:one\ngot2:two\n');
    expect(first.err()).toBe('err:one\n');

    const logs = await s.t.run(['logs', name]);
    expect(logs.stdout).toBe('got:one\ngot2:two\n');
    expect(logs.stderr).toBe('err:one\n');
    expect((await state(name)).ExitCode).toBe(4);
    await ok(['rm', name]);
  });

  it('start -a [-i]: connected before the command runs, so no output is missed; stdin with -i', async () => {
    const quick = `quick-${process.pid}`;
    await ok(['create', '--name', quick, ...base(), 'busybox', 'sh', '-c', 'echo out-now; echo err-now >&2; exit 6']);
    for (let i = 0; i < 2; i++) {
      const r = await s.t.run(['start', '-a', quick]);
      expect(r.code, r.stderr).toBe(6);
      expect(r.stdout).toBe('out-now\n');
      expect(r.stderr).toBe('err-now\n');
    }

    const inter = `inter-${process.pid}`;
    await ok(['create', '-i', '--name', inter, ...base(), 'busybox', 'sh', '-c', 'cat; echo eof-seen; exit 7']);
    // create -i: the end of the client's input is the end of the container's (docker's StdinOnce)
    for (let i = 0; i < 2; i++) {
      const r = await s.t.run(['start', '-ai', inter], { input: 'val\nmore\n', timeoutMs: 20_000 });
      expect(r.code, r.stderr).toBe(7);
      expect(r.stdout).toBe('val\nmore\neof-seen\n');
    }

    // -dit then start -ai after it exited: the terminal again, the shell's prompt is not missed
    const tty = `starttty-${process.pid}`;
    await ok(['create', '-it', '--name', tty, ...base(), 'alpine:3.20', 'sh']);
    const p = await onPty(['start', '-ai', tty], [{ expect: '# ' }, { send: 'echo st-$((3*3)); exit 5\r' }, { expect: 'st-9' }]);
    expect(p.exit).toBe(5);
    await ok(['rm', quick, inter, tty]);
  });

  it('rm -f with a client attached, SIGKILL of the monitor: the truth in ps, a clear attach error, nothing left', async () => {
    const name = `gone-${process.pid}`;
    await ok(['run', '-dit', '--name', name, ...base(), 'alpine:3.20', 'sh']);
    let rec = record(name);
    const observer = background(['attach', '--no-stdin', name]);
    await until('the observer to connect', () => clients(rec.monitorPid) === 1);
    process.kill(rec.monitorPid, 'SIGKILL');
    await until('the monitor to be gone', () => !existsSync(`/proc/${rec.monitorPid}`));
    expect(await observer.done).toBe(137); // the container went with its monitor
    const ps = await s.t.run(['ps', '-a', '--filter', `name=${name}`]);
    expect(ps.stdout).toMatch(/Exited \(137\)/);
    expect(sockets(rec.dir)).toEqual([]); // the killed monitor's socket went with reconcile
    const a = await s.t.run(['attach', name]);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/cannot attach to container .*: it is not running \(start it first\)\n$/);

    // restarted, attached, removed by force: the client ends, no socket, process or cgroup is left
    await ok(['start', name]);
    rec = record(name);
    const second = background(['attach', '--no-stdin', name]);
    await until('the client to connect', () => clients(rec.monitorPid) === 1);
    expect(sockets(rec.dir)).toEqual(['attach.sock']);
    await ok(['rm', '-f', name]);
    expect(await second.done).not.toBe(0);
    expect(existsSync(rec.dir)).toBe(false);
    await until('the monitor to end', () => !existsSync(`/proc/${rec.monitorPid}`));
  });

  it('--restart: the monitor keeps the socket and the terminal; each run ends the attached clients with its status', async () => {
    const name = `restart-${process.pid}`;
    await ok(['run', '-dit', '--restart', 'always', '--name', name, ...base(), 'alpine:3.20', 'sh']);
    const { monitorPid } = record(name);
    const a = await onPty(['attach', name], [{ send: '\r' }, { expect: '# ' }, { send: 'tty; exit 2\r' }]);
    expect(a.exit).toBe(2);
    expect(a.out).toContain('\n/dev/pts/0\n'); // musl's ttyname: only a pty of the container's own devpts has a name
    await until('the restart', async () => {
      const j = JSON.parse((await s.t.run(['inspect', name])).stdout)[0] as { RestartCount: number; State: { Running: boolean } };
      return j.RestartCount >= 1 && j.State.Running;
    });
    const b = await onPty(['attach', name], [{ send: '\r' }, { expect: '# ' }, { send: 'echo again-$((5*5)); stty size; tty\r' }, { expect: 'again-25' },
      { expect: '33 77' }, { expect: '/dev/pts/0' }, { send: '\u0010\u0011' }], [33, 77]);
    expect(b.exit).toBe(0); // a new run, a new terminal in its own /dev/pts
    expect(existsSync(`/proc/${monitorPid}`)).toBe(true); // the same monitor
    await ok(['rm', '-f', name]);
  });

  it('a client that cannot keep up is dropped; the container never waits for it', async () => {
    const name = `slow-${process.pid}`;
    expect((await s.t.run(['run', '-di', '--name', name, ...base(), 'busybox', 'sh', '-c',
      'read go; yes "$(printf %01000d 0)" | head -c 4000000; echo flood-done; sleep 300'])).code).toBe(0);
    const { monitorPid, dir } = record(name);
    const slow = background(['attach', '--no-stdin', name]);
    await until('the slow client to connect', () => clients(monitorPid) === 1);
    slow.child.kill('SIGSTOP');
    try {
      // another client starts the flood and detaches at once (input, then ctrl-p ctrl-q)
      const go = await s.t.run(['attach', name], { input: 'go\n\u0010\u0011' });
      expect(go.code, go.stderr).toBe(0);
      await until('the flood to reach the log', () => readFileSync(join(dir, 'json.log'), 'utf8').includes('flood-done'), 60_000);
      expect(clients(monitorPid)).toBe(0);
    } finally {
      slow.child.kill('SIGCONT');
    }
    expect(await slow.done).toBe(1);
    expect(slow.err()).toMatch(/dropped this client, which could not keep up/);
    expect((await state(name)).Running).toBe(true);
    await ok(['rm', '-f', name]);
  });

  it('--sig-proxy (default): a signal to attach goes to a container without a terminal; --sig-proxy=false: Ctrl-C detaches', async () => {
    const name = `sig-${process.pid}`;
    await ok(['run', '-d', '--name', name, ...base(), 'busybox', 'sh', '-c', 'trap "echo got-int; exit 42" INT; while true; do sleep 0.1; done']);
    const { monitorPid } = record(name);
    const off = background(['attach', '--sig-proxy=false', name]);
    await until('the client to connect', () => clients(monitorPid) === 1);
    off.child.kill('SIGINT');
    expect(await off.done).toBe(0);
    expect((await state(name)).Running).toBe(true);
    await until('the detached client to be gone', () => clients(monitorPid) === 0);
    const on = background(['attach', name]);
    await until('the client to connect', () => clients(monitorPid) === 1);
    on.child.kill('SIGINT');
    expect(await on.done).toBe(42);
    expect(on.out()).toBe('got-int\n');
    await ok(['rm', name]);
  });

  it('bad input: an unknown detach key, a terminal container attached from a pipe', async () => {
    const name = `bad-${process.pid}`;
    await ok(['run', '-dit', '--name', name, ...base(), 'busybox', 'sh']);
    const k = await s.t.run(['attach', '--detach-keys', 'ctrl-1', name]);
    expect(k.code).toBe(1);
    expect(k.stderr).toMatch(/invalid --detach-keys "ctrl-1"/);
    const p = await s.t.run(['attach', name], { input: 'echo x\n' });
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(/the input device is not a TTY/);
    expect((await state(name)).Running).toBe(true);
    await ok(['pause', name]);
    const paused = await s.t.run(['attach', '--no-stdin', name]);
    expect(paused.code).toBe(1);
    expect(paused.stderr).toMatch(/cannot attach to container .*: it is paused \(unpause it first\)/);
    await ok(['unpause', name]);
    await ok(['rm', '-f', name]);
  });
});
