import { existsSync, readlinkSync, writeFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Store } from '../../../store/index.js';
import { chainIds, sha256 } from '../../../src/util/digest.js';
import { tempDir } from '../unpack/tar-fixtures.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function openStore(): Promise<Store> {
  const t = tempDir('tspod-gc-');
  cleanups.push(t.cleanup);
  const s = await Store.open(join(t.path, 'store'));
  cleanups.push(() => s.close());
  return s;
}

/** An image of `contents` layers (each a one-file layer) stored like a pull does: blobs, layers, manifest, ref. */
async function addImage(store: Store, name: string | undefined, contents: string[]) {
  const layerBlobs = contents.map((c) => Buffer.from(`layer-blob:${c}`));
  const diffIds = contents.map((c) => sha256(`diff:${c}`));
  const chain = chainIds(diffIds);
  for (let i = 0; i < contents.length; i++) {
    await store.putBlob(layerBlobs[i]!);
    await store.ensureLayer(chain[i]!, diffIds[i]!, i === 0 ? null : chain[i - 1]!, async (dir) => {
      writeFileSync(join(dir, `f${i}`), contents[i]!);
      return diffIds[i]!;
    });
  }
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, config: {} }));
  const configDigest = await store.putBlob(config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: layerBlobs.map((b) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(b), size: b.length })),
  }));
  const manifestDigest = await store.putBlob(manifest);
  if (name) await store.setRef(name, manifestDigest);
  return { chain, manifestDigest, configDigest, layerDigests: layerBlobs.map((b) => sha256(b)) };
}

describe('Store: short layer links', () => {
  it('names each layer l/<12 hex> → ../layers/<hex>/diff, stable, and re-points a dangling one', async () => {
    const s = await openStore();
    const img = await addImage(s, 'x:1', ['a', 'b']);
    const lowers = await s.overlayLowers(img.chain);
    expect(lowers).toEqual([`l/${img.chain[1]!.slice(7, 19)}`, `l/${img.chain[0]!.slice(7, 19)}`]);
    expect(readlinkSync(join(s.root, lowers[0]!))).toBe(`../layers/${img.chain[1]!.slice(7)}/diff`);
    expect(readFileSync(join(s.root, lowers[1]!, 'f0'), 'utf8')).toBe('a');
    expect(await s.overlayLowers(img.chain)).toEqual(lowers);
  });
  it('takes a longer name when the short one belongs to another layer', async () => {
    const s = await openStore();
    const img = await addImage(s, 'x:1', ['a']);
    const other = await addImage(s, 'y:1', ['zz']);
    // Fake a collision: the 12-hex name of img's layer already points at the other layer.
    const { symlinkSync } = await import('node:fs');
    symlinkSync(`../layers/${other.chain[0]!.slice(7)}/diff`, join(s.root, 'l', img.chain[0]!.slice(7, 19)));
    expect(await s.layerLink(img.chain[0]!)).toBe(`l/${img.chain[0]!.slice(7, 23)}`);
  });
});

describe('Store: garbage collection', () => {
  it('keeps what refs reach, frees the rest, and an rmi-style candidate sweep keeps shared layers', async () => {
    const s = await openStore();
    const a = await addImage(s, 'a:1', ['base', 'only-a']);
    const b = await addImage(s, 'b:1', ['base', 'only-b']);
    expect(a.chain[0]).toBe(b.chain[0]); // shared base
    const stray = await s.putBlob(Buffer.from('nobody refers to me'));

    await s.deleteRef('a:1');
    const r1 = await s.gc({ candidates: { blobs: [a.manifestDigest, a.configDigest, ...a.layerDigests], layers: a.chain } });
    expect(r1.layers.map((l) => l.chainId)).toEqual([a.chain[1]]);
    expect(r1.blobs.map((x) => x.digest).sort()).toEqual([a.manifestDigest, a.configDigest, a.layerDigests[1]].sort());
    expect(await s.hasLayer(a.chain[0]!)).toBe(true); // b still uses the base
    expect(await s.hasBlob(a.layerDigests[0]!)).toBe(true);
    expect(await s.hasBlob(stray)).toBe(true); // not a candidate

    const r2 = await s.gc();
    expect(r2.blobs.map((x) => x.digest)).toEqual([stray]);
    expect(r2.layers).toEqual([]);
    expect(r2.reclaimed).toBe('nobody refers to me'.length);

    await s.deleteRef('b:1');
    const r3 = await s.gc();
    expect(r3.layers.map((l) => l.chainId).sort()).toEqual([...b.chain].sort());
    expect(readdirSync(join(s.root, 'layers'))).toEqual([]);
    expect(readdirSync(join(s.root, 'blobs', 'sha256'))).toEqual([]);
    expect(readdirSync(join(s.root, 'l'))).toEqual([]); // links of removed layers go too
  });

  it('keeps the chain of a container snapshot, and the parents of a kept layer', async () => {
    const s = await openStore();
    const a = await addImage(s, undefined, ['p', 'q', 'r']);
    await s.createSnapshot('ctr1', a.chain.slice(0, 2));
    const r = await s.gc();
    expect(r.layers.map((l) => l.chainId)).toEqual([a.chain[2]]);
    expect(await s.hasLayer(a.chain[0]!)).toBe(true);
    expect(await s.hasLayer(a.chain[1]!)).toBe(true);
  });

  it('waits for a pull in progress (a lease) and removes partial downloads of dead pulls only', async () => {
    const s = await openStore();
    const data = Buffer.from('0123456789');
    const dead = await s.openIngest(sha256(data), data.length);
    await dead.write(data.subarray(0, 4));
    await dead.abort(); // keeps the partial
    const other = Buffer.from('abcdefghij');
    const live = await s.openIngest(sha256(other), other.length);
    await live.write(other.subarray(0, 3));

    const release = await s.lease();
    let done = false;
    const gc = s.gc().then((r) => { done = true; return r; });
    await new Promise((r) => setTimeout(r, 150));
    expect(done).toBe(false);
    await release();
    const r = await gc;
    expect(r.ingests).toEqual([{ digest: sha256(data), size: 4 }]);
    expect(existsSync(join(s.root, 'ingest', sha256(other).slice(7)))).toBe(true);
    await live.abort({ discard: true });
  });

  it('reports usage and what gc would free without removing it', async () => {
    const s = await openStore();
    await addImage(s, 'a:1', ['one']);
    const stray = await s.putBlob(Buffer.from('xyz'));
    const u = await s.usage();
    expect(u.layers).toEqual({ count: 1, bytes: 3 });
    expect(u.blobs.count).toBe(4);
    expect(u.reclaimable.blobs).toBe(3);
    expect(await s.hasBlob(stray)).toBe(true);
  });
});

