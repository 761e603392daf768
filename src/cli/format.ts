/** Output helpers shared by commands: docker-style sizes, ages and aligned tables. */
import { humanDuration } from '../util/duration.js';
import type { ContainerStats } from '../container/stats.js';

/** `bytes` in the largest of `units` (each `step` times the last) that keeps it ≥ 1, to `digits` significant digits. */
function scaled(bytes: number, step: number, units: string[], digits: number): string {
  let v = bytes;
  let i = 0;
  while (v >= step && i < units.length - 1) {
    v /= step;
    i++;
  }
  return `${Number(v.toPrecision(digits))}${units[i]}`;
}

/** go-units HumanSize: decimal units with 3 significant digits ("1.09MB"), as docker's sizes. */
export function humanSize(bytes: number): string {
  return scaled(bytes, 1000, ['B', 'kB', 'MB', 'GB', 'TB'], 3);
}

/** go-units BytesSize: binary units with 4 significant digits ("1.5MiB", "7.775GiB"), as docker's memory columns. */
export function bytesSize(bytes: number): string {
  return scaled(bytes, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB'], 4);
}

/** One sample of `tspod stats` (a type only: src/cli does not load the engine). */
export type StatsSample = ContainerStats;

/**
 * A stats sample as docker's `stats --format` fields: Container (the name or ID as given, else the short ID),
 * Name, ID, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs, all strings worded as docker's. Without a
 * memory limit the limit is the host's memory (`hostMemory`), as docker reports it.
 */
export function statsFields(s: StatsSample, opts: { ref?: string; hostMemory: number; noTrunc?: boolean }): Record<string, string> {
  const limit = s.memoryLimitBytes ?? opts.hostMemory;
  const id = opts.noTrunc ? s.id : s.id.slice(0, 12);
  return {
    Container: opts.ref ?? id,
    Name: s.name,
    ID: id,
    CPUPerc: `${s.cpuPercent.toFixed(2)}%`,
    MemUsage: `${bytesSize(s.memoryBytes)} / ${bytesSize(limit)}`,
    MemPerc: `${(limit > 0 ? (s.memoryBytes / limit) * 100 : 0).toFixed(2)}%`,
    NetIO: `${humanSize(s.netRxBytes)} / ${humanSize(s.netTxBytes)}`,
    BlockIO: `${humanSize(s.blockReadBytes)} / ${humanSize(s.blockWriteBytes)}`,
    PIDs: String(s.pids),
  };
}

/** docker stats' default table and its column names. */
export const STATS_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';
export const STATS_HEADERS: Record<string, string> = {
  Container: 'CONTAINER', Name: 'NAME', ID: 'CONTAINER ID', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemPerc: 'MEM %',
  NetIO: 'NET I/O', BlockIO: 'BLOCK I/O', PIDs: 'PIDS',
};

/** docker's "3 minutes ago" (CREATED columns); "N/A" without a valid time. */
export function humanAge(iso: string | undefined, now = Date.now()): string {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? 'N/A' : `${humanDuration(now - t)} ago`;
}

/** Columns separated by at least three spaces, like docker's tabwriter output. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** "sha256:abcdef…" → "abcdef012345" (12 hex). */
export function shortId(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}
