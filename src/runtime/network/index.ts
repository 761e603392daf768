/**
 * Bridge networking: the API the container services call.
 *
 *   setupNetwork(root, req, pid)  at the launcher's onPid step (the container's init exists, in its
 *                                 own network namespace, and waits before doing anything): lease
 *                                 an address, bridge, nftables, veth, address/route inside, hosts
 *   teardownNetwork(root, id)     every lease of the container released: veth, port rules, peers'
 *                                 hosts entries; a network's bridge and rules go with its last lease
 *                                 (deleted by a child that holds the network lock until it is done)
 *   reconcileNetworks(root)       releases the leases whose container init is gone (a SIGKILLed
 *                                 tspod), and removes bridges and rules nobody uses
 *
 * Order of acquisition, under the network lock: lease (saved first, so a crash at any later step
 * leaves something reconcile finds) → bridge and nftables (only when the bridge is not set up yet;
 * a container's port rules when it publishes ports) → hosts files; then, after the lock, the
 * launcher creates the veth pair and configures it inside before it releases the init (the
 * `veth` record, leaseVethRecord(); network connect does that step under the lock with `ip`).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fail, messageOf } from '../../util/errors.js';
import { contains, formatIPv4, hostRange, macFor, overlaps, parseIPv4, parseSubnet } from './addr.js';
import { attachVeth, bridgeBackend, bridgeReady, deleteBridge, deleteLink, linkExists, markBridgeReady, notABridge, releaseInterrupted, setUpBridge, vethRecord } from './bridge.js';
import { checkBridgeName, DEFAULT_NETWORK, loadNetworkConfig, subnetAndGateway, type NetworkConfig } from './config.js';
import { baseHosts, writePeers } from './etc.js';
import { firewallBackend, installFirewall, removePorts } from './nft.js';
import { allocatePorts, type PortRequest } from './ports.js';
import { checkNetworkName, claimOf, leaseAlive, liveClaims, NetworkStore, saveClaims, processStartTime, type Lease, type NetworkDef, type NetworkLock, type PortMapping } from './store.js';

export type { Lease, NetworkDef, PortMapping, PortRequest };
export { parsePublish, exposedPorts } from './ports.js';
export { writeEtcFiles, parseAddHost, checkDns, containerResolvConf, type DnsOptions, type EtcFiles, type NetworkKind } from './etc.js';
export { loadNetworkConfig, DEFAULT_NETWORK } from './config.js';
export { processStartTime, leaseAlive } from './store.js';

/** What --network asks for. */
export type NetworkChoice =
  | { kind: 'none' }
  | { kind: 'host' }
  | { kind: 'container'; container: string }
  | { kind: 'bridge'; network: string };

export function parseNetworkMode(value: string | undefined): NetworkChoice {
  const v = value ?? 'bridge';
  if (v === 'none' || v === 'host') return { kind: v };
  if (v === 'bridge' || v === 'default') return { kind: 'bridge', network: DEFAULT_NETWORK };
  if (v.startsWith('container:')) {
    const c = v.slice('container:'.length);
    if (!c) throw fail('EINVAL', `invalid --network "${v}": want container:NAME`);
    return { kind: 'container', container: c };
  }
  checkNetworkName(v);
  return { kind: 'bridge', network: v };
}

export interface AttachRequest {
  containerId: string;
  containerName: string;
  hostname: string;
  network: string;
  /** A fixed address (--ip). */
  ip?: string;
  publish?: PortRequest[];
  /** Extra names on the network (the container's name and short id are always there). */
  aliases?: string[];
  /** The container's hosts file to fill in, and --add-host entries for it. */
  hostsFile?: string;
  addHosts?: string[];
}

/** The network part of a container's state (what inspect shows). */
export interface NetworkState {
  mode: string;
  attachments: Lease[];
}

const stores = new Map<string, NetworkStore>();
function storeFor(root: string): NetworkStore {
  let s = stores.get(root);
  if (!s) stores.set(root, (s = new NetworkStore(root)));
  return s;
}

async function findNetwork(store: NetworkStore, cfg: NetworkConfig, name: string): Promise<NetworkDef> {
  if (name === DEFAULT_NETWORK) return cfg.defaultNetwork;
  const def = await store.getDef(name);
  if (!def) throw fail('ENOTFOUND', `network ${name} not found`);
  return def;
}

