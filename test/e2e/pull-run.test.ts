// Issue #2 end to end: the CLI as a user runs it, against the real fixture registry (Debian's
// docker-registry), real OverlayFS, real namespaces and real cgroups.
import { availableParallelism } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { hostname as hostHostname } from 'node:os';
import { join } from 'node:path';
import { startFixtureRegistry, alpineFixturesDir, layeredExpected, repoRoot, type FixtureRegistry } from '../support/registry.js';
import { tspodEnv, type TspodEnv } from '../support/tspod.js';
import { isRoot, haveOverlay } from '../support/caps.js';
import { mountsUnder, containerProcesses, tspodCgroups } from '../support/leftovers.js';
import { Store } from '../../store/index.js';
import { pullImage } from '../../src/image/pull.js';
import { RegistryClient } from '../../src/registry/client.js';

const gate = isRoot() ?? haveOverlay();
const alpine = alpineFixturesDir();

describe.skipIf(gate)('pull and run end to end', () => {
  let registry: FixtureRegistry;
  let t: TspodEnv;

  beforeAll(async () => {
    registry = await startFixtureRegistry();
    t = tspodEnv({ mirrorUrl: registry.url });
  });

  afterAll(async () => {
    try {
      // Nothing of what the tests created may be left on the host, pass or fail.
      expect(mountsUnder(t.root)).toEqual([]);
      expect(containerProcesses()).toEqual([]);
      expect(tspodCgroups()).toEqual([]);
    } finally {
      t?.cleanup();
      await registry?.stop();
    }
  });

  const sh = (script: string, ...flags: string[]) => t.run(['run', '--rm', ...flags, 'busybox', 'sh', '-c', script]);

  it('pulls busybox through the docker.io mirror and names it docker.io/library/busybox:latest', async () => {
    const r = await t.run(['pull', 'busybox']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('docker.io/library/busybox:latest');
    const images = await t.run(['images']);
    expect(images.stdout).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\n/);
    expect(images.stdout).toMatch(/\nbusybox\s+latest\s+[a-f0-9]{12}\s/);
  });

  it('runs a command as PID 1 that sees only its own processes', async () => {
    const r = await sh('echo pid=$$; ps -o pid,comm; true');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('pid=1\n');
    const pids = r.stdout.split('\n').slice(2).filter(Boolean).map((l) => Number(l.trim().split(/\s+/)[0]));
    // sh (pid 1) and ps itself, nothing from the host
    expect(pids).toHaveLength(2);
    expect(pids[0]).toBe(1);
  });

  it('has its own hostname, the image as /, no host path, and only lo without a network', async () => {
    const r = await sh(`hostname; ls /; test -e ${repoRoot()} && echo host-visible; ls /sys/class/net; cat /sys/class/net/lo/operstate`, '--network', 'none');
    expect(r.code).toBe(0);
    const [name, ...rest] = r.stdout.trim().split('\n');
    expect(name).toMatch(/^[a-f0-9]{12}$/);
    expect(name).not.toBe(hostHostname());
    expect(rest).toEqual(expect.arrayContaining(['bin', 'etc', 'proc', 'sys', 'dev', 'tmp']));
    expect(r.stdout).not.toContain('host-visible');
    expect(rest.slice(-2)).toEqual(['lo', 'unknown']);
    const named = await sh('hostname', '--hostname', 'web1');
    expect(named.stdout).toBe('web1\n');
  });

  it('keeps a file written in one --rm container out of the next one and out of the image layers', async () => {
    const marker = `marker-${process.pid}`;
    expect((await sh(`echo hi > /${marker} && cat /${marker}`)).stdout).toBe('hi\n');
    const again = await sh(`test -e /${marker}`);
    expect(again.code).toBe(1);
    const layers = join(t.root, 'store', 'layers');
    for (const l of readdirSync(layers)) {
      if (existsSync(join(layers, l, 'diff'))) expect(readdirSync(join(layers, l, 'diff'))).not.toContain(marker);
    }
  });

  it('passes the exit status through, 128+N for a signal, and 127 with one line for a missing command', async () => {
    expect((await sh('exit 3')).code).toBe(3);
    // killed from outside (PID 1 cannot be SIGKILLed from inside its own namespace)
    const sleeper = t.run(['run', '--rm', 'busybox', 'sleep', '30.25']);
    const pids = await waitForProcess('sleep 30.25');
    expect(pids).toHaveLength(1);
    process.kill(pids[0]!, 'SIGKILL');
    expect((await sleeper).code).toBe(137);
    const missing = await t.run(['run', '--rm', 'busybox', 'no-such-command']);
    expect(missing.code).toBe(127);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toContain('no-such-command');
    const notExec = await sh('true', '--entrypoint', '/etc/passwd');
    expect(notExec.code).toBe(126);
  });

  it('reports a bad image reference in one line with exit 125', async () => {
    const r = await t.run(['run', '--rm', 'Bad:Ref', 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('Bad:Ref');
  });

  it('enforces --memory: allocating 100 MB under 32m ends with 137 and an OOM report', async () => {
    const r = await sh('x=$(head -c 104857600 /dev/zero | tr "\\0" x); echo survived ${#x}', '--memory', '32m');
    expect(r.stdout).not.toContain('survived');
    expect(r.code).toBe(137);
    expect(r.stderr).toContain('out of memory');
  });

  it('enforces --pids-limit: a fork loop stops at the limit', async () => {
    const loop = 'for i in $(seq 1 50); do sleep 2 & done; echo all-started';
    const limited = await sh(loop, '--pids-limit', '20');
    expect(limited.stdout).not.toContain('all-started');
    expect(limited.stderr).toContain("can't fork");
    // the same loop without the limit starts every process
    const free = await sh(loop);
    expect(free.stdout).toContain('all-started');
  });

  it('puts --cpus 0.5 into the cgroup as a 50000/100000 quota', async () => {
    // Read from the host: the container's cgroup, found through its init's /proc/PID/cgroup.
    const run = t.run(['run', '--rm', '--cpus', '0.5', 'busybox', 'sleep', '3.25']);
    const [pid] = await waitForProcess('sleep 3.25');
    const quota = cpuQuotaOf(pid!);
    const r = await run;
    expect(r.code).toBe(0);
    expect(quota).toBe('50000/100000');
  });

  it('--cpus above the host\'s CPUs and a --memory-swap below --memory or without it are refused as docker does; --memory-swap is set', async () => {
    const n = availableParallelism();
    const many = await sh('true', '--cpus', String(n + 1));
    expect([many.code, many.stderr]).toEqual([125, `tspod: invalid --cpus "${n + 1}": the range is 0.01 to ${n}.00, as there are only ${n} CPUs available\n`]);
    // docker: --cpus 0 and --pids-limit 0 are no limit
    const zero = await sh('cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max', '--cpus', '0', '--pids-limit', '0');
    expect([zero.code, zero.stdout], zero.stderr).toEqual([0, 'max\n']);
    const alone = await sh('true', '--memory-swap', '64m');
    expect([alone.code, alone.stderr]).toEqual([125, 'tspod: invalid --memory-swap "64m": it needs --memory (memory plus swap)\n']);
    const below = await sh('true', '-m', '64m', '--memory-swap', '32m');
    expect(below.code).toBe(125);
    expect(below.stderr).toMatch(/^tspod: invalid --memory-swap "32m": .*at least --memory 64m\n$/);
    // memory + swap = 48m: v1's memory.memsw.limit_in_bytes, v2's memory.swap.max (the swap alone)
    const r = await sh('cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.swap.max', '-m', '32m', '--memory-swap', '48m');
    expect(r.code, r.stderr).toBe(0);
    expect(['50331648', '16777216']).toContain(r.stdout.trim());
    const c = await t.run(['create', '--name', 'swapped', '-m', '32m', '--memory-swap', '48m', 'busybox', 'true']);
    expect(c.code, c.stderr).toBe(0);
    expect((await t.run(['inspect', '-f', '{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}', 'swapped'])).stdout).toBe('33554432 50331648\n');
    expect((await t.run(['rm', 'swapped'])).code).toBe(0);
  });

  it('mounts /sys/fs/cgroup read-only with the container\'s own cgroup as the root, as docker does', async () => {
    // cgroup v1 (these machines): a tmpfs with one mount per hierarchy; v2: a single cgroup2 mount.
    const v1 = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => / - cgroup cgroup \S*\bmemory\b/.test(l));
    const dir = v1 ? '/sys/fs/cgroup/memory' : '/sys/fs/cgroup';
    const r = await sh([
      `awk '$5 ~ "^/sys/fs/cgroup" { i = 7; while ($i != "-") i++; print $5, $6, $(i + 1) }' /proc/self/mountinfo`, // mount point, options, file system type
      `echo "limit $(cat ${dir}/${v1 ? 'memory.limit_in_bytes' : 'memory.max'})"`,
      `echo "procs $(cat ${dir}/cgroup.procs | tr "\\n" " ")"`,
      'mkdir /sys/fs/cgroup/x 2>/dev/null; echo "mkdir $?"',
    ].join('; '), '--memory', '64m');
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const mounts = lines.filter((l) => l.startsWith('/sys/fs/cgroup'));
    if (v1) {
      expect(mounts[0]).toMatch(/^\/sys\/fs\/cgroup ro,\S+ tmpfs$/);
      expect(mounts).toContainEqual(expect.stringMatching(/^\/sys\/fs\/cgroup\/memory ro,\S+ cgroup$/));
      expect(mounts.length).toBeGreaterThan(2);
    } else {
      expect(mounts).toEqual([expect.stringMatching(/^\/sys\/fs\/cgroup ro,\S+ cgroup2$/)]);
    }
    expect(lines).toContain('limit 67108864');
    // the root of the view is the container's group: its processes only (sh as PID 1, cat, tr), not the caller's
    const procs = lines.find((l) => l.startsWith('procs '))!.slice(6).trim().split(' ').map(Number);
    expect(procs).toContain(1);
    expect(Math.max(...procs)).toBeLessThan(10);
    expect(lines).toContain('mkdir 1');
  });

  it('shows exactly the files of an image whose layers delete files and make a directory opaque', async () => {
    expect((await t.run(['pull', 'layered'])).code).toBe(0);
    const script = 'find /layered | sort | while read p; do if [ -L "$p" ]; then ty=symlink; elif [ -d "$p" ]; then ty=dir; else ty=file; fi; ' +
      'echo "$p $ty $(stat -c %a "$p") $(stat -c %u:%g "$p")"; done';
    const r = await t.run(['run', '--rm', 'layered', 'sh', '-c', script]);
    expect(r.code, r.stderr).toBe(0);
    const expected = layeredExpected().map((l) => {
      const [p, ty, mode, owner] = l.split(' ');
      return `${p} ${ty} ${ty === 'symlink' ? '777' : String(Number.parseInt(mode!, 8).toString(8))} ${owner}`;
    });
    expect(r.stdout.trim().split('\n')).toEqual(expected);
    const contents = await t.run(['run', '--rm', 'layered', 'sh', '-c', 'for f in $(find /layered -type f | sort); do echo "$f=$(cat $f)"; done']);
    const want = layeredExpected().filter((l) => l.split(' ')[1] === 'file').map((l) => {
      const parts = l.split(' ');
      return `${parts[0]}=${(JSON.parse(parts.slice(4).join(' ')) as string).replace(/\n$/, '')}`;
    });
    expect(contents.stdout.trim().split('\n')).toEqual(want);
  });

  describe.skipIf(!alpine)('genuine Alpine images', () => {
    it('pulls alpine:3.19 by full reference, picks amd64 from the index, stores the registry\'s digests', async () => {
      const full = `${registry.host}/library/alpine:3.19`;
      const r = await t.run(['pull', full]);
      expect(r.code, r.stderr).toBe(0);
      const indexRes = await fetch(`${registry.url}/v2/library/alpine/manifests/3.19`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } });
      const indexBytes = Buffer.from(await indexRes.arrayBuffer());
      const index = JSON.parse(indexBytes.toString()) as { manifests: { digest: string; platform: { architecture: string } }[] };
      const amd64 = index.manifests.find((m) => m.platform.architecture === 'amd64')!;
      const refs = JSON.parse(readFileSync(join(t.root, 'store', 'refs.json'), 'utf8')) as { refs: Record<string, { digest: string }> };
      expect(refs.refs[full]?.digest).toBe(amd64.digest);
      expect(r.stdout).toContain(`Digest: sha256:${createHash('sha256').update(indexBytes).digest('hex')}`);
      // every stored blob's bytes hash to its name, and the layer blob equals the registry's
      const blobs = join(t.root, 'store', 'blobs', 'sha256');
      for (const hex of readdirSync(blobs)) {
        expect(createHash('sha256').update(readFileSync(join(blobs, hex))).digest('hex')).toBe(hex);
      }
      const manifest = JSON.parse(readFileSync(join(blobs, amd64.digest.slice(7)), 'utf8')) as { layers: { digest: string }[] };
      const layerRes = await fetch(`${registry.url}/v2/library/alpine/blobs/${manifest.layers[0]!.digest}`);
      expect(Buffer.from(await layerRes.arrayBuffer()).equals(readFileSync(join(blobs, manifest.layers[0]!.digest.slice(7))))).toBe(true);
    });

    it('pulls alpine:3.19 through the mirror, and a second pull makes no blob requests', async () => {
      const store = await Store.open(join(t.root, 'store'));
      try {
        const config = { registryMirrors: { 'docker.io': [registry.url] } };
        const first = new RegistryClient({ config });
        const a = await pullImage('alpine:3.19', { store, config, client: first });
        await first.close();
        expect(a.name).toBe('docker.io/library/alpine:3.19');
        expect(a.platform.architecture).toBe('amd64');
        const second = new RegistryClient({ config });
        const b = await pullImage('alpine:3.19', { store, config, client: second });
        await second.close();
        expect(b.manifestDigest).toBe(a.manifestDigest);
        expect(second.stats.blobRequests).toBe(0);
        expect(b.layersFetched).toBe(0);
      } finally {
        store.close();
      }
    });

    it('fetches the arm64 image with --platform linux/arm64', async () => {
      const arm = tspodEnv({ mirrorUrl: registry.url });
      try {
        const r = await arm.run(['pull', '--platform', 'linux/arm64', 'alpine:3.19']);
        expect(r.code, r.stderr).toBe(0);
        const list = JSON.parse((await arm.run(['images', '--json'])).stdout) as { imageId: string }[];
        const config = JSON.parse(readFileSync(join(arm.root, 'store', 'blobs', 'sha256', list[0]!.imageId.slice(7)), 'utf8')) as { architecture: string; variant?: string };
        expect(config.architecture).toBe('arm64');
      } finally {
        arm.cleanup();
      }
    });

    it('runs alpine 3.19 and 3.20 and prints their releases', async () => {
      const a = await t.run(['run', '--rm', 'alpine:3.19', 'cat', '/etc/alpine-release']);
      expect(a.stdout, a.stderr).toBe('3.19.4\n');
      const b = await t.run(['run', '--rm', 'alpine:3.20', 'cat', '/etc/alpine-release']);
      expect(b.stdout, b.stderr).toBe('3.20.3\n');
    });

    it('runs the issue\'s example: release, hostname and ps', async () => {
      const r = await t.run(['run', '--rm', 'alpine:3.19', '/bin/sh', '-c', 'cat /etc/alpine-release; hostname; ps']);
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).toBe('3.19.4');
      expect(lines[1]).not.toBe(hostHostname());
      // sh execs its last command, so ps is PID 1 and the only process: nothing of the host's
      const procs = lines.slice(2).filter((l) => /^\s*\d+\s/.test(l));
      expect(procs).toHaveLength(1);
      expect(procs[0]).toMatch(/^\s*1\s+root\s.*\bps$/);
    });
  });
});

