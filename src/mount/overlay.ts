/**
 * OverlayFS mount options for a container's rootfs, including images with many layers.
 *
 * WHY THIS IS DELICATE. mount(2) copies its `data` argument into ONE page: the option string,
 * including its terminating NUL, must fit in 4096 bytes, or the kernel silently truncates it (and
 * the mount fails with a confusing error, or mounts the wrong layers). With absolute store paths
 * (~110 bytes each) that allows about 35 layers. So:
 *   - every path in the string is RELATIVE to the store root: the launcher chdirs there right
 *     before mount(2) (PreMount.chdir, inside the container's mount namespace) and overlay resolves
 *     relative lowerdir/upperdir/workdir against the caller's cwd;
 *   - each lower layer is named by its short link `l/<12 hex>` (Store.layerLink), 15 bytes with
 *     the separator, so 200 layers take ~3 KB whatever the store's own path length;
 *   - upperdir/workdir are given absolute while that fits (the mount table then names them
 *     plainly); when a long store path would push the string past the page, they are given
 *     relative too (`snapshots/<id>/upper`), so the store's path length never matters.
 * If even that does not fit (about 250+ layers), the mount is refused with a clear error rather
 * than truncated.
 *
 * FEATURES (probed from /sys/module/overlay/parameters and the kernel version, cached):
 *   - `index=off`: the inodes index (CONFIG_OVERLAY_FS_INDEX or index=Y) ties an upperdir to the
 *     lower layers it was first mounted with; re-mounting a container's upper on a chain whose
 *     short links were re-created (or after a prune) would fail with ESTALE. Docker/containerd
 *     turn it off too.
 *   - `redirect_dir=off`: with redirects, renaming a lower directory records a
 *     trusted.overlay.redirect xattr in the upper dir instead of copying: a naive diff of the upper
 *     dir (commit) would then miss the directory's lower content. With it off the kernel returns
 *     EXDEV and tools copy, like docker's naive diff expects.
 *   - `userxattr` (kernel >= 5.11): only inside a user namespace (rootless), where trusted.*
 *     xattrs are unavailable; as root in the initial user namespace it must NOT be used, since
 *     our layers carry trusted.overlay.opaque.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import { fail } from '../util/errors.js';

/** What the kernel's overlay accepts, as far as it matters for tspod. */
export interface OverlayFeatures {
  /** `index=` is a known option (kernel >= 4.13). */
  index: boolean;
  /** `redirect_dir=` is a known option (kernel >= 4.10). */
  redirectDir: boolean;
  /** `userxattr` is a known option (kernel >= 5.11). */
  userxattr: boolean;
  /** This process runs in a user namespace other than the initial one. */
  inUserNamespace: boolean;
}

/** The kernel limit: one page including the terminating NUL. */
export const OVERLAY_OPTIONS_MAX = 4096;

let cached: OverlayFeatures | undefined;

/** Probes the running kernel's overlay (cached for the process). */
export function probeOverlayFeatures(): OverlayFeatures {
  if (cached) return cached;
  const params = '/sys/module/overlay/parameters/';
  const [major, minor] = kernelVersion();
  const atLeast = (ma: number, mi: number): boolean => major > ma || (major === ma && minor >= mi);
  cached = {
    index: existsSync(params + 'index') || atLeast(4, 13),
    redirectDir: existsSync(params + 'redirect_dir') || atLeast(4, 10),
    userxattr: atLeast(5, 11),
    inUserNamespace: inUserNamespace(),
  };
  return cached;
}

function kernelVersion(): [number, number] {
  try {
    const m = /^(\d+)\.(\d+)/.exec(readFileSync('/proc/sys/kernel/osrelease', 'utf8'));
    if (m) return [Number(m[1]), Number(m[2])];
  } catch { /* fall through */ }
  return [0, 0];
}

function inUserNamespace(): boolean {
  try {
    // The initial user namespace maps the whole 32-bit range: "0 0 4294967295".
    const line = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    return !(line[0] === '0' && line[1] === '0' && line[2] === '4294967295');
  } catch {
    return false;
  }
}

export interface OverlayRequest {
  /** The directory the launcher chdirs to before mount(2); relative paths below are resolved from it. */
  chdir: string;
  /** Lower layers, top first: relative to `chdir` (e.g. Store.overlayLowers) or absolute. */
  lowers: string[];
  /** Absolute upper and work dirs (made relative to `chdir` when they are below it). */
  upper: string;
  work: string;
  /** An empty directory to use as the single lower of an image without layers. */
  emptyLower: string;
  /** Defaults to probeOverlayFeatures(). */
  features?: OverlayFeatures;
}

/**
 * The option string, unchecked: lower paths below `chdir` relative to it; upper/work relative
 * only with `relativeUpper`.
 */
export function overlayData(req: OverlayRequest, relativeUpper: boolean): string {
  const f = req.features ?? probeOverlayFeatures();
  const rel = (p: string): string => {
    if (!isAbsolute(p)) return p;
    const r = relative(req.chdir, p);
    return r !== '' && !r.startsWith('..') && !isAbsolute(r) ? r : p;
  };
  const lowers = (req.lowers.length > 0 ? req.lowers : [req.emptyLower]).map(rel);
  const upper = relativeUpper ? rel(req.upper) : req.upper;
  const work = relativeUpper ? rel(req.work) : req.work;
  for (const p of [upper, work, ...lowers]) {
    if (/[,:\\]/.test(p)) throw fail('EINVAL', `overlay path "${p}" contains a comma, colon or backslash; choose a --root without them`);
  }
  const opts = [`lowerdir=${lowers.join(':')}`, `upperdir=${upper}`, `workdir=${work}`];
  if (f.index) opts.push('index=off');
  if (f.redirectDir) opts.push('redirect_dir=off');
  if (f.userxattr && f.inUserNamespace) opts.push('userxattr');
  return opts.join(',');
}

/** The `data` string for mount("overlay", …) and the directory to chdir to first. */
export function overlayOptions(req: OverlayRequest): { data: string; chdir: string } {
  const fits = (d: string): boolean => Buffer.byteLength(d) + 1 <= OVERLAY_OPTIONS_MAX;
  let data = overlayData(req, false);
  if (!fits(data)) data = overlayData(req, true);
  if (!fits(data)) {
    throw fail('EUNSUPPORTED', `mount overlay: ${req.lowers.length} layers need ${Buffer.byteLength(data) + 1} bytes of options (with the NUL), more than the kernel's ${OVERLAY_OPTIONS_MAX}`);
  }
  return { data, chdir: req.chdir };
}
