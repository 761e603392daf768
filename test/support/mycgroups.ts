// Leftover checks scoped to one test file: its containers run under their own --cgroup-parent, so the
// checks see only what this file created, even while other tspod instances run on the same host.
import { readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { basename } from 'node:path';
import { findCgroups } from './leftovers.js';

export function cgroupParent(tag: string): string {
  return `tspod-e2e-${tag}-${process.pid}`;
}

/** Container cgroups left under the parent (the parent itself excluded). */
export function cgroupsUnder(parent: string): string[] {
  return findCgroups((name, inside) => inside || name === parent).filter((p) => basename(p) !== parent);
}

/** Processes in a cgroup under the parent. */
export function processesUnder(parent: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cgroup`, 'utf8').includes(`/${parent}/`)) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

/** Removes the (empty) parent cgroups, deepest first. */
export function removeParent(parent: string): void {
  for (const p of findCgroups((name, inside) => inside || name === parent).sort((a, b) => b.length - a.length)) {
    try {
      rmdirSync(p);
    } catch {
      // busy or gone: the leftover check reports it
    }
  }
}
