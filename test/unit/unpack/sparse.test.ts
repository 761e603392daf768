/**
 * Sparse files as GNU tar writes them: old GNU 'S' entries (with extension blocks when there are
 * more than 4 segments), pax GNU.sparse 1.0 (the map at the start of the data) and 0.1 (the map in
 * a pax record). The unpacked file must have the same bytes, the same size, and holes (few blocks).
 */
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MediaType } from '../../../src/oci/types.js';
import { unpackLayer } from '../../../src/unpack/index.js';
import { craftTar, readAll, run, streamOf, tempDir } from './tar-fixtures.js';

const isRoot = process.getuid?.() === 0;
const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

/** A 64 MiB file with `segments` 4 KiB data islands, one at the very end. */
function makeSparse(dir: string, segments: number): { path: string; size: number; islands: [number, Buffer][] } {
  const size = 64 * 1024 * 1024;
  const path = join(dir, 'src', 'holes.bin');
  mkdirSync(join(dir, 'src'), { recursive: true });
  const fd = openSync(path, 'w', 0o640);
  const islands: [number, Buffer][] = [];
  for (let i = 0; i < segments; i++) {
    const off = i === segments - 1 ? size - 4096 : i * 1024 * 1024 + 12345;
    const data = Buffer.alloc(4096, `island-${i}-`);
    writeSync(fd, data, 0, data.length, off);
    islands.push([off, data]);
  }
  closeSync(fd);
  return { path, size, islands };
}

async function unpackTar(tar: Buffer, chunk?: number) {
  const t = tempDir('tspod-sparse-out-');
  cleanups.push(t.cleanup);
  const dir = join(t.path, 'layer');
  mkdirSync(dir);
  await unpackLayer(streamOf(tar, chunk), MediaType.OciLayer, dir);
  return dir;
}

function expectSame(out: string, src: ReturnType<typeof makeSparse>) {
  const st = lstatSync(out);
  expect(st.size).toBe(src.size);
  expect(st.mode & 0o7777).toBe(0o640);
  expect(st.blocks * 512).toBeLessThan(1024 * 1024); // holes, not 64 MiB of zeros
  const got = readFileSync(out);
  for (const [off, data] of src.islands) expect(got.subarray(off, off + data.length).equals(data)).toBe(true);
  expect(got.subarray(4096 + 12345, 1024 * 1024).every((b) => b === 0)).toBe(true);
}

describe.skipIf(!isRoot)('sparse files', () => {
  for (const [label, args, segments] of [
    ['old GNU (S entry, 3 segments)', ['--format=gnu'], 3],
    ['old GNU with extension blocks (30 segments)', ['--format=gnu'], 30],
    ['pax GNU.sparse 1.0', ['--format=pax', '--sparse-version=1.0'], 30],
    ['pax GNU.sparse 0.1', ['--format=pax', '--sparse-version=0.1'], 5],
  ] as const) {
    it(`unpacks ${label} with its holes`, async () => {
      const t = tempDir('tspod-sparse-');
      cleanups.push(t.cleanup);
      const src = makeSparse(t.path, segments);
      const tar = run('tar', ['-c', '--sparse', ...args, '-C', join(t.path, 'src'), 'holes.bin']);
      expect(tar.length).toBeLessThan(2 * 1024 * 1024); // GNU tar did write it sparse
      const entries = readAll(tar);
      expect(entries).toHaveLength(1);
      expect(entries[0]!.name).toBe('holes.bin');
      expect(entries[0]!.sparseMap?.filter(([, l]) => l > 0).length).toBe(segments);
      for (const chunk of [65536, 100]) expectSame(join(await unpackTar(tar, chunk), 'holes.bin'), src);
    });
  }

  it('refuses sparse data that lies past the file size', async () => {
    const tar = craftTar([{ name: 'bad', data: 'x'.repeat(10), pax: { 'GNU.sparse.map': '100,10', 'GNU.sparse.size': '50' } }]);
    await expect(unpackTar(tar)).rejects.toThrow(/entry "bad": sparse data beyond its size 50/);
  });
});
