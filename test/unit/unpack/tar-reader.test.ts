import { mkdirSync, readFileSync, symlinkSync, linkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { realSys } from '../../../src/sys/index.js';
import { TspodError } from '../../../src/util/errors.js';
import { TarReader } from '../../../src/unpack/tar-reader.js';
import { craftTar, readAll, run, tempDir } from './tar-fixtures.js';

const isRoot = process.getuid?.() === 0;
const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});
function tmp(prefix: string): string {
  const t = tempDir(prefix);
  cleanups.push(t.cleanup);
  return t.path;
}

const LONG = 'd'.repeat(60) + '/' + 'e'.repeat(60) + '/' + 'file-with-a-long-name-' + 'x'.repeat(40);

function makeTree(src: string): void {
  mkdirSync(join(src, LONG.slice(0, LONG.lastIndexOf('/'))), { recursive: true });
  writeFileSync(join(src, LONG), 'long\n');
  writeFileSync(join(src, 'a.txt'), 'hello\n');
  linkSync(join(src, 'a.txt'), join(src, 'hard.txt'));
  symlinkSync('/' + 'l'.repeat(150), join(src, 'longlink'));
  symlinkSync('a.txt', join(src, 'sym'));
}

describe('TarReader on GNU tar archives', () => {
  it('reads long names (L), long link targets (K), hardlinks and symlinks in --format=gnu', () => {
    const src = tmp('tspod-tr-src-');
    makeTree(src);
    const tar = run('tar', ['--format=gnu', '--sort=name', '-cf', '-', '-C', src, '.']);
    const entries = readAll(tar, 333);
    const by = new Map(entries.map((e) => [e.name, e]));
    expect(by.get('./' + LONG)?.data.toString()).toBe('long\n');
    expect(by.get('./longlink')?.type).toBe('symlink');
    expect(by.get('./longlink')?.linkname).toBe('/' + 'l'.repeat(150));
    expect(by.get('./sym')?.linkname).toBe('a.txt');
    const a = by.get('./a.txt')!, h = by.get('./hard.txt')!;
    // GNU tar stores the second name of an inode as a hard link to the first (sorted order)
    expect(a.type).toBe('file');
    expect(a.data.toString()).toBe('hello\n');
    expect(h.type).toBe('link');
    expect(h.linkname).toBe('./a.txt');
    expect(h.size).toBe(0);
    expect(by.get('./')?.type).toBe('dir');
  });

  it.skipIf(!isRoot)('reads device nodes and FIFOs with their numbers (needs root for mknod)', () => {
    const src = tmp('tspod-tr-dev-');
    run('mknod', [join(src, 'null'), 'c', '1', '3']);
    run('mknod', [join(src, 'blk'), 'b', '259', '300']);
    run('mkfifo', [join(src, 'fifo')]);
    const tar = run('tar', ['--format=posix', '-cf', '-', '-C', src, 'null', 'blk', 'fifo']);
    const by = new Map(readAll(tar).map((e) => [e.name, e]));
    expect(by.get('null')).toMatchObject({ type: 'char', devmajor: 1, devminor: 3 });
    expect(by.get('blk')).toMatchObject({ type: 'block', devmajor: 259, devminor: 300 });
    expect(by.get('fifo')?.type).toBe('fifo');
  });

  it.skipIf(!isRoot)('keeps a binary security.capability from tar --xattrs byte for byte (needs root for setcap)', () => {
    const src = tmp('tspod-tr-cap-');
    const f = join(src, 'ping');
    writeFileSync(f, 'binary');
    run('setcap', ['cap_setuid,cap_net_raw+ep', f]); // cap_setuid is bit 7: a 0x80 byte
    const want = realSys().lgetxattr(f, 'security.capability');
    expect(want).not.toBeNull();
    expect([...want!].some((b) => b >= 0x80)).toBe(true); // the reason tar-stream corrupts it
    const tar = run('tar', ['--format=posix', '--xattrs', '--xattrs-include=*', '-cf', '-', '-C', src, 'ping']);
    const [e] = readAll(tar, 100);
    expect(e.name).toBe('ping');
    expect(Buffer.compare(e.xattrs.get('security.capability')!, want!)).toBe(0);
    expect(e.data.toString()).toBe('binary');
  });

  it('gives the same entries whatever the chunking', () => {
    const src = tmp('tspod-tr-chunks-');
    makeTree(src);
    writeFileSync(join(src, 'big'), Buffer.alloc(70000, 7));
    const tar = run('tar', ['--format=posix', '--sort=name', '-cf', '-', '-C', src, '.']);
    const norm = (es: ReturnType<typeof readAll>) => es.map((e) => ({ ...e, pax: undefined, data: e.data.toString('hex') }));
    const ref = norm(readAll(tar, tar.length));
    for (const c of [1, 7, 511, 512, 513, 65536]) expect(norm(readAll(tar, c))).toEqual(ref);
    // pausing after every header, then feeding the rest
    const paused: typeof ref = [];
    let cur: (typeof ref)[number] | undefined;
    let parts: Buffer[] = [];
    const r = new TarReader({
      entry(e) { cur = { ...e, pax: undefined, data: '' }; parts = []; },
      data(c) { parts.push(Buffer.from(c)); },
      entryEnd() { cur!.data = Buffer.concat(parts).toString('hex'); paused.push(cur!); },
    });
    let pauses = 0;
    for (let off = 0; off < tar.length;) {
      const n = r.write(tar.subarray(off), () => true);
      expect(n).toBeGreaterThan(0);
      off += n;
      pauses++;
    }
    r.end();
    expect(paused).toEqual(ref);
    expect(pauses).toBeGreaterThan(ref.length - 1);
  });
});

