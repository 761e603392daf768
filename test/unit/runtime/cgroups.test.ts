import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { detectCgroups, parseBytes, parseCpus, sharesToWeight } from '../../../src/runtime/cgroups/index.js';
import { parseMountinfo, parseProcCgroup } from '../../../src/runtime/cgroups/parse.js';
import { V1Driver } from '../../../src/runtime/cgroups/v1.js';
import { V2Driver } from '../../../src/runtime/cgroups/v2.js';

describe('parseBytes', () => {
  it('reads docker units, binary and case-insensitive', () => {
    expect(parseBytes('64m')).toBe(64 * 1024 * 1024);
    expect(parseBytes('64M')).toBe(64 * 1024 * 1024);
    expect(parseBytes('1g')).toBe(1024 ** 3);
    expect(parseBytes('1.5G')).toBe(1.5 * 1024 ** 3);
    expect(parseBytes('512k')).toBe(512 * 1024);
    expect(parseBytes('512kb')).toBe(512 * 1024);
    expect(parseBytes('2MiB')).toBe(2 * 1024 * 1024);
    expect(parseBytes('100b')).toBe(100);
    expect(parseBytes('4096')).toBe(4096);
  });
  it('rejects other input with EINVAL naming the value and the flag', () => {
    for (const bad of ['', 'm', '64x', '-1m', '64 mm', '1t', 'abc']) {
      expect(() => parseBytes(bad, '--memory')).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    expect(() => parseBytes('64x', '--memory')).toThrow('parse --memory "64x"');
  });
});

describe('parseCpus', () => {
  it('turns a cpu count into quota and period', () => {
    expect(parseCpus('0.5')).toEqual({ quotaUs: 50000, periodUs: 100000 });
    expect(parseCpus('2')).toEqual({ quotaUs: 200000, periodUs: 100000 });
    expect(parseCpus('1.25')).toEqual({ quotaUs: 125000, periodUs: 100000 });
    expect(parseCpus('0.01')).toEqual({ quotaUs: 1000, periodUs: 100000 });
  });
  it('rejects non-numbers, zero and values below the kernel minimum quota', () => {
    for (const bad of ['', 'half', '-1', '0', '0.001', '1e3']) {
      expect(() => parseCpus(bad)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    expect(() => parseCpus('half')).toThrow('parse --cpus "half"');
  });
});

describe('sharesToWeight', () => {
  it('follows runc: 2 → 1, 1024 → 39, 262144 → 10000', () => {
    expect(sharesToWeight(2)).toBe(1);
    expect(sharesToWeight(1024)).toBe(39);
    expect(sharesToWeight(262144)).toBe(10000);
    expect(sharesToWeight(0)).toBe(0);
  });
});

describe('parsers', () => {
  it('reads mountinfo with optional fields and escapes', () => {
    const m = parseMountinfo(
      '25 21 0:22 / /sys/fs/cgroup rw,nosuid shared:4 master:1 - cgroup2 cgroup2 rw,nsdelegate\n' +
        '26 21 0:23 /sub /mnt/with\\040space rw - cgroup cgroup rw,cpu,cpuacct\n',
    );
    expect(m).toEqual([
      { dev: '0:22', root: '/', mountPoint: '/sys/fs/cgroup', fsType: 'cgroup2', superOptions: ['rw', 'nsdelegate'] },
      { dev: '0:23', root: '/sub', mountPoint: '/mnt/with space', fsType: 'cgroup', superOptions: ['rw', 'cpu', 'cpuacct'] },
    ]);
  });
  it('reads /proc/self/cgroup', () => {
    expect(parseProcCgroup('4:memory:/a/b\n2:cpu,cpuacct:/\n1:name=systemd:/x\n0::/user.slice\n')).toEqual([
      { hierarchyId: 4, controllers: ['memory'], path: '/a/b' },
      { hierarchyId: 2, controllers: ['cpu', 'cpuacct'], path: '/' },
      { hierarchyId: 1, controllers: ['name=systemd'], path: '/x' },
      { hierarchyId: 0, controllers: [], path: '/user.slice' },
    ]);
  });
});

const OTHER = '22 1 0:21 / /proc rw - proc proc rw\n23 1 0:5 / /sys rw - sysfs sysfs rw\n';
const V1_LINES = [
  ['cpu', '0:29', 'cpu'],
  ['cpuacct', '0:30', 'cpuacct'],
  ['cpuset', '0:31', 'cpuset'],
  ['memory', '0:32', 'memory'],
  ['devices', '0:33', 'devices'],
  ['freezer', '0:34', 'freezer'],
  ['pids', '0:36', 'pids'],
  ['systemd', '0:37', 'name=systemd'],
];
const v1Mounts = V1_LINES.map(([dir, dev, opt], i) => `${32 + i} 31 ${dev} / /sys/fs/cgroup/${dir} rw,relatime - cgroup cgroup rw,${opt}`).join('\n');
const HYBRID = `${OTHER}31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n${v1Mounts}\n41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n`;
const LEGACY = `${OTHER}31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n${v1Mounts}\n` +
  // the same memory hierarchy mounted a second time must not count twice
  '50 1 0:32 / /mnt/memory-again rw - cgroup cgroup rw,memory\n';
const UNIFIED = `${OTHER}31 23 0:28 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n`;
const SELF_V1 = '9:name=systemd:/\n8:pids:/\n6:freezer:/\n5:devices:/\n4:memory:/process_api/abc\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n';
const SELF_V2 = '0::/user.slice/user-0.slice/session-1.scope\n';

describe('detectCgroups', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'tspod-cgdetect-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const files = (mountinfo: string, self: string) => {
    const dir = mkdtempSync(join(tmp, 'case-'));
    writeFileSync(join(dir, 'mountinfo'), mountinfo);
    writeFileSync(join(dir, 'cgroup'), self);
    return { mountinfo: join(dir, 'mountinfo'), selfCgroup: join(dir, 'cgroup'), root: join(dir, 'root') };
  };

  it('hybrid: v1, with every hierarchy nested under the caller, the cgroup2 mount unused', async () => {
    const f = files(HYBRID, SELF_V1);
    const d = await detectCgroups(f);
    expect(d.version).toBe(1);
    expect(d).toBeInstanceOf(V1Driver);
    const hs = (d as V1Driver).hierarchies;
    expect(hs.map((h) => h.controllers.join(','))).toEqual(['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'pids', 'name=systemd']);
    const mem = hs.find((h) => h.controllers.includes('memory'))!;
    expect(mem.mountPoint).toBe(join(f.root, '/sys/fs/cgroup/memory'));
    expect(mem.base).toBe(join(f.root, '/sys/fs/cgroup/memory/process_api/abc'));
    expect(hs.find((h) => h.controllers.includes('pids'))!.base).toBe(join(f.root, '/sys/fs/cgroup/pids'));
    expect(hs.some((h) => h.mountPoint.includes('unified'))).toBe(false);
    // what a container mounts at /sys/fs/cgroup: the hierarchies by their host directory names
    const view = d.view();
    expect(view.version === 1 && view.hierarchies.map((h) => h.name)).toEqual(['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'pids', 'systemd']);
  });

  it('legacy: v1, a hierarchy mounted twice counts once', async () => {
    const d = (await detectCgroups(files(LEGACY, SELF_V1))) as V1Driver;
    expect(d.version).toBe(1);
    expect(d.hierarchies.filter((h) => h.controllers.includes('memory'))).toHaveLength(1);
  });

  it('v1 with co-mounted cpu,cpuacct and a mount root below the hierarchy root', async () => {
    const mi = `${OTHER}40 1 0:40 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n41 1 0:41 /outer /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n`;
    const d = (await detectCgroups(files(mi, '2:cpu,cpuacct:/a\n1:memory:/outer/inner\n'))) as V1Driver;
    expect(d.hierarchies).toHaveLength(2);
    expect(d.hierarchies[0]!.controllers).toEqual(['cpu', 'cpuacct']);
    expect(d.hierarchies[0]!.base.endsWith('/sys/fs/cgroup/cpu,cpuacct/a')).toBe(true);
    expect(d.hierarchies[1]!.base.endsWith('/sys/fs/cgroup/memory/inner')).toBe(true);
  });

  it('unified: v2 nested under the caller’s cgroup', async () => {
    const f = files(UNIFIED, SELF_V2);
    const d = await detectCgroups(f);
    expect(d.version).toBe(2);
    expect(d).toBeInstanceOf(V2Driver);
    expect((d as V2Driver).mountPoint).toBe(join(f.root, '/sys/fs/cgroup'));
    expect((d as V2Driver).base).toBe(join(f.root, '/sys/fs/cgroup/user.slice/user-0.slice/session-1.scope'));
  });

  it('a v1 mount of only name=systemd next to a cgroup2 mount is v2', async () => {
    const mi = `${OTHER}31 1 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n32 1 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n`;
    const d = await detectCgroups(files(mi, '1:name=systemd:/\n0::/x\n'));
    expect(d.version).toBe(2);
    expect((d as V2Driver).base.endsWith('/sys/fs/cgroup/unified/x')).toBe(true);
  });

  it('fails clearly without any cgroup mount, or without a readable mountinfo', async () => {
    await expect(detectCgroups(files(OTHER, '0::/\n'))).rejects.toMatchObject({ code: 'EUNSUPPORTED', message: expect.stringContaining('no cgroup file system is mounted') });
    await expect(detectCgroups({ mountinfo: join(tmp, 'nope'), selfCgroup: join(tmp, 'nope') })).rejects.toMatchObject({ code: 'ESYS', message: expect.stringContaining('nope') });
  });

  it('reads the real machine', async () => {
    const d = await detectCgroups();
    expect([1, 2]).toContain(d.version);
  });
});
