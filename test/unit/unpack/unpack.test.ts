import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { MediaType } from '../../../src/oci/types.js';
import { realSys } from '../../../src/sys/index.js';
import { unpackLayer } from '../../../src/unpack/index.js';
import { sha256 } from '../../../src/util/digest.js';
import { TspodError } from '../../../src/util/errors.js';
import { craftTar, run, streamOf, tempDir, type CraftEntry } from './tar-fixtures.js';

// Unpacking sets owners, device nodes and trusted.* xattrs: root only.
const isRoot = process.getuid?.() === 0;
const d = describe.skipIf(!isRoot);
if (!isRoot) console.warn('skipping unpackLayer tests: they need root (chown, mknod, trusted.* xattrs)');

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});
function tmp(prefix: string): string {
  const t = tempDir(prefix);
  cleanups.push(t.cleanup);
  return t.path;
}

async function unpack(entries: CraftEntry[] | Buffer, opts: { gzip?: boolean; mediaType?: string; chunk?: number } = {}) {
  const base = tmp('tspod-unpack-');
  const dir = join(base, 'layer');
  mkdirSync(dir);
  const tar = Buffer.isBuffer(entries) ? entries : craftTar(entries);
  const bytes = opts.gzip ? gzipSync(tar) : tar;
  const mt = opts.mediaType ?? (opts.gzip ? MediaType.OciLayerGzip : MediaType.OciLayer);
  const res = await unpackLayer(streamOf(bytes, opts.chunk), mt, dir);
  return { base, dir, res, tar };
}

async function unpackError(entries: CraftEntry[]): Promise<TspodError> {
  const base = tmp('tspod-unpack-bad-');
  const dir = join(base, 'layer');
  mkdirSync(dir);
  const canary = join(base, 'canary');
  mkdirSync(canary);
  writeFileSync(join(canary, 'keep'), 'untouched');
  try {
    await unpackLayer(streamOf(craftTar(entries)), MediaType.OciLayer, dir);
  } catch (err) {
    expect(err).toBeInstanceOf(TspodError);
    // nothing outside the layer dir changed
    expect(readdirSync(canary)).toEqual(['keep']);
    expect(readFileSync(join(canary, 'keep'), 'utf8')).toBe('untouched');
    expect(readdirSync(base).sort()).toEqual(['canary', 'layer']);
    return err as TspodError;
  }
  throw new Error('unpack succeeded but should have failed');
}

const sys = realSys();
const xattr = (p: string, n: string) => sys.lgetxattr(p, n);

