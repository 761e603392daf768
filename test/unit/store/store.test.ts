import { execFileSync, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '../../../store/index.js';
import { sha256 } from '../../../src/util/digest.js';
import { TspodError } from '../../../src/util/errors.js';
import { addInodeFlags, FS_TOPDIR_FL, inodeFlags } from '../../../src/sys/fsflags.js';
import { tempDir } from '../unpack/tar-fixtures.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function openStore(root?: string): Promise<Store> {
  if (!root) {
    const t = tempDir('tspod-store-');
    cleanups.push(t.cleanup);
    root = join(t.path, 'store');
  }
  const s = await Store.open(root);
  cleanups.push(() => s.close());
  return s;
}

async function expectCode(p: Promise<unknown>, code: string, msg?: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TspodError);
    expect((err as TspodError).code).toBe(code);
    if (msg) expect((err as TspodError).message).toMatch(msg);
    return;
  }
  throw new Error(`expected ${code}, got success`);
}

describe('Store: layout', () => {
  it('creates the layout on open and keeps it on reopen', async () => {
    const s = await openStore();
    for (const d of ['blobs/sha256', 'ingest', 'layers', 'snapshots', 'locks', 'tmp']) {
      expect(lstatSync(join(s.root, d)).isDirectory()).toBe(true);
    }
    expect(lstatSync(s.root).mode & 0o777).toBe(0o700);
    expect(readFileSync(join(s.root, 'version'), 'utf8')).toBe('1\n');
    s.close();
    const again = await openStore(s.root);
    expect(again.root).toBe(s.root);
  });

  it('clears tmp/ on open only when no other Store has the root open', async () => {
    const s = await openStore();
    writeFileSync(join(s.root, 'tmp', 'blob-leftover'), 'x');
    const s2 = await openStore(s.root); // s is still open: tmp/ may be in use
    expect(existsSync(join(s.root, 'tmp', 'blob-leftover'))).toBe(true);
    s.close();
    s2.close();
    await openStore(s.root);
    expect(readdirSync(join(s.root, 'tmp'))).toEqual([]);
  });
});

describe('Store: format version', () => {
  it('refuses a store written in another format version', async () => {
    const s = await openStore();
    s.close();
    writeFileSync(join(s.root, 'version'), '2\n');
    await expectCode(Store.open(s.root), 'EUNSUPPORTED', /format version 2/);
    // and the refused open released its lock: a tmp cleanup can still run
    writeFileSync(join(s.root, 'version'), '1\n');
    writeFileSync(join(s.root, 'tmp', 'x'), '');
    await openStore(s.root);
    expect(readdirSync(join(s.root, 'tmp'))).toEqual([]);
  });
});

describe('Store: blobs', () => {
  it('puts, checks and reads blobs', async () => {
    const s = await openStore();
    const data = Buffer.from('{"hello":"world"}');
    const dg = sha256(data);
    expect(await s.hasBlob(dg)).toBe(false);
    expect(await s.putBlob(data, { digest: dg, size: data.length })).toBe(dg);
    expect(await s.hasBlob(dg)).toBe(true);
    expect(s.blobPath(dg)).toBe(join(s.root, 'blobs/sha256', dg.slice(7)));
    expect((await s.readBlob(dg)).toString()).toBe(data.toString());
    expect(await s.putBlob(data)).toBe(dg); // idempotent
    expect(readdirSync(join(s.root, 'tmp'))).toEqual([]);
  });

  it('refuses a digest or size mismatch and stores nothing', async () => {
    const s = await openStore();
    const data = Buffer.from('abc');
    const wrong = sha256('abd');
    await expectCode(s.putBlob(data, { digest: wrong }), 'EDIGEST', new RegExp(`put blob ${wrong}: content has digest ${sha256(data)}`));
    await expectCode(s.putBlob(data, { size: 4 }), 'EDIGEST', /got 3 bytes, want 4/);
    expect(readdirSync(join(s.root, 'blobs/sha256'))).toEqual([]);
    await expectCode(s.putBlob(data, { digest: 'sha256:nothex' }), 'EINVAL');
  });

  it('reports a missing blob as ENOTFOUND naming the digest', async () => {
    const s = await openStore();
    const dg = sha256('missing');
    await expectCode(s.readBlob(dg), 'ENOTFOUND', new RegExp(`read blob ${dg}`));
  });
});

