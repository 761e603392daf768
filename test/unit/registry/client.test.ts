import { createServer } from 'node:net';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../../src/registry/client.js';
import type { EngineConfig } from '../../../src/config/index.js';
import { parseReference, type Reference } from '../../../src/reference/index.js';
import { MediaType, type Descriptor } from '../../../src/oci/types.js';
import { sha256 } from '../../../src/util/digest.js';
import { FakeRegistry, type FakeRegistryOptions } from './fake-registry.js';
import { rejection } from '../../support/errors.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const FAST = { baseDelayMs: 5, maxDelayMs: 20 };

async function setup(opts: FakeRegistryOptions = {}, config: EngineConfig = {}, clientOpts: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}) {
  const reg = new FakeRegistry(opts);
  cleanups.push(() => reg.stop());
  await reg.start();
  const client = new RegistryClient({ config, retry: FAST, ...clientOpts });
  cleanups.push(() => client.close());
  const ref = parseReference(`${reg.host}/library/demo:1`);
  const layer = reg.addBlob(Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz'.repeat(100)));
  const configBlob = reg.addBlob(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, ...configBlob },
    layers: [{ mediaType: MediaType.OciLayerGzip, ...layer }],
  });
  const manifestDigest = reg.addManifest('library/demo', ['1'], manifest, MediaType.OciManifest);
  const layerDesc: Descriptor = { mediaType: MediaType.OciLayerGzip, ...layer };
  const configDesc: Descriptor = { mediaType: MediaType.OciConfig, ...configBlob };
  return { reg, client, ref, manifest, manifestDigest, layerDesc, configDesc };
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('RegistryClient manifests', () => {
  it('gets a manifest by tag and by digest with the Accept list, verifying digests', async () => {
    const { reg, client, ref, manifest, manifestDigest } = await setup();
    const byTag = await client.getManifest(ref, '1');
    expect(byTag.bytes.toString()).toBe(manifest);
    expect(byTag.digest).toBe(manifestDigest);
    expect(byTag.mediaType).toBe(MediaType.OciManifest);
    const byDigest = await client.getManifest(ref, manifestDigest);
    expect(byDigest.digest).toBe(manifestDigest);
    expect(reg.log[0]!.accept).toBe(
      [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest].join(', '),
    );
    expect(client.stats).toMatchObject({ manifestRequests: 2, blobRequests: 0 });
  });

  it('EDIGEST when the bytes do not match the digest asked for or Docker-Content-Digest', async () => {
    const { reg, client, ref } = await setup();
    const wrong = sha256('something else');
    reg.manifests.set(`library/demo/${wrong}`, { body: Buffer.from('{"schemaVersion":2}'), contentType: MediaType.OciManifest });
    const e = await rejection(client.getManifest(ref, wrong));
    expect(e.code).toBe('EDIGEST');
    expect(e.message).toContain(`pull ${reg.host}/library/demo@${wrong}`);

    reg.manifests.set('library/demo/lying', { body: Buffer.from('{}'), contentType: MediaType.OciManifest, dockerContentDigest: wrong });
    const e2 = await rejection(client.getManifest(ref, 'lying'));
    expect(e2.code).toBe('EDIGEST');
    expect(e2.message).toContain(wrong);
  });

  it('summarises MANIFEST_UNKNOWN as ENOTFOUND naming the reference', async () => {
    const { reg, client, ref } = await setup();
    const e = await rejection(client.getManifest(ref, 'nope'));
    expect(e.code).toBe('ENOTFOUND');
    expect(e.message).toBe(`pull ${reg.host}/library/demo:nope: manifest unknown`);
  });

  it('caps manifests at 4 MiB', async () => {
    const { reg, client, ref } = await setup();
    reg.addManifest('library/demo', ['huge'], Buffer.alloc(4 * 1024 * 1024 + 1, 0x20), MediaType.OciManifest);
    const e = await rejection(client.getManifest(ref, 'huge'));
    expect(e.code).toBe('EREGISTRY');
    expect(e.message).toMatch(/larger than 4194304 bytes/);
  });

  it('refuses an invalid digest argument', async () => {
    const { client, ref } = await setup();
    expect((await rejection(client.getManifest(ref, 'sha256:abc'))).code).toBe('EINVAL');
  });
});

