// What a test run may have left on the host: mounts, cgroups and processes that belong to a tspod data
// root. Tests assert this is empty after they ran, pass or fail.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

/** Mount points at or under `root` (from this process's mount namespace, i.e. the host's). */
export function mountsUnder(root: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p === root || p.startsWith(root + '/'));
}

/**
 * Processes in a container cgroup (a `tspod/` subtree in any hierarchy). The rootfs of a container
 * is mounted inside its own mount namespace, so /proc/PID/root does not tell; its cgroup does.
 */
export function containerProcesses(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (/(^|\/)tspod\/[^\n]/m.test(readFileSync(`/proc/${name}/cgroup`, 'utf8'))) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

/** Every cgroup directory under /sys/fs/cgroup (any hierarchy) whose path `match`es, to a bounded depth. */
export function findCgroups(match: (name: string, insideMatch: boolean) => boolean): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number, inside: boolean): void => {
    if (depth > 6) return;
    let entries: string[];
    try {
      entries = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(dir, e);
      const hit = match(e, inside);
      if (hit) found.push(p);
      walk(p, depth + 1, inside || hit);
    }
  };
  if (existsSync('/sys/fs/cgroup')) walk('/sys/fs/cgroup', 0, false);
  return found;
}

/** Every cgroup directory called `tspod` or inside one. */
export function tspodCgroups(): string[] {
  return findCgroups((name, inside) => inside || name === 'tspod');
}
