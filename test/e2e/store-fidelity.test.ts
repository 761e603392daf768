// Issue #4, unpacking fidelity and safety, end to end: crafted layers pushed with skopeo into the real
// fixture registry, pulled by the CLI, run on real OverlayFS; the container must see exactly the tree the
// layers describe. Hostile layers must fail the pull naming the entry (or be contained), and a canary
// directory on the host must stay untouched.
import { closeSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTspodSuite } from '../support/suite.js';
import { firstReason, haveCommand, haveOverlay, isRoot } from '../support/caps.js';
import { busyboxBase, craftLayer, gnuTarLayer, hostBinaryLayer, pushCraftedImage, type LayerEntry } from '../support/layers.js';

const gate = firstReason(isRoot(), haveOverlay(), haveCommand('skopeo'), haveCommand('getcap'));

// security.capability for "cap_net_raw,cap_setfcap=ep": VFS_CAP_REVISION_2 with the effective bit, then
// permitted (low, high) and inheritable (low, high) words, little endian. CAP_SETFCAP (31) makes a byte
// 0x80: decoded as UTF-8 it would be destroyed.
const CAP = Buffer.from([0x01, 0, 0, 0x02, 0x00, 0x20, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const LONG_PAX = 'fid/long/' + 'p'.repeat(120);
const LONG_GNU = 'fid/gnulong/' + 'g'.repeat(130);

const fidelity: LayerEntry[] = [
  { name: 'fid/', type: 'dir', mode: 0o755, mtime: 1500000000 },
  { name: 'fid/plain', data: 'plain content\n', mode: 0o644, uid: 1000, gid: 1000, mtime: 1600000000 },
  { name: 'fid/hard', type: 'link', linkname: 'fid/plain' },
  { name: 'fid/wide', data: 'w', mode: 0o666 },                       // no umask may apply
  { name: 'fid/widedir/', type: 'dir', mode: 0o777 },
  { name: 'fid/odd', data: 'o', mode: 0o607 },
  { name: 'fid/suid', data: '#!/bin/sh\n', mode: 0o4755, uid: 1000, gid: 1000 }, // chown after chmod would clear it
  { name: 'fid/sgid', data: '#!/bin/sh\n', mode: 0o2755, uid: 1000, gid: 2000 },
  { name: 'fid/sticky/', type: 'dir', mode: 0o1777 },
  { name: 'fid/owned', data: 'x', uid: 1234, gid: 5678, mode: 0o640 },
  { name: 'fid/link', type: 'symlink', linkname: 'plain' },
  { name: 'fid/abslink', type: 'symlink', linkname: '/etc/passwd' },
  { name: 'fid/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
  { name: 'fid/loop', type: 'block', devmajor: 7, devminor: 0, mode: 0o660, gid: 6 },
  { name: 'fid/fifo', type: 'fifo', mode: 0o620 },
  { name: 'fid/capped', data: '#!/bin/sh\n', mode: 0o755, pax: { 'SCHILY.xattr.security.capability': CAP } },
  { name: LONG_PAX, data: 'pax long name\n' },
  { name: LONG_GNU, data: 'gnu long name\n', gnuLongName: true },
  { name: 'fid/olddir/', type: 'dir', mode: 0o750, mtime: 1400000000 },
  { name: 'fid/olddir/inside', data: 'i' },                            // written after its dir: the dir's mtime must survive
  // hard links whose target a later layer deletes or rewrites
  { name: 'hl/', type: 'dir', mode: 0o755 },
  { name: 'hl/orig', data: 'original\n' },
  { name: 'hl/link', type: 'link', linkname: 'hl/orig' },
  { name: 'hl/a', data: 'old a\n' },
  { name: 'hl/b', type: 'link', linkname: 'hl/a' },
  { name: 'wh/', type: 'dir', mode: 0o755 },
  { name: 'wh/gone', data: 'g' },
  { name: 'wh/opaque/', type: 'dir', mode: 0o755 },
  { name: 'wh/opaque/lower-only', data: 'l' },
];

const later: LayerEntry[] = [
  { name: 'hl/.wh.orig' },
  { name: 'hl/a', data: 'new a\n' },
  { name: 'wh/.wh.gone' },
  { name: 'wh/opaque/.wh..wh..opq' },
  { name: 'wh/opaque/mine', data: 'm' },
];

const SPARSE_SIZE = 32 * 1024 * 1024;
function sparseLayer(): Buffer {
  return gnuTarLayer((dir) => {
    mkdirSync(join(dir, 'sparse'), { mode: 0o755 });
    const fd = openSync(join(dir, 'sparse', 'holes.bin'), 'w', 0o644);
    writeSync(fd, Buffer.from('head'), 0, 4, 0);
    writeSync(fd, Buffer.from('tail!'), 0, 5, SPARSE_SIZE - 5);
    closeSync(fd);
  }, ['--sparse', '--format=gnu']);
}

describe.skipIf(gate)('crafted layers: every entry kind survives pull + run exactly', () => {
  const s = useTspodSuite('fidelity');
  let ref: string;

  beforeAll(async () => {
    const img = await pushCraftedImage(s.registry, 'library/crafted-fidelity:1', [
      await busyboxBase(s.registry), hostBinaryLayer('/usr/sbin/getcap'), craftLayer(fidelity), sparseLayer(), craftLayer(later),
    ]);
    ref = img.ref;
    const pull = await s.t.run(['pull', ref]);
    expect(pull.stderr).toBe('');
    expect(pull.code).toBe(0);
  }, 300_000);


  const sh = (script: string) => s.t.run(['run', '--rm', '--network', 'none', ref, 'sh', '-c', script]);

  it('sees types, modes (setuid/setgid/sticky, regardless of umask), owners, device numbers and link counts', async () => {
    const r = await sh(`cd / && find fid hl wh sparse | sort | while read f; do stat -c '%n|%F|%a|%u:%g|%h|%t:%T' "$f"; done`);
    expect(r.code).toBe(0);
    const got = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.split('|')[0], l.split('|').slice(1).join('|')]));
    expect(got).toMatchObject({
      'fid': 'directory|755|0:0|7|0:0',
      'fid/plain': 'regular file|644|1000:1000|2|0:0',
      'fid/hard': 'regular file|644|1000:1000|2|0:0',
      'fid/wide': 'regular file|666|0:0|1|0:0',
      'fid/widedir': 'directory|777|0:0|2|0:0',
      'fid/odd': 'regular file|607|0:0|1|0:0',
      'fid/suid': 'regular file|4755|1000:1000|1|0:0',
      'fid/sgid': 'regular file|2755|1000:2000|1|0:0',
      'fid/sticky': 'directory|1777|0:0|2|0:0',
      'fid/owned': 'regular file|640|1234:5678|1|0:0',
      'fid/link': 'symbolic link|777|0:0|1|0:0',
      'fid/null': 'character special file|666|0:0|1|1:3',
      'fid/loop': 'block special file|660|0:6|1|7:0',
      'fid/fifo': 'fifo|620|0:0|1|0:0',
      'fid/capped': 'regular file|755|0:0|1|0:0',
      'hl/link': 'regular file|644|0:0|2|0:0',
      'hl/b': 'regular file|644|0:0|2|0:0',
      'sparse/holes.bin': 'regular file|644|0:0|1|0:0',
    });
    // whiteouts and the opaque directory
    expect(Object.keys(got).filter((k) => k.startsWith('wh') || k.startsWith('hl'))).toEqual(
      ['hl', 'hl/a', 'hl/b', 'hl/link', 'wh', 'wh/opaque', 'wh/opaque/mine']);
  });

  it('sees contents, symlink targets, PAX and GNU long names, and mtimes (directories after their contents)', async () => {
    const r = await sh([
      'cat /fid/plain /fid/hard', 'readlink /fid/link', 'readlink /fid/abslink', `cat /${LONG_PAX} /${LONG_GNU}`,
      'stat -c "%n %Y" /fid /fid/plain /fid/olddir', 'cat /hl/link /hl/a /hl/b',
    ].join('; '));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe([
      'plain content', 'plain content', 'plain', '/etc/passwd', 'pax long name', 'gnu long name',
      '/fid 1500000000', '/fid/plain 1600000000', '/fid/olddir 1400000000',
      // a hard link keeps its content when a later layer deletes its target, or rewrites it
      'original', 'new a', 'old a', '',
    ].join('\n'));
  });

  it('sees the file capability from the binary SCHILY.xattr record (getcap)', async () => {
    const r = await sh('getcap /fid/capped /fid/plain');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\/fid\/capped (= )?cap_net_raw,cap_setfcap[+=]ep$/);
  });

  it('sees a sparse file with its size, content and holes', async () => {
    const r = await sh('stat -c "%s %b %B" /sparse/holes.bin; head -c 4 /sparse/holes.bin; echo; tail -c 5 /sparse/holes.bin; echo');
    expect(r.code).toBe(0);
    const [size, blocks, blockSize] = r.stdout.split('\n')[0]!.split(' ').map(Number);
    expect(size).toBe(SPARSE_SIZE);
    expect(blocks! * blockSize!).toBeLessThan(1024 * 1024);
    expect(r.stdout.split('\n').slice(1)).toEqual(['head', 'tail!', '']);
  });
});