describe('RegistryClient auth', () => {
  it('runs the anonymous bearer flow against a real token endpoint and caches the token', async () => {
    const { reg, client, ref, layerDesc } = await setup({ auth: 'bearer' });
    await client.getManifest(ref, '1');
    await client.getManifest(ref, '1');
    await readAll((await client.getBlob(ref, layerDesc)).body);
    expect(reg.tokensIssued).toBe(1);
    expect(client.stats.tokenRequests).toBe(1);
    expect(reg.tokenQueries[0]!.get('service')).toBe('fake-registry');
    expect(reg.tokenQueries[0]!.getAll('scope')).toEqual(['repository:library/demo:pull']);
    // first manifest request anonymous, then with the token
    expect(reg.log.filter((l) => l.url.includes('/manifests/')).map((l) => l.authorization)).toEqual([undefined, 'Bearer tok-1', 'Bearer tok-1']);
  });

  it('accepts access_token and asks again once the token expired', async () => {
    const { reg, client, ref } = await setup({ auth: 'bearer', tokenField: 'access_token', tokenExpiresIn: 1 });
    await client.getManifest(ref, '1');
    expect(reg.tokensIssued).toBe(1);
    await new Promise((r) => setTimeout(r, 1_200));
    await client.getManifest(ref, '1');
    expect(reg.tokensIssued).toBe(2);
  });

  it('a different repository is a different scope', async () => {
    const { reg, client } = await setup({ auth: 'bearer' });
    reg.addManifest('library/other', ['x'], '{}', MediaType.OciManifest);
    const other = parseReference(`${reg.host}/library/other:x`);
    const demo = parseReference(`${reg.host}/library/demo:1`);
    await client.getManifest(demo, '1');
    await client.getManifest(other, 'x');
    expect(reg.tokensIssued).toBe(2);
    expect(reg.tokenQueries[1]!.get('scope')).toBe('repository:library/other:pull');
  });

  it('answers a Basic challenge with credentials from the CredentialSource, EAUTH without', async () => {
    const opts = { auth: 'basic' as const, basicUser: 'u', basicPassword: 'p' };
    const asked: string[] = [];
    const { client, ref, reg } = await setup(opts, {}, {
      credentials: { get: async (r: string) => (asked.push(r), { username: 'u', password: 'p' }) },
    });
    expect((await client.getManifest(ref, '1')).bytes.length).toBeGreaterThan(0);
    expect(asked).toEqual([reg.host]);
    expect(reg.log.at(-1)!.authorization).toBe('Basic ' + Buffer.from('u:p').toString('base64'));
    const anon = new RegistryClient({ config: {}, retry: FAST });
    cleanups.push(() => anon.close());
    const e = await rejection(anon.getManifest(ref, '1'));
    expect(e.code).toBe('EAUTH');
    expect(e.message).toContain(`pull ${reg.host}/library/demo:1`);
  });

  it('EAUTH when the registry refuses the token', async () => {
    const { reg, client, ref } = await setup({ auth: 'bearer' });
    // the token endpoint works, but the registry keeps saying 401 after it
    reg.inject('/v2/library/demo/manifests/1',
      { status: 401, headers: { 'www-authenticate': `Bearer realm="${reg.url}/token",service="s"` } },
      { status: 401, headers: { 'www-authenticate': `Bearer realm="${reg.url}/token",service="s"` }, body: '{"errors":[{"code":"UNAUTHORIZED","message":"bad token"}]}' },
    );
    const e = await rejection(client.getManifest(ref, '1'));
    expect(e.code).toBe('EAUTH');
    expect(e.message).toMatch(/unauthorized: bad token/);
  });
});

