/**
 * Seccomp profiles in Docker's JSON format (moby's profiles/seccomp: `defaultAction`,
 * `defaultErrnoRet`, `archMap` or `architectures`, `syscalls[]` with `names`, `action`,
 * `errnoRet`, `args`, `includes`/`excludes` by arch, capability and kernel version), parsed and
 * validated, then narrowed to the rules that apply to one container (its native architecture,
 * its capabilities, the host kernel) exactly as Docker does before it hands them to libseccomp.
 */
import { fail } from '../../util/errors.js';
import { SYSCALL_TABLES_TEXT } from './tables.js';

export type SeccompAction =
  | 'SCMP_ACT_KILL' | 'SCMP_ACT_KILL_THREAD' | 'SCMP_ACT_KILL_PROCESS' | 'SCMP_ACT_TRAP'
  | 'SCMP_ACT_ERRNO' | 'SCMP_ACT_TRACE' | 'SCMP_ACT_ALLOW' | 'SCMP_ACT_LOG';

export type SeccompOp =
  | 'SCMP_CMP_NE' | 'SCMP_CMP_LT' | 'SCMP_CMP_LE' | 'SCMP_CMP_EQ' | 'SCMP_CMP_GE' | 'SCMP_CMP_GT' | 'SCMP_CMP_MASKED_EQ';

export interface SeccompArg { index: number; value: number; valueTwo?: number; op: SeccompOp }

export interface SeccompFilter { arches?: string[]; caps?: string[]; minKernel?: string }

export interface SeccompRule {
  names?: string[];
  /** The old single-name form. */
  name?: string;
  action: SeccompAction;
  errnoRet?: number;
  args?: SeccompArg[] | null;
  includes?: SeccompFilter;
  excludes?: SeccompFilter;
  comment?: string;
}

export interface SeccompProfile {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures: string[] | null }[];
  syscalls?: SeccompRule[];
}

/** The architectures the compiler knows, by libseccomp name. */
export type SeccompArch = 'SCMP_ARCH_X86_64' | 'SCMP_ARCH_X86' | 'SCMP_ARCH_X32' | 'SCMP_ARCH_AARCH64';
export const SUPPORTED_ARCHES: readonly SeccompArch[] = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_AARCH64'];

/** Docker's (Go's) names of the architectures, used by `includes.arches` / `excludes.arches`. */
export const DOCKER_ARCH_NAME: Record<SeccompArch, string> = {
  SCMP_ARCH_X86_64: 'amd64', SCMP_ARCH_X86: 'x86', SCMP_ARCH_X32: 'x32', SCMP_ARCH_AARCH64: 'arm64',
};

const TABLE_KEY: Record<SeccompArch, keyof typeof SYSCALL_TABLES_TEXT> = {
  SCMP_ARCH_X86_64: 'x86_64', SCMP_ARCH_X86: 'i386', SCMP_ARCH_X32: 'x32', SCMP_ARCH_AARCH64: 'aarch64',
};

const tableCache = new Map<SeccompArch, Map<string, number>>();

/** Syscall name → number on one architecture (x32 numbers include the 0x40000000 bit). */
export function syscallTable(arch: SeccompArch): Map<string, number> {
  let t = tableCache.get(arch);
  if (!t) {
    t = new Map(SYSCALL_TABLES_TEXT[TABLE_KEY[arch]].split(' ').map((p) => {
      const i = p.indexOf(':');
      return [p.slice(0, i), Number(p.slice(i + 1))] as [string, number];
    }));
    tableCache.set(arch, t);
  }
  return t;
}

/** The machine's own architecture, as libseccomp names it; undefined when the compiler has no tables for it. */
export function nativeArch(nodeArch: string = process.arch): SeccompArch | undefined {
  return nodeArch === 'x64' ? 'SCMP_ARCH_X86_64' : nodeArch === 'arm64' ? 'SCMP_ARCH_AARCH64' : undefined;
}

