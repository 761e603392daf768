// Issue 9's bridge fast path, observed from outside with strace. A `run --rm` on the bridge starts no
// `ip`, `nsenter`, `nft` or `iptables` process to set the network up: the first container of a bridge makes
// it through rtnetlink and installs the rules through libnftables in the tspod process (native/sys.c), the
// launcher makes the veth pair with rtnetlink, and a published port is one libnftables transaction. The last
// container's bridge and rules are deleted by a detached child (`ip link del`, `nft -f -`) that holds the
// network lock until it is done, so the command does not wait for the kernel's ≈ 50 ms of that deletion. A
// deletion killed half-way is finished by the next network command. Without the native module, the same
// runs through the ip and nft programs. Traffic: only the containers' own.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { firstReason, haveCommand, haveOverlay, isRoot } from '../support/caps.js';
import { networkSettled } from '../support/leftovers.js';
import { TSPOD_BIN } from '../support/tspod.js';
import { useTspodSuite } from '../support/suite.js';
import { NETWORK_LOCK } from '../../src/runtime/network/store.js';

const gate = firstReason(isRoot(), haveOverlay(), haveCommand('nft'), haveCommand('ip'), haveCommand('strace'), haveCommand('flock'));
const TOOLS = new Set(['ip', 'nsenter', 'nft', 'iptables', 'iptables-nft', 'xtables-nft-multi']);
const RELEASING = '/run/lock/tspod-network.releasing.tspod0';

interface Exec {
  pid: number;
  file: string;
  argv: string[];
}

