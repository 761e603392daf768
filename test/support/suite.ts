// The set-up and tear-down every end-to-end file needs, in one place:
//
//   describe.skipIf(gate)('…', () => {
//     const s = useTspodSuite('mytag', { pull: ['busybox'] });
//     it('…', async () => { const r = await s.t.run(['run', '--rm', '--cgroup-parent', s.parent, 'busybox', 'true']); });
//   });
//
// beforeAll: the fixture registry, a private data root (tspodEnv), the images pulled. afterAll, pass or
// fail: containers the tests left are removed (and reported), then nothing may be left: no mount under the
// root, no process and no cgroup under the file's own --cgroup-parent, which is then removed, with the
// root and the registry lease. Containers must run with `--cgroup-parent s.parent` so that these checks
// see only this file's, even while other tspod instances run on the host.
import { afterAll, beforeAll, expect } from 'vitest';
import { startFixtureRegistry, type FixtureRegistry } from './registry.js';
import { tspodEnv, type TspodEnv } from './tspod.js';
import { mountsUnder } from './leftovers.js';
import { cgroupParent, cgroupsUnder, processesUnder, removeParent } from './mycgroups.js';

export interface TspodSuite {
  /** Set in beforeAll. */
  t: TspodEnv;
  registry: FixtureRegistry;
  /** This file's --cgroup-parent. */
  readonly parent: string;
}

export function useTspodSuite(tag: string, opts: { pull?: string[]; config?: object } = {}): TspodSuite {
  const suite = { parent: cgroupParent(tag) } as TspodSuite;
  beforeAll(async () => {
    suite.registry = await startFixtureRegistry();
    suite.t = tspodEnv({ mirrorUrl: suite.registry.url, config: opts.config });
    for (const image of opts.pull ?? []) {
      const r = await suite.t.run(['pull', image]);
      expect(r.code, r.stderr).toBe(0);
    }
  }, 180_000);

  afterAll(async () => {
    const { t } = suite;
    try {
      if (t) {
        const left = (await t.run(['ps', '-a', '-q', '--no-trunc'])).stdout.split('\n').filter(Boolean);
        for (const id of left) await t.run(['rm', '-f', id]);
        expect(left, 'containers the tests left').toEqual([]);
        expect(mountsUnder(t.root)).toEqual([]);
      }
      expect(processesUnder(suite.parent)).toEqual([]);
      expect(cgroupsUnder(suite.parent)).toEqual([]);
    } finally {
      removeParent(suite.parent);
      t?.cleanup();
      await suite.registry?.stop();
    }
  }, 120_000);
  return suite;
}