const ACTIONS = new Set<string>(['SCMP_ACT_KILL', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG']);
const OPS = new Set<string>(['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ']);

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function u64(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER;
}

/**
 * Validates a profile read from JSON; `source` names it in errors
 * ("seccomp profile /x.json: syscalls[3].action: unknown action \"SCMP_ACT_FOO\"").
 */
export function parseProfile(value: unknown, source: string): SeccompProfile {
  const bad = (where: string, why: string) => fail('EINVAL', `seccomp profile ${source}: ${where}: ${why}`);
  if (!isObj(value)) throw bad('top level', 'not a JSON object');
  const action = (v: unknown, where: string) => {
    if (typeof v !== 'string' || !ACTIONS.has(v)) {
      if (v === 'SCMP_ACT_NOTIFY') throw bad(where, 'SCMP_ACT_NOTIFY is not supported');
      throw bad(where, `unknown action ${JSON.stringify(v)}`);
    }
  };
  action(value.defaultAction, 'defaultAction');
  if (value.defaultErrnoRet !== undefined && !(u64(value.defaultErrnoRet) && (value.defaultErrnoRet as number) <= 0xffff)) throw bad('defaultErrnoRet', 'not an errno number');
  if (value.architectures !== undefined && value.architectures !== null && (!Array.isArray(value.architectures) || value.architectures.some((a) => typeof a !== 'string'))) throw bad('architectures', 'not a list of names');
  if (value.archMap !== undefined && value.archMap !== null) {
    if (!Array.isArray(value.archMap)) throw bad('archMap', 'not a list');
    value.archMap.forEach((m, i) => {
      if (!isObj(m) || typeof m.architecture !== 'string') throw bad(`archMap[${i}]`, 'missing architecture');
      if (m.subArchitectures != null && (!Array.isArray(m.subArchitectures) || m.subArchitectures.some((a) => typeof a !== 'string'))) throw bad(`archMap[${i}].subArchitectures`, 'not a list of names');
    });
  }
  const syscalls = value.syscalls ?? [];
  if (!Array.isArray(syscalls)) throw bad('syscalls', 'not a list');
  syscalls.forEach((r, i) => {
    const at = `syscalls[${i}]`;
    if (!isObj(r)) throw bad(at, 'not an object');
    const names = r.names ?? (r.name !== undefined ? [r.name] : undefined);
    if (!Array.isArray(names) || names.length === 0 || names.some((n) => typeof n !== 'string' || n === '')) throw bad(`${at}.names`, 'want a non-empty list of syscall names');
    action(r.action, `${at}.action`);
    if (r.errnoRet != null && !(u64(r.errnoRet) && (r.errnoRet as number) <= 0xffff)) throw bad(`${at}.errnoRet`, 'not an errno number');
    if (r.args != null) {
      if (!Array.isArray(r.args)) throw bad(`${at}.args`, 'not a list');
      r.args.forEach((a, j) => {
        const aw = `${at}.args[${j}]`;
        if (!isObj(a)) throw bad(aw, 'not an object');
        if (!(Number.isInteger(a.index) && (a.index as number) >= 0 && (a.index as number) <= 5)) throw bad(`${aw}.index`, 'want 0 to 5');
        if (!u64(a.value)) throw bad(`${aw}.value`, 'want an unsigned integer');
        if (a.valueTwo != null && !u64(a.valueTwo)) throw bad(`${aw}.valueTwo`, 'want an unsigned integer');
        if (typeof a.op !== 'string' || !OPS.has(a.op)) throw bad(`${aw}.op`, `unknown operator ${JSON.stringify(a.op)}`);
      });
    }
    for (const k of ['includes', 'excludes'] as const) {
      const f = r[k];
      if (f == null) continue;
      if (!isObj(f)) throw bad(`${at}.${k}`, 'not an object');
      for (const l of ['arches', 'caps'] as const) {
        if (f[l] != null && (!Array.isArray(f[l]) || (f[l] as unknown[]).some((x) => typeof x !== 'string'))) throw bad(`${at}.${k}.${l}`, 'not a list of names');
      }
      if (f.minKernel != null && (typeof f.minKernel !== 'string' || !/^\d+\.\d+(\.\d+)?/.test(f.minKernel))) throw bad(`${at}.${k}.minKernel`, 'not a kernel version');
    }
  });
  return value as unknown as SeccompProfile;
}

/** Compares "6.1.0-13-amd64" with "4.8": true when the first is at least the second. */
export function kernelAtLeast(release: string, min: string): boolean {
  const parse = (s: string) => (/^(\d+)\.(\d+)(?:\.(\d+))?/.exec(s) ?? []).slice(1, 4).map((x) => Number(x ?? 0));
  const a = parse(release);
  const b = parse(min);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

export interface CompileContext {
  /** The machine's architecture; the program also covers the sub-architectures the profile maps to it. */
  arch: SeccompArch;
  /** The container's capabilities ("CAP_SYS_ADMIN" …): rules included or excluded by capability depend on them. */
  caps: string[];
  /** The host kernel release (os.release()), for minKernel. */
  kernel: string;
}

/** The architectures one program must cover: the native one first, then its sub-architectures (as Docker maps them). */
export function programArches(profile: SeccompProfile, arch: SeccompArch): SeccompArch[] {
  const out = [arch];
  const extra = profile.archMap?.find((m) => m.architecture === arch)?.subArchitectures
    ?? (profile.archMap ? [] : profile.architectures ?? []);
  for (const a of extra ?? []) if ((SUPPORTED_ARCHES as readonly string[]).includes(a) && !out.includes(a as SeccompArch)) out.push(a as SeccompArch);
  return out;
}

/** The rules that apply to this container, as Docker selects them (moby profiles/seccomp setupSeccomp). */
export function applicableRules(profile: SeccompProfile, ctx: CompileContext): SeccompRule[] {
  const arch = DOCKER_ARCH_NAME[ctx.arch];
  const caps = new Set(ctx.caps);
  return (profile.syscalls ?? []).filter((r) => {
    const ex = r.excludes ?? {};
    const inc = r.includes ?? {};
    if (ex.arches?.length && ex.arches.includes(arch)) return false;
    if (ex.caps?.length && ex.caps.some((c) => caps.has(c))) return false;
    if (ex.minKernel && kernelAtLeast(ctx.kernel, ex.minKernel)) return false;
    if (inc.arches?.length && !inc.arches.includes(arch)) return false;
    if (inc.caps?.length && !inc.caps.every((c) => caps.has(c))) return false;
    if (inc.minKernel && !kernelAtLeast(ctx.kernel, inc.minKernel)) return false;
    return true;
  });
}
