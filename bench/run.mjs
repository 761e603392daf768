#!/usr/bin/env node
// tspod side by side with the tools its users would pick instead (podman, runc/crun, skopeo, tar), on this
// machine, in one run: every group's cases run interleaved (A B C A B C …) and are compared by median.
//
//   npm run bench [-- --runs N] [-- --only startup,run,bridge,pull,scale] [-- --pull-runs N] [-- --scale-runs N]
//
// Installs nothing: each peer that is missing is reported and skipped. Needs root (namespaces, overlay, cgroups),
// a built tree (`npm run build`), docker-registry, skopeo and umoci (as the fixture registry does), and for the
// Debian pull image debootstrap and the Debian mirror apt uses (built once into .tspod-test/bench-cache/).
// Every store, state dir and registry it uses is private and removed at the end. Writes
// bench/results/<time>.json. BENCHMARKS.md explains the figures.
import { createRequire } from 'node:module';
import { cpus, totalmem, release, loadavg } from 'node:os';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { becomeSubreaper, fmtMs, inFlight, interleave, log, median, memorySampler, sh, shAsync, which } from './lib.mjs';
import { debianLayout } from './debian-image.mjs';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const args = parseArgs(process.argv.slice(2));
const RUNS = args.runs ?? 15;
const only = new Set((args.only ?? 'startup,run,bridge,bridge-warm,pull,scale').split(','));

if (process.getuid?.() !== 0) {
  log('needs root (namespaces, overlay mounts, cgroups), as tspod itself does');
  process.exit(2);
}
if (!existsSync(join(REPO, 'dist', 'tspod.cjs'))) {
  log('the CLI is not built: run `npm run build` first');
  process.exit(2);
}

const tools = Object.fromEntries(['podman', 'runc', 'crun', 'skopeo', 'umoci', 'tar', 'docker-registry', 'debootstrap'].map((t) => [t, which(t)]));
const version = (t, a = ['--version']) => (tools[t] ? sh(tools[t], a, { allowFail: true }).stdout.split('\n')[0].trim() : 'missing');
const machine = {
  date: new Date().toISOString(),
  kernel: release(),
  cpu: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  cgroups: existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'v2' : existsSync('/sys/fs/cgroup/unified') ? 'hybrid' : 'v1',
  tools: Object.fromEntries(Object.keys(tools).map((t) => [t, t === 'docker-registry' || t === 'debootstrap' ? (tools[t] ? 'present' : 'missing') : version(t, t === 'tar' ? ['--version'] : ['--version'])])),
  gitHead: sh('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { allowFail: true }).stdout.trim(),
  loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
  // Removed memory cgroups the kernel keeps while page cache is charged to them (every container of any
  // engine leaves some): hundreds of them slow every process start here (BENCHMARKS.md, "Noise").
  memoryCgroups: memoryCgroups(),
};
log(`machine: ${JSON.stringify(machine)}`);
if (machine.memoryCgroups > 100) {
  log(`warning: ${machine.memoryCgroups} memory cgroups exist, most of them removed ones the kernel still keeps: they slow every process start; ` +
    '`sync; echo 3 > /proc/sys/vm/drop_caches` frees them (BENCHMARKS.md, "Noise")');
}

/** num_cgroups of the memory controller in /proc/cgroups (live and dying groups), or undefined. */
function memoryCgroups() {
  try {
    const line = readFileSync('/proc/cgroups', 'utf8').split('\n').find((l) => l.startsWith('memory\t'));
    return line ? Number(line.split('\t')[2]) : undefined;
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------------------------------------------------
// private roots, registry, images

mkdirSync(join(REPO, '.tspod-test'), { recursive: true });
const WORK = mkdtempSync(join(REPO, '.tspod-test', 'bench-'));
const CACHE = join(REPO, '.tspod-test', 'bench-cache');
const REGISTRY_ENV = { ...process.env, TSPOD_FIXTURE_DIR: join(REPO, '.tspod-test', 'bench-registry') };
const cleanups = [];
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    interrupted = true;
    log(`${sig}: cleaning up`);
    cleanup();
    process.exit(130);
  });
}

