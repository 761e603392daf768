import { describe, expect, it } from 'vitest';
import { buildPlan, cgroupFs, containerArgs, mergeEnv, DEFAULT_CAPABILITIES, type ContainerSpecInput } from '../../../src/runtime/spec.js';
import { applyPlanOptions } from '../../../src/runtime/options.js';
import type { ImageConfig } from '../../../src/oci/types.js';

const config = (c: ImageConfig['config']): ImageConfig => ({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: c });

const files = (map: Record<string, string>) => ({ read: async (p: string) => (p in map ? Buffer.from(map[p]!) : undefined) });

const input = (over: Partial<ContainerSpecInput> = {}): ContainerSpecInput => ({
  config: config({ Cmd: ['sh'], Env: ['PATH=/img/bin', 'A=1'] }),
  rootfs: '/c/rootfs',
  overlay: { data: 'lowerdir=a,upperdir=/u,workdir=/w', chdir: '/s' },
  imageFiles: files({ '/etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n' }),
  hostname: 'abc',
  command: [],
  env: [],
  network: 'none',
  etcFiles: { hosts: '/c/hosts', hostname: '/c/hostname', resolvConf: '/c/resolv.conf' },
  ...over,
});

describe('containerArgs (docker semantics of Entrypoint and Cmd)', () => {
  it('uses the image Cmd when no command is given, after the Entrypoint', () => {
    expect(containerArgs(config({ Entrypoint: ['/ep'], Cmd: ['a'] }), [])).toEqual(['/ep', 'a']);
  });
  it('replaces Cmd, keeps Entrypoint, with a command', () => {
    expect(containerArgs(config({ Entrypoint: ['/ep'], Cmd: ['a'] }), ['b', 'c'])).toEqual(['/ep', 'b', 'c']);
  });
  it('--entrypoint drops the image Cmd; an empty one drops the Entrypoint', () => {
    expect(containerArgs(config({ Entrypoint: ['/ep'], Cmd: ['a'] }), [], '/x')).toEqual(['/x']);
    expect(containerArgs(config({ Entrypoint: ['/ep'], Cmd: ['a'] }), ['b'], '')).toEqual(['b']);
  });
  it('refuses an image and a command line with nothing to run', () => {
    expect(() => containerArgs(config({}), [])).toThrow(/no command specified/);
  });
});

describe('mergeEnv', () => {
  it('lets later lists win and keeps the first position', () => {
    expect(mergeEnv(['A=1', 'B=2'], ['A=3'])).toEqual(['A=3', 'B=2']);
  });
  it('passes a bare NAME through from the caller, and drops it when unset', () => {
    process.env.TSPOD_SPEC_TEST = 'v';
    expect(mergeEnv(['TSPOD_SPEC_TEST', 'TSPOD_SPEC_UNSET_XYZ'])).toEqual(['TSPOD_SPEC_TEST=v']);
    delete process.env.TSPOD_SPEC_TEST;
  });
  it('refuses an empty name', () => {
    expect(() => mergeEnv(['=x'])).toThrow(/invalid environment variable "=x"/);
  });
});

