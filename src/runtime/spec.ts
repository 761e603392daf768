/**
 * The spec builder: image config + run options → the launcher's plan. Pure computation apart from
 * reading /etc/passwd and /etc/group from the image's layers; every decision about what the
 * container sees is made here, in TypeScript, and the launcher only executes it (DESIGN.md §2).
 *
 * Defaults follow Docker's (moby's oci/defaults.go and daemon/oci_linux.go): the same mounts,
 * device nodes, capabilities, masked and read-only paths.
 */
import type { ImageConfig } from '../oci/types.js';
import type { CgroupView } from './cgroups/types.js';
import type { LaunchPlan, MountSpec } from './plan.js';
import { fail } from '../util/errors.js';
import { resolveUser, type ImageFiles } from './user.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's default capability set (capability numbers from linux/capability.h). Mask 0xa80425fb. */
export const DEFAULT_CAPABILITIES: Record<string, number> = {
  CHOWN: 0, DAC_OVERRIDE: 1, FOWNER: 3, FSETID: 4, KILL: 5, SETGID: 6, SETUID: 7, SETPCAP: 8,
  NET_BIND_SERVICE: 10, NET_RAW: 13, SYS_CHROOT: 18, MKNOD: 27, AUDIT_WRITE: 29, SETFCAP: 31,
};

export const DEFAULT_MASKED_PATHS = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
export const DEFAULT_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export type NetworkMode = 'none' | 'host';

export interface ContainerSpecInput {
  config: ImageConfig;
  /** The overlay's mount point on the host (it is mounted inside the container's mount namespace). */
  rootfs: string;
  /** The overlay mount options, and the directory they are relative to (lowerdir paths are relative). */
  overlay: { data: string; chdir: string };
  /** Files of the image, read through its layers (for /etc/passwd and /etc/group). */
  imageFiles: ImageFiles;
  hostname: string;
  /** Command given on the command line; replaces the image's Cmd. */
  command: string[];
  entrypoint?: string;
  env: string[];
  user?: string;
  workdir?: string;
  network: NetworkMode;
  /** Host files bind-mounted over /etc/hosts, /etc/hostname, /etc/resolv.conf. */
  etcFiles: { hosts: string; hostname: string; resolvConf: string };
  tty?: boolean;
  /** The host's cgroup hierarchies (driver.view()): mounted at /sys/fs/cgroup. Absent: no cgroup file system inside. */
  cgroups?: CgroupView;
}

export const CGROUP_DIR = '/sys/fs/cgroup';

/**
 * Docker's /sys/fs/cgroup, read-only: each hierarchy's root is the container's own cgroup, since the
 * init enters its cgroup namespace before the mounts (so `cat /sys/fs/cgroup/memory/memory.limit_in_bytes`
 * shows --memory, as runtimes and JVMs read it). v2: one cgroup2 mount. v1: a tmpfs with one cgroup
 * mount per hierarchy, named as on the host, a symlink per co-mounted controller ("cpu" → "cpu,cpuacct"),
 * and the tmpfs made read-only after them.
 */
export function cgroupFs(view: CgroupView | undefined): Pick<LaunchPlan, 'mounts' | 'symlinks' | 'readonlyPaths'> {
  const flags: MountSpec['flags'] = ['nosuid', 'noexec', 'nodev', 'ro'];
  if (!view) return { mounts: [], symlinks: [], readonlyPaths: [] };
  if (view.version === 2) return { mounts: [{ source: 'cgroup', destination: CGROUP_DIR, type: 'cgroup2', flags }], symlinks: [], readonlyPaths: [] };
  const mounts: MountSpec[] = [{ source: 'tmpfs', destination: CGROUP_DIR, type: 'tmpfs', flags: ['nosuid', 'noexec', 'nodev'], data: 'mode=755' }];
  const symlinks: LaunchPlan['symlinks'] = [];
  for (const h of view.hierarchies) {
    // A hierarchy of names only (name=systemd) is mounted with "none": no controller.
    const data = h.controllers.some((c) => !c.startsWith('name=')) ? h.controllers.join(',') : ['none', ...h.controllers].join(',');
    mounts.push({ source: 'cgroup', destination: `${CGROUP_DIR}/${h.name}`, type: 'cgroup', flags, data });
    for (const c of h.controllers) {
      if (h.controllers.length > 1 && !c.startsWith('name=') && c !== h.name) symlinks.push({ target: h.name, path: `${CGROUP_DIR}/${c}` });
    }
  }
  return { mounts, symlinks, readonlyPaths: [CGROUP_DIR] };
}

/** Entrypoint + Cmd as docker combines them: --entrypoint resets the image's Cmd; command args replace Cmd. */
export function containerArgs(config: ImageConfig, command: string[], entrypoint?: string): string[] {
  const image = config.config ?? {};
  const ep = entrypoint !== undefined ? (entrypoint === '' ? [] : [entrypoint]) : image.Entrypoint ?? [];
  const cmd = command.length > 0 ? command : entrypoint !== undefined ? [] : image.Cmd ?? [];
  const args = [...ep, ...cmd];
  if (args.length === 0) throw fail('EINVAL', 'run: no command specified: the image has no Entrypoint or Cmd and none was given');
  return args;
}