const groups = [];
try {
  await becomeSubreaper(require); // detached monitors (conmon, tspod's) stay in our process tree for memory sampling

  const registry = startRegistry();
  const tspodRoot = join(WORK, 'tspod');
  const tspodEnv = {
    ...process.env,
    TSPOD_ROOT: join(tspodRoot, 'root'),
    TSPOD_RUNROOT: join(tspodRoot, 'run'),
    TSPOD_CONFIG: join(WORK, 'tspod-config.json'),
  };
  writeFileSync(tspodEnv.TSPOD_CONFIG, JSON.stringify({ registryMirrors: { 'docker.io': [registry.url] } }));
  const tspod = (...a) => ({ cmd: process.execPath, args: [join(REPO, 'bin', 'tspod.js'), ...a], env: tspodEnv });
  cleanups.push(() => { // containers an interrupted scale group left running (their monitors outlive the CLI)
    const t = tspod('ps', '-aq');
    const ids = sh(t.cmd, t.args, { env: t.env, allowFail: true }).stdout.split(/\s+/).filter(Boolean);
    if (ids.length) sh(t.cmd, [...tspod('rm', '-f').args, ...ids], { env: t.env, allowFail: true });
  });
  const tspodCommands = Object.keys(JSON.parse(readFileSync(join(REPO, 'oclif.manifest.json'), 'utf8')).commands);

  const podmanRoot = join(WORK, 'podman');
  const podmanBase = ['--root', join(podmanRoot, 'root'), '--runroot', join(podmanRoot, 'run'), '--tmpdir', join(podmanRoot, 'tmp'),
    '--runtime', 'runc', '--cgroup-manager=cgroupfs', '--events-backend=file', '--storage-driver', 'overlay'];
  const podmanRun = ['--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768'];
  const podman = (...a) => ({ cmd: tools.podman, args: [...podmanBase, ...a] });
  // podman's default network bridge (podman0 with netavark, cni-podman0 with CNI), and the host's `ip nat` /
  // `ip filter` tables that its firewall (iptables-nft) makes on first use: podman leaves them after `system
  // reset` (CNI even its CNI-FORWARD/CNI-ADMIN chains). What was not there before the bench is removed.
  const podmanBridges = ['podman0', 'cni-podman0'].filter((b) => !existsSync(`/sys/class/net/${b}`));
  const ipTables = () => {
    try {
      return sh('nft', ['list', 'tables'], { allowFail: true }).stdout.split('\n').filter((l) => /^table ip (nat|filter)$/.test(l));
    } catch {
      return []; // no nft program: nothing of this kind to clean
    }
  };
  const ipTablesBefore = ipTables();
  if (tools.podman) {
    cleanups.push(() => {
      sh(tools.podman, [...podmanBase, 'rm', '-a', '-f'], { allowFail: true });
      sh(tools.podman, [...podmanBase, 'system', 'reset', '--force'], { allowFail: true });
      for (const b of podmanBridges) if (existsSync(`/sys/class/net/${b}`)) sh('ip', ['link', 'del', b], { allowFail: true });
      for (const table of ipTables().filter((t) => !ipTablesBefore.includes(t))) sh('nft', ['delete', ...table.split(' ')], { allowFail: true });
    });
  }
  const alpineRef = `${registry.host}/library/alpine:3.19`;

  // --- CLI start-up ------------------------------------------------------------------------------------------
  if (only.has('startup')) {
    const listCmd = tspodCommands.includes('ps') ? 'ps' : 'images';
    const cases = [
      { name: 'node -e 0', cmd: process.execPath, args: ['-e', '0'] },
      { name: 'tspod --version', ...tspod('--version') },
      { name: `tspod ${listCmd}`, ...tspod(listCmd) },
    ];
    if (tools.podman) cases.push({ name: 'podman --version', ...podman('--version') });
    addGroup(group('startup', 'CLI start-up', await interleave(cases, { runs: Math.max(RUNS, 20), warmup: 2 }), 'node -e 0',
      listCmd === 'ps' ? undefined : '`tspod ps` does not exist yet (issue 7); `tspod images` (reads the store) stands in'));
  }

  // --- run latency -------------------------------------------------------------------------------------------
  if (only.has('run') || only.has('bridge') || only.has('bridge-warm') || only.has('scale')) {
    sh(...spread(tspod('pull', '-q', 'alpine:3.19')));
    if (tools.podman) sh(...spread(podman('pull', '-q', '--tls-verify=false', alpineRef)));
  }
  if (only.has('run')) {
    const cases = [{ name: 'tspod run --rm --network none', ...tspod('run', '--rm', '--network', 'none', 'alpine:3.19', 'true') }];
    if (tools.podman) cases.push({ name: 'podman run --rm --network none', ...podman('run', '--rm', '--network', 'none', ...podmanRun, alpineRef, 'true') });
    const bundle = makeBundle(registry);
    for (const rt of ['runc', 'crun']) {
      if (!tools[rt] || !bundle) continue;
      const state = join(WORK, `${rt}-state`);
      cases.push({ name: `${rt} run (bundle)`, cmd: tools[rt], args: ['--root', state, 'run', '-b', bundle, `bench-${process.pid}`] });
      cleanups.push(() => sh(tools[rt], ['--root', state, 'delete', '-f', `bench-${process.pid}`], { allowFail: true }));
    }
    addGroup(group('run', 'run --rm --network none … true', await interleave(cases, { runs: RUNS }), 'tspod run --rm --network none'));
  }
  if (only.has('bridge')) {
    const p = tspod('run', '--rm', '--network', 'bridge', 'alpine:3.19', 'true');
    const probe = sh(p.cmd, p.args, { env: p.env, allowFail: true });
    const cases = [];
    let note;
    if (probe.status === 0) cases.push({ name: 'tspod run --rm (bridge)', ...tspod('run', '--rm', '--network', 'bridge', 'alpine:3.19', 'true') });
    else note = `tspod has no bridge network yet: ${probe.stderr.trim().split('\n')[0]}`;
    if (tools.podman) cases.push({ name: 'podman run --rm (default network)', ...podman('run', '--rm', ...podmanRun, alpineRef, 'true') });
    addGroup(group('bridge', 'run --rm with the default bridge network', await interleave(cases, { runs: RUNS }), 'tspod run --rm (bridge)', note));
  }

  if (only.has('bridge-warm')) {
    // The same runs while one other container is on each engine's default network (a host that runs a
    // service): neither tspod nor podman (netavark) then creates or deletes its bridge and base firewall
    // rules per run, so this is each engine's own per-container network work.
    const keepers = [];
    const keep = (name, c) => {
      const r = sh(c.cmd, c.args, { env: c.env ?? process.env, allowFail: true });
      if (r.status === 0) keepers.push(name);
      else log(`bridge-warm: ${name}'s keeper did not start: ${r.stderr.trim().split('\n')[0]}`);
      return r.status === 0;
    };
    const cases = [];
    if (keep('tspod', tspod('run', '-d', '--network', 'bridge', '--name', 'bench-keeper', 'alpine:3.19', 'sleep', '600'))) {
      cases.push({ name: 'tspod run --rm (bridge, warm)', ...tspod('run', '--rm', '--network', 'bridge', 'alpine:3.19', 'true') });
    }
    if (tools.podman && keep('podman', podman('run', '-d', ...podmanRun, '--name', 'bench-keeper', alpineRef, 'sleep', '600'))) {
      cases.push({ name: 'podman run --rm (default network, warm)', ...podman('run', '--rm', ...podmanRun, alpineRef, 'true') });
    }
    try {
      addGroup(group('bridge-warm', 'run --rm on the default network while another container uses it', await interleave(cases, { runs: RUNS }), 'tspod run --rm (bridge, warm)'));
    } finally {
      const unkeep = (c) => sh(c.cmd, c.args, { env: c.env ?? process.env, allowFail: true });
      if (keepers.includes('tspod')) unkeep(tspod('rm', '-f', 'bench-keeper'));
      if (keepers.includes('podman')) unkeep(podman('rm', '-f', '-t', '0', 'bench-keeper'));
    }
  }

  // --- pull --------------------------------------------------------------------------------------------------
  if (only.has('pull')) {
    const images = [{ key: 'alpine', name: 'alpine:3.19', repo: 'library/alpine:3.19' }];
    try {
      const deb = await debianLayout(CACHE, log);
      sh(tools.skopeo, ['copy', '-q', '--dest-tls-verify=false', `oci:${deb.layout}:${deb.tag}`, `docker://${registry.host}/library/debian:bookworm`]);
      images.push({ key: 'debian', name: 'debian:bookworm', repo: 'library/debian:bookworm', info: deb });
    } catch (err) {
      log(`debian image unavailable, pull benchmark on alpine only: ${err.message}`);
      addGroup({ id: 'pull-debian', title: 'pull debian:bookworm', note: `skipped: ${err.message}`, rows: [] });
    }
    for (const img of images) {
      const runs = img.key === 'debian' ? (args.pullRuns ?? 10) : RUNS;
      const cases = [];
      const wipe = (dir) => () => rmSync(dir, { recursive: true, force: true });
      cases.push({ name: `tspod pull ${img.name}`, ...tspod('pull', '-q', img.name), before: wipe(join(tspodRoot, 'root')) });
      if (tools.podman) {
        const rmi = () => sh(tools.podman, [...podmanBase, 'rmi', '-a', '-f'], { allowFail: true });
        cases.push({ name: `podman pull ${img.name}`, ...podman('pull', '-q', '--tls-verify=false', `${registry.host}/${img.repo}`), before: rmi });
      }
      const layoutDir = join(WORK, `skopeo-${img.key}`);
      if (tools.skopeo) {
        cases.push({ name: `skopeo copy → oci: ${img.name}`, cmd: tools.skopeo,
          args: ['copy', '-q', '--src-tls-verify=false', `docker://${registry.host}/${img.repo}`, `oci:${layoutDir}:x`], before: wipe(layoutDir) });
      }
      const layers = layerBlobs(registry, img, tools.skopeo);
      if (layers.length) {
        // The floor: each run into a new directory under a parent marked an Orlov top directory (chattr +T), so
        // its inodes come from a block group of their own. On ext4 without a journal (these machines), a
        // directory emptied just before is the worst place to write: every inode allocation there scans past
        // the inodes freed in the last 60–360 s (fs/ext4/ialloc.c recently_deleted()). The second row is that
        // case (the old floor: the same directory, emptied before each run), as podman's pull after `rmi -a` meets it.
        const floor = join(WORK, `tar-${img.key}-floor`);
        mkdirSync(floor);
        sh('chattr', ['+T', floor], { allowFail: true });
        const extract = (dir) => layers.map((_, i) => `tar -xzf "$${i + 2}" -C "${dir}"`).join(' && ');
        cases.push({ name: `tar -xzf (layers, the floor)`, cmd: 'sh', args: ['-c', `d="$1/run-$$" && mkdir "$d" && ${extract('$d')}`, 'sh', floor, ...layers],
          before: () => { for (const n of readdirSync(floor)) rmSync(join(floor, n), { recursive: true, force: true }); } });
        const dest = join(WORK, `tar-${img.key}`);
        cases.push({ name: `tar -xzf into the dir just emptied`, cmd: 'sh', args: ['-c', extract('$1'), 'sh', dest, ...layers],
          before: () => { rmSync(dest, { recursive: true, force: true }); mkdirSync(dest); } });
      }
      const size = img.info ? ` (${mib(img.info.compressedBytes)} compressed, ${mib(img.info.uncompressedBytes)} uncompressed)` : '';
      addGroup(group(`pull-${img.key}`, `fresh pull of ${img.name}${size}`, await interleave(cases, { runs, warmup: 1 }), `tspod pull ${img.name}`));
    }
  }

  // --- 50 detached containers ----------------------------------------------------------------------------------
  if (only.has('scale')) {
    // The pull groups wiped both stores: pull again (untimed).
    sh(...spread(tspod('pull', '-q', 'alpine:3.19')));
    if (tools.podman) sh(...spread(podman('pull', '-q', '--tls-verify=false', alpineRef)));
  }
  if (only.has('scale')) addGroup(await scale({ tspod, podman, podmanRun, alpineRef, tspodCommands }));
} catch (err) {
  log(`failed: ${err.stack ?? err.message}`);
  process.exitCode = 1;
} finally {
  if (!interrupted) cleanup();
}

