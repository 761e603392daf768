/** The content-addressed store, a library of its own (see store/LAYOUT.md). */
export { Store, STORE_VERSION } from './store.js';
export type { FillResult, Ingest, LayerRecord, RefEntry, Snapshot, SnapshotRecord } from './store.js';
export type { LockOptions } from './lock.js';
export type { CheckProblem, CheckResult, GcOptions, GcResult, StoreUsage } from './gc.js';
