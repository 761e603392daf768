/**
 * diff: what a container changed in its filesystem, read from its overlay upper dir as docker
 * lists it: "A path" added, "C path" changed (also every directory above a change), "D path"
 * deleted (an overlay whiteout: a 0:0 character device). A file or directory that exists in a
 * lower layer is "C", else "A". An opaque directory (trusted.overlay.opaque=y) hides the
 * lower one: its entries are listed as "A" under a "C" directory, as with docker.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Store } from '../../store/index.js';
import type { EngineRoots } from '../state/paths.js';
import { realSys } from '../sys/index.js';
import { fail } from '../util/errors.js';
import { MOUNT_POINT_FILES } from '../util/mount-points.js';
import { containerStore } from './reconcile.js';

export interface Change { kind: 'A' | 'C' | 'D'; path: string }

export async function containerDiff(roots: EngineRoots, store: Store, ref: string): Promise<Change[]> {
  const containers = containerStore(roots);
  const rec = await containers.find(ref);
  const snap = await store.getSnapshot(rec.id);
  if (!snap) throw fail('ENOTFOUND', `container ${ref} has no filesystem snapshot`);
  const sys = realSys();
  const inLower = async (p: string) => {
    for (const l of snap.lowerDirs) if (await lstat(join(l, p)).then(() => true, () => false)) return true;
    return false;
  };
  const out: Change[] = [];
  // What a directory of the upper dir holds: changes, only tspod's mount points (an image without
  // /etc/resolv.conf: then the directory above them is no change either), or nothing.
  const walk = async (rel: string, hidden: boolean): Promise<'changed' | 'mount points' | 'empty'> => {
    let found: 'changed' | 'mount points' | 'empty' = 'empty';
    for (const n of (await readdir(join(snap.upperDir, rel))).sort()) {
      const p = rel + '/' + n;
      const st = await lstat(join(snap.upperDir, p));
      if (st.isCharacterDevice() && st.rdev === 0) {
        out.push({ kind: 'D', path: p });
        found = 'changed';
        continue;
      }
      const existed = !hidden && (await inLower(p));
      if (!existed && st.isFile() && st.size === 0 && MOUNT_POINT_FILES.includes(p.slice(1))) {
        if (found === 'empty') found = 'mount points';
        continue;
      }
      const at = out.push({ kind: existed ? 'C' : 'A', path: p }) - 1;
      if (st.isDirectory()) {
        const opaque = sys.lgetxattr(join(snap.upperDir, p), 'trusted.overlay.opaque')?.toString() === 'y';
        const inside = await walk(p, hidden || !existed || opaque);
        if (existed && !opaque && inside === 'mount points') {
          out.splice(at, 1); // a copied-up directory that holds nothing but mount points
          if (found === 'empty') found = 'mount points';
          continue;
        }
      }
      found = 'changed';
    }
    return found;
  };
  await walk('', false);
  return out;
}
