// Bridge networking across restarts by tspod-monitor (issue 7's --restart with issue 6's network): the
// launcher re-creates the same veth with the same address from the plan the monitor replays, the lease
// (owned by the monitor) survives the gaps between two runs even when other containers' set-up reconciles
// meanwhile, a published port answers again, and rm removes the veth, the port rule and the lease. A
// network added with `network connect` comes back after restarts too (docker's behaviour) until disconnect.
// Traffic goes only to loopback and to the containers this file creates.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { firstReason, haveCommand, haveOverlay, isRoot } from '../support/caps.js';
import { freePort } from '../support/auth-registry.js';
import { networkSettled } from '../support/leftovers.js';
import { useTspodSuite } from '../support/suite.js';
import { until as untilShared } from '../support/wait.js';

const gate = firstReason(isRoot(), haveOverlay(), haveCommand('nft'), haveCommand('ip'), haveCommand('curl'));

interface Lease { network: string; ip: string; containerId: string; containerName: string; hostVeth: string; pid: number; ownerPid?: number; ports: unknown[] }

/** Restarts by the monitor back off, so the waits here are longer than the shared helper's default. */
const until = <T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 30_000): Promise<T> =>
  untilShared(what, fn, ms);

describe.skipIf(gate)('bridge network across restarts by the monitor', () => {
  const s = useTspodSuite('netrestart', { pull: ['busybox'] });
  const leases = (): Lease[] => {
    try {
      return (JSON.parse(readFileSync(join(s.t.root, 'networks', 'leases.json'), 'utf8')) as { leases: Lease[] }).leases;
    } catch {
      return [];
    }
  };
  const portRules = (id: string) => {
    const r = spawnSync('nft', ['list', 'chain', 'ip', 'tspod', 'ports'], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.split('\n').filter((l) => l.includes(`tspod:${id}`)) : [];
  };

  it('--restart always: every run has eth0 with the same address and reaches the gateway; the port answers again; rm cleans all', async () => {
    const port = await freePort();
    // Each run: print its address and route, ping the gateway, serve a page for 2 s, then fail.
    const script = [
      'echo "run $(cat /proc/uptime | cut -d" " -f1)"',
      'ip -4 -o addr show eth0 | sed "s/^.*inet \\([0-9./]*\\).*/addr \\1/"',
      'ip route | grep "^default" | sed "s/ dev.*//"',
      'gw=$(ip route | sed -n "s/^default via \\([0-9.]*\\).*/\\1/p")',
      'ping -c 1 -W 2 "$gw" >/dev/null && echo gateway-ok',
      'mkdir -p /tmp/w && echo page > /tmp/w/index.html',
      'timeout 2 httpd -f -p 8080 -h /tmp/w',
      'exit 1',
    ].join('; ');
    const r = await s.t.run(['run', '-d', '--name', 'rweb', '--restart', 'always', '--cgroup-parent', s.parent, '-p', `127.0.0.1:${port}:8080`, 'busybox', 'sh', '-c', script]);
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    const first = leases().find((l) => l.containerId === id)!;
    expect(first).toBeDefined();
    expect(first.ownerPid).toBeGreaterThan(0); // the monitor, not the init
    expect(first.ownerPid).not.toBe(first.pid);

    const logs = async () => (await s.t.run(['logs', 'rweb'])).stdout;
    // Two runs at least (the first and one restart), both with their network.
    const out = await until('a restart with the network', async () => { const o = await logs(); return (o.match(/gateway-ok/g) ?? []).length >= 2 && o; });
    const addrs = [...out.matchAll(/^addr (\S+)$/gm)].map((m) => m[1]);
    expect(addrs.length, out).toBeGreaterThanOrEqual(2);
    expect(new Set(addrs)).toEqual(new Set([`${first.ip}/24`]));
    expect(out).toMatch(/^default via 10\.89\.0\.1$/m);
    expect((await s.t.run(['inspect', '--format', '{{.RestartCount}}', 'rweb'])).stdout.trim()).not.toBe('0');

    // Other containers' set-up reconciles the leases: the restarting one's stays (its owner lives).
    for (let i = 0; i < 3; i++) {
      const o = await s.t.run(['run', '--rm', '--cgroup-parent', s.parent, 'busybox', 'true']);
      expect(o.code, o.stderr).toBe(0);
    }
    expect(leases().filter((l) => l.containerId === id).map((l) => l.ip)).toEqual([first.ip]);
    expect(portRules(id)).toHaveLength(1);

    // After a restart the published port answers (the DNAT rule points at the same address).
    const runsBefore = ((await logs()).match(/^run /gm) ?? []).length;
    await until('a later run', async () => ((await logs()).match(/^run /gm) ?? []).length > runsBefore);
    const page = await until('the page from a restarted run', () => {
      const c = spawnSync('curl', ['-s', '--max-time', '2', `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
      return c.status === 0 && c.stdout;
    });
    expect(page).toBe('page\n');

    const rm = await s.t.run(['rm', '-f', 'rweb']);
    expect(rm.code, rm.stderr).toBe(0);
    expect(leases().filter((l) => l.containerId === id)).toEqual([]);
    expect(portRules(id)).toEqual([]);
    await until(`${first.hostVeth} to go`, () => !existsSync(`/sys/class/net/${first.hostVeth}`), 5_000);
  });

  it('network connect lasts: the added interface comes back after a restart by the monitor and after tspod restart; disconnect ends it', async () => {
    expect((await s.t.run(['network', 'create', 'rnet'])).code).toBe(0);
    try {
      const script = 'echo "run $(ls /sys/class/net | tr "\\n" " ")"; ip -4 -o addr show | sed -n "s/^[0-9]*: *\\([a-z0-9]*\\) *inet \\([0-9./]*\\).*/addr \\1 \\2/p"; sleep 1.5; exit 1';
      const r = await s.t.run(['run', '-d', '--name', 'rcon', '--restart', 'always', '--cgroup-parent', s.parent, 'busybox', 'sh', '-c', script]);
      expect(r.code, r.stderr).toBe(0);
      const id = r.stdout.trim();
      /** The runs so far: the interfaces and addresses each printed. */
      const runs = async () => (await s.t.run(['logs', 'rcon'])).stdout.split(/^run /m).slice(1)
        .map((chunk) => ({ links: chunk.split('\n')[0]!.trim().split(' ').sort(), addrs: [...chunk.matchAll(/^addr (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`) }));
      await until('the first run', async () => (await runs()).length >= 1);
      const c = await s.t.run(['network', 'connect', 'rnet', 'rcon']);
      expect(c.code, c.stderr).toBe(0);
      const eth1 = leases().find((l) => l.containerId === id && l.network === 'rnet')!;
      expect(eth1.ownerPid).toBeGreaterThan(0);
      const want = `eth1 ${eth1.ip}/24`;
      // A later run (the monitor restarted it) has eth1 again, same address.
      let seen = (await runs()).length;
      await until('a restarted run with eth1', async () => { const all = await runs(); return all.slice(seen).some((x) => x.addrs.includes(want)); });
      // tspod restart (stop, then start from the saved network state) keeps it too.
      expect((await s.t.run(['restart', '-t', '1', 'rcon'])).code).toBe(0);
      seen = (await runs()).length;
      await until('a run after tspod restart with eth1', async () => (await runs()).slice(seen).some((x) => x.addrs.includes(want)));
      expect(leases().filter((l) => l.containerId === id).map((l) => l.network).sort()).toEqual(['bridge', 'rnet']);
      // disconnect: no eth1 in later runs, no rnet lease.
      expect((await s.t.run(['network', 'disconnect', 'rnet', 'rcon'])).code).toBe(0);
      seen = (await runs()).length;
      // (the second run from now: the first may have read the replayed plan just before the disconnect)
      const later = await until('a run after disconnect', async () => (await runs()).slice(seen + 1)[0]);
      expect(later.links).toEqual(['eth0', 'lo']);
      expect(leases().filter((l) => l.containerId === id).map((l) => l.network)).toEqual(['bridge']);
      expect((await s.t.run(['rm', '-f', 'rcon'])).code).toBe(0);
      expect(leases().filter((l) => l.containerId === id)).toEqual([]);
    } finally {
      await s.t.run(['rm', '-f', 'rcon']);
      const rm = await s.t.run(['network', 'rm', 'rnet']);
      expect(rm.code, rm.stderr).toBe(0);
    }
  });

  it('a detached container whose monitor is killed loses its lease at the next command', async () => {
    const r = await s.t.run(['run', '-d', '--name', 'rkill', '--restart', 'always', '--cgroup-parent', s.parent, 'busybox', 'sh', '-c', 'sleep 1; exit 1']);
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    const lease = leases().find((l) => l.containerId === id)!;
    expect(lease.ownerPid).toBeGreaterThan(0);
    process.kill(lease.ownerPid!, 'SIGKILL');
    await until('the monitor to die', () => !existsSync(`/proc/${lease.ownerPid}`), 5_000);
    // Any network set-up reconciles: the stale lease is released.
    const o = await s.t.run(['run', '--rm', '--cgroup-parent', s.parent, 'busybox', 'true']);
    expect(o.code, o.stderr).toBe(0);
    expect(leases().filter((l) => l.containerId === id)).toEqual([]);
    networkSettled();
    expect(existsSync(`/sys/class/net/${lease.hostVeth}`)).toBe(false);
    expect((await s.t.run(['rm', '-f', 'rkill'])).code).toBe(0);
  });
});