describe('RegistryClient blobs', () => {
  it('streams a blob from an offset with Range and Accept-Encoding: identity', async () => {
    const { reg, client, ref, layerDesc } = await setup();
    const whole = reg.blobs.get(layerDesc.digest)!;
    const r = await client.getBlob(ref, layerDesc, 1000);
    expect(r.offset).toBe(1000);
    expect((await readAll(r.body)).equals(whole.subarray(1000))).toBe(true);
    expect(reg.log.at(-1)!.range).toBe('bytes=1000-');
    const r0 = await client.getBlob(ref, layerDesc);
    expect(r0.offset).toBe(0);
    expect((await readAll(r0.body)).equals(whole)).toBe(true);
    const end = await client.getBlob(ref, layerDesc, layerDesc.size);
    expect((await readAll(end.body)).length).toBe(0);
  });

  it('reports offset 0 when the server ignores Range', async () => {
    const { reg, client, ref, layerDesc } = await setup({ ignoreRange: true });
    const r = await client.getBlob(ref, layerDesc, 500);
    expect(r.offset).toBe(0);
    expect((await readAll(r.body)).equals(reg.blobs.get(layerDesc.digest)!)).toBe(true);
  });

  it('follows a redirect to another origin without sending Authorization there', async () => {
    const { reg, client, ref, layerDesc, configDesc } = await setup({ auth: 'bearer', redirectBlobs: true });
    const r = await client.getBlob(ref, layerDesc, 100);
    expect(r.offset).toBe(100);
    expect((await readAll(r.body)).equals(reg.blobs.get(layerDesc.digest)!.subarray(100))).toBe(true);
    const bytes = await client.getBlobBytes(ref, configDesc);
    expect(sha256(bytes)).toBe(configDesc.digest);
    expect(reg.cdnLog.length).toBe(2);
    expect(reg.cdnLog.every((l) => l.authorization === undefined)).toBe(true);
    expect(reg.cdnLog[0]!.range).toBe('bytes=100-');
    // the registry itself did get the token
    expect(reg.log.filter((l) => l.url.includes('/blobs/')).some((l) => l.authorization === 'Bearer tok-1')).toBe(true);
  });

  it('getBlobBytes verifies size and digest', async () => {
    const { reg, client, ref, configDesc } = await setup();
    await expect(client.getBlobBytes(ref, configDesc)).resolves.toBeInstanceOf(Buffer);
    const good = reg.blobs.get(configDesc.digest)!;
    reg.blobs.set(configDesc.digest, Buffer.from(good.toString().replace('amd64', 'arm64')));
    expect((await rejection(client.getBlobBytes(ref, configDesc))).code).toBe('EDIGEST');
    reg.blobs.set(configDesc.digest, Buffer.concat([good, Buffer.from(' ')]));
    const e = await rejection(client.getBlobBytes(ref, configDesc));
    expect(e.code).toBe('EDIGEST');
    expect(e.message).toContain(configDesc.digest);
    expect((await rejection(client.getBlobBytes(ref, { ...configDesc, size: configDesc.size + 1 }))).code).toBe('EDIGEST');
  });

  it('BLOB_UNKNOWN is ENOTFOUND naming the digest', async () => {
    const { reg, client, ref } = await setup();
    const missing: Descriptor = { mediaType: MediaType.OciLayerGzip, digest: sha256('missing'), size: 3 };
    const e = await rejection(client.getBlob(ref, missing));
    expect(e.code).toBe('ENOTFOUND');
    expect(e.message).toBe(`pull ${reg.host}/library/demo: fetch blob ${missing.digest}: blob unknown: blob unknown to registry`);
  });
});

