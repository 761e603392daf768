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
import { availableParallelism } from 'node:os';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Store } from '../../store/index.js';
import type { EngineRoots } from '../state/paths.js';
import { containersRoot } from '../state/paths.js';
import { ContainerStore, randomName, type ContainerRecord } from '../state/containers.js';
import type { LocalImage } from '../image/local.js';
import { buildPlan } from '../runtime/spec.js';
import { checkNetworkOptions, prepareNetwork, type ContainerNetwork, type NetworkRunOptions } from './network.js';
import { launch } from '../runtime/launcher.js';
import { detectCgroups, parseBytes, parseCpus, prewarmAttach, type Cgroup, type CgroupLimits } from '../runtime/cgroups/index.js';
import { layerFiles } from '../mount/lookup.js';
import { overlayOptions } from '../mount/overlay.js';
import { realSys } from '../sys/index.js';
import { checkRestartPolicy, createDetached, foregroundOwner } from './create.js';
import { saveCreated } from './start.js';
import { saveAttachConfig } from './attach-io.js';
import { deviceRules, recordedRunOptions, withRunOptions, withTerminal, releaseContainerVolumes, readEnvFiles, type ContainerRunOptions, type VolumeUse } from './run-options.js';
import { fail, messageOf, TspodError } from '../util/errors.js';
import { inspectConfig, inspectHostConfig } from './inspect-config.js';

export interface RunOptions extends NetworkRunOptions, ContainerRunOptions {
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
  /** Memory plus swap in docker units, or "-1" (unlimited swap); needs `memory`. */
  memorySwap?: string;
  /** A fraction of CPUs: "0.5". */
  cpus?: string;
  pidsLimit?: number;
  cgroupParent?: string;
  rm?: boolean;
  /** Start detached under a tspod-monitor and return once it runs (`run -d`); see start.ts. */
  detach?: boolean;
  /** Only create the container (`tspod create`); `start` runs it later. */
  create?: boolean;
  /** --restart no|on-failure[:N]|always|unless-stopped, applied by the monitor (src/container/README.md). */
  restart?: string;
}

export interface RunResult {
  id: string;
  name: string;
  /** The container's status as a shell reports it: the exit code, or 128+N for signal N. */
  exitCode: number;
  signal?: number;
  oomKilled: boolean;
}

/**
 * The checks of run and create that need no image: one clear error before a pull, a name or a snapshot
 * is claimed; what is ignored is said on stderr. Returns the cgroup limits.
 */
export function checkRunOptions(opts: Omit<RunOptions, 'store' | 'image'>): CgroupLimits {
  const limits = { ...parseLimits(opts), devices: deviceRules(opts) };
  if (opts.workdir !== undefined && !opts.workdir.startsWith('/')) {
    throw fail('EINVAL', `invalid --workdir "${opts.workdir}": the working directory must be an absolute path`);
  }
  checkNetworkOptions(opts, true);
  checkRestartPolicy(opts.restart);
  // docker: a container that removes itself cannot be restarted by a policy
  if (opts.rm && opts.restart !== undefined && opts.restart !== 'no') throw fail('EINVAL', `conflicting options: --restart ${opts.restart} and --rm`);
  return limits;
}