/** The pids of container processes whose command line is exactly `cmdline` (waits up to 5 s for one). */
async function waitForProcess(cmdline: string): Promise<number[]> {
  for (let i = 0; i < 100; i++) {
    const pids = containerProcesses().filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') === cmdline;
      } catch {
        return false;
      }
    });
    if (pids.length > 0) return pids;
    await new Promise((r) => setTimeout(r, 50));
  }
  return [];
}

/** "quota/period" of a process's cpu cgroup (v1 cpu controller, or v2 cpu.max). */
function cpuQuotaOf(pid: number): string | undefined {
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers === undefined || path === undefined) continue;
    if (controllers.split(',').includes('cpu')) {
      const dir = join('/sys/fs/cgroup', readdirSync('/sys/fs/cgroup').find((d) => d.split(',').includes('cpu')) ?? 'cpu', path);
      return `${readFileSync(join(dir, 'cpu.cfs_quota_us'), 'utf8').trim()}/${readFileSync(join(dir, 'cpu.cfs_period_us'), 'utf8').trim()}`;
    }
    if (controllers === '' && existsSync(join('/sys/fs/cgroup', path, 'cpu.max'))) {
      return readFileSync(join('/sys/fs/cgroup', path, 'cpu.max'), 'utf8').trim().replace(' ', '/');
    }
  }
  return undefined;
}
