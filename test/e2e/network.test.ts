// Issue #6 end to end: bridge networking through the CLI, on the real kernel (veth, bridge, nftables,
// network namespaces) with the real fixture registry. Traffic goes only to loopback and to the
// namespaces and containers these tests create.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFixtureRegistry, type FixtureRegistry } from '../support/registry.js';
import { TSPOD_BIN, tspodEnv, type TspodEnv, type TspodResult } from '../support/tspod.js';
import { firstReason, haveCommand, haveOverlay, isRoot } from '../support/caps.js';
import { containerProcesses, findCgroups, mountsUnder, networkSettled } from '../support/leftovers.js';

const gate = firstReason(isRoot(), haveOverlay(), haveCommand('nft'), haveCommand('ip'), haveCommand('nsenter'), haveCommand('curl'), haveCommand('python3'));

/** Host links a test may leave behind (the before-stop hook's rule): anything named *tspod* or *veth*. */
function strayLinks(): string[] {
  networkSettled();
  return readdirSync('/sys/class/net').filter((n) => /tspod|veth/.test(n));
}
function tspodTable(): boolean {
  networkSettled();
  return spawnSync('nft', ['list', 'table', 'ip', 'tspod']).status === 0;
}
function netnsList(): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns') : [];
}
function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

interface Lease { network: string; ip: string; containerId: string; containerName: string; hostVeth: string; pid: number; ports: unknown[] }

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

