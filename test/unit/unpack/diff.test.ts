// Upper directory → OCI layer tar (src/unpack/diff.ts, diff-tar.ts), read back with our own tar reader and
// applied with the unpacker: whiteouts, opaque directories, xattrs (binary file capabilities), hard links,
// devices, the .wh. refusal, and byte-for-byte determinism. Needs root (mknod 0:0, trusted.* xattrs).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { realSys, S_IFCHR, S_IFIFO } from '../../../src/sys/index.js';
import { layerApplier, mergedTar, upperDirTar } from '../../../src/unpack/diff.js';
import { tarHeader, tarEnd } from '../../../src/unpack/diff-tar.js';
import { TarReader, type TarEntry } from '../../../src/unpack/tar-reader.js';
import { TspodError } from '../../../src/util/errors.js';
import { isRoot } from '../../support/caps.js';

const gate = isRoot();

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of gen) parts.push(c);
  return Buffer.concat(parts);
}

function entries(tar: Buffer): { e: TarEntry; data: Buffer }[] {
  const out: { e: TarEntry; data: Buffer }[] = [];
  let cur: { e: TarEntry; parts: Buffer[] } | undefined;
  const r = new TarReader({
    entry(e) { cur = { e, parts: [] }; },
    data(c) { cur!.parts.push(Buffer.from(c)); },
    entryEnd() { out.push({ e: cur!.e, data: Buffer.concat(cur!.parts) }); },
  });
  r.write(tar);
  expect(r.done).toBe(true);
  return out;
}

// vfs_cap_data revision 2 for cap_net_raw (bit 13) effective+permitted: bytes >= 0x80 would not survive UTF-8
const CAP = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
const BINARY_XATTR = Buffer.from([0xff, 0x80, 0x00, 0xc3, 0x28]);

