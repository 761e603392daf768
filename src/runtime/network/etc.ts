/**
 * /etc/hosts, /etc/hostname and /etc/resolv.conf of a container, written on the host and
 * bind-mounted in, as docker does.
 *
 * resolv.conf: the host's, with loopback nameservers removed (127.0.0.53 of systemd-resolved cannot
 * be reached from another network namespace; when that is all the host has, the upstream servers
 * from /run/systemd/resolve/resolv.conf are used, as docker does); none left → docker's defaults
 * 8.8.8.8 and 8.8.4.4. --dns replaces the nameservers, --dns-search the search list,
 * --dns-option the options. With --network host the host's file is used as it is (plus overrides).
 *
 * hosts: localhost lines, --add-host entries, then the container's own address and name; on a
 * user-defined network a section of the other containers' names follows, kept up to date in
 * place (the file is bind-mounted, so it is rewritten, not replaced).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fail } from '../../util/errors.js';
import { parseIPv4 } from './addr.js';

export type NetworkKind = 'none' | 'host' | 'bridge' | 'container';

export interface DnsOptions {
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
}

export interface EtcFiles {
  hosts: string;
  hostname: string;
  resolvConf: string;
}

export const DEFAULT_DNS = ['8.8.8.8', '8.8.4.4'];
const PEERS_MARK = '# tspod: other containers on the network';

/** "name:ip" (docker's --add-host); ip may also be IPv6. */
export function parseAddHost(s: string): { name: string; ip: string } {
  const i = s.indexOf(':');
  const name = i < 0 ? '' : s.slice(0, i);
  const ip = i < 0 ? '' : s.slice(i + 1).replace(/^\[(.*)\]$/, '$1');
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name) || ip === '' || !(/^[0-9.]+$/.test(ip) ? (parseIPv4(ip, 'address'), true) : /^[0-9a-fA-F:]+$/.test(ip))) {
    throw fail('EINVAL', `invalid --add-host "${s}": want NAME:IP`);
  }
  return { name, ip };
}

export function baseHosts(hostname: string, ip: string | undefined, addHosts: string[]): string {
  let text = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n';
  for (const h of addHosts.map(parseAddHost)) text += `${h.ip}\t${h.name}\n`;
  text += ip ? `${ip}\t${hostname}\n` : `127.0.1.1\t${hostname}\n`;
  return text;
}

/** Replaces the peers section of a hosts file in place (same inode: it is bind-mounted into a running container). */
export async function writePeers(hostsFile: string, peers: { ip: string; names: string[] }[]): Promise<void> {
  let text: string;
  try {
    text = await readFile(hostsFile, 'utf8');
  } catch {
    return; // the container is being removed
  }
  const cut = text.indexOf(PEERS_MARK);
  if (cut >= 0) text = text.slice(0, cut);
  if (peers.length) text += `${PEERS_MARK}\n` + peers.map((p) => `${p.ip}\t${p.names.join(' ')}\n`).join('');
  await writeFile(hostsFile, text);
}

/** The lines of a resolv.conf: nameservers, search domains, options. */
export function parseResolvConf(text: string): { nameservers: string[]; search: string[]; options: string[]; other: string[] } {
  const out = { nameservers: [] as string[], search: [] as string[], options: [] as string[], other: [] as string[] };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const [kw, ...rest] = line.split(/\s+/);
    if (kw === 'nameserver' && rest[0]) out.nameservers.push(rest[0]);
    else if (kw === 'search' || kw === 'domain') out.search = rest;
    else if (kw === 'options') out.options.push(...rest);
    else out.other.push(line);
  }
  return out;
}

function isLoopback(ns: string): boolean {
  return /^127\./.test(ns) || ns === '::1' || ns === '0:0:0:0:0:0:0:1';
}

/**
 * The container's resolv.conf text. `hostText` is the host's /etc/resolv.conf; `upstreamText`
 * systemd-resolved's list of upstream servers, if the host has one.
 */
export function containerResolvConf(kind: NetworkKind, hostText: string, upstreamText: string | undefined, opts: DnsOptions): string {
  const host = parseResolvConf(hostText);
  let nameservers = host.nameservers;
  if (kind !== 'host') {
    if (nameservers.length > 0 && nameservers.every(isLoopback) && upstreamText !== undefined) {
      nameservers = parseResolvConf(upstreamText).nameservers;
    }
    nameservers = nameservers.filter((n) => !isLoopback(n));
    if (nameservers.length === 0) nameservers = DEFAULT_DNS;
  }
  if (opts.dns?.length) nameservers = opts.dns;
  const search = opts.dnsSearch?.length ? opts.dnsSearch.filter((s) => s !== '.') : host.search;
  const options = opts.dnsOptions?.length ? opts.dnsOptions : host.options;
  let text = '';
  if (search.length) text += `search ${search.join(' ')}\n`;
  for (const n of nameservers) text += `nameserver ${n}\n`;
  if (options.length) text += `options ${options.join(' ')}\n`;
  return text;
}

export function checkDns(opts: DnsOptions): void {
  for (const d of opts.dns ?? []) {
    if (!/^[0-9.]+$/.test(d) && !/^[0-9a-fA-F:]+$/.test(d)) throw fail('EINVAL', `invalid --dns "${d}": want an IP address`);
    if (/^[0-9.]+$/.test(d)) parseIPv4(d, '--dns address');
  }
  for (const s of opts.dnsSearch ?? []) {
    if (!/^[a-zA-Z0-9.-]+$/.test(s)) throw fail('EINVAL', `invalid --dns-search "${s}": want a domain name`);
  }
  for (const o of opts.dnsOptions ?? []) {
    if (!/^[a-zA-Z0-9_:.-]+$/.test(o)) throw fail('EINVAL', `invalid --dns-option "${o}"`);
  }
}

/**
 * Writes hosts, hostname and resolv.conf into the container's directory `dir` (and the empty
 * directory the overlay needs for an image without layers). For a bridge network the hosts file
 * gets its address later, from setupNetwork().
 */
export async function writeEtcFiles(dir: string, hostname: string, kind: NetworkKind, opts: DnsOptions & { addHosts?: string[] } = {}): Promise<EtcFiles> {
  const hosts = join(dir, 'hosts');
  const hostnameFile = join(dir, 'hostname');
  const resolvConf = join(dir, 'resolv.conf');
  let hostsText: string;
  if (kind === 'host') {
    hostsText = await readFile('/etc/hosts', 'utf8').catch(() => '127.0.0.1\tlocalhost\n');
    for (const h of (opts.addHosts ?? []).map(parseAddHost)) hostsText += `${h.ip}\t${h.name}\n`;
  } else {
    hostsText = baseHosts(hostname, undefined, opts.addHosts ?? []);
  }
  await writeFile(hosts, hostsText);
  await writeFile(hostnameFile, hostname + '\n');
  const hostResolv = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  const upstream = await readFile('/run/systemd/resolve/resolv.conf', 'utf8').catch(() => undefined);
  await writeFile(resolvConf, containerResolvConf(kind, hostResolv, upstream, opts));
  await mkdir(join(dir, 'empty'), { recursive: true });
  return { hosts, hostname: hostnameFile, resolvConf };
}
