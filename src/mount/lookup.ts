/**
 * Reads a file of an image the way OverlayFS would present it, straight from the unpacked layer
 * directories (top layer first), without mounting anything: the first layer that has the path
 * wins, a whiteout (char device 0:0) or an opaque parent directory hides everything below.
 * Used for the few files the engine needs before the container exists (/etc/passwd, /etc/group).
 */
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sys } from '../sys/index.js';
import { isErrno } from '../util/errors.js';

/** Structurally a runtime `ImageFiles`. */
export function layerFiles(lowerDirs: string[], sys: Sys): { read(path: string): Promise<Buffer | undefined> } {
  return {
    async read(path: string): Promise<Buffer | undefined> {
      const parts = path.split('/').filter(Boolean);
      for (const dir of lowerDirs) {
        const hit = await lookupInLayer(dir, parts, sys);
        if (hit === 'hidden') return undefined;
        if (hit !== 'absent') return readFile(hit);
      }
      return undefined;
    },
  };
}

async function lookupInLayer(dir: string, parts: string[], sys: Sys): Promise<string | 'absent' | 'hidden'> {
  let cur = dir;
  for (let i = 0; i < parts.length; i++) {
    cur = join(cur, parts[i]!);
    let st;
    try {
      st = await lstat(cur);
    } catch (err) {
      if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return 'absent';
      throw err;
    }
    if (st.isCharacterDevice() && st.rdev === 0) return 'hidden';
    const last = i === parts.length - 1;
    if (last) return st.isFile() ? cur : 'hidden';
    // A symlinked or non-directory parent: resolving it would need the merged view; treat as absent here.
    if (!st.isDirectory()) return 'absent';
    if (sys.lgetxattr(cur, 'trusted.overlay.opaque')?.toString() === 'y') {
      // Opaque: lower layers are hidden below this directory; only this layer can still have the file.
      const rest = await lookupInLayer(cur, parts.slice(i + 1), sys);
      return rest === 'absent' ? 'hidden' : rest;
    }
  }
  return 'absent';
}