describe('Store: ingest', () => {
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 8)) & 0xff;
  const dg = sha256(big);

  it('resumes: write half, abort, reopen at the offset, write the rest, commit', async () => {
    const s = await openStore();
    const a = await s.openIngest(dg, big.length);
    expect(a.offset).toBe(0);
    expect(a.exists).toBe(false);
    const half = 1_500_001;
    await a.write(big.subarray(0, 1_000_000));
    expect(a.offset).toBe(1_000_000); // live: where to resume after a dropped connection
    await a.write(big.subarray(1_000_000, half));
    await a.abort();
    expect(await s.hasBlob(dg)).toBe(false);
    expect(lstatSync(join(s.root, 'ingest', dg.slice(7))).size).toBe(half);

    // a different Store (as another process would) picks it up
    s.close();
    const s2 = await openStore(s.root);
    const b = await s2.openIngest(dg, big.length);
    expect(b.offset).toBe(half);
    await b.write(big.subarray(half));
    await b.commit();
    expect(await s2.hasBlob(dg)).toBe(true);
    expect(Buffer.compare(await s2.readBlob(dg), big)).toBe(0);
    expect(readdirSync(join(s2.root, 'ingest'))).toEqual([]);

    const c = await s2.openIngest(dg, big.length);
    expect(c.exists).toBe(true);
    await c.commit();
  });

  it('never lands a mismatching blob in blobs/ and discards the partial', async () => {
    const s = await openStore();
    const bad = Buffer.from(big);
    bad[12345] ^= 1;
    const a = await s.openIngest(dg, big.length);
    await a.write(bad);
    await expectCode(a.commit(), 'EDIGEST', new RegExp(`commit blob ${dg}: content has digest ${sha256(bad)}`));
    expect(readdirSync(join(s.root, 'blobs/sha256'))).toEqual([]);
    expect(readdirSync(join(s.root, 'ingest'))).toEqual([]);

    const b = await s.openIngest(dg, 10);
    await expectCode(b.write(Buffer.alloc(11)), 'EDIGEST', /more than the expected 10 bytes/);
    const c = await s.openIngest(dg, 10); // the lock was released
    await c.write(Buffer.alloc(5));
    await expectCode(c.commit(), 'EDIGEST', /got 5 bytes, want 10/);
    expect(readdirSync(join(s.root, 'blobs/sha256'))).toEqual([]);
  });

  it('lets one ingest per digest run at a time', async () => {
    const s = await openStore();
    const s2 = await openStore(s.root);
    const a = await s.openIngest(dg, big.length);
    await expectCode(s2.openIngest(dg, big.length, { timeoutMs: 50 }), 'EBUSY');
    const waiting = s2.openIngest(dg, big.length);
    await a.write(big);
    await a.commit();
    const b = await waiting;
    expect(b.exists).toBe(true);
    await b.abort();
  });
});

