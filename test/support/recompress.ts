// Pushes a copy of a fixture image whose layers are recompressed (zstd) or stored uncompressed, over the
// plain distribution API (monolithic uploads). skopeo 1.9 cannot be made to do it against a registry
// that already holds the gzip blobs: it reuses them through its blob-info cache.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';

const MANIFEST_ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

export async function getBlob(base: string, repo: string, digest: string): Promise<Buffer> {
  const r = await fetch(`${base}/v2/${repo}/blobs/${digest}`);
  if (r.status !== 200) throw new Error(`GET blob ${digest}: HTTP ${r.status}`);
  return Buffer.from(await r.arrayBuffer());
}

export async function putBlob(base: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`start upload: HTTP ${start.status}`);
  const loc = new URL(start.headers.get('location')!, base);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'content-type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`finish upload ${digest}: HTTP ${put.status} ${await put.text()}`);
  return digest;
}

/**
 * Copies `from` (repo:tag in the registry at `base`, a single-platform image) to `to` with every layer
 * as zstd (`+zstd`) or uncompressed (`.tar`). Returns the layer digests and media types written.
 */
export async function pushRecompressed(base: string, from: string, to: string, how: 'zstd' | 'none'): Promise<{ mediaType: string; digest: string }[]> {
  const [srcRepo, srcTag] = from.split(':') as [string, string];
  const [dstRepo, dstTag] = to.split(':') as [string, string];
  const mr = await fetch(`${base}/v2/${srcRepo}/manifests/${srcTag}`, { headers: { accept: MANIFEST_ACCEPT } });
  if (mr.status !== 200) throw new Error(`GET manifest ${from}: HTTP ${mr.status}`);
  const manifest = (await mr.json()) as { config: { digest: string; size: number }; layers: { digest: string; size: number; mediaType: string }[] };
  const config = await getBlob(base, srcRepo, manifest.config.digest);
  await putBlob(base, dstRepo, config);
  const layers = [];
  for (const l of manifest.layers) {
    const tar = gunzipSync(await getBlob(base, srcRepo, l.digest));
    const bytes = how === 'zstd' ? execFileSync('zstd', ['-q', '-c', '-3'], { input: tar, maxBuffer: 256 << 20 }) : tar;
    const digest = await putBlob(base, dstRepo, bytes);
    layers.push({
      mediaType: how === 'zstd' ? 'application/vnd.oci.image.layer.v1.tar+zstd' : 'application/vnd.oci.image.layer.v1.tar',
      digest,
      size: bytes.length,
    });
  }
  const out = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: manifest.config.digest, size: config.length },
    layers,
  }));
  const put = await fetch(`${base}/v2/${dstRepo}/manifests/${dstTag}`, {
    method: 'PUT', body: out, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  if (put.status !== 201) throw new Error(`PUT manifest ${to}: HTTP ${put.status} ${await put.text()}`);
  return layers.map(({ mediaType, digest }) => ({ mediaType, digest }));
}

/** PUTs a manifest or index under `reference` (a tag or digest); returns its digest. */
export async function putManifest(base: string, repo: string, reference: string, mediaType: string, body: Buffer): Promise<string> {
  const put = await fetch(`${base}/v2/${repo}/manifests/${reference}`, { method: 'PUT', body: new Uint8Array(body), headers: { 'content-type': mediaType } });
  if (put.status !== 201) throw new Error(`PUT manifest ${repo}:${reference}: HTTP ${put.status} ${await put.text()}`);
  return sha256(body);
}
