/**
 * tspod as a library: the services the CLI calls, with typed options and plain results.
 * Each opens what it needs (store, config) from `roots` and closes it again.
 */
import type { Store } from '../store/index.js';
import { withStore, type Common } from './api-common.js';
import { defaultRoots, type EngineRoots } from './state/paths.js';
import { loadEngineConfig, type EngineConfig } from './config/index.js';
import { pullImage, type PullEvent, type PullResult } from './image/pull.js';
import { loginRegistryWith, logoutRegistry, type LoginResult } from './image/login.js';
import { findImage, isNotFound, listImages, loadImage, type ImageSummary, type LocalImage } from './image/local.js';
import { pruneImages as pruneImagesInStore, removeImage as removeImageFromStore, type PruneResult, type RemoveResult } from './image/remove.js';
import type { CheckResult, StoreUsage } from '../store/index.js';
import { checkRunOptions, runContainer, type RunOptions, type RunResult } from './container/run.js';

export type { EngineRoots, EngineConfig, PullEvent, PullResult, ImageSummary, LocalImage, RunOptions, RunResult };
export type { LoginResult };
export type { CheckResult, PruneResult, RemoveResult, StoreUsage };
export { TspodError } from './util/errors.js';
export { familiarRef } from './reference/index.js';
export * from './image-api.js'; // commit, tag, push, history, inspectImage, save, load, exportContainer, importImage
export * from './network-api.js'; // createNetwork, listNetworks, inspectNetwork, removeNetwork, connectNetwork, disconnectNetwork



export async function pull(ref: string, opts: Common & { platform?: string; onEvent?: (e: PullEvent) => void; concurrency?: number } = {}): Promise<PullResult> {
  const config = opts.config ?? (await loadEngineConfig());
  return withStore(opts.roots, (store) => pullImage(ref, { store, config, platform: opts.platform, onEvent: opts.onEvent, concurrency: opts.concurrency }));
}

/** Verifies the credentials against the registry, then stores them (docker config.json or $REGISTRY_AUTH_FILE). */
export async function login(registry: string | undefined, username: string, password: string, opts: { config?: EngineConfig } = {}): Promise<LoginResult> {
  return loginRegistryWith(registry, username, password, { config: opts.config ?? (await loadEngineConfig()) });
}

/** Removes a stored login; `removed` is false when there was none. */
export async function logout(registry: string | undefined): Promise<{ registry: string; removed: boolean }> {
  return logoutRegistry(registry);
}

export async function images(opts: Common & { reference?: string } = {}): Promise<ImageSummary[]> {
  return withStore(opts.roots, (store) => listImages(store, opts.reference));
}

/** docker rmi: untags an image (by reference or ID) and removes what only it used. */
export async function removeImage(ref: string, opts: Common & { force?: boolean } = {}): Promise<RemoveResult> {
  return withStore(opts.roots, (store) => removeImageFromStore(store, ref, { force: opts.force }));
}

/** docker image prune [-a]: frees blobs, layers and partial downloads nothing uses. */
export async function pruneImages(opts: Common & { all?: boolean } = {}): Promise<PruneResult> {
  return withStore(opts.roots, (store) => pruneImagesInStore(store, { all: opts.all }));
}

/** Space used by the store and the containers (tspod system df). */
export async function diskUsage(opts: Common = {}): Promise<StoreUsage & {
  images: number; activeImages: number;
  /** docker's Containers row: all, running (or paused), and the writable layers of the stopped ones. */
  containers: { total: number; active: number; reclaimable: number };
}> {
  const roots = opts.roots ?? defaultRoots();
  const list = await listContainersIn(roots, { all: true });
  return withStore(roots, async (store) => {
    const refs = await store.listRefs();
    const used = new Set((await store.listSnapshots()).map((s) => s.chain.join(' ')));
    let active = 0;
    for (const r of refs) {
      const img = await loadImage(store, r.digest, r.name).catch(() => undefined);
      if (img && used.has(img.chain.join(' '))) active++;
    }
    const usage = await store.usage();
    const running = list.filter((c) => c.state === 'running' || c.state === 'paused');
    const reclaimable = list.filter((c) => !running.includes(c)).reduce((n, c) => n + (usage.snapshots.byId[c.id] ?? 0), 0);
    return { ...usage, images: refs.length, activeImages: active, containers: { total: list.length, active: running.length, reclaimable } };
  });
}

