// The launcher's join mode (tspod exec) without the CLI: a running container made by the launcher
// itself, then a second plan with `join PID STARTTIME` that enters it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import { launch } from '../../../src/runtime/launcher.js';
import { processStartTime } from '../../../src/state/proc.js';
import { TspodError } from '../../../src/util/errors.js';
import { firstReason, haveCommand, isRoot } from '../../support/caps.js';
import { basePlan, buildLauncher, makeBusyboxRootfs, runCaptured, tempDir, waitFor } from './helpers.js';

const reason = firstReason(isRoot(), haveCommand('busybox'), haveCommand('make'));

describe.skipIf(reason)('launcher join mode', () => {
  let dir: string;
  let rootfs: string;
  let initPid = 0;
  let running: Promise<unknown>;

  beforeAll(async () => {
    buildLauncher();
    dir = tempDir();
    rootfs = makeBusyboxRootfs(dir);
    running = launch(basePlan(rootfs, ['/bin/sh', '-c', 'echo inside > /tmp/mark; exec sleep 60'], { capabilities: [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31] }),
      { stdio: ['ignore', 'ignore', 'ignore'], onPid: (p) => { initPid = p; } }).catch(() => undefined);
    await waitFor(() => initPid > 0 && processStartTime(initPid) !== undefined, 'the container');
  });

  afterAll(async () => {
    if (initPid) process.kill(initPid, 'SIGKILL');
    await running;
    rmSync(dir, { recursive: true, force: true });
  });

  const joinPlan = (args: string[], startTime = processStartTime(initPid)!) =>
    ({ ...basePlan(rootfs, args, { capabilities: [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31] }), join: { pid: initPid, startTime } });

  it('enters the pid, mount and uts namespaces and the root of the init, with its capability set', async () => {
    await waitFor(() => { try { return readFileSync(`/proc/${initPid}/root/tmp/mark`, 'utf8') === 'inside\n'; } catch { return false; } }, 'the mark');
    const r = await runCaptured(joinPlan(['/bin/sh', '-c', 'cat /tmp/mark; hostname; ps -o pid,comm | grep -c .; grep CapEff /proc/self/status']));
    expect(r.result.exitCode, r.out).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toBe('inside');
    expect(lines[1]).toBe('tspod-test');
    expect(Number(lines[2])).toBeLessThanOrEqual(5); // header, sleep (pid 1), sh, ps, grep: the container's only
    const initCaps = /CapEff:\s*([0-9a-f]+)/.exec(readFileSync(`/proc/${initPid}/status`, 'utf8'))![1];
    expect(initCaps).not.toBe('000001ffffffffff'); // the plan dropped some: the comparison means something
    expect(lines[3]).toBe(`CapEff:\t${initCaps}`);
  });

  it('refuses a pid whose start time does not match (a reused pid is never joined)', async () => {
    const err = await launch(joinPlan(['/bin/true'], processStartTime(initPid)! + 1), { stdio: ['ignore', 'ignore', 'ignore'] }).then(() => undefined, (e) => e as TspodError);
    expect(err?.message).toMatch(/container process \d+ is not running \(its pid belongs to another process now\)/);
  });

  it('passes the exit status and 127 for a missing command', async () => {
    expect((await runCaptured(joinPlan(['/bin/sh', '-c', 'exit 7']))).result.exitCode).toBe(7);
    const missing = await runCaptured(joinPlan(['nope'])).then(() => undefined, (e) => e as TspodError);
    expect(missing?.code).toBe('ENOCMD');
  });
});
