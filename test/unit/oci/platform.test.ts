import { describe, expect, it } from 'vitest';
import { formatPlatform, hostPlatform, parsePlatform, selectManifest } from '../../../src/oci/platform.js';
import { MediaType, type Descriptor, type ImageIndex, type Platform } from '../../../src/oci/types.js';
import { sha256 } from '../../../src/util/digest.js';
import { TspodError } from '../../../src/util/errors.js';

function entry(platform: string | undefined, extra: Partial<Descriptor> = {}): Descriptor {
  const d: Descriptor = { mediaType: MediaType.OciManifest, digest: sha256(platform ?? 'none'), size: 500, ...extra };
  if (platform !== undefined) d.platform = platform === 'unknown/unknown' ? { os: 'unknown', architecture: 'unknown' } : parsePlatform(platform);
  return d;
}

function permutations<T>(xs: T[]): T[][] {
  if (xs.length <= 1) return [xs];
  const out: T[][] = [];
  xs.forEach((x, i) => {
    for (const rest of permutations([...xs.slice(0, i), ...xs.slice(i + 1)])) out.push([x, ...rest]);
  });
  return out;
}

const ALL = ['linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm', 'linux/arm64/v8', 'linux/arm64', 'linux/amd64'];

function pick(platforms: string[], want: string, order?: Descriptor[]): string {
  const manifests = order ?? platforms.map((p) => entry(p));
  const d = selectManifest({ schemaVersion: 2, manifests }, parsePlatform(want), 'test/index:1');
  return platforms.find((p) => sha256(p) === d.digest)!;
}

describe('selectManifest never depends on list order', () => {
  const cases: [string, string[], string | string[]][] = [
    ['linux/arm/v7', ALL, 'linux/arm/v7'],
    ['linux/arm/v6', ALL, 'linux/arm/v6'],
    ['linux/arm/v5', ALL, 'linux/arm/v5'],
    ['linux/arm/v8', ALL, 'linux/arm/v7'], // 32-bit v8 takes the best lower variant
    ['linux/arm', ALL, 'linux/arm/v7'], // arm without variant means v7
    ['linux/arm64/v8', ALL, ['linux/arm64/v8', 'linux/arm64']], // equivalent entries
    ['linux/arm64', ALL, ['linux/arm64/v8', 'linux/arm64']],
    ['linux/amd64', ALL, 'linux/amd64'],
    ['linux/arm/v7', ['linux/arm/v5', 'linux/arm/v6', 'linux/arm', 'linux/amd64'], 'linux/arm/v6'],
    ['linux/arm/v7', ['linux/arm/v5', 'linux/arm', 'linux/arm64'], 'linux/arm/v5'],
    ['linux/arm/v7', ['linux/arm', 'linux/arm64', 'linux/amd64'], 'linux/arm'],
    ['linux/arm/v6', ['linux/arm/v7', 'linux/arm', 'linux/amd64'], 'linux/arm'], // never a higher variant
  ];
  for (const [want, platforms, expected] of cases) {
    it(`${want} from [${platforms.join(', ')}] in every order`, () => {
      const base = platforms.map((p) => entry(p));
      const seen = new Set<string>();
      for (const order of permutations(base)) seen.add(pick(platforms, want, order));
      expect(seen.size).toBe(1); // the same answer for every permutation
      const got = [...seen][0]!;
      if (Array.isArray(expected)) expect(expected).toContain(got);
      else expect(got).toBe(expected);
    });
  }

  it('amd64 ignores variants unless asked, and prefers lower variants when asked', () => {
    const ps = ['linux/amd64/v3', 'linux/amd64', 'linux/amd64/v2'];
    for (const order of permutations(ps.map((p) => entry(p)))) {
      expect(pick(ps, 'linux/amd64', order)).toBe('linux/amd64');
      expect(pick(ps, 'linux/amd64/v3', order)).toBe('linux/amd64/v3');
      expect(pick(ps, 'linux/amd64/v4', order)).toBe('linux/amd64/v3');
    }
    const only = ['linux/amd64/v2', 'linux/amd64/v3'];
    expect(pick(only, 'linux/amd64')).toBe('linux/amd64/v2');
    expect(() => pick(only, 'linux/amd64/v1')).toThrow(/no image for platform linux\/amd64\/v1/);
  });

  it('skips attestations and entries without a platform, and says what is available', () => {
    const manifests = [
      entry('linux/amd64'),
      entry('unknown/unknown'),
      entry(undefined),
      entry('linux/arm64/v8'),
      entry('linux/arm/v7'),
      entry('linux/amd64', { digest: sha256('att'), annotations: { 'vnd.docker.reference.type': 'attestation-manifest' } }),
    ];
    const index: ImageIndex = { schemaVersion: 2, manifests };
    let err: unknown;
    try {
      selectManifest(index, parsePlatform('linux/s390x'), 'docker.io/library/alpine:3.19');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TspodError);
    expect((err as TspodError).code).toBe('ENOTFOUND');
    expect((err as TspodError).message).toBe(
      'no image for platform linux/s390x in docker.io/library/alpine:3.19; available: linux/amd64, linux/arm/v7, linux/arm64/v8',
    );
    expect(() => selectManifest({ schemaVersion: 2, manifests: [manifests[1]!, manifests[2]!] }, parsePlatform('linux/amd64'), 'x')).toThrow(
      /available: none/,
    );
    // an attestation for amd64 never wins over the image itself, whatever the digests
    expect(selectManifest(index, parsePlatform('linux/amd64'), 'x').digest).toBe(sha256('linux/amd64'));
  });

  it('os must match', () => {
    expect(() => pick(['windows/amd64'], 'linux/amd64')).toThrow(/available: windows\/amd64/);
  });
});

describe('platform parsing', () => {
  it('parses and formats', () => {
    const t: [string, Platform, string][] = [
      ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'linux/arm64/v8'],
      ['linux/amd64', { os: 'linux', architecture: 'amd64' }, 'linux/amd64'],
      ['linux/x86_64', { os: 'linux', architecture: 'amd64' }, 'linux/amd64'],
      ['linux/aarch64', { os: 'linux', architecture: 'arm64' }, 'linux/arm64'],
      ['linux/armhf', { os: 'linux', architecture: 'arm', variant: 'v7' }, 'linux/arm/v7'],
      ['linux/arm/7', { os: 'linux', architecture: 'arm', variant: 'v7' }, 'linux/arm/v7'],
      ['Linux/AMD64', { os: 'linux', architecture: 'amd64' }, 'linux/amd64'],
    ];
    for (const [s, p, f] of t) {
      expect(parsePlatform(s)).toEqual(p);
      expect(formatPlatform(parsePlatform(s))).toBe(f);
    }
    for (const bad of ['linux', 'linux/', 'a/b/c/d', '', 'linux/amd 64']) {
      expect(() => parsePlatform(bad)).toThrow(/invalid platform/);
    }
  });

  it('hostPlatform maps process.arch to OCI names', () => {
    const h = hostPlatform();
    expect(h.os).toBe('linux');
    const expected: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', s390x: 's390x', riscv64: 'riscv64' };
    if (expected[process.arch]) expect(h.architecture).toBe(expected[process.arch]);
    if (h.architecture === 'arm64') expect(h.variant).toBe('v8');
    if (h.architecture === 'amd64') expect(h.variant).toBeUndefined();
  });
});
