// The launcher's protocol end to end: exit statuses, pre-exec errors, the onPid hook and sync,
// signal forwarding, and the parent-death guarantees.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, launcherPath } from '../../../src/runtime/launcher.js';
import { TspodError } from '../../../src/util/errors.js';
import { firstReason, gated, haveCommand, isRoot } from '../../support/caps.js';
import { alive, basePlan, ppidOf, runCaptured, sh, useBusyboxRootfs, waitFor } from './helpers.js';
import { rejection } from '../../support/errors.js';

const reason = firstReason(isRoot(), haveCommand('busybox'), haveCommand('make'));

/** Runs the launcher binary directly with a raw plan text; returns its report and exit status. */
function rawLaunch(text: string): Promise<{ report: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(launcherPath(), [], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
    let report = '';
    (child.stdio[4] as NodeJS.ReadableStream).on('data', (b: Buffer) => { report += b.toString(); });
    (child.stdio[3] as NodeJS.WritableStream).on('error', () => {});
    (child.stdio[3] as NodeJS.WritableStream).end(text);
    child.on('error', reject);
    child.on('close', (code) => resolve({ report, code }));
  });
}

describe.skipIf(reason)(gated('launcher: lifecycle', reason), () => {
  const { rootfs } = useBusyboxRootfs();

  beforeAll(() => {
    writeFileSync(join(rootfs, 'notexec'), '#!/bin/sh\necho hi\n');
    chmodSync(join(rootfs, 'notexec'), 0o644);
  });

  it('resolves with the exit status', async () => {
    const r = await launch(basePlan(rootfs, ['sh', '-c', 'exit 3']), { stdio: ['ignore', 'ignore', 'ignore'] });
    expect(r.exitCode).toBe(3);
    expect(r.signal).toBeUndefined();
    expect(r.pid).toBeGreaterThan(1);
  });

  it('reports death by signal as 128+N', async () => {
    // Without a pid namespace: a pid 1 cannot SIGKILL itself.
    const plan = basePlan(rootfs, ['sh', '-c', 'kill -9 $$'], { namespaces: ['mount', 'uts', 'ipc', 'net'] });
    const r = await launch(plan, { stdio: ['ignore', 'ignore', 'ignore'] });
    expect(r).toMatchObject({ exitCode: 137, signal: 9 });
  });

  it('rejects a missing command with ENOCMD and a one-line message', async () => {
    const err = await rejection(launch(basePlan(rootfs, ['nope']), { stdio: ['ignore', 'ignore', 'ignore'] }));
    expect(err).toBeInstanceOf(TspodError);
    expect(err.code).toBe('ENOCMD');
    expect(err.message).toBe('exec "nope": executable file not found in $PATH');
    const abs = await rejection(launch(basePlan(rootfs, ['/bin/nope']), { stdio: ['ignore', 'ignore', 'ignore'] }));
    expect(abs.code).toBe('ENOCMD');
    expect(abs.message).toBe('exec "/bin/nope": no such file or directory');
  });

  it('rejects a file that is not executable with ENOEXEC', async () => {
    const err = await rejection(launch(basePlan(rootfs, ['/notexec']), { stdio: ['ignore', 'ignore', 'ignore'] }));
    expect(err.code).toBe('ENOEXEC');
    expect(err.message).toBe('exec "/notexec": permission denied');
    const viaPath = await rejection(launch(basePlan(rootfs, ['notexec'], { env: ['PATH=/bin:/'] }), { stdio: ['ignore', 'ignore', 'ignore'] }));
    expect(viaPath.code).toBe('ENOEXEC');
  });

  it('rejects a missing cwd with ELAUNCH, or creates it with mkdirCwd', async () => {
    const err = await rejection(launch(basePlan(rootfs, ['true'], { cwd: '/nope' }), { stdio: ['ignore', 'ignore', 'ignore'] }));
    expect(err.code).toBe('ELAUNCH');
    expect(err.message).toBe('chdir /nope: no such file or directory');
    const out = await sh(basePlan(rootfs, ['pwd'], { cwd: '/work/dir', mkdirCwd: true, user: { uid: 1234, gid: 4321, additionalGids: [] } }));
    expect(out.trim()).toBe('/work/dir');
    const st = statSync(join(rootfs, 'work', 'dir'));
    expect([st.uid, st.gid]).toEqual([1234, 4321]);
  });

  it('rejects an invalid plan as a rejected promise, before spawning anything', async () => {
    const p = launch(basePlan(rootfs, []));
    await expect(p).rejects.toMatchObject({ code: 'EINVAL', message: 'serialize plan: no command' });
  });

  it('rejects a mount destination with ".." before touching anything', async () => {
    const plan = basePlan(rootfs, ['true']);
    plan.mounts.push({ source: 'tmpfs', destination: '/tmp/../../escape', type: 'tmpfs', flags: [] });
    const err = await rejection(launch(plan, { stdio: ['ignore', 'ignore', 'ignore'] }));
    expect(err.code).toBe('ELAUNCH');
    expect(err.message).toMatch(/^resolve \/tmp\/\.\.\/\.\.\/escape: "\.\." is not allowed/);
  });

  it('reports a failing mount with the object and the cause', async () => {
    const plan = basePlan(rootfs, ['true']);
    plan.mounts.push({ source: 'x', destination: '/x', type: 'nosuchfs', flags: [] });
    const err = await rejection(launch(plan, { stdio: ['ignore', 'ignore', 'ignore'] }));
    expect(err.code).toBe('ELAUNCH');
    expect(err.message).toBe('mount x on /x: no such device');
  });

  it('runs onPid before the container starts, with the host pid of its init', async () => {
    const marker = join(rootfs, 'tmp', 'from-hook');
    let seen: { pid: number; nspid: string; comm: string } | undefined;
    const { result, out } = await runCaptured(basePlan(rootfs, ['cat', '/tmp/from-hook']), {
      onPid: async (pid) => {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        seen = { pid, nspid: /^NSpid:\s+(.*)$/m.exec(status)![1]!, comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim() };
        await new Promise((r) => setTimeout(r, 100)); // the container must still wait
        writeFileSync(marker, 'written by the hook\n');
      },
    });
    rmSync(marker, { force: true });
    expect(result.exitCode).toBe(0);
    expect(out).toBe('written by the hook\n');
    expect(seen?.pid).toBe(result.pid);
    expect(seen?.nspid.split(/\s+/)).toEqual([String(result.pid), '1']);
    expect(seen?.comm).toBe('tspod-launch'); // not exec'd yet (the memfd copy keeps the name)
  });

  it('kills the launcher and the container when onPid throws', async () => {
    let pid = 0;
    // The onPid hook's own error comes out as it is (not wrapped in a TspodError).
    await expect(launch(basePlan(rootfs, ['sleep', '30']), {
      stdio: ['ignore', 'ignore', 'ignore'],
      onPid: (p) => { pid = p; throw new Error('cgroup refused'); },
    })).rejects.toThrow(/^cgroup refused$/);
    await waitFor(() => !alive(pid), `container init ${pid} to go away`);
  });

  it('forwards SIGTERM from the launcher to the container', async () => {
    const ready = join(rootfs, 'tmp', 'trap-ready');
    rmSync(ready, { force: true });
    const running = launch(basePlan(rootfs, ['sh', '-c', 'trap "exit 7" TERM; touch /tmp/trap-ready; sleep 30 & wait']), {
      stdio: ['ignore', 'ignore', 'ignore'],
      onPid: (p) => { pidBox.pid = p; },
    });
    const pidBox = { pid: 0 };
    try {
      await waitFor(() => existsSync(ready), 'the trap to be installed');
      process.kill(ppidOf(pidBox.pid), 'SIGTERM');
      const r = await running;
      expect(r.exitCode).toBe(7);
    } finally {
      if (alive(pidBox.pid)) process.kill(pidBox.pid, 'SIGKILL');
      await running.catch(() => {});
      rmSync(ready, { force: true });
    }
  });

  it('forwards SIGHUP received by this process while running, and removes its listeners after', async () => {
    const ready = join(rootfs, 'tmp', 'hup-ready');
    rmSync(ready, { force: true });
    const before = process.listenerCount('SIGHUP');
    const box = { pid: 0 };
    const running = launch(basePlan(rootfs, ['sh', '-c', 'trap "exit 5" HUP; touch /tmp/hup-ready; sleep 30 & wait']), {
      stdio: ['ignore', 'ignore', 'ignore'],
      onPid: (p) => { box.pid = p; },
    });
    try {
      expect(process.listenerCount('SIGHUP')).toBe(before + 1);
      await waitFor(() => existsSync(ready), 'the trap to be installed');
      process.emit('SIGHUP', 'SIGHUP'); // what Node does when the signal arrives
      expect((await running).exitCode).toBe(5);
      expect(process.listenerCount('SIGHUP')).toBe(before);
    } finally {
      if (alive(box.pid)) process.kill(box.pid, 'SIGKILL');
      await running.catch(() => {});
      rmSync(ready, { force: true });
    }
  });

  it('takes the container down when the launcher is SIGKILLed', async () => {
    const pidBox = { pid: 0 };
    const running = launch(basePlan(rootfs, ['sleep', '30']), {
      stdio: ['ignore', 'ignore', 'ignore'],
      onPid: (p) => { pidBox.pid = p; },
    });
    try {
      await waitFor(() => pidBox.pid > 0 && alive(pidBox.pid) && readFileSync(`/proc/${pidBox.pid}/comm`, 'utf8').trim() === 'sleep', 'sleep to run');
      process.kill(ppidOf(pidBox.pid), 'SIGKILL');
      const err = await rejection(running);
      expect(err.code).toBe('ELAUNCH');
      expect(err.message).toMatch(/was killed by SIGKILL before reporting the container's end/);
      await waitFor(() => !alive(pidBox.pid), 'the container init to die with its launcher');
    } finally {
      if (alive(pidBox.pid)) process.kill(pidBox.pid, 'SIGKILL');
      await running.catch(() => {});
    }
  });

  it('the launcher rejects unknown keywords, bad escapes and a plan without "end"', async () => {
    expect(await rawLaunch(`rootfs ${rootfs}\nnamespaces mount\nfoo bar\nend\n`))
      .toEqual({ report: 'error 125 plan line 3: unknown keyword foo\n', code: 125 });
    expect(await rawLaunch(`rootfs ${rootfs}\nnamespaces mount\nargs a%zz\nend\n`))
      .toEqual({ report: 'error 125 plan line 3: bad percent escape\n', code: 125 });
    expect(await rawLaunch(`rootfs ${rootfs}\nnamespaces mount\nargs true\n`))
      .toEqual({ report: 'error 125 read plan: unexpected end of input after line 3 (no "end" record)\n', code: 125 });
    expect(await rawLaunch(`rootfs ${rootfs}\nargs true\nend\n`))
      .toEqual({ report: 'error 125 plan: a rootfs needs the mount namespace\n', code: 125 });
  });

  it('the launcher gives up when the plan fd closes before the go-ahead', async () => {
    const r = await rawLaunch(`rootfs ${rootfs}\nnamespaces mount pid\nargs true\nsync\nend\n`);
    expect(r.code).toBe(125);
    expect(r.report).toMatch(/^pid \d+\nerror 125 launch aborted: the plan fd closed before the go-ahead\n$/);
  });
});
