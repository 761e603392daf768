/** What every library entry point shares: the roots and config it runs with, and a store opened for one call. */
import { Store } from '../store/index.js';
import { defaultRoots, storeRoot, type EngineRoots } from './state/paths.js';
import type { EngineConfig } from './config/index.js';

export interface Common {
  roots?: EngineRoots;
  /** Defaults to the file named by TSPOD_CONFIG, or no mirrors and no insecure registries. */
  config?: EngineConfig;
}

/** Opens the store of `roots` (default roots when absent) for the duration of `fn`. */
export async function withStore<T>(roots: EngineRoots | undefined, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await Store.open(storeRoot(roots ?? defaultRoots()));
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}
