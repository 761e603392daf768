/**
 * The library API of networks (issue 6): tspod network create/ls/inspect/rm/connect/disconnect.
 * Re-exported by src/index.ts. Every call first reconciles (cleans what a crashed tspod left).
 */
import { defaultRoots, type EngineRoots } from './state/paths.js';
import {
  createNetwork as create, inspectNetwork as inspect, listNetworks as list, reconcileNetworks, removeNetwork as remove,
  type Lease, type NetworkDef, type NetworkSummary,
} from './runtime/network/index.js';
import { connectContainer, disconnectContainer } from './container/network.js';

export type { Lease as NetworkLease, NetworkDef, NetworkSummary };

interface Common {
  roots?: EngineRoots;
}

const rootOf = (o: Common) => (o.roots ?? defaultRoots()).root;

export async function createNetwork(name: string, opts: Common & { subnet?: string; gateway?: string; bridge?: string } = {}): Promise<NetworkDef> {
  await reconcileNetworks(rootOf(opts));
  return create(rootOf(opts), { name, subnet: opts.subnet, gateway: opts.gateway, bridge: opts.bridge });
}

export async function listNetworks(opts: Common = {}): Promise<NetworkSummary[]> {
  await reconcileNetworks(rootOf(opts));
  return list(rootOf(opts));
}

export async function inspectNetwork(name: string, opts: Common = {}): Promise<NetworkSummary> {
  await reconcileNetworks(rootOf(opts));
  return inspect(rootOf(opts), name);
}

export async function removeNetwork(name: string, opts: Common = {}): Promise<void> {
  return remove(rootOf(opts), name);
}

export async function connectNetwork(network: string, container: string, opts: Common & { ip?: string; aliases?: string[] } = {}): Promise<Lease> {
  return connectContainer(opts.roots ?? defaultRoots(), container, network, { ip: opts.ip, aliases: opts.aliases });
}

export async function disconnectNetwork(network: string, container: string, opts: Common = {}): Promise<void> {
  return disconnectContainer(opts.roots ?? defaultRoots(), container, network);
}

/** A network as `docker network inspect` shows it (names and shape of docker's API; tspod's bridge driver only). */
export function dockerNetwork(n: NetworkSummary): Record<string, unknown> {
  const prefix = n.subnet.split('/')[1] ?? '32';
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: 'local',
    Driver: n.driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: n.subnet, Gateway: n.gateway }] },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: Object.fromEntries(n.containers.map((c) => [c.id, { Name: c.name, EndpointID: '', MacAddress: c.mac, IPv4Address: `${c.ip}/${prefix}`, IPv6Address: '' }])),
    Options: { 'com.docker.network.bridge.name': n.bridge },
    Labels: {},
  };
}
