/**
 * tspod's firewall: one nftables table, `ip tspod`, owned entirely by tspod.
 *
 *   set subnets, set bridges       the networks in use (elements added with a network's first
 *                                  container, removed with its last)
 *   chain postrouting (nat)        masquerade what leaves a tspod subnet for elsewhere; and traffic
 *                                  DNATed from the host's own 127.0.0.1 to a container (its loopback
 *                                  source cannot leave the host: route_localnet is set on the bridge)
 *   chain forward (filter)         containers may send anywhere; to a container only replies and
 *                                  published ports (DNAT) are let through
 *   chain prerouting / output (nat) traffic to a local address jumps to `ports`
 *   chain ports                    one DNAT rule per published port, commented "tspod:<container id>"
 *
 * Every base chain is flushed and refilled in the same transaction that adds an element, so
 * installing is idempotent and atomic. The table is deleted when the last network goes.
 *
 * Another table's forward chain with policy drop (iptables-nft's FORWARD with `-P FORWARD DROP`,
 * as docker leaves it) would drop container traffic whatever this table says: a packet must be
 * accepted by every base chain. For each such chain, two accept rules per bridge are inserted at
 * its top, commented "tspod:<bridge>", and removed with the bridge.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { nft, nftJson, runNft } from './exec.js';
import { iptInstall, iptRemoveNetwork, iptRemovePorts } from './iptables.js';
import { fail } from '../../util/errors.js';
import type { PortMapping } from './store.js';

export const TABLE = 'tspod';

const BASE = `add table ip ${TABLE}
add set ip ${TABLE} subnets { type ipv4_addr; flags interval; }
add set ip ${TABLE} bridges { type ifname; }
add chain ip ${TABLE} postrouting { type nat hook postrouting priority srcnat; policy accept; }
add chain ip ${TABLE} forward { type filter hook forward priority filter; policy accept; }
add chain ip ${TABLE} prerouting { type nat hook prerouting priority dstnat; policy accept; }
add chain ip ${TABLE} output { type nat hook output priority -100; policy accept; }
add chain ip ${TABLE} ports
flush chain ip ${TABLE} postrouting
flush chain ip ${TABLE} forward
flush chain ip ${TABLE} prerouting
flush chain ip ${TABLE} output
add rule ip ${TABLE} postrouting ip saddr @subnets ip daddr != @subnets masquerade
add rule ip ${TABLE} postrouting oifname @bridges ip saddr 127.0.0.0/8 masquerade
add rule ip ${TABLE} forward iifname @bridges accept
add rule ip ${TABLE} forward oifname @bridges ct state established,related accept
add rule ip ${TABLE} forward oifname @bridges ct status dnat accept
add rule ip ${TABLE} forward oifname @bridges drop
add rule ip ${TABLE} prerouting fib daddr type local jump ports
add rule ip ${TABLE} output fib daddr type local jump ports
`;

/**
 * nftables when the `nft` program exists, else iptables (iptables-nft, see iptables.ts);
 * TSPOD_FIREWALL=nft|iptables chooses explicitly.
 */
export type FirewallBackend = 'nft' | 'iptables';

export function firewallBackend(): FirewallBackend {
  const f = process.env.TSPOD_FIREWALL;
  if (f === 'nft' || f === 'iptables') return f;
  if (f) throw fail('EINVAL', `invalid TSPOD_FIREWALL "${f}": want nft or iptables (or unset: nft when the nft program exists)`);
  return ['/usr/sbin', '/sbin', '/usr/bin', '/bin', '/usr/local/sbin'].some((d) => existsSync(`${d}/nft`)) ? 'nft' : 'iptables';
}

/** Installs a network's rules and a container's published ports with the host's firewall backend. */
export async function installFirewall(bridge: string, subnet: string, ports: PortMapping[], ip: string, containerId: string, extra = ''): Promise<void> {
  if (firewallBackend() === 'iptables') return iptInstall(bridge, subnet, ports.map((p) => ({ p, ip, containerId })));
  return installRules(bridge, subnet, ports.map((p) => portRule(p, ip, containerId)), extra);
}

/** Removes a container's published ports, from the backend its bridge was set up with. */
export async function removePorts(ports: PortMapping[], ip: string, containerId: string, backend: FirewallBackend): Promise<void> {
  if (backend === 'iptables') return iptRemovePorts(ports, ip, containerId);
  return removePortRules(containerId);
}

/** Removes a network's rules (the whole of tspod's firewall when `lastBridge`), from the backend its bridge was set up with. */
export async function removeNetworkFirewall(bridge: string, subnet: string, lastBridge: boolean, backend: FirewallBackend): Promise<void> {
  if (backend === 'iptables') return iptRemoveNetwork(bridge, subnet, lastBridge);
  return removeNetworkRules(bridge, subnet, lastBridge);
}

