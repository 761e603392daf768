/**
 * The default network, "bridge": a Linux bridge `tspod0` on 10.89.0.0/24 (gateway 10.89.0.1).
 * 10.89/24 sits next to podman's 10.88/16 and away from docker's 172.17/16 and common LANs
 * (192.168/16). Configurable in the engine config file ($TSPOD_CONFIG):
 *   { "defaultNetwork": { "bridge": "tspod0", "subnet": "10.89.0.0/24", "gateway": "10.89.0.1" } }
 * and "networkSubnetPool": "10.89.0.0/16" — user networks without --subnet get the next free /24 of it.
 */
import { readFileSync } from 'node:fs';
import { fail, messageOf } from '../../util/errors.js';
import { contains, formatIPv4, hostRange, parseIPv4, parseSubnet } from './addr.js';
import type { NetworkDef } from './store.js';

export const DEFAULT_NETWORK = 'bridge';
export const DEFAULT_BRIDGE = 'tspod0';
export const DEFAULT_SUBNET = '10.89.0.0/24';
export const DEFAULT_POOL = '10.89.0.0/16';

export interface NetworkConfig {
  defaultNetwork: NetworkDef;
  /** User networks without --subnet get a free /24 from this range. */
  pool: string;
}

export function checkBridgeName(name: string, where: string): void {
  if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(name) || name === '.' || name === '..') {
    throw fail('EINVAL', `${where}: invalid interface name "${name}" (1-15 of [a-zA-Z0-9_.-], not . or ..)`);
  }
}

/** Validates subnet and gateway; the gateway defaults to the first host address. */
export function subnetAndGateway(subnet: string, gateway: string | undefined, where: string): { subnet: string; gateway: string } {
  let net;
  try {
    net = parseSubnet(subnet);
  } catch (err) {
    throw fail('EINVAL', `${where}: ${messageOf(err)}`, err);
  }
  const { first, last } = hostRange(net);
  if (gateway === undefined) return { subnet: net.cidr, gateway: formatIPv4(first) };
  const gw = parseIPv4(gateway, 'gateway');
  if (!contains(net, gw) || gw < first || gw > last) throw fail('EINVAL', `${where}: gateway ${gateway} is not a host address of ${net.cidr}`);
  return { subnet: net.cidr, gateway: formatIPv4(gw) };
}

export async function loadNetworkConfig(env: NodeJS.ProcessEnv = process.env): Promise<NetworkConfig> {
  const file = env.TSPOD_CONFIG;
  let raw: Record<string, unknown> = {};
  if (file) {
    try {
      raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>; // small; read at every start and stop
    } catch (err) {
      throw fail('EINVAL', `load engine config ${file}: ${messageOf(err)}`, err);
    }
  }
  const where = `load engine config ${file}: defaultNetwork`;
  const d = (raw.defaultNetwork ?? {}) as Record<string, unknown>;
  if (typeof d !== 'object' || d === null || Array.isArray(d)) throw fail('EINVAL', `${where}: want an object`);
  for (const k of ['bridge', 'subnet', 'gateway'] as const) {
    if (d[k] !== undefined && typeof d[k] !== 'string') throw fail('EINVAL', `${where}.${k}: want a string`);
  }
  const bridge = (d.bridge as string | undefined) ?? DEFAULT_BRIDGE;
  checkBridgeName(bridge, where);
  const sg = subnetAndGateway((d.subnet as string | undefined) ?? DEFAULT_SUBNET, d.gateway as string | undefined, where);
  const pool = raw.networkSubnetPool ?? DEFAULT_POOL;
  if (typeof pool !== 'string') throw fail('EINVAL', `load engine config ${file}: networkSubnetPool: want a CIDR string`);
  parseSubnet(pool);
  return {
    defaultNetwork: {
      name: DEFAULT_NETWORK, id: 'default', driver: 'bridge', bridge, ...sg, created: '1970-01-01T00:00:00.000Z', builtin: true,
    },
    pool,
  };
}
