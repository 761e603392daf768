/**
 * The device policy on cgroup v2. v2 has no devices.allow/deny files: the kernel asks a
 * BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup, once per device access (open, mknod),
 * with { access_type = access << 16 | type, major, minor } and allows it when the program returns 1.
 * This module compiles docker's rules ("c 1:3 rwm", "b *:* m", "a *:* rwm" — the same strings the v1
 * driver writes to devices.allow) into such a program: an allow list, everything else denied.
 *
 *   r2 = type, r3 = access, r4 = major, r5 = minor          (loaded from the context in r1)
 *   for each rule:   if r2 != TYPE goto next                (left out for type a)
 *                    if r3 & ~ALLOWED goto next             (left out for rwm)
 *                    if r4 != MAJOR goto next               (left out for *)
 *                    if r5 != MINOR goto next               (left out for *)
 *                    return 1
 *   return 0
 *
 * Instructions are the kernel's struct bpf_insn (8 bytes, little endian): opcode, dst:4|src:4 registers,
 * a signed 16-bit jump offset (counted from the next instruction) and a signed 32-bit immediate.
 */
import { fail } from '../../util/errors.js';

/** bpf_cgroup_dev_ctx types and access bits (include/uapi/linux/bpf.h). */
export const DEV_BLOCK = 1;
export const DEV_CHAR = 2;
export const ACC_MKNOD = 1;
export const ACC_READ = 2;
export const ACC_WRITE = 4;

// Opcodes used here.
const LDX_MEM_W = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K = 0x54; // w_dst &= imm
const ALU32_RSH_K = 0x74; // w_dst >>= imm
const ALU32_MOV_X = 0xbc; // w_dst = w_src
const JMP_JNE_K = 0x55; // if dst != imm goto pc + 1 + off
const ALU64_MOV_K = 0xb7; // dst = imm
const JMP_EXIT = 0x95;

export interface BpfInsn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

const insn = (code: number, dst = 0, src = 0, off = 0, imm = 0): BpfInsn => ({ code, dst, src, off, imm });

interface Rule {
  type?: number; // undefined: a (any)
  major?: number; // undefined: *
  minor?: number;
  access: number;
}

function parseRule(rule: string): Rule {
  const m = /^([abc]) (\*|\d+):(\*|\d+) ([rwm]{1,3})$/.exec(rule);
  if (!m) throw fail('EINVAL', `set device rule "${rule}": expected "TYPE MAJOR:MINOR ACCESS" such as "c 1:3 rwm"`);
  const num = (s: string) => (s === '*' ? undefined : Number(s));
  const major = num(m[2]!), minor = num(m[3]!);
  for (const n of [major, minor]) {
    if (n !== undefined && n > 0x7fffffff) throw fail('EINVAL', `set device rule "${rule}": device number out of range`);
  }
  let access = 0;
  for (const c of m[4]!) access |= c === 'r' ? ACC_READ : c === 'w' ? ACC_WRITE : ACC_MKNOD;
  return { type: m[1] === 'a' ? undefined : m[1] === 'b' ? DEV_BLOCK : DEV_CHAR, major, minor, access };
}

/** The program for an allow list of docker device rules. */
export function compileDeviceRules(rules: string[]): BpfInsn[] {
  const prog: BpfInsn[] = [
    insn(LDX_MEM_W, 2, 1, 0), insn(ALU32_AND_K, 2, 0, 0, 0xffff),
    insn(LDX_MEM_W, 3, 1, 0), insn(ALU32_RSH_K, 3, 0, 0, 16),
    insn(LDX_MEM_W, 4, 1, 4),
    insn(LDX_MEM_W, 5, 1, 8),
  ];
  for (const text of rules) {
    const r = parseRule(text);
    // Each test jumps to the end of this rule's block; the offsets are filled in once its length is known.
    const block: BpfInsn[] = [];
    if (r.type !== undefined) block.push(insn(JMP_JNE_K, 2, 0, 0, r.type));
    const all = ACC_MKNOD | ACC_READ | ACC_WRITE;
    if (r.access !== all) block.push(insn(ALU32_MOV_X, 1, 3), insn(ALU32_AND_K, 1, 0, 0, all & ~r.access), insn(JMP_JNE_K, 1, 0, 0, 0));
    if (r.major !== undefined) block.push(insn(JMP_JNE_K, 4, 0, 0, r.major));
    if (r.minor !== undefined) block.push(insn(JMP_JNE_K, 5, 0, 0, r.minor));
    block.push(insn(ALU64_MOV_K, 0, 0, 0, 1), insn(JMP_EXIT));
    block.forEach((b, i) => { if (b.code === JMP_JNE_K) b.off = block.length - (i + 1); });
    prog.push(...block);
  }
  prog.push(insn(ALU64_MOV_K, 0, 0, 0, 0), insn(JMP_EXIT));
  return prog;
}

/** The program as the kernel takes it (struct bpf_insn[]). */
export function encodeProgram(prog: BpfInsn[]): Buffer {
  const buf = Buffer.alloc(prog.length * 8);
  prog.forEach((p, i) => {
    buf.writeUInt8(p.code, i * 8);
    buf.writeUInt8((p.src << 4) | p.dst, i * 8 + 1);
    buf.writeInt16LE(p.off, i * 8 + 2);
    buf.writeInt32LE(p.imm | 0, i * 8 + 4);
  });
  return buf;
}

/**
 * Runs a program on one access the way the kernel would (only the instructions compileDeviceRules
 * emits): for tests, and to explain a policy. Returns the program's verdict (1 allow, 0 deny).
 */
export function runDeviceProgram(prog: BpfInsn[], type: number, major: number, minor: number, access: number): number {
  const ctx = [((access << 16) | type) >>> 0, major >>> 0, minor >>> 0];
  const r = new Array<number>(11).fill(0);
  for (let pc = 0, steps = 0; pc < prog.length && steps < 100_000; pc++, steps++) {
    const p = prog[pc]!;
    switch (p.code) {
      case LDX_MEM_W: r[p.dst] = ctx[p.off / 4]!; break;
      case ALU32_AND_K: r[p.dst] = (r[p.dst]! & p.imm) >>> 0; break;
      case ALU32_RSH_K: r[p.dst] = r[p.dst]! >>> p.imm; break;
      case ALU32_MOV_X: r[p.dst] = r[p.src]! >>> 0; break;
      case ALU64_MOV_K: r[p.dst] = p.imm; break;
      case JMP_JNE_K: if (r[p.dst] !== p.imm >>> 0) pc += p.off; break;
      case JMP_EXIT: return r[0]!;
      default: throw new Error(`unknown opcode 0x${p.code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('program ran off its end');
}
