// What a test run may have left on the host: mounts, cgroups and processes that belong to a tspod data
// root. Tests assert this is empty after they ran, pass or fail.
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { NETWORK_LOCK } from '../../src/runtime/network/store.js';

/**
 * Waits until no tspod process holds the host-wide network lock: the deletion of a network's last
 * bridge and its firewall rules finishes in a child holding that lock after the command that released
 * the network has returned (src/runtime/network/bridge.ts deleteBridge). Look at the host's links and
 * nftables after this.
 */
export function networkSettled(): void {
  if (!existsSync(NETWORK_LOCK)) return;
  const r = spawnSync('flock', ['-w', '30', NETWORK_LOCK, 'true'], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`the network lock ${NETWORK_LOCK} was still held after 30 s`);
}

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
