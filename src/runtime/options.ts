/**
 * The run options of `docker run` that shape what a container can do and see, parsed with
 * Docker's syntax and applied to a launch plan: capabilities (--cap-add/--cap-drop), seccomp and
 * no-new-privileges (--security-opt), --privileged, --read-only, --tmpfs, -v/--mount (binds,
 * tmpfs; named volumes arrive here already resolved to host directories), --device, --shm-size,
 * --ulimit, --sysctl, --init, -t, --env-file. Everything is decided here; the launcher executes.
 */
import { readdirSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { constants as osConstants } from 'node:os';
import { fail, messageOf } from '../util/errors.js';
import type { DeviceNode, LaunchPlan, MountFlag, MountSpec, RlimitSpec } from './plan.js';
import { CGROUP_DIR, DEFAULT_CAPABILITIES } from './spec.js';
import { loadProfile, seccompProgram } from './seccomp/index.js';
import { cachedSeccompProgram } from './seccomp/cache.js';

/** Capability numbers of linux/capability.h. */
export const CAPABILITIES: Record<string, number> = {
  CHOWN: 0, DAC_OVERRIDE: 1, DAC_READ_SEARCH: 2, FOWNER: 3, FSETID: 4, KILL: 5, SETGID: 6, SETUID: 7, SETPCAP: 8,
  LINUX_IMMUTABLE: 9, NET_BIND_SERVICE: 10, NET_BROADCAST: 11, NET_ADMIN: 12, NET_RAW: 13, IPC_LOCK: 14, IPC_OWNER: 15,
  SYS_MODULE: 16, SYS_RAWIO: 17, SYS_CHROOT: 18, SYS_PTRACE: 19, SYS_PACCT: 20, SYS_ADMIN: 21, SYS_BOOT: 22, SYS_NICE: 23,
  SYS_RESOURCE: 24, SYS_TIME: 25, SYS_TTY_CONFIG: 26, MKNOD: 27, LEASE: 28, AUDIT_WRITE: 29, AUDIT_CONTROL: 30, SETFCAP: 31,
  MAC_OVERRIDE: 32, MAC_ADMIN: 33, SYSLOG: 34, WAKE_ALARM: 35, BLOCK_SUSPEND: 36, AUDIT_READ: 37, PERFMON: 38, BPF: 39,
  CHECKPOINT_RESTORE: 40,
};

function capName(raw: string, flag: string): string {
  const n = raw.trim().toUpperCase().replace(/^CAP_/, '');
  if (n === 'ALL') return n;
  if (!(n in CAPABILITIES)) throw fail('EINVAL', `invalid ${flag} "${raw}": unknown capability`);
  return n;
}

/** Docker's rules (moby TweakCapabilities): ALL in --cap-add starts from all, ALL in --cap-drop from none; adds win over drops. */
export function effectiveCapabilities(capAdd: string[] = [], capDrop: string[] = []): string[] {
  const adds = capAdd.flatMap((c) => c.split(',')).filter(Boolean).map((c) => capName(c, '--cap-add'));
  const drops = capDrop.flatMap((c) => c.split(',')).filter(Boolean).map((c) => capName(c, '--cap-drop'));
  let caps = adds.includes('ALL') ? Object.keys(CAPABILITIES) : drops.includes('ALL') ? [] : Object.keys(DEFAULT_CAPABILITIES);
  caps = caps.filter((c) => !drops.includes(c) || adds.includes(c));
  for (const a of adds) if (a !== 'ALL' && !caps.includes(a)) caps.push(a);
  return caps;
}

export interface SecurityOpts { seccomp?: string; noNewPrivileges: boolean; systemPathsUnconfined?: boolean }

/** `--security-opt`: seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false]; apparmor/label are accepted and ignored (no LSM here). */
export function parseSecurityOpts(list: string[] = []): SecurityOpts {
  const out: SecurityOpts = { noNewPrivileges: false };
  for (const o of list) {
    const eq = o.search(/[=:]/);
    const key = eq < 0 ? o : o.slice(0, eq);
    const value = eq < 0 ? undefined : o.slice(eq + 1);
    if (key === 'no-new-privileges') {
      if (value === undefined || value === 'true') out.noNewPrivileges = true;
      else if (value === 'false') out.noNewPrivileges = false;
      else throw fail('EINVAL', `invalid --security-opt "${o}": no-new-privileges takes true or false`);
    } else if (key === 'seccomp') {
      if (!value) throw fail('EINVAL', `invalid --security-opt "${o}": want seccomp=unconfined or seccomp=PROFILE.json`);
      out.seccomp = value;
    } else if (key === 'apparmor' || key === 'label' || key === 'systempaths') {
      if (key === 'systempaths' && value !== 'unconfined') throw fail('EINVAL', `invalid --security-opt "${o}": systempaths takes unconfined`);
      if (key === 'systempaths') out.systemPathsUnconfined = true;
    } else {
      throw fail('EINVAL', `invalid --security-opt "${o}": unknown option "${key}"`);
    }
  }
  return out;
}

// ---- mounts ----
export type UserMount =
  | { type: 'bind'; source: string; target: string; readonly: boolean; propagation?: MountFlag; createSource?: boolean }
  | { type: 'volume'; name?: string; target: string; readonly: boolean; noCopy: boolean }
  | { type: 'tmpfs'; target: string; flags: MountFlag[]; data: string };

const PROPAGATION = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];

