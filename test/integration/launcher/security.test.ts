// Credentials and confinement: user and groups, capabilities, no-new-privs, seccomp, rlimits,
// and the sealed launcher binary (CVE-2019-5736).
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readlinkSync, writeFileSync, writeSync } from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';
import { launch } from '../../../src/runtime/launcher.js';
import { firstReason, gated, haveCommand, isRoot } from '../../support/caps.js';
import { alive, basePlan, ppidOf, sh, useBusyboxRootfs, waitFor } from './helpers.js';

const reason = firstReason(isRoot(), haveCommand('busybox'), haveCommand('make'));

function statusField(status: string, name: string): string {
  const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status);
  if (!m) throw new Error(`no ${name} in status:\n${status}`);
  return m[1]!.trim();
}

function hex(mask: bigint): string {
  return mask.toString(16).padStart(16, '0');
}

/** A BPF program: mkdir and mkdirat fail with EPERM, everything else is allowed. */
function denyMkdirProgram(): Buffer | undefined {
  const table: Record<string, { audit: number; nrs: number[] }> = {
    x64: { audit: 0xc000003e, nrs: [83, 258] },
    arm64: { audit: 0xc00000b7, nrs: [34, 34] },
  };
  const a = table[arch()];
  if (!a) return undefined;
  const ins: [number, number, number, number][] = [
    [0x20, 0, 0, 4],              // 0: ld arch
    [0x15, 0, 5, a.audit],        // 1: jeq arch ? next : 7 (allow: not our arch)
    [0x20, 0, 0, 0],              // 2: ld nr
    [0x15, 2, 0, a.nrs[0]!],      // 3: jeq mkdir -> 6
    [0x15, 1, 0, a.nrs[1]!],      // 4: jeq mkdirat -> 6
    [0x06, 0, 0, 0x7fff0000],     // 5: ret ALLOW
    [0x06, 0, 0, 0x00050000 | 1], // 6: ret ERRNO(EPERM)
    [0x06, 0, 0, 0x7fff0000],     // 7: ret ALLOW
  ];
  const buf = Buffer.alloc(ins.length * 8);
  ins.forEach(([code, jt, jf, k], i) => {
    buf.writeUInt16LE(code, i * 8);
    buf.writeUInt8(jt, i * 8 + 2);
    buf.writeUInt8(jf, i * 8 + 3);
    buf.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return buf;
}

describe.skipIf(reason)(gated('launcher: security', reason), () => {
  const { dir, rootfs } = useBusyboxRootfs();
  const hostStatus = readFileSync('/proc/self/status', 'utf8');
  const hostPrm = BigInt('0x' + statusField(hostStatus, 'CapPrm'));


  it('keeps every capability without a caps record', async () => {
    const st = await sh(basePlan(rootfs, ['cat', '/proc/self/status']));
    expect(statusField(st, 'CapEff')).toBe(statusField(hostStatus, 'CapEff'));
    expect(statusField(st, 'CapBnd')).toBe(statusField(hostStatus, 'CapBnd'));
  });

  it('keeps exactly the listed capabilities for root', async () => {
    const st = await sh(basePlan(rootfs, ['cat', '/proc/self/status'], { capabilities: [0, 5, 10] }));
    for (const f of ['CapEff', 'CapPrm', 'CapBnd', 'CapInh']) expect(statusField(st, f)).toBe(hex(0x421n));
    expect(statusField(st, 'CapAmb')).toBe(hex(0n));
  });

  it('never grants a capability the engine does not hold', async () => {
    // CAP_SYS_RESOURCE (24) is missing on some machines; the result is the intersection.
    const st = await sh(basePlan(rootfs, ['cat', '/proc/self/status'], { capabilities: [0, 24] }));
    expect(statusField(st, 'CapEff')).toBe(hex((1n | (1n << 24n)) & hostPrm));
  });

  it('drops an empty caps record to nothing', async () => {
    const st = await sh(basePlan(rootfs, ['cat', '/proc/self/status'], { capabilities: [] }));
    for (const f of ['CapEff', 'CapPrm', 'CapBnd']) expect(statusField(st, f)).toBe(hex(0n));
  });

  it('switches user and groups; a non-root user gets no effective capabilities', async () => {
    const st = await sh(basePlan(rootfs, ['cat', '/proc/self/status'], {
      user: { uid: 1000, gid: 1001, additionalGids: [10, 20] },
      capabilities: [0, 5, 10],
    }));
    expect(statusField(st, 'Uid').split(/\s+/)).toEqual(['1000', '1000', '1000', '1000']);
    expect(statusField(st, 'Gid').split(/\s+/)).toEqual(['1001', '1001', '1001', '1001']);
    expect(statusField(st, 'Groups')).toBe('10 20');
    expect(statusField(st, 'CapEff')).toBe(hex(0n));
    expect(statusField(st, 'CapBnd')).toBe(hex(0x421n));
    // and root's supplementary groups never leak in
    const rootSt = await sh(basePlan(rootfs, ['cat', '/proc/self/status']));
    expect(statusField(rootSt, 'Groups')).toBe('');
  });

  it('sets no-new-privs only when asked', async () => {
    expect(statusField(await sh(basePlan(rootfs, ['cat', '/proc/self/status'], { noNewPrivileges: true })), 'NoNewPrivs')).toBe('1');
    expect(statusField(await sh(basePlan(rootfs, ['cat', '/proc/self/status'])), 'NoNewPrivs')).toBe('0');
  });

  const prog = denyMkdirProgram();
  it.skipIf(!prog)(gated('installs a seccomp program last, after which mkdir fails with EPERM', prog ? undefined : `no test program for ${arch()}`), async () => {
    const file = join(dir, 'deny-mkdir.bpf');
    writeFileSync(file, prog!);
    const script = 'mkdir /tmp/blocked 2>&1; echo mkdir=$?; echo still-running; grep Seccomp: /proc/self/status';
    const out = await sh(basePlan(rootfs, ['sh', '-c', script], { seccompProgramPath: file, noNewPrivileges: true, capabilities: [0] }));
    expect(out).toMatch(/Operation not permitted/);
    expect(out).toMatch(/^mkdir=1$/m);
    expect(out).toContain('still-running');
    expect(out).toMatch(/^Seccomp:\s+2$/m);
    // control: without the program, mkdir works
    const ok = await sh(basePlan(rootfs, ['sh', '-c', 'mkdir /tmp/allowed && echo made; rmdir /tmp/allowed']));
    expect(ok).toContain('made');
  });

  it('rejects a malformed seccomp program before starting', async () => {
    const file = join(dir, 'bad.bpf');
    writeFileSync(file, Buffer.alloc(7));
    await expect(launch(basePlan(rootfs, ['true'], { seccompProgramPath: file }), { stdio: ['ignore', 'ignore', 'ignore'] }))
      .rejects.toMatchObject({ code: 'ELAUNCH', message: expect.stringMatching(/^load seccomp program .*bad\.bpf: size 7 is not a positive multiple of 8/) });
  });

  it('applies rlimits, clamping a hard limit above the engine\'s own', async () => {
    const hostHard = execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
    const out = await sh(basePlan(rootfs, ['sh', '-c', 'ulimit -n; ulimit -Hn; ulimit -c'], {
      rlimits: [{ type: 'NOFILE', soft: 1000, hard: 'unlimited' }, { type: 'CORE', soft: 0, hard: 0 }],
    }));
    expect(out.split('\n').filter(Boolean)).toEqual(['1000', hostHard, '0']);
  });

  it('runs the launcher from a sealed memfd that cannot be written (CVE-2019-5736)', async () => {
    const box = { pid: 0 };
    const running = launch(basePlan(rootfs, ['sleep', '30']), { stdio: ['ignore', 'ignore', 'ignore'], onPid: (p) => { box.pid = p; } });
    try {
      await waitFor(() => box.pid > 0 && alive(box.pid) && readFileSync(`/proc/${box.pid}/comm`, 'utf8').trim() === 'sleep', 'sleep to run');
      const launcher = ppidOf(box.pid);
      expect(readlinkSync(`/proc/${launcher}/exe`)).toMatch(/^\/memfd:tspod-launch/);
      let writeError: NodeJS.ErrnoException | undefined;
      let fd: number | undefined;
      try {
        fd = openSync(`/proc/${launcher}/exe`, 'r+');
        writeSync(fd, 'overwritten');
      } catch (err) {
        writeError = err as NodeJS.ErrnoException;
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
      expect(writeError?.code).toMatch(/^(EPERM|ETXTBSY|EACCES)$/);
      process.kill(box.pid, 'SIGKILL');
      expect((await running).signal).toBe(9);
    } finally {
      if (alive(box.pid)) process.kill(box.pid, 'SIGKILL');
      await running.catch(() => {});
    }
  });
});