describe('buildPlan', () => {
  it('applies Docker\'s defaults: capability mask a80425fb, masked and read-only paths, all namespaces', async () => {
    const plan = await buildPlan(input());
    const mask = plan.capabilities!.reduce((m, c) => m | (1n << BigInt(c)), 0n);
    expect(mask.toString(16)).toBe('a80425fb');
    expect(Object.keys(DEFAULT_CAPABILITIES)).toHaveLength(14);
    expect(plan.namespaces).toEqual(['pid', 'mount', 'uts', 'ipc', 'net', 'cgroup']);
    expect(plan.maskedPaths).toContain('/proc/kcore');
    expect(plan.readonlyPaths).toContain('/proc/sys');
    expect(plan.mounts.find((m) => m.destination === '/sys')?.flags).toContain('ro');
    expect(plan.premounts[0]).toMatchObject({ type: 'overlay', destination: '/c/rootfs', chdir: '/s' });
    expect(plan.loopbackUp).toBe(true);
    expect(plan.sync).toBe(true);
  });

  it('builds the environment: image PATH wins over the default, HOSTNAME, HOME from passwd, -e last', async () => {
    const plan = await buildPlan(input({ env: ['A=2'] }));
    expect(plan.env).toEqual(['PATH=/img/bin', 'A=2', 'HOSTNAME=abc', 'HOME=/root']);
  });

  it('shares the host network and hostname with --network host', async () => {
    const plan = await buildPlan(input({ network: 'host' }));
    expect(plan.namespaces).not.toContain('net');
    expect(plan.hostname).toBeUndefined();
    expect(plan.loopbackUp).toBe(false);
  });

  it('uses WorkingDir, then -w, and creates it when missing', async () => {
    expect((await buildPlan(input({ config: config({ Cmd: ['sh'], WorkingDir: '/app' }) }))).cwd).toBe('/app');
    const plan = await buildPlan(input({ config: config({ Cmd: ['sh'], WorkingDir: '/app' }), workdir: '/w' }));
    expect(plan.cwd).toBe('/w');
    expect(plan.mkdirCwd).toBe(true);
  });

  describe('/sys/fs/cgroup (docker\'s read-only cgroup mount)', () => {
    const v1 = { version: 1 as const, hierarchies: [
      { name: 'cpu,cpuacct', controllers: ['cpu', 'cpuacct'] },
      { name: 'memory', controllers: ['memory'] },
      { name: 'systemd', controllers: ['name=systemd'] },
    ] };

    it('v2: one read-only cgroup2 mount', () => {
      expect(cgroupFs({ version: 2 })).toEqual({
        mounts: [{ source: 'cgroup', destination: '/sys/fs/cgroup', type: 'cgroup2', flags: ['nosuid', 'noexec', 'nodev', 'ro'] }],
        symlinks: [], readonlyPaths: [],
      });
    });

    it('v1: a tmpfs made read-only, a mount per hierarchy (names only with "none"), links for co-mounted controllers', () => {
      const fs = cgroupFs(v1);
      expect(fs.mounts.map((m) => [m.destination, m.type, m.data])).toEqual([
        ['/sys/fs/cgroup', 'tmpfs', 'mode=755'],
        ['/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'cpu,cpuacct'],
        ['/sys/fs/cgroup/memory', 'cgroup', 'memory'],
        ['/sys/fs/cgroup/systemd', 'cgroup', 'none,name=systemd'],
      ]);
      expect(fs.mounts.slice(1).every((m) => m.flags.includes('ro'))).toBe(true);
      expect(fs.symlinks).toEqual([
        { target: 'cpu,cpuacct', path: '/sys/fs/cgroup/cpu' },
        { target: 'cpu,cpuacct', path: '/sys/fs/cgroup/cpuacct' },
      ]);
      expect(fs.readonlyPaths).toEqual(['/sys/fs/cgroup']);
    });

    it('follows /sys in the plan; none without a view', async () => {
      const plan = await buildPlan(input({ cgroups: v1 }));
      const at = plan.mounts.findIndex((m) => m.destination === '/sys');
      expect(plan.mounts[at + 1]!.destination).toBe('/sys/fs/cgroup');
      expect(plan.readonlyPaths).toContain('/sys/fs/cgroup');
      expect(plan.symlinks).toContainEqual({ target: 'cpu,cpuacct', path: '/sys/fs/cgroup/cpu' });
      expect((await buildPlan(input())).mounts.some((m) => m.destination.startsWith('/sys/fs/cgroup'))).toBe(false);
    });

    it('--privileged makes it writable; systempaths=unconfined does not', async () => {
      const ctx = { hostNetwork: false, initBinary: '/init' };
      const plan = await buildPlan(input({ cgroups: v1 }));
      const priv = await applyPlanOptions(plan, { privileged: true, stateDir: '/nonexistent' }, ctx);
      expect(priv.readonlyPaths).toEqual([]);
      expect(priv.mounts.filter((m) => m.type === 'cgroup').every((m) => !m.flags.includes('ro'))).toBe(true);
      const unconfined = await applyPlanOptions(plan, { securityOpt: ['systempaths=unconfined', 'seccomp=unconfined'], stateDir: '/nonexistent' }, ctx);
      expect(unconfined.readonlyPaths).toEqual(['/sys/fs/cgroup']);
      expect(unconfined.maskedPaths).toEqual([]);
      expect(unconfined.mounts.filter((m) => m.type === 'cgroup').every((m) => m.flags.includes('ro'))).toBe(true);
    });
  });
});
