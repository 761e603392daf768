/**
 * flock(2)-based locks on files under <store>/locks/. A lock is held by an open file description,
 * so two Store instances in one process exclude each other exactly like two processes do, and
 * the kernel releases a dead process's locks. LOCK_NB is polled with a short, growing sleep so the
 * event loop is never blocked. Lock files are never deleted (deleting one while another process
 * waits on it would let two holders in).
 */
import { closeSync, constants as fsc, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, type Sys } from '../src/sys/index.js';
import { fail, messageOf } from '../src/util/errors.js';

export interface LockOptions {
  /** Take a shared lock instead of an exclusive one. */
  shared?: boolean;
  /** Give up with EBUSY after this long (default: wait forever). 0 means a single try. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A held lock; `release()` is idempotent. */
export interface HeldLock {
  readonly fd: number;
  release(): void;
}

/** Opens (creating) `path` and takes the lock on it. */
export async function acquireFlock(sys: Sys, path: string, what: string, opts: LockOptions = {}): Promise<HeldLock> {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDWR | fsc.O_CREAT, 0o600);
  } catch (err) {
    throw fail('ESYS', `lock ${what}: open ${path}: ${messageOf(err)}`, err);
  }
  const op = (opts.shared ? LOCK_SH : LOCK_EX) | LOCK_NB;
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  let delay = 2;
  try {
    for (;;) {
      if (sys.flock(fd, op)) break;
      if (opts.signal?.aborted) throw fail('EBUSY', `lock ${what}: aborted while waiting`, opts.signal.reason);
      if (Date.now() >= deadline) throw fail('EBUSY', `lock ${what}: held by another process`);
      await sleep(Math.min(delay, Math.max(1, deadline - Date.now())));
      delay = Math.min(delay * 2, 50);
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  let held = true;
  return {
    fd,
    release() {
      if (!held) return;
      held = false;
      try {
        sys.flock(fd, LOCK_UN);
      } finally {
        closeSync(fd); // closing releases the lock even if LOCK_UN failed
      }
    },
  };
}

/** Lock names become file names: keep [A-Za-z0-9._-], escape anything else. */
export function lockFileName(name: string): string {
  if (name === '') throw fail('EINVAL', 'lock: empty lock name');
  const safe = name.replace(/[^A-Za-z0-9._-]/g, (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0'));
  return (safe.startsWith('.') ? '%2e' + safe.slice(1) : safe) + '.lock';
}