describe('TarReader on python tarfile archives', () => {
  const py = (script: string, dir: string): Buffer => {
    run('python3', ['-c', script, dir]);
    return readFileSync(join(dir, 'out.tar'));
  };

  it('reads ustar prefix/name splitting', () => {
    const dir = tmp('tspod-tr-py-');
    const tar = py(`
import tarfile, io, sys
d = sys.argv[1]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w', format=tarfile.USTAR_FORMAT) as t:
    ti = tarfile.TarInfo('p' * 120 + '/name.txt'); ti.size = 12
    t.addfile(ti, io.BytesIO(b'ustar prefix'))
open(d + '/out.tar', 'wb').write(buf.getvalue())
`, dir);
    expect(tar.subarray(345, 350).toString()).toBe('ppppp'); // really uses the prefix field
    const [e] = readAll(tar, 100);
    expect(e.name).toBe('p'.repeat(120) + '/name.txt');
    expect(e.data.toString()).toBe('ustar prefix');
  });

  it('reads pax records and base-256 fields', () => {
    const dir = tmp('tspod-tr-py2-');
    const tar = py(`
import tarfile, io, sys
d = sys.argv[1]
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
    for name, data, uid in [('q' * 300 + '/pax.txt', b'pax', 1234567890), ('utf8-\\u00e9\\u4e2d.txt', b'u', 0)]:
        ti = tarfile.TarInfo(name); ti.size = len(data); ti.uid = uid; ti.mtime = 1700000000.5
        t.addfile(ti, io.BytesIO(data))
open(d + '/out.tar', 'wb').write(buf.getvalue())
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w', format=tarfile.GNU_FORMAT) as t:
    ti = tarfile.TarInfo('gnu-big-uid'); ti.size = 1; ti.uid = 0o7777777 + 10; ti.mode = 0o4755
    t.addfile(ti, io.BytesIO(b'g'))
open(d + '/gnu.tar', 'wb').write(buf.getvalue())
`, dir);
    const [p, u] = readAll(tar, 1000);
    expect(p.name).toBe('q'.repeat(300) + '/pax.txt');
    expect(p.uid).toBe(1234567890);
    expect(p.data.toString()).toBe('pax');
    expect(p.mtime).toBe(1700000000.5);
    expect(u.name).toBe('utf8-\u00e9\u4e2d.txt');
    const [g] = readAll(readFileSync(join(dir, 'gnu.tar')));
    expect(g.uid).toBe(0o7777777 + 10);
    expect(g.mode).toBe(0o4755);
  });
});

