/**
 * The pull progress display, like `docker pull`:
 *   - on a terminal: one live line per layer ("Waiting", "Downloading [==>   ] 1.2MB/3.4MB",
 *     "Extracting", "Pull complete", "Already exists"), redrawn in place at most ~12 times a second;
 *   - otherwise: one plain line per change of state (never per chunk), so logs stay readable.
 * The caller prints the summary (Digest:, Status:) after finish().
 */
import type { PullEvent } from '../index.js';
import { humanSize, shortId } from './format.js';

type Status = 'waiting' | 'downloading' | 'extracting' | 'done' | 'exists';

interface Row {
  id: string;
  status: Status;
  done: number;
  total: number;
}

export interface ProgressOptions {
  out: NodeJS.WritableStream & { columns?: number };
  /** Draw live lines with cursor movement (stdout is a terminal). */
  tty: boolean;
  /** Minimum time between two redraws (ms). */
  intervalMs?: number;
}

const BAR = 40;

export function progressLine(r: Row): string {
  switch (r.status) {
    case 'waiting': return `${r.id}: Waiting`;
    case 'exists': return `${r.id}: Already exists`;
    case 'extracting': return `${r.id}: Extracting`;
    case 'done': return `${r.id}: Pull complete`;
    case 'downloading': {
      const total = r.total > 0 ? r.total : 0;
      const frac = total > 0 ? Math.min(1, r.done / total) : 0;
      const filled = Math.floor(frac * BAR);
      const bar = '='.repeat(Math.max(0, filled - 1)) + (filled > 0 ? '>' : '') + ' '.repeat(BAR - filled);
      return `${r.id}: Downloading [${bar}] ${humanSize(r.done)}/${total > 0 ? humanSize(total) : '?'}`;
    }
  }
}

export class PullProgress {
  readonly #o: ProgressOptions;
  readonly #rows: Row[] = [];
  readonly #byDigest = new Map<string, Row>();
  /** Lines currently on screen below the header that we own (tty mode). */
  #drawn = 0;
  #last = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(o: ProgressOptions) {
    this.#o = o;
  }

  /** Feeds one pull event. */
  onEvent(e: PullEvent): void {
    if (e.type === 'resolved') {
      this.#write(`Pulling ${e.reference}\n`);
      return;
    }
    let row = this.#byDigest.get(e.digest);
    if (!row) {
      row = { id: shortId(e.digest), status: 'waiting', done: 0, total: e.total ?? 0 };
      this.#byDigest.set(e.digest, row);
      this.#rows.push(row);
    }
    const before = row.status;
    if (e.status === 'downloading') {
      row.status = 'downloading';
      row.done = e.done ?? row.done;
      row.total = e.total ?? row.total;
    } else {
      row.status = e.status;
      if (e.total !== undefined) row.total = e.total;
    }
    if (this.#o.tty) {
      this.#schedule(before !== row.status);
    } else if (before !== row.status || e.status === 'waiting') {
      // plain mode: state changes only, no bars
      this.#write((row.status === 'downloading' ? `${row.id}: Downloading ${row.total > 0 ? humanSize(row.total) : ''}`.trimEnd() : progressLine(row)) + '\n');
    }
  }

  /** Draws the final state; call before printing the summary. */
  finish(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#o.tty) this.#draw();
  }

  #schedule(now: boolean): void {
    const interval = this.#o.intervalMs ?? 80;
    const since = Date.now() - this.#last;
    if (now || since >= interval) {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#draw();
    } else {
      this.#timer ??= setTimeout(() => {
        this.#timer = undefined;
        this.#draw();
      }, interval - since);
    }
  }

  #draw(): void {
    this.#last = Date.now();
    const width = Math.max(20, (this.#o.out.columns || 120) - 1);
    let s = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : '';
    for (const r of this.#rows) s += `\r\x1b[2K${progressLine(r).slice(0, width)}\n`;
    this.#drawn = this.#rows.length;
    this.#write(s);
  }

  #write(s: string): void {
    this.#o.out.write(s);
  }
}
