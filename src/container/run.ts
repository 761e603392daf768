/**
 * run: image → container snapshot → plan → cgroup → launcher → wait → teardown (DESIGN.md §3).
 *
 * Acquisitions and their releases, in order; each release runs whatever happens after its
 * acquisition (an error, a signal to tspod, a failed launch):
 *   container record + name       → removed with --rm, else marked exited
 *   snapshot (upper/work dirs)    → removed with --rm
 *   cgroup                         → destroyed (remaining processes killed) when the container ends
 *   overlay mount                  → made inside the container's own mount namespace, so the kernel
 *                                    releases it with the namespace: it cannot leak on the host
 */
import { mkdir, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Store } from '../../store/index.js';
import type { EngineRoots } from '../state/paths.js';
import { containersRoot } from '../state/paths.js';
import { ContainerStore, randomName, type ContainerRecord } from '../state/containers.js';
import type { LocalImage } from '../image/local.js';
import { buildPlan, type NetworkMode } from '../runtime/spec.js';
import { launch } from '../runtime/launcher.js';
import { detectCgroups, parseBytes, parseCpus, type Cgroup, type CgroupLimits } from '../runtime/cgroups/index.js';
import { layerFiles } from '../mount/lookup.js';
import { overlayOptions } from '../mount/overlay.js';
import { realSys } from '../sys/index.js';
import { fail, messageOf, TspodError } from '../util/errors.js';

export interface RunOptions {
  roots: EngineRoots;
  /** The open store of `roots` (the caller owns it). */
  store: Store;
  /** The image, already in the store (see findImage; the library's run() pulls it when missing). */
  image: LocalImage;
  command?: string[];
  name?: string;
  hostname?: string;
  env?: string[];
  user?: string;
  workdir?: string;
  entrypoint?: string;
  /** docker units: "64m", "1g". */
  memory?: string;
  /** A fraction of CPUs: "0.5". */
  cpus?: string;
  pidsLimit?: number;
  cgroupParent?: string;
  network?: NetworkMode;
  rm?: boolean;
}

export interface RunResult {
  id: string;
  name: string;
  /** The container's status as a shell reports it: the exit code, or 128+N for signal N. */
  exitCode: number;
  signal?: number;
  oomKilled: boolean;
}

export async function runContainer(opts: RunOptions): Promise<RunResult> {
  const limits = parseLimits(opts);
  const network = opts.network ?? 'none';
  if (network !== 'none' && network !== 'host') {
    throw fail('EINVAL', `invalid --network "${network}": supported values are none and host`);
  }
  const { store, image } = opts;
  const containers = new ContainerStore(containersRoot(opts.roots));
  const id = ContainerStore.newId();
  const rec = await claimName(containers, {
    id,
    name: opts.name ?? '',
    image: image.name ?? image.imageId,
    imageId: image.imageId,
    created: new Date().toISOString(),
    state: 'created',
  }, opts.name === undefined);

  // Signals that arrive before the container runs must not kill tspod half-way through set-up;
  // once the launcher runs, launch() forwards them to the container.
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => { interrupted ??= sig; };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);

  let cgroup: Cgroup | undefined;
  try {
    const snapshot = await store.createSnapshot(id, image.chain);
    const dir = containers.containerDir(id);
    const rootfs = join(dir, 'rootfs');
    await mkdir(rootfs, { recursive: true });
    const hostname = opts.hostname ?? id.slice(0, 12);
    const etcFiles = await writeEtcFiles(dir, hostname, network);

    const driver = await detectCgroups();
    cgroup = await driver.create(id, limits, opts.cgroupParent ? { parent: opts.cgroupParent } : undefined);

    const plan = await buildPlan({
      config: image.config,
      rootfs,
      overlay: overlayOptions({ chdir: store.root, lowers: await store.overlayLowers(image.chain), upper: snapshot.upperDir, work: snapshot.workDir, emptyLower: join(dir, 'empty') }),
      imageFiles: layerFiles(snapshot.lowerDirs, realSys()),
      hostname,
      command: opts.command ?? [],
      entrypoint: opts.entrypoint,
      env: opts.env ?? [],
      user: opts.user,
      workdir: opts.workdir,
      network,
      etcFiles,
    });
    if (interrupted) throw fail('ELAUNCH', `run ${rec.name}: interrupted by ${interrupted}`);

    const cg = cgroup;
    await containers.save({ ...rec, state: 'running' });
    const result = await launch(plan, { onPid: (pid) => cg.addProcess(pid) });
    const oomKilled = await cgroup.oomKilled().catch(() => false);
    const exitCode = result.signal !== undefined ? 128 + result.signal : result.exitCode;
    if (!opts.rm) await containers.save({ ...rec, state: 'exited', exitCode, oomKilled, finished: new Date().toISOString() });
    return { id, name: rec.name, exitCode, signal: result.signal, oomKilled };
  } catch (err) {
    if (!opts.rm) await containers.save({ ...rec, state: 'exited', exitCode: exitCodeOf(err), finished: new Date().toISOString() }).catch(() => {});
    throw err;
  } finally {
    for (const s of signals) process.off(s, onSignal);
    const failures: string[] = [];
    if (cgroup) await cgroup.destroy().catch((e) => failures.push(`remove cgroup ${cgroup!.name}: ${messageOf(e)}`));
    if (opts.rm) {
      await store.removeSnapshot(id).catch((e) => failures.push(messageOf(e)));
      await containers.remove(rec).catch((e) => failures.push(messageOf(e)));
    }
    if (failures.length) process.stderr.write(`tspod: cleanup of container ${rec.name}: ${failures.join('; ')}\n`);
  }
}

