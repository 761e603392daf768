// A command killed while it held a running container frozen (commit --pause, cp) leaves the cgroup
// frozen while the record says running: `unpause` thaws it, and refuses as docker does otherwise.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startFixtureRegistry, type FixtureRegistry } from '../support/registry.js';
import { tspodEnv, type TspodEnv } from '../support/tspod.js';
import { isRoot, haveOverlay } from '../support/caps.js';

const gate = isRoot() ?? haveOverlay();

describe.skipIf(gate)('unpause of a container left frozen', () => {
  let registry: FixtureRegistry;
  let t: TspodEnv;
  const name = `frozen-${process.pid}`;

  beforeAll(async () => {
    registry = await startFixtureRegistry();
    t = tspodEnv({ mirrorUrl: registry.url });
    expect((await t.run(['run', '-d', '--name', name, '--network', 'none', 'busybox', 'sleep', '300'])).code).toBe(0);
  });
  afterAll(async () => {
    try {
      expect((await t.run(['rm', '-f', name])).code).toBe(0);
    } finally {
      t?.cleanup();
      await registry?.stop();
    }
  });

  it('thaws a running container whose freezer was left frozen, then refuses a second unpause', async () => {
    const info = JSON.parse((await t.run(['inspect', name])).stdout) as { Tspod: { CgroupPaths: string[] } }[];
    const freezer = info[0]!.Tspod.CgroupPaths.map((p) => [join(p, 'freezer.state'), join(p, 'cgroup.freeze')]).flat().find((f) => existsSync(f))!;
    expect(freezer).toBeDefined();
    // what a SIGKILLed commit --pause leaves behind
    writeFileSync(freezer, freezer.endsWith('freezer.state') ? 'FROZEN' : '1');
    const un = await t.run(['unpause', name]);
    expect(un.code, un.stderr).toBe(0);
    expect(readFileSync(freezer, 'utf8').trim()).toMatch(/^(THAWED|0)$/);
    expect((await t.run(['exec', name, 'true'])).code).toBe(0);
    const again = await t.run(['unpause', name]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('is not paused');
  });
});
