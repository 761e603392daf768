/**
 * The security and everyday `docker run` options, between the spec builder and the launcher:
 * parses -v/--mount/--tmpfs, resolves named (and anonymous) volumes to their directories under
 * the data root (creating them, seeding an empty one from the image, marking it used by this
 * container), then lets runtime/options.ts apply everything to the plan.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EngineRoots } from '../state/paths.js';
import type { LaunchPlan } from '../runtime/plan.js';
import type { ImageConfig } from '../oci/types.js';
import { applyPlanOptions, parseDevice, parseSignal, initBinaryPath, parseMountFlag, parseTmpfsFlag, parseVolumeFlag, readEnvFiles, type UserMount } from '../runtime/options.js';
import { launcherPath } from '../runtime/launcher.js';
import { attachVolume, createVolume, releaseVolumes, seedVolume } from '../volume/index.js';
import { rawTerminalOutput, realSys } from '../sys/index.js';
import { fail, messageOf } from '../util/errors.js';
import { writeFileAtomic } from '../util/fs.js';

export interface ContainerRunOptions {
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  securityOpt?: string[];
  readOnly?: boolean;
  /** -v / --volume */
  volumes?: string[];
  /** --mount */
  mounts?: string[];
  tmpfs?: string[];
  devices?: string[];
  shmSize?: string;
  ulimits?: string[];
  sysctls?: string[];
  init?: boolean;
  tty?: boolean;
  /** -i: keep stdin attached (with -t: relayed to the terminal). */
  interactive?: boolean;
  envFile?: string[];
  /** --label KEY=VALUE, --label-file is not supported. */
  labels?: string[];
  /** --stop-signal NAME|NUMBER and --stop-timeout SECONDS: recorded for stop (issue 7's monitor applies them). */
  stopSignal?: string;
  stopTimeout?: number;
}

/** The fields of the container record that come from run options: labels, stop signal and timeout. */
export function recordedRunOptions(o: ContainerRunOptions, config: ImageConfig): { labels?: Record<string, string>; stopSignal?: string; stopTimeout?: number } {
  const out: { labels?: Record<string, string>; stopSignal?: string; stopTimeout?: number } = {};
  if (o.labels?.length) {
    out.labels = {};
    for (const l of o.labels) {
      const eq = l.indexOf('=');
      const key = eq < 0 ? l : l.slice(0, eq);
      if (key === '') throw fail('EINVAL', `invalid --label "${l}": empty key`);
      out.labels[key] = eq < 0 ? '' : l.slice(eq + 1);
    }
  }
  const sig = o.stopSignal ?? config.config?.StopSignal;
  if (sig !== undefined) out.stopSignal = parseSignal(sig, o.stopSignal !== undefined ? '--stop-signal' : "the image's StopSignal");
  if (o.stopTimeout !== undefined) {
    if (!Number.isInteger(o.stopTimeout) || o.stopTimeout < -1) throw fail('EINVAL', `invalid --stop-timeout "${o.stopTimeout}": want seconds, or -1 to wait forever`);
    out.stopTimeout = o.stopTimeout;
  }
  return out;
}

/**
 * -t in the foreground: the launcher relays between the user's terminal and the container's pty;
 * here the user's terminal goes to raw mode for the run (restored whatever happens), and without
 * -i the container gets no stdin, as with docker.
 */
