/**
 * Platforms: the host's, parsing "linux/arm64/v8", and choosing an index entry for a platform.
 * The choice ranks candidates by compatibility and never depends on the order of the index.
 */
import { endianness } from 'node:os';
import { fail } from '../util/errors.js';
import type { Descriptor, ImageIndex, Platform } from './types.js';

/** GOARCH names for Node's process.arch. */
const NODE_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips64el: 'mips64le',
  mipsel: 'mipsle',
};

/** Common non-Go spellings → [architecture, variant?]. */
const ARCH_ALIASES: Record<string, [string, string?]> = {
  x86_64: ['amd64'],
  'x86-64': ['amd64'],
  aarch64: ['arm64'],
  armhf: ['arm', 'v7'],
  armel: ['arm', 'v6'],
  i386: ['386'],
  i686: ['386'],
};

/** The platform of this machine: linux/amd64, linux/arm64/v8, linux/arm/v7, … */
export function hostPlatform(): Platform {
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  let architecture = NODE_ARCH[process.arch] ?? process.arch;
  if (architecture === 'ppc64le' && endianness() === 'BE') architecture = 'ppc64';
  const p: Platform = { os, architecture };
  if (architecture === 'arm64') p.variant = 'v8';
  if (architecture === 'arm') {
    const v = (process.config.variables as Record<string, unknown>).arm_version;
    p.variant = `v${typeof v === 'string' || typeof v === 'number' ? String(v) : '7'}`;
  }
  return p;
}

/** "linux/arm64/v8" → {os, architecture, variant}; accepts aliases (x86_64, aarch64, armhf). EINVAL otherwise. */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw fail('EINVAL', `invalid platform "${s}": want os/architecture[/variant], e.g. linux/arm64/v8`);
  }
  const [os, arch0, variant0] = parts as [string, string, string?];
  const alias = ARCH_ALIASES[arch0];
  const architecture = alias ? alias[0] : arch0;
  let variant = variant0 ?? alias?.[1];
  if (variant !== undefined && /^[0-9]+$/.test(variant)) variant = `v${variant}`; // "arm/7" → v7
  const p: Platform = { os, architecture };
  if (variant !== undefined) p.variant = variant;
  return p;
}

/** "linux/arm64/v8", "linux/amd64". */
export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

function variantNumber(v: string | undefined): number | undefined {
  const m = v === undefined ? null : /^v([0-9]+)$/.exec(v);
  return m ? Number(m[1]) : undefined;
}

/**
 * How well `have` serves `want`: undefined if not at all, else a rank where lower is better.
 *   arm64: a missing variant means v8; variants must then be equal (or, for vN wanted, lower ones, best first).
 *   arm:   wanted vN accepts vN, then lower variants in descending order, then no variant. A wanted arm
 *          without variant means v7 (as containerd does).
 *   amd64: the variant is ignored unless asked; asked vN accepts vN, lower ones descending, then none. Not
 *          asked: no variant first, then v1, v2, … (the most compatible first).
 *   other: an asked variant must match exactly; not asked: no variant first, then any.
 */
function rank(have: Platform, want: Platform): number | undefined {
  if (have.os !== want.os || have.architecture !== want.architecture) return undefined;
  const arch = want.architecture;
  let wantV = want.variant;
  let haveV = have.variant;
  if (arch === 'arm64') {
    wantV ??= 'v8';
    haveV ??= 'v8';
  }
  if (arch === 'arm') wantV ??= 'v7';

  if (wantV === undefined) {
    if (haveV === undefined) return 0;
    const n = variantNumber(haveV);
    return n !== undefined ? 1 + n : 1_000_000; // amd64 v1 < v2 < …; unknown variants last
  }
  if (haveV === wantV) return 0;
  const w = variantNumber(wantV);
  const h = variantNumber(haveV);
  if (w !== undefined && (arch === 'arm' || arch === 'amd64' || arch === 'arm64')) {
    if (h !== undefined && h < w) return 1 + (w - h); // descending from the wanted variant
    if (haveV === undefined) return 1_000_000; // no variant: last resort
  }
  return undefined;
}

function isAttestationOrUnknown(d: Descriptor): boolean {
  const p = d.platform;
  if (p === undefined) return true;
  if (p.os === 'unknown' || p.architecture === 'unknown') return true;
  return d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest';
}

/**
 * Picks the index entry for `want`, independent of list order (ties on rank break on the digest, so the
 * choice is deterministic). ENOTFOUND naming the platforms available when nothing fits.
 */
export function selectManifest(index: ImageIndex, want: Platform, ref = 'image index'): Descriptor {
  let best: { d: Descriptor; r: number } | undefined;
  const available: string[] = [];
  for (const d of index.manifests) {
    if (isAttestationOrUnknown(d)) continue;
    const name = formatPlatform(d.platform!);
    if (!available.includes(name)) available.push(name);
    const r = rank(d.platform!, want);
    if (r === undefined) continue;
    if (best === undefined || r < best.r || (r === best.r && d.digest < best.d.digest)) best = { d, r };
  }
  if (best === undefined) {
    available.sort();
    throw fail(
      'ENOTFOUND',
      `no image for platform ${formatPlatform(want)} in ${ref}; available: ${available.join(', ') || 'none'}`,
    );
  }
  return best.d;
}

/** True if an image config's own platform fits what was asked (a manifest pulled without an index). */
export function platformMatches(have: Platform, want: Platform): boolean {
  return rank(have, want) !== undefined;
}