function exitCodeOf(err: unknown): number {
  if (err instanceof TspodError && err.code === 'ENOCMD') return 127;
  if (err instanceof TspodError && err.code === 'ENOEXEC') return 126;
  return 125;
}

async function claimName(containers: ContainerStore, rec: ContainerRecord, generated: boolean): Promise<ContainerRecord> {
  for (let attempt = 0; ; attempt++) {
    const r = generated ? { ...rec, name: attempt < 5 ? randomName() : `${randomName()}_${rec.id.slice(0, 6)}` } : rec;
    try {
      await containers.create(r);
      return r;
    } catch (err) {
      if (!(generated && err instanceof TspodError && err.code === 'EEXIST' && attempt < 6)) throw err;
    }
  }
}

export function parseLimits(opts: Pick<RunOptions, 'memory' | 'cpus' | 'pidsLimit'>): CgroupLimits {
  const limits: CgroupLimits = {};
  if (opts.memory !== undefined) {
    limits.memoryBytes = parseBytes(opts.memory, '--memory');
    if (limits.memoryBytes < 6 * 1024 * 1024) throw fail('EINVAL', `invalid --memory "${opts.memory}": minimum memory limit allowed is 6MB`);
  }
  if (opts.cpus !== undefined) {
    const { quotaUs, periodUs } = parseCpus(opts.cpus);
    limits.cpuQuotaUs = quotaUs;
    limits.cpuPeriodUs = periodUs;
  }
  if (opts.pidsLimit !== undefined) {
    if (!Number.isInteger(opts.pidsLimit) || opts.pidsLimit === 0 || opts.pidsLimit < -1) {
      throw fail('EINVAL', `invalid --pids-limit "${opts.pidsLimit}": want a positive number, or -1 for unlimited`);
    }
    if (opts.pidsLimit > 0) limits.pidsLimit = opts.pidsLimit;
  }
  return limits;
}

/** /etc/hosts, /etc/hostname and /etc/resolv.conf for the container, as docker writes them. */
async function writeEtcFiles(dir: string, hostname: string, network: NetworkMode) {
  const hosts = join(dir, 'hosts');
  const hostnameFile = join(dir, 'hostname');
  const resolvConf = join(dir, 'resolv.conf');
  const hostsText = network === 'host'
    ? await readFile('/etc/hosts', 'utf8').catch(() => '127.0.0.1\tlocalhost\n')
    : `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.1.1\t${hostname}\n`;
  await writeFile(hosts, hostsText);
  await writeFile(hostnameFile, hostname + '\n');
  await writeFile(resolvConf, await hostResolvConf(network));
  await mkdir(join(dir, 'empty'), { recursive: true });
  return { hosts, hostname: hostnameFile, resolvConf };
}

/** The host's resolv.conf; with a network namespace, loopback resolvers (systemd-resolved's 127.0.0.53) cannot work inside, so they are dropped, as docker does. */
async function hostResolvConf(network: NetworkMode): Promise<string> {
  const text = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  if (network === 'host') return text;
  return text.split('\n').filter((l) => !/^\s*nameserver\s+(127\.|::1\s*$)/.test(l)).join('\n');
}
