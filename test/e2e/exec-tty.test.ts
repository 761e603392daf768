// `tspod exec -it` into a detached container, under a real pseudo-terminal (test/support/ptydrive.py makes
// it the CLI's controlling terminal): an interactive shell on a terminal of the caller's size, which
// follows a resize, and tspod exits with the shell's status. The container keeps running.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { startFixtureRegistry, repoRoot, type FixtureRegistry } from '../support/registry.js';
import { tspodEnv, TSPOD_BIN, type TspodEnv } from '../support/tspod.js';
import { isRoot, haveOverlay } from '../support/caps.js';
import { mountsUnder } from '../support/leftovers.js';

const gate = isRoot() ?? haveOverlay();
type Step = { expect: string } | { send: string } | { resize: [number, number] } | { sleep: number };

describe.skipIf(gate)('exec -it', () => {
  let registry: FixtureRegistry;
  let t: TspodEnv;
  const name = `exec-tty-${process.pid}`;

  beforeAll(async () => {
    registry = await startFixtureRegistry();
    t = tspodEnv({ mirrorUrl: registry.url });
    const r = await t.run(['run', '-d', '--name', name, '--network', 'none', 'busybox', 'sleep', '300']);
    expect(r.code, r.stderr).toBe(0);
  });

  afterAll(async () => {
    try {
      expect((await t.run(['rm', '-f', name])).code).toBe(0);
      expect(mountsUnder(t.root)).toEqual([]);
    } finally {
      t?.cleanup();
      await registry?.stop();
    }
  });

  const onPty = (args: string[], steps: Step[], size: [number, number]) => new Promise<{ out: string; exit: number }>((resolve, reject) => {
    execFile('python3', [join(repoRoot(), 'test', 'support', 'ptydrive.py'), String(size[0]), String(size[1]), JSON.stringify(steps), '--',
      process.execPath, TSPOD_BIN, ...args], { env: t.env, timeout: 60_000 }, (err, stdout) => {
      const m = /\nEXIT (-?\d+)\n$/.exec(stdout);
      if (!m) return reject(new Error(`ptydrive: ${err?.message ?? ''}\n${stdout}`));
      resolve({ out: stdout.slice(0, m.index).replace(/\r/g, ''), exit: Number(m[1]) });
    });
  });

  it('runs an interactive shell on a terminal of the caller\'s size, resizes, and exits with its status', async () => {
    const r = await onPty(['exec', '-it', name, 'sh'], [
      { expect: '/ # ' },
      { send: 'stty size; tty; test -t 0 && echo stdin-is-a-tty; echo A$((6*7))B\r' },
      { expect: 'A42B' },
      // Ctrl-C reaches the shell's foreground job: the pty is the controlling terminal of its session
      { send: 'sleep 30\r' },
      { sleep: 0.5 },
      { send: '\u0003' },
      { send: 'echo interrupted-$?\r' },
      { expect: 'interrupted-130' },
      { resize: [40, 100] },
      { sleep: 0.5 },
      { send: 'stty size; exit 3\r' },
      { expect: '40 100' },
    ], [30, 90]);
    expect(r.out).toContain('30 90');
    expect(r.out).toContain('stdin-is-a-tty');
    expect(r.out).toContain('\n/dev/pts/0\n'); // a pty of the container's own /dev/pts, as docker's
    expect(r.out).toContain('interrupted-130');
    expect(r.out).toContain('40 100');
    expect(r.exit).toBe(3);
    // the container itself is unaffected
    const ps = await t.run(['ps', '--filter', `name=${name}`, '--format', 'json']);
    expect(ps.stdout).toContain('"running"');
  });
});
