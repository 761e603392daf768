// A container run in the foreground without --rm is kept as docker keeps it: `ps -a` shows its
// command, and `tspod start` runs it again (detached, under a monitor), with its exit status and logs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureRegistry, type FixtureRegistry } from '../support/registry.js';
import { tspodEnv, type TspodEnv } from '../support/tspod.js';
import { isRoot, haveOverlay } from '../support/caps.js';
import { mountsUnder } from '../support/leftovers.js';

const gate = isRoot() ?? haveOverlay();

describe.skipIf(gate)('start of a container first run in the foreground', () => {
  let registry: FixtureRegistry;
  let t: TspodEnv;
  const name = `fg-${process.pid}`;

  beforeAll(async () => {
    registry = await startFixtureRegistry();
    t = tspodEnv({ mirrorUrl: registry.url });
  });
  afterAll(async () => {
    try {
      await t.run(['rm', '-f', name]);
      expect(mountsUnder(t.root)).toEqual([]);
    } finally {
      t?.cleanup();
      await registry?.stop();
    }
  });

  it('shows the command in ps -a, starts again and exits with the same status', async () => {
    const first = await t.run(['run', '--name', name, '--network', 'none', 'busybox', 'sh', '-c', 'echo ran; exit 4']);
    expect(first.code).toBe(4);
    expect(first.stdout).toBe('ran\n');
    const ps = await t.run(['ps', '-a', '--format', 'json']);
    expect(ps.stdout).toContain('echo ran; exit 4');
    const start = await t.run(['start', name]);
    expect(start.code, start.stderr).toBe(0);
    const wait = await t.run(['wait', name]);
    expect(wait.stdout.trim()).toBe('4');
    const logs = await t.run(['logs', name]);
    expect(logs.stdout).toContain('ran\n');
  });
});