describe.skipIf(gate)('hostile layers: the pull fails naming the entry, or the entry is contained', () => {
  const s = useTspodSuite('hostile');
  let canary: string;
  let snapshot: () => string[];

  beforeAll(async () => {
    canary = join(s.t.root, '..', 'canary');
    mkdirSync(join(canary, 'sub'), { recursive: true });
    writeFileSync(join(canary, 'keep'), 'untouched\n');
    writeFileSync(join(canary, 'sub', 'deep'), 'deep\n');
    snapshot = () => {
      const out: string[] = [];
      const walk = (d: string): void => {
        for (const n of readdirSync(d).sort()) {
          const p = join(d, n);
          const st = lstatSync(p);
          out.push(`${p} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.nlink} ${st.mtimeMs} ${st.isFile() ? readFileSync(p, 'utf8') : ''}`);
          if (st.isDirectory()) walk(p);
        }
      };
      walk(canary);
      return out;
    };
  }, 120_000);


  const C = () => canary.slice(1); // the canary's path without its leading slash
  const cases: { tag: string; entries: () => LayerEntry[]; error: () => RegExp }[] = [
    { tag: 'dotdot', entries: () => [{ name: `../../../../../../../../${C()}/pwned`, data: 'x' }], error: () => /entry "\.\.\/.*\/pwned" escapes the layer directory/ },
    { tag: 'symlink-root', entries: () => [{ name: 'evil', type: 'symlink', linkname: '/' }, { name: `evil/${C()}/pwned`, data: 'x' }], error: () => /entry "evil\/.*\/pwned" escapes through symlink "evil"/ },
    { tag: 'symlink-hostdir', entries: () => [{ name: 'hostdir', type: 'symlink', linkname: canary }, { name: 'hostdir/pwned', data: 'x' }, { name: 'hostdir/keep', data: 'x' }], error: () => /entry "hostdir\/pwned" escapes through symlink "hostdir"/ },
    { tag: 'symlink-dot', entries: () => [{ name: '.', type: 'symlink', linkname: canary }, { name: 'pwned', data: 'x' }], error: () => /entry "\." replaces the layer root with a symlink/ },
    { tag: 'symlink-dotslash', entries: () => [{ name: './', type: 'symlink', linkname: '/' }], error: () => /entry "\.\/" replaces the layer root with a symlink/ },
    { tag: 'hardlink-host', entries: () => [{ name: 'steal', type: 'link', linkname: `${canary}/keep` }], error: () => /entry "steal" links to ".*\/canary\/keep", which is not in the layer/ },
    { tag: 'hardlink-dotdot', entries: () => [{ name: 'steal', type: 'link', linkname: `../../../../../../../../${C()}/keep` }], error: () => /entry "steal" escapes the layer directory/ },
    { tag: 'hardlink-via-symlink', entries: () => [{ name: 'h', type: 'symlink', linkname: canary }, { name: 'steal', type: 'link', linkname: 'h/keep' }], error: () => /entry "steal" links through symlink "h"/ },
  ];

  for (const c of cases) {
    it(`refuses ${c.tag}`, async () => {
      const before = snapshot();
      const img = await pushCraftedImage(s.registry, `library/hostile-${c.tag}:1`, [craftLayer(c.entries())]);
      const r = await s.t.run(['pull', img.ref]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(c.error());
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(snapshot()).toEqual(before);
      expect(readdirSync(join(s.t.root, 'store', 'layers'))).toEqual([]);
      expect((await s.t.run(['images', '-q'])).stdout).toBe('');
    });
  }

  it('contains absolute names inside the layer (no write on the host), and leaves the store consistent', async () => {
    const before = snapshot();
    const img = await pushCraftedImage(s.registry, 'library/hostile-absolute:1', [craftLayer([{ name: `${canary}/pwned`, data: 'inside' }])]);
    const r = await s.t.run(['pull', img.ref]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(snapshot()).toEqual(before);
    expect(existsSync(join(canary, 'pwned'))).toBe(false);
    const layers = readdirSync(join(s.t.root, 'store', 'layers'));
    expect(layers).toHaveLength(1);
    expect(readFileSync(join(s.t.root, 'store', 'layers', layers[0]!, 'diff', C(), 'pwned'), 'utf8')).toBe('inside');
    const check = await s.t.run(['system', 'check']);
    expect(check.stdout).toContain('No errors found');
    expect(check.code).toBe(0);
    rmSync(join(s.t.root, 'store', 'layers', layers[0]!, 'diff', C().split('/')[0]!), { recursive: true, force: true });
  });
});