export interface AttachOptions {
  /**
   * The launcher creates the veth pair (the caller sends vethRecord(lease) with the go-ahead), so
   * nothing runs here unless the bridge is new or ports are published; else (network connect of a
   * running container) the pair is made now with `ip` and nsenter.
   */
  launcher?: boolean;
  /** The process whose life keeps the lease, when not the init (a detached container's monitor). */
  owner?: { pid: number; startTime: string };
}

/** The launcher's `veth` record for a lease made with { launcher: true }. */
export function leaseVethRecord(l: Lease): string {
  return vethRecord({ bridge: l.bridge, hostVeth: l.hostVeth, ifname: l.ifname, mac: l.mac, ip: l.ip, prefix: l.prefix, gateway: l.ifname === 'eth0' ? l.gateway : undefined });
}

/** Attaches a container (its init is `pid`) to a network; returns the lease. */
export async function setupNetwork(root: string, req: AttachRequest, pid: number, opts: AttachOptions = {}): Promise<Lease> {
  const store = storeFor(root);
  const cfg = await loadNetworkConfig();
  return store.locked(async () => {
    const leases = await reconcileLocked(store, cfg);
    const net = await findNetwork(store, cfg, req.network);
    if (leases.some((l) => l.containerId === req.containerId && l.network === net.name)) {
      throw fail('EEXIST', `container ${req.containerName} is already connected to network ${net.name}`);
    }
    const startTime = processStartTime(pid);
    if (startTime === undefined) throw fail('ESTATE', `attach container ${req.containerName} to ${net.name}: its process ${pid} is gone`);
    const subnet = parseSubnet(net.subnet);
    const claims = await liveClaims();
    if (notABridge(net.bridge)) throw fail('ESTATE', `network ${net.name}: ${net.bridge} is a host interface, not a bridge: tspod will not use it`);
    // Another data root's network with another subnet on the same bridge (each root picks its bridge names alone).
    const other = claims.find((c) => c.bridge === net.bridge && !contains(subnet, parseIPv4(c.ip)));
    if (other) throw fail('EEXIST', `network ${net.name}: its bridge ${net.bridge} is in use by another data root's network (address ${other.ip}, outside ${net.subnet}); give this network another bridge (network create --bridge-name)`);
    const taken = [...leases, ...claims.filter((c) => c.bridge === net.bridge).map((c) => ({ network: net.name, ip: c.ip }))];
    const ip = pickAddress(net, taken, req.ip);
    const ports = await allocatePorts(req.publish ?? [], leases.flatMap((l) => l.ports));
    const n = leases.filter((l) => l.containerId === req.containerId).length;
    const lease: Lease = {
      network: net.name, bridge: net.bridge, ip, prefix: subnet.prefix, gateway: net.gateway, mac: macFor(parseIPv4(ip)),
      containerId: req.containerId, containerName: req.containerName,
      ifname: `eth${n}`, hostVeth: `veth${req.containerId.slice(0, 9)}${n}`,
      pid, startTime, ...(opts.owner ? { ownerPid: opts.owner.pid, ownerStart: opts.owner.startTime } : {}), ports,
      aliases: [...new Set([req.containerName, req.containerId.slice(0, 12), ...(req.aliases ?? [])].filter(Boolean))],
      hostsFile: req.hostsFile,
    };
    await store.saveLeases([...leases, lease]);
    await saveClaims([...claims, claimOf(lease)]);
    try {
      // No child process on the run path once the bridge is set up, unless ports are published
      // (one nft transaction): the launcher makes the veth pair (native/netlink.c).
      const backend = firewallBackend();
      if (!bridgeReady(net.bridge, backend)) {
        await setUpBridge(net.bridge, net.gateway, subnet.prefix, () => installFirewall(net.bridge, net.subnet, ports, ip, req.containerId));
        await markBridgeReady(net.bridge, backend);
      } else if (ports.length) {
        await installFirewall(net.bridge, net.subnet, ports, ip, req.containerId);
      }
      if (!opts.launcher) {
        await attachVeth({ pid, bridge: net.bridge, hostVeth: lease.hostVeth, ifname: lease.ifname, mac: lease.mac, ip, prefix: subnet.prefix, gateway: n === 0 ? net.gateway : undefined });
      }
      if (req.hostsFile && n === 0) writeFileSync(req.hostsFile, baseHosts(req.hostname, ip, req.addHosts ?? []));
      await updatePeers(store, net);
    } catch (err) {
      const failures = await releaseLocked(store, cfg, [lease]);
      if (failures.length) throw fail('ESYS', `${messageOf(err)} (and in cleanup: ${failures.join('; ')})`, err);
      throw err;
    }
    return lease;
  });
}

