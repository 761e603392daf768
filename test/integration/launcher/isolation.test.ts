// The launcher on a real kernel: namespaces, the container's filesystem, devices, fds.
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { firstReason, gated, haveCommand, isRoot } from '../../support/caps.js';
import { basePlan, hostMountsMentioning, sh, useBusyboxRootfs } from './helpers.js';

const reason = firstReason(isRoot(), haveCommand('busybox'), haveCommand('make'));

describe.skipIf(reason)(gated('launcher: isolation', reason), () => {
  const { dir, rootfs } = useBusyboxRootfs();

  it('runs the command as pid 1 and shows only the container processes', async () => {
    const out = await sh(basePlan(rootfs, ['sh', '-c', 'echo pid=$$; ps -o pid,comm; echo end']));
    expect(out).toMatch(/^pid=1$/m);
    const rows = out.split('\n').filter((l) => /^\s*\d+ /.test(l)).map((l) => l.trim().split(/\s+/));
    expect(rows).toEqual([['1', 'sh'], [expect.stringMatching(/^[2-9]$/), 'ps']]);
  });

  it('gives the container its own hostname', async () => {
    const out = await sh(basePlan(rootfs, ['hostname']));
    expect(out.trim()).toBe('tspod-test');
    expect(hostname()).not.toBe('tspod-test');
  });

  it('has only lo in a new network namespace, down unless loopbackUp', async () => {
    const down = await sh(basePlan(rootfs, ['sh', '-c', 'ls /sys/class/net; cat /sys/class/net/lo/flags']));
    expect(down.split('\n').filter(Boolean)).toEqual(['lo', '0x8']);
    const up = await sh(basePlan(rootfs, ['cat', '/sys/class/net/lo/flags'], { loopbackUp: true }));
    expect(up.trim()).toBe('0x9');
  });

  it('cannot reach host paths after pivot_root', async () => {
    const repo = process.cwd();
    const out = await sh(basePlan(rootfs, ['sh', '-c', `ls /; test -e ${repo} && echo REPO-VISIBLE; test -e ${dir} && echo TMP-VISIBLE; cat /proc/self/mountinfo`]));
    expect(out).not.toContain('REPO-VISIBLE');
    expect(out).not.toContain('TMP-VISIBLE');
    const top = out.split('\n').filter((l) => /^[a-z]+$/.test(l));
    expect(top.sort()).toEqual(['bin', 'dev', 'proc', 'sys', 'tmp']);
    // Every mount point the container sees is its own.
    const points = out.split('\n').filter((l) => /^\d+ \d+ /.test(l)).map((l) => l.split(' ')[4]);
    for (const p of points) expect(p).toMatch(/^\/(dev|proc|sys)?(\/|$)/);
  });

  it('mounts /sys read-only, /proc/sys read-only, and /proc itself writable', async () => {
    const out = await sh(basePlan(rootfs, ['sh', '-c', [
      'grep -E " /sys | /proc/sys " /proc/self/mountinfo',
      'touch /sys/x 2>/dev/null && echo SYS-WRITABLE',
      'echo 1 2>/dev/null > /proc/sys/kernel/ns_last_pid && echo PROCSYS-WRITABLE',
      'echo done',
    ].join('; ')]));
    expect(out).not.toContain('WRITABLE');
    const lines = out.split('\n').filter((l) => /^\d+ /.test(l));
    const sys = lines.find((l) => l.split(' ')[4] === '/sys');
    const procSys = lines.find((l) => l.split(' ')[4] === '/proc/sys');
    expect(sys?.split(' ')[5]).toMatch(/^ro,/);
    expect(procSys?.split(' ')[5]).toMatch(/^ro,/);
    expect(out).toContain('done');
  });

  it('creates /dev with the standard nodes, devpts, ptmx and shm', async () => {
    const out = await sh(basePlan(rootfs, ['sh', '-c', [
      'for n in null zero full random urandom tty; do test -c /dev/$n && echo chr-$n; done',
      'stat -c "%a %t:%T" /dev/null',
      'readlink /dev/ptmx; readlink /dev/fd',
      'grep -E " /dev/(pts|shm|mqueue) " /proc/self/mountinfo | cut -d" " -f5,8',
      'echo hello > /dev/null && head -c 5 /dev/zero | wc -c',
      'echo x > /dev/shm/f && cat /dev/shm/f',
      'echo x 2>/dev/null > /dev/full || echo full-refused',
    ].join('; ')]));
    for (const n of ['null', 'zero', 'full', 'random', 'urandom', 'tty']) expect(out).toContain(`chr-${n}`);
    expect(out).toContain('666 1:3');
    expect(out).toMatch(/^pts\/ptmx$/m);
    expect(out).toMatch(/^\/proc\/self\/fd$/m);
    expect(out).toMatch(/^\/dev\/pts devpts$/m);
    expect(out).toMatch(/^\/dev\/shm tmpfs$/m);
    expect(out).toMatch(/^\/dev\/mqueue mqueue$/m);
    expect(out).toMatch(/^5$/m);
    expect(out).toMatch(/^x$/m);
    expect(out).toContain('full-refused');
  });

  it('hides masked paths', async () => {
    const out = await sh(basePlan(rootfs, ['sh', '-c', 'echo timers=$(wc -c < /proc/timer_list); echo fw=$(ls -A /sys/firmware | wc -l); touch /sys/firmware/x 2>/dev/null && echo FW-WRITABLE; echo ok']));
    expect(out).toMatch(/^timers=0$/m);
    expect(out).toMatch(/^fw=0$/m);
    expect(out).not.toContain('FW-WRITABLE');
  });

  it('passes only fds 0, 1 and 2 to the container', async () => {
    // ls has the directory it lists open: every fd beyond 2 must be that directory.
    const out = await sh(basePlan(rootfs, ['ls', '-l', '/proc/self/fd/']));
    const fds = out.split('\n').filter((l) => l.includes('->')).map((l) => {
      const m = / (\d+) -> (.*)$/.exec(l);
      return { fd: Number(m![1]), target: m![2]! };
    });
    expect(fds.filter((f) => f.fd <= 2).map((f) => f.fd)).toEqual([0, 1, 2]);
    const extra = fds.filter((f) => f.fd > 2);
    expect(extra.length).toBeLessThanOrEqual(1);
    for (const f of extra) expect(f.target).toMatch(/^\/proc\/\d+\/fd$/);
    // The shell's own fds, listed by a child so that the listing's fd is not among them.
    const shOut = await sh(basePlan(rootfs, ['sh', '-c', 'ls /proc/$$/fd; echo end']));
    expect(shOut.split('\n').filter(Boolean)).toEqual(['0', '1', '2', 'end']);
  });

  it('leaves the host mount table unchanged', () => {
    expect(existsSync(rootfs)).toBe(true);
    expect(hostMountsMentioning(dir)).toEqual([]);
  });
});
