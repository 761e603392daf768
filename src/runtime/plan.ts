/**
 * The launch plan: everything the native launcher (native/tspod-launch) needs to start one
 * container, computed in TypeScript and executed verbatim in C. Plain data, no behaviour.
 * The text format is documented in native/README.md; `serializePlan` is its only writer.
 */
import { fail } from '../util/errors.js';

export type Namespace = 'pid' | 'mount' | 'uts' | 'ipc' | 'net' | 'cgroup';

/** Flags understood by the launcher; anything else is rejected there and here. */
export type MountFlag =
  | 'ro' | 'nosuid' | 'nodev' | 'noexec' | 'bind' | 'rbind'
  | 'private' | 'rprivate' | 'slave' | 'rslave' | 'shared' | 'rshared'
  | 'strictatime' | 'relatime' | 'noatime';

const MOUNT_FLAGS: ReadonlySet<string> = new Set<MountFlag>([
  'ro', 'nosuid', 'nodev', 'noexec', 'bind', 'rbind', 'private', 'rprivate', 'slave', 'rslave',
  'shared', 'rshared', 'strictatime', 'relatime', 'noatime',
]);

/**
 * A mount made on the host side of the container's mount namespace before pivot_root
 * (typically the overlay that becomes the rootfs). `destination` is an absolute host path;
 * `chdir` lets relative overlay lowerdir paths keep the options under one page.
 */
export interface PreMount {
  source?: string;
  destination: string;
  type?: string;
  flags: MountFlag[];
  data?: string;
  chdir?: string;
}

/** A mount inside the container; `destination` is a container path, created if missing. */
export interface MountSpec {
  source?: string;
  destination: string;
  type?: string;
  flags: MountFlag[];
  data?: string;
}

export interface DeviceNode {
  path: string;
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  /** permission bits, e.g. 0o666 */
  mode: number;
  uid: number;
  gid: number;
}

export interface RlimitSpec {
  /** NOFILE, NPROC, CORE, … (also accepted: "RLIMIT_NOFILE", "nofile") */
  type: string;
  soft: number | 'unlimited';
  hard: number | 'unlimited';
}

export interface LaunchPlan {
  /** Host path of the directory that becomes "/". */
  rootfs: string;
  /** Must include 'mount'. */
  namespaces: Namespace[];
  premounts: PreMount[];
  mounts: MountSpec[];
  devices: DeviceNode[];
  symlinks: { target: string; path: string }[];
  maskedPaths: string[];
  readonlyPaths: string[];
  /** Needs the 'uts' namespace. */
  hostname?: string;
  cwd: string;
  /** Create a missing cwd (owned by the user) instead of failing, as docker does for WORKDIR. */
  mkdirCwd?: boolean;
  /** KEY=VALUE; the process environment is exactly this. */
  env: string[];
  args: string[];
  user: { uid: number; gid: number; additionalGids: number[] };
  rlimits: RlimitSpec[];
  /** Capability numbers to keep; undefined keeps everything (privileged). */
  capabilities?: number[];
  noNewPrivileges: boolean;
  /** Bring up `lo` in the new network namespace (needs 'net'). */
  loopbackUp?: boolean;
  /** Host path of a raw BPF program (struct sock_filter[], little endian). */
  seccompProgramPath?: string;
  /** Namespaced sysctls to set (--sysctl), written by the init in its own namespaces. */
  sysctls?: Record<string, string>;
  /** Make the root mount read-only after pivot_root (--read-only). */
  readonlyRootfs?: boolean;
  /** fd 0 is a pseudo-terminal slave: the init makes it its controlling terminal (-t). */
  tty?: boolean;
  /** Wait for the go-ahead after reporting the pid (see launch()). */
  sync: boolean;
  /**
   * Join mode (exec): enter the namespaces and root of this running init instead of creating
   * new ones; rootfs, mounts and the like are then ignored (native/join.c).
   */
  join?: { pid: number; startTime: number };
  /** --network container:NAME: share this running init's network namespace (no 'net' in namespaces; native/net.c). */
  joinNet?: { pid: number; startTime: number };
}

const RLIMITS = new Set([
  'CPU', 'FSIZE', 'DATA', 'STACK', 'CORE', 'RSS', 'NPROC', 'NOFILE', 'MEMLOCK', 'AS', 'LOCKS',
  'SIGPENDING', 'MSGQUEUE', 'NICE', 'RTPRIO', 'RTTIME',
]);

/**
 * Percent-encodes one field: bytes outside 0x21–0x7E and '%' become %XX (of the UTF-8 bytes);
 * an empty or absent value is "-", and a literal "-" is "%2D". NUL cannot be carried.
 */
