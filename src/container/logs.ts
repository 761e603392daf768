/**
 * logs: reads the monitor's json-file log ({"log","stream","time"} per line, docker's format).
 * --tail N, --since (RFC 3339, Unix seconds, or a duration like 10m), -t (timestamps), -f (follow:
 * keep reading as the file grows until the container is no longer running).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EngineRoots } from '../state/paths.js';
import { fail, isErrno } from '../util/errors.js';
import { containerStore, isActive } from './reconcile.js';
import { freshRecord } from './list.js';
import { logPath } from './detached.js';

export interface LogsOptions {
  follow?: boolean;
  tail?: number;
  since?: string;
  timestamps?: boolean;
  /** Where each record goes. */
  write: (stream: 'stdout' | 'stderr', text: string) => void;
  signal?: AbortSignal;
}

interface Entry { log: string; stream: 'stdout' | 'stderr'; time: string }

export function parseSince(s: string, now = Date.now()): number {
  const d = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(s);
  if (d) return now - Number(d[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[d[2] as 'ms']!;
  if (/^[0-9]+(\.[0-9]+)?$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw fail('EINVAL', `invalid --since "${s}": want an RFC 3339 time, Unix seconds or a duration (10m)`);
  return t;
}

export async function containerLogs(roots: EngineRoots, ref: string, opts: LogsOptions): Promise<void> {
  const containers = containerStore(roots);
  const rec = await containers.find(ref);
  const since = opts.since !== undefined ? parseSince(opts.since) : undefined;
  const emit = (e: Entry) => {
    if (since !== undefined && Date.parse(e.time) < since) return;
    opts.write(e.stream === 'stderr' ? 'stderr' : 'stdout', opts.timestamps ? `${e.time} ${e.log}` : e.log);
  };
  let fh: FileHandle | undefined;
  try {
    fh = await open(logPath(containers.containerDir(rec.id)), 'r');
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  let pos = 0;
  let partial = '';
  const readMore = async (): Promise<Entry[]> => {
    if (!fh) {
      fh = await open(logPath(containers.containerDir(rec.id)), 'r').catch(() => undefined);
      if (!fh) return [];
    }
    const out: Entry[] = [];
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      partial += buf.subarray(0, bytesRead).toString('utf8');
    }
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) {
      if (!l) continue;
      try {
        out.push(JSON.parse(l) as Entry);
      } catch {
        // a torn line cannot occur (O_APPEND, whole records); skip anything else
      }
    }
    return out;
  };
  try {
    let first = await readMore();
    if (opts.tail !== undefined && opts.tail >= 0) first = opts.tail === 0 ? [] : first.slice(-opts.tail);
    first.forEach(emit);
    if (!opts.follow) return;
    for (;;) {
      if (opts.signal?.aborted) return;
      // Removed (rm -f) ends the follow as an exit does; the open log is still readable to its end.
      const cur = await containers.get(rec.id);
      const now = cur && await freshRecord(containers, cur);
      (await readMore()).forEach(emit);
      if (!now || !isActive(now)) {
        (await readMore()).forEach(emit);
        return;
      }
      await sleep(100);
    }
  } finally {
    await fh?.close();
  }
}
