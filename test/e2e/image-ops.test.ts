// Issue #8 end to end: commit, push, save/load, export/import through the CLI, checked against the real
// tools: the fixture registry (Debian's docker-registry), skopeo, umoci and podman (rootful, on a private
// storage root under a temp dir, runc, cgroupfs, file events, no network).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFixtureRegistry, alpineFixturesDir, type FixtureRegistry } from '../support/registry.js';
import { tspodEnv, TSPOD_BIN, type TspodEnv } from '../support/tspod.js';
import { isRoot, haveOverlay, haveCommand, firstReason, inCI } from '../support/caps.js';
import { mountsUnder, findCgroups } from '../support/leftovers.js';
import { Store } from '../../store/index.js';
import { pushImage } from '../../src/image/push.js';

const alpineReason = alpineFixturesDir() ? undefined : 'needs the alpine fixtures in ../shared/fixtures/alpine';
if (alpineReason && inCI()) throw new Error(`image-ops e2e: ${alpineReason} (CI must have them)`);
const gate = firstReason(isRoot(), haveOverlay(), haveCommand('skopeo'), haveCommand('umoci'), haveCommand('podman'),
  haveCommand('setcap'), haveCommand('getcap'), alpineReason);

interface Out { code: number; stdout: string; stderr: string }
function sh(cmd: string, args: string[], timeoutMs = 120_000): Promise<Out> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 64 << 20, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** A peer tool's stderr without its warnings (about its own host configuration, not about our image). */
const errors = (stderr: string) => stderr.split('\n').filter((l) => l !== '' && !/^WARN\[|level=warning/.test(l)).join('\n');

/** What a container of the committed image must see, printed by one shell script. */
const CHECK = [
  'cat /root/new.txt',
  'tail -n1 /etc/motd',
  'test -e /etc/issue && echo issue-present || echo issue-gone',
  'ls -a /etc/apk | tr "\\n" " "; echo',
  'stat -c "dev %t,%T" /root/dev',
  'test -p /root/fifo && echo fifo',
  'test /root/new.txt -ef /root/hl.txt && echo hardlinked',
].join('; ');
const EXPECTED = 'hello\nchanged by tspod\nissue-gone\n. .. only \ndev 1,3\nfifo\nhardlinked\n';

describe.skipIf(gate)('image operations end to end', () => {
  let registry: FixtureRegistry;
  let t: TspodEnv;
  let t2: TspodEnv;
  let work: string;
  let podmanRoot: string;
  let podmanArgs: string[];
  let target: string;

  const podman = (...args: string[]) => sh('podman', [...podmanArgs, ...args], 300_000);
  const podmanRun = (image: string, ...cmd: string[]) =>
    podman('run', '--rm', '--network', 'none', '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768', image, ...cmd);

  beforeAll(async () => {
    registry = await startFixtureRegistry();
    t = tspodEnv({ mirrorUrl: registry.url });
    t2 = tspodEnv({ mirrorUrl: registry.url });
    work = mkdtempSync(join(tmpdir(), 'tspod-imageops-'));
    podmanRoot = join(work, 'podman');
    // podman's storage, run state, tmp dir and network config all live under the test's temp dir
    podmanArgs = ['--root', join(podmanRoot, 'root'), '--runroot', join(podmanRoot, 'run'), '--tmpdir', join(podmanRoot, 'tmp'),
      '--network-config-dir', join(podmanRoot, 'networks'),
      '--runtime', 'runc', '--cgroup-manager=cgroupfs', '--events-backend=file', '--storage-driver', 'overlay'];
    // a repository of its own per run: the fixture registry may outlive a test run
    target = `${registry.host}/test/committed-${process.pid}:v1`;
  });

  afterAll(async () => {
    try {
      if (podmanArgs) await podman('rmi', '-a', '-f');
      for (const root of [t?.root, t2?.root, work]) if (root) expect(mountsUnder(root)).toEqual([]);
      // Other test files may run containers at the same time on this host: look for ours only.
      const ids = [t, t2].flatMap((e) => (e && existsSync(join(e.root, 'containers'))
        ? readdirSync(join(e.root, 'containers')).filter((n) => /^[a-f0-9]{64}$/.test(n)) : []));
      expect(findCgroups((name) => ids.includes(name))).toEqual([]);
    } finally {
      for (const root of [work]) if (root) for (const m of mountsUnder(root).reverse()) await sh('umount', ['-l', m]);
      if (work) rmSync(work, { recursive: true, force: true });
      t?.cleanup();
      t2?.cleanup();
      await registry?.stop();
    }
  });

  it('commits a container\'s changes (new, changed, deleted files, rm -rf + mkdir, a file capability, hard links, devices) and pushes them', async () => {
    const base = `${registry.host}/library/alpine:3.19`;
    expect((await t.run(['pull', '-q', base])).code).toBe(0);
    const script = 'mkdir -p /root && echo hello > /root/new.txt && echo "changed by tspod" >> /etc/motd && rm /etc/issue'
      + ' && rm -rf /etc/apk && mkdir /etc/apk && echo x > /etc/apk/only && cp /bin/busybox /usr/bin/capbin'
      + ' && ln /root/new.txt /root/hl.txt && mknod /root/dev c 1 3 && mkfifo /root/fifo';
    const r = await t.run(['run', '--network', 'none', '--name', 'c1', base, 'sh', '-c', script]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // The capability is set on the file in the container's writable layer (alpine has no setcap).
    const snaps = readdirSync(join(t.root, 'store', 'snapshots'));
    expect(snaps).toHaveLength(1);
    const upper = join(t.root, 'store', 'snapshots', snaps[0]!, 'upper');
    expect((await sh('setcap', ['cap_net_raw+ep', join(upper, 'usr/bin/capbin')])).code).toBe(0);

    const c = await t.run(['commit', '-m', 'e2e change', '-c', 'CMD ["cat", "/root/new.txt"]', '-c', 'ENV E2E=yes', 'c1', target]);
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(new RegExp(`^${target.replace(/[.]/g, '\\.')}\\nsha256:[a-f0-9]{64}\\n$`));

    const p = await t.run(['push', target]);
    expect(p.stderr).toBe('');
    expect(p.code).toBe(0);
    // the alpine layer is in library/alpine of the same registry: mounted, not uploaded
    expect(p.stdout).toMatch(/: Mounted from another repository\n/);
    expect(p.stdout).toMatch(/: Pushed\n/);
    expect(p.stdout).toMatch(/v1: digest: sha256:[a-f0-9]{64} size: \d+\n$/);

    const hist = await t.run(['history', target]);
    expect(hist.stdout.split('\n')[1]).toMatch(/\s+e2e change$/);
  });

  it('gives skopeo an image it inspects and copies to an OCI layout, whose layer umoci unpacks with the capability intact', async () => {
    const ins = await sh('skopeo', ['inspect', '--tls-verify=false', `docker://${target}`]);
    expect(errors(ins.stderr)).toBe('');
    const info = JSON.parse(ins.stdout) as { Layers: string[]; Env: string[] };
    expect(info.Layers).toHaveLength(2);
    expect(info.Env).toContain('E2E=yes');
    const layout = join(work, 'layout');
    const cp = await sh('skopeo', ['copy', '--src-tls-verify=false', `docker://${target}`, `oci:${layout}:v1`]);
    expect(cp.code, cp.stderr).toBe(0);
    const bundle = join(work, 'bundle');
    const un = await sh('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
    expect(un.code, un.stderr).toBe(0);
    const rootfs = join(bundle, 'rootfs');
    expect((await sh('getcap', [join(rootfs, 'usr/bin/capbin')])).stdout).toMatch(/cap_net_raw[=+]ep/);
    expect(readFileSync(join(rootfs, 'root/new.txt'), 'utf8')).toBe('hello\n');
    expect(existsSync(join(rootfs, 'etc/issue'))).toBe(false);
    expect(readdirSync(join(rootfs, 'etc/apk'))).toEqual(['only']);
    expect(statSync(join(rootfs, 'root/hl.txt')).ino).toBe(statSync(join(rootfs, 'root/new.txt')).ino);
    rmSync(bundle, { recursive: true, force: true });
  });

  it('runs the pushed image with podman, which sees exactly the changes', async () => {
    const pull = await podman('pull', '-q', '--tls-verify=false', target);
    expect(pull.code, pull.stderr).toBe(0);
    const r = await podmanRun(target, 'sh', '-c', CHECK);
    expect(errors(r.stderr)).toBe('');
    expect(r.stdout).toBe(EXPECTED);
    const cmd = await podmanRun(target); // the CMD set by commit -c
    expect(cmd.stdout).toBe('hello\n');
    // the empty /etc/resolv.conf mount point tspod's run created is not part of the change
    const resolv = await podmanRun(target, 'sh', '-c', 'test -e /etc/resolv.conf && echo present || echo absent');
    expect(resolv.stdout).toBe('absent\n');
  });

  it('pulls the pushed image back into a fresh store, with the same content and the capability in the layer', async () => {
    expect((await t2.run(['pull', '-q', target])).code).toBe(0);
    const r = await t2.run(['run', '--network', 'none', '--rm', target, 'sh', '-c', CHECK]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(EXPECTED);
    const layers = readdirSync(join(t2.root, 'store', 'layers')).map((l) => join(t2.root, 'store', 'layers', l, 'diff', 'usr/bin/capbin'));
    const withCap = layers.filter((f) => existsSync(f));
    expect(withCap).toHaveLength(1);
    expect((await sh('getcap', [withCap[0]!])).stdout).toMatch(/cap_net_raw[=+]ep/);
  });

  it('gives the same layer digest when the same unchanged container is committed twice', async () => {
    expect((await t.run(['commit', 'c1', `${registry.host}/test/again:a`])).code).toBe(0);
    expect((await t.run(['commit', '-m', 'other message', 'c1', `${registry.host}/test/again:b`])).code).toBe(0);
    const inspect = async (ref: string) => JSON.parse((await t.run(['image', 'inspect', ref])).stdout)[0] as {
      Id: string; RootFS: { Layers: string[] }; Manifest: { Layers: { Digest: string }[] };
    };
    const [a, b, v1] = [await inspect(`${registry.host}/test/again:a`), await inspect(`${registry.host}/test/again:b`), await inspect(target)];
    expect(a.Manifest.Layers.at(-1)!.Digest).toBe(b.Manifest.Layers.at(-1)!.Digest);
    expect(a.RootFS.Layers.at(-1)).toBe(b.RootFS.Layers.at(-1));
    expect(a.Manifest.Layers.at(-1)!.Digest).toBe(v1.Manifest.Layers.at(-1)!.Digest);
    expect(a.Id).not.toBe(b.Id); // the configs differ (history comment, time); the layer does not
  });

  it('stores the committed layer unpacked (running the image unpacks nothing), tags it, lists it', async () => {
    const layers = () => readdirSync(join(t.root, 'store', 'layers')).sort();
    const before = layers();
    const r = await t.run(['run', '--network', 'none', '--rm', target, 'cat', '/root/new.txt']);
    expect(r.stdout).toBe('hello\n');
    expect(layers()).toEqual(before);
    // garbage collection keeps everything commit wrote: the ref names it
    const prune = await t.run(['image', 'prune', '-f']);
    expect(prune.code, prune.stderr).toBe(0);
    expect(layers()).toEqual(before);
    expect((await t.run(['run', '--network', 'none', '--rm', target, 'cat', '/root/new.txt'])).stdout).toBe('hello\n');
    const other = `${registry.host}/test/other:x`;
    expect((await t.run(['tag', target, other])).code).toBe(0);
    expect((await t.run(['image', 'ls', '-q', '--no-trunc'])).stdout).toBe((await t.run(['images', '-q', '--no-trunc'])).stdout);
    const list = JSON.parse((await t.run(['images', '--json'])).stdout) as { name: string; imageId: string; size: number }[];
    const byName = (n: string) => list.find((i) => i.name === n);
    expect(byName(other)?.imageId).toMatch(/^sha256:/);
    expect(byName(other)?.imageId).toBe(byName(target)?.imageId);
    expect(byName(target)!.size).toBeGreaterThan(0);
    const rmi = await t.run(['rmi', other]);
    expect(rmi.code, rmi.stderr).toBe(0);
    expect((await t.run(['images'])).stdout).not.toContain('test/other');
    expect((await t.run(['image', 'inspect', target])).code).toBe(0); // untagging one name keeps the image
  });

  it('commits a running container (paused meanwhile) and leaves it running', async () => {
    const base = `${registry.host}/library/alpine:3.19`;
    const d = await t.run(['run', '-d', '--network', 'none', '--name', 'c3', base, 'sh', '-c', 'echo started > /tmp/ticks; while true; do sleep 0.1; done']);
    expect(d.code, d.stderr).toBe(0);
    try {
      for (let i = 0; i < 50 && !(await t.run(['ps'])).stdout.includes(' c3'); i++) await new Promise((r) => setTimeout(r, 100));
      const c = await t.run(['commit', 'c3', `${registry.host}/test/running:v1`]);
      expect(c.code, c.stderr).toBe(0);
      const ps = await t.run(['ps']);
      expect(ps.stdout).toMatch(/Up .* c3\n/); // thawed, still running
      const r = await t.run(['run', '--network', 'none', '--rm', `${registry.host}/test/running:v1`, 'cat', '/tmp/ticks']);
      expect(r.stdout).toBe('started\n');
      const hist = await t.run(['history', '--no-trunc', `${registry.host}/test/running:v1`]);
      expect(hist.stdout.split('\n')[1]).toContain('sh -c echo started'); // created_by: the container's command
    } finally {
      expect((await t.run(['rm', '-f', 'c3'])).code).toBe(0);
    }
  });

  it('leaves the store consistent when commit is killed half-way (no ref, its temp files cleaned by the next command)', async () => {
    const base = `${registry.host}/library/alpine:3.19`;
    expect((await t.run(['run', '--network', 'none', '--name', 'c4', base, 'sh', '-c', 'dd if=/dev/urandom of=/big bs=1M count=24 2>/dev/null'])).code).toBe(0);
    const victim = `${registry.host}/test/killed:v1`;
    const tmp = join(t.root, 'store', 'tmp');
    // tmp/ is briefly absent while a store opener alone recreates it
    const building = () => { try { return readdirSync(tmp).some((n) => n.startsWith('build-')); } catch { return false; } };
    const child = spawn(process.execPath, [TSPOD_BIN, 'commit', 'c4', victim], { env: t.env, stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      for (let i = 0; i < 500 && !building(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(building()).toBe(true);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    expect((await t.run(['images'])).stdout).not.toContain('test/killed');
    expect(readdirSync(tmp)).toEqual([]); // the next command that opened the store alone removed the dead writer's files
    const again = await t.run(['commit', 'c4', victim]);
    expect(again.code, again.stderr).toBe(0);
    const r = await t.run(['run', '--network', 'none', '--rm', victim, 'sh', '-c', 'wc -c < /big']);
    expect(r.stdout.trim()).toBe(String(24 * 1024 * 1024));
  });

  it('refuses to commit a file named .wh.something, naming it, and creates no image', async () => {
    const base = `${registry.host}/library/alpine:3.19`;
    expect((await t.run(['run', '--network', 'none', '--name', 'c2', base, 'sh', '-c', 'mkdir -p /data && touch /data/.wh.something'])).code).toBe(0);
    const before = (await t.run(['images', '-q'])).stdout;
    const c = await t.run(['commit', 'c2', `${registry.host}/test/bad:v1`]);
    expect(c.code).not.toBe(0);
    expect(c.stderr.trim().split('\n')).toHaveLength(1);
    expect(c.stderr).toContain('/data/.wh.something');
    expect(c.stdout).toBe('');
    expect((await t.run(['images', '-q'])).stdout).toBe(before);
    expect(readdirSync(join(t.root, 'store', 'tmp'))).toEqual([]);
  });

  it('uploads in chunks when a blob is larger than the monolithic limit', async () => {
    // A store of its own that holds nothing of this registry: no blob can be mounted from another
    // repository, so every blob really goes up (through the chunked path, with these thresholds).
    const own = tspodEnv({ mirrorUrl: registry.url });
    let stats: { chunked: number; patches: number; monolithic: number } | undefined;
    const chunked = `${registry.host}/test/chunked-${process.pid}-${Date.now()}:v1`;
    try {
      expect((await own.run(['pull', 'busybox'])).code).toBe(0);
      const store = await Store.open(join(own.root, 'store'));
      try {
        await pushImage('busybox', {
          store, config: { registryMirrors: {} }, destination: chunked,
          upload: { monolithicMax: 1024, chunkSize: 256 * 1024 }, onStats: (s) => { stats = { ...s }; },
        });
      } finally {
        store.close();
      }
    } finally {
      own.cleanup();
    }
    expect(stats!.chunked).toBeGreaterThanOrEqual(1);
    expect(stats!.patches).toBeGreaterThan(stats!.chunked);
    const ins = await sh('skopeo', ['inspect', '--tls-verify=false', `docker://${chunked}`]);
    expect(ins.code, ins.stderr).toBe(0);
    const cp = await sh('skopeo', ['copy', '--src-tls-verify=false', `docker://${chunked}`, `oci:${join(work, 'chunked')}:v1`]);
    expect(cp.code, cp.stderr).toBe(0);
  });

  for (const format of ['docker-archive', 'oci-archive'] as const) {
    it(`tspod save --format ${format} → podman load → run`, async () => {
      const file = join(work, `tspod-${format}.tar`);
      const s = await t.run(['save', '--format', format, '-o', file, target]);
      expect(s.code, s.stderr).toBe(0);
      // deterministic: saving again gives the same bytes
      expect((await t.run(['save', '--format', format, '-o', file + '.again', target])).code).toBe(0);
      expect(readFileSync(file + '.again').equals(readFileSync(file))).toBe(true);
      await podman('rmi', '-f', target);
      const l = await podman('load', '-i', file);
      expect(l.code, l.stderr).toBe(0);
      expect(l.stdout).toContain(target);
      const r = await podmanRun(target, 'sh', '-c', CHECK);
      expect(errors(r.stderr)).toBe('');
      expect(r.stdout).toBe(EXPECTED);
    });

    it(`podman save --format ${format} → tspod load → run`, async () => {
      const file = join(work, `podman-${format}.tar`);
      expect((await podman('tag', target, 'localhost/frompodman:1')).code).toBe(0);
      const s = await podman('save', '-q', '--format', format, '-o', file, 'localhost/frompodman:1');
      expect(s.code, s.stderr).toBe(0);
      const fresh = tspodEnv({});
      try {
        const l = await fresh.run(['load', '-i', file]);
        expect(l.stderr).toBe('');
        expect(l.stdout).toBe('Loaded image: localhost/frompodman:1\n');
        const r = await fresh.run(['run', '--network', 'none', '--rm', 'localhost/frompodman:1', 'sh', '-c', CHECK]);
        expect(r.stderr).toBe('');
        expect(r.stdout).toBe(EXPECTED);
        expect(mountsUnder(fresh.root)).toEqual([]);
      } finally {
        fresh.cleanup();
      }
    });
  }

  for (const format of ['docker-archive', 'oci-archive'] as const) {
    it(`saves several images sharing a layer in one ${format}, each layer once, and loads them all`, async () => {
      const base = `${registry.host}/library/alpine:3.19`;
      const file = join(work, `multi-${format}.tar`);
      const s = await t.run(['save', '--format', format, '-o', file, target, base]);
      expect(s.code, s.stderr).toBe(0);
      const names = (await sh('tar', ['-tf', file])).stdout.split('\n').filter(Boolean);
      expect(new Set(names).size).toBe(names.length);
      expect(names.filter((n) => (format === 'docker-archive' ? /^[a-f0-9]{64}\.tar$/ : /^blobs\//).test(n))).toHaveLength(format === 'docker-archive' ? 2 : 6);
      const fresh = tspodEnv({});
      try {
        const l = await fresh.run(['load', '-i', file]);
        expect(l.stderr).toBe('');
        expect(l.stdout.split('\n').filter(Boolean).sort()).toEqual([`Loaded image: ${base}`, `Loaded image: ${target}`].sort());
      } finally {
        fresh.cleanup();
      }
    });
  }

  it('writes a docker-archive that skopeo copies, and loads it back with the same image ID', async () => {
    const file = join(work, 'tspod-docker-archive.tar');
    if (!existsSync(file)) expect((await t.run(['save', '-o', file, target])).code).toBe(0);
    const cp = await sh('skopeo', ['copy', `docker-archive:${file}`, `oci:${join(work, 'from-archive')}:x`]);
    expect(cp.code, cp.stderr).toBe(0);
    const id = JSON.parse((await t.run(['image', 'inspect', target])).stdout)[0].Id as string;
    const l = await t2.run(['load', '-i', file]);
    expect(l.code, l.stderr).toBe(0);
    expect(JSON.parse((await t2.run(['image', 'inspect', target])).stdout)[0].Id).toBe(id);
  });

  it('loads archives laid out as docker save writes them (docker 25+ blobs/, older <id>/layer.tar symlinks), and refuses a broken one in one line', async () => {
    // Built from the OCI layout skopeo copied above: docker 25+ keeps manifest.json next to an OCI layout and
    // points Layers into blobs/sha256/; older docker versions use <id>/layer.tar, symlinked for shared layers.
    const layout = join(work, 'layout');
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(readFileSync(join(layout, 'blobs/sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as {
      config: { digest: string }; layers: { digest: string }[];
    };
    const hex = (d: string) => d.slice(7);
    mkdirSync(join(layout, 'legacyid'), { recursive: true });
    rmSync(join(layout, 'legacyid/layer.tar'), { force: true });
    symlinkSync(`../blobs/sha256/${hex(manifest.layers[0]!.digest)}`, join(layout, 'legacyid/layer.tar'));
    writeFileSync(join(layout, 'manifest.json'), JSON.stringify([{
      Config: `blobs/sha256/${hex(manifest.config.digest)}`,
      RepoTags: ['dockersaved:v1'],
      Layers: ['legacyid/layer.tar', `blobs/sha256/${hex(manifest.layers[1]!.digest)}`],
    }]));
    const file = join(work, 'docker-style.tar');
    expect((await sh('tar', ['-cf', file, '-C', layout, '.'])).code).toBe(0);
    const fresh = tspodEnv({});
    try {
      const l = await fresh.run(['load', '-i', file]);
      expect(l.stderr).toBe('');
      expect(l.stdout).toBe('Loaded image: dockersaved:v1\n');
      const r = await fresh.run(['run', '--network', 'none', '--rm', 'dockersaved:v1', 'sh', '-c', CHECK]);
      expect(r.stdout).toBe(EXPECTED);
      // a truncated archive: one line naming the file, nothing left in the store's tmp/
      const cut = join(work, 'cut.tar');
      writeFileSync(cut, readFileSync(file).subarray(0, 5000));
      const bad = await fresh.run(['load', '-i', cut]);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr.trim().split('\n')).toHaveLength(1);
      expect(bad.stderr).toContain(cut);
      expect(readdirSync(join(fresh.root, 'store', 'tmp'))).toEqual([]);
    } finally {
      fresh.cleanup();
    }
  });

  it('exports the container\'s flattened file system and imports it as a runnable image', async () => {
    const file = join(work, 'export.tar');
    const e = await t.run(['export', '-o', file, 'c1']);
    expect(e.code, e.stderr).toBe(0);
    const list = (await sh('tar', ['-tf', file])).stdout.split('\n');
    expect(list).toContain('root/new.txt');
    expect(list).toContain('etc/apk/only');
    expect(list).not.toContain('etc/issue');
    expect(list.some((n) => n.includes('.wh.'))).toBe(false);
    const i = await t.run(['import', '-c', 'CMD ["sh"]', file, 'imported:v1']);
    expect(i.code, i.stderr).toBe(0);
    const r = await t.run(['run', '--network', 'none', '--rm', 'imported:v1', 'sh', '-c', CHECK]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(EXPECTED);
  });
});
