// Capability gates for tests. Each gate returns undefined when the capability is there, or a reason string
// saying what is missing, ready for `describe.skipIf(reason)` and for the test title (see `gated`).
//
// CI runs as root on a full kernel, so there a missing capability is a broken machine, not a reason to
// skip: when process.env.CI is set, a failing gate throws instead of returning its reason (pass
// { strictInCI: false } for a gate that is genuinely optional even in CI).

import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface GateOptions {
  /** Throw in CI instead of returning a reason (default true). */
  strictInCI?: boolean;
}

/** True when running under CI (CI set to anything but "", "0" or "false"). */
export function inCI(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}

function gate(reason: string | undefined, opts: GateOptions | undefined): string | undefined {
  if (reason !== undefined && inCI() && (opts?.strictInCI ?? true)) {
    throw new Error(`capability gate failed in CI, where nothing privileged may skip: ${reason}`);
  }
  return reason;
}

/** Undefined when running as uid 0, else why not. */
export function isRoot(opts?: GateOptions): string | undefined {
  const uid = process.getuid?.();
  return gate(uid === 0 ? undefined : `needs root (running as uid ${uid ?? 'unknown'})`, opts);
}

/** Undefined when the kernel lists overlay in /proc/filesystems, else why not. */
export function haveOverlay(opts?: GateOptions): string | undefined {
  let reason: string | undefined;
  try {
    const listed = readFileSync('/proc/filesystems', 'utf8')
      .split('\n')
      .some((line) => line.split('\t').pop()?.trim() === 'overlay');
    if (!listed) reason = 'needs the overlay filesystem (not in /proc/filesystems; try modprobe overlay)';
  } catch (err) {
    reason = `needs the overlay filesystem (read /proc/filesystems: ${(err as Error).message})`;
  }
  return gate(reason, opts);
}

/** Undefined when `name` is an executable on PATH (or an executable path), else why not. */
export function haveCommand(name: string, opts?: GateOptions): string | undefined {
  const candidates = name.includes('/')
    ? [name]
    : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  const found = candidates.some((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  return gate(found ? undefined : `needs the command ${name} (not found on PATH)`, opts);
}

/** The first reason among several gates, e.g. `firstReason(isRoot(), haveCommand('skopeo'))`. */
export function firstReason(...reasons: (string | undefined)[]): string | undefined {
  return reasons.find((r) => r !== undefined);
}

/** A test or suite title that says why it is skipped: gated('mounts overlay', reason). */
export function gated(title: string, reason: string | undefined): string {
  return reason === undefined ? title : `${title} [skipped: ${reason}]`;
}
