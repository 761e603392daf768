/**
 * Docker seccomp profile → classic BPF program (struct sock_filter[], as the launcher installs it).
 *
 * Shape of the program (every syscall of the container runs through it, so it must be short on
 * every path):
 *
 *   ld arch                        ; seccomp_data.arch
 *   jeq AUDIT_ARCH_<native>; ja N  ; one test per covered architecture
 *   jeq AUDIT_ARCH_<sub>; ja S
 *   ret KILL_PROCESS               ; an architecture the profile does not cover (libseccomp's "bad arch")
 *   N: ld nr
 *      [x86_64: jge 0x40000000 → X32 (or → KILL without x32): x32 calls share AUDIT_ARCH_X86_64]
 *      <binary search over the syscall number>
 *
 * The binary search runs over intervals of syscall numbers with one outcome each (runs of
 * allowed numbers collapse into one interval), so its depth is ⌈log2(intervals)⌉ comparisons,
 * as libseccomp's binary-tree mode; a leaf is a `ret` or, for a syscall with argument filters,
 * a short block that tests the arguments rule by rule and returns the first match's action.
 *
 * Semantics (libseccomp's, as Docker uses them): an unconditional rule for a syscall wins over
 * conditional ones; conditional rules are tried in profile order; the conditions of one rule are
 * ANDed; comparisons are unsigned 64-bit (32-bit on i386, whose arguments are 32 bits); MASKED_EQ
 * is (arg & value) == valueTwo; names unknown on an architecture are skipped there.
 */
import { fail } from '../../util/errors.js';
import {
  applicableRules, programArches, syscallTable,
  type CompileContext, type SeccompAction, type SeccompArch, type SeccompArg, type SeccompProfile,
} from './profile.js';

export const AUDIT_ARCH: Record<SeccompArch, number> = {
  SCMP_ARCH_X86_64: 0xc000003e, SCMP_ARCH_X86: 0x40000003, SCMP_ARCH_X32: 0xc000003e, SCMP_ARCH_AARCH64: 0xc00000b7,
};
export const X32_SYSCALL_BIT = 0x40000000;

export const RET = {
  KILL_PROCESS: 0x80000000, KILL_THREAD: 0, TRAP: 0x00030000, ERRNO: 0x00050000, TRACE: 0x7ff00000, LOG: 0x7ffc0000, ALLOW: 0x7fff0000,
} as const;

const EPERM = 1;
const ENOSYS = 38;

/** One past the highest syscall number known on an architecture (x32: within its own range). */
function newerThanKnown(arch: SeccompArch): number {
  return Math.max(...syscallTable(arch).values()) + 1;
}

// classic BPF opcodes
export const BPF = {
  LD_W_ABS: 0x20, JEQ: 0x15, JGT: 0x25, JGE: 0x35, JA: 0x05, RET_K: 0x06, AND_K: 0x54,
} as const;

