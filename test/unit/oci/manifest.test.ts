import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../../src/oci/manifest.js';
import { parseImageConfig } from '../../../src/oci/config.js';
import { MediaType } from '../../../src/oci/types.js';
import { sha256 } from '../../../src/util/digest.js';
import { TspodError } from '../../../src/util/errors.js';

const REF = 'docker.io/library/alpine:3.19';
const d = (s: string) => sha256(s);
const buf = (o: unknown) => Buffer.from(JSON.stringify(o));

const manifestBody = (mediaType?: string) => ({
  schemaVersion: 2,
  ...(mediaType ? { mediaType } : {}),
  config: { mediaType: MediaType.OciConfig, digest: d('c'), size: 100 },
  layers: [{ mediaType: MediaType.OciLayerGzip, digest: d('l1'), size: 1000 }],
});
const indexBody = (mediaType?: string) => ({
  schemaVersion: 2,
  ...(mediaType ? { mediaType } : {}),
  manifests: [
    { mediaType: MediaType.OciManifest, digest: d('m1'), size: 400, platform: { os: 'linux', architecture: 'amd64' } },
    { mediaType: MediaType.OciManifest, digest: d('m2'), size: 400, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ],
});

function error(fn: () => unknown): TspodError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TspodError);
    return e as TspodError;
  }
  throw new Error('expected an error');
}

describe('parseManifest', () => {
  it('detects the kind from the body mediaType, the Content-Type, or the fields', () => {
    const m = parseManifest(buf(manifestBody(MediaType.OciManifest)), MediaType.OciManifest, REF);
    expect(m.kind).toBe('manifest');
    if (m.kind === 'manifest') expect(m.manifest.layers[0]!.digest).toBe(d('l1'));

    const i = parseManifest(buf(indexBody(MediaType.DockerManifestList)), undefined, REF);
    expect(i).toMatchObject({ kind: 'index', mediaType: MediaType.DockerManifestList });

    // no body mediaType: Content-Type decides (parameters ignored)
    expect(parseManifest(buf(manifestBody()), `${MediaType.DockerManifest}; charset=utf-8`, REF)).toMatchObject({
      kind: 'manifest',
      mediaType: MediaType.DockerManifest,
    });
    // neither: the fields decide
    expect(parseManifest(buf(indexBody()), undefined, REF)).toMatchObject({ kind: 'index', mediaType: MediaType.OciIndex });
    expect(parseManifest(buf(manifestBody()), 'application/json', REF)).toMatchObject({ kind: 'manifest', mediaType: MediaType.OciManifest });
    // a generic content type next to a body mediaType is not a disagreement
    expect(parseManifest(buf(indexBody(MediaType.OciIndex)), 'application/octet-stream', REF).kind).toBe('index');
  });

  it('refuses docker schema 1 in all its forms with EUNSUPPORTED', () => {
    const s1 = { schemaVersion: 1, name: 'library/alpine', tag: '3.19', fsLayers: [], history: [] };
    for (const [body, ct] of [
      [s1, undefined],
      [s1, MediaType.DockerManifestSchema1Signed],
      [{ ...manifestBody(), schemaVersion: 2 }, MediaType.DockerManifestSchema1],
      [{ ...s1, mediaType: MediaType.DockerManifestSchema1 }, 'application/json'],
    ] as const) {
      const e = error(() => parseManifest(buf(body), ct, REF));
      expect(e.code).toBe('EUNSUPPORTED');
      expect(e.message).toMatch(/^pull docker\.io\/library\/alpine:3\.19: docker schema 1 manifests are not supported; /);
    }
  });

  it('Content-Type and body mediaType disagreeing is EREGISTRY', () => {
    const e = error(() => parseManifest(buf(manifestBody(MediaType.OciManifest)), MediaType.DockerManifest, REF));
    expect(e.code).toBe('EREGISTRY');
    expect(e.message).toContain(REF);
    expect(e.message).toContain(MediaType.DockerManifest);
    const e2 = error(() => parseManifest(buf(indexBody(MediaType.OciIndex)), MediaType.OciManifest, REF));
    expect(e2.code).toBe('EREGISTRY');
  });

  it('validates structure', () => {
    const bad: [unknown, RegExp][] = [
      ['not json', /not JSON/],
      [[], /want a JSON object/],
      [{ ...manifestBody(MediaType.OciManifest), schemaVersion: 3 }, /schemaVersion 3/],
      [{ schemaVersion: 2, mediaType: MediaType.OciManifest, layers: [] }, /without config/],
      [{ schemaVersion: 2, mediaType: MediaType.OciManifest, config: manifestBody().config }, /without a layers array/],
      [{ schemaVersion: 2, mediaType: MediaType.OciIndex }, /without a manifests array/],
      [{ ...manifestBody(MediaType.OciManifest), config: { mediaType: MediaType.OciConfig, digest: 'sha256:abc', size: 1 } }, /config: invalid digest/],
      [{ ...manifestBody(MediaType.OciManifest), layers: [{ digest: d('x'), size: 1 }] }, /layers\[0\]: missing mediaType/],
      [{ ...manifestBody(MediaType.OciManifest), layers: [{ mediaType: 'x', digest: d('x'), size: -1 }] }, /layers\[0\]: invalid size -1/],
      [{ ...manifestBody(MediaType.OciManifest), layers: [{ mediaType: 'x', digest: d('x'), size: 1.5 }] }, /invalid size/],
      [{ ...manifestBody(MediaType.OciManifest), layers: [{ mediaType: 'x', digest: d('x') }] }, /invalid size/],
      [{ ...indexBody(MediaType.OciIndex), manifests: [{ mediaType: 'x', digest: d('x'), size: 1, platform: { os: 'linux' } }] }, /platform: os and architecture/],
      [{ schemaVersion: 2 }, /cannot tell an index from a manifest/],
    ];
    for (const [body, re] of bad) {
      const bytes = typeof body === 'string' ? Buffer.from(body) : buf(body);
      const e = error(() => parseManifest(bytes, undefined, REF));
      expect(e.code).toBe('EREGISTRY');
      expect(e.message).toMatch(re);
      expect(e.message).toContain(`pull ${REF}`);
    }
  });

  it('unknown media types are EUNSUPPORTED', () => {
    const e = error(() => parseManifest(buf({ ...manifestBody(), mediaType: 'application/vnd.example+json' }), undefined, REF));
    expect(e.code).toBe('EUNSUPPORTED');
  });
});

