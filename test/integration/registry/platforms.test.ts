/**
 * Platform choice through the real registry: an index listing arm/v5, arm/v6, arm/v7, arm (no variant),
 * arm64/v8, arm64 (no variant) and amd64 is pushed to the fixture registry in several orders; pulling
 * each platform stores the right child, whatever the order.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../../store/index.js';
import { pullImage } from '../../../src/image/pull.js';
import { RegistryClient } from '../../../src/registry/client.js';
import { isRoot } from '../../support/caps.js';
import { getBlob, putBlob, putManifest } from '../../support/recompress.js';
import { FIXTURE_IMAGES, repoRoot, startFixtureRegistry, type FixtureRegistry } from '../../support/registry.js';

const gate = isRoot();
const REPO = 'tspod-test/multiarch';
const PLATFORMS = ['linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm', 'linux/arm64/v8', 'linux/arm64', 'linux/amd64'];
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** wanted platform → the index entry that must be chosen (equivalent entries: either) */
const EXPECT: [string, string[]][] = [
  ['linux/arm/v7', ['linux/arm/v7']],
  ['linux/arm/v6', ['linux/arm/v6']],
  ['linux/arm/v5', ['linux/arm/v5']],
  ['linux/arm', ['linux/arm/v7']],
  ['linux/arm64', ['linux/arm64/v8', 'linux/arm64']],
  ['linux/arm64/v8', ['linux/arm64/v8', 'linux/arm64']],
  ['linux/amd64', ['linux/amd64']],
];

describe.skipIf(gate)('platform choice from an index in the real registry', () => {
  let registry: FixtureRegistry;
  let base: string;
  const child: Record<string, { digest: string; size: number }> = {};
  const stores: Store[] = [];

  beforeAll(async () => {
    registry = await startFixtureRegistry();
    mkdirSync(join(repoRoot(), '.tspod-test'), { recursive: true });
    base = mkdtempSync(join(repoRoot(), '.tspod-test', 'platforms-'));
    // the busybox layer under one config per platform (tspod checks a child's config against the index)
    const [srcRepo, srcTag] = FIXTURE_IMAGES.busybox.split(':') as [string, string];
    const m = await (await fetch(`${registry.url}/v2/${srcRepo}/manifests/${srcTag}`, { headers: { accept: OCI_MANIFEST } })).json() as {
      config: { digest: string }; layers: { digest: string; size: number; mediaType: string }[];
    };
    const config = JSON.parse((await getBlob(registry.url, srcRepo, m.config.digest)).toString('utf8'));
    const layer = await getBlob(registry.url, srcRepo, m.layers[0]!.digest);
    await putBlob(registry.url, REPO, layer);
    for (const p of PLATFORMS) {
      const [os, architecture, variant] = p.split('/');
      const cfg = Buffer.from(JSON.stringify({ ...config, os, architecture, ...(variant ? { variant } : { variant: undefined }) }));
      const cfgDigest = await putBlob(registry.url, REPO, cfg);
      const manifest = Buffer.from(JSON.stringify({
        schemaVersion: 2, mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfgDigest, size: cfg.length },
        layers: m.layers,
      }));
      child[p] = { digest: await putManifest(registry.url, REPO, p.replaceAll('/', '-'), OCI_MANIFEST, manifest), size: manifest.length };
    }
  });

  afterAll(async () => {
    for (const s of stores) s.close();
    await registry?.stop();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  const orders = [
    PLATFORMS,
    [...PLATFORMS].reverse(),
    ['linux/amd64', 'linux/arm', 'linux/arm64', 'linux/arm/v5', 'linux/arm64/v8', 'linux/arm/v7', 'linux/arm/v6'],
    ['linux/arm/v6', 'linux/arm64', 'linux/arm/v7', 'linux/amd64', 'linux/arm', 'linux/arm/v5', 'linux/arm64/v8'],
  ];

  it('picks the right child for each platform in every order', async () => {
    const store = await Store.open(mkdtempSync(join(base, 'store-')));
    stores.push(store);
    const client = new RegistryClient({ config: {} });
    try {
      for (const [i, order] of orders.entries()) {
        const index = Buffer.from(JSON.stringify({
          schemaVersion: 2, mediaType: OCI_INDEX,
          manifests: order.map((p) => {
            const [os, architecture, variant] = p.split('/');
            return { mediaType: OCI_MANIFEST, ...child[p], platform: { os, architecture, ...(variant ? { variant } : {}) } };
          }),
        }));
        await putManifest(registry.url, REPO, `order${i}`, OCI_INDEX, index);
        for (const [want, ok] of EXPECT) {
          const res = await pullImage(`${registry.host}/${REPO}:order${i}`, { store, config: {}, client, platform: want });
          const got = PLATFORMS.find((p) => child[p]!.digest === res.manifestDigest);
          expect(ok, `order ${i}: ${want} chose ${got}`).toContain(got);
        }
      }
    } finally {
      await client.close();
    }
  });
});
