// The device cgroup: a default container has CAP_MKNOD (as in docker), so without a device policy it
// could make a node for the host's disk and read it. Docker's rules apply: mknod is allowed, opening
// is not, except for the standard devices and --device ones; --privileged lifts it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { startFixtureRegistry, type FixtureRegistry } from '../support/registry.js';
import { tspodEnv, type TspodEnv } from '../support/tspod.js';
import { isRoot, haveOverlay } from '../support/caps.js';

const gate = isRoot() ?? haveOverlay();
const v1Devices = (() => {
  try {
    return statSync('/sys/fs/cgroup/devices').isDirectory();
  } catch {
    return false;
  }
})();

describe.skipIf(gate || !v1Devices)('device cgroup (cgroup v1)', () => {
  let registry: FixtureRegistry;
  let t: TspodEnv;
  // A host device outside docker's default list whose open needs no capability: /dev/loop-control
  // (c 10:237). Block devices cannot be opened even by the host in some sandboxes, and /dev/kmsg needs
  // CAP_SYSLOG: either would fail for another reason and prove nothing. `--device` differs from the
  // default only in the cgroup rule, so it shows the rule is what refuses.
  const loopControl = statSync('/dev/loop-control', { throwIfNoEntry: false });

  beforeAll(async () => {
    registry = await startFixtureRegistry();
    t = tspodEnv({ mirrorUrl: registry.url });
  });
  afterAll(async () => {
    t?.cleanup();
    await registry?.stop();
  });

  const openNode = (...flags: string[]) => t.run(['run', '--rm', '--network', 'none', ...flags, 'busybox', 'sh', '-c',
    'mknod /tmp/node c 10 237 && exec 3</tmp/node && echo opened']);

  it('lets a default container make, but not open, a node for a host device outside the list', async () => {
    expect(loopControl?.isCharacterDevice(), 'the host has /dev/loop-control').toBe(true);
    const r = await openNode();
    expect(r.stdout).not.toContain('opened');
    expect(r.stderr).toMatch(/can't open.*Operation not permitted/);
  });

  it('still gives the standard devices', async () => {
    const r = await t.run(['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c',
      'head -c 4 /dev/zero | wc -c; head -c 4 /dev/urandom | wc -c; echo x > /dev/null && echo null-ok']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('4\n4\nnull-ok\n');
  });

  it('--privileged lifts the device policy, as in docker', async () => {
    const r = await openNode('--privileged');
    expect(r.stdout, r.stderr).toBe('opened\n');
  });

  it('--device adds the device to the list', async () => {
    const r = await openNode('--device', '/dev/loop-control');
    expect(r.stdout, r.stderr).toBe('opened\n');
  });
});
