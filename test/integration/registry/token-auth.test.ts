/**
 * The bearer-token flow against a real docker-registry configured for token auth, with a token server
 * written here (RS256 JWTs whose x5c certificate — made by openssl — is the registry's rootcertbundle).
 * The image is copied in from the fixture registry by skopeo, which runs the same anonymous token flow.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSign, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../../src/registry/client.js';
import { pushScopes } from '../../../src/registry/auth.js';
import { parseReference } from '../../../src/reference/index.js';
import { parseManifest } from '../../../src/oci/manifest.js';
import { newHash, digestOf } from '../../../src/util/digest.js';
import { TspodError } from '../../../src/util/errors.js';
import { FIXTURE_IMAGES, startFixtureRegistry, type FixtureRegistry } from '../../support/registry.js';
import { freePort, run } from '../../support/auth-registry.js';

const haveTools =
  spawnSync('openssl', ['version']).status === 0 &&
  spawnSync('docker-registry', ['--version']).status === 0 &&
  spawnSync('skopeo', ['--version']).status === 0;

const SERVICE = 'tspod-test-registry';
const ISSUER = 'tspod-test-issuer';
/** Repositories the token server refuses to grant anything on. */
const DENIED = 'library/secret';

let dir: string;
let fixture: FixtureRegistry | undefined;
let registryProc: ChildProcess | undefined;
let tokenServer: Server | undefined;
let registryHost = '';
const tokenRequests: URLSearchParams[] = [];

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function signToken(key: string, certDer: Buffer, scopes: string[]): string {
  const now = Math.floor(Date.now() / 1000);
  const access = scopes
    .map((s) => s.split(':'))
    .filter((p) => p.length >= 3 && p[0] === 'repository')
    .map((p) => ({ type: 'repository', name: p.slice(1, -1).join(':'), actions: p.at(-1)!.split(',') }))
    .filter((a) => a.name !== DENIED);
  const header = { alg: 'RS256', typ: 'JWT', x5c: [certDer.toString('base64')] };
  const claims = { iss: ISSUER, sub: '', aud: SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = createSign('RSA-SHA256').update(input).sign(key);
  return `${input}.${b64url(sig)}`;
}

beforeAll(async () => {
  if (!haveTools) return;
  dir = mkdtempSync(join(tmpdir(), 'tspod-token-registry-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  const gen = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '1', '-subj', '/CN=tspod-test-token-issuer',
  ]);
  if (gen.status !== 0) throw new Error(`openssl req: ${gen.stderr}`);
  const key = readFileSync(keyFile, 'utf8');
  const certDer = Buffer.from(
    readFileSync(certFile, 'utf8').replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ''),
    'base64',
  );

  tokenServer = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    tokenRequests.push(url.searchParams);
    const token = signToken(key, certDer, url.searchParams.getAll('scope'));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300 }));
  });
  await new Promise<void>((r) => tokenServer!.listen(0, '127.0.0.1', () => r()));
  const tokenPort = (tokenServer.address() as { port: number }).port;

  const port = await freePort();
  registryHost = `127.0.0.1:${port}`;
  const config = join(dir, 'registry.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      'http:',
      `  addr: ${registryHost}`,
      'auth:',
      '  token:',
      `    realm: http://127.0.0.1:${tokenPort}/token`,
      `    service: ${SERVICE}`,
      `    issuer: ${ISSUER}`,
      `    rootcertbundle: ${certFile}`,
      '',
    ].join('\n'),
  );
  registryProc = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  registryProc.stderr!.on('data', (d) => (stderr += String(d)));
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://${registryHost}/v2/`).then((r) => r.status === 401, () => false);
    if (ok) break;
    if (i > 100 || registryProc.exitCode !== null) throw new Error(`docker-registry did not start: ${stderr.slice(-500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  fixture = await startFixtureRegistry();
  // not spawnSync: the token server skopeo talks to lives in this very process
  await run('skopeo', [
    'copy', '--quiet', '--insecure-policy', '--src-tls-verify=false', '--dest-tls-verify=false',
    `docker://${fixture.host}/${FIXTURE_IMAGES.busybox}`, `docker://${registryHost}/${FIXTURE_IMAGES.busybox}`,
  ]);
  tokenRequests.length = 0;
});

afterAll(async () => {
  if (registryProc && registryProc.exitCode === null) {
    const exited = new Promise((r) => registryProc!.once('exit', r));
    registryProc.kill('SIGTERM');
    await exited;
  }
  if (tokenServer) {
    tokenServer.closeAllConnections();
    await new Promise<void>((r) => tokenServer!.close(() => r()));
  }
  await fixture?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!haveTools)('bearer token flow against docker-registry (needs openssl, docker-registry, skopeo)', () => {
  it('gets a token once and pulls manifest, config and layer with it', async () => {
    const client = new RegistryClient({ config: {} });
    try {
      const ref = parseReference(`${registryHost}/${FIXTURE_IMAGES.busybox}`);
      const m = await client.getManifest(ref, 'latest');
      const parsed = parseManifest(m.bytes, m.mediaType, 'busybox');
      if (parsed.kind !== 'manifest') throw new Error('want a manifest');
      await client.getBlobBytes(ref, parsed.manifest.config);
      const layer = parsed.manifest.layers[0]!;
      const h = newHash();
      for await (const c of (await client.getBlob(ref, layer)).body) h.update(c as Buffer);
      expect(digestOf(h)).toBe(layer.digest);
      expect(client.stats.tokenRequests).toBe(1);
      expect(tokenRequests).toHaveLength(1);
      expect(tokenRequests[0]!.get('service')).toBe(SERVICE);
      expect(tokenRequests[0]!.getAll('scope')).toContain('repository:library/busybox:pull');
      // one anonymous manifest request answered 401, then one with the token
      expect(client.stats.manifestRequests).toBe(2);
      expect(client.stats.blobRequests).toBe(2);
    } finally {
      await client.close();
    }
  });

  it('asks for pull,push on a push target and pull on a mount source in ONE token request', async () => {
    const client = new RegistryClient({ config: {} });
    try {
      tokenRequests.length = 0;
      const ref = parseReference(`${registryHost}/me/app:1`);
      const res = await client.request(ref, {
        method: 'HEAD', path: `/v2/me/app/blobs/sha256:${'0'.repeat(64)}`, scopes: pushScopes('me/app', ['library/busybox']),
      });
      expect(res.status).toBe(404); // authenticated: the blob just is not there
      expect(tokenRequests).toHaveLength(1);
      expect(tokenRequests[0]!.getAll('scope').sort()).toEqual(['repository:library/busybox:pull', 'repository:me/app:pull,push']);
    } finally {
      await client.close();
    }
  });

  it('EAUTH when the token grants no access', async () => {
    const client = new RegistryClient({ config: {} });
    try {
      const err = await client.getManifest(parseReference(`${registryHost}/${DENIED}:1`), '1').catch((e) => e);
      expect(err).toBeInstanceOf(TspodError);
      expect(err.code).toBe('EAUTH');
      expect(err.message).toMatch(new RegExp(`^pull ${registryHost}/${DENIED}:1: `));
    } finally {
      await client.close();
    }
  });
});
