// The launcher's `veth` records (native/netlink.c) on a real kernel: the pair made with rtnetlink, the
// peer inside the init's network namespace with its name, MAC, MTU, address and default route, the
// host end on the bridge; a stale host link of the same name replaced; errors as one line. The
// bridge is this test's own (10.199.x.0/24, no traffic leaves it), removed at the end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { launch } from '../../../src/runtime/launcher.js';
import { vethRecord } from '../../../src/runtime/network/bridge.js';
import { TspodError } from '../../../src/util/errors.js';
import { firstReason, gated, haveCommand, isRoot } from '../../support/caps.js';
import { basePlan, runCaptured, useBusyboxRootfs, waitFor } from './helpers.js';
import { rejection } from '../../support/errors.js';

const reason = firstReason(isRoot(), haveCommand('busybox'), haveCommand('make'), haveCommand('ip'));

const tag = randomBytes(2).toString('hex');
const BRIDGE = `ltbr${tag}`;
const SUBNET = `10.199.${parseInt(tag.slice(0, 2), 16)}`;
const myLinks = () => readdirSync('/sys/class/net').filter((n) => n.includes(tag));

describe.skipIf(reason)(gated('launcher: veth records (rtnetlink)', reason), () => {
  const { rootfs } = useBusyboxRootfs();

  beforeAll(() => {
    execFileSync('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    execFileSync('ip', ['addr', 'add', `${SUBNET}.1/24`, 'dev', BRIDGE]);
    execFileSync('ip', ['link', 'set', BRIDGE, 'up']);
  });
  afterAll(() => {
    for (const l of myLinks()) spawnSync('ip', ['link', 'del', l]);
    expect(myLinks()).toEqual([]);
  });

  const record = (host: string, over: Partial<Parameters<typeof vethRecord>[0]> = {}) =>
    vethRecord({ bridge: BRIDGE, hostVeth: host, ifname: 'eth0', mac: '02:42:0a:c7:00:05', ip: `${SUBNET}.5`, prefix: 24, gateway: `${SUBNET}.1`, ...over });

  it('creates the pair: eth0 inside with its MAC, MTU, address and route, the host end on the bridge; gone with the namespace', async () => {
    const host = `ltv${tag}0`;
    const { result, out } = await runCaptured(basePlan(rootfs, ['sh', '-c',
      'cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu /sys/class/net/eth0/operstate; ip -4 addr show eth0; ip route; ping -c 1 -W 3 ' + `${SUBNET}.1`], { loopbackUp: true }), {
      onPid: () => record(host),
    });
    expect(result.exitCode, out).toBe(0);
    expect(out).toMatch(/^02:42:0a:c7:00:05\n1500\nup\n/);
    expect(out).toContain(`inet ${SUBNET}.5/24`);
    expect(out).toMatch(new RegExp(`^default via ${SUBNET.replace(/\./g, '\\.')}\\.1 dev eth0`, 'm'));
    expect(out).toMatch(/1 packets received/);
    // The host end went with the init's namespace.
    await waitFor(() => !existsSync(`/sys/class/net/${host}`), `${host} to disappear`);
  });

  it('gives a second interface (no gateway) its address and no default route', async () => {
    const host = `ltv${tag}1`;
    const { result, out } = await runCaptured(basePlan(rootfs, ['sh', '-c', 'sleep 0.3; ip route; cat /sys/class/net/eth1/address']), {
      onPid: () => record(host, { ifname: 'eth1', gateway: undefined, mac: '02:42:0a:c7:00:06', ip: `${SUBNET}.6` }),
    });
    expect(result.exitCode, out).toBe(0);
    expect(out).not.toContain('default');
    expect(out).toContain(`${SUBNET}.0/24 dev eth1`);
    expect(out).toContain('02:42:0a:c7:00:06');
  });

  it('enslaves the host end to the bridge and brings it up', async () => {
    const host = `ltv${tag}2`;
    const p = launch(basePlan(rootfs, ['sleep', '2']), { stdio: ['ignore', 'ignore', 'ignore'], onPid: () => record(host) });
    await waitFor(() => existsSync(`/sys/class/net/${BRIDGE}/brif/${host}`), `${host} on ${BRIDGE}`);
    expect(Number(readFileSync(`/sys/class/net/${host}/flags`, 'utf8')) & 1).toBe(1);
    expect(readFileSync(`/sys/class/net/${host}/mtu`, 'utf8').trim()).toBe('1500');
    expect((await p).exitCode).toBe(0);
  });

  it('replaces a stale host link of the same name', async () => {
    const host = `ltv${tag}3`;
    execFileSync('ip', ['link', 'add', host, 'type', 'bridge']); // any kind: it is deleted by name
    const { result, out } = await runCaptured(basePlan(rootfs, ['cat', '/sys/class/net/eth0/address']), { onPid: () => record(host) });
    expect(result.exitCode, out).toBe(0);
    expect(out.trim()).toBe('02:42:0a:c7:00:05');
  });

  it('fails with one line naming the veth and the missing bridge; the container never runs', async () => {
    const err = await rejection(launch(basePlan(rootfs, ['sh', '-c', 'echo ran']), { stdio: ['ignore', 'ignore', 'ignore'], onPid: () => record(`ltv${tag}4`, { bridge: `nobr${tag}` }) }));
    expect(err).toBeInstanceOf(TspodError);
    expect(err.code).toBe('ELAUNCH');
    expect(err.message).toBe(`create veth ltv${tag}4: bridge nobr${tag}: no such device`);
    expect(existsSync(`/sys/class/net/ltv${tag}4`)).toBe(false); // nothing made
  });

  it('fails with one line when the address is taken inside (here: twice the same pair name)', async () => {
    const twice = record(`ltv${tag}5`) + record(`ltv${tag}6`);
    const err = await rejection(launch(basePlan(rootfs, ['true']), { stdio: ['ignore', 'ignore', 'ignore'], onPid: () => twice }));
    expect(err.message).toBe(`create veth ltv${tag}6: add the pair on bridge ${BRIDGE}: file exists`);
  });

  it('accepts only veth records between end and go, and checks their fields', async () => {
    const bad = async (records: string) => (await rejection(launch(basePlan(rootfs, ['true']), { stdio: ['ignore', 'ignore', 'ignore'], onPid: () => records }))).message;
    expect(await bad('mask /etc\n')).toMatch(/^plan line \d+: only veth records may come between end and go, got "mask"$/);
    expect(await bad(`veth a b 02:42:0a:c7:00:05 1500 ${BRIDGE} 10.0.0.300/24 -\n`)).toMatch(/^plan line \d+: bad veth address "10\.0\.0\.300"$/);
    expect(await bad(`veth a b zz 1500 ${BRIDGE} 10.0.0.3/24 -\n`)).toMatch(/^plan line \d+: bad veth MAC address "zz"$/);
    expect(await bad(`veth a b 02:42:0a:c7:00:05 1500 ${BRIDGE}\n`)).toMatch(/^plan line \d+: veth takes 7 field\(s\), got 5$/);
    const noNet = await rejection(launch(basePlan(rootfs, ['true'], { namespaces: ['pid', 'mount'], hostname: undefined }), { stdio: ['ignore', 'ignore', 'ignore'], onPid: () => record('x') }));
    expect(noNet.message).toMatch(/^plan line \d+: veth needs a new net namespace$/);
  });
});