function containerPath(p: string, what: string): string {
  if (!p.startsWith('/')) throw fail('EINVAL', `invalid ${what}: container path "${p}" is not absolute`);
  const n = posix.normalize(p);
  if (n === '/') throw fail('EINVAL', `invalid ${what}: cannot mount over "/"`);
  return n.replace(/\/$/, '');
}

/** `-v HOST:CTR[:opts]`, `-v NAME:CTR[:opts]`, `-v CTR` (an anonymous volume). */
export function parseVolumeFlag(spec: string): UserMount {
  const what = `--volume "${spec}"`;
  const parts = spec.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) throw fail('EINVAL', `invalid ${what}: want SOURCE:TARGET[:OPTIONS]`);
  if (parts.length === 1) return { type: 'volume', target: containerPath(parts[0]!, what), readonly: false, noCopy: false };
  const [src, dst, opts = ''] = parts as [string, string, string?];
  let readonly = false;
  let propagation: MountFlag | undefined;
  let noCopy = false;
  for (const o of opts.split(',').filter(Boolean)) {
    if (o === 'ro' || o === 'readonly') readonly = true;
    else if (o === 'rw') readonly = false;
    else if (PROPAGATION.includes(o)) propagation = o as MountFlag;
    else if (o === 'nocopy') noCopy = true;
    else if (o === 'z' || o === 'Z' || o === 'delegated' || o === 'cached' || o === 'consistent') { /* SELinux/macOS hints: no effect here */ }
    else throw fail('EINVAL', `invalid ${what}: unknown option "${o}"`);
  }
  const target = containerPath(dst, what);
  if (src.startsWith('/')) return { type: 'bind', source: posix.normalize(src), target, readonly, propagation, createSource: true };
  // docker 23+: a host path starting with "." is relative to the current directory (a volume name cannot start so)
  if (src.startsWith('.')) return { type: 'bind', source: posix.resolve(process.cwd(), src), target, readonly, propagation, createSource: true };
  checkVolumeName(src);
  return { type: 'volume', name: src, target, readonly, noCopy };
}

