/**
 * Host objects of a bridge network: the bridge itself (created with the network's first container
 * through iproute2, deleted with its last, as netavark does) and each container's veth pair: the
 * host end `veth<id><n>` enslaved to the bridge, the other end created directly inside the
 * container's network namespace as eth<n> with its MAC, its address, MTU and the default route.
 * A container being started gets its pair from the launcher itself (rtnetlink, native/netlink.c:
 * vethRecord() is the record it is handed with the go-ahead); a running container (network
 * connect) through `ip` and, inside, nsenter (setns is not safe in a multithreaded process).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeField } from '../plan.js';
import { fail, messageOf } from '../../util/errors.js';
import { execTool, ipBatch, ipBatchIn, nft } from './exec.js';
import { enableForwarding, firewallBackend, foreignAllowances, removeForeignAllows } from './nft.js';

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
 * table, the network's elements, the first container's ports). The link, the firewall and the look
 * at other tables' forward chains are independent: they run at the same time (child processes,
 * ≈ 10–30 ms each); only when another table drops forwarded traffic is one more nft transaction
 * needed after them, for the allowances (see nft.ts).
 */
export async function setUpBridge(bridge: string, gateway: string, prefix: number, install: () => Promise<void>): Promise<void> {
  const [, , extra] = await Promise.all([
    (async () => {
      await ensureBridge(bridge, gateway, prefix);
      // DNAT from the host's own 127.0.0.1 to a container routes a loopback source out of the bridge.
      await writeFile(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, '1\n');
    })(),
    (async () => {
      await enableForwarding();
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

export async function markBridgeReady(bridge: string, backend: string): Promise<void> {
  await writeFile(readyMarker(bridge), backend);
}

/** Creates the bridge with its gateway address unless it exists. */
export async function ensureBridge(bridge: string, gateway: string, prefix: number): Promise<void> {
  if (linkExists(bridge)) return;
  await ipBatch(`create bridge ${bridge}`, bridgeLines(bridge, gateway, prefix));
}

/** Marks a bridge whose allowances were inserted into other tables, so that removal looks for them only then. */
function foreignMarker(bridge: string): string {
  return `/run/lock/tspod-network.foreign.${bridge}`;
}

/**
 * Deletes the bridge unless ports are still attached to it: another tspod instance (another data
 * root) may use the same bridge, and the kernel's list of ports is the truth every instance sees.
 * `alongside` (the removal of its firewall rules) runs at the same time as the link's deletion,
 * which is mostly the kernel waiting for RCU grace periods (≈ 40 ms here). `leaving`: ports that do
 * not count (the veths of containers whose namespace the kernel is removing). Returns false when
 * the bridge stays.
 */
export async function deleteBridge(bridge: string, alongside?: () => Promise<void>, leaving: ReadonlySet<string> = new Set()): Promise<boolean> {
  if (linkExists(bridge) && readdirOrNone(`/sys/class/net/${bridge}/brif`).some((p) => !leaving.has(p))) return false;
  await rm(readyMarker(bridge), { force: true });
  const results = await Promise.allSettled([
    (async () => {
      if (!existsSync(foreignMarker(bridge))) return;
      await removeForeignAllows(bridge);
      await rm(foreignMarker(bridge), { force: true });
    })(),
    (async () => { if (linkExists(bridge)) await deleteLink(bridge); })(),
    (async () => { await alongside?.(); })(),
  ]);
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => messageOf(r.reason));
  if (failed.length) throw fail('ESYS', failed.join('; '));
  return true;
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
 * init is gone, so the kernel is removing the pair with its namespace (within a few ms of the
 * init's exit): wait for that, looking every ms, before paying for an `ip` process (≈ 15 ms).
 */
export async function deleteLink(name: string, dying = false): Promise<void> {
  const until = performance.now() + 40;
  while (dying && linkExists(name) && performance.now() < until) await sleep(1);
  if (!linkExists(name)) return;
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