function pickAddress(net: NetworkDef, leases: Pick<Lease, 'network' | 'ip'>[], wanted?: string): string {
  const subnet = parseSubnet(net.subnet);
  const used = new Set(leases.filter((l) => l.network === net.name).map((l) => l.ip));
  used.add(net.gateway);
  if (wanted !== undefined) {
    const n = parseIPv4(wanted, '--ip address');
    const { first, last } = hostRange(subnet);
    if (!contains(subnet, n) || n < first || n > last) throw fail('EINVAL', `invalid --ip ${wanted}: not a host address of network ${net.name} (${net.subnet})`);
    const ip = formatIPv4(n);
    if (used.has(ip)) throw fail('EEXIST', `address ${ip} is already in use on network ${net.name}`);
    return ip;
  }
  const { first, last } = hostRange(subnet);
  for (let a = first; a <= last; a++) {
    const ip = formatIPv4(a);
    if (!used.has(ip)) return ip;
  }
  throw fail('EBUSY', `network ${net.name} (${net.subnet}) has no free address left`);
}

/** Rewrites the peers section of the hosts file of every container on a user-defined network. */
async function updatePeers(store: NetworkStore, net: NetworkDef): Promise<void> {
  if (net.builtin) return; // like docker's default bridge: no name resolution between containers
  const on = (await store.leases()).filter((l) => l.network === net.name);
  for (const l of on) {
    if (!l.hostsFile) continue;
    await writePeers(l.hostsFile, on.filter((o) => o.containerId !== l.containerId).map((o) => ({ ip: o.ip, names: o.aliases })));
  }
}

/**
 * Releases leases (and their host objects) while holding the lock; returns cleanup failures.
 * `deferWith`: the lock, when nothing else is done with the networks in this hold (a bridge losing
 * its last lease is then deleted by a child holding the lock, deleteBridge); never when a set-up may
 * follow in the same hold, which could find the bridge before the child deletes it.
 *
 * A lease whose container init is gone has its veth pair removed by the kernel with the namespace,
 * a few ms after the init's exit (usually before we get here): that wait (deleteLink's `dying`)
 * runs alongside the rest of the release instead of before it, and a bridge losing its last lease
 * does not count those dying pairs as users (its deletion takes them off it anyway).
 */
async function releaseLocked(store: NetworkStore, cfg: NetworkConfig, gone: Lease[], deferWith?: NetworkLock): Promise<string[]> {
  const failures: string[] = [];
  const step = async (what: () => Promise<void>) => {
    try {
      await what();
    } catch (err) {
      failures.push(messageOf(err));
    }
  };
  const dying = gone.filter((l) => processStartTime(l.pid) !== l.startTime);
  const handedOff = new Set<string>(); // dying veths a deferred bridge deletion looks after (deleteBridge)
  const vanishing = dying.map((l) => step(() => deleteLink(l.hostVeth, true, () => handedOff.has(l.hostVeth))));
  for (const l of gone) {
    if (!dying.includes(l)) await step(() => deleteLink(l.hostVeth));
    if (l.ports.length) await step(() => removePorts(l.ports, l.ip, l.containerId, bridgeBackend(l.bridge)));
  }
  const claimKey = (c: { bridge: string; ip: string; pid: number; startTime: string }) => `${c.bridge}/${c.ip}/${c.pid}/${c.startTime}`;
  const goneClaims = new Set(gone.map((l) => claimKey(claimOf(l))));
  const claims = (await liveClaims()).filter((c) => !goneClaims.has(claimKey(c)));
  await saveClaims(claims);
  const key = (l: Lease) => `${l.containerId}/${l.network}`;
  const goneKeys = new Set(gone.map(key));
  const left = (await store.leases()).filter((l) => !goneKeys.has(key(l)));
  await store.saveLeases(left);
  const nets = new Map(gone.map((l) => [l.network, l]));
  for (const [name, l] of nets) {
    if (left.some((o) => o.network === name)) {
      const def = name === DEFAULT_NETWORK ? cfg.defaultNetwork : await store.getDef(name);
      if (def) await step(() => updatePeers(store, def));
      continue;
    }
    const subnet = formatIPv4((parseIPv4(l.ip) & ((0xffffffff << (32 - l.prefix)) >>> 0)) >>> 0) + '/' + l.prefix;
    // Another data root's container holds an address on it (between two runs of a restart policy its
    // veth, the kernel's sign of use, is gone): the bridge stays.
    if (claims.some((c) => c.bridge === l.bridge)) continue;
    const lastBridge = claims.length === 0;
    const leaving = new Set(dying.filter((d) => d.bridge === l.bridge).map((d) => d.hostVeth));
    await step(async () => {
      if (await deleteBridge(l.bridge, { subnet, lastBridge, leaving, deferWith }) === 'deferred') for (const v of leaving) handedOff.add(v);
    });
  }
  await Promise.all(vanishing);
  return failures;
}

