/**
 * Host objects of a bridge network: the bridge itself (created with the network's first container
 * through rtnetlink, native/sys.c, or iproute2 without it; deleted with its last, as netavark does,
 * the kernel's ≈ 50 ms of that deletion in a child that holds the network lock, so the last
 * container's command does not wait for it) and each container's veth pair: the host end
 * `veth<id><n>` enslaved to the bridge, the other end created directly inside the container's network
 * namespace as eth<n> with its MAC, its address, MTU and the default route.
 * A container being started gets its pair from the launcher itself (rtnetlink, native/netlink.c:
 * vethRecord() is the record it is handed with the go-ahead); a running container (network
 * connect) through `ip` and, inside, nsenter (setns is not safe in a multithreaded process).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeField } from '../plan.js';
import { nativeBridgeCreate } from '../../sys/index.js';
import { fail, messageOf } from '../../util/errors.js';
import { execTool, ipBatch, ipBatchIn, nft, startDetached } from './exec.js';
import { enableForwarding, firewallBackend, foreignAllowances, networkRulesRemoval, removeForeignAllows, removeNetworkFirewall, type FirewallBackend } from './nft.js';
import { writeLockHolder, type NetworkLock } from './store.js';

export const MTU = 1500;

export function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

/** The ip lines that create a bridge with its gateway address. */
export function bridgeLines(bridge: string, gateway: string, prefix: number): string[] {
  return [
    `link add ${bridge} mtu ${MTU} type bridge`,
    `addr add ${gateway}/${prefix} dev ${bridge}`,
    `link set ${bridge} up`,
  ];
}

/**
 * The bridge (unless it exists), the host settings it needs and its firewall (`install`: the
 * table, the network's elements, the first container's ports). With the native module all of it
 * happens in this process (rtnetlink, libnftables: ≈ 3 ms); without it the link, the firewall and the
 * look at other tables' forward chains are child processes that run at the same time. Only when
 * another table drops forwarded traffic is one more nft transaction needed, for the allowances (nft.ts).
 */
export async function setUpBridge(bridge: string, gateway: string, prefix: number, install: () => Promise<void>): Promise<void> {
  const [, , extra] = await Promise.all([
    (async () => {
      await ensureBridge(bridge, gateway, prefix);
      // DNAT from the host's own 127.0.0.1 to a container routes a loopback source out of the bridge.
      await writeFile(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, '1\n');
    })(),
    (async () => {
      enableForwarding();
      await install();
    })(),
    firewallBackend() === 'iptables' ? '' : foreignAllowances(bridge), // iptables: its FORWARD ACCEPT is final (iptables.ts)
  ]);
  if (extra) {
    await writeFile(foreignMarker(bridge), ''); // first: a crash after the insertion still leaves the marker to find them
    await nft(`allow ${bridge} through other tables' forward chains`, extra);
  }
}

/**
 * A bridge whose set-up finished (link, gateway address, host settings, firewall of `backend`):
 * the marker /run/lock/tspod-network.ready.<bridge> holds the firewall backend. A container on a
 * ready bridge needs no child process unless it publishes ports; anything else (no marker: a
 * crash mid-way, a reboot, another backend) takes the set-up path again, which is idempotent.
 */
function readyMarker(bridge: string): string {
  return `/run/lock/tspod-network.ready.${bridge}`;
}

export function bridgeReady(bridge: string, backend: string): boolean {
  try {
    return readFileSync(readyMarker(bridge), 'utf8') === backend && linkExists(bridge);
  } catch {
    return false;
  }
}

/**
 * The firewall backend a bridge's rules are in: the one its ready marker records, else this process's
 * (a set-up that did not finish used it). Its rules are removed from there, whatever TSPOD_FIREWALL says now.
 */
export function bridgeBackend(bridge: string): FirewallBackend {
  try {
    const recorded = readFileSync(readyMarker(bridge), 'utf8');
    if (recorded === 'nft' || recorded === 'iptables') return recorded;
  } catch {
    // no marker
  }
  return firewallBackend();
}

/** A link of that name exists and is not a bridge: a host interface tspod must never take or delete. */
export function notABridge(name: string): boolean {
  return linkExists(name) && !existsSync(`/sys/class/net/${name}/bridge`);
}

