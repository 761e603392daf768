// Issue #4, store lifecycle end to end with the CLI: shared layers unpacked once (also by two concurrent
// pulls), rmi keeps shared layers and prints docker's Untagged/Deleted lines, prune frees what nothing
// references, system df accounts for it, system check finds an altered blob, and SIGKILL during an unpack
// leaves a store that a second pull completes and that checks clean.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_IMAGES } from '../support/registry.js';
import { TSPOD_BIN, tspodEnv } from '../support/tspod.js';
import { useTspodSuite } from '../support/suite.js';
import { firstReason, haveCommand, haveOverlay, isRoot } from '../support/caps.js';
import { busyboxBase, craftLayer, pushCraftedImage, type LayerEntry, type PushedImage } from '../support/layers.js';

const gate = firstReason(isRoot(), haveOverlay(), haveCommand('skopeo'));

/** 4000 files of 4 KiB of incompressible bytes under /big: an unpack that takes long enough to be killed in. */
function bigLayer(seed: number): Buffer {
  let x = seed >>> 0 || 1;
  const entries: LayerEntry[] = [{ name: 'big/', type: 'dir', mode: 0o755 }];
  for (let i = 0; i < 4000; i++) {
    const b = Buffer.alloc(4096);
    for (let j = 0; j < 4096; j += 4) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      b.writeUInt32LE(x, j);
    }
    entries.push({ name: `big/f${i}`, data: b });
  }
  return craftLayer(entries);
}