/** tspod system check: verifies the store; with `repair`, removes what is damaged. */
export async function checkStore(opts: Common & { repair?: boolean } = {}): Promise<CheckResult> {
  return withStore(opts.roots, (store) => store.check({ repair: opts.repair }));
}

export interface RunRequest extends Omit<RunOptions, 'roots' | 'image' | 'store'>, Common {
  /** Image reference or ID; pulled when it is not in the store, as docker run does. */
  image: string;
  /** Platform to pull when the image is missing. */
  platform?: string;
  onPull?: (e: PullEvent | { type: 'missing'; image: string }) => void;
}

export async function run(opts: RunRequest): Promise<RunResult> {
  const roots = opts.roots ?? defaultRoots();
  const { config: _c, platform: _p, onPull: _o, ...rest } = opts;
  const limits = checkRunOptions({ ...rest, roots }); // bad options are refused before any pull
  return withStore(roots, async (store) => runContainer({ ...rest, roots, store, image: await findOrPull(store, opts), limits }));
}

async function findOrPull(store: Store, opts: RunRequest): Promise<LocalImage> {
  try {
    return await findImage(store, opts.image);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  opts.onPull?.({ type: 'missing', image: opts.image });
  const config = opts.config ?? (await loadEngineConfig());
  const pulled = await pullImage(opts.image, { store, config, platform: opts.platform, onEvent: opts.onPull });
  return findImage(store, pulled.name);
}

// Container life cycle (issue 7): detached containers under a tspod-monitor; see src/container/README.md.
export { startContainer } from './container/start.js';
export { stopContainer } from './container/stop.js';
export { killContainer } from './container/kill.js';
export { restartContainer } from './container/restart.js';
export { pauseContainer } from './container/pause.js';
export { waitContainer } from './container/wait.js';
export { inspectContainer, type ContainerSummary, type ListOptions } from './container/list.js';
import { inspectContainer as inspectContainerIn, listContainers as listContainersIn, type ContainerSummary, type ListOptions } from './container/list.js';
import { inspectImage as inspectImageIn } from './image-api.js';
import { dockerNetwork, inspectNetwork as inspectNetworkIn } from './network-api.js';
import { fail, TspodError as EngineError } from './util/errors.js';

/** ps: the containers, reconciled with the truth; `run --rm` containers whose CLI was killed are removed first. */
export async function listContainers(roots: EngineRoots = defaultRoots(), opts: ListOptions = {}): Promise<ContainerSummary[]> {
  const filters = await withStore(roots, async (store) => {
    await sweepAutoRemoved(roots, store);
    // ancestor=NAME is the image NAME names now, by its ID, as docker resolves it
    return Promise.all((opts.filters ?? []).map(async (f) => {
      if (!f.startsWith('ancestor=')) return f;
      const image = await findImage(store, f.slice('ancestor='.length)).catch(() => undefined);
      return image ? `ancestor=${image.imageId}` : f;
    }));
  });
  return listContainersIn(roots, { ...opts, filters });
}

/** The kinds `docker inspect --type` takes, in the order docker tries them when no type is given. */
export const INSPECT_TYPES = ['container', 'image', 'network', 'volume'] as const;
export type InspectType = (typeof INSPECT_TYPES)[number];

/**
 * docker inspect: the object `ref` names, as its own inspect shows it. With `type`, only that kind
 * (its own not-found error); without, the first kind that has it (a container, else an image, a network,
 * a volume), and `no such object: REF` when none does. A name that cannot be of a kind (an image
 * reference is no volume name) is simply not one of it; other errors (an ambiguous ID prefix) are reported.
 */
export async function inspectObject(ref: string, opts: { roots?: EngineRoots; type?: InspectType } = {}): Promise<{ type: InspectType; value: unknown }> {
  const roots = opts.roots ?? defaultRoots();
  const inspectors: Record<InspectType, () => Promise<unknown>> = {
    container: () => inspectContainerIn(roots, ref),
    image: async () => {
      try {
        return await inspectImageIn(ref, { roots });
      } catch (err) {
        // not a reference at all ("Foo"): in the search, simply not an image
        if (!opts.type && err instanceof EngineError && err.code === 'EINVAL' && err.message.startsWith('invalid reference')) throw fail('ENOTFOUND', err.message);
        throw err;
      }
    },
    network: async () => dockerNetwork(await inspectNetworkIn(ref, { roots })),
    volume: async () => {
      if (!opts.type && !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(ref)) throw fail('ENOTFOUND', `no such volume: ${ref}`);
      return volumes.dockerVolume(await volumes.inspectVolume(roots, ref));
    },
  };
  if (opts.type) return { type: opts.type, value: await inspectors[opts.type]() };
  for (const type of INSPECT_TYPES) {
    try {
      return { type, value: await inspectors[type]() };
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  throw fail('ENOTFOUND', `no such object: ${ref}`);
}
export { containerLogs, type LogsOptions } from './container/logs.js';
export { attachContainer, type AttachOptions, type AttachResult } from './container/attach.js';
export { execInContainer, type ExecOptions } from './container/exec.js';
export { containerStats, containerTop, type ContainerStats } from './container/stats.js';
export { renameContainer } from './container/rename.js';
export { copyFiles } from './container/cp.js';
export { containerPorts, type PublishedPort } from './container/port.js';
import { removeContainer as removeContainerIn, sweepAutoRemoved } from './container/remove.js';
import { pruneContainers as pruneContainersIn } from './container/prune.js';
import { containerDiff as containerDiffIn, type Change } from './container/diff.js';
export type { Change };

/** container prune: removes every container that is not running; returns their ids and the bytes of their snapshots. */
export async function pruneContainers(opts: { roots?: EngineRoots } = {}): Promise<{ deleted: string[]; reclaimed: number }> {
  const roots = opts.roots ?? defaultRoots();
  return withStore(roots, async (store) => {
    await sweepAutoRemoved(roots, store);
    return pruneContainersIn(roots, store);
  });
}

/** diff: the container's filesystem changes (A/C/D), from its overlay upper dir. */
export async function containerDiff(ref: string, opts: { roots?: EngineRoots } = {}): Promise<Change[]> {
  const roots = opts.roots ?? defaultRoots();
  return withStore(roots, (store) => containerDiffIn(roots, store, ref));
}

/** rm: removes a container (refused while it runs unless `force`); returns its id. */
export async function removeContainer(ref: string, opts: { roots?: EngineRoots; force?: boolean; volumes?: boolean } = {}): Promise<string> {
  const roots = opts.roots ?? defaultRoots();
  return withStore(roots, (store) => removeContainerIn(roots, store, ref, { force: opts.force, volumes: opts.volumes }));
}

// Named volumes (issue 5): directories under the data root; see src/volume/index.ts.
import * as volumes from './volume/index.js';
export type { VolumeInfo } from './volume/index.js';
export { dockerVolume } from './volume/index.js';

/** docker volume create [NAME]: an existing name is returned unchanged. */
export async function createVolume(name: string | undefined, opts: { roots?: EngineRoots; labels?: Record<string, string> } = {}): Promise<volumes.VolumeInfo> {
  return volumes.createVolume(opts.roots ?? defaultRoots(), name, { labels: opts.labels });
}
export async function listVolumes(opts: { roots?: EngineRoots } = {}): Promise<volumes.VolumeInfo[]> {
  return volumes.listVolumes(opts.roots ?? defaultRoots());
}
export async function inspectVolume(name: string, opts: { roots?: EngineRoots } = {}): Promise<volumes.VolumeInfo> {
  return volumes.inspectVolume(opts.roots ?? defaultRoots(), name);
}
/** docker volume rm: refused while a container that mounted it exists. */
export async function removeVolume(name: string, opts: { roots?: EngineRoots } = {}): Promise<void> {
  return volumes.removeVolume(opts.roots ?? defaultRoots(), name);
}