export function checkVolumeName(name: string): string {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name) || name.length > 255) {
    throw fail('EINVAL', `invalid volume name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  return name;
}

/** `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,bind-propagation=…][,volume-nocopy][,tmpfs-size=…][,tmpfs-mode=…]`. */
export function parseMountFlag(spec: string): UserMount {
  const what = `--mount "${spec}"`;
  const kv = new Map<string, string | undefined>();
  for (const field of spec.split(',')) {
    if (field === '') continue;
    const eq = field.indexOf('=');
    kv.set((eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase(), eq < 0 ? undefined : field.slice(eq + 1));
  }
  const type = kv.get('type') ?? 'volume';
  const source = kv.get('source') ?? kv.get('src');
  const targetRaw = kv.get('target') ?? kv.get('destination') ?? kv.get('dst');
  if (!targetRaw) throw fail('EINVAL', `invalid ${what}: target is required`);
  const target = containerPath(targetRaw, what);
  const bool = (k: string) => {
    if (!kv.has(k)) return false;
    const v = kv.get(k);
    if (v === undefined || v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw fail('EINVAL', `invalid ${what}: ${k} takes true or false`);
  };
  const readonly = bool('readonly') || bool('ro');
  const known = new Set(['type', 'source', 'src', 'target', 'destination', 'dst', 'readonly', 'ro', 'bind-propagation', 'volume-nocopy', 'tmpfs-size', 'tmpfs-mode', 'consistency', 'bind-recursive']);
  for (const k of kv.keys()) if (!known.has(k)) throw fail('EINVAL', `invalid ${what}: unknown field "${k}"`);
  if (type === 'bind') {
    if (!source) throw fail('EINVAL', `invalid ${what}: a bind mount needs a source`);
    if (!source.startsWith('/')) throw fail('EINVAL', `invalid ${what}: bind source "${source}" is not an absolute path`);
    const p = kv.get('bind-propagation');
    if (p !== undefined && !PROPAGATION.includes(p)) throw fail('EINVAL', `invalid ${what}: bind-propagation "${p}"`);
    return { type: 'bind', source: posix.normalize(source), target, readonly, propagation: p as MountFlag | undefined, createSource: false };
  }
  if (type === 'volume') {
    if (source !== undefined) checkVolumeName(source);
    return { type: 'volume', name: source, target, readonly, noCopy: bool('volume-nocopy') };
  }
  if (type === 'tmpfs') {
    if (source) throw fail('EINVAL', `invalid ${what}: a tmpfs mount has no source`);
    const data: string[] = [];
    const size = kv.get('tmpfs-size');
    if (size !== undefined) data.push(`size=${tmpfsSize(size, what)}`);
    const mode = kv.get('tmpfs-mode');
    if (mode !== undefined) {
      if (!/^[0-7]{1,4}$/.test(mode)) throw fail('EINVAL', `invalid ${what}: tmpfs-mode "${mode}" is not octal`);
      data.push(`mode=${mode}`);
    }
    return { type: 'tmpfs', target, flags: readonly ? ['ro', 'nosuid', 'nodev', 'noexec'] : ['nosuid', 'nodev', 'noexec'], data: data.join(',') };
  }
  throw fail('EINVAL', `invalid ${what}: type "${type}" (want bind, volume or tmpfs)`);
}

function tmpfsSize(v: string, what: string): string {
  const bytes = parseSize(v, what);
  return String(bytes);
}

/** docker units: 64m, 1g, 512k, 100b, 1024 (bytes). */
export function parseSize(v: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?$/i.exec(v.trim());
  if (!m) throw fail('EINVAL', `invalid ${what}: size "${v}" (want e.g. 64m)`);
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase()]!;
  return Math.floor(Number(m[1]) * mult);
}

/** `--tmpfs PATH[:OPTIONS]` with mount(8) options; Docker's defaults are noexec,nosuid,nodev. */
export function parseTmpfsFlag(spec: string): UserMount {
  const what = `--tmpfs "${spec}"`;
  const i = spec.indexOf(':');
  const target = containerPath(i < 0 ? spec : spec.slice(0, i), what);
  const flags = new Set<MountFlag>(['noexec', 'nosuid', 'nodev']);
  const data: string[] = [];
  for (const o of (i < 0 ? '' : spec.slice(i + 1)).split(',').filter(Boolean)) {
    if (o === 'ro') flags.add('ro');
    else if (o === 'rw') flags.delete('ro');
    else if (o === 'exec') flags.delete('noexec');
    else if (o === 'suid') flags.delete('nosuid');
    else if (o === 'dev') flags.delete('nodev');
    else if (o === 'noexec' || o === 'nosuid' || o === 'nodev' || o === 'noatime' || o === 'relatime' || o === 'strictatime') flags.add(o);
    else if (/^(size|mode|uid|gid|nr_inodes|nr_blocks)=/.test(o)) data.push(o.startsWith('size=') && !/^size=\d+%?$/.test(o) ? `size=${parseSize(o.slice(5), what)}` : o);
    else throw fail('EINVAL', `invalid ${what}: unknown option "${o}"`);
  }
  return { type: 'tmpfs', target, flags: [...flags], data: data.join(',') };
}

// ---- ulimits, sysctls, devices ----
const ULIMITS = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack', 'as'];

/** `--ulimit nofile=1024:2048`, `--ulimit nproc=512` (soft = hard), -1 for unlimited. */
export function parseUlimit(spec: string): RlimitSpec {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(spec.trim());
  if (!m || !ULIMITS.includes(m[1]!)) throw fail('EINVAL', `invalid --ulimit "${spec}": want NAME=SOFT[:HARD] with NAME one of ${ULIMITS.join(', ')}`);
  const val = (s: string) => (s === '-1' ? 'unlimited' as const : Number(s));
  const soft = val(m[2]!);
  const hard = val(m[3] ?? m[2]!);
  if (typeof soft === 'number' && soft < 0) throw fail('EINVAL', `invalid --ulimit "${spec}": negative value`);
  if (typeof hard === 'number' && hard < 0) throw fail('EINVAL', `invalid --ulimit "${spec}": negative value`);
  if (hard !== 'unlimited' && (soft === 'unlimited' || soft > hard)) throw fail('EINVAL', `invalid --ulimit "${spec}": soft limit above hard limit`);
  return { type: m[1]!.toUpperCase(), soft, hard };
}

const IPC_SYSCTLS = ['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced'];

/** `--sysctl KEY=VALUE`, only namespaced keys (runc's list): IPC ones, fs.mqueue.*, kernel.domainname, net.* (not with the host network). */
export function parseSysctl(spec: string, hostNetwork: boolean): [string, string] {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw fail('EINVAL', `invalid --sysctl "${spec}": want KEY=VALUE`);
  const key = spec.slice(0, eq).trim().replace(/\//g, '.');
  const value = spec.slice(eq + 1);
  if (!/^[a-zA-Z0-9_]+(\.[a-zA-Z0-9_-]+)+$/.test(key)) throw fail('EINVAL', `invalid --sysctl "${spec}": bad name`);
  const ok = IPC_SYSCTLS.includes(key) || key.startsWith('fs.mqueue.') || key === 'kernel.domainname' || key.startsWith('net.');
  if (!ok) throw fail('EINVAL', `invalid --sysctl "${spec}": sysctl "${key}" is not namespaced and cannot be set in a container`);
  if (key.startsWith('net.') && hostNetwork) throw fail('EINVAL', `invalid --sysctl "${spec}": sysctl "${key}" is not allowed with the host network`);
  return [key, value];
}

/** `--device HOST[:CONTAINER][:PERMS]`: a node with the host device's type, numbers and mode. */
export function parseDevice(spec: string): DeviceNode {
  const parts = spec.split(':');
  const host = parts[0]!;
  let ctr = host;
  if (parts.length >= 2 && parts[1]!.startsWith('/')) ctr = parts[1]!;
  else if (parts.length >= 2 && !/^[rwm]+$/.test(parts[1]!)) throw fail('EINVAL', `invalid --device "${spec}": want HOST[:CONTAINER][:PERMISSIONS]`);
  if (!host.startsWith('/')) throw fail('EINVAL', `invalid --device "${spec}": host path is not absolute`);
  let st;
  try {
    st = statSync(host);
  } catch (err) {
    throw fail('EINVAL', `invalid --device "${spec}": ${messageOf(err)}`, err);
  }
  if (!st.isCharacterDevice() && !st.isBlockDevice()) throw fail('EINVAL', `invalid --device "${spec}": ${host} is not a device`);
  const rdev = st.rdev;
  const major = ((rdev >> 8) & 0xfff) | Math.floor(rdev / 2 ** 32) & ~0xfff;
  const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
  return { path: containerPath(ctr, `--device "${spec}"`), type: st.isCharacterDevice() ? 'c' : 'b', major, minor, mode: st.mode & 0o7777, uid: 0, gid: 0 };
}

/** The host's top-level device nodes, for --privileged (as docker gives a privileged container the host's devices). */
function hostDevices(): DeviceNode[] {
  const out: DeviceNode[] = [];
  for (const name of readdirSync('/dev')) {
    try {
      const st = statSync(join('/dev', name), { throwIfNoEntry: false });
      if (!st || !(st.isCharacterDevice() || st.isBlockDevice())) continue;
      out.push(parseDevice(join('/dev', name)));
    } catch { /* vanished or unreadable: skip */ }
  }
  return out;
}

/** `--env-file`: KEY=VALUE lines, KEY alone passes the caller's value, # comments and blank lines ignored. */
export async function readEnvFiles(paths: string[] = []): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    let text: string;
    try {
      text = await readFile(p, 'utf8');
    } catch (err) {
      throw fail('EINVAL', `read --env-file ${p}: ${messageOf(err)}`, err);
    }
    text.split(/\r?\n/).forEach((line, i) => {
      const l = line.replace(/^\s+/, '');
      if (l === '' || l.startsWith('#')) return;
      const eq = l.indexOf('=');
      const key = eq < 0 ? l.trim() : l.slice(0, eq);
      if (key === '' || /\s/.test(key)) throw fail('EINVAL', `--env-file ${p} line ${i + 1}: variable "${key}" contains whitespace or is empty`);
      out.push(eq < 0 ? key : `${key}=${l.slice(eq + 1)}`);
    });
  }
  return out;
}

/** "SIGTERM", "TERM", "term" or "15" → "SIGTERM" (docker accepts all of them). */
export function parseSignal(s: string, what: string): string {
  const n = Number(s);
  if (/^\d+$/.test(s)) {
    const name = Object.entries(osConstants.signals).find(([, v]) => v === n)?.[0];
    if (!name || n === 0) throw fail('EINVAL', `invalid ${what} "${s}": unknown signal`);
    return name;
  }
  const name = ('SIG' + s.toUpperCase().replace(/^SIG/, '')) as keyof typeof osConstants.signals;
  if (!(name in osConstants.signals)) throw fail('EINVAL', `invalid ${what} "${s}": unknown signal`);
  return name;
}

/** The options that change a plan, after the engine resolved named volumes to host directories. */
export interface PlanOptions {
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  securityOpt?: string[];
  readOnly?: boolean;
  /** Parsed -v/--mount/--tmpfs, volumes resolved: binds and tmpfs only. */
  mounts?: UserMount[];
  devices?: string[];
  shmSize?: string;
  ulimits?: string[];
  sysctls?: string[];
  /** Run tspod-init as PID 1 in front of the command. */
  init?: boolean;
  tty?: boolean;
  /** Where the compiled seccomp program is written (the container's directory). */
  stateDir: string;
  /** A folder that caches compiled seccomp programs (seccomp/cache.ts); none: compile every time. */
  seccompCacheDir?: string;
}

/** Docker's default NOFILE (containerd's); the launcher clamps it to the caller's hard limit. */
export const DEFAULT_NOFILE = 1048576;

export function initBinaryPath(launcher: string): string {
  return process.env.TSPOD_INIT || join(dirname(launcher), 'tspod-init');
}
export const INIT_PATH_IN_CONTAINER = '/sbin/tspod-init';

/** Applies the run options to a plan built from Docker's defaults (spec.ts). */
export async function applyPlanOptions(plan: LaunchPlan, o: PlanOptions, ctx: { hostNetwork: boolean; initBinary: string }): Promise<LaunchPlan> {
  const security = parseSecurityOpts(o.securityOpt);
  const caps = o.privileged ? Object.keys(CAPABILITIES) : effectiveCapabilities(o.capAdd, o.capDrop);
  const out: LaunchPlan = { ...plan, mounts: [...plan.mounts], devices: [...plan.devices] };
  out.noNewPrivileges = security.noNewPrivileges;
  out.capabilities = o.privileged ? undefined : caps.map((c) => CAPABILITIES[c]!);

  if (o.privileged || security.systemPathsUnconfined) {
    out.maskedPaths = [];
    // /proc's read-only paths; /sys/fs/cgroup stays read-only, as docker's cgroup mount does
    out.readonlyPaths = out.readonlyPaths.filter((p) => p === CGROUP_DIR);
  }
  if (o.privileged) {
    // docker's --privileged: /sys and /sys/fs/cgroup writable
    out.readonlyPaths = [];
    out.mounts = out.mounts.map((m) => (m.type === 'sysfs' || m.type === 'cgroup' || m.type === 'cgroup2' ? { ...m, flags: m.flags.filter((f) => f !== 'ro') } : m));
    const have = new Set(out.devices.map((d) => d.path));
    for (const d of hostDevices()) if (!have.has(d.path)) out.devices.push(d);
  }

  // seccomp: Docker turns it off for --privileged; otherwise the default profile or the one asked for
  const profile = o.privileged && security.seccomp === undefined ? undefined : await loadProfile(security.seccomp);
  if (profile) {
    const file = join(o.stateDir, 'seccomp.bpf');
    const capNames = caps.map((c) => `CAP_${c}`);
    const compile = () => seccompProgram(profile, capNames);
    await writeFile(file, o.seccompCacheDir ? await cachedSeccompProgram(o.seccompCacheDir, profile, capNames, compile) : compile());
    out.seccompProgramPath = file;
  } else {
    delete out.seccompProgramPath;
  }

  if (o.shmSize !== undefined) {
    const bytes = parseSize(o.shmSize, `--shm-size "${o.shmSize}"`);
    if (bytes <= 0) throw fail('EINVAL', `invalid --shm-size "${o.shmSize}": must be greater than 0`);
    out.mounts = out.mounts.map((m) => (m.destination === '/dev/shm' ? { ...m, data: `mode=1777,size=${Math.ceil(bytes / 1024)}k` } : m));
  }

  // user mounts come after the standard ones, and replace one at the same destination (docker lets -v cover /etc/hosts)
  for (const m of o.mounts ?? []) {
    if (m.type === 'volume') throw fail('EINTERNAL', `mount ${m.target}: volume not resolved`);
    const spec: MountSpec = m.type === 'tmpfs'
      ? { source: 'tmpfs', destination: m.target, type: 'tmpfs', flags: m.flags, data: m.data || undefined }
      : { source: m.source, destination: m.target, type: 'bind', flags: ['rbind', ...(m.readonly ? ['ro' as const] : []), m.propagation ?? 'rprivate'] };
    if (out.mounts.some((x) => x.destination === m.target && !['/etc/hosts', '/etc/resolv.conf', '/etc/hostname', '/dev/shm'].includes(x.destination))) {
      throw fail('EINVAL', `duplicate mount point: ${m.target}`);
    }
    out.mounts = out.mounts.filter((x) => x.destination !== m.target);
    out.mounts.push(spec);
  }

  for (const d of o.devices ?? []) {
    const node = parseDevice(d);
    out.devices = out.devices.filter((x) => x.path !== node.path);
    out.devices.push(node);
  }

  const rlimits: RlimitSpec[] = [{ type: 'NOFILE', soft: DEFAULT_NOFILE, hard: DEFAULT_NOFILE }];
  for (const u of o.ulimits ?? []) {
    const r = parseUlimit(u);
    const i = rlimits.findIndex((x) => x.type === r.type);
    if (i >= 0) rlimits[i] = r; else rlimits.push(r);
  }
  out.rlimits = rlimits;

  const sysctls: Record<string, string> = {};
  for (const s of o.sysctls ?? []) {
    const [k, v] = parseSysctl(s, ctx.hostNetwork);
    if (k.startsWith('net.') && !plan.namespaces.includes('net')) throw fail('EINVAL', `invalid --sysctl "${s}": needs a network namespace`);
    sysctls[k] = v;
  }
  if (Object.keys(sysctls).length) out.sysctls = sysctls;

  if (o.readOnly) out.readonlyRootfs = true;
  if (o.tty) out.tty = true;
  if (o.init) {
    out.mounts.push({ source: ctx.initBinary, destination: INIT_PATH_IN_CONTAINER, type: 'bind', flags: ['bind', 'ro'] });
    out.args = [INIT_PATH_IN_CONTAINER, '--', ...plan.args];
  }
  return out;
}