printAndSave();

// ------------------------------------------------------------------------------------------------------------

function group(id, title, rows, reference, note) {
  const ref = rows.find((r) => r.name === reference) ?? rows.find((r) => r.runs > 0);
  for (const r of rows) r.ratio = ref && ref.runs && r.runs ? r.median / ref.median : NaN;
  return { id, title, reference: ref?.name, note, rows: rows.map((r) => ({ name: r.name, median: r.median, min: Math.min(...r.ms), runs: r.runs, ratio: r.ratio, error: r.error, ms: r.ms })) };
}

async function scale({ tspod, podman, podmanRun, alpineRef, tspodCommands }) {
  const N = 50;
  // Every tick reads /proc/*/stat of the whole machine and smaps_rollup of every process in the tree (≈ 8 ms
  // with 50 containers up, and smaps_rollup takes the mmap lock of a CLI that is starting): at 50 ms that
  // is a sixth of a core taken from the engines it measures. The peak is the end state (50 containers,
  // sampled again at stop()) plus a CLI: 200 ms still sees it.
  const SAMPLE_MS = 200;
  const runs = args.scaleRuns ?? 3;
  const out = { id: 'scale', title: `start ${N} detached containers (sleep), then remove them`, rows: [] };
  const tspodHasDetach = tspodCommands.includes('rm') && JSON.parse(readFileSync(join(REPO, 'oclif.manifest.json'), 'utf8')).commands.run?.flags?.detach;
  const sides = [];
  if (tspodHasDetach) {
    sides.push({ name: 'tspod', start: (i) => tspod('run', '-d', '--network', 'none', '--name', `bench-${i}`, 'alpine:3.19', 'sleep', '600'),
      remove: () => tspod('rm', '-f', ...Array.from({ length: N }, (_, i) => `bench-${i}`)) });
  } else {
    out.note = 'tspod has no `run -d`/`rm` yet (issue 7 not landed when this ran): podman measured alone';
  }
  if (tools.podman) {
    sides.push({ name: 'podman', start: (i) => podman('run', '-d', '--network', 'none', ...podmanRun, '--name', `bench-${i}`, alpineRef, 'sleep', '600'),
      remove: () => podman('rm', '-f', '-t', '0', ...Array.from({ length: N }, (_, i) => `bench-${i}`)) });
  }
  const res = new Map(sides.map((s) => [s.name, { total: [], start: [], remove: [], peak: [] }]));
  for (let round = 0; round < runs; round++) {
    for (const s of sides) {
      const r = res.get(s.name);
      const sampler = memorySampler(SAMPLE_MS);
      const t0 = performance.now();
      try {
        for (let i = 0; i < N; i++) {
          const c = s.start(i);
          await shAsync(c.cmd, c.args, { env: c.env ?? process.env, timeoutMs: 60_000 });
        }
        const t1 = performance.now();
        const c = s.remove();
        await shAsync(c.cmd, c.args, { env: c.env ?? process.env, timeoutMs: 60_000 });
        const t2 = performance.now();
        r.start.push(t1 - t0);
        r.remove.push(t2 - t1);
        r.total.push(t2 - t0);
        r.peak.push(sampler.stop());
      } catch (err) {
        sampler.stop();
        r.error = err.message;
        log(`scale ${s.name}: ${err.message}`);
        const c = s.remove();
        sh(c.cmd, c.args, { env: c.env ?? process.env, allowFail: true });
      }
    }
  }
  const ref = res.get('tspod');
  for (const [name, r] of res) {
    out.rows.push({ name: `${name}: ${N} × run -d, then rm -f`, median: median(r.total), startMedian: median(r.start), removeMedian: median(r.remove),
      peakMiB: median(r.peak), runs: r.total.length, error: r.error, ms: r.total,
      ratio: ref?.total.length ? median(r.total) / median(ref.total) : NaN,
      memRatio: ref?.peak.length ? median(r.peak) / median(ref.peak) : NaN });
  }
  out.reference = ref ? `tspod: ${N} × run -d, then rm -f` : undefined;
  return out;
}

