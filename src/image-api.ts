/**
 * The library API of the image operations (issue 8): commit, tag, push, history, inspect, save,
 * load, export, import. Re-exported by src/index.ts. Like the rest of the API, each call opens the
 * store (and the container records) of `roots` and closes them again.
 */
import type { Store } from '../store/index.js';
import { withStore, type Common } from './api-common.js';
import { defaultRoots, type EngineRoots } from './state/paths.js';
import type { ContainerRecord, ContainerStore } from './state/containers.js';
import { containerStore, openCgroup, reconcile } from './container/reconcile.js';
import { withFrozen } from './container/freeze.js';
import { loadEngineConfig } from './config/index.js';
import { findImage } from './image/local.js';
import { commitContainer, type CommitResult } from './image/commit.js';
import { pushImage, type PushEvent, type PushResult } from './image/push.js';
import { tagImage } from './image/tag.js';
import { imageHistory, type HistoryRow } from './image/history.js';
import { inspectImage as inspectStored, type ImageInspect } from './image/inspect.js';
import { saveImages, type ArchiveFormat, type SaveResult } from './image/save.js';
import { loadArchive, type LoadResult } from './image/load.js';
import { exportRootfs } from './image/export.js';
import { importTarball, type ImportResult } from './image/import.js';
import type { Readable, Writable } from 'node:stream';
import { fail, messageOf } from './util/errors.js';

export type { CommitResult, PushEvent, PushResult, HistoryRow, ImageInspect, ArchiveFormat, SaveResult, LoadResult, ImportResult };



/**
 * Finds a container (name, id or unique id prefix) and runs `fn` with its snapshot under the
 * container's lock, so that rm, start or a restart cannot change or remove it while it is read.
 */
async function withContainer<T>(store: Store, roots: EngineRoots, ref: string, what: string,
  fn: (rec: ContainerRecord, snap: { upperDir: string; lowerDirs: string[] }) => Promise<T>): Promise<T> {
  const containers = containerStore(roots);
  const { rec: locked, release } = await containers.findAndLock(ref);
  try {
    const rec = await reconcile(containers, locked);
    const snap = await store.getSnapshot(rec.id);
    if (!snap) throw fail('ENOTFOUND', `${what} ${ref}: the container has no file system (snapshot ${rec.id.slice(0, 12)} is gone)`);
    return await fn(rec, snap);
  } finally {
    release();
  }
}

/** Runs `fn` with a running container frozen (see container/freeze.ts); as it is when not running or paused already. */
async function whileFrozen<T>(containers: ContainerStore, rec: ContainerRecord, fn: () => Promise<T>): Promise<T> {
  const cg = rec.state === 'running' ? await openCgroup(rec) : undefined;
  return cg ? withFrozen(containers.containerDir(rec.id), cg, fn) : fn();
}

export interface CommitRequest extends Common {
  message?: string;
  author?: string;
  changes?: string[];
  /** Freeze a running container while its changes are read (docker's default: true). */
  pause?: boolean;
}

/**
 * Commits a container's changes as a new image named `ref` (default: localhost/<container name>:latest,
 * since an image without a name is not kept in the store).
 */
export async function commit(container: string, ref: string | undefined, opts: CommitRequest = {}): Promise<CommitResult> {
  const roots = opts.roots ?? defaultRoots();
  return withStore(roots, (store) => withContainer(store, roots, container, 'commit', async (rec, snap) => {
    const what = `commit container ${rec.name}`;
    let parent;
    try {
      parent = await findImage(store, rec.imageId);
    } catch (err) {
      throw fail('ENOTFOUND', `${what}: its image ${rec.image} (${rec.imageId.slice(7, 19)}) is no longer in the store: ${messageOf(err)}`, err);
    }
    const read = () => commitContainer({
      store,
      upperDir: snap.upperDir,
      parent,
      ref: ref ?? `localhost/${rec.name.toLowerCase()}:latest`,
      message: opts.message,
      author: opts.author,
      changes: opts.changes,
      createdBy: commandOf(rec),
      what,
    });
    return opts.pause !== false ? whileFrozen(containerStore(roots), rec, read) : read();
  }));
}

export async function tag(source: string, target: string, opts: Common = {}): Promise<{ name: string; familiarName: string }> {
  return withStore(opts.roots, (store) => tagImage(store, source, target));
}

export async function push(source: string, opts: Common & { destination?: string; onEvent?: (e: PushEvent) => void } = {}): Promise<PushResult> {
  const config = opts.config ?? (await loadEngineConfig());
  return withStore(opts.roots, (store) => pushImage(source, { store, config, destination: opts.destination, onEvent: opts.onEvent }));
}

export async function history(image: string, opts: Common = {}): Promise<HistoryRow[]> {
  return withStore(opts.roots, (store) => imageHistory(store, image));
}

export async function inspectImage(image: string, opts: Common = {}): Promise<ImageInspect> {
  return withStore(opts.roots, (store) => inspectStored(store, image));
}

function commandOf(rec: ContainerRecord): string | undefined {
  return rec.path !== undefined ? [rec.path, ...(rec.args ?? [])].join(' ') : undefined;
}

/** Writes the images to `output` (a file path) or `stream`, as a docker-archive (default) or an oci-archive. */
export async function save(images: string[], opts: Common & { format?: ArchiveFormat; output?: string; stream?: Writable } = {}): Promise<SaveResult> {
  return withStore(opts.roots, (store) => saveImages(images, { store, format: opts.format, output: opts.output, stream: opts.stream }));
}

/** Loads the images of a docker-archive or oci-archive (plain or gzipped). */
export async function load(input: Readable, opts: Common & { what?: string } = {}): Promise<LoadResult> {
  return withStore(opts.roots, (store) => loadArchive(input, { store, what: opts.what }));
}

/** Writes a container's flattened file system as a tar to `output` or `stream` (docker export). */
export async function exportContainer(container: string, opts: Common & { output?: string; stream?: Writable } = {}): Promise<void> {
  const roots = opts.roots ?? defaultRoots();
  return withStore(roots, (store) => withContainer(store, roots, container, 'export', async (rec, snap) =>
    exportRootfs([snap.upperDir, ...snap.lowerDirs], { output: opts.output, stream: opts.stream, what: `export container ${rec.name}` })));
}

/** Creates a one-layer image from a root file system tarball (docker import). */
export async function importImage(input: Readable, opts: Common & { ref?: string; message?: string; changes?: string[] } = {}): Promise<ImportResult> {
  return withStore(opts.roots, (store) => importTarball(input, { store, ref: opts.ref, message: opts.message, changes: opts.changes }));
}
