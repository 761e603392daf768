// Pure parts of the bridge networking: address arithmetic, -p parsing, resolv.conf and hosts texts,
// --network values.
import { describe, expect, it } from 'vitest';
import { contains, formatIPv4, hostRange, macFor, overlaps, parseIPv4, parseSubnet } from '../../../../src/runtime/network/addr.js';
import { exposedPorts, parsePublish } from '../../../../src/runtime/network/ports.js';
import { baseHosts, containerResolvConf, parseAddHost, DEFAULT_DNS } from '../../../../src/runtime/network/etc.js';
import { parseNetworkMode } from '../../../../src/runtime/network/index.js';
import { subnetAndGateway } from '../../../../src/runtime/network/config.js';
import { portRule } from '../../../../src/runtime/network/nft.js';

describe('addresses', () => {
  it('parses and formats IPv4 and subnets', () => {
    expect(formatIPv4(parseIPv4('10.89.0.2'))).toBe('10.89.0.2');
    expect(formatIPv4(parseIPv4('255.255.255.255'))).toBe('255.255.255.255');
    expect(() => parseIPv4('10.89.0.256')).toThrow(/0-255/);
    expect(() => parseIPv4('10.89.0')).toThrow(/invalid address/);
    const n = parseSubnet('10.89.0.0/24');
    expect(hostRange(n)).toEqual({ first: parseIPv4('10.89.0.1'), last: parseIPv4('10.89.0.254') });
    expect(contains(n, parseIPv4('10.89.0.77'))).toBe(true);
    expect(contains(n, parseIPv4('10.89.1.1'))).toBe(false);
    expect(() => parseSubnet('10.89.0.1/24')).toThrow(/host bits are set \(did you mean 10.89.0.0\/24\?\)/);
    expect(() => parseSubnet('10.0.0.0/31')).toThrow(/prefix length/);
    expect(overlaps(parseSubnet('10.89.0.0/16'), parseSubnet('10.89.3.0/24'))).toBe(true);
    expect(overlaps(parseSubnet('10.89.0.0/24'), parseSubnet('10.89.1.0/24'))).toBe(false);
  });

  it('derives the MAC from the address, as docker does', () => {
    expect(macFor(parseIPv4('10.89.0.2'))).toBe('02:42:0a:59:00:02');
    expect(macFor(parseIPv4('172.17.0.255'))).toBe('02:42:ac:11:00:ff');
  });

  it('checks a gateway against its subnet', () => {
    expect(subnetAndGateway('10.89.7.0/24', undefined, 'x')).toEqual({ subnet: '10.89.7.0/24', gateway: '10.89.7.1' });
    expect(subnetAndGateway('10.89.7.0/24', '10.89.7.254', 'x').gateway).toBe('10.89.7.254');
    expect(() => subnetAndGateway('10.89.7.0/24', '10.89.8.1', 'x')).toThrow(/gateway 10.89.8.1 is not a host address of 10.89.7.0\/24/);
    expect(() => subnetAndGateway('10.89.7.0/24', '10.89.7.255', 'x')).toThrow(/not a host address/);
  });
});

describe('-p and -P', () => {
  it('parses docker syntax', () => {
    expect(parsePublish('80')).toEqual({ hostIp: '0.0.0.0', hostPort: 0, containerPort: 80, protocol: 'tcp' });
    expect(parsePublish('8080:80')).toEqual({ hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, protocol: 'tcp' });
    expect(parsePublish('127.0.0.1:18080:80')).toEqual({ hostIp: '127.0.0.1', hostPort: 18080, containerPort: 80, protocol: 'tcp' });
    expect(parsePublish('127.0.0.1::53/udp')).toEqual({ hostIp: '127.0.0.1', hostPort: 0, containerPort: 53, protocol: 'udp' });
    expect(parsePublish('5353:53/UDP').protocol).toBe('udp');
  });

  it('names the bad part', () => {
    expect(() => parsePublish('80/sctp')).toThrow('invalid -p "80/sctp": protocol "sctp" is not tcp or udp');
    expect(() => parsePublish('70000:80')).toThrow(/host port 70000 is out of range/);
    expect(() => parsePublish('x:80')).toThrow(/host port "x" is not a port number/);
    expect(() => parsePublish('1.2.3:80:80')).toThrow(/invalid host address/);
    expect(() => parsePublish('a:b:c:d')).toThrow(/want \[HOSTIP:\]/);
    expect(() => parsePublish('8000-8010:80')).toThrow(/ranges are not supported/);
  });

  it('-P publishes every EXPOSEd port on a random host port', () => {
    expect(exposedPorts({ '80/tcp': {}, '53/udp': {}, '8080': {} })).toEqual([
      // integer-like keys come first in a JS object, as JSON.parse builds it
      { hostIp: '0.0.0.0', hostPort: 0, containerPort: 8080, protocol: 'tcp' },
      { hostIp: '0.0.0.0', hostPort: 0, containerPort: 80, protocol: 'tcp' },
      { hostIp: '0.0.0.0', hostPort: 0, containerPort: 53, protocol: 'udp' },
    ]);
    expect(exposedPorts(undefined)).toEqual([]);
  });

  it('makes one DNAT rule per port, bound to the host address when one is given', () => {
    expect(portRule({ hostIp: '127.0.0.1', hostPort: 18080, containerPort: 80, protocol: 'tcp' }, '10.89.0.2', 'abc'))
      .toBe('add rule ip tspod ports ip daddr 127.0.0.1 tcp dport 18080 dnat to 10.89.0.2:80 comment "tspod:abc"');
    expect(portRule({ hostIp: '0.0.0.0', hostPort: 5353, containerPort: 53, protocol: 'udp' }, '10.89.0.3', 'abc'))
      .toBe('add rule ip tspod ports udp dport 5353 dnat to 10.89.0.3:53 comment "tspod:abc"');
  });
});