/** The seccomp return value of an action. */
export function actionValue(action: SeccompAction, errnoRet: number | undefined): number {
  switch (action) {
    case 'SCMP_ACT_ALLOW': return RET.ALLOW;
    case 'SCMP_ACT_ERRNO': return (RET.ERRNO | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
    case 'SCMP_ACT_KILL': case 'SCMP_ACT_KILL_THREAD': return RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS': return RET.KILL_PROCESS;
    case 'SCMP_ACT_TRAP': return RET.TRAP;
    case 'SCMP_ACT_TRACE': return (RET.TRACE | ((errnoRet ?? 0) & 0xffff)) >>> 0;
    case 'SCMP_ACT_LOG': return RET.LOG;
  }
}

export interface SockFilter { code: number; jt: number; jf: number; k: number }

// ---- a tiny assembler: instructions whose jump targets are labels, resolved at the end ----
type Target = number | string;
type Item = { code: number; k: number | string; jt?: Target; jf?: Target } | { label: string };
let labelSeq = 0;
const newLabel = (p: string) => `${p}${labelSeq++}`;
const ld = (off: number): Item => ({ code: BPF.LD_W_ABS, k: off });
const ret = (v: number): Item => ({ code: BPF.RET_K, k: v >>> 0 });
const jmp = (code: number, k: number, jt: Target, jf: Target): Item => ({ code, k: k >>> 0, jt, jf });
const ja = (label: string): Item => ({ code: BPF.JA, k: label });
const label = (name: string): Item => ({ label: name });
const size = (items: Item[]) => items.reduce((n, i) => n + ('label' in i ? 0 : 1), 0);

function assemble(items: Item[]): SockFilter[] {
  const pos = new Map<string, number>();
  let n = 0;
  for (const it of items) if ('label' in it) pos.set(it.label, n); else n++;
  const out: SockFilter[] = [];
  const rel = (t: Target | undefined, at: number, long: boolean) => {
    if (t === undefined) return 0;
    const off = typeof t === 'number' ? t : pos.get(t)! - at - 1;
    if (typeof t === 'string' && !pos.has(t)) throw fail('EINTERNAL', `seccomp compiler: undefined label ${t}`);
    if (off < 0 || (!long && off > 255)) throw fail('EINTERNAL', `seccomp compiler: jump of ${off} out of range`);
    return off;
  };
  for (const it of items) {
    if ('label' in it) continue;
    const at = out.length;
    if (it.code === BPF.JA) out.push({ code: it.code, jt: 0, jf: 0, k: rel(it.k as Target, at, true) });
    else out.push({ code: it.code, jt: rel(it.jt, at, false), jf: rel(it.jf, at, false), k: it.k as number });
  }
  if (out.length > 4096) throw fail('EUNSUPPORTED', `seccomp profile: the compiled program has ${out.length} instructions, more than the kernel's 4096`);
  return out;
}

// ---- argument conditions ----
/** Code that falls through when the condition holds and jumps to `miss` otherwise. */
function condition(a: SeccompArg, miss: string, wide: boolean): Item[] {
  const lo = 16 + 8 * a.index;
  const hi = lo + 4;
  const v = BigInt(a.value);
  const vlo = Number(v & 0xffffffffn);
  const vhi = Number(v >> 32n);
  const two = BigInt(a.valueTwo ?? 0);
  const hit = newLabel('hit');
  switch (a.op) {
    case 'SCMP_CMP_EQ':
      return wide ? [ld(hi), jmp(BPF.JEQ, vhi, 0, miss), ld(lo), jmp(BPF.JEQ, vlo, 0, miss)] : [ld(lo), jmp(BPF.JEQ, vlo, 0, miss)];
    case 'SCMP_CMP_NE':
      return wide ? [ld(hi), jmp(BPF.JEQ, vhi, 0, hit), ld(lo), jmp(BPF.JEQ, vlo, miss, 0), label(hit)] : [ld(lo), jmp(BPF.JEQ, vlo, miss, 0)];
    case 'SCMP_CMP_GT':
    case 'SCMP_CMP_GE': {
      const low = a.op === 'SCMP_CMP_GT' ? BPF.JGT : BPF.JGE;
      return wide
        ? [ld(hi), jmp(BPF.JGT, vhi, hit, 0), jmp(BPF.JEQ, vhi, 0, miss), ld(lo), jmp(low, vlo, 0, miss), label(hit)]
        : [ld(lo), jmp(low, vlo, 0, miss)];
    }
    case 'SCMP_CMP_LT':
    case 'SCMP_CMP_LE': {
      // LT = not GE, LE = not GT on the low word
      const low = a.op === 'SCMP_CMP_LT' ? BPF.JGE : BPF.JGT;
      return wide
        ? [ld(hi), jmp(BPF.JGT, vhi, miss, 0), jmp(BPF.JEQ, vhi, 0, hit), ld(lo), jmp(low, vlo, miss, 0), label(hit)]
        : [ld(lo), jmp(low, vlo, miss, 0)];
    }
    case 'SCMP_CMP_MASKED_EQ': {
      const twolo = Number(two & 0xffffffffn);
      const twohi = Number(two >> 32n);
      const and = (m: number): Item => ({ code: BPF.AND_K, k: m >>> 0 });
      const low = [ld(lo), and(vlo), jmp(BPF.JEQ, twolo, 0, miss)];
      return wide ? [ld(hi), and(vhi), jmp(BPF.JEQ, twohi, 0, miss), ...low] : low;
    }
  }
}

interface ResolvedRule { action: number; args: SeccompArg[] }

/** Per syscall number: the rules that apply to it on one architecture. */
function rulesByNumber(profile: SeccompProfile, ctx: CompileContext, arch: SeccompArch): Map<number, ResolvedRule[]> {
  const table = syscallTable(arch);
  const map = new Map<number, ResolvedRule[]>();
  for (const r of applicableRules(profile, ctx)) {
    const names = r.names ?? (r.name ? [r.name] : []);
    for (const name of names) {
      const nr = table.get(name);
      if (nr === undefined) continue;
      const list = map.get(nr) ?? [];
      list.push({ action: actionValue(r.action, r.errnoRet ?? undefined), args: r.args ?? [] });
      map.set(nr, list);
    }
  }
  return map;
}

/** The leaf for one syscall: its unconditional action, or its argument tests. */
function leaf(rules: ResolvedRule[] | undefined, dflt: number, wide: boolean): Item[] {
  if (!rules) return [ret(dflt)];
  const plain = rules.find((r) => r.args.length === 0);
  if (plain) return [ret(plain.action)];
  const out: Item[] = [];
  for (const r of rules) {
    const next = newLabel('next');
    for (const a of r.args) out.push(...condition(a, next, wide));
    out.push(ret(r.action), label(next));
  }
  out.push(ret(dflt));
  return out;
}

/**
 * Binary search over [start, end) intervals with one outcome each. A node is `jge mid` with the
 * left half right after it; when the left half is longer than a conditional jump reaches (255),
 * the node becomes `jge mid, +0, +1; ja right`.
 */
function tree(intervals: { start: number; code: Item[] }[]): Item[] {
  if (intervals.length === 1) return intervals[0]!.code;
  const mid = intervals.length >> 1;
  const left = tree(intervals.slice(0, mid));
  const right = tree(intervals.slice(mid));
  const r = newLabel('right');
  const node = size(left) <= 255
    ? [jmp(BPF.JGE, intervals[mid]!.start, r, 0)]
    : [jmp(BPF.JGE, intervals[mid]!.start, 0, 1), ja(r)];
  return [...node, ...left, label(r), ...right];
}

/**
 * The dispatch for one architecture over the numbers [lo, hi); A holds the syscall number. Numbers
 * from `newerFrom` on (beyond every syscall this compiler knows for the architecture) answer
 * ENOSYS when the default is not ALLOW, as runc does, so that a libc falls back from a system call
 * newer than the profile instead of failing with the profile's EPERM.
 */
function dispatch(map: Map<number, ResolvedRule[]>, dflt: number, wide: boolean, lo: number, hi: number, newerFrom = hi): Item[] {
  const nrs = [...map.keys()].filter((n) => n >= lo && n < hi).sort((a, b) => a - b);
  // Intervals: each syscall with rules is its own interval, the gaps between go to the default,
  // and neighbours with the same plain outcome merge (a run of allowed syscalls is one interval).
  const out: { start: number; key: string; code: Item[] }[] = [];
  const push = (start: number, key: string, code: () => Item[]) => {
    const last = out[out.length - 1];
    if (last && last.key === key) return;
    out.push({ start, key, code: code() });
  };
  let cursor = lo;
  for (const nr of nrs) {
    if (nr > cursor) push(cursor, `ret:${dflt}`, () => [ret(dflt)]);
    const rules = map.get(nr)!;
    const plain = rules.find((r) => r.args.length === 0);
    if (plain) push(nr, `ret:${plain.action}`, () => [ret(plain.action)]);
    else push(nr, `nr:${nr}`, () => leaf(rules, dflt, wide));
    cursor = nr + 1;
  }
  const enosys = (RET.ERRNO | ENOSYS) >>> 0;
  const tail = dflt === RET.ALLOW ? hi : Math.max(cursor, Math.min(newerFrom, hi));
  if (cursor < tail) push(cursor, `ret:${dflt}`, () => [ret(dflt)]);
  if (tail < hi) push(tail, `ret:${enosys}`, () => [ret(enosys)]);
  if (out.length === 0) return [ret(dflt)];
  return tree(out);
}

/** Compiles a profile for one container into a BPF program. */
export function compileProfile(profile: SeccompProfile, ctx: CompileContext): SockFilter[] {
  const dflt = actionValue(profile.defaultAction, profile.defaultErrnoRet);
  const arches = programArches(profile, ctx.arch);
  const items: Item[] = [ld(4)];
  const entry = new Map<number, string>();
  for (const a of arches) {
    if (a === 'SCMP_ARCH_X32') continue; // shares AUDIT_ARCH_X86_64: reached from the x86_64 section
    const l = newLabel(a);
    entry.set(AUDIT_ARCH[a], l);
    items.push(jmp(BPF.JEQ, AUDIT_ARCH[a], 0, 1), ja(l));
  }
  items.push(ret(RET.KILL_PROCESS));
  for (const a of arches) {
    if (a === 'SCMP_ARCH_X32') continue;
    items.push(label(entry.get(AUDIT_ARCH[a])!), ld(0));
    const map = rulesByNumber(profile, ctx, a);
    if (a === 'SCMP_ARCH_X86_64') {
      const x32 = newLabel('x32');
      const hasX32 = arches.includes('SCMP_ARCH_X32');
      items.push(jmp(BPF.JGE, X32_SYSCALL_BIT, 0, 1), ja(x32));
      items.push(...dispatch(map, dflt, true, 0, X32_SYSCALL_BIT, newerThanKnown(a)));
      items.push(label(x32));
      items.push(...(hasX32 ? dispatch(rulesByNumber(profile, ctx, 'SCMP_ARCH_X32'), dflt, true, X32_SYSCALL_BIT, 2 ** 32, newerThanKnown('SCMP_ARCH_X32')) : [ret(RET.KILL_PROCESS)]));
    } else {
      items.push(...dispatch(map, dflt, a !== 'SCMP_ARCH_X86', 0, 2 ** 32, newerThanKnown(a)));
    }
  }
  return assemble(items);
}

/** The program as the launcher reads it: 8 bytes per instruction, little endian. */
export function encodeProgram(prog: SockFilter[]): Buffer {
  const buf = Buffer.alloc(prog.length * 8);
  prog.forEach((f, i) => {
    buf.writeUInt16LE(f.code, 8 * i);
    buf.writeUInt8(f.jt, 8 * i + 2);
    buf.writeUInt8(f.jf, 8 * i + 3);
    buf.writeUInt32LE(f.k >>> 0, 8 * i + 4);
  });
  return buf;
}