export async function markBridgeReady(bridge: string, backend: string): Promise<void> {
  await writeFile(readyMarker(bridge), backend);
}

/** Creates the bridge with its gateway address unless it exists: rtnetlink in this process, else `ip`. */
export async function ensureBridge(bridge: string, gateway: string, prefix: number): Promise<void> {
  if (linkExists(bridge)) return;
  if (nativeBridgeCreate(bridge, MTU, gateway, prefix)) return;
  await ipBatch(`create bridge ${bridge}`, bridgeLines(bridge, gateway, prefix));
}

/** Marks a bridge whose allowances were inserted into other tables, so that removal looks for them only then. */
function foreignMarker(bridge: string): string {
  return `/run/lock/tspod-network.foreign.${bridge}`;
}

export interface BridgeRemoval {
  /** The network's subnet, and whether no tspod bridge is left on the host after this one (then tspod's whole table goes). */
  subnet: string;
  lastBridge: boolean;
  /**
   * Ports that do not count as users: the veths of containers whose namespace the kernel is removing.
   * A deferred deletion deletes those still there when it is done with the bridge.
   */
  leaving?: ReadonlySet<string>;
  /**
   * The network lock held by the caller: the link's and the table's deletion, which are mostly the
   * kernel waiting for RCU grace periods (≈ 40–60 ms for a bridge, ≈ 20 ms for a table, measured
   * here), are handed to a child that holds this lock until they are done, so that the container's
   * command returns without that wait and no tspod process sees the network half-removed.
   */
  deferWith?: NetworkLock;
}

/**
 * Deletes the bridge and its firewall rules unless ports are still attached to it: another tspod
 * instance (another data root) may use the same bridge, and the kernel's list of ports is the truth
 * every instance sees. Says whether the bridge stays, went, or goes in a child (`deferWith`).
 *
 * A deferred deletion that fails or is killed leaves a bridge no lease uses, which the next network
 * operation's reconcile deletes (and reports), as after a crash between a release and the deletion.
 */
export async function deleteBridge(bridge: string, r: BridgeRemoval): Promise<'kept' | 'deleted' | 'deferred'> {
  const leaving = r.leaving ?? new Set<string>();
  if (linkExists(bridge) && readdirOrNone(`/sys/class/net/${bridge}/brif`).some((p) => !leaving.has(p))) return 'kept';
  if (notABridge(bridge)) return 'kept'; // a host interface named like the network's bridge: never tspod's to delete
  const backend = bridgeBackend(bridge);
  await rm(readyMarker(bridge), { force: true });
  const foreign = existsSync(foreignMarker(bridge));
  const firewall = () => removeNetworkFirewall(bridge, r.subnet, r.lastBridge, backend);
  if (r.deferWith && !foreign) {
    const nftScript = backend === 'nft' ? networkRulesRemoval(bridge, r.subnet, r.lastBridge) : '';
    if (!nftScript) await firewall(); // iptables: its calls now, the link later
    if (deleteInBackground(r.deferWith, bridge, nftScript, [...leaving])) return 'deferred';
    if (!nftScript) return deleteBridgeNow(bridge, false, async () => {});
  }
  return deleteBridgeNow(bridge, foreign, firewall);
}

/**
 * The releaser: `sh -c RELEASE_SCRIPT NAME BRIDGE NFT_SCRIPT MARKER VETH…`. The marker goes last, and only
 * when the link is gone and nft succeeded: one left behind (the child killed, or a step failed) makes the
 * next network command's reconcile delete what is left, and report what fails again.
 */
export const RELEASE_SCRIPT = [
  'ip link del dev "$1" 2>/dev/null & link=$!',
  'failed=',
  'if [ -n "$2" ]; then printf %s "$2" | nft -f - 2>/dev/null || failed=nft; fi',
  'wait $link || [ ! -e "/sys/class/net/$1" ] || failed=link',
  'm=$3; shift 3',
  'for v; do [ ! -e "/sys/class/net/$v" ] || ip link del dev "$v" 2>/dev/null; done',
  '[ -n "$failed" ] || rm -f "$m"',
].join('\n');

/**
 * `ip link del` of the bridge and `nft -f -` of `nftScript` (if any), at the same time, then of the
 * `veths` the kernel has not removed with their namespaces by then, in a detached child that holds the
 * network lock (its descriptor 3) until all is done. False when it could not start.
 */
