// `run --rm` whose CLI is SIGKILLed: the container dies with it (parent-death signals), and the next
// command that lists containers releases its cgroup and removes it, as docker's daemon would have.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startFixtureRegistry, type FixtureRegistry } from '../support/registry.js';
import { tspodEnv, TSPOD_BIN, type TspodEnv } from '../support/tspod.js';
import { isRoot, haveOverlay } from '../support/caps.js';
import { findCgroups, mountsUnder } from '../support/leftovers.js';

const gate = isRoot() ?? haveOverlay();

describe.skipIf(gate)('run --rm after its CLI was killed', () => {
  let registry: FixtureRegistry;
  let t: TspodEnv;

  beforeAll(async () => {
    registry = await startFixtureRegistry();
    t = tspodEnv({ mirrorUrl: registry.url });
    expect((await t.run(['pull', 'busybox'])).code).toBe(0);
  });

  afterAll(async () => {
    try {
      expect(mountsUnder(t.root)).toEqual([]);
    } finally {
      t?.cleanup();
      await registry?.stop();
    }
  });

  const records = () => (existsSync(join(t.root, 'containers')) ? readdirSync(join(t.root, 'containers')).filter((n) => /^[a-f0-9]{64}$/.test(n)) : []);
  const snapshots = () => (existsSync(join(t.root, 'store', 'snapshots')) ? readdirSync(join(t.root, 'store', 'snapshots')) : []);

  /** Starts `tspod run --rm … sleep 30`, SIGKILLs the CLI after `ms`, returns the container id (if one was recorded). */
  async function killedRun(ms: number): Promise<string | undefined> {
    const child = spawn(process.execPath, [TSPOD_BIN, 'run', '--rm', '--network', 'none', 'busybox', 'sleep', '30'], { env: t.env, stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, ms));
    const id = records()[0];
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    return id;
  }

  for (const [when, ms] of [['while the container runs', 1500], ['during set-up', 250]] as const) {
    it(`is cleaned up by the next ps when killed ${when}`, async () => {
      const id = await killedRun(ms);
      const ps = await t.run(['ps', '-a', '-q', '--no-trunc']);
      expect(ps.code, ps.stderr).toBe(0);
      expect(ps.stdout).toBe('');
      expect(records()).toEqual([]);
      expect(snapshots()).toEqual([]);
      if (id) expect(findCgroups((name) => name === id)).toEqual([]);
    });
  }
});
