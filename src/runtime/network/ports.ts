/**
 * Published ports: docker's -p syntax, -P with the image's EXPOSE, and host port checks.
 *   -p CTR[/proto]                        random host port on every address
 *   -p HOST:CTR[/proto]                   that host port on every address
 *   -p IP:HOST:CTR[/proto], -p IP::CTR    one host address (127.0.0.1 included: see nft.ts)
 */
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { fail, messageOf } from '../../util/errors.js';
import { formatIPv4, parseIPv4 } from './addr.js';
import type { PortMapping } from './store.js';

export interface PortRequest {
  hostIp: string;
  /** 0 = pick a free one. */
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

function port(s: string, spec: string, what: string, allowZero = false): number {
  if (!/^\d{1,5}$/.test(s)) throw fail('EINVAL', `invalid -p "${spec}": ${what} "${s}" is not a port number`);
  const n = Number(s);
  if (n > 65535 || (n === 0 && !allowZero)) throw fail('EINVAL', `invalid -p "${spec}": ${what} ${n} is out of range 1-65535`);
  return n;
}

export function parsePublish(spec: string): PortRequest {
  let rest = spec;
  let protocol: 'tcp' | 'udp' = 'tcp';
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1).toLowerCase();
    if (p !== 'tcp' && p !== 'udp') throw fail('EINVAL', `invalid -p "${spec}": protocol "${p}" is not tcp or udp`);
    protocol = p;
    rest = rest.slice(0, slash);
  }
  if (rest.includes('-')) throw fail('EINVAL', `invalid -p "${spec}": port ranges are not supported`);
  const parts = rest.split(':');
  let hostIp = '0.0.0.0';
  let hostPort = 0;
  let ctr: string;
  if (parts.length === 1) ctr = parts[0]!;
  else if (parts.length === 2) {
    hostPort = port(parts[0]!, spec, 'host port');
    ctr = parts[1]!;
  } else if (parts.length === 3) {
    hostIp = formatIPv4(parseIPv4(parts[0]!.replace(/^\[(.*)\]$/, '$1'), `host address in -p "${spec}"`));
    hostPort = parts[1] === '' ? 0 : port(parts[1]!, spec, 'host port');
    ctr = parts[2]!;
  } else throw fail('EINVAL', `invalid -p "${spec}": want [HOSTIP:][HOSTPORT:]CONTAINERPORT[/PROTOCOL]`);
  return { hostIp, hostPort, containerPort: port(ctr, spec, 'container port'), protocol };
}

/** -P: every port the image EXPOSEs ("80/tcp", "53/udp", "8080"), on a random host port. */
export function exposedPorts(exposed: Record<string, unknown> | undefined): PortRequest[] {
  return Object.keys(exposed ?? {}).map((k) => {
    const [p, proto = 'tcp'] = k.split('/');
    if (proto !== 'tcp' && proto !== 'udp') throw fail('EINVAL', `image EXPOSE "${k}": protocol must be tcp or udp`);
    return { hostIp: '0.0.0.0', hostPort: 0, containerPort: port(p ?? '', k, 'exposed port'), protocol: proto };
  });
}

/** Binds (and closes) hostIp:hostPort to check it is free on the host; with port 0 returns a free one. */
export function probePort(hostIp: string, hostPort: number, protocol: 'tcp' | 'udp'): Promise<number> {
  return new Promise((resolve, reject) => {
    const bad = (err: Error) => reject(fail('EBUSY', `publish ${hostIp}:${hostPort}/${protocol}: ${(err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'address already in use' : messageOf(err)}`, err));
    if (protocol === 'tcp') {
      const srv = createServer();
      srv.once('error', bad);
      srv.listen({ host: hostIp, port: hostPort, exclusive: true }, () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    } else {
      const sock = createSocket('udp4');
      sock.once('error', bad);
      sock.bind({ address: hostIp, port: hostPort, exclusive: true }, () => {
        const p = sock.address().port;
        sock.close(() => resolve(p));
      });
    }
  });
}

/**
 * Turns requests into mappings: checks each fixed port against the ports other containers hold and
 * against the host's listeners, and picks free ports for the random ones.
 */
export async function allocatePorts(reqs: PortRequest[], taken: PortMapping[]): Promise<PortMapping[]> {
  const out: PortMapping[] = [];
  const clash = (m: PortRequest) => [...taken, ...out].find((t) => t.protocol === m.protocol && t.hostPort === m.hostPort
    && (t.hostIp === m.hostIp || t.hostIp === '0.0.0.0' || m.hostIp === '0.0.0.0'));
  for (const r of reqs) {
    if (r.hostPort !== 0) {
      const c = clash(r);
      if (c) throw fail('EBUSY', `publish ${r.hostIp}:${r.hostPort}/${r.protocol}: port is already allocated`);
      await probePort(r.hostIp, r.hostPort, r.protocol);
      out.push({ ...r });
      continue;
    }
    for (let i = 0; ; i++) {
      const p = await probePort(r.hostIp, 0, r.protocol);
      if (!clash({ ...r, hostPort: p })) {
        out.push({ ...r, hostPort: p });
        break;
      }
      if (i > 20) throw fail('EBUSY', `publish ${r.hostIp}::${r.containerPort}/${r.protocol}: no free host port found`);
    }
  }
  return out;
}
