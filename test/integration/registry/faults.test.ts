/**
 * Faults injected by a proxy IN FRONT OF the real fixture registry (Debian's docker-registry): the
 * pull pipeline (src/image/pull.ts) must survive what real registries, CDNs and proxies do, and must
 * never store anything corrupt.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../../store/index.js';
import { pullImage } from '../../../src/image/pull.js';
import { RegistryClient } from '../../../src/registry/client.js';
import { staticCredentials } from '../../../src/registry/credentials.js';
import { TspodError } from '../../../src/util/errors.js';
import { isRoot } from '../../support/caps.js';
import { maxInFlight, startFaultProxy, type FaultProxy } from '../../support/fault-proxy.js';
import { FIXTURE_IMAGES, repoRoot, startFixtureRegistry, type FixtureRegistry } from '../../support/registry.js';

const gate = isRoot();
const BUSYBOX_LAYER = 'sha256:f27e607e675c'; // prefix; the full digest is read from the manifest
const FAST_RETRY = { tries: 4, baseDelayMs: 20, maxDelayMs: 100, rateLimitBudgetMs: 5_000 };

describe.skipIf(gate)('pull through a fault-injecting proxy in front of the real registry', () => {
  let registry: FixtureRegistry;
  let proxy: FaultProxy;
  /** a second loopback address that refuses any request carrying Authorization (a CDN / object store) */
  let cdn: FaultProxy;
  let base: string;
  const stores: Store[] = [];

  beforeAll(async () => {
    registry = await startFixtureRegistry();
    proxy = await startFaultProxy(registry.url);
    cdn = await startFaultProxy(registry.url, { host: '127.0.0.2' });
    cdn.rule = (r) => (r.authorization ? { kind: 'respond', status: 400, body: 'authorization sent to the CDN' } : undefined);
    mkdirSync(join(repoRoot(), '.tspod-test'), { recursive: true });
    base = mkdtempSync(join(repoRoot(), '.tspod-test', 'faults-'));
  });

  afterEach(() => {
    proxy.rule = () => undefined;
    proxy.reset();
    cdn.reset();
  });

  afterAll(async () => {
    for (const s of stores) s.close();
    await proxy?.close();
    await cdn?.close();
    await registry?.stop();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  async function freshStore(): Promise<Store> {
    const s = await Store.open(mkdtempSync(join(base, 'store-')));
    stores.push(s);
    return s;
  }

  function client(creds = false): RegistryClient {
    return new RegistryClient({
      config: {},
      retry: FAST_RETRY,
      ...(creds ? { credentials: staticCredentials(proxy.host, { username: 'alice', password: 's3cret-pw' }) } : {}),
    });
  }

  async function pull(store: Store, image: string, c = client()) {
    try {
      return await pullImage(`${proxy.host}/${image}`, { store, config: {}, client: c, platform: 'linux/amd64' });
    } finally {
      await c.close();
    }
  }

  /** No partial downloads, no blob whose bytes do not hash to its name. */
  function checkStoreClean(store: Store): void {
    const ingest = join(store.root, 'ingest');
    expect(existsSync(ingest) ? readdirSync(ingest) : []).toEqual([]);
  }

  it('follows a 307 for blobs to another host and never sends it the registry credentials', async () => {
    const store = await freshStore();
    proxy.rule = (r) => {
      if (!r.path.startsWith('/v2/')) return undefined;
      // the registry demands Basic auth, so every request to it carries Authorization…
      if (!r.authorization) return { kind: 'respond', status: 401, headers: { 'www-authenticate': 'Basic realm="fault-proxy"' } };
      // …and sends blob downloads elsewhere, as Docker Hub does with its CDN
      if (r.method === 'GET' && r.path.includes('/blobs/')) return { kind: 'redirect', location: `${cdn.url}${r.path}` };
      return undefined;
    };
    const res = await pull(store, FIXTURE_IMAGES.layered, client(true));
    expect(res.layersFetched).toBe(4);
    const cdnBlobGets = cdn.log.filter((e) => e.path.includes('/blobs/'));
    // config + 4 layers all came from the CDN, none with Authorization, all 200
    expect(cdnBlobGets.length).toBe(5);
    expect(cdnBlobGets.every((e) => e.authorization === undefined && e.status === 200)).toBe(true);
    // the registry itself did get the credentials
    expect(proxy.log.some((e) => e.authorization === 'Basic ' + Buffer.from('alice:s3cret-pw').toString('base64'))).toBe(true);
    checkStoreClean(store);
  });

  it('waits out a 429 with Retry-After, and rides over 503s', async () => {
    const store = await freshStore();
    proxy.rule = (r) => {
      if (r.path.includes('/manifests/') && r.nth === 1) {
        return { kind: 'respond', status: 429, headers: { 'retry-after': '1' }, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' };
      }
      if (r.path.includes('/blobs/') && r.nth <= 2) return { kind: 'respond', status: 503, body: 'unavailable' };
      return undefined;
    };
    const res = await pull(store, FIXTURE_IMAGES.busybox);
    expect(res.layersFetched).toBe(1);
    const manifestCalls = proxy.log.filter((e) => e.path.includes('/manifests/latest'));
    expect(manifestCalls.map((e) => e.status)).toEqual([429, 200]);
    const blobCalls = proxy.log.filter((e) => e.path.includes('/blobs/'));
    expect(blobCalls.filter((e) => e.status === 503).length).toBe(4); // 2 for the config, 2 for the layer
    checkStoreClean(store);
  });

  it('fails with a rate-limit error once the Retry-After budget is spent', async () => {
    const store = await freshStore();
    proxy.rule = (r) => (r.path.includes('/manifests/')
      ? { kind: 'respond', status: 429, headers: { 'retry-after': '3600' }, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' }
      : undefined);
    const err = await pull(store, FIXTURE_IMAGES.busybox).catch((e) => e);
    expect(err).toBeInstanceOf(TspodError);
    expect(err.code).toBe('ERATELIMIT');
    expect(err.message).toMatch(/rate limited/);
    expect(err.message).toContain(`${proxy.host}/library/busybox`);
    expect(await store.listRefs()).toEqual([]);
  });

  it('resumes a blob cut mid-way with a Range request and downloads no byte twice', async () => {
    const store = await freshStore();
    const CUT = 400_000;
    proxy.rule = (r) => (r.path.includes(`/blobs/${BUSYBOX_LAYER}`) && r.nth === 1 ? { kind: 'cut', afterBytes: CUT } : undefined);
    const res = await pull(store, FIXTURE_IMAGES.busybox);
    expect(res.layersFetched).toBe(1);
    const gets = proxy.log.filter((e) => e.path.includes(`/blobs/${BUSYBOX_LAYER}`));
    expect(gets.length).toBe(2);
    expect(gets[0]!.range).toBeUndefined();
    expect(gets[0]!.bytesSent).toBe(CUT);
    // every byte that arrived before the cut was kept: the second request starts exactly there
    expect(gets[1]!.range).toBe(`bytes=${CUT}-`);
    expect(gets[1]!.status).toBe(206);
    expect(gets[0]!.bytesSent + gets[1]!.bytesSent).toBe(1088168);
    checkStoreClean(store);
  });

  it('refuses a blob with the wrong digest, naming it, and stores nothing of it', async () => {
    const store = await freshStore();
    proxy.rule = (r) => (r.path.includes(`/blobs/${BUSYBOX_LAYER}`) ? { kind: 'corrupt' } : undefined);
    const err = await pull(store, FIXTURE_IMAGES.busybox).catch((e) => e);
    expect(err).toBeInstanceOf(TspodError);
    expect(err.code).toBe('EDIGEST');
    expect(err.message).toMatch(new RegExp(`${BUSYBOX_LAYER}[0-9a-f]{52}`));
    const layerDigest = /sha256:f27e607e675c[0-9a-f]{52}/.exec(err.message)![0];
    expect(await store.hasBlob(layerDigest as `sha256:${string}`)).toBe(false);
    expect(await store.listRefs()).toEqual([]);
    expect(readdirSync(join(store.root, 'layers'))).toEqual([]);
    checkStoreClean(store);
    // the same store then pulls the genuine bytes fine
    proxy.rule = () => undefined;
    expect((await pull(store, FIXTURE_IMAGES.busybox)).layersFetched).toBe(1);
  });

  it('never stores a blob whose body is longer or shorter than its descriptor', async () => {
    const store = await freshStore();
    const m = (await (await fetch(`${registry.url}/v2/library/busybox/manifests/latest`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as { layers: { digest: string; size: number }[] };
    const layer = m.layers[0]!;
    const real = Buffer.from(await (await fetch(`${registry.url}/v2/library/busybox/blobs/${layer.digest}`)).arrayBuffer());
    for (const body of [Buffer.concat([real, Buffer.from('trailing junk')]), real.subarray(0, real.length - 1000)]) {
      proxy.rule = (r) => (r.path.endsWith(`/blobs/${layer.digest}`)
        ? { kind: 'respond', status: 200, headers: { 'content-type': 'application/octet-stream' }, body }
        : undefined);
      const err = await pull(store, FIXTURE_IMAGES.busybox).catch((e) => e);
      expect(err).toBeInstanceOf(TspodError);
      expect(err.code).toBe('EDIGEST');
      expect(err.message).toContain(layer.digest);
      expect(await store.hasBlob(layer.digest as `sha256:${string}`)).toBe(false);
      expect(await store.listRefs()).toEqual([]);
      checkStoreClean(store);
    }
  });

  it('rejects a docker schema 1 manifest with a message naming the image', async () => {
    const store = await freshStore();
    const schema1 = JSON.stringify({
      schemaVersion: 1, name: 'library/busybox', tag: 'latest', architecture: 'amd64',
      fsLayers: [{ blobSum: 'sha256:' + 'a'.repeat(64) }], history: [{ v1Compatibility: '{}' }],
      signatures: [{ header: {}, signature: 'x', protected: 'y' }],
    });
    proxy.rule = (r) => (r.path.includes('/manifests/')
      ? { kind: 'respond', status: 200, headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' }, body: schema1 }
      : undefined);
    const err = await pull(store, FIXTURE_IMAGES.busybox).catch((e) => e);
    expect(err).toBeInstanceOf(TspodError);
    expect(err.code).toBe('EUNSUPPORTED');
    expect(err.message).toContain(`${proxy.host}/library/busybox:latest`);
    expect(err.message).toMatch(/schema 1/);
    expect(await store.listRefs()).toEqual([]);
  });

  it('downloads layers in parallel, never more than the bound at once', async () => {
    // every layer takes a while (the small ones trickle 64 bytes at a time), so all four would overlap
    proxy.rule = (r) => (!r.path.includes('/blobs/') ? undefined
      : r.path.includes(BUSYBOX_LAYER) ? { kind: 'throttle', chunk: 64 * 1024, delayMs: 10 } : { kind: 'throttle', chunk: 64, delayMs: 20 });
    const isLayer = (e: { path: string }) => e.path.includes('/blobs/') && !e.path.includes(configDigest);
    let configDigest = 'none';
    const store = await freshStore();
    const c = client();
    const res = await pullImage(`${proxy.host}/${FIXTURE_IMAGES.layered}`, { store, config: {}, client: c, concurrency: 2 }).finally(() => c.close());
    configDigest = res.imageId;
    expect(maxInFlight(proxy.log, isLayer)).toBe(2);
    proxy.reset();
    const store2 = await freshStore();
    const c2 = client();
    await pullImage(`${proxy.host}/${FIXTURE_IMAGES.layered}`, { store: store2, config: {}, client: c2 }).finally(() => c2.close());
    expect(maxInFlight(proxy.log, isLayer)).toBe(3); // the default
  });

  it('fetches a foreign layer from its URLs when the registry does not have it', async () => {
    const store = await freshStore();
    const r = await fetch(`${registry.url}/v2/library/busybox/manifests/latest`, {
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
    });
    const m = (await r.json()) as { config: object; layers: { digest: string; size: number }[] };
    const layer = m.layers[0]!;
    const foreign = JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { ...m.config, mediaType: 'application/vnd.docker.container.image.v1+json' },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: layer.digest, size: layer.size,
        urls: [`${cdn.url}/v2/library/busybox/blobs/${layer.digest}`] }],
    });
    proxy.rule = (q) => {
      if (q.path === '/v2/library/busybox/manifests/foreign') {
        return { kind: 'respond', status: 200, headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v2+json' }, body: foreign };
      }
      if (q.path.endsWith(`/blobs/${layer.digest}`)) {
        return { kind: 'respond', status: 404, headers: { 'content-type': 'application/json' }, body: '{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}' };
      }
      return undefined;
    };
    const c = client();
    const res = await pullImage(`${proxy.host}/library/busybox:foreign`, { store, config: {}, client: c }).finally(() => c.close());
    expect(res.layersFetched).toBe(1);
    expect(cdn.log.filter((e) => e.path.endsWith(layer.digest) && e.status === 200 && !e.authorization)).toHaveLength(1);
    checkStoreClean(store);
  });

  it('names the platforms an index offers when none fits', async () => {
    const store = await freshStore();
    const c = client();
    const err = await pullImage(`${proxy.host}/${FIXTURE_IMAGES.alpineIndex}`, { store, config: {}, client: c, platform: 'linux/s390x' })
      .finally(() => c.close()).catch((e) => e);
    expect(err).toBeInstanceOf(TspodError);
    expect(err.message).toContain('linux/s390x');
    expect(err.message).toMatch(/available: .*linux\/amd64.*linux\/arm64\/v8/);
  });

  it('checks the manifest bytes when pulling by digest', async () => {
    const store = await freshStore();
    const good = await pull(store, FIXTURE_IMAGES.busybox);
    proxy.rule = (r) => (r.path.includes('/manifests/sha256:') ? { kind: 'corrupt' } : undefined);
    const store2 = await freshStore();
    const err = await pull(store2, `library/busybox@${good.manifestDigest}`).catch((e) => e);
    expect(err).toBeInstanceOf(TspodError);
    expect(err.code).toBe('EDIGEST');
    expect(await store2.listRefs()).toEqual([]);
  });
});
