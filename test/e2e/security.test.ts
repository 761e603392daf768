// Issue 5, security defaults, end to end: the CLI runs busybox from the real fixture registry and the
// container reports what it can do. A small static program (test/support/sysprobe.c, built here)
// makes the raw system calls busybox cannot show (keyctl, unshare(CLONE_NEWUSER), mount…).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../support/registry.js';
import { useTspodSuite } from '../support/suite.js';
import { processesUnder } from '../support/mycgroups.js';
import { isRoot, haveOverlay } from '../support/caps.js';

const gate = isRoot() ?? haveOverlay();
const REFERENCE = join(repoRoot(), '..', 'shared', 'reference', 'docker-seccomp-default.json');

/** The capability sets of /proc/self/status as a map. */
function status(out: string): Record<string, string> {
  const m: Record<string, string> = {};
  for (const l of out.split('\n')) {
    const r = /^(Cap\w+|NoNewPrivs|Seccomp):\s+(\S+)$/.exec(l);
    if (r) m[r[1]!] = r[2]!;
  }
  return m;
}
const probes = (out: string) => Object.fromEntries(out.trim().split('\n').filter((l) => /^\S+ \S+$/.test(l)).map((l) => l.split(' ') as [string, string]));

describe.skipIf(gate)('security defaults (issue 5)', () => {
  const s = useTspodSuite('security', { pull: ['busybox'] });
  let tmp: string;
  let probe: string;

  beforeAll(() => {
    tmp = mkdtempSync(join(repoRoot(), '.tspod-test', 'sec-'));
    probe = join(tmp, 'sysprobe');
    execFileSync('gcc', ['-static', '-O2', '-o', probe, join(repoRoot(), 'test', 'support', 'sysprobe.c')]);
  });

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const run = (flags: string[], script: string) =>
    s.t.run(['run', '--rm', '--network', 'none', '--cgroup-parent', s.parent, '-v', `${probe}:/sysprobe:ro`, ...flags, 'busybox', 'sh', '-c', script]);
  const STATUS = "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status";
  const BLOCKED = 'keyctl add_key unshare-user clone-newuser mount kexec_load reboot sethostname';

  it("default: Docker's 14 capabilities (0xa80425fb), seccomp filter on, no-new-privs off", async () => {
    const r = await run([], STATUS);
    expect(r.code, r.stderr).toBe(0);
    const s = status(r.stdout);
    expect(s).toMatchObject({ CapInh: '00000000a80425fb', CapPrm: '00000000a80425fb', CapEff: '00000000a80425fb', CapBnd: '00000000a80425fb', CapAmb: '0000000000000000', NoNewPrivs: '0', Seccomp: '2' });
    const nnp = await run(['--security-opt', 'no-new-privileges'], STATUS);
    expect(status(nnp.stdout)).toMatchObject({ NoNewPrivs: '1', Seccomp: '2', CapEff: '00000000a80425fb' });
  });

  it('default: keyctl, add_key, unshare -U, clone(CLONE_NEWUSER), mount, kexec_load, reboot fail with EPERM; fork works', async () => {
    const r = await run([], `/sysprobe ${BLOCKED} fork chroot`);
    expect(r.code, r.stderr).toBe(0);
    const p = probes(r.stdout);
    for (const n of BLOCKED.split(' ')) expect(p[n], n).toBe('EPERM');
    expect(p.fork).toBe('ok');
    expect(p.chroot).toBe('ok'); // CAP_SYS_CHROOT is one of Docker's 14
    // busybox's own applets agree
    const u = await run([], 'unshare -U true; echo unshare=$?; mount -t tmpfs t /tmp; echo mount=$?');
    expect(u.stdout).toContain('unshare=1');
    expect(u.stdout).toMatch(/mount=[1-9]/);
    expect(u.stderr).toMatch(/Operation not permitted/);
  });

  it('default: /proc/sys and /sys are read-only, /proc/kcore and /proc/keys are masked, only fds 0, 1, 2 are open', async () => {
    // mask every path of Docker's list that this kernel has (this one has no /proc/kcore; /proc/keys and /proc/timer_list it has)
    const masked = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug', '/proc/scsi', '/proc/acpi', '/sys/firmware'].filter((p) => existsSync(p));
    expect(masked).toEqual(expect.arrayContaining(['/proc/keys', '/proc/timer_list']));
    const m = await run([], masked.map((p) => `echo ${p} $(awk '$5 == "${p}"' /proc/self/mountinfo | wc -l) $(ls -A ${p} 2>/dev/null | wc -l) $(cat ${p} 2>/dev/null | wc -c)`).join('; '));
    expect(m.code, m.stderr).toBe(0);
    expect(m.stdout.trim().split('\n')).toEqual(masked.map((p) => `${p} 1 ${/^\/(proc\/(scsi|acpi)|sys\/firmware)$/.test(p) ? 0 : 1} 0`));
    const r = await run([], [
      'echo x > /proc/sys/kernel/hostname 2>/dev/null; echo procsys=$?',
      'echo 1 > /proc/sysrq-trigger 2>/dev/null; echo sysrq=$?',
      'touch /sys/kernel/tspod 2>/dev/null; echo sys=$?',
      "awk '$5 == \"/sys\" { print $6 }' /proc/self/mountinfo | cut -d, -f1",
    ].join('; '));
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 3)).toEqual(['procsys=1', 'sysrq=1', 'sys=1']);
    expect(lines[3]).toBe('ro');
    // the container's init (the shell, PID 1; "; true" keeps it from exec'ing ls) holds only 0, 1, 2
    const fds = await run([], 'ls /proc/1/fd; true');
    expect(fds.stdout.trim().split('\n')).toEqual(['0', '1', '2']);
  });

  it('--cap-add SYS_ADMIN adds exactly that capability, and seccomp then allows mount and unshare', async () => {
    const r = await run(['--cap-add', 'SYS_ADMIN'], `${STATUS}; /sysprobe mount unshare-ns keyctl`);
    expect(r.code, r.stderr).toBe(0);
    expect(status(r.stdout)).toMatchObject({ CapEff: '00000000a82425fb', CapBnd: '00000000a82425fb', Seccomp: '2' });
    const p = probes(r.stdout);
    expect(p).toMatchObject({ mount: 'ok', 'unshare-ns': 'ok', keyctl: 'EPERM' });
  });

  it('--cap-drop ALL leaves no capability (chown fails) and keeps seccomp; --cap-drop with --cap-add keeps the added one', async () => {
    const r = await run(['--cap-drop', 'ALL'], `${STATUS}; chown 1 /tmp 2>&1; echo chown=$?; /sysprobe chroot`);
    expect(status(r.stdout)).toMatchObject({ CapInh: '0000000000000000', CapPrm: '0000000000000000', CapEff: '0000000000000000', CapBnd: '0000000000000000', Seccomp: '2' });
    expect(r.stdout).toContain('chown=1');
    expect(probes(r.stdout).chroot).toBe('EPERM');
    const some = await run(['--cap-drop', 'ALL', '--cap-add', 'chown', '--cap-add', 'CAP_KILL'], STATUS);
    expect(status(some.stdout).CapEff).toBe('0000000000000021');
    const dropRaw = await run(['--cap-drop', 'NET_RAW'], STATUS);
    expect(status(dropRaw.stdout).CapEff).toBe('00000000a80405fb');
    const bad = await run(['--cap-add', 'NOPE'], 'true');
    expect(bad.code).toBe(125);
    expect(bad.stderr.trim()).toMatch(/invalid --cap-add "NOPE": unknown capability/);
  });

  it('--privileged: all the capabilities tspod holds, no seccomp, nothing masked, /sys writable, host devices', async () => {
    const hostBnd = /^CapBnd:\s+(\S+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1];
    const r = await run(['--privileged'], `${STATUS}; grep -c " /proc/kcore " /proc/self/mountinfo; awk '$5 == \"/sys\" { print $6 }' /proc/self/mountinfo | cut -d, -f1; test -c /dev/loop-control -o -c /dev/kmsg && echo devices; /sysprobe mount`);
    expect(status(r.stdout)).toMatchObject({ CapEff: hostBnd, CapBnd: hostBnd, Seccomp: '0' });
    const lines = r.stdout.trim().split('\n').filter((l) => !/^(Cap|NoNew|Seccomp)/.test(l));
    expect(lines).toEqual(['0', 'rw', 'devices', 'mount ok']);
  });

  it('seccomp=unconfined removes only the filter: keyctl works, mount still needs the capability', async () => {
    const r = await run(['--security-opt', 'seccomp=unconfined'], `${STATUS}; /sysprobe keyctl mount unshare-user`);
    expect(status(r.stdout)).toMatchObject({ Seccomp: '0', CapEff: '00000000a80425fb' });
    const p = probes(r.stdout);
    expect(p.keyctl).toBe('ok');
    expect(p.mount).toBe('EPERM'); // no CAP_SYS_ADMIN
  });

  it("seccomp=PROFILE.json loads Docker's own default profile and a custom profile with its errno", async () => {
    const docker = await run(['--security-opt', `seccomp=${REFERENCE}`], `${STATUS}; /sysprobe keyctl unshare-user fork`);
    expect(status(docker.stdout).Seccomp).toBe('2');
    expect(probes(docker.stdout)).toMatchObject({ keyctl: 'EPERM', 'unshare-user': 'EPERM', fork: 'ok' });
    const custom = join(tmp, 'no-mkdir.json');
    writeFileSync(custom, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] }));
    const c = await run(['--security-opt', `seccomp=${custom}`], 'mkdir /tmp/x 2>&1; echo mkdir=$?; /sysprobe keyctl');
    expect(c.stdout).toMatch(/Permission denied/);
    expect(c.stdout).toContain('mkdir=1');
    expect(probes(c.stdout).keyctl).toBe('ok');
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, '{"defaultAction": "SCMP_ACT_SOMETIMES"}');
    const b = await run(['--security-opt', `seccomp=${bad}`], 'true');
    expect(b.code).toBe(125);
    expect(b.stderr.trim()).toBe(`tspod: seccomp profile ${bad}: defaultAction: unknown action "SCMP_ACT_SOMETIMES"`.replace(/^tspod: /, b.stderr.startsWith('tspod: ') ? 'tspod: ' : ''));
  });

  it('rlimits: the default NOFILE is clamped to the caller\'s hard limit instead of failing; --ulimit sets soft and hard', async () => {
    const hard = execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
    const d = await run([], 'ulimit -n; ulimit -Hn');
    expect(d.code, d.stderr).toBe(0);
    const [soft, h] = d.stdout.trim().split('\n');
    expect(h).toBe(String(Math.min(Number(hard), 1048576)));
    expect(soft).toBe(h);
    const u = await run(['--ulimit', 'nofile=1024:2048', '--ulimit', 'nproc=99999999'], 'ulimit -n; ulimit -Hn');
    expect(u.code, u.stderr).toBe(0);
    expect(u.stdout).toBe('1024\n2048\n');
  });

  it('the container cannot reach the launcher binary through /proc (CVE-2019-5736): it is a sealed memfd outside the pid namespace', async () => {
    const sleeper = s.t.run(['run', '--rm', '--network', 'none', '--cgroup-parent', s.parent, 'busybox', 'sh', '-c', 'ls -l /proc/[0-9]*/exe 2>/dev/null | grep -c tspod; sleep 8']);
    let init: number | undefined;
    for (let i = 0; i < 300 && init === undefined; i++) {
      await new Promise((r) => setTimeout(r, 50));
      init = processesUnder(s.parent).find((p) => readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'sleep');
    }
    expect(init).toBeDefined();
    // the container's init's parent (in the host's view) is the launcher
    let pid = init!;
    for (let i = 0; i < 3; i++) {
      const ppid = Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
      if (readFileSync(`/proc/${ppid}/comm`, 'utf8').trim() === 'tspod-launch') { pid = ppid; break; }
      pid = ppid;
    }
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('tspod-launch');
    expect(readlinkSync(`/proc/${pid}/exe`)).toMatch(/^\/memfd:/);
    expect(() => openSync(`/proc/${pid}/exe`, 'r+')).toThrow(/EPERM|ETXTBSY|EACCES/);
    const r = await sleeper;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('0');
  });
});
