/**
 * Host configuration against real servers on loopback: a docker-registry serving TLS with a certificate
 * from a private CA (trusted only through a certs.d directory), and an HTTP proxy (CONNECT) named by
 * HTTP_PROXY, bypassed for NO_PROXY hosts.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../../store/index.js';
import { pullImage } from '../../../src/image/pull.js';
import { pushImage } from '../../../src/image/push.js';
import { RegistryClient } from '../../../src/registry/client.js';
import { tlsFilesFor } from '../../../src/registry/transport.js';
import { TspodError } from '../../../src/util/errors.js';
import { firstReason, haveCommand, isRoot } from '../../support/caps.js';
import { FIXTURE_IMAGES, repoRoot, startFixtureRegistry, type FixtureRegistry } from '../../support/registry.js';
import { freePort } from '../../support/auth-registry.js';

const gate = firstReason(isRoot(), haveCommand('openssl'), haveCommand('docker-registry'), haveCommand('skopeo'));

function openssl(args: string[]): void {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

describe.skipIf(gate)('hosts: private CA over TLS, HTTP proxy', () => {
  let fixture: FixtureRegistry;
  let dir: string;
  let tlsProc: ChildProcess | undefined;
  let tlsHost = '';
  let proxy: Server | undefined;
  let proxyUrl = '';
  const connects: string[] = [];
  const sockets = new Set<Socket>();
  let base: string;
  const stores: Store[] = [];

  beforeAll(async () => {
    fixture = await startFixtureRegistry();
    dir = mkdtempSync(join(tmpdir(), 'tspod-hosts-'));
    // a private CA and a server certificate for 127.0.0.1
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'),
      '-days', '1', '-subj', '/CN=tspod test CA']);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr'), '-subj', '/CN=127.0.0.1']);
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    openssl(['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'),
      '-CAcreateserial', '-out', join(dir, 'server.pem'), '-days', '1', '-extfile', join(dir, 'ext.cnf')]);
    const port = await freePort();
    tlsHost = `127.0.0.1:${port}`;
    const config = join(dir, 'registry.yml');
    writeFileSync(config, ['version: 0.1', 'log:', '  level: warn', 'storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'data')}`,
      'http:', `  addr: ${tlsHost}`, '  tls:', `    certificate: ${join(dir, 'server.pem')}`, `    key: ${join(dir, 'server.key')}`, ''].join('\n'));
    tlsProc = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    tlsProc.stderr!.on('data', (d) => (stderr += String(d)));
    for (let i = 0; ; i++) {
      const up = spawnSync('skopeo', ['copy', '--quiet', '--insecure-policy', '--src-tls-verify=false', '--dest-cert-dir', join(dir, 'skopeo-certs'),
        '--dest-tls-verify=false', `docker://${fixture.host}/${FIXTURE_IMAGES.busybox}`, `docker://${tlsHost}/${FIXTURE_IMAGES.busybox}`]);
      if (up.status === 0) break;
      if (i > 50 || tlsProc.exitCode !== null) throw new Error(`TLS registry: ${stderr.slice(-500)} ${up.stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }

    // an HTTP proxy that only tunnels (CONNECT), as undici's ProxyAgent uses it
    proxy = createHttpServer((_req, res) => { res.writeHead(405); res.end(); });
    proxy.on('connect', (req, client: Socket) => {
      connects.push(req.url ?? '');
      const [h, p] = (req.url ?? '').split(':');
      const upstream = connect(Number(p), h!, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.pipe(client);
        client.pipe(upstream);
      });
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => { client.destroy(); upstream.destroy(); });
      }
    });
    await new Promise<void>((r) => proxy!.listen(0, '127.0.0.1', () => r()));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
    mkdirSync(join(repoRoot(), '.tspod-test'), { recursive: true });
    base = mkdtempSync(join(repoRoot(), '.tspod-test', 'hosts-'));
  }, 120_000);

  afterAll(async () => {
    for (const s of stores) s.close();
    for (const s of sockets) s.destroy();
    if (proxy) await new Promise<void>((r) => proxy!.close(() => r()));
    if (tlsProc && tlsProc.exitCode === null) {
      const exited = new Promise((r) => tlsProc!.once('exit', r));
      tlsProc.kill('SIGTERM');
      await exited;
    }
    await fixture?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (base) rmSync(base, { recursive: true, force: true });
  });

  async function pull(image: string, config: object, env: NodeJS.ProcessEnv) {
    const store = await Store.open(mkdtempSync(join(base, 'store-')));
    stores.push(store);
    const client = new RegistryClient({ config, env, retry: { tries: 1 } });
    try {
      return await pullImage(image, { store, config, client, platform: 'linux/amd64' });
    } finally {
      await client.close();
    }
  }

  // The TLS registry is a mirror of a registry that does not exist on loopback (127.0.0.2:1 refuses),
  // because a loopback registry named directly is always spoken to over plain HTTP.
  const mirrorConfig = () => ({ registryMirrors: { '127.0.0.2:1': [`https://${tlsHost}`] } });
  const image = `127.0.0.2:1/${FIXTURE_IMAGES.busybox}`;

  it('refuses a certificate from an unknown CA, naming the problem', async () => {
    const err = await pull(image, mirrorConfig(), { TSPOD_CERTS_D: join(dir, 'empty') }).catch((e) => e);
    expect(err).toBeInstanceOf(TspodError);
    expect(err.message).toMatch(/certificate/i);
    expect(err.message).toContain(tlsHost);
  });

  it('trusts the CA from <certs.d>/<host:port>/ca.crt and pulls over TLS', async () => {
    const certs = join(dir, 'certs.d');
    mkdirSync(join(certs, tlsHost), { recursive: true });
    writeFileSync(join(certs, tlsHost, 'ca.crt'), readFileSync(join(dir, 'ca.pem')));
    expect((await tlsFilesFor(tlsHost, [certs]))?.ca).toHaveLength(1);
    const res = await pull(image, mirrorConfig(), { TSPOD_CERTS_D: certs });
    expect(res.layersFetched).toBe(1);
  });

  it('accepts any certificate from a host listed in insecureRegistries, and only from that host', async () => {
    const insecure = { ...mirrorConfig(), insecureRegistries: [tlsHost] };
    const res = await pull(image, insecure, { TSPOD_CERTS_D: join(dir, 'empty') });
    expect(res.layersFetched).toBe(1);
    // another port of the same address is not covered
    const other = { ...mirrorConfig(), insecureRegistries: ['127.0.0.1:1'] };
    await expect(pull(image, other, { TSPOD_CERTS_D: join(dir, 'empty') })).rejects.toThrow(/certificate/i);
  });

  it('goes through HTTP_PROXY, and around it for NO_PROXY hosts', async () => {
    connects.length = 0;
    const img = `${fixture.host}/${FIXTURE_IMAGES.busybox}`;
    await pull(img, {}, { HTTP_PROXY: proxyUrl });
    expect(connects).toContain(fixture.host);
    connects.length = 0;
    await pull(img, {}, { HTTP_PROXY: proxyUrl, NO_PROXY: '127.0.0.1' });
    expect(connects).toEqual([]);
  });

  it('a push takes the same transport as a pull: through HTTP_PROXY, around it for NO_PROXY', async () => {
    const img = `${fixture.host}/${FIXTURE_IMAGES.busybox}`;
    const store = await Store.open(mkdtempSync(join(base, 'store-')));
    stores.push(store);
    const client = new RegistryClient({ config: {}, env: {}, retry: { tries: 1 } });
    try {
      await pullImage(img, { store, config: {}, client, platform: 'linux/amd64' });
    } finally {
      await client.close();
    }
    connects.length = 0;
    const dest = `${fixture.host}/tspod-test/pushed-through-proxy:1`;
    const pushed = await pushImage(img, { store, config: {}, destination: dest, upload: { env: { HTTP_PROXY: proxyUrl } } });
    expect(pushed.tag).toBe('1');
    expect(connects).toContain(fixture.host);
    connects.length = 0;
    await pushImage(img, { store, config: {}, destination: dest, upload: { env: { HTTP_PROXY: proxyUrl, NO_PROXY: '127.0.0.1' } } });
    expect(connects).toEqual([]);
  });
});