/** Detaches a container from every network it is on (or from one). Failures are collected and thrown together. */
export async function teardownNetwork(root: string, containerId: string, network?: string): Promise<void> {
  const store = storeFor(root);
  const cfg = await loadNetworkConfig();
  const failures = await store.locked(async (lock) => {
    const mine = (await store.leases()).filter((l) => l.containerId === containerId && (network === undefined || l.network === network));
    return mine.length ? releaseLocked(store, cfg, mine, lock) : [];
  });
  if (failures.length) throw fail('ESYS', `remove network of container ${containerId.slice(0, 12)}: ${failures.join('; ')}`);
}

/**
 * Finds and cleans what a crash left: leases whose container init is gone, their veths and port
 * rules, and bridges of this root's networks that no lease uses. Cheap when there is nothing to do
 * (reads the lease file and /proc).
 */
export async function reconcileNetworks(root: string): Promise<void> {
  const store = storeFor(root);
  const cfg = await loadNetworkConfig();
  await store.locked(async () => { await reconcileLocked(store, cfg); });
}

/** Cleans what a crash left (see reconcileNetworks); returns the leases left. */
async function reconcileLocked(store: NetworkStore, cfg: NetworkConfig): Promise<Lease[]> {
  const leases = await store.leases();
  const dead = leases.filter((l) => !leaseAlive(l));
  const failures = dead.length ? await releaseLocked(store, cfg, dead) : [];
  const left = dead.length ? await store.leases() : leases;
  // A crash between the last release and the bridge's removal leaves a bridge without leases; a
  // deferred removal that was killed may leave its firewall rules too (deleteBridge).
  const defs = [cfg.defaultNetwork, ...(await store.listDefs())];
  for (const def of defs) {
    if (left.some((l) => l.network === def.name) || !(linkExists(def.bridge) || releaseInterrupted(def.bridge))) continue;
    try {
      const claims = await liveClaims();
      if (claims.some((c) => c.bridge === def.bridge)) continue; // in use by another data root
      await deleteBridge(def.bridge, { subnet: def.subnet, lastBridge: claims.length === 0 });
    } catch (err) {
      failures.push(messageOf(err));
    }
  }
  if (failures.length) process.stderr.write(`tspod: clean up stale network state: ${failures.join('; ')}\n`);
  return left;
}

/* ---------- user-defined networks ---------- */

export interface NetworkSummary extends NetworkDef {
  containers: { id: string; name: string; ip: string; mac: string; ports: PortMapping[] }[];
}

