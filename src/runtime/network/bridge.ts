/**
 * Host objects of a bridge network, through iproute2: the bridge itself (created with the
 * network's first container, deleted with its last, as netavark does) and each container's veth
 * pair: the host end `veth<id><n>` enslaved to the bridge, the other end created directly inside the
 * container's network namespace as eth<n> with its MAC, then given its address, MTU, and the
 * default route from inside (nsenter: setns is not safe in a multithreaded process).
 */
import { existsSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { execTool, ipBatch, ipBatchIn } from './exec.js';
import { allowThroughForeignDrop, enableForwarding, removeForeignAllows } from './nft.js';

export const MTU = 1500;

export function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

/** Creates the bridge with the gateway address when it does not exist yet. */
export async function ensureBridge(bridge: string, gateway: string, prefix: number): Promise<void> {
  if (linkExists(bridge)) return;
  await ipBatch(`create bridge ${bridge}`, [
    `link add ${bridge} mtu ${MTU} type bridge`,
    `addr add ${gateway}/${prefix} dev ${bridge}`,
    `link set ${bridge} up`,
  ]);
  // DNAT from the host's own 127.0.0.1 to a container routes a loopback source out of the bridge.
  await writeFile(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, '1\n');
  await enableForwarding();
  await allowThroughForeignDrop(bridge);
}

/**
 * Deletes the bridge unless ports are still attached to it: another tspod instance (another data
 * root) may use the same bridge, and the kernel's list of ports is the truth every instance sees.
 * Returns false when the bridge stays.
 */
export async function deleteBridge(bridge: string): Promise<boolean> {
  if (linkExists(bridge) && readdirSync(`/sys/class/net/${bridge}/brif`).length > 0) return false;
  await removeForeignAllows(bridge);
  if (linkExists(bridge)) await deleteLink(bridge);
  return true;
}

/** Deletes a link; one that is already gone (its namespace died) is fine. */
export async function deleteLink(name: string): Promise<void> {
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

export async function attachVeth(v: VethSpec): Promise<void> {
  await ipBatch(`create veth ${v.hostVeth} for pid ${v.pid}`, [
    `link add ${v.hostVeth} mtu ${MTU} type veth peer name ${v.ifname} address ${v.mac} mtu ${MTU} netns ${v.pid}`,
    `link set ${v.hostVeth} master ${v.bridge} up`,
  ]);
  await ipBatchIn(v.pid, `configure ${v.ifname} in the container (pid ${v.pid})`, [
    `addr add ${v.ip}/${v.prefix} dev ${v.ifname}`,
    `link set ${v.ifname} up`,
    ...(v.gateway ? [`route add default via ${v.gateway} dev ${v.ifname}`] : []),
  ]);
}