describe('parseImageConfig', () => {
  const good = {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'], Entrypoint: null, WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [d('a'), d('b')] },
    history: [{ created_by: 'x' }],
    extra: { kept: true },
  };
  it('accepts a config and keeps unknown fields', () => {
    const c = parseImageConfig(buf(good));
    expect(c.rootfs.diff_ids).toHaveLength(2);
    expect((c as unknown as { extra: unknown }).extra).toEqual({ kept: true });
    expect(parseImageConfig(buf({ ...good, config: undefined })).config).toBeUndefined();
  });
  it('rejects configs tspod cannot use, naming what', () => {
    const bad: [unknown, RegExp][] = [
      [{ ...good, rootfs: undefined }, /missing rootfs/],
      [{ ...good, rootfs: { type: 'layers' } }, /missing rootfs.diff_ids/],
      [{ ...good, rootfs: { type: 'other', diff_ids: [] } }, /rootfs.type/],
      [{ ...good, rootfs: { type: 'layers', diff_ids: ['sha256:x'] } }, /diff_ids\[0\]: invalid digest/],
      [{ ...good, architecture: undefined }, /missing architecture/],
      [{ ...good, os: 5 }, /missing os/],
      [{ ...good, config: { Cmd: 'sh' } }, /config.Cmd must be an array of strings/],
      [{ ...good, config: { Env: [1] } }, /config.Env/],
      [{ ...good, config: { User: 0 } }, /config.User/],
      [{ ...good, history: {} }, /history/],
    ];
    for (const [body, re] of bad) {
      const e = error(() => parseImageConfig(buf(body), `config ${d('cfg')}`));
      expect(e.code).toBe('EREGISTRY');
      expect(e.message).toMatch(re);
      expect(e.message).toContain(`parse image config config ${d('cfg')}`);
    }
    expect(error(() => parseImageConfig(Buffer.from('{'))).message).toMatch(/not JSON/);
  });
});