describe('RegistryClient retries', () => {
  it('retries 503 and then succeeds', async () => {
    const { reg, client, ref, layerDesc } = await setup();
    reg.inject(`/v2/library/demo/blobs/${layerDesc.digest}`, { status: 503 });
    reg.inject('/v2/library/demo/manifests/1', { status: 502 }, { status: 500 });
    await readAll((await client.getBlob(ref, layerDesc)).body);
    await client.getManifest(ref, '1');
    expect(client.stats).toMatchObject({ blobRequests: 2, manifestRequests: 3 });
  });

  it('gives up after the bounded number of tries with EREGISTRY', async () => {
    const { reg, client, ref } = await setup({}, {}, { retry: { ...FAST, tries: 3 } });
    const body = JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'try later' }] });
    reg.inject('/v2/library/demo/manifests/1', ...Array(5).fill({ status: 503, body }));
    const e = await rejection(client.getManifest(ref, '1'));
    expect(e.code).toBe('EREGISTRY');
    expect(e.message).toBe(`pull ${reg.host}/library/demo:1: registry answered HTTP 503: unavailable: try later after 3 tries`);
    expect(client.stats.manifestRequests).toBe(3);
  });

  it('honours 429 Retry-After within the budget', async () => {
    const { reg, client, ref } = await setup();
    reg.inject('/v2/library/demo/manifests/1', { status: 429, headers: { 'retry-after': '1' } });
    await client.getManifest(ref, '1');
    expect(client.stats.manifestRequests).toBe(2);
  });

  it('429 past the budget is ERATELIMIT', async () => {
    const { reg, client, ref } = await setup({}, {}, { retry: { ...FAST, rateLimitBudgetMs: 500 } });
    reg.inject('/v2/library/demo/manifests/1', { status: 429, headers: { 'retry-after': '1' } });
    const e = await rejection(client.getManifest(ref, '1'));
    expect(e.code).toBe('ERATELIMIT');
    expect(e.message).toMatch(/rate limited/);
    expect(e.message).toContain(`pull ${reg.host}/library/demo:1`);
  });

  it('connection errors are retried, then ENETWORK', async () => {
    const port = await freePort();
    const client = new RegistryClient({ config: {}, retry: { ...FAST, tries: 2 } });
    cleanups.push(() => client.close());
    const e = await rejection(client.getManifest(parseReference(`127.0.0.1:${port}/x:1`), '1'));
    expect(e.code).toBe('ENETWORK');
    expect(e.message).toMatch(new RegExp(`^pull 127.0.0.1:${port}/x:1: .*ECONNREFUSED.* after 2 tries$`));
    expect(client.stats.manifestRequests).toBe(2);
  });
});

describe('RegistryClient mirrors', () => {
  it('uses a mirror first, falls back to the registry on 404 or failure', async () => {
    const upstream = await setup();
    const mirror = new FakeRegistry();
    cleanups.push(() => mirror.stop());
    await mirror.start();
    const deadPort = await freePort();
    // upstream registry named by reference; a dead mirror, then a working mirror that has only the layer
    mirror.blobs.set(upstream.layerDesc.digest, upstream.reg.blobs.get(upstream.layerDesc.digest)!);
    const config: EngineConfig = { registryMirrors: { [upstream.reg.host]: [`http://127.0.0.1:${deadPort}`, mirror.url] } };
    const client = new RegistryClient({ config, retry: FAST });
    cleanups.push(() => client.close());
    const ref: Reference = upstream.ref;

    await readAll((await client.getBlob(ref, upstream.layerDesc)).body);
    expect(mirror.log.filter((l) => l.url.includes('/blobs/'))).toHaveLength(1);
    expect(upstream.reg.log.filter((l) => l.url.includes('/blobs/'))).toHaveLength(0);

    // the mirror lacks the manifest: 404 there, then upstream
    const m = await client.getManifest(ref, '1');
    expect(m.digest).toBe(upstream.manifestDigest);
    expect(mirror.log.filter((l) => l.url.includes('/manifests/'))).toHaveLength(1);
    expect(upstream.reg.log.filter((l) => l.url.includes('/manifests/'))).toHaveLength(1);

    // nowhere: the upstream's error, mentioning the mirrors
    const e = await rejection(client.getManifest(ref, 'nope'));
    expect(e.code).toBe('ENOTFOUND');
    expect(e.message).toMatch(/manifest unknown \(mirrors failed too: /);
  });
});