function curl(url: string): { code: number | null; body: string } {
  const r = spawnSync('curl', ['-s', '--max-time', '3', url], { encoding: 'utf8' });
  return { code: r.status, body: r.stdout };
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

// A container command that says it runs, then waits; SIGTERM (forwarded by the tspod client) ends it with 0.
const SLEEPER = 'trap "exit 0" TERM INT; echo ready; sleep 120 & wait';

describe.skipIf(gate)('bridge networking end to end', () => {
  let registry: FixtureRegistry;
  let t: TspodEnv;
  const background: { child: ChildProcess; done: Promise<TspodResult> }[] = [];

  const myContainerIds = new Set<string>();
  const leases = (): Lease[] => {
    try {
      const list = (JSON.parse(readFileSync(join(t.root, 'networks', 'leases.json'), 'utf8')) as { leases: Lease[] }).leases;
      for (const l of list) myContainerIds.add(l.containerId);
      return list;
    } catch {
      return [];
    }
  };

  /** `tspod ARGS` in the background; resolves `ready` when the container printed "ready". */
  const bg = (args: string[]) => {
    const child = spawn(process.execPath, [TSPOD_BIN, ...args], { env: t.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const done = new Promise<TspodResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
    const entry = { child, done };
    background.push(entry);
    const ready = async () => {
      await Promise.race([
        waitFor(`"ready" from tspod ${args.join(' ')}`, () => stdout.includes('ready')),
        done.then((r) => { throw new Error(`tspod ${args.join(' ')} ended early (${r.code}): ${r.stderr}`); }),
      ]);
    };
    return { ...entry, ready, out: () => stdout };
  };

  const stop = async (b: { child: ChildProcess; done: Promise<TspodResult> }) => {
    b.child.kill('SIGTERM');
    return b.done;
  };

  beforeAll(async () => {
    registry = await startFixtureRegistry();
    t = tspodEnv({ mirrorUrl: registry.url });
    const pull = await t.run(['pull', 'busybox']);
    expect(pull.code, pull.stderr).toBe(0);
  });

  afterEach(async () => {
    for (const b of background.splice(0)) {
      if (b.child.exitCode === null && b.child.signalCode === null) b.child.kill('SIGKILL');
      await b.done;
    }
  });

  afterAll(async () => {
    try {
      // Reconcile whatever a failed test left, then nothing may remain, pass or fail.
      if (t) await t.run(['network', 'ls']);
      expect(strayLinks()).toEqual([]);
      expect(tspodTable()).toBe(false);
      expect(netnsList()).toEqual([]);
      if (t) expect(mountsUnder(t.root)).toEqual([]);
      // Processes left in the cgroups of this file's containers (ids from its data root's records and leases).
      const recorded = existsSync(join(t.root, 'containers')) ? readdirSync(join(t.root, 'containers')).filter((n) => /^[a-f0-9]{64}$/.test(n)) : [];
      const ids = new Set([...myContainerIds, ...recorded]);
      const mine = containerProcesses().filter((pid) => {
        try {
          return [...ids].some((id) => readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(id));
        } catch {
          return false;
        }
      });
      expect(mine).toEqual([]);
    } finally {
      t?.cleanup();
      await registry?.stop();
    }
  });

  it('gives two containers on the default bridge distinct addresses; they reach each other and the gateway', async () => {
    const a = bg(['run', '--rm', '--name', 'net-a', 'busybox', 'sh', '-c', SLEEPER]);
    await a.ready();
    const la = leases().find((l) => l.containerName === 'net-a')!;
    expect(la.network).toBe('bridge');
    expect(la.ip).toMatch(/^10\.89\.0\.\d+$/);
    expect(strayLinks()).toEqual(expect.arrayContaining(['tspod0', la.hostVeth]));

    // docker network inspect's shape, and -f on it
    const inspect = JSON.parse((await t.run(['network', 'inspect', 'bridge'])).stdout) as Record<string, unknown>[];
    expect(inspect[0]).toMatchObject({ Name: 'bridge', Driver: 'bridge', Scope: 'local', IPAM: { Config: [{ Subnet: '10.89.0.0/24', Gateway: '10.89.0.1' }] },
      Options: { 'com.docker.network.bridge.name': 'tspod0' } });
    expect(Object.values(inspect[0]!.Containers as object)).toEqual([expect.objectContaining({ Name: 'net-a', IPv4Address: `${la.ip}/24` })]);
    expect((await t.run(['network', 'inspect', '-f', '{{.Name}} {{.Driver}} {{json .IPAM.Config}}', 'bridge'])).stdout)
      .toBe('bridge bridge [{"Subnet":"10.89.0.0/24","Gateway":"10.89.0.1"}]\n');
    expect((await t.run(['inspect', '--type', 'network', '-f', '{{.Scope}}', 'bridge'])).stdout).toBe('local\n');

    const b = await t.run(['run', '--rm', '--name', 'net-b', 'busybox', 'sh', '-c',
      `ip -4 -o addr show eth0; cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu; ip route; ping -c1 -W3 ${la.ip} >/dev/null && echo peer-ok; ping -c1 -W3 10.89.0.1 >/dev/null && echo gw-ok`]);
    expect(b.code, b.stderr).toBe(0);
    const bIp = /inet (10\.89\.0\.\d+)\/24/.exec(b.stdout)?.[1];
    expect(bIp).toBeDefined();
    expect(bIp).not.toBe(la.ip);
    const mac = '02:42:' + bIp!.split('.').map((n) => Number(n).toString(16).padStart(2, '0')).join(':');
    expect(b.stdout).toContain(`${mac}\n1500\n`);
    expect(b.stdout).toContain('default via 10.89.0.1 dev eth0');
    expect(b.stdout).toContain('peer-ok\n');
    expect(b.stdout).toContain('gw-ok\n');

    const ra = await stop(a);
    expect(ra.code, ra.stderr).toBe(0);
    expect(leases()).toEqual([]);
    expect(strayLinks()).toEqual([]);
    expect(tspodTable()).toBe(false);
  });

  it('publishes ports to 127.0.0.1 and to every address; after the container ends the port is free and no rule remains', async () => {
    const web = 'mkdir -p /www && echo hello-tspod > /www/index.html && trap "exit 0" TERM INT; httpd -f -p 80 -h /www & echo ready; wait';
    const a = bg(['run', '--rm', '-p', '127.0.0.1:18080:80', '-p', '18090:80', 'busybox', 'sh', '-c', web]);
    await a.ready();
    const body = await waitFor('the page through 127.0.0.1:18080', () => { const r = curl('http://127.0.0.1:18080/'); return r.code === 0 && r.body; });
    expect(body).toBe('hello-tspod\n');
    expect(curl('http://127.0.0.1:18090/').body).toBe('hello-tspod\n');
    const rules = sh('nft', ['list', 'chain', 'ip', 'tspod', 'ports']);
    expect(rules).toMatch(/ip daddr 127\.0\.0\.1 tcp dport 18080 dnat to 10\.89\.0\.\d+:80/);
    expect(rules).toMatch(/tcp dport 18090 dnat to 10\.89\.0\.\d+:80/);
    // A published port is taken: a second container cannot have it.
    const clash = await t.run(['run', '--rm', '-p', '127.0.0.1:18080:80', 'busybox', 'true']);
    expect(clash.code).toBe(125);
    expect(clash.stderr).toMatch(/publish 127\.0\.0\.1:18080\/tcp: port is already allocated/);
    // run -d: the container that could not start keeps why, in inspect's State.Error (docker's)
    const clashD = await t.run(['run', '-d', '--name', 'clash', '-p', '127.0.0.1:18080:80', 'busybox', 'true']);
    expect(clashD.code).toBe(125);
    const state = JSON.parse((await t.run(['inspect', '-f', '{{json .State}}', 'clash'])).stdout) as { Status: string; ExitCode: number; Error: string };
    expect(state).toMatchObject({ Status: 'exited', ExitCode: 125 });
    expect(state.Error).toMatch(/publish 127\.0\.0\.1:18080\/tcp: port is already allocated/);
    expect((await t.run(['rm', 'clash'])).code).toBe(0);

    const r = await stop(a);
    expect(r.code, r.stderr).toBe(0);
    expect(tspodTable()).toBe(false);
    expect(curl('http://127.0.0.1:18080/').code).not.toBe(0);
    expect(await portFree('127.0.0.1', 18080)).toBe(true);
    expect(strayLinks()).toEqual([]);
  });

  it('on a user-defined network, containers reach each other by name', async () => {
    const created = await t.run(['network', 'create', '--subnet', '10.89.77.0/24', 'tnet']);
    expect(created.code, created.stderr).toBe(0);
    const dup = await t.run(['network', 'create', '--subnet', '10.89.77.0/25', 'tnet2']);
    expect(dup.stderr).toMatch(/overlaps 10\.89\.77\.0\/24 of network tnet/);
    try {
      const a = bg(['run', '--rm', '--name', 'alpha', '--network', 'tnet', 'busybox', 'sh', '-c', SLEEPER]);
      await a.ready();
      const b = await t.run(['run', '--rm', '--name', 'beta', '--network', 'tnet', 'busybox', 'sh', '-c', 'ping -c1 -W3 alpha && cat /etc/hosts']);
      expect(b.code, b.stderr + b.stdout).toBe(0);
      const alphaIp = leases().find((l) => l.containerName === 'alpha')!.ip;
      expect(alphaIp).toMatch(/^10\.89\.77\./);
      expect(b.stdout).toContain(`PING alpha (${alphaIp})`);
      expect(b.stdout).toMatch(new RegExp(`${alphaIp.replace(/\./g, '\\.')}\\talpha [a-f0-9]{12}`));
      // beta has gone: alpha's hosts file no longer names it
      const alphaId = leases().find((l) => l.containerName === 'alpha')!.containerId;
      expect(readFileSync(join(t.root, 'containers', alphaId, 'hosts'), 'utf8')).not.toContain('beta');
      expect((await t.run(['network', 'rm', 'tnet'])).stderr).toMatch(/network tnet has active endpoints \(alpha\)/);
      const ls = await t.run(['network', 'ls']);
      expect(ls.stdout).toMatch(/tnet\s+bridge\s+tspod1\s+10\.89\.77\.0\/24\s+10\.89\.77\.1\s+1\n/);
      expect((await stop(a)).code).toBe(0);
    } finally {
      const rm = await t.run(['network', 'rm', 'tnet']);
      expect(rm.code, rm.stderr).toBe(0);
    }
    expect((await t.run(['network', 'ls', '-q'])).stdout).toBe('bridge\n');
    expect(strayLinks()).toEqual([]);
  });

  it('connects a running container to a second network and disconnects it; inspect shows the attachments', async () => {
    expect((await t.run(['network', 'create', 'side'])).code).toBe(0);
    try {
      const a = bg(['run', '--rm', '--name', 'multi', '-p', '127.0.0.1:18082:80', 'busybox', 'sh', '-c', SLEEPER]);
      await a.ready();
      const pid = leases().find((l) => l.containerName === 'multi')!.pid;
      const c = await t.run(['network', 'connect', 'side', 'multi']);
      expect(c.code, c.stderr).toBe(0);
      const side = leases().find((l) => l.containerName === 'multi' && l.network === 'side')!;
      expect(side.ip).toMatch(/^10\.89\.1\.\d+$/); // the next free /24 of the pool
      expect(sh('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-4', '-o', 'addr', 'show', 'eth1'])).toContain(`inet ${side.ip}/24`);
      // A container on "side" reaches it by name through the new interface.
      const p = await t.run(['run', '--rm', '--network', 'side', 'busybox', 'ping', '-c1', '-W3', 'multi']);
      expect(p.code, p.stderr + p.stdout).toBe(0);
      expect(p.stdout).toContain(`PING multi (${side.ip})`);

      const info = JSON.parse((await t.run(['inspect', 'multi'])).stdout) as { NetworkSettings: Record<string, any> }[];
      const ns = info[0]!.NetworkSettings;
      expect(ns.NetworkMode).toBe('bridge');
      expect(ns.IPAddress).toMatch(/^10\.89\.0\.\d+$/);
      expect(ns.Gateway).toBe('10.89.0.1');
      expect(ns.Ports).toEqual({ '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '18082' }] });
      expect(Object.keys(ns.Networks).sort()).toEqual(['bridge', 'side']);
      expect(ns.Networks.side).toMatchObject({ IPAddress: side.ip, Interface: 'eth1', Gateway: '10.89.1.1' });

      expect((await t.run(['network', 'connect', 'side', 'multi'])).stderr).toMatch(/already connected to network side/);
      const d = await t.run(['network', 'disconnect', 'side', 'multi']);
      expect(d.code, d.stderr).toBe(0);
      expect(spawnSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', 'link', 'show', 'eth1']).status).not.toBe(0);
      expect(strayLinks()).not.toContain(side.hostVeth);
      expect(strayLinks()).not.toContain('tspod1');
      expect((await t.run(['network', 'disconnect', 'side', 'multi'])).stderr).toMatch(/not connected to network side/);
      expect((await stop(a)).code).toBe(0);
      expect((await t.run(['network', 'connect', 'side', 'multi'])).stderr).toMatch(/no such container: multi|is not running/);
    } finally {
      expect((await t.run(['network', 'rm', 'side'])).code).toBe(0);
    }
    expect(strayLinks()).toEqual([]);
  });

  it('--network container:NAME shares that container\'s network namespace and files', async () => {
    const a = bg(['run', '--rm', '--name', 'owner', 'busybox', 'sh', '-c', `mkdir -p /www && echo shared-ns > /www/index.html && httpd -p 127.0.0.1:8080 -h /www && ${SLEEPER}`]);
    await a.ready();
    const ip = leases().find((l) => l.containerName === 'owner')!.ip;
    // Its loopback is the owner's: the httpd bound to 127.0.0.1 inside the owner answers.
    const r = await t.run(['run', '--rm', '--network', 'container:owner', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0; wget -qO- http://127.0.0.1:8080/; tail -1 /etc/hosts']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`inet ${ip}/24`);
    expect(r.stdout).toContain('shared-ns\n');
    expect(r.stdout).toMatch(new RegExp(`${ip.replace(/\./g, '\\.')}\\t[a-f0-9]{12}\\n$`));
    expect(leases().filter((l) => l.containerName !== 'owner')).toEqual([]); // no address of its own
    const bad = await t.run(['run', '--rm', '--network', 'container:owner', '--add-host', 'x:1.2.3.4', 'busybox', 'true']);
    expect(bad.stderr).toBe('tspod: conflicting options: --add-host and the network mode (--network container:owner)\n');
    expect((await stop(a)).code).toBe(0);
    const gone = await t.run(['run', '--rm', '--network', 'container:owner', 'busybox', 'true']);
    expect(gone.code).toBe(125);
    expect(gone.stderr).toMatch(/no such container: owner|container:owner: the container is not running/);
    expect(strayLinks()).toEqual([]);
  });

  it('a detached container gets its network at every start and loses it at stop and rm', async () => {
    const web = 'mkdir -p /w && echo detached > /w/index.html && httpd -f -p 80 -h /w';
    const d = await t.run(['run', '-d', '--name', 'dweb', '-p', '127.0.0.1:18083:80', 'busybox', 'sh', '-c', web]);
    expect(d.code, d.stderr).toBe(0);
    try {
      for (const step of ['run -d', 'start', 'restart']) {
        if (step === 'start') expect((await t.run(['start', 'dweb'])).code).toBe(0);
        if (step === 'restart') expect((await t.run(['restart', '-t', '1', 'dweb'])).code).toBe(0);
        const body = await waitFor(`the page after ${step}`, () => { const r = curl('http://127.0.0.1:18083/'); return r.code === 0 && r.body; });
        expect(body).toBe('detached\n');
        expect(leases().filter((l) => l.containerName === 'dweb')).toHaveLength(1);
        const ps = await t.run(['ps', '--filter', 'name=dweb']);
        expect(ps.stdout.split('\n')[0]).toMatch(/PORTS/);
        expect(ps.stdout).toMatch(/127\.0\.0\.1:18083->80\/tcp +dweb/);
        if (step === 'run -d') {
          expect((await t.run(['stop', '-t', '1', 'dweb'])).code).toBe(0);
          expect(leases()).toEqual([]);
          expect(strayLinks()).toEqual([]);
          expect(tspodTable()).toBe(false);
        }
      }
    } finally {
      expect((await t.run(['rm', '-f', 'dweb'])).code).toBe(0);
    }
    expect(leases()).toEqual([]);
    expect(strayLinks()).toEqual([]);
    expect(tspodTable()).toBe(false);
  });

  it('-P publishes the image\'s EXPOSEd ports on free host ports', async () => {
    expect((await t.run(['run', '--name', 'pbase', '--network', 'none', 'busybox', 'sh', '-c', 'mkdir /w && echo exposed > /w/index.html'])).code).toBe(0);
    try {
      const c = await t.run(['commit', '-c', 'EXPOSE 80/tcp', 'pbase', 'exposed:test']);
      expect(c.code, c.stderr).toBe(0);
      const a = bg(['run', '--rm', '--name', 'pweb', '-P', 'exposed:test', 'sh', '-c', 'trap "exit 0" TERM; httpd -f -p 80 -h /w & echo ready; wait']);
      await a.ready();
      const info = JSON.parse((await t.run(['inspect', 'pweb'])).stdout) as { NetworkSettings: { Ports: Record<string, { HostIp: string; HostPort: string }[]> } }[];
      const ports = info[0]!.NetworkSettings.Ports;
      expect(Object.keys(ports)).toEqual(['80/tcp']);
      expect(ports['80/tcp']![0]!.HostIp).toBe('0.0.0.0');
      const hostPort = Number(ports['80/tcp']![0]!.HostPort);
      expect(hostPort).toBeGreaterThan(0);
      const body = await waitFor('the page through the -P port', () => { const r = curl(`http://127.0.0.1:${hostPort}/`); return r.code === 0 && r.body; });
      expect(body).toBe('exposed\n');
      expect((await stop(a)).code).toBe(0);
      expect(tspodTable()).toBe(false);
    } finally {
      await t.run(['rm', '-f', 'pbase']);
      await t.run(['rmi', 'exposed:test']);
    }
  });

  it('starts and removes 50 containers without leftovers and never hands out an address in use', async () => {
    for (let batch = 0; batch < 10; batch++) {
      // Five containers alive at the same time (each waits until stopped): five addresses.
      const group = Array.from({ length: 5 }, () => bg(['run', '--rm', 'busybox', 'sh', '-c', `ip -4 -o addr show eth0; ${SLEEPER}`]));
      await Promise.all(group.map((g) => g.ready()));
      const ips = group.map((g) => /inet (10\.89\.0\.\d+)\//.exec(g.out())?.[1]);
      expect(ips.every(Boolean)).toBe(true);
      expect(new Set(ips).size).toBe(5);
      for (const r of await Promise.all(group.map(stop))) expect(r.code, r.stderr).toBe(0);
    }
    expect(leases()).toEqual([]);
    expect(strayLinks()).toEqual([]);
    expect(tspodTable()).toBe(false);
    expect(netnsList()).toEqual([]);
  });

  it('after a SIGKILL of the client in the middle of run, the next tspod command cleans the leftovers', async () => {
    const ids: string[] = [];
    for (const when of ['lease', 'ready'] as const) {
      const a = bg(['run', '--rm', '-p', '127.0.0.1:18081:80', 'busybox', 'sh', '-c', 'echo ready; sleep 120']);
      if (when === 'lease') await waitFor('a lease', () => leases().length > 0);
      else await a.ready();
      const lease = leases()[0]!;
      ids.push(lease.containerId);
      a.child.kill('SIGKILL');
      await a.done;
      // The launcher and the container die with the client (PDEATHSIG); the kernel takes the veth with
      // the namespace. The lease, the port rule, the bridge and the table stay until someone cleans.
      await waitFor('the container to die', () => !existsSync(`/proc/${lease.pid}`));
      expect(leases()).toHaveLength(1);
      if (when === 'ready') expect(tspodTable()).toBe(true);
      const next = await t.run(['network', 'ls']);
      expect(next.code, next.stderr).toBe(0);
      expect(next.stderr).toBe('');
      expect(leases()).toEqual([]);
      expect(tspodTable()).toBe(false);
      expect(strayLinks()).toEqual([]);
      expect(await portFree('127.0.0.1', 18081)).toBe(true);
    }
    // The killed containers' empty cgroups and records are the container life cycle's business
    // (issue 7); remove the cgroups here so that later test files see a clean host.
    for (const id of ids) for (const cg of findCgroups((n) => n === id).reverse()) rmdirSync(cg);
    const again = await t.run(['run', '--rm', 'busybox', 'true']);
    expect(again.code, again.stderr).toBe(0);
  });

  it('writes resolv.conf and hosts as docker does', async () => {
    const r = await t.run(['run', '--rm', '--hostname', 'web', '--dns', '10.0.0.53', '--dns-search', 'example.test', '--dns-option', 'ndots:2',
      '--add-host', 'db:10.1.2.3', 'busybox', 'sh', '-c', 'cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; cat /etc/hostname; ip -4 -o addr show eth0']);
    expect(r.code, r.stderr).toBe(0);
    const [resolv, hosts, rest] = r.stdout.split('---\n');
    expect(resolv).toBe('search example.test\nnameserver 10.0.0.53\noptions ndots:2\n');
    const ip = /inet (10\.89\.0\.\d+)\//.exec(rest!)![1]!;
    expect(rest!.startsWith('web\n')).toBe(true);
    expect(hosts).toContain('127.0.0.1\tlocalhost\n');
    expect(hosts).toContain('10.1.2.3\tdb\n');
    expect(hosts!.trimEnd().split('\n').at(-1)).toBe(`${ip}\tweb`);

    // Without flags: the host's servers minus loopback ones (or docker's public defaults).
    const plain = await t.run(['run', '--rm', 'busybox', 'cat', '/etc/resolv.conf']);
    const hostServers = readFileSync('/etc/resolv.conf', 'utf8').split('\n').filter((l) => /^nameserver\s/.test(l)).map((l) => l.split(/\s+/)[1]!);
    const expected = hostServers.filter((s) => !/^127\.|^::1$/.test(s));
    const got = plain.stdout.split('\n').filter((l) => l.startsWith('nameserver ')).map((l) => l.slice(11));
    if (expected.length > 0 || !existsSync('/run/systemd/resolve/resolv.conf')) expect(got).toEqual(expected.length ? expected : ['8.8.8.8', '8.8.4.4']);
    expect(got.some((s) => s.startsWith('127.'))).toBe(false);

    // --network none and host: no address line; host keeps the host's files.
    const none = await t.run(['run', '--rm', '--network', 'none', '-h', 'solo', 'busybox', 'sh', '-c', 'ls /sys/class/net; tail -1 /etc/hosts']);
    expect(none.stdout).toBe('lo\n127.0.1.1\tsolo\n');
    const bad = await t.run(['run', '--rm', '--network', 'none', '-p', '80', 'busybox', 'true']);
    expect(bad.code).toBe(125);
    expect(bad.stderr).toBe('tspod: -p/--publish needs a bridge network (--network none has none)\n');
    // with the host's network docker warns and goes on: the ports are the host's already
    const hostPorts = await t.run(['run', '--rm', '--network', 'host', '-p', '8080:80', 'busybox', 'echo', 'ran']);
    expect([hostPorts.code, hostPorts.stdout, hostPorts.stderr]).toEqual([0, 'ran\n', 'WARNING: Published ports are discarded when using host network mode\n']);
    const missing = await t.run(['run', '--rm', '--network', 'nosuchnet', 'busybox', 'true']);
    expect(missing.code).toBe(125);
    expect(missing.stderr).toBe('tspod: network nosuchnet not found\n');
  });

  it('masquerades traffic leaving the bridge and passes a host forward chain whose policy is drop', async () => {
    const ns = 'tspodt-out';
    const listener = 'import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(("10.199.77.2", 9999))\ns.listen(1)\nprint("listening", flush=True)\nc, a = s.accept()\nprint(a[0], c.recv(100).decode().strip(), flush=True)\n';
    let py: ChildProcess | undefined;
    try {
      // An "outside" network: a namespace of our own behind a veth, and a foreign forward chain with policy drop.
      sh('ip', ['netns', 'add', ns]);
      sh('ip', ['link', 'add', 'vtspodt0', 'type', 'veth', 'peer', 'name', 'vtspodt1', 'netns', ns]);
      sh('ip', ['-batch', '-'], 'addr add 10.199.77.1/30 dev vtspodt0\nlink set vtspodt0 up\n');
      sh('ip', ['-n', ns, '-batch', '-'], 'addr add 10.199.77.2/30 dev vtspodt1\nlink set vtspodt1 up\nlink set lo up\n');
      sh('nft', ['-f', '-'], 'table ip tspodtest {\n chain filterfwd {\n  type filter hook forward priority 0; policy drop;\n }\n}\n');
      py = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', listener], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      py.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      await waitFor('the listener', () => out.includes('listening'));

      const a = bg(['run', '--rm', 'busybox', 'sh', '-c', SLEEPER]);
      await a.ready();
      // tspod let its bridge through the foreign drop policy
      expect(sh('nft', ['list', 'chain', 'ip', 'tspodtest', 'filterfwd'])).toMatch(/iifname "tspod0" accept comment "tspod:tspod0"/);
      const r = await t.run(['run', '--rm', 'busybox', 'sh', '-c', 'echo from-container | nc -w 3 10.199.77.2 9999 && echo sent']);
      expect(r.code, r.stderr).toBe(0);
      const seen = await waitFor('the connection', () => out.split('\n').find((l) => l.endsWith('from-container')));
      // The outside saw the host's address on that link, not the container's 10.89.0.x.
      expect(seen).toBe('10.199.77.1 from-container');
      expect(sh('nft', ['list', 'chain', 'ip', 'tspod', 'postrouting'])).toContain('ip saddr @subnets ip daddr != @subnets masquerade');
      expect((await stop(a)).code).toBe(0);
      // The allowances went with the bridge.
      expect(sh('nft', ['list', 'chain', 'ip', 'tspodtest', 'filterfwd'])).not.toContain('tspod0');
    } finally {
      py?.kill('SIGKILL');
      spawnSync('nft', ['delete', 'table', 'ip', 'tspodtest']);
      spawnSync('ip', ['netns', 'del', ns]);
      spawnSync('ip', ['link', 'del', 'vtspodt0']);
    }
  });

  it('works through iptables when nft is not there (TSPOD_FIREWALL=iptables): DNAT, masquerade, chains removed', async () => {
    const env = { TSPOD_FIREWALL: 'iptables' };
    const ns = 'tspodt-ipt';
    const listener = 'import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(("10.199.78.2", 9999))\ns.listen(1)\nprint("listening", flush=True)\nc, a = s.accept()\nprint(a[0], c.recv(100).decode().strip(), flush=True)\n';
    const tspodChains = () => ['nat', 'filter'].flatMap((tb) => sh('iptables', ['-w', '-t', tb, '-S']).split('\n').filter((l) => l.includes('TSPOD')));
    // iptables-nft makes the host's `ip nat` and `ip filter` tables (with empty base chains) on first use;
    // tspod leaves them, as other users' rules may go there. The test removes those it caused, if empty.
    const ipTables = () => (spawnSync('nft', ['list', 'tables'], { encoding: 'utf8' }).stdout ?? '').split('\n').filter((l) => /^table ip (nat|filter)$/.test(l));
    const tablesBefore = ipTables();
    let py: ChildProcess | undefined;
    try {
      sh('ip', ['netns', 'add', ns]);
      sh('ip', ['link', 'add', 'vtspodi0', 'type', 'veth', 'peer', 'name', 'vtspodi1', 'netns', ns]);
      sh('ip', ['-batch', '-'], 'addr add 10.199.78.1/30 dev vtspodi0\nlink set vtspodi0 up\n');
      sh('ip', ['-n', ns, '-batch', '-'], 'addr add 10.199.78.2/30 dev vtspodi1\nlink set vtspodi1 up\nlink set lo up\n');
      py = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', listener], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      py.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      await waitFor('the listener', () => out.includes('listening'));

      const child = spawn(process.execPath, [TSPOD_BIN, 'run', '--rm', '-p', '127.0.0.1:18084:80', 'busybox', 'sh', '-c',
        'mkdir -p /w && echo via-iptables > /w/index.html && trap "exit 0" TERM; httpd -f -p 80 -h /w & echo ready; wait'], { env: { ...t.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let cout = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (cout += d));
      const done = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      background.push({ child, done: done.then((code) => ({ code, signal: null, stdout: cout, stderr: '' })) });
      await waitFor('ready', () => cout.includes('ready'));
      // the port is in iptables, not in tspod's nftables table
      expect(spawnSync('nft', ['list', 'chain', 'ip', 'tspod', 'ports'], { encoding: 'utf8' }).stdout ?? '').not.toContain('18084');
      expect(tspodChains().join('\n')).toMatch(/-A TSPOD-PORTS -d 127\.0\.0\.1\/32 -p tcp -m tcp --dport 18084 .*-j DNAT --to-destination 10\.89\.0\.\d+:80/);
      const body = await waitFor('the page through iptables DNAT', () => { const r = curl('http://127.0.0.1:18084/'); return r.code === 0 && r.body; });
      expect(body).toBe('via-iptables\n');
      const r = await t.run(['run', '--rm', 'busybox', 'sh', '-c', 'echo from-ipt | nc -w 3 10.199.78.2 9999'], { env });
      expect(r.code, r.stderr).toBe(0);
      expect(await waitFor('the connection', () => out.split('\n').find((l) => l.endsWith('from-ipt')))).toBe('10.199.78.1 from-ipt');
      child.kill('SIGTERM');
      expect(await done).toBe(0);
      expect(tspodChains()).toEqual([]);
      expect(await portFree('127.0.0.1', 18084)).toBe(true);
    } finally {
      py?.kill('SIGKILL');
      spawnSync('ip', ['netns', 'del', ns]);
      spawnSync('ip', ['link', 'del', 'vtspodi0']);
      for (const table of ipTables().filter((tb) => !tablesBefore.includes(tb))) {
        const name = table.split(' '); // table ip nat
        const rules = (spawnSync('nft', ['-a', 'list', ...name], { encoding: 'utf8' }).stdout ?? '').split('\n').filter((l) => /# handle \d+$/.test(l) && !/^\s*(chain|table) /.test(l));
        if (rules.length === 0) spawnSync('nft', ['delete', ...name]);
      }
    }
  });
  it('never takes a host interface as a bridge, refuses another root\'s bridge, removes rules where they were installed', async () => {
    const hostile = ['vtspodh0', 'vtspodh2'];
    const second = tspodEnv({ mirrorUrl: registry.url });
    try {
      // Names the kernel refuses, and an interface the host has: refused when the network is created.
      for (const name of ['.', '..']) {
        const r = await t.run(['network', 'create', '--bridge-name', name, 'dots']);
        expect(r.code).toBe(1);
        expect(r.stderr).toBe(`tspod: network create --bridge-name: invalid interface name "${name}" (1-15 of [a-zA-Z0-9_.-], not . or ..)\n`);
      }
      sh('ip', ['link', 'add', 'vtspodh0', 'type', 'veth', 'peer', 'name', 'vtspodh1']);
      const taken = await t.run(['network', 'create', '--bridge-name', 'vtspodh0', 'hostile']);
      expect(taken.code).toBe(1);
      expect(taken.stderr).toBe('tspod: network create hostile: --bridge-name vtspodh0: the host already has an interface vtspodh0\n');
      // One that appears after the network was created is not taken either, and stays.
      expect((await t.run(['network', 'create', '--bridge-name', 'vtspodh2', 'late'])).code).toBe(0);
      sh('ip', ['link', 'add', 'vtspodh2', 'type', 'veth', 'peer', 'name', 'vtspodh3']);
      const late = await t.run(['run', '--rm', '--network', 'late', 'busybox', 'true']);
      expect(late.code).toBe(125);
      expect(late.stderr).toContain('network late: vtspodh2 is a host interface, not a bridge: tspod will not use it');
      expect(existsSync('/sys/class/net/vtspodh2')).toBe(true);
      expect((await t.run(['network', 'rm', 'late'])).code).toBe(0);

      // Two data roots that gave their networks the same bridge: the second is refused while the first uses it.
      expect((await t.run(['network', 'create', '--bridge-name', 'tspodt9', '--subnet', '10.77.1.0/24', 'na'])).code).toBe(0);
      expect((await second.run(['network', 'create', '--bridge-name', 'tspodt9', '--subnet', '10.77.2.0/24', 'nb'])).code).toBe(0);
      const a = bg(['run', '--rm', '--network', 'na', 'busybox', 'sh', '-c', SLEEPER]);
      await a.ready();
      const b = await second.run(['run', '--rm', '--network', 'nb', 'busybox', 'true']);
      expect(b.code).toBe(125);
      expect(b.stderr).toMatch(/network nb: its bridge tspodt9 is in use by another data root's network \(address 10\.77\.1\.2, outside 10\.77\.2\.0\/24\)/);
      expect((await stop(a)).code).toBe(0);
      const bAlone = await second.run(['run', '--rm', '--network', 'nb', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0']);
      expect(bAlone.code, bAlone.stderr).toBe(0);
      expect(bAlone.stdout).toMatch(/inet 10\.77\.2\.2\/24/);

      // Rules set up with nftables are removed from nftables, whatever TSPOD_FIREWALL says at removal.
      const d = await t.run(['run', '-d', '-p', '127.0.0.1:18095:80', 'busybox', 'sleep', '60']);
      expect(d.code, d.stderr).toBe(0);
      expect(spawnSync('nft', ['list', 'chain', 'ip', 'tspod', 'ports'], { encoding: 'utf8' }).stdout).toContain('18095');
      const rmIpt = await t.run(['rm', '-f', d.stdout.trim()], { env: { TSPOD_FIREWALL: 'iptables' } });
      expect(rmIpt.code, rmIpt.stderr).toBe(0);
      expect(tspodTable()).toBe(false);
      expect(await portFree('127.0.0.1', 18095)).toBe(true);

      const bogus = await t.run(['run', '--rm', 'busybox', 'true'], { env: { TSPOD_FIREWALL: 'bogus' } });
      expect(bogus.code).toBe(125);
      expect(bogus.stderr).toContain('invalid TSPOD_FIREWALL "bogus": want nft or iptables');
    } finally {
      await t.run(['network', 'rm', 'na']);
      await second.run(['network', 'rm', 'nb']);
      for (const link of hostile) spawnSync('ip', ['link', 'del', link]);
      second.cleanup();
    }
    expect(strayLinks()).toEqual([]);
  });
});
