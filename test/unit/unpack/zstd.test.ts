import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MediaType } from '../../../src/oci/types.js';
import { unpackLayer } from '../../../src/unpack/index.js';
import { zstdDecompress } from '../../../src/unpack/zstd.js';
import { sha256 } from '../../../src/util/digest.js';
import { craftTar, streamOf, tempDir } from './tar-fixtures.js';

const isRoot = process.getuid?.() === 0;
const zstd = (b: Buffer, args: string[] = []) => execFileSync('zstd', ['-q', '-c', ...args], { input: b, maxBuffer: 64 << 20 });

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

async function* chunks(b: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

describe('zstd decompression through the zstd program', () => {
  it('streams several frames, in small chunks, to the exact bytes', async () => {
    const a = Buffer.from('a'.repeat(300_000) + 'tail');
    const b = Buffer.alloc(2_000_000);
    for (let i = 0; i < b.length; i++) b[i] = (i * 7919) % 251;
    const both = Buffer.concat([zstd(a), zstd(b, ['--no-content-size'])]);
    expect((await collect(zstdDecompress(chunks(both, 1000)))).equals(Buffer.concat([a, b]))).toBe(true);
  });

  it('fails with EINVAL on corrupt input and EUNSUPPORTED naming the program when it is missing', async () => {
    const z = zstd(Buffer.alloc(100_000, 1));
    z[z.length - 3] ^= 0xff;
    await expect(collect(zstdDecompress(chunks(z, 4096)))).rejects.toMatchObject({ code: 'EINVAL', message: /^unpack layer: zstd: / });
    const saved = process.env.TSPOD_ZSTD;
    process.env.TSPOD_ZSTD = '/nonexistent/zstd';
    try {
      await expect(collect(zstdDecompress(chunks(zstd(Buffer.from('x')), 10)))).rejects.toMatchObject({
        code: 'EUNSUPPORTED', message: expect.stringContaining('/nonexistent/zstd not found') });
    } finally {
      if (saved === undefined) delete process.env.TSPOD_ZSTD;
      else process.env.TSPOD_ZSTD = saved;
    }
  });

  it('stopping early kills the child and lets the caller go on', async () => {
    const big = zstd(Buffer.alloc(20_000_000, 3));
    const gen = zstdDecompress(chunks(big, 64 * 1024));
    const first = await gen.next();
    expect(first.done).toBe(false);
    await gen.return(undefined);
  });

  it.skipIf(!isRoot)('unpacks a +zstd layer and reports the diffID of the tar', async () => {
    const t = tempDir('tspod-unpack-zstd-ok-');
    cleanups.push(t.cleanup);
    const dir = join(t.path, 'layer');
    mkdirSync(dir);
    const tar = craftTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/hello', data: 'hello zstd\n'.repeat(1000) }]);
    const res = await unpackLayer(streamOf(zstd(tar), 777), MediaType.OciLayerZstd, dir);
    expect(res.diffId).toBe(sha256(tar));
    expect(readFileSync(join(dir, 'etc/hello'), 'utf8')).toBe('hello zstd\n'.repeat(1000));
  });
});
