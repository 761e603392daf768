/** Small file-system helpers for the store: durable atomic writes, directory fsync, random names. */
import { randomBytes } from 'node:crypto';
import { lstat, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isErrno } from '../src/util/errors.js';

export function randomSuffix(): string {
  return randomBytes(6).toString('hex');
}

/** fsync a directory so a rename or unlink inside it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Write to `tmpPath`, fsync, rename over `path`, fsync the directory of `path`. */
export async function writeFileDurable(path: string, tmpPath: string, data: string | Uint8Array): Promise<void> {
  const h = await open(tmpPath, 'wx', 0o644);
  try {
    await h.writeFile(data);
    await h.sync();
  } catch (err) {
    await h.close().catch(() => undefined);
    await rm(tmpPath, { force: true });
    throw err;
  }
  await h.close();
  try {
    await rename(tmpPath, path);
  } catch (err) {
    await rm(tmpPath, { force: true });
    throw err;
  }
  await fsyncDir(join(path, '..'));
}

/** Reads a JSON file, or undefined when it does not exist. */
export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    throw err;
  }
}

/**
 * Bytes of regular-file content under `dir`, each inode counted once (hard links), without
 * following symlinks.
 */
export async function diskUsage(dir: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    for (const ent of await readdir(d, { withFileTypes: true })) {
      const p = join(d, ent.name);
      if (ent.isDirectory()) await walk(p);
      else if (ent.isFile()) {
        const st = await lstat(p, { bigint: true });
        const key = `${st.dev}:${st.ino}`;
        if (st.nlink > 1n) {
          if (seen.has(key)) continue;
          seen.add(key);
        }
        total += Number(st.size);
      }
    }
  };
  await walk(dir);
  return total;
}