describe('Store: check', () => {
  it('is clean on a healthy store, and finds an altered blob, a broken layer and a dangling ref', async () => {
    const s = await openStore();
    const a = await addImage(s, 'a:1', ['one', 'two']);
    await s.overlayLowers(a.chain);
    expect((await s.check()).problems).toEqual([]);

    writeFileSync(s.blobPath(a.layerDigests[0]!), 'tampered');
    const rec = JSON.parse(readFileSync(join(s.root, 'layers', a.chain[0]!.slice(7), 'layer.json'), 'utf8'));
    writeFileSync(join(s.root, 'layers', a.chain[0]!.slice(7), 'layer.json'), JSON.stringify({ ...rec, diffId: sha256('other') }));
    mkdirSync(join(s.root, 'snapshots', 'half'));
    const r = await s.check();
    const names = r.problems.map((p) => `${p.kind} ${p.name}`);
    expect(names).toContain(`blob ${a.layerDigests[0]}`);
    expect(r.problems.find((p) => p.kind === 'blob')!.problem).toMatch(/content has digest sha256:/);
    expect(names).toContain(`layer ${a.chain[0]}`);
    expect(names).toContain(`layer ${a.chain[1]}`); // its parent is broken
    expect(names).toContain('snapshot half');
    expect(names).toContain('ref a:1');
    expect(r.problems.every((p) => !p.repaired)).toBe(true);

    const fixed = await s.check({ repair: true });
    expect(fixed.problems.filter((p) => p.kind !== 'ref').every((p) => p.repaired)).toBe(true);
    expect(await s.hasBlob(a.layerDigests[0]!)).toBe(false);
    expect(await s.hasLayer(a.chain[0]!)).toBe(false);
    const after = await s.check();
    // What remains is the ref naming an image that must be pulled again (reported, not deleted).
    expect(after.problems.map((p) => p.kind)).toEqual(expect.arrayContaining(['ref']));
    expect(after.problems.every((p) => p.kind === 'ref' || p.kind === 'link')).toBe(true);
  });
});

describe('image removal on top of GC (src/image/remove.ts)', () => {
  it('rmi refuses the last name of an image a container uses, unless forced; the container keeps its layers', async () => {
    const { removeImage } = await import('../../../src/image/remove.js');
    const s = await openStore();
    const a = await addImage(s, 'docker.io/library/a:1', ['x', 'y']);
    await s.setRef('docker.io/library/a:2', a.manifestDigest);
    await s.createSnapshot('c1', a.chain, { image: a.configDigest });
    // another name remains: untag only, nothing deleted
    expect(await removeImage(s, 'a:2')).toEqual({ untagged: ['docker.io/library/a:2'], deleted: [], reclaimed: 0 });
    await expect(removeImage(s, 'a:1')).rejects.toThrow(/conflict: unable to remove repository reference "a:1" \(must force\) - container c1 is using its referenced image/);
    const forced = await removeImage(s, 'a:1', { force: true });
    expect(forced.untagged).toEqual(['docker.io/library/a:1']);
    expect(forced.deleted).toEqual([]); // the container's layers and image config stay (docker keeps it too)
    expect(await s.hasLayer(a.chain[1]!)).toBe(true);
    expect(await s.hasBlob(a.configDigest)).toBe(true);
    expect(await s.hasBlob(a.manifestDigest)).toBe(false);
    await s.removeSnapshot('c1');
    expect((await s.gc()).layers.map((l) => l.chainId).sort()).toEqual([...a.chain].sort());
  });

  it('image prune -a untags images no container uses, then collects', async () => {
    const { pruneImages } = await import('../../../src/image/remove.js');
    const s = await openStore();
    const used = await addImage(s, 'docker.io/library/used:1', ['u']);
    const idle = await addImage(s, 'docker.io/library/idle:1', ['i']);
    await s.createSnapshot('c1', used.chain);
    const plain = await pruneImages(s);
    expect(plain.untagged).toEqual([]);
    expect(plain.reclaimed).toBe(0);
    const all = await pruneImages(s, { all: true });
    expect(all.untagged).toEqual(['docker.io/library/idle:1']);
    expect(all.deleted).toEqual([idle.configDigest, idle.chain[0]]);
    expect((await s.listRefs()).map((r) => r.name)).toEqual(['docker.io/library/used:1']);
  });
});