describe('resolv.conf', () => {
  const resolved = 'nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n';
  const upstream = 'nameserver 192.0.2.10\nnameserver 192.0.2.11\nsearch corp.example\n';

  it('replaces systemd-resolved\'s stub by the upstream servers', () => {
    expect(containerResolvConf('bridge', resolved, upstream, {}))
      .toBe('search corp.example\nnameserver 192.0.2.10\nnameserver 192.0.2.11\noptions edns0 trust-ad\n');
  });

  it('falls back to docker\'s public defaults when only loopback resolvers are known', () => {
    expect(containerResolvConf('bridge', 'nameserver 127.0.0.1\nnameserver ::1\n', undefined, {}))
      .toBe(DEFAULT_DNS.map((d) => `nameserver ${d}\n`).join(''));
    expect(containerResolvConf('none', '', undefined, {})).toBe('nameserver 8.8.8.8\nnameserver 8.8.4.4\n');
  });

  it('keeps non-loopback servers and drops loopback ones next to them', () => {
    expect(containerResolvConf('bridge', 'nameserver 127.0.0.11\nnameserver 10.255.255.53\n', undefined, {})).toBe('nameserver 10.255.255.53\n');
  });

  it('--dns, --dns-search and --dns-option replace their parts', () => {
    expect(containerResolvConf('bridge', resolved, upstream, { dns: ['10.0.0.53'], dnsSearch: ['a.test', 'b.test'], dnsOptions: ['ndots:2'] }))
      .toBe('search a.test b.test\nnameserver 10.0.0.53\noptions ndots:2\n');
  });

  it('uses the host\'s servers as they are with --network host', () => {
    expect(containerResolvConf('host', resolved, upstream, {})).toBe('search corp.example\nnameserver 127.0.0.53\noptions edns0 trust-ad\n');
  });
});

describe('hosts', () => {
  it('lists localhost, --add-host entries and the container\'s own address', () => {
    const text = baseHosts('web', '10.89.0.5', ['db:10.1.2.3', 'v6:[2001:db8::1]']);
    expect(text.split('\n')).toEqual(expect.arrayContaining(['127.0.0.1\tlocalhost', '10.1.2.3\tdb', '2001:db8::1\tv6', '10.89.0.5\tweb']));
    expect(text.trimEnd().split('\n').at(-1)).toBe('10.89.0.5\tweb');
    expect(baseHosts('web', undefined, [])).toContain('127.0.1.1\tweb\n');
    expect(() => parseAddHost('nocolon')).toThrow('invalid --add-host "nocolon": want NAME:IP');
  });
});

describe('--network values', () => {
  it('maps docker\'s modes', () => {
    expect(parseNetworkMode(undefined)).toEqual({ kind: 'bridge', network: 'bridge' });
    expect(parseNetworkMode('none')).toEqual({ kind: 'none' });
    expect(parseNetworkMode('host')).toEqual({ kind: 'host' });
    expect(parseNetworkMode('container:web')).toEqual({ kind: 'container', container: 'web' });
    expect(parseNetworkMode('backend')).toEqual({ kind: 'bridge', network: 'backend' });
    expect(() => parseNetworkMode('bad name')).toThrow(/invalid network name "bad name"/);
  });
});
