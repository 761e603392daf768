// Issue 9's bridge fast path, observed from outside with strace: on a bridge that is already set up, a
// `run --rm` on the bridge runs no `ip`, `nsenter`, `nft` or `iptables` process (the launcher makes the veth
// pair with rtnetlink); publishing a port costs one `nft` transaction and still no `ip`/`nsenter`; the
// first container on a bridge (the cold path) still uses the tools. Traffic: only the containers' own.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { firstReason, haveCommand, haveOverlay, isRoot } from '../support/caps.js';
import { TSPOD_BIN } from '../support/tspod.js';
import { useTspodSuite } from '../support/suite.js';

const gate = firstReason(isRoot(), haveOverlay(), haveCommand('nft'), haveCommand('ip'), haveCommand('strace'));
const TOOLS = new Set(['ip', 'nsenter', 'nft', 'iptables', 'iptables-nft', 'xtables-nft-multi']);

describe.skipIf(gate)('bridge fast path: no child processes on a set-up bridge', () => {
  const s = useTspodSuite('netfast', { pull: ['busybox'] });

  /** Runs `tspod ARGS` under strace -f; returns the network tools it executed (basenames, in order). */
  const toolsRun = (args: string[]): string[] => {
    const dir = mkdtempSync(join(tmpdir(), 'tspod-strace-'));
    try {
      const out = join(dir, 'trace');
      const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=execve', '-e', 'signal=none', '-o', out, process.execPath, TSPOD_BIN, ...args],
        { env: s.t.env, encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      const execs = readFileSync(out, 'utf8').split('\n')
        .map((l) => /execve\("([^"]+)".* = 0$/.exec(l)?.[1]).filter((p): p is string => !!p).map((p) => basename(p));
      return execs.filter((b) => TOOLS.has(b));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const bridgeUp = () => readdirSync('/sys/class/net').includes('tspod0');

  it('runs no ip/nsenter/nft on a set-up bridge, one nft for a published port, the tools only on the cold path', async () => {
    // Cold path when this root is alone on the host's bridge: the tools make the bridge and its rules.
    if (!bridgeUp()) expect(toolsRun(['run', '--rm', '--cgroup-parent', s.parent, 'busybox', 'true'])).toEqual(expect.arrayContaining(['ip', 'nft']));

    const keep = await s.t.run(['run', '-d', '--name', 'fast-keeper', '--cgroup-parent', s.parent, 'busybox', 'sleep', '120']);
    expect(keep.code, keep.stderr).toBe(0);
    try {
      expect(toolsRun(['run', '--rm', '--cgroup-parent', s.parent, 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0 | grep -q "inet 10\\.89\\."'])).toEqual([]);
      const withPort = toolsRun(['run', '--rm', '--cgroup-parent', s.parent, '-p', '127.0.0.1::80', 'busybox', 'true']);
      expect(withPort.filter((b) => b !== 'nft')).toEqual([]); // adding and removing the port rule
      expect(withPort.length).toBeGreaterThanOrEqual(1);
    } finally {
      expect((await s.t.run(['rm', '-f', 'fast-keeper'])).code).toBe(0);
    }
  });
});
