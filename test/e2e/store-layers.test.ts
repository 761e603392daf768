// Issue #4, many layers: images of 1, 64, 128 and 200 layers pull, mount (one overlay, short layer links,
// relative paths) and run; and a store path long enough that the option string with absolute upper/work
// dirs would be 4095, 4096 and 4097 bytes still mounts (4095 + NUL fits the page as is; beyond, the
// upper/work dirs are given relative to the store).
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureRegistry, type FixtureRegistry } from '../support/registry.js';
import { tspodEnv, type TspodEnv } from '../support/tspod.js';
import { firstReason, haveCommand, haveOverlay, isRoot } from '../support/caps.js';
import { mountsUnder } from '../support/leftovers.js';
import { busyboxBase, craftLayer, pushCraftedImage, type PushedImage } from '../support/layers.js';
import { overlayData, probeOverlayFeatures } from '../../src/mount/overlay.js';
import { chainIds } from '../../src/util/digest.js';
import type { Digest } from '../../src/oci/types.js';

const gate = firstReason(isRoot(), haveOverlay(), haveCommand('skopeo'));
const COUNTS = [1, 64, 128, 200];

describe.skipIf(gate)('images with many layers', () => {
  let registry: FixtureRegistry;
  let t: TspodEnv;
  const images = new Map<number, PushedImage>();
  const longRoots: string[] = [];

  beforeAll(async () => {
    registry = await startFixtureRegistry();
    t = tspodEnv({ mirrorUrl: registry.url });
    const base = await busyboxBase(registry);
    for (const n of COUNTS) {
      const layers = Array.from({ length: n - 1 }, (_, i) => craftLayer([{ name: `layers/${i + 1}`, data: `${i + 1}\n` }]));
      images.set(n, await pushCraftedImage(registry, `library/many-layers:${n}`, [base, ...layers]));
    }
  }, 600_000);

  afterAll(async () => {
    try {
      expect(mountsUnder(t.root)).toEqual([]);
      for (const r of longRoots) expect(mountsUnder(r)).toEqual([]);
      // every run here is --rm in the foreground: no container state may remain (other suites' detached
      // containers may be running at the same time, so host-wide process checks would not be ours)
      expect((existsSync(join(t.root, 'containers')) ? readdirSync(join(t.root, 'containers')) : []).filter((n) => /^[a-f0-9]{64}$/.test(n))).toEqual([]);
    } finally {
      t?.cleanup();
      await registry?.stop();
    }
  });

  for (const n of COUNTS) {
    it(`pulls, mounts and runs an image of ${n} layers`, async () => {
      const img = images.get(n)!;
      const pull = await t.run(['pull', '-q', img.ref], { timeoutMs: 300_000 });
      expect(pull.stderr).toBe('');
      expect(pull.code).toBe(0);
      const r = await t.run(['run', '--rm', '--network', 'none', img.ref, 'sh', '-c', 'ls /layers 2>/dev/null | wc -l; cat /layers/* 2>/dev/null | sort -n | tr "\\n" " "']);
      expect(r.code).toBe(0);
      // every layer's file, each with its own content: all n layers are in the one overlay
      const [count, contents] = r.stdout.split('\n');
      expect(count).toBe(String(n - 1));
      expect(contents!.trim()).toBe(Array.from({ length: n - 1 }, (_, i) => i + 1).join(' '));
    }, 300_000);
  }

  /** The option string as it would be with absolute upper/work dirs, for a store at `storeRoot`. */
  function absoluteForm(n: number, storeRoot: string): string {
    const chain = chainIds(images.get(n)!.diffIds as Digest[]);
    const snap = join(storeRoot, 'snapshots', 'c'.repeat(64));
    return overlayData({
      chdir: storeRoot, lowers: [...chain].reverse().map((c) => 'l/' + c.slice(7, 19)),
      upper: join(snap, 'upper'), work: join(snap, 'work'), emptyLower: '/e', features: probeOverlayFeatures(),
    }, false);
  }

  /** A data root whose store path makes absoluteForm exactly `target` bytes long, or undefined (parity). */
  function rootFor(n: number, target: number): string | undefined {
    const prefix = join(t.root, '..', 'long');
    const storeSuffix = '/store';
    const probe = absoluteForm(n, prefix + storeSuffix).length;
    const extra = target - probe; // each byte of the root path counts twice (upperdir and workdir)
    if (extra < 4 || extra % 2 !== 0) return undefined;
    let pad = extra / 2 - 1; // "/" + padding
    const parts: string[] = [];
    while (pad > 0) {
      const take = Math.min(pad, 200);
      if (pad - take === 1) { parts.push('q'.repeat(take - 2)); pad -= take - 1; continue; }
      parts.push('p'.repeat(take));
      pad -= take + (pad - take > 0 ? 1 : 0);
    }
    const root = prefix + '/' + parts.join('/');
    expect(absoluteForm(n, root + storeSuffix).length).toBe(target);
    return root;
  }

  for (const target of [4095, 4096, 4097]) {
    it(`mounts with a store path that makes the absolute option string ${target} bytes`, async () => {
      const n = [128, 1, 64, 200].find((c) => rootFor(c, target) !== undefined)!;
      const root = rootFor(n, target)!;
      mkdirSync(root, { recursive: true });
      longRoots.push(root);
      const env = { TSPOD_ROOT: root };
      const img = images.get(n)!;
      const pull = await t.run(['pull', '-q', img.ref], { env, timeoutMs: 300_000 });
      expect(pull.stderr).toBe('');
      expect(pull.code).toBe(0);
      const r = await t.run(['run', '--rm', '--network', 'none', img.ref, 'sh', '-c', 'ls /layers 2>/dev/null | wc -l; grep " / / " /proc/self/mountinfo'], { env });
      expect(r.stderr).not.toMatch(/tspod:/);
      expect(r.code).toBe(0);
      const [count, mountLine] = r.stdout.trim().split('\n');
      expect(count).toBe(String(n - 1));
      const upper = /upperdir=([^,]*)/.exec(mountLine!)?.[1];
      if (target <= 4095) {
        expect(upper).toBe(join(root, 'store', 'snapshots', upper!.split('/').at(-2)!, 'upper')); // as is: it fits
      } else {
        expect(upper).toMatch(/^snapshots\/[a-f0-9]{64}\/upper$/); // relative to the store: the long path never counts
      }
    }, 300_000);
  }
});