describe.skipIf(gate)('upper directory → OCI layer', () => {
  const sys = realSys();
  let dir: string;
  let upper: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tspod-diff-'));
    upper = join(dir, 'upper');
    mkdirSync(upper);
    // what overlay leaves in an upper dir after: echo > etc/new; rm etc/gone; rm -rf opt/d && mkdir opt/d && touch opt/d/kept;
    // a capability, a hard link, a device, a fifo, a symlink, a long name
    mkdirSync(join(upper, 'etc'));
    writeFileSync(join(upper, 'etc/new'), 'new\n');
    sys.mknod(join(upper, 'etc/gone'), S_IFCHR, 0, 0);
    mkdirSync(join(upper, 'opt/d'), { recursive: true });
    sys.lsetxattr(join(upper, 'opt/d'), 'trusted.overlay.opaque', Buffer.from('y'));
    writeFileSync(join(upper, 'opt/d/kept'), 'kept\n');
    mkdirSync(join(upper, 'usr/bin'), { recursive: true });
    writeFileSync(join(upper, 'usr/bin/ping'), 'ELF');
    chmodSync(join(upper, 'usr/bin/ping'), 0o755);
    sys.lsetxattr(join(upper, 'usr/bin/ping'), 'security.capability', CAP);
    sys.lsetxattr(join(upper, 'usr/bin/ping'), 'user.bin', BINARY_XATTR);
    sys.lsetxattr(join(upper, 'usr/bin'), 'trusted.overlay.origin', Buffer.from('bookkeeping'));
    linkSync(join(upper, 'usr/bin/ping'), join(upper, 'usr/bin/ping6'));
    sys.mknod(join(upper, 'usr/null'), S_IFCHR | 0o666, 1, 3);
    chmodSync(join(upper, 'usr/null'), 0o666); // mknod applies the umask
    sys.mknod(join(upper, 'usr/fifo'), S_IFIFO | 0o600, 0, 0);
    symlinkSync('../etc/new', join(upper, 'usr/link'));
    const long = 'x'.repeat(120);
    writeFileSync(join(upper, 'usr', long), 'long\n');
    for (const p of ['etc', 'etc/new', 'opt', 'opt/d', 'opt/d/kept', 'usr', 'usr/bin', 'usr/bin/ping', 'usr/null', 'usr/fifo', 'usr/' + long]) {
      utimesSync(join(upper, p), 1700000000.75, 1700000000.75);
    }
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes whiteouts, opaque markers, binary xattrs, hard links and devices, in sorted order, without overlay xattrs', async () => {
    const tar = await collect(upperDirTar(upper, { sys }));
    const list = entries(tar);
    const names = list.map((x) => x.e.name);
    expect(names).toEqual([
      'etc/', 'etc/.wh.gone', 'etc/new',
      'opt/', 'opt/d/', 'opt/d/.wh..wh..opq', 'opt/d/kept',
      'usr/', 'usr/bin/', 'usr/bin/ping', 'usr/bin/ping6', 'usr/fifo', 'usr/link', 'usr/null', 'usr/' + 'x'.repeat(120),
    ]);
    const by = new Map(list.map((x) => [x.e.name, x]));
    expect(by.get('etc/.wh.gone')!.e.type).toBe('file');
    expect(by.get('etc/.wh.gone')!.e.size).toBe(0);
    const ping = by.get('usr/bin/ping')!;
    expect(ping.e.mode).toBe(0o755);
    expect(ping.data.toString()).toBe('ELF');
    expect(ping.e.xattrs.get('security.capability')).toEqual(CAP);
    expect(ping.e.xattrs.get('user.bin')).toEqual(BINARY_XATTR);
    expect(by.get('usr/bin/ping6')!.e).toMatchObject({ type: 'link', linkname: 'usr/bin/ping' });
    expect(by.get('usr/null')!.e).toMatchObject({ type: 'char', devmajor: 1, devminor: 3, mode: 0o666 });
    expect(by.get('usr/fifo')!.e.type).toBe('fifo');
    expect(by.get('usr/link')!.e).toMatchObject({ type: 'symlink', linkname: '../etc/new' });
    expect(by.get('etc/new')!.e.mtime).toBe(1700000000); // whole seconds
    for (const x of list) expect([...x.e.xattrs.keys()].filter((k) => k.includes('overlay'))).toEqual([]);
    // GNU tar reads it too, capability included
    const file = join(dir, 'layer.tar');
    writeFileSync(file, tar);
    const gnu = execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-tvf', file], { encoding: 'utf8' });
    expect(gnu).toMatch(/-rwxr-xr-x\* 0\/0 +3 .* usr\/bin\/ping\n/);
  });

  it('is deterministic: the same directory gives the same bytes', async () => {
    const a = await collect(upperDirTar(upper, { sys }));
    const b = await collect(upperDirTar(upper, { sys }));
    expect(a.equals(b)).toBe(true);
  });

  it('round-trips through the unpacker into the overlay format', async () => {
    const tar = await collect(upperDirTar(upper, { sys }));
    const out = join(dir, 'out');
    mkdirSync(out);
    const ap = layerApplier(out, sys);
    ap.write(tar);
    ap.finish();
    const gone = lstatSync(join(out, 'etc/gone'));
    expect(gone.isCharacterDevice() && gone.rdev === 0).toBe(true);
    expect(sys.lgetxattr(join(out, 'opt/d'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    expect(readFileSync(join(out, 'opt/d/kept'), 'utf8')).toBe('kept\n');
    expect(sys.lgetxattr(join(out, 'usr/bin/ping'), 'security.capability')).toEqual(CAP);
    expect(lstatSync(join(out, 'usr/bin/ping6')).ino).toBe(lstatSync(join(out, 'usr/bin/ping')).ino);
    expect(sys.lgetxattr(join(out, 'usr/bin'), 'trusted.overlay.origin')).toBeNull();
    // and the unpacked layer diffs to the same bytes again
    const again = await collect(upperDirTar(out, { sys }));
    expect(again.equals(tar)).toBe(true);
  });

  it('refuses a real file named .wh.*, naming it', async () => {
    writeFileSync(join(upper, 'opt/.wh.something'), '');
    const err = await collect(upperDirTar(upper, { sys, what: 'commit container c1' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TspodError);
    expect((err as TspodError).code).toBe('EINVAL');
    expect((err as TspodError).message).toMatch(/^commit container c1: file "\/opt\/.wh.something" has a name starting with ".wh."/);
  });

  it('leaves out empty mount-point files it is told to skip, but keeps them when they have content', async () => {
    writeFileSync(join(upper, 'etc/resolv.conf'), '');
    writeFileSync(join(upper, 'etc/hosts'), '127.0.0.1 x\n');
    const names = entries(await collect(upperDirTar(upper, { sys, skipEmptyFiles: ['etc/resolv.conf', 'etc/hosts'] }))).map((x) => x.e.name);
    expect(names).not.toContain('etc/resolv.conf');
    expect(names).toContain('etc/hosts');
  });

  it('flattens layers for export: whiteouts hide, opaque directories hide the layers below', async () => {
    const lower = join(dir, 'lower');
    mkdirSync(join(lower, 'etc'), { recursive: true });
    writeFileSync(join(lower, 'etc/gone'), 'old');
    writeFileSync(join(lower, 'etc/kept'), 'old');
    mkdirSync(join(lower, 'opt/d'), { recursive: true });
    writeFileSync(join(lower, 'opt/d/hidden'), 'old');
    const names = entries(await collect(mergedTar([upper, lower], { sys }))).map((x) => x.e.name);
    expect(names).toContain('etc/kept');
    expect(names).toContain('etc/new');
    expect(names).not.toContain('etc/gone');
    expect(names).toContain('opt/d/kept');
    expect(names).not.toContain('opt/d/hidden');
    expect(names.some((n) => n.includes('.wh.'))).toBe(false);
  });
});

describe('tar headers', () => {
  it('uses pax records for long names and large ids', () => {
    const name = 'd/' + 'n'.repeat(150);
    const tar = Buffer.concat([
      tarHeader({ name, type: 'file', mode: 0o4755, uid: 3_000_000, gid: 5, size: 0, mtime: 1 }),
      tarEnd(),
    ]);
    const [x] = entries(tar);
    expect(x!.e).toMatchObject({ name, mode: 0o4755, uid: 3_000_000, gid: 5, mtime: 1 });
  });
});
