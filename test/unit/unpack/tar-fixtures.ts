/**
 * Test helpers: a tiny tar writer for crafted (including hostile) archives, and wrappers around
 * GNU tar and python's tarfile so the reader is checked against archives real tools make.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { TarReader, type TarEntry } from '../../../src/unpack/tar-reader.js';

export interface CraftEntry {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo';
  data?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extra pax records (raw values), e.g. SCHILY.xattr.security.capability. */
  pax?: Record<string, string | Buffer>;
}

const TYPEFLAG: Record<NonNullable<CraftEntry['type']>, string> = {
  file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6',
};

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, flag: string, size: number, e: Partial<CraftEntry>): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(e.mode ?? (flag === '5' ? 0o755 : 0o644), 8), 100, 'latin1');
  h.write(octal(e.uid ?? 0, 8), 108, 'latin1');
  h.write(octal(e.gid ?? 0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(e.mtime ?? 1700000000, 12), 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(flag, 156, 'latin1');
  h.write(e.linkname ?? '', 157, 100, 'utf8');
  h.write('ustar\0' + '00', 257, 'latin1');
  h.write(octal(e.devmajor ?? 0, 8), 329, 'latin1');
  h.write(octal(e.devminor ?? 0, 8), 337, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'latin1');
  return h;
}

function pad(b: Buffer): Buffer[] {
  const r = b.length % 512;
  return r === 0 ? [b] : [b, Buffer.alloc(512 - r)];
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** Builds an uncompressed tar. Names longer than 100 bytes and extra records go in a pax header. */
export function craftTar(entries: CraftEntry[], opts: { end?: boolean } = {}): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'file';
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    const pax: [string, Buffer][] = [];
    for (const [k, v] of Object.entries(e.pax ?? {})) pax.push([k, Buffer.from(v)]);
    let name = e.name;
    if (Buffer.byteLength(name) > 100) {
      pax.push(['path', Buffer.from(name)]);
      name = name.slice(0, 99);
    }
    if (pax.length) {
      const body = Buffer.concat(pax.map(([k, v]) => paxRecord(k, v)));
      out.push(header('PaxHeaders/x', 'x', body.length, {}), ...pad(body));
    }
    out.push(header(name, TYPEFLAG[type], type === 'file' ? data.length : 0, e));
    if (type === 'file' && data.length) out.push(...pad(data));
  }
  if (opts.end !== false) out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

export function craftTarGz(entries: CraftEntry[]): Buffer {
  return gzipSync(craftTar(entries));
}

export function streamOf(buf: Buffer, chunk = 65536): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) parts.push(buf.subarray(i, i + chunk));
  return Readable.from(parts);
}

export interface ReadEntry extends TarEntry {
  data: Buffer;
}

/** Reads a whole archive with TarReader, feeding it in `chunk`-byte pieces. */
export function readAll(tar: Buffer, chunk = 4096): ReadEntry[] {
  const out: ReadEntry[] = [];
  let cur: ReadEntry | undefined;
  let parts: Buffer[] = [];
  const r = new TarReader({
    entry(e) { cur = { ...e, data: Buffer.alloc(0) }; parts = []; },
    data(c) { parts.push(Buffer.from(c)); },
    entryEnd() { cur!.data = Buffer.concat(parts); out.push(cur!); cur = undefined; },
  });
  for (let i = 0; i < tar.length; i += chunk) r.write(tar.subarray(i, i + chunk));
  r.end();
  return out;
}

export function tempDir(prefix: string): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export function run(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): Buffer {
  return execFileSync(cmd, args, { cwd: opts.cwd, input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
}