/** Merges KEY=VALUE lists, later ones winning, keeping first-seen order. */
export function mergeEnv(...lists: string[][]): string[] {
  const map = new Map<string, string>();
  for (const list of lists) {
    for (const kv of list) {
      const eq = kv.indexOf('=');
      const key = eq < 0 ? kv : kv.slice(0, eq);
      if (key === '') throw fail('EINVAL', `invalid environment variable "${kv}": empty name`);
      if (eq < 0) {
        // "-e NAME" passes the caller's value through, as docker does; unset in the caller means absent.
        const v = process.env[key];
        if (v !== undefined) map.set(key, `${key}=${v}`);
        continue;
      }
      map.set(key, kv);
    }
  }
  return [...map.values()];
}

export async function buildPlan(input: ContainerSpecInput): Promise<LaunchPlan> {
  const image = input.config.config ?? {};
  const args = containerArgs(input.config, input.command, input.entrypoint);
  const user = await resolveUser(input.user ?? image.User ?? '', input.imageFiles);
  const base = mergeEnv([`PATH=${DEFAULT_PATH}`], image.Env ?? [], [`HOSTNAME=${input.hostname}`],
    input.tty ? ['TERM=xterm'] : [], input.env);
  const env = base.some((kv) => kv.startsWith('HOME=')) ? base : [...base, `HOME=${user.home}`];

  const cgroups = cgroupFs(input.cgroups);
  const mounts: MountSpec[] = [
    { source: 'proc', destination: '/proc', type: 'proc', flags: ['nosuid', 'noexec', 'nodev'] },
    { source: 'tmpfs', destination: '/dev', type: 'tmpfs', flags: ['nosuid', 'strictatime'], data: 'mode=755,size=65536k' },
    { source: 'devpts', destination: '/dev/pts', type: 'devpts', flags: ['nosuid', 'noexec'], data: 'newinstance,ptmxmode=0666,mode=0620,gid=5' },
    { source: 'shm', destination: '/dev/shm', type: 'tmpfs', flags: ['nosuid', 'noexec', 'nodev'], data: 'mode=1777,size=65536k' },
    { source: 'mqueue', destination: '/dev/mqueue', type: 'mqueue', flags: ['nosuid', 'noexec', 'nodev'] },
    { source: 'sysfs', destination: '/sys', type: 'sysfs', flags: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ...cgroups.mounts,
    { source: input.etcFiles.resolvConf, destination: '/etc/resolv.conf', type: 'bind', flags: ['bind', 'nosuid', 'nodev', 'noexec'] },
    { source: input.etcFiles.hostname, destination: '/etc/hostname', type: 'bind', flags: ['bind', 'nosuid', 'nodev', 'noexec'] },
    { source: input.etcFiles.hosts, destination: '/etc/hosts', type: 'bind', flags: ['bind', 'nosuid', 'nodev', 'noexec'] },
  ];

  return {
    rootfs: input.rootfs,
    namespaces: input.network === 'host' ? ['pid', 'mount', 'uts', 'ipc', 'cgroup'] : ['pid', 'mount', 'uts', 'ipc', 'net', 'cgroup'],
    premounts: [{ source: 'overlay', destination: input.rootfs, type: 'overlay', flags: [], data: input.overlay.data, chdir: input.overlay.chdir }],
    mounts,
    devices: ['null:1:3', 'zero:1:5', 'full:1:7', 'random:1:8', 'urandom:1:9', 'tty:5:0'].map((s) => {
      const [name, major, minor] = s.split(':') as [string, string, string];
      return { path: `/dev/${name}`, type: 'c' as const, major: Number(major), minor: Number(minor), mode: 0o666, uid: 0, gid: 0 };
    }),
    symlinks: [
      { target: '/proc/self/fd', path: '/dev/fd' },
      { target: '/proc/self/fd/0', path: '/dev/stdin' },
      { target: '/proc/self/fd/1', path: '/dev/stdout' },
      { target: '/proc/self/fd/2', path: '/dev/stderr' },
      { target: 'pts/ptmx', path: '/dev/ptmx' },
      { target: '/proc/kcore', path: '/dev/core' },
      ...cgroups.symlinks,
    ],
    maskedPaths: DEFAULT_MASKED_PATHS,
    readonlyPaths: [...DEFAULT_READONLY_PATHS, ...cgroups.readonlyPaths],
    hostname: input.network === 'host' ? undefined : input.hostname,
    cwd: input.workdir || image.WorkingDir || '/',
    mkdirCwd: true,
    env,
    args,
    user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
    rlimits: [],
    capabilities: Object.values(DEFAULT_CAPABILITIES),
    noNewPrivileges: false,
    loopbackUp: input.network !== 'host',
    sync: true,
  };
}
