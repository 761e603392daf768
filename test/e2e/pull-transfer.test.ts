// `tspod pull` as a user runs it, through a proxy in front of the real fixture registry that slows the
// bodies down so the test can act mid-transfer: SIGKILL and resume, two overlapping pulls at once, the
// live progress display in a pseudo-terminal; and images with zstd and uncompressed layers pulled and run.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { firstReason, haveCommand, haveOverlay, isRoot } from '../support/caps.js';
import { blobRequests, startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';
import { mountsUnder } from '../support/leftovers.js';
import { pushRecompressed } from '../support/recompress.js';
import { FIXTURE_IMAGES, startFixtureRegistry, type FixtureRegistry } from '../support/registry.js';
import { TSPOD_BIN, tspodEnv, type TspodEnv } from '../support/tspod.js';

const gate = firstReason(isRoot(), haveOverlay(), haveCommand('zstd'), haveCommand('script'));

interface Layer { digest: string; size: number; mediaType: string }

describe.skipIf(gate)('pull transfers end to end', () => {
  let registry: FixtureRegistry;
  let proxy: FaultProxy;
  const envs: TspodEnv[] = [];
  const layersOf: Record<string, Layer[]> = {};
  const configOf: Record<string, string> = {};

  beforeAll(async () => {
    registry = await startFixtureRegistry();
    proxy = await startFaultProxy(registry.url);
    for (const [name, img] of Object.entries({ busybox: FIXTURE_IMAGES.busybox, layered: FIXTURE_IMAGES.layered })) {
      const [repo, tag] = img.split(':');
      const r = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
      });
      const m = (await r.json()) as { config: { digest: string }; layers: Layer[] };
      layersOf[name] = m.layers;
      configOf[name] = m.config.digest;
    }
  });

  afterEach(() => {
    proxy.rule = () => undefined;
    proxy.reset();
  });

  afterAll(async () => {
    try {
      // nothing mounted under these tests' roots (cgroup leftovers of `run` are checked by pull-run.test.ts)
      for (const t of envs) expect(mountsUnder(t.root)).toEqual([]);
    } finally {
      for (const t of envs) t.cleanup();
      await proxy?.close();
      await registry?.stop();
    }
  });

  function env(): TspodEnv {
    const t = tspodEnv();
    envs.push(t);
    return t;
  }

  const ref = (name: string) => `${proxy.host}/library/${name}:latest`;
  const slow = (chunk: number, delayMs: number) => (r: { path: string }) =>
    r.path.includes('/blobs/') ? { kind: 'throttle' as const, chunk, delayMs } : undefined;

  /** Every blob hashes to its name; nothing half-written is left in ingest/ or tmp/. */
  function checkStore(t: TspodEnv): void {
    const store = join(t.root, 'store');
    const blobs = join(store, 'blobs', 'sha256');
    for (const hex of readdirSync(blobs)) {
      expect(createHash('sha256').update(readFileSync(join(blobs, hex))).digest('hex')).toBe(hex);
    }
    expect(readdirSync(join(store, 'ingest'))).toEqual([]);
    expect(readdirSync(join(store, 'tmp'))).toEqual([]);
  }

  it.each(['SIGKILL', 'SIGINT'] as const)('a pull stopped with %s mid-download resumes: finished layers kept, the partial one continued with Range', async (signal) => {
    const t = env();
    const big = layersOf.layered![0]!;
    // small layers go at full speed; the big one trickles so the kill lands in its middle
    proxy.rule = (r) => (r.path.includes(`/blobs/${big.digest}`) ? { kind: 'throttle', chunk: 16 * 1024, delayMs: 20 } : undefined);
    const child = spawn(process.execPath, [TSPOD_BIN, 'pull', ref('layered')], { env: t.env, stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    const blobFile = (d: string) => join(t.root, 'store', 'blobs', 'sha256', d.slice(7));
    for (let i = 0; ; i++) {
      const sent = blobRequests(proxy.log, big.digest).reduce((n, e) => n + e.bytesSent, 0);
      if (sent >= 300_000 && layersOf.layered!.slice(1).every((l) => existsSync(blobFile(l.digest)))) break;
      if (i > 1500) throw new Error('the pull did not get far enough');
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill(signal);
    await exited;
    // the partial download survived the process
    const partial = join(t.root, 'store', 'ingest', big.digest.slice(7));
    expect(existsSync(partial)).toBe(true);
    const had = statSync(partial).size;
    expect(had).toBeGreaterThan(0);
    expect(had).toBeLessThan(big.size);
    const smallDone = layersOf.layered!.slice(1);

    proxy.rule = () => undefined;
    proxy.reset();
    const r = await t.run(['pull', ref('layered')]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('Pull complete');
    expect(r.code).toBe(0);
    const gets = blobRequests(proxy.log, big.digest);
    expect(gets).toHaveLength(1);
    expect(gets[0]!.range).toBe(`bytes=${had}-`);
    expect(gets[0]!.bytesSent).toBe(big.size - had);
    // nothing that was complete was fetched again
    for (const l of smallDone) expect(blobRequests(proxy.log, l.digest)).toEqual([]);
    expect(blobRequests(proxy.log, configOf.layered!)).toEqual([]);
    checkStore(t);
    const run = await t.run(['run', '--rm', ref('layered'), 'cat', '/layered/keep.txt']);
    expect(run.code).toBe(0);
  });

  it('two overlapping pulls at the same time both succeed, the shared layer is downloaded once', async () => {
    const t = env();
    proxy.rule = slow(64 * 1024, 5);
    const [a, b] = await Promise.all([t.run(['pull', ref('busybox')]), t.run(['pull', ref('layered')])]);
    expect(a.stderr).toBe('');
    expect(b.stderr).toBe('');
    expect([a.code, b.code]).toEqual([0, 0]);
    const shared = layersOf.busybox![0]!;
    expect(blobRequests(proxy.log, shared.digest).reduce((n, e) => n + e.bytesSent, 0)).toBe(shared.size);
    const images = await t.run(['images']);
    expect(images.stdout).toContain(`${proxy.host}/library/busybox`);
    expect(images.stdout).toContain(`${proxy.host}/library/layered`);
    checkStore(t);
    for (const name of ['busybox', 'layered']) {
      const r = await t.run(['run', '--rm', ref(name), 'true']);
      expect(r.code).toBe(0);
    }
  });

  it('shows live per-layer progress in a terminal, and plain lines when stdout is not one', async () => {
    const t = env();
    proxy.rule = slow(32 * 1024, 10);
    const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(TSPOD_BIN)} pull ${ref('busybox')}`;
    // asynchronously: the proxy serving this pull lives in this very process
    const tty = await new Promise<{ status: number | null; stdout: string }>((resolve, reject) => {
      const c = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...t.env, COLUMNS: '120' }, stdio: ['ignore', 'pipe', 'inherit'] });
      let stdout = '';
      c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      const timer = setTimeout(() => c.kill('SIGKILL'), 120_000);
      c.once('error', reject);
      c.once('close', (status) => { clearTimeout(timer); resolve({ status, stdout }); });
    });
    expect(tty.status).toBe(0);
    const out = tty.stdout;
    const id = layersOf.busybox![0]!.digest.slice(7, 19);
    // redrawn in place: cursor up + clear line, with growing byte counts
    expect(out).toMatch(/\x1b\[\d+A/);
    expect(out).toContain('\x1b[2K');
    const counts = [...out.matchAll(new RegExp(`${id}: Downloading \\[[=> ]+\\] ([0-9.]+[kM]?B)/1\\.09MB`, 'g'))].map((m) => m[1]);
    expect(new Set(counts).size).toBeGreaterThanOrEqual(3);
    expect(out).toContain(`${id}: Pull complete`);
    expect(out).toMatch(/Digest: sha256:[0-9a-f]{64}/);

    // not a terminal: state changes as plain lines, no escapes; a layer already in the store says so
    proxy.rule = () => undefined;
    const plain = await t.run(['pull', ref('layered')]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toContain('\x1b');
    expect(plain.stdout).toContain(`${id}: Already exists\n`);
    for (const l of layersOf.layered!.slice(1)) expect(plain.stdout).toContain(`${l.digest.slice(7, 19)}: Pull complete\n`);

    const quiet = await t.run(['pull', '-q', ref('layered')]);
    expect(quiet.stdout).toBe(`${ref('layered')}\n`);
  });

  it('pulls and runs images with zstd and with uncompressed layers', async () => {
    const t = env();
    const zstdLayers = await pushRecompressed(registry.url, FIXTURE_IMAGES.busybox, 'tspod-test/busybox-zstd:latest', 'zstd');
    const plainLayers = await pushRecompressed(registry.url, FIXTURE_IMAGES.busybox, 'tspod-test/busybox-plain:latest', 'none');
    expect(zstdLayers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    expect(plainLayers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
    for (const name of ['busybox-zstd', 'busybox-plain']) {
      const image = `${proxy.host}/tspod-test/${name}:latest`;
      const p = await t.run(['pull', image]);
      expect(p.stderr).toBe('');
      expect(p.code).toBe(0);
      const r = await t.run(['run', '--rm', image, 'sh', '-c', 'echo ran-$(basename $(readlink -f /bin/sh))']);
      expect(r.stdout).toBe('ran-busybox\n');
      expect(r.code).toBe(0);
    }
    checkStore(t);
  });
});
