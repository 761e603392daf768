// The seccomp compiler on its own: compile a profile, then run the BPF program in a small classic-BPF
// interpreter written here, for every syscall of every covered architecture and many argument values,
// and compare each decision with what Docker's own default profile (../shared/reference) decides,
// evaluated independently from its JSON by the rules Docker and libseccomp apply.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileProfile, encodeProgram, AUDIT_ARCH, RET, type SockFilter } from '../../../src/runtime/seccomp/compile.js';
import { DEFAULT_SECCOMP_PROFILE } from '../../../src/runtime/seccomp/default.js';
import { parseProfile, syscallTable, type SeccompArch, type SeccompProfile } from '../../../src/runtime/seccomp/profile.js';
import { loadProfile } from '../../../src/runtime/seccomp/index.js';

const REFERENCE = join(import.meta.dirname, '../../../../shared/reference/docker-seccomp-default.json');
const haveReference = existsSync(REFERENCE);

// ---- a classic BPF interpreter for seccomp programs ----
interface Call { arch: number; nr: number; args: bigint[] }
function run(prog: SockFilter[], call: Call): { ret: number; steps: number } {
  const data = Buffer.alloc(64);
  data.writeUInt32LE(call.nr >>> 0, 0);
  data.writeUInt32LE(call.arch >>> 0, 4);
  call.args.forEach((a, i) => data.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i));
  let A = 0;
  let pc = 0;
  let steps = 0;
  for (;;) {
    const ins = prog[pc];
    if (!ins) throw new Error(`pc ${pc} fell off the program`);
    steps++;
    const cls = ins.code & 0x07;
    if (ins.code === 0x20) { if (ins.k % 4 || ins.k > 60) throw new Error(`bad load ${ins.k}`); A = data.readUInt32LE(ins.k); pc++; }
    else if (ins.code === 0x54) { A = (A & ins.k) >>> 0; pc++; }
    else if (ins.code === 0x06) return { ret: ins.k >>> 0, steps };
    else if (ins.code === 0x05) pc += 1 + ins.k;
    else if (cls === 0x05) {
      const op = ins.code & 0xf0;
      const k = ins.k >>> 0;
      const t = op === 0x10 ? A === k : op === 0x20 ? A > k : op === 0x30 ? A >= k : op === 0x40 ? (A & k) !== 0 : (() => { throw new Error(`bad jump ${ins.code}`); })();
      if ((ins.code & 0x08) !== 0) throw new Error('X-register jumps are not expected');
      pc += 1 + (t ? ins.jt : ins.jf);
    } else throw new Error(`unexpected opcode 0x${ins.code.toString(16)}`);
  }
}