describe.skipIf(gate)('store: sharing, rmi, prune, df, check, crash', () => {
  const s = useTspodSuite('storegc');
  let big1: PushedImage;
  let big2: PushedImage;
  const store = () => join(s.t.root, 'store');
  const layerDirs = () => readdirSync(join(store(), 'layers')).sort();

  beforeAll(async () => {
    const base = await busyboxBase(s.registry);
    big1 = await pushCraftedImage(s.registry, 'library/bigfiles:1', [base, bigLayer(1)]);
    big2 = await pushCraftedImage(s.registry, 'library/bigfiles:2', [base, bigLayer(2)]);
  }, 600_000);

  const ok = async (args: string[]) => {
    const r = await s.t.run(args, { timeoutMs: 300_000 });
    if (r.code !== 0) throw new Error(`tspod ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
    return r;
  };
  const busyboxChain = () => layerDirs().find((h) => JSON.parse(readFileSync(join(store(), 'layers', h, 'layer.json'), 'utf8')).parent === null)!;

  it('unpacks a base shared by two images once, also when both pulls run at the same time', async () => {
    // concurrently, in a second data root
    const t2 = tspodEnv({ mirrorUrl: s.registry.url });
    try {
      const [a, b] = await Promise.all([t2.run(['pull', '-q', 'busybox']), t2.run(['pull', '-q', FIXTURE_IMAGES.layered.replace('library/', '')])]);
      expect([a.code, b.code, a.stderr, b.stderr]).toEqual([0, 0, '', '']);
      expect(readdirSync(join(t2.root, 'store', 'layers'))).toHaveLength(4); // busybox + 3 layered layers
      expect(readdirSync(join(t2.root, 'store', 'tmp'))).toEqual([]);
      expect((await t2.run(['system', 'check'])).code).toBe(0);
    } finally {
      t2.cleanup();
    }
    // one after the other: the second pull finds the base and leaves it alone
    await ok(['pull', '-q', 'busybox']);
    const base = busyboxChain();
    const before = statSync(join(store(), 'layers', base, 'layer.json'));
    const r = await ok(['pull', 'layered']);
    expect(r.stdout).toMatch(/Already exists/);
    const after = statSync(join(store(), 'layers', base, 'layer.json'));
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    expect(layerDirs()).toHaveLength(4);
  }, 300_000);

  it('rmi untags, deletes the layers only that image used, keeps the shared base; busybox still runs', async () => {
    const imageId = (await ok(['images', '-q', '--no-trunc'])).stdout; // both IDs
    expect(imageId.trim().split('\n')).toHaveLength(2);
    const r = await ok(['rmi', 'layered']);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('Untagged: layered:latest'); // docker's familiar form
    expect(lines[1]).toMatch(/^Deleted: sha256:[a-f0-9]{64}$/); // the image ID
    expect(lines.slice(2)).toHaveLength(3); // its three own layers, top first
    for (const l of lines.slice(2)) expect(l).toMatch(/^Deleted: sha256:[a-f0-9]{64}$/);
    expect(layerDirs()).toEqual([busyboxChain()]);
    const run = await ok(['run', '--rm', '--network', 'none', 'busybox', 'echo', 'still here']);
    expect(run.stdout).toBe('still here\n');
    expect((await s.t.run(['rmi', 'layered'])).stderr).toMatch(/no such image: layered/);
  }, 300_000);

  it('rmi by image ID: refused without -f when the image is in several repositories; every tag of one repository goes', async () => {
    const id = (await ok(['images', '-q', 'busybox'])).stdout.trim();
    expect(id).toMatch(/^[a-f0-9]{12}$/);
    for (const tag of ['mine:a', 'mine:b', 'theirs:x']) await ok(['tag', 'busybox', tag]);
    const refused = await s.t.run(['rmi', id.slice(0, 6)]);
    expect([refused.code, refused.stderr]).toEqual([1, `tspod: conflict: unable to delete ${id} (must be forced) - image is referenced in multiple repositories\n`]);
    // nothing was untagged (images REPOSITORY[:TAG] lists one repository, or one tag)
    expect((await ok(['images', 'mine'])).stdout).toMatch(/^REPOSITORY +TAG .*\nmine +a +[a-f0-9]{12} .*\nmine +b +[a-f0-9]{12} .*\n$/);
    expect((await ok(['images', '-q', 'theirs:x'])).stdout).toBe(`${id}\n`);
    expect((await ok(['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}', 'mine'])).stdout).toBe(`mine:a ${id}\nmine:b ${id}\n`);
    expect((await ok(['images', '-q', 'docker.io/library/busybox:latest'])).stdout).toBe(`${id}\n`);
    await ok(['rmi', 'theirs:x', 'busybox']);
    // one repository left: by ID, every tag goes, then the image (pulled again for the tests below)
    const r = await ok(['rmi', id]);
    expect(r.stdout).toMatch(/^Untagged: mine:a\nUntagged: mine:b\nDeleted: sha256:/);
    await ok(['pull', '-q', 'busybox']);
  }, 120_000);

  it('survives SIGKILL during an unpack: a second pull completes the image and system check is clean', async () => {
    const killed = await pullAndKillDuringUnpack(big1.ref);
    expect(killed).toBe(true);
    expect((await s.t.run(['images'])).stdout).not.toContain('bigfiles');
    await ok(['pull', '-q', big1.ref]);
    const run = await ok(['run', '--rm', '--network', 'none', big1.ref, 'sh', '-c', 'ls /big | wc -l; md5sum /big/f3999 | cut -c1-32']);
    const [count] = run.stdout.trim().split('\n');
    expect(count).toBe('4000');
    const check = await ok(['system', 'check']);
    expect(check.stdout).toContain('No errors found');
    expect(readdirSync(join(store(), 'tmp'))).toEqual([]);
  }, 300_000);

  it('prune frees what nothing references (a killed pull\'s blobs), df accounts for it, and keeps every image', async () => {
    expect(await pullAndKillDuringUnpack(big2.ref)).toBe(true);
    const df1 = JSON.parse((await ok(['system', 'df', '--json'])).stdout);
    // what the killed pull downloaded, no ref names it: pull downloads and unpacks in one pass, so the bytes that
    // had arrived are a partial ingest (a complete blob when the download had ended)
    const leftover = df1.reclaimable.blobs + df1.reclaimable.ingest;
    expect(leftover).toBeGreaterThan(0);
    const table = (await ok(['system', 'df'])).stdout;
    expect(table).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\n/);
    expect(table).toMatch(/\nImages\s+2\s+0\s+\S+\s+\S+ \(\d+%\)\n/);

    const r = await ok(['image', 'prune', '-f']);
    const reclaimed = /Total reclaimed space: ([\d.]+)(B|kB|MB|GB)\n/.exec(r.stdout);
    const unit = { B: 1, kB: 1e3, MB: 1e6, GB: 1e9 }[reclaimed?.[2] as 'B'];
    expect(Number(reclaimed?.[1]) * unit).toBeGreaterThanOrEqual(leftover * 0.99); // humanSize keeps 3 digits
    const df2 = JSON.parse((await ok(['system', 'df', '--json'])).stdout);
    expect(df2.reclaimable).toEqual({ blobs: 0, layers: 0, ingest: 0 });
    expect(df2.images).toBe(2);
    expect((await ok(['system', 'check'])).stdout).toContain('No errors found');
    // both remaining images still run
    expect((await ok(['run', '--rm', '--network', 'none', big1.ref, 'sh', '-c', 'ls /big | wc -l'])).stdout).toBe('4000\n');
    expect((await ok(['run', '--rm', '--network', 'none', 'busybox', 'true'])).code).toBe(0);
    // prune without -f asks, and "n" keeps everything
    const asked = await s.t.run(['system', 'prune'], { input: 'n\n' });
    expect(asked.stderr).toMatch(/Are you sure you want to continue\? \[y\/N\]/);
    expect(asked.stdout).toBe('');
  }, 300_000);

  it('system check detects a blob whose bytes were altered; --repair removes it and a pull restores it', async () => {
    const blobs = join(store(), 'blobs', 'sha256');
    // the big layer blob of bigfiles:1
    const refs = JSON.parse(readFileSync(join(store(), 'refs.json'), 'utf8')).refs;
    const manifest = JSON.parse(readFileSync(join(blobs, refs['docker.io/library/bigfiles:1'].digest.slice(7)), 'utf8'));
    const victim = manifest.layers[1].digest.slice(7) as string;
    const bytes = readFileSync(join(blobs, victim));
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(join(blobs, victim), bytes);
    const bad = await s.t.run(['system', 'check']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(new RegExp(`blob sha256:${victim}: content has digest sha256:[a-f0-9]{64}`));
    expect(bad.stdout).toMatch(/1 errors found; run with --repair to fix them/);

    const fix = await s.t.run(['system', 'check', '--repair']);
    expect(fix.stdout).toMatch(new RegExp(`blob sha256:${victim}: .*\\(repaired: removed`));
    expect(existsSync(join(blobs, victim))).toBe(false);
    await ok(['pull', '-q', big1.ref]);
    expect(existsSync(join(blobs, victim))).toBe(true);
    expect((await ok(['system', 'check'])).stdout).toContain('No errors found');
  }, 300_000);

  it('df counts containers as docker does: all, running, and the stopped ones\' writable layers as reclaimable', async () => {
    const up = await ok(['run', '-d', '--network', 'none', 'busybox', 'sleep', '600']);
    const down = await ok(['run', '--network', 'none', 'busybox', 'sh', '-c', 'head -c 2097152 /dev/zero > /big']);
    try {
      const df = JSON.parse((await ok(['system', 'df', '--json'])).stdout);
      expect(df.containers.total).toBe(2);
      expect(df.containers.active).toBe(1);
      expect(df.containers.reclaimable).toBeGreaterThanOrEqual(2 * 1024 * 1024);
      expect(df.containers.reclaimable).toBeLessThanOrEqual(df.snapshots.bytes);
      expect((await ok(['system', 'df'])).stdout).toMatch(/\nContainers\s+2\s+1\s+\S+\s+\S+ \(\d+%\)\n/);
    } finally {
      await ok(['rm', '-f', up.stdout.trim()]);
      await ok(['container', 'prune', '-f']);
    }
    expect(down.code).toBe(0);
    expect(JSON.parse((await ok(['system', 'df', '--json'])).stdout).containers).toEqual({ total: 0, active: 0, reclaimable: 0 });
  });

  /** Starts `tspod pull ref`, SIGKILLs it once its unpack has written files, resolves whether it caught it. */
  async function pullAndKillDuringUnpack(ref: string): Promise<boolean> {
    const child = spawn(process.execPath, [TSPOD_BIN, 'pull', '-q', ref], { env: s.t.env, stdio: 'ignore' });
    const exited = new Promise<void>((res) => child.on('exit', () => res()));
    const tmp = join(store(), 'tmp');
    let caught = false;
    const deadline = Date.now() + 120_000;
    while (!caught && child.exitCode === null && Date.now() < deadline) {
      let names: string[] = [];
      try {
        names = readdirSync(tmp); // Store.open() may be re-creating it
      } catch { /* not there */ }
      for (const d of names) {
        if (!d.startsWith('layer-')) continue;
        try {
          if (readdirSync(join(tmp, d, 'diff', 'big')).length > 20) caught = true;
        } catch { /* not there yet */ }
      }
      if (!caught) await new Promise((r) => setImmediate(r));
    }
    child.kill('SIGKILL');
    await exited;
    return caught && child.signalCode === 'SIGKILL';
  }
});