describe('Store: layers', () => {
  const diffId = sha256('layer');
  const chainId = diffId;

  it('runs fill once for two Stores racing on one chainID', async () => {
    const s1 = await openStore();
    const s2 = await openStore(s1.root);
    let fills = 0;
    const fill = async (dir: string) => {
      fills++;
      await sleep(100);
      writeFileSync(join(dir, 'f'), 'content');
      return diffId;
    };
    await Promise.all([s1.ensureLayer(chainId, diffId, null, fill), s2.ensureLayer(chainId, diffId, null, fill)]);
    expect(fills).toBe(1);
    expect(await s1.hasLayer(chainId)).toBe(true);
    expect(readFileSync(join(s1.layerDiffDir(chainId), 'f'), 'utf8')).toBe('content');
    const rec = await s1.getLayer(chainId);
    expect(rec).toMatchObject({ chainId, diffId, parent: null, size: 7 });
    await s1.ensureLayer(chainId, diffId, null, fill);
    expect(fills).toBe(1);
    expect(readdirSync(join(s1.root, 'tmp'))).toEqual([]);
  });

  it('marks tmp/ an Orlov top directory (chattr +T) at the first unpack, where the file system has inode flags', async () => {
    const s = await openStore();
    const tmp = join(s.root, 'tmp');
    const before = inodeFlags(tmp);
    await s.ensureLayer(chainId, diffId, null, async (dir) => {
      writeFileSync(join(dir, 'f'), 'x');
      return diffId;
    });
    const after = inodeFlags(tmp);
    if (before === undefined) {
      expect(after).toBeUndefined(); // no inode flags here (tmpfs-like): placement is the file system's
      return;
    }
    expect(before & FS_TOPDIR_FL).toBe(0);
    expect(after! & FS_TOPDIR_FL).toBe(FS_TOPDIR_FL);
    expect(execFileSync('lsattr', ['-d', tmp], { encoding: 'utf8' }).split(/\s+/)[0]).toContain('T'); // what chattr sees
  });

  it('addInodeFlags reports false where the file system refuses the flag, and throws for a missing dir', () => {
    const shm = readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === '/dev/shm' && l.split(' ')[2] === 'tmpfs');
    if (shm) {
      const d = join('/dev/shm', `tspod-flags-${process.pid}`);
      mkdirSync(d);
      cleanups.push(() => { execFileSync('rmdir', [d]); });
      expect(addInodeFlags(d, FS_TOPDIR_FL)).toBe(false);
    }
    expect(() => addInodeFlags('/nonexistent/tspod-flags', FS_TOPDIR_FL)).toThrow(/ENOENT/);
  });

  it('runs fill once across two processes', async () => {
    const s = await openStore();
    const work = join(s.root, '..');
    // Node 20 cannot import .ts: compile the store (and what it imports) for the children.
    const out = join(work, 'js');
    execFileSync(process.execPath, [resolve('node_modules/typescript/bin/tsc'), '--outDir', out, '--rootDir', resolve('.'),
      '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--types', 'node',
      resolve('store/index.ts')], { stdio: 'pipe' });
    symlinkSync(resolve('node_modules'), join(out, 'node_modules'));
    writeFileSync(join(out, 'package.json'), '{"type":"module"}');
    const marker = join(work, 'fills');
    mkdirSync(marker);
    const script = `
      const { Store } = await import(${JSON.stringify(join(out, 'store/index.js'))});
      const { writeFileSync } = await import('node:fs');
      const s = await Store.open(process.argv[1]);
      await s.ensureLayer(process.argv[2], process.argv[2], null, async (dir) => {
        writeFileSync(process.argv[3] + '/' + process.pid, '');
        await new Promise((r) => setTimeout(r, 300));
        writeFileSync(dir + '/f', 'x');
        return process.argv[2];
      });
      s.close();`;
    const child = () => new Promise<number>((res, rej) => {
      const p = spawn(process.execPath, ['--input-type=module', '-e', script, s.root, chainId, marker],
        { stdio: ['ignore', 'inherit', 'inherit'] });
      p.on('error', rej);
      p.on('exit', (code) => res(code ?? -1));
    });
    expect(await Promise.all([child(), child()])).toEqual([0, 0]);
    expect(readdirSync(marker)).toHaveLength(1);
    expect(await s.hasLayer(chainId)).toBe(true);
  }, 60_000);

  it('refuses a wrong diffID, leaving no layer and no temp dir', async () => {
    const s = await openStore();
    await expectCode(s.ensureLayer(chainId, diffId, null, async () => sha256('other')), 'EDIGEST',
      new RegExp(`unpack layer ${chainId}: diffID is ${sha256('other')}, want ${diffId}`));
    expect(await s.hasLayer(chainId)).toBe(false);
    expect(readdirSync(join(s.root, 'layers'))).toEqual([]);
    expect(readdirSync(join(s.root, 'tmp'))).toEqual([]);
  });

  it('removes a crashed attempt\'s temp dir on the next attempt', async () => {
    const s = await openStore();
    const stale = join(s.root, 'tmp', `layer-${chainId.slice(7)}-deadbeef`);
    mkdirSync(join(stale, 'diff'), { recursive: true });
    writeFileSync(join(stale, 'diff', 'half'), '');
    await s.ensureLayer(chainId, diffId, sha256('parent'), async (dir) => {
      writeFileSync(join(dir, 'whole'), '');
      return { diffId, size: 0 };
    });
    expect(existsSync(stale)).toBe(false);
    expect(readdirSync(s.layerDiffDir(chainId))).toEqual(['whole']);
    expect((await s.getLayer(chainId))?.parent).toBe(sha256('parent'));
  });
});

