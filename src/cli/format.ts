/** Output helpers shared by commands: docker-style sizes, ages and aligned tables. */

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

export function humanAge(iso: string | undefined, now = Date.now()): string {
  if (!iso) return 'N/A';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'N/A';
  const s = Math.max(0, Math.round((now - t) / 1000));
  const steps: [number, string][] = [[60, 'second'], [60, 'minute'], [24, 'hour'], [7, 'day'], [4.35, 'week'], [12, 'month'], [Infinity, 'year']];
  let v = s;
  for (const [size, unit] of steps) {
    if (v < size) {
      if (unit === 'second') return v < 1 ? 'Less than a second ago' : `${v} seconds ago`;
      const n = Math.floor(v);
      return n === 1 ? `${unit === 'hour' ? 'An' : 'A'} ${unit} ago` : `${n} ${unit}s ago`;
    }
    v /= size;
  }
  return 'N/A';
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