d('unpackLayer: entry kinds and metadata', () => {
  it('writes every entry kind with exact mode, owner, setuid, devices, xattrs, links and times', async () => {
    const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const { dir, res, tar } = await unpack([
      { name: './', type: 'dir', mode: 0o755, mtime: 1600000000 },
      { name: 'bin/', type: 'dir', mode: 0o777, uid: 2, gid: 3, mtime: 1600000001 },
      { name: 'bin/su', data: 'suid', mode: 0o4755, uid: 0, gid: 0, mtime: 1600000002 },
      { name: 'bin/sg', data: 'sgid', mode: 0o2711, uid: 1000, gid: 50, mtime: 1600000003 },
      { name: 'bin/ping', data: 'ping', mode: 0o755, uid: 0, gid: 0,
        pax: { 'SCHILY.xattr.security.capability': cap, 'SCHILY.xattr.user.note': 'hi' } },
      { name: 'bin/ping-hard', type: 'link', linkname: 'bin/ping' },
      { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox', uid: 7, gid: 8, mtime: 1600000004 },
      { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0, mode: 0o660, gid: 6 },
      { name: 'run/fifo', type: 'fifo', mode: 0o620 },
      { name: 'tmp/', type: 'dir', mode: 0o1777 },
      { name: 'etc/forged', data: 'x', pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y', 'SCHILY.xattr.trusted.overlay.redirect': '/x' } },
    ]);
    expect(res.diffId).toBe(sha256(tar));
    expect(res.size).toBe(4 + 4 + 4 + 1);
    const st = (p: string) => lstatSync(join(dir, p));
    expect(st('bin').mode & 0o7777).toBe(0o777); // not masked by the umask
    expect([st('bin').uid, st('bin').gid]).toEqual([2, 3]);
    expect(st('bin/su').mode & 0o7777).toBe(0o4755);
    expect(st('bin/sg').mode & 0o7777).toBe(0o2711); // survives the chown
    expect([st('bin/sg').uid, st('bin/sg').gid]).toEqual([1000, 50]);
    expect(st('bin/ping').nlink).toBe(2);
    expect(st('bin/ping-hard').ino).toBe(st('bin/ping').ino);
    expect(Buffer.compare(xattr(join(dir, 'bin/ping'), 'security.capability')!, cap)).toBe(0);
    expect(xattr(join(dir, 'bin/ping'), 'user.note')!.toString()).toBe('hi');
    expect(st('bin/sh').isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, 'bin/sh'))).toBe('/bin/busybox');
    expect([st('bin/sh').uid, st('bin/sh').gid]).toEqual([7, 8]);
    expect(st('bin/sh').mtimeMs).toBe(1600000004000);
    expect(st('dev/null').isCharacterDevice()).toBe(true);
    expect(st('dev/null').rdev).toBe(0x103);
    expect(st('dev/null').mode & 0o7777).toBe(0o666);
    expect(st('dev/sda').isBlockDevice()).toBe(true);
    expect(st('dev/sda').rdev).toBe(0x800);
    expect(st('dev/sda').gid).toBe(6);
    expect(st('run/fifo').isFIFO()).toBe(true);
    expect(st('run/fifo').mode & 0o7777).toBe(0o620);
    expect(st('tmp').mode & 0o7777).toBe(0o1777);
    expect(sys.llistxattr(join(dir, 'etc/forged')).filter((n) => n.startsWith('trusted.overlay'))).toEqual([]);
    // implicit parents: root-owned 0755
    expect(st('dev').mode & 0o7777).toBe(0o755);
    // times: files, and directories after their contents
    expect(st('bin/su').mtimeMs).toBe(1600000002000);
    expect(st('bin').mtimeMs).toBe(1600000001000);
    expect(lstatSync(dir).mtimeMs).toBe(1600000000000);
  });

  it('gives entries below a setgid directory their own group and mode (no inherited group or setgid bit), small and large files alike', async () => {
    const big = 'x'.repeat(100 * 1024); // written on the pool
    const { dir } = await unpack([
      { name: 'mail/', type: 'dir', mode: 0o2775, uid: 0, gid: 8 },
      { name: 'mail/root', data: 'm', mode: 0o644, uid: 0, gid: 0 },
      { name: 'mail/big', data: big, mode: 0o644, uid: 0, gid: 0 },
      { name: 'mail/sub/', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
      { name: 'mail/link', type: 'symlink', linkname: 'root', uid: 0, gid: 0 },
      { name: 'mail/implicit/f', data: 'i', mode: 0o600 },
      { name: 'mail/kept', data: 'k', mode: 0o640, uid: 0, gid: 8 },
      { name: 'plain/', type: 'dir', mode: 0o750, uid: 0, gid: 0 },
      { name: 'plain/ro', data: 'r', mode: 0o444, uid: 0, gid: 0 },
      { name: 'plain/w', data: 'w', mode: 0o666, uid: 0, gid: 0 }, // a mode the usual umask (022) would clip
    ], { gzip: true });
    const st = (p: string) => lstatSync(join(dir, p));
    expect(st('mail').mode & 0o7777).toBe(0o2775);
    expect(st('mail').gid).toBe(8);
    for (const p of ['mail/root', 'mail/big', 'mail/sub', 'mail/link', 'plain', 'plain/ro', 'plain/w']) expect([p, st(p).uid, st(p).gid]).toEqual([p, 0, 0]);
    expect(st('mail/root').mode & 0o7777).toBe(0o644);
    expect(st('mail/big').mode & 0o7777).toBe(0o644);
    expect(st('mail/big').size).toBe(big.length);
    expect(st('mail/sub').mode & 0o7777).toBe(0o755); // not setgid, though made in a setgid directory
    expect(st('mail/implicit').mode & 0o7777).toBe(0o755);
    expect(st('mail/kept').gid).toBe(8);
    expect(st('plain').mode & 0o7777).toBe(0o750);
    expect(st('plain/ro').mode & 0o7777).toBe(0o444);
    expect(st('plain/w').mode & 0o7777).toBe(0o666);
  });
  it('restores a capability set by setcap and archived by GNU tar --xattrs', async () => {
    const src = tmp('tspod-unpack-cap-');
    writeFileSync(join(src, 'ping'), 'ping');
    run('setcap', ['cap_setuid,cap_net_raw+ep', join(src, 'ping')]);
    const tar = run('tar', ['--format=posix', '--xattrs', '--xattrs-include=*', '-cf', '-', '-C', src, 'ping']);
    const { dir } = await unpack(tar, { gzip: true });
    expect(Buffer.compare(xattr(join(dir, 'ping'), 'security.capability')!, xattr(join(src, 'ping'), 'security.capability')!)).toBe(0);
    expect(run('getcap', [join(dir, 'ping')]).toString()).toMatch(/cap_setuid,cap_net_raw=ep/);
  });

  it('computes the diffID of the uncompressed stream, gzip sniffed whatever the media type says', async () => {
    const entries: CraftEntry[] = [{ name: 'a', data: 'a'.repeat(100000) }];
    const tar = craftTar(entries);
    const plain = await unpack(entries, { mediaType: MediaType.OciLayerGzip }); // a registry that lies
    expect(plain.res.diffId).toBe(sha256(tar));
    const gz = await unpack(entries, { gzip: true, mediaType: MediaType.OciLayer, chunk: 3 });
    expect(gz.res.diffId).toBe(sha256(tar));
    expect(readFileSync(join(gz.dir, 'a'), 'utf8')).toBe('a'.repeat(100000));
  });

  it('refuses corrupt zstd with EINVAL (zstd itself: test/unit/unpack/zstd.test.ts), and unknown media types', async () => {
    const dir = tmp('tspod-unpack-zstd-');
    const zstd = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
    await expect(unpackLayer(streamOf(zstd), MediaType.OciLayerZstd, dir)).rejects.toMatchObject({ code: 'EINVAL' });
    // magic wins over a gzip label
    await expect(unpackLayer(streamOf(zstd), MediaType.OciLayerGzip, dir)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(unpackLayer(streamOf(zstd), 'application/json', dir)).rejects.toMatchObject({ code: 'EUNSUPPORTED' });
  });

  it('fails with EINVAL on corrupt gzip and on garbage', async () => {
    const dir = tmp('tspod-unpack-corrupt-');
    const gz = gzipSync(craftTar([{ name: 'a', data: 'x'.repeat(5000) }]));
    gz[gz.length - 6] ^= 0xff; // break the CRC
    await expect(unpackLayer(streamOf(gz), MediaType.OciLayerGzip, dir)).rejects.toMatchObject({ code: 'EINVAL' });
    const dir2 = join(dir, 'garbage');
    mkdirSync(dir2);
    await expect(unpackLayer(streamOf(Buffer.alloc(2000, 0x41)), MediaType.OciLayer, dir2)).rejects.toMatchObject({
      code: 'EINVAL', message: expect.stringMatching(/invalid header checksum at offset 0 \(not a tar archive\?\)/) });
    // a truncated gzip stream
    const cut = gzipSync(craftTar([{ name: 'a', data: 'x'.repeat(5000) }])).subarray(0, 40);
    await expect(unpackLayer(streamOf(cut), MediaType.OciLayerGzip, dir2)).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('writes large files on the pool with exact content, owner, setuid, times; links and replacements of them', async () => {
    const big = (n: number, seed: number) => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff; return b; };
    const a = big(3 * 1024 * 1024 + 123, 1); // many chunks, several pool writes
    const b = big(70 * 1024, 2);
    const c = big(200 * 1024, 3);
    const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const entries: CraftEntry[] = [
      { name: 'usr/bin/big', data: a, mode: 0o4755, uid: 0, gid: 0, mtime: 1600000010 },
      { name: 'usr/bin/big-hard', type: 'link', linkname: 'usr/bin/big' },
      { name: 'usr/lib/b', data: b, mode: 0o640, uid: 1000, gid: 50, mtime: 1600000011 },
      { name: 'usr/lib/b', data: 'replaced', mode: 0o600, mtime: 1600000012 }, // a later entry wins, even over pending writes
      { name: 'usr/bin/capped', data: c, mode: 0o755, pax: { 'SCHILY.xattr.security.capability': cap } },
      { name: 'usr/share/', type: 'dir', mode: 0o755, mtime: 1600000013 },
      { name: 'usr/share/small', data: 'small', mode: 0o644 },
    ];
    for (const gzip of [false, true]) {
      const { dir, res, tar } = await unpack(entries, { gzip, chunk: 100_000 });
      expect(res.diffId).toBe(sha256(tar));
      const st = (p: string) => lstatSync(join(dir, p));
      expect(readFileSync(join(dir, 'usr/bin/big')).equals(a)).toBe(true);
      expect(st('usr/bin/big').mode & 0o7777).toBe(0o4755); // setuid applied after the last write
      expect(st('usr/bin/big').mtimeMs).toBe(1600000010000);
      expect(st('usr/bin/big-hard').ino).toBe(st('usr/bin/big').ino);
      expect(readFileSync(join(dir, 'usr/lib/b'), 'utf8')).toBe('replaced');
      expect(st('usr/lib/b').mode & 0o7777).toBe(0o600);
      expect(st('usr/lib/b').mtimeMs).toBe(1600000012000);
      expect(readFileSync(join(dir, 'usr/bin/capped')).equals(c)).toBe(true);
      expect(Buffer.compare(xattr(join(dir, 'usr/bin/capped'), 'security.capability')!, cap)).toBe(0);
      expect(st('usr/share').mtimeMs).toBe(1600000013000);
      expect(res.size).toBe(a.length + b.length + 'replaced'.length + c.length + 'small'.length);
    }
  });

  it('pauses parsing while too many large files are still being written, and completes every one', async () => {
    const n = 400; // above the 256 files the unpack lets the pool hold open
    const entries: CraftEntry[] = Array.from({ length: n }, (_, i) => ({
      name: `lib/f${i}`, data: Buffer.alloc(64 * 1024, i & 0xff), mode: 0o600 | (i % 2 ? 0o4000 : 0), uid: i, gid: i + 1, mtime: 1600000000 + i,
    }));
    const { dir, res } = await unpack(entries, { chunk: 1 << 20 });
    expect(res.size).toBe(n * 64 * 1024);
    for (let i = 0; i < n; i++) {
      const p = join(dir, `lib/f${i}`);
      const st = lstatSync(p);
      expect([st.size, st.mode & 0o7777, st.uid, st.gid, st.mtimeMs]).toEqual([64 * 1024, 0o600 | (i % 2 ? 0o4000 : 0), i, i + 1, (1600000000 + i) * 1000]);
      if (i % 97 === 0) expect(readFileSync(p).equals(Buffer.alloc(64 * 1024, i & 0xff))).toBe(true);
    }
  });

  it('leaves no file open and no write in flight when a later entry is refused', async () => {
    // Only this test's files: other test files run in threads of the same process.
    const open = () => readdirSync('/proc/self/fd').map((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`); } catch { return ''; } })
      .filter((p) => /\/layer\/a\/big[12]( \(deleted\))?$/.test(p));
    const err = await unpackError([
      { name: 'a/big1', data: Buffer.alloc(5 * 1024 * 1024, 1) },
      { name: 'a/big2', data: Buffer.alloc(300 * 1024, 2) },
      { name: '../escape', data: 'x' },
    ]);
    expect(err.code).toBe('EUNSAFE');
    expect(open()).toEqual([]);
  });

  it('lets a later entry replace an earlier one of the same name', async () => {
    const { dir } = await unpack([
      { name: 'x', data: 'first' },
      { name: 'x', data: 'second' },
      { name: 'd/f', data: 'f' },
      { name: 'd', type: 'symlink', linkname: '/' },
      { name: 'e/', type: 'dir', mode: 0o700 },
      { name: 'e/', type: 'dir', mode: 0o750 },
    ]);
    expect(readFileSync(join(dir, 'x'), 'utf8')).toBe('second');
    expect(lstatSync(join(dir, 'd')).isSymbolicLink()).toBe(true);
    expect(lstatSync(join(dir, 'e')).mode & 0o7777).toBe(0o750);
  });
});

d('unpackLayer: whiteouts to the overlay format', () => {
  const isWhiteout = (p: string) => {
    const st = lstatSync(p);
    return st.isCharacterDevice() && st.rdev === 0;
  };
  const opaque = (p: string) => xattr(p, 'trusted.overlay.opaque')?.toString();

  it('turns .wh.NAME into a 0:0 char device and .wh..wh..opq into an opaque dir (markers first)', async () => {
    const { dir } = await unpack([
      { name: 'etc/.wh.motd' },
      { name: 'usr/share/.wh..wh..opq' },
      { name: 'usr/share/mine', data: 'kept' },
      { name: '.wh.gone-at-root' },
      { name: 'var/.wh..wh.plnk' }, // AUFS bookkeeping: ignored
    ]);
    expect(isWhiteout(join(dir, 'etc/motd'))).toBe(true);
    expect(existsSync(join(dir, 'etc/.wh.motd'))).toBe(false);
    expect(opaque(join(dir, 'usr/share'))).toBe('y');
    expect(readFileSync(join(dir, 'usr/share/mine'), 'utf8')).toBe('kept');
    expect(existsSync(join(dir, 'usr/share/.wh..wh..opq'))).toBe(false);
    expect(isWhiteout(join(dir, 'gone-at-root'))).toBe(true);
    expect(readdirSync(join(dir, 'var'))).toEqual([]);
  });

  it('gives the same result with markers after the entries', async () => {
    const { dir } = await unpack([
      { name: 'usr/share/', type: 'dir', mode: 0o755, mtime: 1500000000 },
      { name: 'usr/share/mine', data: 'kept' },
      { name: 'usr/share/.wh..wh..opq' },
      { name: 'etc/.wh.motd' },
    ]);
    expect(opaque(join(dir, 'usr/share'))).toBe('y');
    expect(readdirSync(join(dir, 'usr/share'))).toEqual(['mine']);
    expect(isWhiteout(join(dir, 'etc/motd'))).toBe(true);
    expect(lstatSync(join(dir, 'usr/share')).mtimeMs).toBe(1500000000000); // times set after whiteouts
  });

  it('never hides an entry of the same layer: a whiteout with a same-named file or dir, either order', async () => {
    for (const order of ['before', 'after'] as const) {
      const marker: CraftEntry[] = [{ name: 'a/.wh.f' }, { name: 'a/.wh.d' }];
      const content: CraftEntry[] = [{ name: 'a/f', data: 'file' }, { name: 'a/d/x', data: 'x' }];
      const { dir } = await unpack(order === 'before' ? [...marker, ...content] : [...content, ...marker]);
      expect(readFileSync(join(dir, 'a/f'), 'utf8')).toBe('file');
      // the lower d is deleted, this layer's d stays: that is an opaque d
      expect(readFileSync(join(dir, 'a/d/x'), 'utf8')).toBe('x');
      expect(opaque(join(dir, 'a/d'))).toBe('y');
      expect(opaque(join(dir, 'a'))).toBeUndefined();
    }
  });

  it('treats a directory named .wh.x as content and refuses whiteouts of "." and ".."', async () => {
    const { dir } = await unpack([{ name: 'a/.wh.x/', type: 'dir' }]);
    expect(lstatSync(join(dir, 'a/.wh.x')).isDirectory()).toBe(true);
    for (const name of ['a/.wh.', 'a/.wh..', 'a/.wh...']) {
      const err = await unpackError([{ name }]);
      expect(err.code).toBe('EUNSAFE');
      expect(err.message).toContain(`"${name}"`);
    }
  });
});

d('unpackLayer: hostile archives', () => {
  it('refuses ../ escapes', async () => {
    const err = await unpackError([{ name: '../canary/pwned', data: 'x' }]);
    expect(err.code).toBe('EUNSAFE');
    expect(err.message).toBe('unpack layer: entry "../canary/pwned" escapes the layer directory');
    const err2 = await unpackError([{ name: 'a/../../canary/keep', data: 'x' }]);
    expect(err2.code).toBe('EUNSAFE');
  });

  it('makes absolute names relative to the layer', async () => {
    const { dir, base } = await unpack([{ name: '/abs/file', data: 'in' }, { name: '/', type: 'dir', mode: 0o755 }]);
    expect(readFileSync(join(dir, 'abs/file'), 'utf8')).toBe('in');
    expect(readdirSync(base)).toEqual(['layer']);
  });

  it('never writes through a symlink the archive created', async () => {
    const err = await unpackError([
      { name: 'a', type: 'symlink', linkname: '/' },
      { name: 'a/canary/pwned', data: 'x' },
    ]);
    expect(err.code).toBe('EUNSAFE');
    expect(err.message).toBe('unpack layer: entry "a/canary/pwned" escapes through symlink "a"');
    const rel = await unpackError([
      { name: 'up', type: 'symlink', linkname: '..' },
      { name: 'up/canary/keep', data: 'overwritten' },
    ]);
    expect(rel.message).toBe('unpack layer: entry "up/canary/keep" escapes through symlink "up"');
    // a dir replaced by a symlink later in the archive
    const swap = await unpackError([
      { name: 'd/', type: 'dir' },
      { name: 'd', type: 'symlink', linkname: '../canary' },
      { name: 'd/keep', data: 'overwritten' },
    ]);
    expect(swap.message).toBe('unpack layer: entry "d/keep" escapes through symlink "d"');
  });

  it('never puts a whiteout or an opaque marker through a symlink', async () => {
    for (const name of ['a/.wh.keep', 'a/.wh..wh..opq']) {
      const err = await unpackError([{ name: 'a', type: 'symlink', linkname: '../canary' }, { name }]);
      expect(err.code).toBe('EUNSAFE');
      expect(err.message).toBe(`unpack layer: entry "${name}" escapes through symlink "a"`);
    }
  });

  it('refuses a symlink (or file) in place of "."', async () => {
    for (const name of ['.', './', '']) {
      const err = await unpackError([{ name: name || '.', type: 'symlink', linkname: '/' }]);
      expect(err.code).toBe('EUNSAFE');
      expect(err.message).toMatch(/replaces the layer root/);
    }
  });

  it('refuses hard links that leave the layer or pass through a symlink', async () => {
    const abs = await unpackError([{ name: 'passwd', type: 'link', linkname: '/etc/passwd' }]);
    expect(abs.code).toBe('EUNSAFE');
    expect(abs.message).toBe('unpack layer: entry "passwd" links to "/etc/passwd", which is not in the layer');
    const up = await unpackError([{ name: 'p', type: 'link', linkname: '../canary/keep' }]);
    expect(up.code).toBe('EUNSAFE');
    const via = await unpackError([
      { name: 'root', type: 'symlink', linkname: '/' },
      { name: 'p', type: 'link', linkname: 'root/etc/passwd' },
    ]);
    expect(via.message).toBe('unpack layer: entry "p" links through symlink "root"');
    const dirlink = await unpackError([{ name: 'd/', type: 'dir' }, { name: 'p', type: 'link', linkname: 'd' }]);
    expect(dirlink.code).toBe('EUNSAFE');
  });
});