describe('TarReader on crafted archives', () => {
  it('keeps pax values as raw bytes and applies global (g) records', () => {
    const bin = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0x80, 0xfe, 0x00]);
    const tar = craftTar([{ name: 'f', data: 'x', pax: { 'SCHILY.xattr.security.capability': bin, 'SCHILY.xattr.user.k': 'v=1' } }]);
    const [e] = readAll(tar, 3);
    expect(Buffer.compare(e.xattrs.get('security.capability')!, bin)).toBe(0);
    expect(e.xattrs.get('user.k')!.toString()).toBe('v=1');

    // a global header: build one by hand in front of an entry
    const g = craftTar([{ name: 'g', data: '' }], { end: false });
    const body = Buffer.from('20 uname=globaluser\n');
    const gh = Buffer.from(craftTar([{ name: 'PaxHeaders/g', data: body }], { end: false }));
    gh[156] = 'g'.charCodeAt(0);
    let sum = 0;
    gh.write('        ', 148, 'latin1');
    for (let i = 0; i < 512; i++) sum += gh[i];
    gh.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    const [ge] = readAll(Buffer.concat([gh, g, Buffer.alloc(1024)]));
    expect(ge.name).toBe('g');
    expect(ge.uname).toBe('globaluser');
  });

  it('fails on a truncated archive and on a bad checksum with EINVAL', () => {
    const tar = craftTar([{ name: 'f', data: 'x'.repeat(1000) }]);
    expect(() => readAll(tar.subarray(0, 700))).toThrow(/archive truncated inside entry "f"/);
    const bad = Buffer.from(tar);
    bad[0] ^= 1;
    try {
      readAll(bad);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(TspodError);
      expect((err as TspodError).code).toBe('EINVAL');
      expect((err as TspodError).message).toMatch(/invalid header checksum at offset 0/);
    }
  });

  it('accepts an archive without the end-of-archive marker when it stops on an entry boundary', () => {
    const tar = craftTar([{ name: 'a', data: 'aa' }, { name: 'b', type: 'dir' }], { end: false });
    expect(readAll(tar).map((e) => e.name)).toEqual(['a', 'b']);
  });

  it('treats links, dirs and devices as header-only whatever their size says', () => {
    const tar = craftTar([
      { name: 'f', data: 'x' },
      { name: 'l', type: 'link', linkname: 'f', pax: { size: '1024' } },
      { name: 'd', type: 'dir', pax: { size: '512' } },
      { name: 'after', data: 'ok' },
    ]);
    const es = readAll(tar, 50);
    expect(es.map((e) => [e.name, e.type, e.size])).toEqual([['f', 'file', 1], ['l', 'link', 0], ['d', 'dir', 0], ['after', 'file', 2]]);
    expect(es[3].data.toString()).toBe('ok');
  });

  it('reads an empty old GNU sparse entry, and refuses the unsupported pax sparse 0.0 with EUNSUPPORTED', () => {
    expect(() => readAll(craftTar([{ name: 's0', pax: { 'GNU.sparse.offset': '0', 'GNU.sparse.numbytes': '0' } }]))).toThrow(/GNU sparse format 0.0/);
    const tar = Buffer.from(craftTar([{ name: 's', data: '' }]));
    tar[156] = 'S'.charCodeAt(0);
    tar.write('        ', 148, 'latin1');
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += tar[i];
    tar.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    const [e] = readAll(tar);
    expect(e).toMatchObject({ name: 's', type: 'file', size: 0, sparseMap: [] });
  });
});
