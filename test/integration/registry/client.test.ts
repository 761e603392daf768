/**
 * The registry client against a real registry: Debian's docker-registry (distribution 2.8) holding images
 * built by umoci/skopeo (test/support/registry.ts). Checks media types, platform choice in a real index,
 * verified configs, full and ranged blob downloads, error mapping, and mirrors.
 */
import { createServer } from 'node:net';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../../src/registry/client.js';
import { parseReference } from '../../../src/reference/index.js';
import { parseManifest } from '../../../src/oci/manifest.js';
import { parseImageConfig } from '../../../src/oci/config.js';
import { parsePlatform, selectManifest } from '../../../src/oci/platform.js';
import { MediaType, type ImageManifest } from '../../../src/oci/types.js';
import { newHash, digestOf, sha256 } from '../../../src/util/digest.js';
import { TspodError } from '../../../src/util/errors.js';
import { alpineFixturesDir, FIXTURE_IMAGES, startFixtureRegistry, type FixtureRegistry } from '../../support/registry.js';
import { rejection } from '../../support/errors.js';

let registry: FixtureRegistry;
let client: RegistryClient;

beforeAll(async () => {
  registry = await startFixtureRegistry();
  client = new RegistryClient({ config: {}, retry: { baseDelayMs: 10, maxDelayMs: 50 } });
});
afterAll(async () => {
  await client?.close();
  await registry?.stop();
});

const ref = (name: string) => parseReference(`${registry.host}/${name}`);

async function manifestOf(name: string, reference?: string): Promise<{ manifest: ImageManifest; digest: string; mediaType: string }> {
  const r = ref(name);
  const got = await client.getManifest(r, reference ?? r.tag!);
  const parsed = parseManifest(got.bytes, got.mediaType, name);
  if (parsed.kind !== 'manifest') throw new Error(`${name} is an index`);
  return { manifest: parsed.manifest, digest: got.digest, mediaType: parsed.mediaType };
}

async function hashStream(body: Readable): Promise<{ digest: string; size: number }> {
  const h = newHash();
  let size = 0;
  for await (const c of body) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { digest: digestOf(h), size };
}

describe('registry client against docker-registry', () => {
  it('pulls an OCI image: manifest, verified config, full and ranged layer', async () => {
    const { manifest, mediaType } = await manifestOf(FIXTURE_IMAGES.busybox);
    expect(mediaType).toBe(MediaType.OciManifest);
    const r = ref(FIXTURE_IMAGES.busybox);
    const config = parseImageConfig(await client.getBlobBytes(r, manifest.config));
    expect(config.rootfs.diff_ids).toHaveLength(manifest.layers.length);
    expect(config.config?.Cmd).toEqual(['sh']);

    const layer = manifest.layers[0]!;
    const full = await client.getBlob(r, layer);
    expect(full.offset).toBe(0);
    expect(await hashStream(full.body)).toEqual({ digest: layer.digest, size: layer.size });

    // resume from the middle: the first half from a full read, the rest from a ranged read
    const half = Math.floor(layer.size / 2);
    const chunks: Buffer[] = [];
    let got = 0;
    const first = await client.getBlob(r, layer);
    for await (const c of first.body) {
      chunks.push(c as Buffer);
      got += (c as Buffer).length;
      if (got >= half) break; // destroys the stream
    }
    const head = Buffer.concat(chunks).subarray(0, half);
    const rest = await client.getBlob(r, layer, half);
    expect(rest.offset).toBe(half); // distribution honours Range
    const h = newHash().update(head);
    let size = head.length;
    for await (const c of rest.body) {
      h.update(c as Buffer);
      size += (c as Buffer).length;
    }
    expect({ digest: digestOf(h), size }).toEqual({ digest: layer.digest, size: layer.size });
  });

  it('by digest: the bytes hash to the digest asked for', async () => {
    const { digest } = await manifestOf(FIXTURE_IMAGES.busybox);
    const again = await client.getManifest(ref(FIXTURE_IMAGES.busybox), digest);
    expect(sha256(again.bytes)).toBe(digest);
  });

  it('maps missing tags and repositories to ENOTFOUND naming the reference', async () => {
    const e = await rejection(client.getManifest(ref('library/busybox:nope'), 'nope'));
    expect(e.code).toBe('ENOTFOUND');
    expect(e.message).toBe(`pull ${registry.host}/library/busybox:nope: manifest unknown`);
    const e2 = await rejection(client.getManifest(ref('library/doesnotexist:1'), '1'));
    expect(e2.code).toBe('ENOTFOUND');
    expect(e2.message).toMatch(new RegExp(`^pull ${registry.host}/library/doesnotexist:1: (name|manifest) unknown`));
    const blob = { mediaType: MediaType.OciLayerGzip, digest: sha256('absent'), size: 1 };
    const e3 = await rejection(client.getBlobBytes(ref(FIXTURE_IMAGES.busybox), blob));
    expect(e3.code).toBe('ENOTFOUND');
    expect(e3.message).toContain(blob.digest);
  });

  it('uses a mirror, never touching the (dead) upstream when the mirror has the image', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const deadPort = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const upstream = `127.0.0.1:${deadPort}`;
    const mirrored = new RegistryClient({
      config: { registryMirrors: { [upstream]: [registry.url] } },
      retry: { tries: 2, baseDelayMs: 5, maxDelayMs: 10 },
    });
    try {
      const r = parseReference(`${upstream}/${FIXTURE_IMAGES.busybox}`);
      const m = await mirrored.getManifest(r, 'latest');
      const parsed = parseManifest(m.bytes, m.mediaType, 'busybox');
      expect(parsed.kind).toBe('manifest');
      // a tag the mirror lacks goes upstream, which is down: the mirror's answer first, then the upstream's error
      const e = await rejection(mirrored.getManifest(r, 'nope'));
      expect(e.code).toBe('ENETWORK');
      expect(e.message).toMatch(/: the mirrors answered http:\/\/127\.0\.0\.1:\d+: manifest unknown.*; http:\/\/\S+ could not be reached: /);
    } finally {
      await mirrored.close();
    }
  });
});

