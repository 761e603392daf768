// Named volumes on their own: create/list/inspect/rm with in-use tracking, and the copy-up that seeds
// an empty volume from the image's merged layers (whiteouts and opaque directories respected).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { attachVolume, createVolume, inspectVolume, listVolumes, releaseVolumes, removeVolume, seedVolume } from '../../../src/volume/index.js';
import { realSys } from '../../../src/sys/index.js';
import { isRoot } from '../../support/caps.js';

const rootGate = isRoot(); // mknod of a whiteout and trusted.* xattrs need root
let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'tspod-vol-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('volumes', () => {
  it('creates (idempotently), lists, inspects, refuses to remove while used, removes', async () => {
    const roots = { root: join(dir, 'root'), runroot: join(dir, 'run') };
    const v = await createVolume(roots, 'data', { labels: { a: 'b' } });
    expect(v).toMatchObject({ name: 'data', driver: 'local', labels: { a: 'b' }, anonymous: false, usedBy: [], mountpoint: join(roots.root, 'volumes', 'data', '_data') });
    expect((await createVolume(roots, 'data')).created).toBe(v.created);
    const anon = await createVolume(roots);
    expect(anon.name).toMatch(/^[0-9a-f]{64}$/);
    expect(anon.anonymous).toBe(true);
    expect((await listVolumes(roots)).map((x) => x.name).sort()).toEqual([anon.name, 'data'].sort());
    // in use while the container's record exists; a stale marker (record gone) does not count
    mkdirSync(join(roots.root, 'containers', 'c1'), { recursive: true });
    await attachVolume(roots, 'data', 'c1');
    await attachVolume(roots, 'data', 'gone');
    expect((await inspectVolume(roots, 'data')).usedBy).toEqual(['c1']);
    await expect(removeVolume(roots, 'data')).rejects.toThrow('remove volume data: volume is in use - [c1]');
    await releaseVolumes(roots, ['data'], 'c1', true);
    await removeVolume(roots, 'data');
    await expect(inspectVolume(roots, 'data')).rejects.toThrow('no such volume: data');
    // --rm removes an anonymous volume with its container
    await attachVolume(roots, anon.name, 'c1');
    await releaseVolumes(roots, [anon.name], 'c1', true);
    expect(await listVolumes(roots)).toEqual([]);
    await expect(createVolume(roots, '../x')).rejects.toThrow('invalid volume name "../x"');
  });

  it.skipIf(rootGate)('seeds an empty volume from the merged layers: top wins, whiteouts and opaque dirs hide, owners and modes kept', async () => {
    const sys = realSys();
    const top = join(dir, 'top');
    const low = join(dir, 'low');
    for (const p of [join(low, 'data', 'sub'), join(low, 'data', 'hidden'), join(top, 'data', 'hidden')]) mkdirSync(p, { recursive: true });
    writeFileSync(join(low, 'data', 'a'), 'low-a');
    writeFileSync(join(low, 'data', 'b'), 'low-b');
    writeFileSync(join(low, 'data', 'sub', 'deep'), 'deep');
    writeFileSync(join(low, 'data', 'hidden', 'old'), 'old');
    writeFileSync(join(top, 'data', 'a'), 'top-a');
    sys.mknod(join(top, 'data', 'b'), 0o020000, 0, 0); // whiteout
    sys.lsetxattr(join(top, 'data', 'hidden'), 'trusted.overlay.opaque', Buffer.from('y'));
    writeFileSync(join(top, 'data', 'hidden', 'new'), 'new');
    symlinkSync('a', join(top, 'data', 'link'));
    const { chownSync, chmodSync } = await import('node:fs');
    chownSync(join(low, 'data', 'sub', 'deep'), 1000, 1001);
    chmodSync(join(low, 'data', 'sub', 'deep'), 0o640);
    chmodSync(join(top, 'data'), 0o750);
    chownSync(join(top, 'data'), 7, 8);
    const vol = join(dir, 'vol');
    mkdirSync(vol);
    expect(await seedVolume(vol, [top, low], '/data', sys)).toBe(true);
    expect(readdirSync(vol).sort()).toEqual(['a', 'hidden', 'link', 'sub']);
    expect(readFileSync(join(vol, 'a'), 'utf8')).toBe('top-a');
    expect(readdirSync(join(vol, 'hidden'))).toEqual(['new']);
    expect(readlinkSync(join(vol, 'link'))).toBe('a');
    const deep = lstatSync(join(vol, 'sub', 'deep'));
    expect([deep.uid, deep.gid, deep.mode & 0o777]).toEqual([1000, 1001, 0o640]);
    const v = lstatSync(vol);
    expect([v.uid, v.gid, v.mode & 0o777]).toEqual([7, 8, 0o750]);
    // not again once it has content, and nothing for a path the image lacks
    writeFileSync(join(vol, 'a'), 'changed');
    expect(await seedVolume(vol, [top, low], '/data', sys)).toBe(false);
    expect(readFileSync(join(vol, 'a'), 'utf8')).toBe('changed');
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    expect(await seedVolume(empty, [top, low], '/nope', sys)).toBe(false);
  });
});
