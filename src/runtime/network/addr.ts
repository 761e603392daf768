/**
 * IPv4 arithmetic for the bridge networks: CIDR parsing, address ↔ integer, host ranges, and the
 * MAC derived from an address (02:42 + the four bytes, as docker does, so a reused address keeps
 * its MAC and neighbours' caches stay right).
 */
import { fail } from '../../util/errors.js';

export interface Subnet {
  /** Network address as an unsigned 32-bit integer. */
  base: number;
  prefix: number;
  /** "10.89.0.0/24" */
  cidr: string;
}

export function parseIPv4(s: string, what = 'address'): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) throw fail('EINVAL', `invalid ${what} "${s}": want an IPv4 address such as 10.89.0.2`);
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) throw fail('EINVAL', `invalid ${what} "${s}": each part must be 0-255`);
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses "10.89.0.0/24"; host bits must be zero; prefixes /8 … /30. */
export function parseSubnet(s: string): Subnet {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s);
  if (!m) throw fail('EINVAL', `invalid subnet "${s}": want CIDR notation such as 10.89.1.0/24`);
  const addr = parseIPv4(m[1]!, 'subnet');
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 30) throw fail('EINVAL', `invalid subnet "${s}": the prefix length must be between 8 and 30`);
  if ((addr & ~mask(prefix)) >>> 0 !== 0) {
    throw fail('EINVAL', `invalid subnet "${s}": host bits are set (did you mean ${formatIPv4((addr & mask(prefix)) >>> 0)}/${prefix}?)`);
  }
  return { base: addr, prefix, cidr: `${formatIPv4(addr)}/${prefix}` };
}

export function contains(net: Subnet, ip: number): boolean {
  return ((ip & mask(net.prefix)) >>> 0) === net.base;
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & mask(p)) >>> 0) === ((b.base & mask(p)) >>> 0);
}

/** First and last usable host addresses (network and broadcast excluded). */
export function hostRange(net: Subnet): { first: number; last: number } {
  const size = 2 ** (32 - net.prefix);
  return { first: net.base + 1, last: net.base + size - 2 };
}

/** docker's MAC for an address: 02:42:a.b.c.d in hex (locally administered, unicast). */
export function macFor(ip: number): string {
  const bytes = [0x02, 0x42, ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}
