// Issue 5, `tspod run -it` under a real pseudo-terminal (test/support/ptydrive.py makes it the CLI's
// controlling terminal, like a user's shell): an interactive shell sees a terminal of the right size,
// follows a resize, gets Ctrl-C as SIGINT for its foreground job and Ctrl-D as end of input, and
// tspod exits with the shell's status.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../support/registry.js';
import { TSPOD_BIN } from '../support/tspod.js';
import { useTspodSuite } from '../support/suite.js';
import { isRoot, haveOverlay } from '../support/caps.js';

const gate = isRoot() ?? haveOverlay();
type Step = { expect: string; timeout?: number } | { send: string } | { resize: [number, number] } | { sleep: number };

describe.skipIf(gate)('run -t (issue 5)', () => {
  const s = useTspodSuite('tty', { pull: ['busybox'] });

  function onPty(args: string[], steps: Step[], size: [number, number] = [24, 80]): Promise<{ out: string; raw: string; exit: number }> {
    return new Promise((resolve, reject) => {
      execFile('python3', [join(repoRoot(), 'test', 'support', 'ptydrive.py'), String(size[0]), String(size[1]), JSON.stringify(steps), '--',
        process.execPath, TSPOD_BIN, 'run', '--rm', '--network', 'none', '--cgroup-parent', s.parent, ...args],
      { env: s.t.env, timeout: 90_000 }, (err, stdout) => {
        const m = /\nEXIT (-?\d+)\n$/.exec(stdout);
        if (!m) return reject(new Error(`ptydrive: ${err?.message ?? ''}\n${stdout}`));
        resolve({ out: stdout.slice(0, m.index).replace(/\r/g, ''), raw: stdout.slice(0, m.index), exit: Number(m[1]) });
      });
    });
  }

  it('runs an interactive shell on a terminal of the caller\'s size, resizes, and exits with the shell\'s status', async () => {
    const r = await onPty(['-it', 'busybox', 'sh'], [
      { expect: '/ # ' },
      { send: 'stty size; tty; test -t 0 && echo stdin-is-a-tty; echo A$((6*7))B\r' },
      { expect: 'A42B' },
      { resize: [50, 132] },
      { sleep: 0.5 },
      { send: 'stty size\r' },
      { expect: '50 132' },
      { send: 'exit 7\r' },
    ], [30, 100]);
    expect(r.out).toContain('30 100');
    // the terminal is a pty of the container's own /dev/pts (docker's), so ttyname() finds it there
    expect(r.out).toContain('\n/dev/pts/0\n');
    expect(r.out).toContain('stdin-is-a-tty');
    expect(r.out).toContain('50 132');
    // -i makes the caller's terminal fully raw, as docker does: the container's pty turns \n into \r\n
    // once and the caller's terminal does not translate it again (Node's raw mode alone keeps ONLCR: \r\r\n).
    expect(r.raw).toContain('A42B\r\n');
    expect(r.raw).not.toContain('\r\r\n');
    expect(r.exit).toBe(7);
  });

  it('Ctrl-C interrupts the foreground command, not the shell; Ctrl-D ends the shell with status 0', async () => {
    const r = await onPty(['-it', 'busybox', 'sh'], [
      { expect: '/ # ' },
      { send: 'sleep 30\r' },
      { sleep: 1 },
      { send: '\x03' },
      { expect: '\\^C' },
      { send: 'echo after-sleep=$?\r' },
      { expect: 'after-sleep=130' },
      { send: 'echo still-here\r' },
      { expect: 'still-here\r' },
      { send: '\x04' },
    ]);
    expect(r.out).toContain('after-sleep=130');
    expect(r.exit).toBe(0);
  });

  it('-t without -i: output on the terminal, no input; the exit status passes through', async () => {
    // (as with docker, stdin is the terminal but nothing is relayed to it: a read would wait forever)
    const r = await onPty(['-t', 'busybox', 'sh', '-c', 'test -t 1 && echo out-is-a-tty; test -t 0 && echo in-is-a-tty; exit 4'], [{ send: 'ignored\r' }]);
    expect(r.out).toContain('out-is-a-tty');
    expect(r.out).toContain('in-is-a-tty');
    // -it needs a terminal on stdin, as docker's "the input device is not a TTY"
    const noTty = await s.t.run(['run', '--rm', '--network', 'none', '--cgroup-parent', s.parent, '-it', 'busybox', 'true'], { input: '' });
    expect(noTty.code).toBe(125);
    expect(noTty.stderr.trim()).toBe('tspod: run -it: the input device is not a TTY');

    expect(r.exit).toBe(4);
  });
});