function deleteInBackground(lock: NetworkLock, bridge: string, nftScript: string, veths: string[]): boolean {
  let pid: number;
  try {
    writeFileSync(releasingMarker(bridge), '');
    pid = startDetached('tspod-network-release', RELEASE_SCRIPT, [bridge, nftScript, releasingMarker(bridge), ...veths], lock.fd);
  } catch {
    return false;
  }
  lock.share();
  writeLockHolder(lock.fd, pid, `removing bridge ${bridge}`);
  return true;
}

/**
 * /run/lock/tspod-network.releasing.<bridge>: a deferred deletion of the bridge was started and has not
 * finished. Seen under the lock (no release running), it means the child was killed: reconcile deletes
 * the bridge and the rules again, as far as they are left.
 */
function releasingMarker(bridge: string): string {
  return `/run/lock/tspod-network.releasing.${bridge}`;
}

export function releaseInterrupted(bridge: string): boolean {
  return existsSync(releasingMarker(bridge));
}

/** The link, its firewall rules and its allowances in other tables (`foreign`), at the same time. */
async function deleteBridgeNow(bridge: string, foreign: boolean, firewall: () => Promise<void>): Promise<'deleted'> {
  const results = await Promise.allSettled([
    (async () => {
      if (!foreign) return;
      await removeForeignAllows(bridge);
      await rm(foreignMarker(bridge), { force: true });
    })(),
    (async () => { if (linkExists(bridge)) await deleteLink(bridge); })(),
    firewall(),
  ]);
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => messageOf(r.reason));
  if (failed.length) throw fail('ESYS', failed.join('; '));
  await rm(releasingMarker(bridge), { force: true });
  return 'deleted';
}

function readdirOrNone(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return []; // the bridge went meanwhile
  }
}

/**
 * Deletes a link; one that is already gone (its namespace died) is fine. `dying`: the container's
 * init is gone, so the kernel is removing the pair with its namespace (usually within a few ms of the
 * init's exit): wait for that, looking every ms, before paying for an `ip` process (≈ 15 ms);
 * `abandon` says when someone else took the link over.
 */
export async function deleteLink(name: string, dying = false, abandon = () => false): Promise<void> {
  const until = performance.now() + 40;
  while (dying && linkExists(name) && performance.now() < until && !abandon()) await sleep(1);
  if (!linkExists(name) || abandon()) return;
  const r = await execTool('ip', ['link', 'del', name]);
  if (r.code !== 0 && linkExists(name)) throw new Error(`delete link ${name}: ${r.stderr.trim()}`);
}

export interface VethSpec {
  pid: number;
  bridge: string;
  hostVeth: string;
  ifname: string;
  mac: string;
  ip: string;
  prefix: number;
  /** Set the default route through this gateway (the first interface only). */
  gateway?: string;
}

/** Creates the veth pair (and first `before` lines: the bridge, when new), then configures the inside. */
export async function attachVeth(v: VethSpec, before: string[] = []): Promise<void> {
  await ipBatch(`create veth ${v.hostVeth} for pid ${v.pid}`, [
    ...before,
    `link add ${v.hostVeth} mtu ${MTU} type veth peer name ${v.ifname} address ${v.mac} mtu ${MTU} netns ${v.pid}`,
    `link set ${v.hostVeth} master ${v.bridge} up`,
  ]);
  await ipBatchIn(v.pid, `configure ${v.ifname} in the container (pid ${v.pid})`, [
    `addr add ${v.ip}/${v.prefix} dev ${v.ifname}`,
    `link set ${v.ifname} up`,
    ...(v.gateway ? [`route add default via ${v.gateway} dev ${v.ifname}`] : []),
  ]);
}

/**
 * The launcher's record for a pair (native/README.md): `veth HOSTIF PEERIF MAC MTU BRIDGE
 * ADDR/PREFIX GATEWAY|-`, one line.
 */
export function vethRecord(v: Omit<VethSpec, 'pid'>): string {
  return ['veth', v.hostVeth, v.ifname, v.mac, String(MTU), v.bridge, `${v.ip}/${v.prefix}`, v.gateway]
    .map((f, i) => (i === 0 ? f : encodeField(f))).join(' ') + '\n';
}
