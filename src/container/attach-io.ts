/**
 * The attach wire (native/monitor.c): where the socket is, what a container's stdio is (attach.json),
 * the monitor's attach options, the frames, and docker's detach keys. No engine imports: detached.ts
 * (which spawns the monitor) and attach.ts (the client) both use it.
 *
 * Frames both ways use docker's stream framing: type (1 byte), 3 zero bytes, length (4 bytes, big
 * endian), payload. Monitor → client: 1 stdout, 2 stderr (a terminal's output is all stdout), 3 the
 * exit code as decimal text (then the monitor closes). Client → monitor: 0 stdin bytes, 1 window size,
 * 2 close the container's stdin (docker's StdinOnce: the end of the client's input is the container's).
 */
import { join } from 'node:path';
import { readFileSync, rmSync } from 'node:fs';
import { writeFileAtomic } from '../util/fs.js';
import { fail } from '../util/errors.js';

export const FRAME_STDIN = 0;
export const FRAME_RESIZE = 1;
export const FRAME_CLOSE_STDIN = 2;
export const FRAME_STDOUT = 1;
export const FRAME_STDERR = 2;
export const FRAME_EXIT = 3;

/** The monitor's attach socket, in the container's directory. */
export function attachSocketPath(containerDir: string): string {
  return join(containerDir, 'attach.sock');
}

/**
 * -i / -t of a container, as docker's Config.OpenStdin / Config.Tty, and StdinOnce: docker sets it for
 * `create -i` and a foreground `run -i` (the end of the attached client's input closes the container's
 * stdin), not for `run -d -i` (the stdin stays open for the next client). Absent file: none of them.
 */
export interface AttachConfig { stdin: boolean; tty: boolean; stdinOnce?: boolean }

const configPath = (d: string) => join(d, 'attach.json');

export async function saveAttachConfig(containerDir: string, c: AttachConfig): Promise<void> {
  if (!c.stdin && !c.tty) return;
  await writeFileAtomic(configPath(containerDir), JSON.stringify(c) + '\n', 0o600);
}

export async function readAttachConfig(containerDir: string): Promise<AttachConfig> {
  try {
    // Synchronous: a tiny file, usually absent (no -i/-t), read at every start.
    const c = JSON.parse(readFileSync(configPath(containerDir), 'utf8')) as Partial<AttachConfig>;
    return { stdin: c.stdin === true, tty: c.tty === true, stdinOnce: c.stdinOnce === true };
  } catch {
    return { stdin: false, tty: false };
  }
}

/** The monitor's options for a container started detached; a stale socket of a killed monitor is removed first. */
export async function monitorAttachArgs(containerDir: string, tty: boolean): Promise<string[]> {
  const sock = attachSocketPath(containerDir);
  rmSync(sock, { force: true }); // an unlink of µs (usually of nothing): no thread-pool round trip
  const c = await readAttachConfig(containerDir);
  return ['--attach', sock, ...(c.stdin ? ['--stdin'] : []), ...(tty ? ['--tty'] : [])];
}

export function frame(type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, payload]);
}

export function resizeFrame(rows: number, cols: number): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt16BE(Math.max(0, Math.min(rows, 0xffff)), 0);
  p.writeUInt16BE(Math.max(0, Math.min(cols, 0xffff)), 2);
  return frame(FRAME_RESIZE, p);
}

/** Splits a byte stream into frames; bytes of an incomplete frame wait for the next chunk. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer, onFrame: (type: number, payload: Buffer) => void): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + len) break;
      const type = this.buf[0]!;
      const payload = this.buf.subarray(8, 8 + len);
      this.buf = this.buf.subarray(8 + len);
      onFrame(type, payload);
    }
  }
}

/**
 * docker's --detach-keys: a comma-separated sequence of `ctrl-X` (X one of a–z, @, [, \, ], ^, _) or
 * single characters. Default ctrl-p,ctrl-q. An empty string disables detaching.
 */
export function parseDetachKeys(spec: string): Buffer {
  if (spec === '') return Buffer.alloc(0);
  const out: number[] = [];
  for (const key of spec.split(',')) {
    const k = key.trim();
    const ctrl = /^ctrl-(.)$/i.exec(k);
    if (ctrl) {
      const c = ctrl[1]!;
      const lower = c.toLowerCase();
      if (lower >= 'a' && lower <= 'z') out.push(lower.charCodeAt(0) - 96);
      else if ('@[\\]^_'.includes(c)) out.push('@[\\]^_'.indexOf(c) === 0 ? 0 : 27 + '[\\]^_'.indexOf(c));
      else throw fail('EINVAL', `invalid --detach-keys "${spec}": unknown key ${k}`);
    } else if (k.length === 1) {
      out.push(k.charCodeAt(0));
    } else {
      throw fail('EINVAL', `invalid --detach-keys "${spec}": unknown key ${k} (want ctrl-<value> or a single character)`);
    }
  }
  return Buffer.from(out);
}

/**
 * Watches the input for the detach sequence, as docker's daemon does: bytes that may start it are
 * held back; when the sequence breaks they go to the container after all; when it completes, detach.
 */
export class DetachMatcher {
  private held = 0;
  constructor(private readonly keys: Buffer) {}
  /** Returns the bytes to forward and whether the sequence completed (bytes after it are dropped). */
  feed(chunk: Buffer): { forward: Buffer; detach: boolean } {
    if (this.keys.length === 0) return { forward: chunk, detach: false };
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.keys[this.held]) {
        this.held++;
        if (this.held === this.keys.length) return { forward: Buffer.from(out), detach: true };
        continue;
      }
      for (let i = 0; i < this.held; i++) out.push(this.keys[i]!);
      this.held = 0;
      if (b === this.keys[0]) this.held = 1;
      else out.push(b);
    }
    return { forward: Buffer.from(out), detach: false };
  }
}
