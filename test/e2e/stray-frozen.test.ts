// A command killed while it held a running container frozen (commit --pause, cp): the next command
// finds the freeze abandoned and thaws it (container/freeze.ts); a frozen cgroup without a record of
// who froze it (made by hand here) is thawed by `unpause`, which refuses as docker does otherwise.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startFixtureRegistry, type FixtureRegistry } from '../support/registry.js';
import { tspodEnv, TSPOD_BIN, type TspodEnv } from '../support/tspod.js';
import { until } from '../support/wait.js';
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

  const freezerOf = async () => {
    const info = JSON.parse((await t.run(['inspect', name])).stdout) as { Tspod: { CgroupPaths: string[] } }[];
    const freezer = info[0]!.Tspod.CgroupPaths.map((p) => [join(p, 'freezer.state'), join(p, 'cgroup.freeze')]).flat().find((f) => existsSync(f))!;
    expect(freezer).toBeDefined();
    return freezer;
  };
  const frozen = (freezer: string) => /^(FROZEN|FREEZING|1)$/.test(readFileSync(freezer, 'utf8').trim());

  it('a commit SIGKILLed while the container is frozen: the next command thaws it; ps and exec work', async () => {
    const freezer = await freezerOf();
    // ≈ 150 MB of changes, so that the commit holds the freeze long enough to be killed in it
    expect((await t.run(['exec', name, 'dd', 'if=/dev/urandom', 'of=/big', 'bs=1M', 'count=150'])).code).toBe(0);
    const commit = spawn(process.execPath, [TSPOD_BIN, 'commit', name, `frozen-commit-${process.pid}:1`], { env: t.env, stdio: 'ignore' });
    const ended = new Promise((resolve) => commit.on('close', resolve));
    await until('the commit to freeze the container', async () => frozen(freezer) || undefined, 20_000);
    commit.kill('SIGKILL');
    await ended;
    expect(frozen(freezer)).toBe(true); // what the killed commit left
    const ps = await t.run(['ps', '--filter', `name=${name}`, '--format', 'json']);
    expect(ps.code, ps.stderr).toBe(0);
    expect(JSON.parse(ps.stdout.trim()).State).toBe('running');
    expect(frozen(freezer)).toBe(false);
    const ex = await t.run(['exec', name, 'rm', '/big'], { timeoutMs: 10_000 });
    expect(ex.code, ex.stderr).toBe(0);
    expect((await t.run(['images', '-q', `frozen-commit-${process.pid}`])).stdout.trim()).toBe('');
  });

  it('thaws a running container whose freezer was left frozen, then refuses a second unpause', async () => {
    const freezer = await freezerOf();
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