export async function withTerminal<T>(o: { tty?: boolean; interactive?: boolean }, fn: (extra: { stdio?: ['inherit' | 'ignore', 'inherit', 'inherit'] }) => Promise<T>): Promise<T> {
  // Without -i the container's stdin is /dev/null, as docker's: a `tspod run` in a `while read` loop must
  // not swallow the loop's input.
  if (!o.tty) return fn({ stdio: [o.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'] });
  if (o.interactive && !process.stdin.isTTY) throw fail('EINVAL', 'run -it: the input device is not a TTY');
  const raw = o.interactive === true;
  if (raw) {
    process.stdin.setRawMode(true);
    rawTerminalOutput(0);
  }
  try {
    return await fn({ stdio: [o.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'] });
  } finally {
    if (raw) {
      process.stdin.setRawMode(false);
      process.stdin.pause();
    }
  }
}

export { readEnvFiles };

/** The volumes a container uses, to release when it is removed. */
export interface VolumeUse { names: string[] }

/**
 * Applies the options to a plan. Volumes are created/seeded/attached here; the returned `volumes`
 * must be released (releaseContainerVolumes) when the container is removed.
 */
export async function withRunOptions(
  o: ContainerRunOptions,
  ctx: { roots: EngineRoots; id: string; dir: string; lowerDirs: string[]; hostNetwork: boolean },
  plan: LaunchPlan,
  volumes: VolumeUse,
): Promise<LaunchPlan> {
  const parsed: UserMount[] = [
    ...(o.volumes ?? []).map(parseVolumeFlag),
    ...(o.mounts ?? []).map(parseMountFlag),
    ...(o.tmpfs ?? []).map(parseTmpfsFlag),
  ];
  const targets = new Set<string>();
  for (const m of parsed) {
    if (targets.has(m.target)) throw fail('EINVAL', `duplicate mount point: ${m.target}`);
    targets.add(m.target);
  }
  const resolved: UserMount[] = [];
  const described: InspectMount[] = [];
  for (const m of parsed) {
    if (m.type === 'bind') {
      if (!existsSync(m.source)) {
        // docker's -v creates a missing host directory; --mount type=bind refuses it
        if (!m.createSource) throw fail('EINVAL', `invalid mount config for type "bind": bind source path does not exist: ${m.source}`);
        await mkdir(m.source, { recursive: true });
      }
      resolved.push(m);
      described.push({ Type: 'bind', Source: m.source, Destination: m.target, Mode: '', RW: !m.readonly, Propagation: m.propagation ?? 'rprivate' });
      continue;
    }
    if (m.type === 'tmpfs') {
      resolved.push(m);
      described.push({ Type: 'tmpfs', Source: '', Destination: m.target, Mode: '', RW: !m.flags.includes('ro'), Propagation: '' });
      continue;
    }
    const v = await createVolume(ctx.roots, m.name, { anonymous: m.name === undefined });
    await attachVolume(ctx.roots, v.name, ctx.id);
    volumes.names.push(v.name);
    if (!m.noCopy) {
      try {
        await seedVolume(v.mountpoint, ctx.lowerDirs, m.target, realSys());
      } catch (err) {
        throw fail('ESYS', `copy image content into volume ${v.name} at ${m.target}: ${messageOf(err)}`, err);
      }
    }
    resolved.push({ type: 'bind', source: v.mountpoint, target: m.target, readonly: m.readonly });
    described.push({ Type: 'volume', Name: v.name, Source: v.mountpoint, Destination: m.target, Driver: 'local', Mode: '', RW: !m.readonly, Propagation: '' });
  }
  if (described.length) await writeFileAtomic(mountsFile(ctx.dir), JSON.stringify(described) + '\n', 0o600);
  return applyPlanOptions(plan, {
    ...o,
    mounts: resolved,
    stateDir: ctx.dir,
    seccompCacheDir: join(ctx.roots.runroot, 'seccomp-cache'),
  }, { hostNetwork: ctx.hostNetwork, initBinary: initBinaryPath(launcherPath()) });
}

/** A user mount as `docker inspect` lists it under Mounts. */
export interface InspectMount {
  Type: 'bind' | 'volume' | 'tmpfs';
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
}

const mountsFile = (dir: string) => join(dir, 'mounts.json');

/** The container's -v/--mount/--tmpfs mounts as saved at create (none when it has none). */
export async function readInspectMounts(dir: string): Promise<InspectMount[]> {
  try {
    return JSON.parse(await readFile(mountsFile(dir), 'utf8')) as InspectMount[];
  } catch {
    return [];
  }
}

/** Drops the container's use of its volumes; `removeAnonymous` for --rm (docker removes anonymous volumes then). */
export async function releaseContainerVolumes(roots: EngineRoots, volumes: VolumeUse, id: string, removeAnonymous: boolean): Promise<void> {
  await releaseVolumes(roots, volumes.names, id, removeAnonymous);
}

export function seccompFile(dir: string): string {
  return join(dir, 'seccomp.bpf');
}

/**
 * The device cgroup rules of a container, as docker's defaults: mknod of any node is allowed, but only
 * the standard devices (null, zero, full, random, urandom, tty, console, ptmx, the pts, tun) and those
 * given with --device may be opened. Undefined (no restriction) with --privileged.
 */
export function deviceRules(o: Pick<ContainerRunOptions, 'privileged' | 'devices'>): string[] | undefined {
  if (o.privileged) return undefined;
  const rules = ['c *:* m', 'b *:* m', 'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm',
    'c 5:0 rwm', 'c 5:1 rwm', 'c 5:2 rwm', 'c 136:* rwm', 'c 10:200 rwm'];
  for (const spec of o.devices ?? []) {
    const d = parseDevice(spec);
    const perms = spec.split(':').find((p, i) => i > 0 && /^[rwm]+$/.test(p)) ?? 'rwm';
    rules.push(`${d.type} ${d.major}:${d.minor} ${perms}`);
  }
  return rules;
}

