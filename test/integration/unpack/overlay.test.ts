/**
 * The real alpine minirootfs unpacked into the store, a second crafted layer with whiteouts and an
 * opaque directory on top, and a real overlay mount of the two: the kernel must see exactly what
 * the OCI whiteout rules say.
 */
import { createReadStream, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createGunzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../../store/index.js';
import { MediaType } from '../../../src/oci/types.js';
import { MNT_DETACH, realSys } from '../../../src/sys/index.js';
import { unpackLayer } from '../../../src/unpack/index.js';
import { chainIds, newHash, digestOf } from '../../../src/util/digest.js';
import { craftTar, streamOf } from '../../unit/unpack/tar-fixtures.js';

const ALPINE = resolve('/work/shared/fixtures/alpine/alpine-minirootfs-3.19.4-x86_64.tar.gz');
const isRoot = process.getuid?.() === 0;
const haveOverlay = existsSync('/proc/filesystems') && readFileSync('/proc/filesystems', 'utf8').includes('overlay');
const reason = !isRoot ? 'needs root (mknod, trusted.* xattrs, mount)' : !haveOverlay ? 'kernel has no overlayfs'
  : !existsSync(ALPINE) ? `fixture ${ALPINE} missing` : '';
if (reason) console.warn(`skipping overlay integration test: ${reason}`);

async function diffIdOfGz(path: string): Promise<string> {
  const h = newHash();
  for await (const c of createReadStream(path).pipe(createGunzip())) h.update(c as Buffer);
  return digestOf(h);
}

describe.skipIf(!!reason)('unpacked layers under a real overlay mount', () => {
  const sys = realSys();
  let base: string;
  let store: Store;
  let merged: string;
  let mounted = false;

  const top = craftTar([
    { name: 'etc/apk/.wh.world' },            // delete a lower file
    { name: 'media/.wh..wh..opq' },           // hide everything lower had in /media ...
    { name: 'media/mine/notes', data: 'n' },  // ... but keep this layer's own entries
    { name: 'etc/apk/repositories', data: 'replaced\n' },
    { name: 'usr/.wh.local' },                // delete a lower directory
    { name: 'lib/apk/', type: 'dir', mode: 0o755 },
    { name: 'lib/.wh.apk' },                  // whiteout + same-named dir in this layer → opaque lib/apk
    { name: 'lib/apk/fresh', data: 'f' },
  ]);

  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'tspod-overlay-'));
    store = await Store.open(join(base, 'store'));
    const alpineDiff = await diffIdOfGz(ALPINE);
    const topDiff = digestOf(newHash().update(top));
    const [c1, c2] = chainIds([alpineDiff, topDiff]);
    await store.ensureLayer(c1, alpineDiff, null, (dir) => unpackLayer(createReadStream(ALPINE), MediaType.OciLayerGzip, dir));
    await store.ensureLayer(c2, topDiff, c1, (dir) => unpackLayer(streamOf(top), MediaType.OciLayer, dir));
    const snap = await store.createSnapshot('ctr', [c1, c2]);
    merged = join(base, 'merged');
    mkdirSync(merged);
    sys.mount('overlay', merged, 'overlay', 0,
      `lowerdir=${snap.lowerDirs.join(':')},upperdir=${snap.upperDir},workdir=${snap.workDir}`);
    mounted = true;
  });

  afterAll(async () => {
    try {
      if (mounted) sys.umount2(merged, MNT_DETACH);
    } finally {
      store?.close();
      if (base) rmSync(base, { recursive: true, force: true });
    }
  });

  it('shows the lower layer through the overlay', () => {
    expect(lstatSync(join(merged, 'bin/busybox')).isFile()).toBe(true);
    expect(lstatSync(join(merged, 'bin/sh')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(merged, 'etc/alpine-release'), 'utf8')).toMatch(/^3\.19/);
    expect(lstatSync(join(merged, 'tmp')).mode & 0o7777).toBe(0o1777);
    const shadow = lstatSync(join(merged, 'etc/shadow'));
    expect([shadow.mode & 0o7777, shadow.uid, shadow.gid]).toEqual([0o640, 0, 42]);
  });

  it('applies whiteouts, opaque dirs and same-layer replacement', () => {
    expect(existsSync(join(merged, 'etc/apk/world'))).toBe(false);
    expect(readdirSync(join(merged, 'etc/apk'))).not.toContain('world');
    expect(readdirSync(join(merged, 'media'))).toEqual(['mine']);
    expect(readFileSync(join(merged, 'media/mine/notes'), 'utf8')).toBe('n');
    expect(readFileSync(join(merged, 'etc/apk/repositories'), 'utf8')).toBe('replaced\n');
    expect(readdirSync(join(merged, 'etc/apk')).length).toBeGreaterThan(1); // not opaque: lower files still there
    expect(existsSync(join(merged, 'usr/local'))).toBe(false);
    expect(readdirSync(join(merged, 'lib/apk'))).toEqual(['fresh']);
    expect(readdirSync(join(merged, 'lib'))).toContain('ld-musl-x86_64.so.1');
  });

  it('round-trips a delete through the upper dir in the same whiteout format', () => {
    unlinkSync(join(merged, 'etc/apk/arch'));
    writeFileSync(join(merged, 'etc/new'), 'new');
    const upper = join(base, 'store/snapshots/ctr/upper');
    const wh = lstatSync(join(upper, 'etc/apk/arch'));
    expect(wh.isCharacterDevice() && wh.rdev === 0).toBe(true);
    expect(readFileSync(join(upper, 'etc/new'), 'utf8')).toBe('new');
  });
});
