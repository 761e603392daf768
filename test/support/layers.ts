// Crafted images for the store and unpack tests: layer tars written byte for byte here (every entry kind,
// hostile names, binary xattrs, GNU and pax long names), GNU tar for sparse files, and files copied from the
// host (getcap and its libraries). An image is written as an OCI layout and pushed with skopeo into the
// fixture registry; a push is skipped when the registry already has the manifest (every timestamp is fixed,
// so a rebuild gives the same digests and the registry acts as the cache, like fixtures/registry.mjs).
//
//   const img = await pushCraftedImage(registry, 'library/crafted-fidelity:1', [busyboxBase, craftLayer([...])]);
//   tspod pull crafted-fidelity:1   (with the registry as the docker.io mirror)

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { FixtureRegistry } from './registry.js';

export const FIXED_MTIME = 1704067200; // 2024-01-01T00:00:00Z

export interface LayerEntry {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo';
  data?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** pax records, e.g. { 'SCHILY.xattr.security.capability': Buffer } */
  pax?: Record<string, string | Buffer>;
  /** Write the name as a GNU long name ('L' record) instead of pax. */
  gnuLongName?: boolean;
}

const FLAG: Record<NonNullable<LayerEntry['type']>, string> = {
  file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6',
};

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(name: string, flag: string, size: number, e: Partial<LayerEntry>, gnu = false): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(e.mode ?? (flag === '5' ? 0o755 : 0o644), 8), 100, 'latin1');
  h.write(octal(e.uid ?? 0, 8), 108, 'latin1');
  h.write(octal(e.gid ?? 0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(e.mtime ?? FIXED_MTIME, 12), 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(flag, 156, 'latin1');
  h.write(e.linkname ?? '', 157, 100, 'utf8');
  h.write(gnu ? 'ustar  \0' : 'ustar\u000000', 257, 'latin1');
  h.write(octal(e.devmajor ?? 0, 8), 329, 'latin1');
  h.write(octal(e.devminor ?? 0, 8), 337, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'latin1');
  return h;
}

function padded(b: Buffer): Buffer[] {
  const r = b.length % 512;
  return r === 0 ? [b] : [b, Buffer.alloc(512 - r)];
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

/** An uncompressed layer tar of `entries`, in order, with the end-of-archive marker. */
export function craftLayer(entries: LayerEntry[], opts: { end?: boolean } = {}): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'file';
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    const pax: Buffer[] = Object.entries(e.pax ?? {}).map(([k, v]) => paxRecord(k, Buffer.from(v)));
    let name = e.name;
    if (Buffer.byteLength(name) > 100) {
      if (e.gnuLongName) {
        const body = Buffer.from(name + '\0');
        out.push(header('././@LongLink', 'L', body.length, {}, true), ...padded(body));
      } else {
        pax.push(paxRecord('path', Buffer.from(name)));
      }
      name = name.slice(0, 99);
    }
    if (pax.length) {
      const body = Buffer.concat(pax);
      out.push(header('PaxHeaders/entry', 'x', body.length, {}), ...padded(body));
    }
    out.push(header(name, FLAG[type], type === 'file' ? data.length : 0, e, e.gnuLongName));
    if (type === 'file' && data.length) out.push(...padded(data));
  }
  if (opts.end !== false) out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

/** A layer made by GNU tar from files written into a temp dir by `fill` (e.g. sparse files with --sparse). */
export function gnuTarLayer(fill: (dir: string) => void, args: string[] = []): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'tspod-gnutar-'));
  try {
    chmodSync(dir, 0o755); // the layer's root entry "./": the container's / must not become 0700
    fill(dir);
    return execFileSync('tar', ['-c', ...args, '--owner=0', '--group=0', `--mtime=@${FIXED_MTIME}`, '--sort=name', '-C', dir, '.'],
      { maxBuffer: 1 << 30 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** /usr/sbin/getcap and the shared libraries it loads (from ldd), at their paths, as one layer. */
export function hostBinaryLayer(binary: string): Buffer {
  const libs = execFileSync('ldd', [binary], { encoding: 'utf8' })
    .split('\n')
    .map((l) => /(\/\S+) \(0x/.exec(l)?.[1])
    .filter((p): p is string => !!p);
  const entries: LayerEntry[] = [];
  const dirs = new Set<string>();
  for (const path of [binary, ...libs]) {
    const parts = path.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!dirs.has(d)) {
        dirs.add(d);
        entries.push({ name: d + '/', type: 'dir', mode: 0o755 });
      }
    }
    entries.push({ name: parts.join('/'), data: readFileSync(realpathSync(path)), mode: 0o755 });
  }
  return craftLayer(entries);
}

export interface BaseLayer {
  /** The compressed blob as the registry has it. */
  blob: Buffer;
  mediaType: string;
  diffId: string;
}

/** The busybox layer of the fixture image library/busybox:latest, fetched from the registry (for a shell). */
export async function busyboxBase(registry: FixtureRegistry): Promise<BaseLayer> {
  const get = async (path: string, accept?: string): Promise<Buffer> => {
    const res = await fetch(`${registry.url}/v2/library/busybox/${path}`, { headers: accept ? { accept } : {} });
    if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  };
  const manifest = JSON.parse((await get('manifests/latest', 'application/vnd.oci.image.manifest.v1+json')).toString());
  const config = JSON.parse((await get(`blobs/${manifest.config.digest}`)).toString());
  return {
    blob: await get(`blobs/${manifest.layers[0].digest}`),
    mediaType: manifest.layers[0].mediaType,
    diffId: config.rootfs.diff_ids[0],
  };
}

const sha = (b: Buffer): string => 'sha256:' + createHash('sha256').update(b).digest('hex');

export interface PushedImage {
  /** e.g. "crafted-fidelity:1", to pull through the docker.io mirror */
  ref: string;
  manifestDigest: string;
  diffIds: string[];
  /** true when the registry already had it */
  cached: boolean;
}

/**
 * Builds an OCI image of `layers` (uncompressed tars, gzipped here, or a BaseLayer as is) and pushes it
 * to `repo:tag` (e.g. "library/crafted-fidelity:1") with skopeo, unless the registry already has it.
 */
export async function pushCraftedImage(registry: FixtureRegistry, repoTag: string, layers: (Buffer | BaseLayer)[],
  opts: { cmd?: string[] } = {}): Promise<PushedImage> {
  const [repo, tag] = repoTag.split(':') as [string, string];
  const blobs: { digest: string; bytes: Buffer }[] = [];
  const descs: { mediaType: string; digest: string; size: number }[] = [];
  const diffIds: string[] = [];
  for (const l of layers) {
    if (Buffer.isBuffer(l)) {
      const gz = gzipSync(l, { level: 1 });
      gz[9] = 3; // OS = unix, whatever zlib says: the same bytes on every host
      descs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(gz), size: gz.length });
      blobs.push({ digest: sha(gz), bytes: gz });
      diffIds.push(sha(l));
    } else {
      descs.push({ mediaType: l.mediaType, digest: sha(l.blob), size: l.blob.length });
      blobs.push({ digest: sha(l.blob), bytes: l.blob });
      diffIds.push(l.diffId);
    }
  }
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const config = Buffer.from(JSON.stringify({
    created: '2024-01-01T00:00:00Z', architecture: arch, os: 'linux',
    config: { Cmd: opts.cmd ?? ['sh'], Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
  }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: descs,
  }));
  const manifestDigest = sha(manifest);
  const ref = `${repo.replace(/^library\//, '')}:${tag}`;
  const head = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  if (head.ok && head.headers.get('docker-content-digest') === manifestDigest) return { ref, manifestDigest, diffIds, cached: true };

  const layout = mkdtempSync(join(tmpdir(), 'tspod-layout-'));
  try {
    mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
    for (const b of [...blobs, { digest: sha(config), bytes: config }, { digest: manifestDigest, bytes: manifest }]) {
      writeFileSync(join(layout, 'blobs', 'sha256', b.digest.slice(7)), b.bytes);
    }
    writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(layout, 'index.json'), JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.length,
        annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }));
    execFileSync('skopeo', ['copy', '--quiet', '--insecure-policy', '--dest-tls-verify=false', '--preserve-digests',
      `oci:${layout}:${tag}`, `docker://${registry.host}/${repo}:${tag}`], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
  } finally {
    rmSync(layout, { recursive: true, force: true });
  }
  return { ref, manifestDigest, diffIds, cached: false };
}