describe.skipIf(gate)('bridge fast path: no child processes to set a bridge up, its deletion after the command', () => {
  const s = useTspodSuite('netfast', { pull: ['busybox'] });

  /**
   * Runs `tspod ARGS` under strace -f (which follows detached children too, and waits for them); returns
   * the programs executed after tspod itself, and each process's parent.
   */
  const traced = (args: string[], env: NodeJS.ProcessEnv = {}): { execs: Exec[]; parent: Map<number, number>; stdout: string } => {
    const dir = mkdtempSync(join(tmpdir(), 'tspod-strace-'));
    try {
      const out = join(dir, 'trace');
      const r = spawnSync('strace', ['-f', '-qq', '-s', '256', '-e', 'trace=execve,clone,clone3,fork,vfork', '-e', 'signal=none', '-o', out,
        process.execPath, TSPOD_BIN, ...args], { env: { ...s.t.env, ...env }, encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(0);
      const execs: Exec[] = [];
      const parent = new Map<number, number>();
      // A call another process interrupts is split: "PID call(args <unfinished ...>" … "PID <... call resumed>) = R".
      const pending = new Map<number, string>();
      for (const raw of readFileSync(out, 'utf8').split('\n')) {
        const pid = Number(/^(\d+) /.exec(raw)?.[1]);
        let line = raw;
        if (raw.endsWith(' <unfinished ...>')) {
          pending.set(pid, raw.slice(0, -' <unfinished ...>'.length));
          continue;
        }
        const resumed = /^\d+ +<\.\.\. \w+ resumed>(.*)$/.exec(raw);
        if (resumed) {
          line = (pending.get(pid) ?? '') + resumed[1];
          pending.delete(pid);
        }
        const exec = /^(\d+) +execve\("([^"]+)", \[(.*)\], .* = 0$/.exec(line);
        if (exec) execs.push({ pid, file: basename(exec[2]!), argv: [...exec[3]!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!) });
        const fork = /^(\d+) +(?:clone3?|v?fork)\(.*\) = (\d+)$/.exec(line);
        if (fork) parent.set(Number(fork[2]), pid);
      }
      return { execs: execs.slice(1), parent, stdout: r.stdout };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const descends = (parent: Map<number, number>, pid: number, from: number) => {
    for (let p: number | undefined = pid; p !== undefined; p = parent.get(p)) if (p === from) return true;
    return false;
  };
  /** The network tools tspod ran (not the container's own programs: the launcher's descendants). */
  const tools = ({ execs, parent }: { execs: Exec[]; parent: Map<number, number> }) => {
    const launcher = execs.find((e) => e.file === 'tspod-launch');
    return execs.filter((e) => TOOLS.has(e.file) && !(launcher && descends(parent, e.pid, launcher.pid)));
  };
  const bridgeUp = () => readdirSync('/sys/class/net').includes('tspod0');
  const tableThere = () => spawnSync('nft', ['list', 'table', 'ip', 'tspod'], { stdio: 'ignore' }).status === 0;
  const runArgs = (...rest: string[]) => ['run', '--rm', '--cgroup-parent', s.parent, ...rest];

  it('sets up the first container\'s bridge without a child process; a detached child holding the network lock deletes it after', () => {
    networkSettled();
    expect(bridgeUp(), 'tspod0 is down before this test (no other container on the host\'s bridge)').toBe(false);
    const trace = traced(runArgs('busybox', 'sh', '-c', 'ip -4 -o addr show eth0; ping -c1 -W3 10.89.0.1 >/dev/null && echo gw-ok'));
    const { execs, parent, stdout } = trace;
    expect(stdout).toMatch(/inet 10\.89\.0\.\d+\/24/);
    expect(stdout).toContain('gw-ok');
    const releaser = execs.find((e) => e.file === 'sh' && e.argv.includes('tspod-network-release'));
    expect(releaser, execs.map((e) => e.argv.join(' ')).join('\n')).toBeDefined();
    // Every network tool that ran is the releaser's: the bridge's and the table's deletion.
    const used = tools(trace);
    expect(used.map((e) => e.argv.join(' ')).sort()).toEqual(['ip link del dev tspod0', 'nft -f -']);
    for (const e of used) expect(descends(parent, e.pid, releaser!.pid)).toBe(true);
    // It held the network lock (and said so in the lock file), and left nothing.
    expect(readFileSync(NETWORK_LOCK, 'utf8')).toBe(`${releaser!.pid} removing bridge tspod0`);
    networkSettled();
    expect(bridgeUp()).toBe(false);
    expect(tableThere()).toBe(false);
    expect(existsSync(RELEASING)).toBe(false);
  });

  it('runs no ip/nsenter/nft on a set-up bridge, publishing a port included', async () => {
    const keep = await s.t.run(['run', '-d', '--name', 'fast-keeper', '--cgroup-parent', s.parent, 'busybox', 'sleep', '120']);
    expect(keep.code, keep.stderr).toBe(0);
    try {
      const warm = traced(runArgs('busybox', 'sh', '-c', 'ip -4 -o addr show eth0'));
      expect(warm.stdout).toMatch(/inet 10\.89\.0\.\d+\/24/);
      expect(tools(warm)).toEqual([]);
      // The port's DNAT rule is added and removed through libnftables.
      const withPort = traced(runArgs('-p', '127.0.0.1:18093:80', 'busybox', 'sh', '-c', 'echo up'));
      expect(withPort.stdout).toBe('up\n');
      expect(tools(withPort)).toEqual([]);
      expect(spawnSync('nft', ['list', 'chain', 'ip', 'tspod', 'ports'], { encoding: 'utf8' }).stdout).not.toContain('18093');
    } finally {
      expect((await s.t.run(['rm', '-f', 'fast-keeper'])).code).toBe(0);
    }
    networkSettled();
    expect(bridgeUp()).toBe(false);
  });

  it('without the native module, the ip and nft programs do the same', () => {
    networkSettled();
    expect(bridgeUp()).toBe(false);
    const trace = traced(runArgs('-p', '127.0.0.1:18094:80', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0; ping -c1 -W3 10.89.0.1 >/dev/null && echo gw-ok'),
      { TSPOD_SYS_MODULE: '/nonexistent/tspod-sys.node' });
    expect(trace.stdout).toMatch(/inet 10\.89\.0\.\d+\/24/);
    expect(trace.stdout).toContain('gw-ok');
    const used = tools(trace).map((e) => e.argv.slice(0, 3).join(' '));
    expect(used).toEqual(expect.arrayContaining(['ip -batch -', 'nft -f -', 'nft -j -a', 'ip link del']));
    networkSettled();
    expect(bridgeUp()).toBe(false);
    expect(tableThere()).toBe(false);
  });

  it('finishes a bridge deletion that was killed half-way at the next network command', async () => {
    networkSettled();
    expect(bridgeUp()).toBe(false);
    // What a SIGKILLed releaser can leave: both, the table (the link went first), the link (nft went first).
    for (const left of [['bridge', 'table'], ['table'], ['bridge']]) {
      if (left.includes('bridge')) spawnSync('ip', ['link', 'add', 'tspod0', 'type', 'bridge'], { stdio: 'inherit' });
      if (left.includes('table')) spawnSync('nft', ['add table ip tspod; add chain ip tspod forward { type filter hook forward priority filter; policy accept; }'], { stdio: 'inherit' });
      writeFileSync(RELEASING, '');
      expect(bridgeUp()).toBe(left.includes('bridge'));
      expect(tableThere()).toBe(left.includes('table'));
      const r = await s.t.run(['network', 'ls']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      networkSettled();
      expect([bridgeUp(), tableThere(), existsSync(RELEASING)], left.join('+')).toEqual([false, false, false]);
    }
  });
});