function startRegistry() {
  log('starting the bench registry (fixtures/registry.mjs populate)');
  sh(process.execPath, [join(REPO, 'fixtures', 'registry.mjs'), 'populate', '--lease', String(process.pid)], { env: REGISTRY_ENV, stdio: ['ignore', 'pipe', 'inherit'] });
  cleanups.push(() => sh(process.execPath, [join(REPO, 'fixtures', 'registry.mjs'), 'stop', '--lease', String(process.pid)], { env: REGISTRY_ENV, allowFail: true }));
  const st = JSON.parse(sh(process.execPath, [join(REPO, 'fixtures', 'registry.mjs'), 'status'], { env: REGISTRY_ENV }).stdout);
  return { url: st.url, host: st.host };
}

/** An OCI runtime bundle of alpine:3.19 (skopeo → OCI layout → umoci unpack), running `true` with no network. */
function makeBundle(registry) {
  if (!tools.skopeo || !tools.umoci) return undefined;
  const layout = join(WORK, 'alpine-oci');
  const bundle = join(WORK, 'alpine-bundle');
  sh(tools.skopeo, ['copy', '-q', '--src-tls-verify=false', `docker://${registry.host}/library/alpine:3.19`, `oci:${layout}:3.19`]);
  sh(tools.umoci, ['unpack', '--image', `${layout}:3.19`, bundle]);
  const configPath = join(bundle, 'config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  config.process.args = ['true'];
  config.process.terminal = false;
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  return bundle;
}

/** The layer blobs of an image, for the `tar -xzf` floor: from the Debian layout, else copied once with skopeo. */
function layerBlobs(registry, img, skopeo) {
  if (img.info) return [img.info.layerBlob];
  if (!skopeo) return [];
  const layout = join(WORK, `layers-${img.key}`);
  sh(skopeo, ['copy', '-q', '--src-tls-verify=false', `docker://${registry.host}/${img.repo}`, `oci:${layout}:x`]);
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const blob = (d) => join(layout, 'blobs', ...d.split(':'));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  return manifest.layers.map((l) => blob(l.digest));
}

function cleanup() {
  for (const child of inFlight) child.kill('SIGKILL');
  for (const c of cleanups.reverse()) {
    try {
      c();
    } catch (err) {
      log(`cleanup: ${err.message}`);
    }
  }
  cleanups.length = 0;
  // Nothing of ours may stay mounted (podman's storage mounts) before the work dir goes.
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((p) => p && p.startsWith(WORK));
  for (const m of mounts.reverse()) sh('umount', ['-l', m], { allowFail: true });
  rmSync(WORK, { recursive: true, force: true });
}

function printAndSave() {
  const lines = [];
  for (const g of groups) lines.push(...formatGroup(g));
  process.stdout.write(lines.join('\n') + '\n');
  const dir = join(REPO, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${machine.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ machine, runs: RUNS, groups }, null, 2) + '\n');
  process.stdout.write(`\nresults: ${file}\n`);
}

