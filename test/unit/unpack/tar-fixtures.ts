/**
 * Test helpers: crafted (including hostile) archives (written by test/support/layers.ts), and wrappers around
 * GNU tar and python's tarfile so the reader is checked against archives real tools make.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { TarReader, type TarEntry } from '../../../src/unpack/tar-reader.js';
import { craftLayer, type LayerEntry } from '../../support/layers.js';

/** An entry of a crafted archive; the writer is the one the store tests push as image layers. */
export type CraftEntry = LayerEntry;

/** Builds an uncompressed tar. Names longer than 100 bytes and extra records go in a pax header. */
export function craftTar(entries: CraftEntry[], opts: { end?: boolean } = {}): Buffer {
  return craftLayer(entries, opts);
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