// ---- Docker's decision, evaluated straight from the profile JSON ----
type Json = { defaultAction: string; defaultErrnoRet?: number; syscalls: { names: string[]; action: string; errnoRet?: number; args?: { index: number; value: number; valueTwo?: number; op: string }[] | null; includes?: Record<string, unknown>; excludes?: Record<string, unknown> }[] };
function retOf(action: string, errno?: number): number {
  if (action === 'SCMP_ACT_ALLOW') return 0x7fff0000;
  if (action === 'SCMP_ACT_ERRNO') return (0x00050000 | (errno ?? 1)) >>> 0;
  throw new Error(action);
}
function verAtLeast(a: string, b: string) {
  const p = (s: string) => s.split(/[.-]/).slice(0, 3).map(Number);
  const [x, y] = [p(a), p(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  return true;
}
function dockerDecision(p: Json, goArch: string, caps: string[], kernel: string, name: string, args: bigint[], argBits: 32 | 64): number {
  const applies = p.syscalls.filter((r) => {
    const inc = (r.includes ?? {}) as { arches?: string[]; caps?: string[]; minKernel?: string };
    const exc = (r.excludes ?? {}) as { arches?: string[]; caps?: string[]; minKernel?: string };
    if (exc.arches?.includes(goArch)) return false;
    if (exc.caps?.some((c) => caps.includes(c))) return false;
    if (exc.minKernel && verAtLeast(kernel, exc.minKernel)) return false;
    if (inc.arches && inc.arches.length && !inc.arches.includes(goArch)) return false;
    if (inc.caps && !inc.caps.every((c) => caps.includes(c))) return false;
    if (inc.minKernel && !verAtLeast(kernel, inc.minKernel)) return false;
    return r.names.includes(name);
  });
  const plain = applies.find((r) => !r.args?.length);
  if (plain) return retOf(plain.action, plain.errnoRet);
  for (const r of applies) {
    const ok = r.args!.every((c) => {
      const a = BigInt.asUintN(argBits, args[c.index]!);
      const v = BigInt(c.value);
      switch (c.op) {
        case 'SCMP_CMP_EQ': return a === v;
        case 'SCMP_CMP_NE': return a !== v;
        case 'SCMP_CMP_LT': return a < v;
        case 'SCMP_CMP_LE': return a <= v;
        case 'SCMP_CMP_GT': return a > v;
        case 'SCMP_CMP_GE': return a >= v;
        case 'SCMP_CMP_MASKED_EQ': return (a & v) === BigInt(c.valueTwo ?? 0);
        default: throw new Error(c.op);
      }
    });
    if (ok) return retOf(r.action, r.errnoRet);
  }
  return retOf(p.defaultAction, p.defaultErrnoRet);
}

const DOCKER_CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'];
const ALL_CAPS = [...DOCKER_CAPS, 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_MODULE', 'CAP_SYS_PACCT', 'CAP_SYS_PTRACE', 'CAP_SYS_RAWIO',
  'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_SYS_NICE', 'CAP_SYSLOG', 'CAP_BPF', 'CAP_PERFMON', 'CAP_DAC_READ_SEARCH'];
const CAP_SETS: Record<string, string[]> = { docker: DOCKER_CAPS, 'docker+SYS_ADMIN': [...DOCKER_CAPS, 'CAP_SYS_ADMIN'], all: ALL_CAPS, none: [] };

/** Argument vectors: zeros, then every constant the profile compares with, its neighbours, high bits and masks, in each position. */
function argSamples(p: Json): bigint[][] {
  const consts = new Set<bigint>([0n, 1n, 17n, 0x10000000n, 0x20000n, 0x7e020000n, 0x7e020011n, 0xffffffffn, 0x1_0000_0000n, 0xffff_ffff_ffff_ffffn, 0x1_0000_0026n]);
  for (const r of p.syscalls) for (const a of r.args ?? []) for (const d of [-1n, 0n, 1n]) { const v = BigInt(a.value) + d; if (v >= 0n) { consts.add(v); consts.add(v | (1n << 32n)); } }
  const out: bigint[][] = [[0n, 0n, 0n, 0n, 0n, 0n]];
  for (const c of consts) for (let i = 0; i < 2; i++) { const a = [0n, 0n, 0n, 0n, 0n, 0n]; a[i] = c; out.push(a); }
  return out;
}

const ARCH_CASES: { native: SeccompArch; go: string; arches: { arch: SeccompArch; bits: 32 | 64 }[] }[] = [
  { native: 'SCMP_ARCH_X86_64', go: 'amd64', arches: [{ arch: 'SCMP_ARCH_X86_64', bits: 64 }, { arch: 'SCMP_ARCH_X86', bits: 32 }, { arch: 'SCMP_ARCH_X32', bits: 64 }] },
  { native: 'SCMP_ARCH_AARCH64', go: 'arm64', arches: [{ arch: 'SCMP_ARCH_AARCH64', bits: 64 }] },
];
const KERNEL = '6.1.0';

describe.skipIf(!haveReference)('seccomp compiler against Docker\'s default profile', () => {
  const refJson = haveReference ? JSON.parse(readFileSync(REFERENCE, 'utf8')) as Json : undefined!;
  const profiles: Record<string, SeccompProfile> = haveReference
    ? { 'docker default.json': parseProfile(refJson, REFERENCE), 'tspod default': DEFAULT_SECCOMP_PROFILE } : {};
  const samples = haveReference ? argSamples(refJson) : [];

  for (const [pname, profile] of Object.entries(profiles)) {
    for (const ac of ARCH_CASES) {
      for (const [cname, caps] of Object.entries(CAP_SETS)) {
        it(`${pname}, ${ac.go}, caps ${cname}: every syscall and argument sample decides as Docker does, in logarithmic depth`, () => {
          const prog = compileProfile(profile, { arch: ac.native, caps, kernel: KERNEL });
          expect(prog.length).toBeLessThan(4096);
          let maxSteps = 0;
          let checked = 0;
          for (const { arch, bits } of ac.arches) {
            const table = syscallTable(arch);
            for (const [name, nr] of table) {
              const withArgs = refJson.syscalls.some((r) => r.names.includes(name) && r.args?.length);
              for (const args of withArgs ? samples : samples.slice(0, 1)) {
                const got = run(prog, { arch: AUDIT_ARCH[arch], nr, args });
                const want = dockerDecision(refJson, ac.go, caps, KERNEL, name, args, bits);
                if (got.ret !== want) throw new Error(`${arch} ${name}(${args.map((a) => '0x' + a.toString(16)).join(', ')}): got 0x${got.ret.toString(16)}, want 0x${want.toString(16)}`);
                maxSteps = Math.max(maxSteps, got.steps);
                checked++;
              }
            }
          }
          expect(checked).toBeGreaterThan(300);
          // ~400 syscalls: a linear scan would take hundreds of steps; the tree needs a few dozen at most
          expect(maxSteps).toBeLessThanOrEqual(40);
        });
      }
    }
  }

  it('blocks the calls the issue names and allows the everyday ones (x86_64, Docker\'s capabilities)', () => {
    const prog = compileProfile(DEFAULT_SECCOMP_PROFILE, { arch: 'SCMP_ARCH_X86_64', caps: DOCKER_CAPS, kernel: KERNEL });
    const t = syscallTable('SCMP_ARCH_X86_64');
    const call = (name: string, ...args: bigint[]) => run(prog, { arch: AUDIT_ARCH.SCMP_ARCH_X86_64, nr: t.get(name)!, args: [...args, 0n, 0n, 0n, 0n, 0n, 0n].slice(0, 6) }).ret;
    const EPERM = RET.ERRNO | 1;
    for (const n of ['keyctl', 'add_key', 'request_key', 'kexec_load', 'mount', 'umount2', 'reboot', 'unshare', 'setns', 'pivot_root', 'init_module', 'swapon', 'ptrace'.replace('ptrace', 'acct')]) expect(call(n), n).toBe(EPERM);
    for (const n of ['read', 'write', 'openat', 'execve', 'mmap', 'exit_group', 'wait4', 'getpid', 'ptrace']) expect(call(n), n).toBe(RET.ALLOW);
    expect(call('clone', 17n)).toBe(RET.ALLOW); // fork: SIGCHLD
    expect(call('clone', 0x10000000n | 17n)).toBe(EPERM); // CLONE_NEWUSER
    expect(call('clone3')).toBe(RET.ERRNO | 38); // ENOSYS, so libcs fall back to clone
    expect(call('socket', 2n)).toBe(RET.ALLOW); // AF_INET
    expect(call('socket', 40n)).toBe(EPERM); // AF_VSOCK
    expect(call('personality', 0xffffffffn)).toBe(RET.ALLOW);
    expect(call('personality', 0x0040000n)).toBe(EPERM); // ADDR_NO_RANDOMIZE
    // an architecture outside the profile is killed; an x32 call goes through the x32 table
    expect(run(prog, { arch: 0xc00000b7, nr: 0, args: [0n, 0n, 0n, 0n, 0n, 0n] }).ret).toBe(RET.KILL_PROCESS);
    expect(run(prog, { arch: AUDIT_ARCH.SCMP_ARCH_X86_64, nr: syscallTable('SCMP_ARCH_X32').get('keyctl')!, args: [0n, 0n, 0n, 0n, 0n, 0n] }).ret).toBe(EPERM);
    expect(run(prog, { arch: AUDIT_ARCH.SCMP_ARCH_X86_64, nr: syscallTable('SCMP_ARCH_X32').get('read')!, args: [0n, 0n, 0n, 0n, 0n, 0n] }).ret).toBe(RET.ALLOW);
    expect(run(prog, { arch: AUDIT_ARCH.SCMP_ARCH_X86, nr: syscallTable('SCMP_ARCH_X86').get('keyctl')!, args: [0n, 0n, 0n, 0n, 0n, 0n] }).ret).toBe(EPERM);
    // syscalls newer than every one the compiler knows answer ENOSYS (as runc), so that libcs fall back
    const newest = Math.max(...syscallTable('SCMP_ARCH_X86_64').values());
    expect(call('fchmodat2')).toBe(RET.ALLOW);
    expect(run(prog, { arch: AUDIT_ARCH.SCMP_ARCH_X86_64, nr: newest + 1, args: [0n, 0n, 0n, 0n, 0n, 0n] }).ret).toBe(RET.ERRNO | 38);
    expect(run(prog, { arch: AUDIT_ARCH.SCMP_ARCH_X86_64, nr: 100000, args: [0n, 0n, 0n, 0n, 0n, 0n] }).ret).toBe(RET.ERRNO | 38);
    expect(run(prog, { arch: AUDIT_ARCH.SCMP_ARCH_X86, nr: 0xffffffff, args: [0n, 0n, 0n, 0n, 0n, 0n] }).ret).toBe(RET.ERRNO | 38);
    // but a known syscall the profile leaves out is the profile's EPERM, also between known numbers
    expect(call('kexec_file_load')).toBe(EPERM);
    const allowAll = compileProfile({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['keyctl'], action: 'SCMP_ACT_ERRNO' }] }, { arch: 'SCMP_ARCH_X86_64', caps: [], kernel: KERNEL });
    expect(run(allowAll, { arch: AUDIT_ARCH.SCMP_ARCH_X86_64, nr: newest + 1, args: [0n, 0n, 0n, 0n, 0n, 0n] }).ret).toBe(RET.ALLOW);
  });
});

