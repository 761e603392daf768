/** Output helpers shared by commands: docker-style sizes, ages and aligned tables. */
import { humanDuration } from '../util/duration.js';

export function humanSize(bytes: number): string {
  // docker uses decimal units (go-units HumanSize) with 3 significant digits.
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

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