describe.skipIf(!alpineFixturesDir())('alpine fixtures (need ../shared/fixtures/alpine)', () => {
  it('selects each platform of the alpine:3.19 index, matching the per-platform tags', async () => {
    const r = ref(FIXTURE_IMAGES.alpineIndex);
    const got = await client.getManifest(r, '3.19');
    const parsed = parseManifest(got.bytes, got.mediaType, FIXTURE_IMAGES.alpineIndex);
    expect(parsed.kind).toBe('index');
    if (parsed.kind !== 'index') return;
    for (const [platform, name] of Object.entries(FIXTURE_IMAGES.alpinePlatforms)) {
      const chosen = selectManifest(parsed.index, parsePlatform(platform), FIXTURE_IMAGES.alpineIndex);
      const single = await manifestOf(name);
      expect(chosen.digest, platform).toBe(single.digest);
      const config = parseImageConfig(await client.getBlobBytes(r, single.manifest.config));
      expect(`${config.os}/${config.architecture}${config.variant ? '/' + config.variant : ''}`).toBe(platform);
    }
    // arm/v8 (32-bit) takes v7, the best lower variant
    expect(selectManifest(parsed.index, parsePlatform('linux/arm/v8'), 'x').digest).toBe(
      (await manifestOf(FIXTURE_IMAGES.alpinePlatforms['linux/arm/v7'])).digest,
    );
    const e = (() => {
      try {
        selectManifest(parsed.index, parsePlatform('linux/s390x'), `${registry.host}/${FIXTURE_IMAGES.alpineIndex}`);
      } catch (err) {
        return err as TspodError;
      }
      throw new Error('expected ENOTFOUND');
    })();
    expect(e.code).toBe('ENOTFOUND');
    expect(e.message).toBe(
      `no image for platform linux/s390x in ${registry.host}/${FIXTURE_IMAGES.alpineIndex}; ` +
        'available: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8',
    );
  });

  it('reads a Docker v2 schema 2 image (alpine:3.20)', async () => {
    const { manifest, mediaType } = await manifestOf(FIXTURE_IMAGES.alpineDocker);
    expect(mediaType).toBe(MediaType.DockerManifest);
    expect(manifest.config.mediaType).toBe(MediaType.DockerConfig);
    const r = ref(FIXTURE_IMAGES.alpineDocker);
    const config = parseImageConfig(await client.getBlobBytes(r, manifest.config));
    expect(config.config?.Cmd).toEqual(['/bin/sh']);
    const layer = manifest.layers[0]!;
    expect(layer.mediaType).toBe(MediaType.DockerLayerGzip);
    expect(await hashStream((await client.getBlob(r, layer)).body)).toEqual({ digest: layer.digest, size: layer.size });
  });
});
