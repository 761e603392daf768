import { open, readdir, rename, rm } from 'node:fs/promises';
import { isErrno } from './errors.js';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** fsync a directory so a rename or unlink inside it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Write to `tmpPath`, fsync, rename over `path`, fsync the directory of `path`. A crash leaves the old file or the new one. */
export async function writeFileDurable(path: string, tmpPath: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const h = await open(tmpPath, 'wx', mode);
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
  await fsyncDir(dirname(path));
}

/** writeFileDurable with the temporary file beside the target (the directory must exist). */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  await writeFileDurable(path, tmp, data, mode);
}

/** The names in a directory, or none when it does not exist (yet). */
export async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
}