export async function createNetwork(root: string, opts: { name: string; subnet?: string; gateway?: string; bridge?: string }): Promise<NetworkDef> {
  checkNetworkName(opts.name);
  if (['bridge', 'host', 'none', 'default'].includes(opts.name)) throw fail('EINVAL', `network name "${opts.name}" is reserved`);
  const store = storeFor(root);
  const cfg = await loadNetworkConfig();
  return store.locked(async () => {
    if (await store.getDef(opts.name)) throw fail('EEXIST', `network with name ${opts.name} already exists`);
    const defs = [cfg.defaultNetwork, ...(await store.listDefs())];
    let bridge = opts.bridge;
    if (bridge !== undefined) {
      checkBridgeName(bridge, 'network create --bridge-name');
      // An interface of the host (eth0, a user's bridge, another root's tspodN) is never taken over: tspod deletes its bridges.
      if (linkExists(bridge)) throw fail('EEXIST', `network create ${opts.name}: --bridge-name ${bridge}: the host already has an interface ${bridge}`);
    }
    else for (let i = 1; ; i++) if (!defs.some((d) => d.bridge === `tspod${i}`) && !linkExists(`tspod${i}`)) { bridge = `tspod${i}`; break; }
    if (defs.some((d) => d.bridge === bridge)) throw fail('EEXIST', `bridge ${bridge} is already used by network ${defs.find((d) => d.bridge === bridge)!.name}`);
    let subnet: string;
    let gateway: string;
    if (opts.subnet !== undefined) {
      ({ subnet, gateway } = subnetAndGateway(opts.subnet, opts.gateway, `network create ${opts.name}`));
      const clash = defs.find((d) => overlaps(parseSubnet(d.subnet), parseSubnet(subnet)));
      if (clash) throw fail('EEXIST', `network create ${opts.name}: subnet ${subnet} overlaps ${clash.subnet} of network ${clash.name}`);
    } else {
      const pool = parseSubnet(cfg.pool);
      let found: string | undefined;
      for (let base = pool.base; contains(pool, base); base += 256) {
        const cand = parseSubnet(`${formatIPv4(base)}/24`);
        if (!defs.some((d) => overlaps(parseSubnet(d.subnet), cand))) { found = cand.cidr; break; }
      }
      if (!found) throw fail('EBUSY', `network create ${opts.name}: no free /24 left in the pool ${cfg.pool}; give --subnet`);
      ({ subnet, gateway } = subnetAndGateway(found, opts.gateway, `network create ${opts.name}`));
    }
    const def: NetworkDef = { name: opts.name, id: randomBytes(32).toString('hex'), driver: 'bridge', bridge: bridge!, subnet, gateway, created: new Date().toISOString() };
    await store.saveDef(def);
    return def;
  });
}

function summarize(def: NetworkDef, leases: Lease[]): NetworkSummary {
  return {
    ...def,
    containers: leases.filter((l) => l.network === def.name && leaseAlive(l))
      .map((l) => ({ id: l.containerId, name: l.containerName, ip: l.ip, mac: l.mac, ports: l.ports })),
  };
}

export async function listNetworks(root: string): Promise<NetworkSummary[]> {
  const store = storeFor(root);
  const cfg = await loadNetworkConfig();
  const leases = await store.leases();
  return [cfg.defaultNetwork, ...(await store.listDefs())].map((d) => summarize(d, leases));
}

export async function inspectNetwork(root: string, name: string): Promise<NetworkSummary> {
  const store = storeFor(root);
  const cfg = await loadNetworkConfig();
  const all = [cfg.defaultNetwork, ...(await store.listDefs())];
  const def = all.find((d) => d.name === name) ?? all.find((d) => name.length >= 3 && d.id.startsWith(name));
  if (!def) throw fail('ENOTFOUND', `network ${name} not found`);
  return summarize(def, await store.leases());
}

export async function removeNetwork(root: string, name: string): Promise<void> {
  if (name === DEFAULT_NETWORK) throw fail('EINVAL', `network ${name} is the default network and cannot be removed`);
  const store = storeFor(root);
  const cfg = await loadNetworkConfig();
  await store.locked(async () => {
    await reconcileLocked(store, cfg);
    const def = await store.getDef(name);
    if (!def) throw fail('ENOTFOUND', `network ${name} not found`);
    const users = (await store.leases()).filter((l) => l.network === name);
    if (users.length) throw fail('ESTATE', `network ${name} has active endpoints (${users.map((u) => u.containerName).join(', ')}): remove or disconnect them first`);
    await store.removeDef(name);
  });
}

/** The leases of a container (live or not). */
export async function containerLeases(root: string, containerId: string): Promise<Lease[]> {
  return (await storeFor(root).leases()).filter((l) => l.containerId === containerId);
}
