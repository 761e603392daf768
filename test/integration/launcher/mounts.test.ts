// The container's filesystem: an overlay rootfs premounted inside the container's mount
// namespace (never visible on the host), bind mounts and their flags, and symlinks in the image
// that try to send a mount outside the rootfs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from '../../../src/runtime/launcher.js';
import { detectCgroups } from '../../../src/runtime/cgroups/index.js';
import { cgroupFs } from '../../../src/runtime/spec.js';
import { firstReason, gated, haveCommand, haveOverlay, isRoot } from '../../support/caps.js';
import { basePlan, buildLauncher, hostMountsMentioning, makeBusyboxRootfs, sh, tempDir } from './helpers.js';

const reason = firstReason(isRoot(), haveCommand('busybox'), haveCommand('make'));
const overlayReason = haveOverlay();

describe.skipIf(reason)(gated('launcher: mounts', reason), () => {
  let dir = '';
  let lower = '';

  beforeAll(() => {
    buildLauncher();
    dir = tempDir();
    lower = makeBusyboxRootfs(join(dir, 'lower'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(overlayReason)(gated('uses an overlay premounted in the container\'s namespace as its rootfs', overlayReason), async () => {
    const c = join(dir, 'c1');
    for (const d of ['upper', 'work', 'merged']) mkdirSync(join(c, d), { recursive: true });
    const plan = basePlan(join(c, 'merged'), ['sh', '-c', 'echo inside > /written; cat /written; grep " / " /proc/self/mountinfo | cut -d" " -f5,8'], {
      premounts: [{
        source: 'overlay', destination: join(c, 'merged'), type: 'overlay', flags: [],
        // lowerdir relative to chdir, as the engine does to fit many layers in one page
        data: `lowerdir=lower,upperdir=${join(c, 'upper')},workdir=${join(c, 'work')}`, chdir: dir,
      }],
    });
    const out = await sh(plan);
    expect(out).toMatch(/^inside$/m);
    expect(out).toMatch(/^\/ overlay$/m);
    expect(readFileSync(join(c, 'upper', 'written'), 'utf8')).toBe('inside\n');
    expect(existsSync(join(lower, 'written'))).toBe(false);
    expect(hostMountsMentioning(dir)).toEqual([]);
  });

  it('bind-mounts directories and files, read-only when asked', async () => {
    const data = join(dir, 'data');
    mkdirSync(data, { recursive: true });
    writeFileSync(join(data, 'f'), 'host data\n');
    const file = join(dir, 'single');
    writeFileSync(file, 'one file\n');
    const plan = basePlan(lower, ['sh', '-c', [
      'cat /data/f /etc/single',
      'touch /data/new 2>/dev/null && echo DATA-WRITABLE',
      'echo rw > /rw/new && echo rw-ok',
      'grep -E " /(data|rw|etc/single) " /proc/self/mountinfo | cut -d" " -f5,6',
    ].join('; ')]);
    plan.mounts.push(
      { source: data, destination: '/data', flags: ['bind', 'ro', 'nosuid'] },
      { source: file, destination: '/etc/single', flags: ['bind', 'ro'] },
      { source: data, destination: '/rw', flags: ['rbind', 'nodev'] },
    );
    try {
      const out = await sh(plan);
      expect(out).toContain('host data\none file\n');
      expect(out).not.toContain('DATA-WRITABLE');
      expect(out).toContain('rw-ok');
      expect(out).toMatch(/^\/data ro,nosuid,/m);
      expect(out).toMatch(/^\/etc\/single ro,/m);
      expect(out).toMatch(/^\/rw rw,nodev,/m);
      expect(readFileSync(join(data, 'new'), 'utf8')).toBe('rw\n');
      expect(hostMountsMentioning(dir)).toEqual([]);
    } finally {
      rmSync(join(lower, 'data'), { recursive: true, force: true });
      rmSync(join(lower, 'rw'), { recursive: true, force: true });
      rmSync(join(lower, 'etc'), { recursive: true, force: true });
    }
  });

  it('makes the submounts of a read-only rbind read-only too', async () => {
    const data = join(dir, 'rdata');
    mkdirSync(join(data, 'sub'), { recursive: true });
    // A submount under the source, made by a premount: it exists only in the container's namespace.
    const plan = basePlan(lower, ['sh', '-c', 'touch /rdata/sub/f 2>/dev/null && echo SUB-WRITABLE; grep " /rdata/sub " /proc/self/mountinfo | cut -d" " -f6'], {
      premounts: [{ source: 'tmpfs', destination: join(data, 'sub'), type: 'tmpfs', flags: [] }],
    });
    plan.mounts.push({ source: data, destination: '/rdata', flags: ['rbind', 'ro'] });
    try {
      const out = await sh(plan);
      expect(out).not.toContain('SUB-WRITABLE');
      expect(out).toMatch(/^ro,/m);
      expect(hostMountsMentioning(dir)).toEqual([]);
    } finally {
      rmSync(join(lower, 'rdata'), { recursive: true, force: true });
    }
  });

  it('resolves symlinks in the image inside the rootfs, never on the host', async () => {
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'marker'), 'marker\n');
    symlinkSync(outside, join(lower, 'abs-link'));              // absolute, pointing at a host dir
    symlinkSync('../../../../../../..' + outside, join(lower, 'rel-link')); // climbing out
    const plan = basePlan(lower, ['sh', '-c', 'cat /abs-link/sub/marker; ls /rel-link/tmpfs-here && echo tmpfs-ok']);
    plan.mounts.push(
      { source: src, destination: '/abs-link/sub', flags: ['bind'] },
      { source: 'tmpfs', destination: '/rel-link/tmpfs-here', type: 'tmpfs', flags: [] },
    );
    try {
      const out = await sh(plan);
      expect(out).toContain('marker');
      expect(out).toContain('tmpfs-ok');
      // The host directory the links name was never touched: the mount points were created
      // under the rootfs, at <rootfs><outside>/...
      expect(existsSync(join(outside, 'sub'))).toBe(false);
      expect(existsSync(join(outside, 'tmpfs-here'))).toBe(false);
      expect(existsSync(join(lower, outside, 'sub'))).toBe(true);
      expect(existsSync(join(lower, outside, 'tmpfs-here'))).toBe(true);
    } finally {
      rmSync(join(lower, 'abs-link'), { force: true });
      rmSync(join(lower, 'rel-link'), { force: true });
      rmSync(join(lower, dir.split('/')[1]!), { recursive: true, force: true });
    }
  });

  it('reports a missing bind source with the path at fault', async () => {
    const plan = basePlan(lower, ['true']);
    plan.mounts.push({ source: join(dir, 'absent'), destination: '/x', flags: ['bind'] });
    await expect(launch(plan, { stdio: ['ignore', 'ignore', 'ignore'] }))
      .rejects.toMatchObject({ code: 'ELAUNCH', message: `mount ${join(dir, 'absent')} on /x: no such file or directory` });
  });

  it('makes the container\'s cgroup its cgroup root with the cgroup namespace', async () => {
    const out = await sh(basePlan(lower, ['cat', '/proc/self/cgroup'], { namespaces: ['pid', 'mount', 'uts', 'ipc', 'net', 'cgroup'] }));
    const lines = out.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l.split(':').slice(2).join(':')).toBe('/');
  });

  it('mounts spec.ts\'s /sys/fs/cgroup for both cgroup versions: read-only, remounted in place, no mount twice', async () => {
    // v1 as detected on this host, and v2 (a cgroup2 mount, which any kernel with cgroup2 allows here)
    const views = [(await detectCgroups()).view(), { version: 2 as const }];
    for (const view of views) {
      const fs = cgroupFs(view);
      const plan = basePlan(lower, ['sh', '-c', `awk '$5 ~ "^/sys/fs/cgroup" { i = 7; while ($i != "-") i++; print $5, $6, $(i + 1) }' /proc/self/mountinfo; mkdir /sys/fs/cgroup/x 2>/dev/null; echo "mkdir $?"`], {
        namespaces: ['pid', 'mount', 'uts', 'ipc', 'net', 'cgroup'],
      });
      plan.mounts.push(...fs.mounts);
      plan.symlinks.push(...fs.symlinks);
      plan.readonlyPaths.push(...fs.readonlyPaths);
      const lines = (await sh(plan)).trim().split('\n');
      const points = lines.filter((l) => l.startsWith('/')).map((l) => l.split(' ')[0]);
      expect(new Set(points).size, lines.join('\n')).toBe(points.length);
      expect(points).toHaveLength(fs.mounts.length);
      for (const l of lines.filter((x) => x.startsWith('/'))) expect(l.split(' ')[1]).toMatch(/^ro,/);
      expect(lines[0]!.split(' ')[2]).toBe(view.version === 2 ? 'cgroup2' : 'tmpfs');
      expect(lines).toContain('mkdir 1');
    }
  });

  it('leaves the host mount table as it found it', () => {
    expect(hostMountsMentioning(dir)).toEqual([]);
  });
});