export function encodeField(value: string | undefined): string {
  if (value === undefined || value === '') return '-';
  if (value === '-') return '%2D';
  if (value.includes('\0')) throw fail('EINVAL', `encode plan field ${JSON.stringify(value)}: contains a NUL byte`);
  let out = '';
  for (const b of Buffer.from(value, 'utf8')) {
    if (b >= 0x21 && b <= 0x7e && b !== 0x25) out += String.fromCharCode(b);
    else out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function absolute(what: string, p: string): string {
  if (!p.startsWith('/')) throw fail('EINVAL', `serialize plan: ${what} "${p}" is not an absolute path`);
  return p;
}

function uint(what: string, n: number, max = 0xfffffffe): string {
  if (!Number.isInteger(n) || n < 0 || n > max) throw fail('EINVAL', `serialize plan: bad ${what} ${n}`);
  return String(n);
}

function flags(dest: string, list: MountFlag[]): string {
  for (const f of list) if (!MOUNT_FLAGS.has(f)) throw fail('EINVAL', `serialize plan: unknown mount flag "${f}" for ${dest}`);
  return list.length === 0 ? '-' : encodeField(list.join(','));
}

function limit(v: number | 'unlimited'): string {
  return v === 'unlimited' ? 'unlimited' : uint('rlimit value', v, Number.MAX_SAFE_INTEGER);
}

/** The plan in the launcher's line format, ending with "end\n". Throws EINVAL on a bad plan. */
export function serializePlan(plan: LaunchPlan): string {
  const lines: string[] = [];
  const line = (kw: string, ...fields: (string | undefined)[]) =>
    lines.push([kw, ...fields.map(encodeField)].join(' '));
  const raw = (kw: string, ...fields: string[]) => lines.push([kw, ...fields].join(' '));

  line('rootfs', absolute('rootfs', plan.rootfs));
  if (!plan.namespaces.includes('mount')) throw fail('EINVAL', 'serialize plan: the mount namespace is required');
  if (plan.hostname !== undefined && !plan.namespaces.includes('uts'))
    throw fail('EINVAL', 'serialize plan: a hostname needs the uts namespace');
  line('namespaces', ...new Set(plan.namespaces));
  for (const m of plan.premounts)
    raw('premount', encodeField(m.source), encodeField(absolute('premount destination', m.destination)),
      encodeField(m.type), flags(m.destination, m.flags), encodeField(m.data), encodeField(m.chdir));
  for (const m of plan.mounts)
    raw('mount', encodeField(m.source), encodeField(absolute('mount destination', m.destination)),
      encodeField(m.type), flags(m.destination, m.flags), encodeField(m.data));
  for (const d of plan.devices) {
    if (!['c', 'b', 'p'].includes(d.type)) throw fail('EINVAL', `serialize plan: bad device type "${d.type}" for ${d.path}`);
    raw('mknod', encodeField(absolute('device path', d.path)), d.type, uint('major', d.major, 0xfff),
      uint('minor', d.minor, 0xfffff), '0' + Number(uint('mode', d.mode, 0o7777)).toString(8),
      uint('uid', d.uid), uint('gid', d.gid));
  }
  for (const s of plan.symlinks) line('symlink', s.target, absolute('symlink path', s.path));
  for (const p of plan.maskedPaths) line('mask', absolute('masked path', p));
  for (const p of plan.readonlyPaths) line('readonly', absolute('read-only path', p));
  if (plan.hostname !== undefined) line('hostname', plan.hostname);
  line('cwd', absolute('cwd', plan.cwd));
  if (plan.mkdirCwd) raw('mkdir-cwd');
  for (const e of plan.env) {
    if (e.indexOf('=') <= 0) throw fail('EINVAL', `serialize plan: env entry "${e}" is not KEY=VALUE`);
    line('env', e);
  }
  if (plan.args.length === 0 || plan.args[0] === '') throw fail('EINVAL', 'serialize plan: no command');
  line('args', ...plan.args);
  raw('user', uint('uid', plan.user.uid), uint('gid', plan.user.gid),
    ...plan.user.additionalGids.map((g) => uint('gid', g)));
  for (const r of plan.rlimits) {
    const name = r.type.toUpperCase().replace(/^RLIMIT_/, '');
    if (!RLIMITS.has(name)) throw fail('EINVAL', `serialize plan: unknown rlimit "${r.type}"`);
    if (r.hard !== 'unlimited' && (r.soft === 'unlimited' || r.soft > r.hard))
      throw fail('EINVAL', `serialize plan: rlimit ${name} soft limit above hard limit`);
    raw('rlimit', name, limit(r.soft), limit(r.hard));
  }
  if (plan.capabilities !== undefined)
    raw('caps', ...[...new Set(plan.capabilities)].sort((a, b) => a - b).map((c) => uint('capability', c, 63)));
  if (plan.noNewPrivileges) raw('no-new-privs');
  for (const [k, v] of Object.entries(plan.sysctls ?? {})) {
    if (!/^[a-zA-Z0-9_]+(\.[a-zA-Z0-9_*-]+)+$/.test(k)) throw fail('EINVAL', `serialize plan: bad sysctl name "${k}"`);
    line('sysctl', k, v);
  }
  if (plan.readonlyRootfs) raw('readonly-rootfs');
  if (plan.tty) raw('tty');
  if (plan.seccompProgramPath !== undefined) line('seccomp', absolute('seccomp program path', plan.seccompProgramPath));
  if (plan.loopbackUp) {
    if (!plan.namespaces.includes('net')) throw fail('EINVAL', 'serialize plan: loopbackUp needs the net namespace');
    raw('loopback-up');
  }
  if (plan.sync) raw('sync');
  if (plan.join) raw('join', uint('join pid', plan.join.pid, 0x3fffffff), uint('join start time', plan.join.startTime, Number.MAX_SAFE_INTEGER));
  if (plan.joinNet) raw('join-net', uint('join-net pid', plan.joinNet.pid, 0x3fffffff), uint('join-net start time', plan.joinNet.startTime, Number.MAX_SAFE_INTEGER));
  raw('end');
  return lines.join('\n') + '\n';
}
