import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { layerFiles } from '../../../src/mount/lookup.js';
import { realSys, S_IFCHR } from '../../../src/sys/index.js';

const root = process.getuid?.() === 0 ? undefined : 'needs root to make whiteout devices and trusted.* xattrs';

describe.skipIf(root)('layerFiles (reading an image through its layers, as overlay shows it)', () => {
  const dirs: string[] = [];
  afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });
  const layer = (files: Record<string, string | 'whiteout' | 'opaque'>) => {
    const d = mkdtempSync(join(tmpdir(), 'tspod-lookup-'));
    dirs.push(d);
    for (const [p, v] of Object.entries(files)) {
      const abs = join(d, p);
      if (v === 'opaque') {
        mkdirSync(abs, { recursive: true });
        realSys().lsetxattr(abs, 'trusted.overlay.opaque', Buffer.from('y'));
        continue;
      }
      mkdirSync(join(abs, '..'), { recursive: true });
      if (v === 'whiteout') realSys().mknod(abs, S_IFCHR, 0, 0);
      else writeFileSync(abs, v);
    }
    return d;
  };

  it('takes the topmost layer that has the file', async () => {
    const lower = layer({ 'etc/passwd': 'old' });
    const upper = layer({ 'etc/passwd': 'new' });
    expect((await layerFiles([upper, lower], realSys()).read('/etc/passwd'))?.toString()).toBe('new');
    expect((await layerFiles([layer({ 'etc/other': 'x' }), lower], realSys()).read('/etc/passwd'))?.toString()).toBe('old');
  });
  it('stops at a whiteout', async () => {
    const lower = layer({ 'etc/passwd': 'old' });
    expect(await layerFiles([layer({ 'etc/passwd': 'whiteout' }), lower], realSys()).read('/etc/passwd')).toBeUndefined();
  });
  it('stops at an opaque directory unless that layer has the file', async () => {
    const lower = layer({ 'etc/passwd': 'old' });
    expect(await layerFiles([layer({ etc: 'opaque' }), lower], realSys()).read('/etc/passwd')).toBeUndefined();
    const both = layer({ etc: 'opaque', 'etc/passwd': 'mine' });
    expect((await layerFiles([both, lower], realSys()).read('/etc/passwd'))?.toString()).toBe('mine');
  });
  it('returns undefined for a missing file', async () => {
    expect(await layerFiles([layer({})], realSys()).read('/etc/group')).toBeUndefined();
  });
});
