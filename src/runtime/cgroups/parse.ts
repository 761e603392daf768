import { fail } from '../../util/errors.js';

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * Docker's size syntax: a number with an optional unit b, k, m or g (binary, case-insensitive;
 * "kb"/"kib" spellings accepted), so "64m" = 64 MiB. `what` names the flag in errors.
 */
export function parseBytes(value: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmg])(?:i?b)?|b)?\s*$/i.exec(value);
  if (!m) throw fail('EINVAL', `parse ${what} "${value}": expected a number with an optional unit b, k, m or g`);
  const unit = m[2]?.toLowerCase() ?? '';
  const bytes = Math.floor(Number(m[1]) * UNITS[unit]!);
  if (!Number.isSafeInteger(bytes)) throw fail('EINVAL', `parse ${what} "${value}": too large`);
  return bytes;
}

/** Docker's --cpus: "0.5" → a 50000 µs quota per 100000 µs period. */
export function parseCpus(value: string, periodUs = 100_000): { quotaUs: number; periodUs: number } {
  const t = value.trim();
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(t)) throw fail('EINVAL', `parse --cpus "${value}": expected a positive number such as 0.5 or 2`);
  const cpus = Number(t);
  const quotaUs = Math.round(cpus * periodUs);
  if (quotaUs < 1000) throw fail('EINVAL', `parse --cpus "${value}": below the minimum of ${1000 / periodUs} cpu`);
  if (!Number.isSafeInteger(quotaUs)) throw fail('EINVAL', `parse --cpus "${value}": too large`);
  return { quotaUs, periodUs };
}

/** v1 cpu.shares (2..262144) → v2 cpu.weight (1..10000), runc's formula. */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

export interface MountInfo {
  /** "major:minor" of the filesystem: equal for two mounts of the same hierarchy. */
  dev: string;
  /** The mount's root inside the filesystem (cgroup path at the mount point). */
  root: string;
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** /proc/self/mountinfo lines (proc(5)); only well-formed lines. */
export function parseMountinfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0 || sep + 3 > f.length) continue;
    out.push({
      dev: f[2]!,
      root: unescapeMount(f[3]!),
      mountPoint: unescapeMount(f[4]!),
      fsType: f[sep + 1]!,
      superOptions: (f[sep + 3] ?? '').split(','),
    });
  }
  return out;
}

export interface ProcCgroupLine {
  hierarchyId: number;
  /** v1: ["cpu","cpuacct"] or ["name=systemd"]; v2: []. */
  controllers: string[];
  path: string;
}

/** /proc/self/cgroup (cgroups(7)). */
export function parseProcCgroup(text: string): ProcCgroupLine[] {
  const out: ProcCgroupLine[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    out.push({ hierarchyId: Number(m[1]), controllers: m[2] ? m[2].split(',') : [], path: m[3]! });
  }
  return out;
}