describe('seccomp compiler on its own', () => {
  it('compares 64-bit arguments unsigned for every operator, high and low words', () => {
    const ops = ['SCMP_CMP_EQ', 'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_GT', 'SCMP_CMP_GE'] as const;
    const values = [0n, 1n, 0xffffffffn, 0x1_0000_0000n, 0x1_0000_0001n, 0x2_0000_0000n, 0x7fff_ffff_ffff_0000n];
    for (const op of ops) {
      for (const v of values) {
        const prof: SeccompProfile = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['write'], action: 'SCMP_ACT_ALLOW', args: [{ index: 2, value: Number(v), op }] }] };
        const prog = compileProfile(prof, { arch: 'SCMP_ARCH_X86_64', caps: [], kernel: KERNEL });
        for (const a of values) {
          const want = op === 'SCMP_CMP_EQ' ? a === v : op === 'SCMP_CMP_NE' ? a !== v : op === 'SCMP_CMP_LT' ? a < v : op === 'SCMP_CMP_LE' ? a <= v : op === 'SCMP_CMP_GT' ? a > v : a >= v;
          const got = run(prog, { arch: AUDIT_ARCH.SCMP_ARCH_X86_64, nr: 1, args: [0n, 0n, a, 0n, 0n, 0n] }).ret;
          expect(got, `${op} ${a} vs ${v}`).toBe(want ? RET.ALLOW : RET.ERRNO | 1);
        }
      }
    }
    const masked: SeccompProfile = { defaultAction: 'SCMP_ACT_KILL_PROCESS', syscalls: [{ names: ['ioctl'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 0x1_0000_00ff, valueTwo: 0x1_0000_0012, op: 'SCMP_CMP_MASKED_EQ' }] }] };
    const mp = compileProfile(masked, { arch: 'SCMP_ARCH_X86_64', caps: [], kernel: KERNEL });
    expect(run(mp, { arch: AUDIT_ARCH.SCMP_ARCH_X86_64, nr: 16, args: [0n, 0x3_0000_ab12n, 0n, 0n, 0n, 0n] }).ret).toBe(RET.ALLOW);
    expect(run(mp, { arch: AUDIT_ARCH.SCMP_ARCH_X86_64, nr: 16, args: [0n, 0x2_0000_ab12n, 0n, 0n, 0n, 0n] }).ret).toBe(RET.KILL_PROCESS);
    expect(run(mp, { arch: AUDIT_ARCH.SCMP_ARCH_X86_64, nr: 16, args: [0n, 0x1_0000_ab13n, 0n, 0n, 0n, 0n] }).ret).toBe(RET.KILL_PROCESS);
  });

  it('keeps far jumps correct in a large allow-by-default profile with many argument rules', () => {
    const t = syscallTable('SCMP_ARCH_X86_64');
    const names = [...t.keys()].slice(0, 250);
    const prof: SeccompProfile = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: names.map((n, i) => ({ names: [n], action: 'SCMP_ACT_ERRNO' as const, errnoRet: 1 + (i % 100), args: [{ index: 0, value: i, op: 'SCMP_CMP_EQ' as const }, { index: 1, value: i, op: 'SCMP_CMP_GE' as const }] })) };
    const prog = compileProfile(prof, { arch: 'SCMP_ARCH_X86_64', caps: [], kernel: KERNEL });
    names.forEach((n, i) => {
      expect(run(prog, { arch: AUDIT_ARCH.SCMP_ARCH_X86_64, nr: t.get(n)!, args: [BigInt(i), BigInt(i), 0n, 0n, 0n, 0n] }).ret).toBe(RET.ERRNO | (1 + (i % 100)));
      expect(run(prog, { arch: AUDIT_ARCH.SCMP_ARCH_X86_64, nr: t.get(n)!, args: [BigInt(i), BigInt(i) - 1n, 0n, 0n, 0n, 0n] }).ret).toBe(i === 0 ? RET.ERRNO | 1 : RET.ALLOW);
    });
    expect(encodeProgram(prog).length).toBe(prog.length * 8);
  });

  it('rejects a bad profile with one line naming the file and the field', async () => {
    expect(() => parseProfile({ defaultAction: 'SCMP_ACT_NOPE' }, '/p.json')).toThrow('seccomp profile /p.json: defaultAction: unknown action "SCMP_ACT_NOPE"');
    expect(() => parseProfile({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, value: 1, op: 'SCMP_CMP_EQ' }] }] }, '/p.json'))
      .toThrow('seccomp profile /p.json: syscalls[0].args[0].index: want 0 to 5');
    expect(() => parseProfile({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_NOTIFY' }] }, '/p.json')).toThrow(/SCMP_ACT_NOTIFY is not supported/);
    await expect(loadProfile('/nonexistent/profile.json')).rejects.toThrow(/^read seccomp profile \/nonexistent\/profile.json: /);
    expect(await loadProfile('unconfined')).toBeUndefined();
    expect(await loadProfile(undefined)).toBe(DEFAULT_SECCOMP_PROFILE);
  });
});
