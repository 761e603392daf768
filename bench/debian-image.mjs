// The Debian image of the pull benchmark: `debootstrap --variant=minbase bookworm` (from the Debian mirror apt
// is configured with) made into a one-layer OCI image layout, as Docker's debian:bookworm is one layer.
// Built once and kept in the cache folder (≈ 30 s); pushed to the bench registry with skopeo.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error || r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? `exit ${r.status}: ${(r.stderr || '').trim().split('\n').slice(-3).join(' | ')}`}`);
  }
  return r.stdout;
};

async function sha256File(path) {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk);
  return h.digest('hex');
}

/** The mirror apt uses (deb822 debian.sources or a sources.list line), else deb.debian.org. */
export function aptMirror() {
  for (const f of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    try {
      const text = readFileSync(f, 'utf8');
      const m = /^URIs:\s*(\S+)/m.exec(text) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/m.exec(text);
      if (m && !m[1].includes('security')) return m[1];
    } catch {
      // next
    }
  }
  return 'http://deb.debian.org/debian';
}

/** Returns the OCI layout directory (tag "bookworm") and the layer's blob path and sizes; builds it when absent. */
export async function debianLayout(cacheDir, log) {
  const layout = join(cacheDir, 'debian-oci');
  const info = join(layout, 'bench-info.json');
  if (existsSync(info)) return JSON.parse(readFileSync(info, 'utf8'));
  if (!existsSync('/usr/sbin/debootstrap')) throw new Error('debootstrap is not installed (apt-get install debootstrap)');
  const work = join(cacheDir, `debian-build-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    const rootfs = join(work, 'rootfs');
    const mirror = aptMirror();
    log(`debootstrap --variant=minbase bookworm from ${mirror} (≈ 30 s)`);
    run('debootstrap', ['--variant=minbase', 'bookworm', rootfs, mirror]);
    // What a container image leaves out: downloaded packages, apt lists, device nodes, logs.
    for (const d of ['var/cache/apt/archives', 'var/lib/apt/lists', 'dev', 'proc', 'sys', 'run', 'tmp', 'var/log']) {
      const p = join(rootfs, d);
      run('sh', ['-c', 'find "$1" -mindepth 1 -delete 2>/dev/null; true', 'sh', p]);
    }
    const tar = join(work, 'layer.tar');
    run('tar', ['--numeric-owner', '--xattrs', '--xattrs-include=security.capability', '--sort=name', '--mtime=2024-01-01', '-C', rootfs, '-cf', tar, '.']);
    const diffId = `sha256:${await sha256File(tar)}`;
    run('gzip', ['-6', '-n', tar]);
    const gz = `${tar}.gz`;
    const digest = await sha256File(gz);
    const blobs = join(work, 'oci', 'blobs', 'sha256');
    mkdirSync(blobs, { recursive: true });
    renameSync(gz, join(blobs, digest));
    const put = (obj) => {
      const data = Buffer.from(JSON.stringify(obj));
      const hex = createHash('sha256').update(data).digest('hex');
      writeFileSync(join(blobs, hex), data);
      return { digest: `sha256:${hex}`, size: data.length };
    };
    const config = put({
      architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['bash'] },
      rootfs: { type: 'layers', diff_ids: [diffId] },
      history: [{ created: '2024-01-01T00:00:00Z', created_by: 'debootstrap --variant=minbase bookworm' }],
    });
    const layerSize = statSync(join(blobs, digest)).size;
    const manifest = put({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${digest}`, size: layerSize }],
    });
    writeFileSync(join(work, 'oci', 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    writeFileSync(join(work, 'oci', 'index.json'), JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'bookworm' } }],
    }));
    const result = {
      layout, tag: 'bookworm', layerBlob: join(layout, 'blobs', 'sha256', digest),
      compressedBytes: layerSize, uncompressedBytes: statSync(join(rootfs, '..', 'layer.tar'), { throwIfNoEntry: false })?.size ?? null,
    };
    result.uncompressedBytes = Number(run('sh', ['-c', 'gzip -dc "$1" | wc -c', 'sh', join(blobs, digest)]).trim());
    writeFileSync(join(work, 'oci', 'bench-info.json'), JSON.stringify(result, null, 2));
    rmSync(layout, { recursive: true, force: true });
    renameSync(join(work, 'oci'), layout);
    return result;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
