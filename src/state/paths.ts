import { join } from 'node:path';

/** Where one tspod instance keeps its data. Every root is a parameter so instances and tests never collide. */
export interface EngineRoots {
  /** Persistent data: the store, container snapshots, container records. Default /var/lib/tspod. */
  root: string;
  /** Runtime state that must not survive a reboot: locks of running containers, pids. Default /run/tspod. */
  runroot: string;
}

export const DEFAULT_ROOT = '/var/lib/tspod';
export const DEFAULT_RUNROOT = '/run/tspod';

export function defaultRoots(env: NodeJS.ProcessEnv = process.env): EngineRoots {
  return {
    root: env.TSPOD_ROOT || DEFAULT_ROOT,
    runroot: env.TSPOD_RUNROOT || DEFAULT_RUNROOT,
  };
}

export function storeRoot(r: EngineRoots): string {
  return join(r.root, 'store');
}

export function containersRoot(r: EngineRoots): string {
  return join(r.root, 'containers');
}

export function containerRunDir(r: EngineRoots, id: string): string {
  return join(r.runroot, 'containers', id);
}
