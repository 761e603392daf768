// The launcher's veth record as TypeScript writes it, and who keeps a lease alive (the init, or a
// detached container's monitor, so that the lease outlives the restarts of its init).
import { describe, expect, it } from 'vitest';
import { vethRecord } from '../../../../src/runtime/network/bridge.js';
import { leaseVethRecord } from '../../../../src/runtime/network/index.js';
import { claimOf, leaseAlive, NetworkStore, processStartTime, type Lease } from '../../../../src/runtime/network/store.js';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const lease = (over: Partial<Lease> = {}): Lease => ({
  network: 'bridge', bridge: 'tspod0', ip: '10.89.0.7', prefix: 24, gateway: '10.89.0.1', mac: '02:42:0a:59:00:07',
  containerId: 'c'.repeat(64), containerName: 'web', ifname: 'eth0', hostVeth: 'vethccccccccc0',
  pid: 999_999_999, startTime: '1', ports: [], aliases: [], ...over,
});

describe('veth record', () => {
  it('is one line: veth HOSTIF PEERIF MAC MTU BRIDGE ADDR/PREFIX GATEWAY', () => {
    expect(leaseVethRecord(lease())).toBe('veth vethccccccccc0 eth0 02:42:0a:59:00:07 1500 tspod0 10.89.0.7/24 10.89.0.1\n');
  });
  it('has no gateway (-) for a second interface', () => {
    expect(leaseVethRecord(lease({ ifname: 'eth1' }))).toBe('veth vethccccccccc0 eth1 02:42:0a:59:00:07 1500 tspod0 10.89.0.7/24 -\n');
  });
  it('percent-encodes its fields like every plan field', () => {
    expect(vethRecord({ bridge: 'br 0', hostVeth: 'v%', ifname: '-', mac: 'm', ip: '10.0.0.2', prefix: 8 })).toBe('veth v%25 %2D m 1500 br%200 10.0.0.2/8 -\n');
  });
});

describe('lease owner', () => {
  const me = { pid: process.pid, startTime: processStartTime(process.pid)! };
  it('without an owner, the init (pid + start time) keeps the lease', () => {
    expect(leaseAlive(lease({ pid: me.pid, startTime: me.startTime }))).toBe(true);
    expect(leaseAlive(lease({ pid: me.pid, startTime: String(Number(me.startTime) + 1) }))).toBe(false);
    expect(claimOf(lease({ pid: me.pid, startTime: me.startTime }))).toEqual({ bridge: 'tspod0', ip: '10.89.0.7', pid: me.pid, startTime: me.startTime });
  });
  it('with an owner (the monitor), the owner does, whatever became of the init', () => {
    const l = lease({ ownerPid: me.pid, ownerStart: me.startTime }); // its init (pid 999999999) is gone
    expect(leaseAlive(l)).toBe(true);
    expect(claimOf(l)).toEqual({ bridge: 'tspod0', ip: '10.89.0.7', pid: me.pid, startTime: me.startTime });
    expect(leaseAlive(lease({ pid: me.pid, startTime: me.startTime, ownerPid: me.pid, ownerStart: '1' }))).toBe(false);
  });
});

describe('leases.json', () => {
  it('is replaced atomically (no temporary file left) and read back; a torn file (only a host crash makes one) reads as no lease', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tspod-leases-'));
    try {
      const store = new NetworkStore(root);
      expect(await store.leases()).toEqual([]);
      await store.saveLeases([lease()]);
      await store.saveLeases([lease(), lease({ ip: '10.89.0.8' })]);
      expect((await store.leases()).map((l) => l.ip)).toEqual(['10.89.0.7', '10.89.0.8']);
      expect(readdirSync(join(root, 'networks'))).toEqual(['leases.json']);
      writeFileSync(join(root, 'networks', 'leases.json'), '{"leases": [');
      expect(await store.leases()).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