export function portComment(containerId: string): string {
  return `tspod:${containerId}`;
}

export function portRule(p: PortMapping, ip: string, containerId: string): string {
  const daddr = p.hostIp === '0.0.0.0' ? '' : `ip daddr ${p.hostIp} `;
  return `add rule ip ${TABLE} ports ${daddr}${p.protocol} dport ${p.hostPort} dnat to ${ip}:${p.containerPort} comment "${portComment(containerId)}"`;
}

/**
 * Installs the table (idempotently), the network's set elements, the container's port rules and
 * `extra` lines (the foreign-chain allowances of a new bridge), in one transaction.
 */
export async function installRules(bridge: string, subnet: string, ports: string[], extra = ''): Promise<void> {
  await nft(`install nftables rules for ${bridge}`, BASE
    + `add element ip ${TABLE} subnets { ${subnet} }\nadd element ip ${TABLE} bridges { "${bridge}" }\n`
    + ports.map((r) => r + '\n').join('') + extra);
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Deletes the port rules of a container (found by comment). */
export async function removePortRules(containerId: string): Promise<void> {
  const list = await nftJson(['chain', 'ip', TABLE, 'ports']);
  if (!list) return;
  const handles = list.nftables.map((o) => (o as Json).rule).filter((r: Json | undefined) => r && r.comment === portComment(containerId)).map((r: Json) => r.handle as number);
  if (handles.length) await nft(`remove port rules of ${containerId.slice(0, 12)}`, handles.map((h) => `delete rule ip ${TABLE} ports handle ${h}\n`).join(''));
}

/**
 * Removes a network's set elements, or the whole table when `lastBridge` (no tspod instance on the
 * host uses any bridge any more: see the claims in store.ts). One nft call; a missing table is fine.
 */
export async function removeNetworkRules(bridge: string, subnet: string, lastBridge: boolean): Promise<void> {
  const r = await runNft(networkRulesRemoval(bridge, subnet, lastBridge));
  if (r.code !== 0 && !/No such file or directory|does not exist/i.test(r.stderr)) {
    throw fail('ESYS', `remove nftables rules of ${bridge}: ${r.stderr.trim()}`);
  }
}

/** The nft script of removeNetworkRules. */
export function networkRulesRemoval(bridge: string, subnet: string, lastBridge: boolean): string {
  return lastBridge
    ? `delete table ip ${TABLE}\n`
    : `delete element ip ${TABLE} bridges { "${bridge}" }\ndelete element ip ${TABLE} subnets { ${subnet} }\n`;
}

/** Other tables' forward base chains with policy drop (iptables-nft FORWARD DROP and the like). */
async function droppingForwardChains(): Promise<{ family: string; table: string; name: string }[]> {
  const all = await nftJson(['chains']);
  if (!all) return [];
  return all.nftables.map((o) => (o as Json).chain as Json | undefined)
    .filter((c): c is Json => !!c && c.hook === 'forward' && c.policy === 'drop' && c.table !== TABLE && (c.family === 'ip' || c.family === 'inet'))
    .map((c) => ({ family: c.family, table: c.table, name: c.name }));
}

/**
 * The nft lines that let a bridge's traffic through forward chains of other tables whose policy is
 * drop ('' when there are none): one transaction after the table's (setUpBridge).
 */
export async function foreignAllowances(bridge: string): Promise<string> {
  const chains = await droppingForwardChains();
  const c = `comment "tspod:${bridge}"`;
  return chains.map((ch) =>
    `insert rule ${ch.family} ${ch.table} ${ch.name} iifname "${bridge}" accept ${c}\n`
    + `insert rule ${ch.family} ${ch.table} ${ch.name} oifname "${bridge}" accept ${c}\n`).join('');
}

/** Removes the rules allowThroughForeignDrop inserted (in any table). */
export async function removeForeignAllows(bridge: string): Promise<void> {
  const all = await nftJson(['ruleset']);
  if (!all) return;
  const rules = all.nftables.map((o) => (o as Json).rule as Json | undefined)
    .filter((r): r is Json => !!r && r.comment === `tspod:${bridge}` && r.table !== TABLE);
  if (rules.length) {
    await nft(`remove ${bridge} forward allowances`, rules.map((r) => `delete rule ${r.family} ${r.table} ${r.chain} handle ${r.handle}\n`).join(''));
  }
}

/** Enables IPv4 forwarding (left on afterwards, as docker and podman do: other software may rely on it by then). */
export function enableForwarding(): void {
  // Synchronous: a proc file read is microseconds, an awaited one a thread-pool round trip.
  if (readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() !== '1') writeFileSync('/proc/sys/net/ipv4/ip_forward', '1\n');
}

