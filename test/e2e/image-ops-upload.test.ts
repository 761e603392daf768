// Issue #8: the push protocol piece by piece (src/registry/upload.ts) against the real fixture registry —
// HEAD, cross-repository mount and its fallback, monolithic and chunked uploads with chunk sizes that do and
// do not divide the blob, manifests — and, in addition, faults only a fake server can produce on demand.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { startFixtureRegistry, type FixtureRegistry } from '../support/registry.js';
import { RegistryUploader } from '../../src/registry/upload.js';
import { parseReference } from '../../src/reference/index.js';
import { sha256 } from '../../src/util/digest.js';
import { MediaType } from '../../src/oci/types.js';
import { TspodError } from '../../src/util/errors.js';

const config = { registryMirrors: {} };

async function getBlob(base: string, repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`${base}/v2/${repo}/blobs/${digest}`);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe('push protocol against the real registry', () => {
  let registry: FixtureRegistry;
  const run = randomBytes(4).toString('hex');
  beforeAll(async () => { registry = await startFixtureRegistry(); });
  afterAll(async () => { await registry?.stop(); });

  it('uploads monolithically, finds the blob with HEAD the next time, mounts it elsewhere, and falls back to an upload when a mount cannot be done', async () => {
    const up = new RegistryUploader({ config });
    try {
      const data = randomBytes(5000);
      const desc = { mediaType: MediaType.OciLayer, digest: sha256(data), size: data.length };
      const a = parseReference(`${registry.host}/uptest-${run}/a:x`);
      const b = parseReference(`${registry.host}/uptest-${run}/b:x`);
      const c = parseReference(`${registry.host}/uptest-${run}/c:x`);
      expect(await up.pushBlob(a, desc, () => Readable.from([data]))).toBe('uploaded');
      expect(up.stats.monolithic).toBe(1);
      expect(await up.pushBlob(a, desc, () => Readable.from([data]))).toBe('exists');
      expect(await up.pushBlob(b, desc, () => { throw new Error('must not read'); }, [`uptest-${run}/a`])).toBe('mounted');
      // c mounts from a repository that does not have it: the registry opens an ordinary upload instead
      const other = randomBytes(3000);
      const od = { mediaType: MediaType.OciLayer, digest: sha256(other), size: other.length };
      expect(await up.pushBlob(c, od, () => Readable.from([other]), [`uptest-${run}/a`])).toBe('uploaded');
      expect((await getBlob(registry.url, `uptest-${run}/b`, desc.digest)).equals(data)).toBe(true);
      expect((await getBlob(registry.url, `uptest-${run}/c`, od.digest)).equals(other)).toBe(true);
    } finally {
      await up.close();
    }
  });

  for (const [chunkSize, size] of [[4096, 4096 * 3], [1000, 10_500]] as const) {
    it(`uploads ${size} bytes in chunks of ${chunkSize} (${size % chunkSize === 0 ? 'dividing' : 'not dividing'} the blob) and the registry stores the exact bytes`, async () => {
      const up = new RegistryUploader({ config, monolithicMax: 100, chunkSize });
      try {
        const data = randomBytes(size);
        const desc = { mediaType: MediaType.OciLayer, digest: sha256(data), size: data.length };
        const ref = parseReference(`${registry.host}/uptest-${run}/chunk${chunkSize}:x`);
        // the source hands out odd-sized pieces: chunking must not depend on them
        const pieces = [data.subarray(0, 7), data.subarray(7, 5000), data.subarray(5000)];
        expect(await up.pushBlob(ref, desc, () => Readable.from(pieces))).toBe('uploaded');
        expect(up.stats.patches).toBe(Math.ceil(data.length / chunkSize));
        expect((await getBlob(registry.url, `uptest-${run}/chunk${chunkSize}`, desc.digest)).equals(data)).toBe(true);
      } finally {
        await up.close();
      }
    });
  }

  it('refuses a blob whose bytes do not match its digest, naming the digest (the registry says DIGEST_INVALID)', async () => {
    const up = new RegistryUploader({ config });
    try {
      const data = randomBytes(100);
      const desc = { mediaType: MediaType.OciLayer, digest: sha256('something else'), size: data.length };
      const err = await up.pushBlob(parseReference(`${registry.host}/uptest-${run}/bad:x`), desc, () => Readable.from([data])).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TspodError);
      expect((err as Error).message).toContain(desc.digest);
      expect((err as Error).message).not.toContain('\n');
    } finally {
      await up.close();
    }
  });

  it('puts a manifest by tag and returns its digest', async () => {
    const up = new RegistryUploader({ config });
    try {
      const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
      const ref = parseReference(`${registry.host}/uptest-${run}/m:v1`);
      await up.pushBlob(ref, { mediaType: MediaType.OciConfig, digest: sha256(cfg), size: cfg.length }, () => Readable.from([cfg]));
      const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: sha256(cfg), size: cfg.length }, layers: [] }));
      expect(await up.putManifest(ref, 'v1', m, MediaType.OciManifest)).toBe(sha256(m));
      const res = await fetch(`${registry.url}/v2/uptest-${run}/m/manifests/v1`, { headers: { accept: MediaType.OciManifest } });
      expect(Buffer.from(await res.arrayBuffer()).equals(m)).toBe(true);
    } finally {
      await up.close();
    }
  });
});

describe('push protocol: faults a real registry does not produce on demand (fake server)', () => {
  let server: Server;
  let host = '';
  let fault: 'range' | 'digest' | 'nolocation' = 'range';
  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.method === 'HEAD') return res.writeHead(404).end();
        if (req.method === 'POST') {
          if (fault === 'nolocation') return res.writeHead(202).end();
          return res.writeHead(202, { location: '/v2/x/blobs/uploads/1' }).end();
        }
        if (req.method === 'PATCH') return res.writeHead(202, { location: '/v2/x/blobs/uploads/1', range: '0-2' }).end();
        if (req.method === 'PUT') return res.writeHead(201, { 'docker-content-digest': sha256('other') }).end();
        res.writeHead(500).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    host = `127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => { await new Promise<void>((r) => server.close(() => r())); });

  const push = async (opts: { monolithicMax?: number; chunkSize?: number }) => {
    const up = new RegistryUploader({ config, ...opts });
    const data = randomBytes(64);
    try {
      return await up.pushBlob(parseReference(`${host}/x:y`), { mediaType: MediaType.OciLayer, digest: sha256(data), size: data.length }, () => Readable.from([data]))
        .catch((e: unknown) => e as TspodError);
    } finally {
      await up.close();
    }
  };

  it('stops when the registry reports a different range than the bytes sent', async () => {
    fault = 'range';
    const err = await push({ monolithicMax: 1, chunkSize: 32 });
    expect(err).toBeInstanceOf(TspodError);
    expect((err as TspodError).code).toBe('EREGISTRY');
    expect((err as TspodError).message).toMatch(/registry has bytes 0-2 after 32 bytes were sent/);
  });

  it('stops when the registry stores the blob under another digest', async () => {
    fault = 'digest';
    const err = await push({});
    expect((err as TspodError).code).toBe('EDIGEST');
    expect((err as TspodError).message).toMatch(/the registry stored it as sha256:/);
  });

  it('stops when an upload session comes without a Location', async () => {
    fault = 'nolocation';
    const err = await push({});
    expect((err as TspodError).code).toBe('EREGISTRY');
    expect((err as TspodError).message).toMatch(/without a Location/);
  });
});