/** Adds a finished group and shows it on stderr at once (the full table goes to stdout at the end). */
function addGroup(g) {
  groups.push(g);
  process.stderr.write(formatGroup(g).join('\n') + '\n');
}

function formatGroup(g) {
  const lines = [];
  {
    lines.push('', `## ${g.title}${g.reference ? `   (ratio: median ÷ median of "${g.reference}")` : ''}`);
    if (g.note) lines.push(`note: ${g.note}`);
    for (const r of g.rows) {
      if (r.error && !r.runs) {
        lines.push(`  ${r.name.padEnd(44)} unavailable: ${r.error.slice(0, 160)}`);
        continue;
      }
      const extra = r.peakMiB !== undefined ? `  peak ${r.peakMiB.toFixed(0)} MiB (×${r.memRatio.toFixed(2)})  start ${fmtMs(r.startMedian)}  rm ${fmtMs(r.removeMedian)}` : `  min ${fmtMs(r.min)}`;
      lines.push(`  ${r.name.padEnd(44)} ${fmtMs(r.median).padStart(10)}  ×${Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : '—'}  (n=${r.runs})${extra}`);
    }
  }
  return lines;
}

function spread(c) {
  return [c.cmd, c.args, { env: c.env ?? process.env }];
}

function mib(bytes) {
  return bytes ? `${(bytes / 2 ** 20).toFixed(0)} MiB` : '?';
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--runs') out.runs = Number(v());
    else if (a === '--pull-runs') out.pullRuns = Number(v());
    else if (a === '--scale-runs') out.scaleRuns = Number(v());
    else if (a === '--only') out.only = v();
    else {
      process.stderr.write('usage: npm run bench -- [--runs N] [--pull-runs N] [--scale-runs N] [--only startup,run,bridge,bridge-warm,pull,scale]\n');
      process.exit(2);
    }
  }
  return out;
}