/** `limits`: checkRunOptions's result when the caller checked the options already (before a pull). */
export async function runContainer(opts: RunOptions & { limits?: CgroupLimits }): Promise<RunResult> {
  const limits = opts.limits ?? checkRunOptions(opts);
  const { store, image } = opts;
  const containers = new ContainerStore(containersRoot(opts.roots));
  const id = ContainerStore.newId();
  const userEnv = [...(await readEnvFiles(opts.envFile)), ...(opts.env ?? [])];
  const inspectInput = { ...opts, id, env: userEnv };
  const rec = await claimName(containers, {
    id,
    name: opts.name ?? '',
    image: image.name ?? image.imageId,
    imageId: image.imageId,
    created: new Date().toISOString(),
    state: 'created',
    ...recordedRunOptions(opts, image.config),
    config: inspectConfig(image.config, inspectInput),
    hostConfig: { ...inspectHostConfig(inspectInput) }, // an interface, kept as a plain record
    ...(opts.rm ? { autoRemove: true } : {}),
    ...(opts.detach || opts.create ? {} : { foreground: true, ...foregroundOwner() }),
  }, opts.name === undefined);
  let base: ContainerRecord = rec;

  // Signals that arrive before the container runs must not kill tspod half-way through set-up;
  // once the launcher runs, launch() forwards them to the container.
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => { interrupted ??= sig; };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);

  let cgroup: Cgroup | undefined;
  let cgroupMade: Promise<void> | undefined;
  let net: ContainerNetwork | undefined;
  let kept = false;
  const volumes: VolumeUse = { names: [] };
  try {
    // The cgroup is made while the snapshot and the network are prepared: independent work, ≈ 10 ms of
    // sequential cgroupfs writes on v1. Awaited before the plan; `finally` waits for it before releasing.
    // run -d too (start.ts takes it over); `create` alone makes none (start makes it).
    if (!opts.create) prewarmAttach(); // see below, at launch
    cgroupMade = !opts.create
      ? detectCgroups().then((d) => d.create(id, limits, opts.cgroupParent ? { parent: opts.cgroupParent } : undefined))
        // Recorded at once, so that reconcile (foreground) or rm (a run -d killed in set-up, left "created")
        // finds the group if this CLI is killed from here on.
        .then(async (c) => { cgroup = c; await containers.save({ ...rec, cgroupPaths: [...c.paths] }, { durable: false }); })
      : undefined;
    cgroupMade?.catch(() => {}); // its failure is reported where it is awaited
    const snapshot = await store.createSnapshot(id, image.chain, { image: image.imageId });
    const dir = containers.containerDir(id);
    await saveAttachConfig(dir, { stdin: !!opts.interactive, tty: !!opts.tty, stdinOnce: !!opts.interactive && !opts.detach }); // for start/attach (attach-io.ts)
    const rootfs = join(dir, 'rootfs');
    await mkdir(rootfs, { recursive: true });
    const hostname = opts.hostname ?? id.slice(0, 12);
    net = await prepareNetwork({ roots: opts.roots, id, name: rec.name, hostname, dir, config: image.config, opts });
    const etcFiles = net.etcFiles;

    await cgroupMade;

    const plan = await withRunOptions(opts, { roots: opts.roots, id, dir, lowerDirs: snapshot.lowerDirs, hostNetwork: net.planMode === 'host' }, await buildPlan({
      config: image.config,
      rootfs,
      overlay: overlayOptions({ chdir: store.root, lowers: await store.overlayLowers(image.chain), upper: snapshot.upperDir, work: snapshot.workDir, emptyLower: join(dir, 'empty') }),
      imageFiles: layerFiles(snapshot.lowerDirs, realSys()),
      hostname,
      command: opts.command ?? [],
      entrypoint: opts.entrypoint,
      env: userEnv,
      user: opts.user,
      workdir: opts.workdir,
      network: net.planMode,
      etcFiles,
      tty: opts.tty,
      cgroups: await detectCgroups().then((d) => d.view(), () => undefined), // cached: detected once per process
    }), volumes);
    net.adjustPlan(plan);
    if (interrupted) throw fail('ELAUNCH', `run ${rec.name}: interrupted by ${interrupted}`);
    if (opts.detach || opts.create) {
      kept = true; // from here on the record belongs to create/start (start.ts)
      const nw = net;
      net = undefined; // attached at start's onPid step; released by reconcile/rm when the container ends
      const cg = cgroup;
      cgroup = undefined; // run -d: start.ts places the init in it and releases it with the container
      return await createDetached(opts.roots, containers, cg ? { ...rec, cgroupPaths: [...cg.paths] } : rec, plan,
        { limits, cgroupParent: opts.cgroupParent, restartPolicy: opts.restart }, !!opts.detach, (pid, owner) => nw.attach(pid, owner), cg);
    }

    const cg = cgroup!;
    const nw = net;
    // A kept container can be started again (tspod start/restart, detached then) and shows its command.
    if (!opts.rm) base = await saveCreated(containers, rec, plan, { limits, cgroupParent: opts.cgroupParent });
    // Not durable (ContainerStore.save): after a power loss nothing of this run is left, and the record
    // before it (durable) reconciles to exited the same way.
    await containers.save({ ...base, state: 'running', cgroupPaths: [...cg.paths] }, { durable: false });
    // The init's placement (addProcess) then skips the kernel's grace-period wait (cgroups/detect.ts);
    // once here and once at the start, to keep that window open through set-up of any length.
    prewarmAttach();
    const result = await withTerminal(opts, (term) => launch(plan, { ...term, onPid: async (pid) => { await cg.addProcess(pid); return nw.attach(pid); } }));
    const oomKilled = await cg.oomKilled().catch(() => false);
    const exitCode = result.signal !== undefined ? 128 + result.signal : result.exitCode;
    if (!opts.rm) await containers.save({ ...base, foreground: undefined, state: 'exited', exitCode, oomKilled, finished: new Date().toISOString() });
    return { id, name: rec.name, exitCode, signal: result.signal, oomKilled };
  } catch (err) {
    if (!opts.rm && !kept) await containers.save({ ...base, foreground: undefined, state: 'exited', exitCode: exitCodeOf(err), error: messageOf(err), finished: new Date().toISOString() }).catch(() => {});
    throw err;
  } finally {
    for (const s of signals) process.off(s, onSignal);
    const failures: string[] = [];
    // The network's release (under the host-wide network lock; the kernel's veth and, with the last
    // container, bridge deletion) runs while the cgroup, snapshot and record go. Crash-safe in any order:
    // a lease is tied to its init's pid and start time, not to the record, and reconcile frees it.
    const netReleased = net?.release().catch((e) => { failures.push(messageOf(e)); });
    await cgroupMade?.catch(() => {});
    if (cgroup) await cgroup.destroy().catch((e) => failures.push(`remove cgroup ${cgroup!.name}: ${messageOf(e)}`));
    if (opts.rm && !kept) {
      await store.removeSnapshot(id).catch((e) => failures.push(messageOf(e)));
      await containers.remove(rec).catch((e) => failures.push(messageOf(e)));
      await releaseContainerVolumes(opts.roots, volumes, id, true).catch((e) => failures.push(messageOf(e)));
    }
    await netReleased;
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

export function parseLimits(opts: Pick<RunOptions, 'memory' | 'memorySwap' | 'cpus' | 'pidsLimit'>): CgroupLimits {
  const limits: CgroupLimits = {};
  if (opts.memory !== undefined) {
    limits.memoryBytes = parseBytes(opts.memory, '--memory');
    if (limits.memoryBytes < 6 * 1024 * 1024) throw fail('EINVAL', `invalid --memory "${opts.memory}": minimum memory limit allowed is 6MB`);
  }
  if (opts.memorySwap !== undefined) {
    // docker's --memory-swap: memory plus swap, -1 for unlimited swap; only with --memory, and not below it
    if (limits.memoryBytes === undefined) throw fail('EINVAL', `invalid --memory-swap "${opts.memorySwap}": it needs --memory (memory plus swap)`);
    limits.memorySwapBytes = opts.memorySwap.trim() === '-1' ? -1 : parseBytes(opts.memorySwap, '--memory-swap');
    if (limits.memorySwapBytes !== -1 && limits.memorySwapBytes < limits.memoryBytes) {
      throw fail('EINVAL', `invalid --memory-swap "${opts.memorySwap}": it is memory plus swap, so at least --memory ${opts.memory}`);
    }
  }
  // docker: --cpus 0 is no limit
  if (opts.cpus !== undefined && !/^\s*0*(\.0*)?\s*$/.test(opts.cpus)) {
    const { quotaUs, periodUs } = parseCpus(opts.cpus);
    const host = availableParallelism();
    if (quotaUs > host * periodUs) throw fail('EINVAL', `invalid --cpus "${opts.cpus}": the range is 0.01 to ${host}.00, as there are only ${host} CPUs available`);
    limits.cpuQuotaUs = quotaUs;
    limits.cpuPeriodUs = periodUs;
  }
  if (opts.pidsLimit !== undefined) {
    // docker: 0 and -1 are unlimited
    if (!Number.isInteger(opts.pidsLimit) || opts.pidsLimit < -1) {
      throw fail('EINVAL', `invalid --pids-limit "${opts.pidsLimit}": want a positive number, or 0 or -1 for unlimited`);
    }
    if (opts.pidsLimit > 0) limits.pidsLimit = opts.pidsLimit;
  }
  return limits;
}
