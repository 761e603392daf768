// buildLayer: the unpacked copy of a committed layer becomes a lower layer of the new image, so its
// root must be world-searchable like any unpacked layer (a 0700 root made `/` unusable for non-root users).
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Store } from '../../../store/index.js';
import { buildLayer } from '../../../src/image/commit.js';

describe('buildLayer', () => {
  const dirs: string[] = [];
  afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

  it('gives the layer directory root mode 0755 when the tar has no "./" entry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tspod-build-layer-'));
    dirs.push(dir);
    const store = await Store.open(join(dir, 'store'));
    try {
      // an empty tar: two zero blocks
      const built = await buildLayer(store, Readable.from([Buffer.alloc(1024)]));
      expect(statSync(join(built.tmpDir, 'diff')).mode & 0o7777).toBe(0o755);
    } finally {
      store.close();
    }
  });
});
