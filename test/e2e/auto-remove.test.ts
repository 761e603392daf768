// `run -d --rm` (and `create --rm`): the container removes itself when it ends — the monitor runs
// `tspod rm -v` as its exit command, as podman's conmon does — and `rm -v` removes anonymous volumes.
import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, haveOverlay } from '../support/caps.js';
import { useTspodSuite } from '../support/suite.js';
import { until } from '../support/wait.js';

const gate = isRoot() ?? haveOverlay();


describe.skipIf(gate)('run -d --rm and rm -v', () => {
  const s = useTspodSuite('autorm', { pull: ['busybox'] });
  const records = () => readdirSync(join(s.t.root, 'containers')).filter((n) => /^[a-f0-9]{64}$/.test(n));
  const snapshots = () => (existsSync(join(s.t.root, 'store', 'snapshots')) ? readdirSync(join(s.t.root, 'store', 'snapshots')) : []);
  const volumes = async () => (await s.t.run(['volume', 'ls', '-q'])).stdout.split('\n').filter(Boolean);
  const monitorOf = (id: string) => readdirSync('/proc').filter((p) => /^\d+$/.test(p)).some((p) => {
    try { return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'tspod-monitor' && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(id); } catch { return false; }
  });

  it('a detached --rm container is gone, with its snapshot and anonymous volume, once its command ends', async () => {
    const before = await volumes();
    const r = await s.t.run(['run', '-d', '--rm', '--network', 'none', '--cgroup-parent', s.parent, '-v', '/data', 'busybox', 'sh', '-c', 'echo x > /data/f; sleep 1; exit 3']);
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    expect(id).toMatch(/^[a-f0-9]{64}$/);
    expect(records()).toContain(id);
    expect((await volumes()).length).toBe(before.length + 1);
    // Nobody runs a tspod command meanwhile: the monitor's exit command does the removal.
    await until('the record to go', () => !records().includes(id) && !monitorOf(id));
    expect(snapshots()).not.toContain(id);
    expect(await volumes()).toEqual(before);
    const gone = await s.t.run(['inspect', '--type', 'container', id]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/no such container/);
  });

  it('stop removes it too, and create --rm + start behaves the same', async () => {
    const r = await s.t.run(['run', '-d', '--rm', '--name', 'autorm-stop', '--network', 'none', '--cgroup-parent', s.parent, 'busybox', 'sleep', '600']);
    expect(r.code, r.stderr).toBe(0);
    const stop = await s.t.run(['stop', '-t', '1', 'autorm-stop']);
    expect(stop.code, stop.stderr).toBe(0);
    await until('the stopped container to go', async () => (await s.t.run(['ps', '-a', '--filter', 'name=autorm-stop', '-q'])).stdout.trim() === '' && !records().includes(r.stdout.trim()));

    const c = await s.t.run(['create', '--rm', '--name', 'autorm-created', '--network', 'none', '--cgroup-parent', s.parent, 'busybox', 'true']);
    expect(c.code, c.stderr).toBe(0);
    expect((await s.t.run(['ps', '-a', '--filter', 'name=autorm-created', '-q'])).stdout.trim()).not.toBe('');
    expect((await s.t.run(['start', 'autorm-created'])).code).toBe(0);
    await until('the created container to go after its run', () => !records().includes(c.stdout.trim()));
    // The name is free again.
    const again = await s.t.run(['run', '--rm', '--name', 'autorm-created', '--network', 'none', '--cgroup-parent', s.parent, 'busybox', 'true']);
    expect(again.code, again.stderr).toBe(0);
  });

  it('a killed monitor: the next ps removes the container instead', async () => {
    const r = await s.t.run(['run', '-d', '--rm', '--network', 'none', '--cgroup-parent', s.parent, 'busybox', 'sleep', '600']);
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    const info = JSON.parse((await s.t.run(['inspect', id])).stdout) as { Tspod: { MonitorPid: number } }[];
    process.kill(info[0]!.Tspod.MonitorPid, 'SIGKILL'); // takes the container down with it, no exit command runs
    await until('the container to die', () => !monitorOf(id));
    const ps = await s.t.run(['ps', '-a', '-q', '--no-trunc']);
    expect(ps.code, ps.stderr).toBe(0);
    expect(ps.stdout).not.toContain(id);
    expect(records()).not.toContain(id);
    expect(snapshots()).not.toContain(id);
  });

  it('--rm with a restart policy is refused, and nothing is created', async () => {
    const r = await s.t.run(['run', '-d', '--rm', '--restart', 'always', '--network', 'none', 'busybox', 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr.trim()).toBe('tspod: conflicting options: --restart always and --rm');
    expect(records()).toEqual([]);
  });

  it('rm keeps a container\'s anonymous volume, rm -v removes it; named volumes stay either way', async () => {
    const before = await volumes();
    expect((await s.t.run(['volume', 'create', 'autorm-named'])).code).toBe(0);
    for (const flags of [[], ['-v']]) {
      const r = await s.t.run(['run', '--name', 'autorm-vol', '--network', 'none', '--cgroup-parent', s.parent, '-v', '/anon', '-v', 'autorm-named:/named', 'busybox', 'true']);
      expect(r.code, r.stderr).toBe(0);
      const anon = (await volumes()).filter((v) => !before.includes(v) && v !== 'autorm-named');
      expect(anon.length).toBeGreaterThan(0);
      const rm = await s.t.run(['rm', ...flags, 'autorm-vol']);
      expect(rm.code, rm.stderr).toBe(0);
      const after = await volumes();
      expect(after).toContain('autorm-named');
      for (const v of anon) {
        if (flags.length) expect(after).not.toContain(v);
        else expect(after).toContain(v);
      }
      if (!flags.length) for (const v of anon) expect((await s.t.run(['volume', 'rm', v])).code).toBe(0);
    }
    expect((await s.t.run(['volume', 'rm', 'autorm-named'])).code).toBe(0);
    expect(await volumes()).toEqual(before);
  });
});