describe('Store: refs', () => {
  it('sets, gets, lists and deletes refs', async () => {
    const s = await openStore();
    const a = sha256('a'), b = sha256('b');
    expect(await s.getRef('docker.io/library/alpine:3.19')).toBeUndefined();
    await s.setRef('docker.io/library/alpine:3.19', a);
    await s.setRef('localhost:5000/x/y@sha256:' + 'f'.repeat(64), b);
    await s.setRef('docker.io/library/alpine:3.19', b);
    expect(await s.getRef('docker.io/library/alpine:3.19')).toBe(b);
    expect(await s.listRefs()).toEqual([
      { name: 'docker.io/library/alpine:3.19', digest: b },
      { name: 'localhost:5000/x/y@sha256:' + 'f'.repeat(64), digest: b },
    ]);
    await s.deleteRef('docker.io/library/alpine:3.19');
    await s.deleteRef('not-there');
    expect((await s.listRefs()).map((r) => r.name)).toEqual(['localhost:5000/x/y@sha256:' + 'f'.repeat(64)]);
    expect(await s.getRef('toString')).toBeUndefined();
    await expectCode(s.setRef('x', 'sha256:short'), 'EINVAL');
  });

  it('keeps every update when many writers race (refs.json is replaced atomically under a lock)', async () => {
    const s = await openStore();
    const s2 = await openStore(s.root);
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? s : s2).setRef(`r${i}`, sha256(String(i)))));
    const refs = await s.listRefs();
    expect(refs).toHaveLength(20);
    expect(JSON.parse(readFileSync(join(s.root, 'refs.json'), 'utf8')).refs.r7.digest).toBe(sha256('7'));
    expect(readdirSync(join(s.root, 'tmp'))).toEqual([]);
  });
});

describe('Store: snapshots', () => {
  it('creates upper/work on a chain and removes them', async () => {
    const s = await openStore();
    const d1 = sha256('l1'), d2 = sha256('l2');
    await s.ensureLayer(d1, d1, null, async () => d1);
    await s.ensureLayer(d2, d2, d1, async (dir) => {
      const { chmodSync } = await import('node:fs');
      chmodSync(dir, 0o750);
      return d2;
    });
    const snap = await s.createSnapshot('c1', [d1, d2]);
    expect(snap.lowerDirs).toEqual([s.layerDiffDir(d2), s.layerDiffDir(d1)]);
    expect(lstatSync(snap.upperDir).isDirectory()).toBe(true);
    expect(lstatSync(snap.upperDir).mode & 0o7777).toBe(0o750); // like the top layer's root
    expect(lstatSync(snap.workDir).isDirectory()).toBe(true);
    expect(await s.getSnapshot('c1')).toEqual(snap);
    await expectCode(s.createSnapshot('c1', [d1]), 'EEXIST');
    await expectCode(s.createSnapshot('c2', [sha256('nope')]), 'ENOTFOUND');
    await expectCode(s.createSnapshot('../x', []), 'EINVAL');
    writeFileSync(join(snap.upperDir, 'written'), 'x');
    mkdirSync(join(snap.workDir, 'work'), { mode: 0 });
    await s.removeSnapshot('c1');
    expect(existsSync(join(s.root, 'snapshots', 'c1'))).toBe(false);
    expect(await s.getSnapshot('c1')).toBeUndefined();
    await s.removeSnapshot('c1'); // idempotent
    expect(readdirSync(join(s.root, 'tmp'))).toEqual([]);
  });
});

describe('Store: lock', () => {
  it('excludes holders across Stores and releases', async () => {
    const s = await openStore();
    const s2 = await openStore(s.root);
    const release = await s.lock('pull docker.io/library/alpine:latest');
    await expectCode(s2.lock('pull docker.io/library/alpine:latest', { timeoutMs: 30 }), 'EBUSY');
    const order: string[] = [];
    const waiter = s2.lock('pull docker.io/library/alpine:latest').then((r) => { order.push('second'); return r; });
    await sleep(30);
    order.push('first-release');
    await release();
    const r2 = await waiter;
    expect(order).toEqual(['first-release', 'second']);
    await r2();
    const long = await s.lock('x'.repeat(400));
    await long();
  });
});
