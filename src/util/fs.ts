import { open, readdir, rename, rm, writeFile } from 'node:fs/promises';
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

/** fsync a file's data and inode (not its directory entry: see fsyncDir). */
export async function fsyncFile(path: string): Promise<void> {
  const h = await open(path, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * Write to `tmpPath`, fsync, rename over `path`, fsync the directory of `path`. A crash leaves the old file or the new one.
 * `syncFirst`: files of the same directory, already renamed into place without fsync (writeFileRenamed), that are
 * fsync'd alongside the temporary file, before the rename: the directory's fsync then makes their renames durable too,
 * so that a durable `path` never names a state whose companions were lost.
 */
export async function writeFileDurable(path: string, tmpPath: string, data: string | Uint8Array, mode = 0o644, syncFirst: string[] = []): Promise<void> {
  const h = await open(tmpPath, 'wx', mode);
  try {
    await Promise.all([h.writeFile(data).then(() => h.sync()), ...syncFirst.map(fsyncFile)]);
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
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644, syncFirst: string[] = []): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  await writeFileDurable(path, tmp, data, mode, syncFirst);
}

/**
 * Atomic without fsync: temporary file beside the target, then rename over it. A reader or a killed process
 * sees the old file or the new one; after a power loss the new one may be lost or empty, so a durable
 * write must follow (writeFileAtomic's `syncFirst`) before anything relies on it.
 */
export async function writeFileRenamed(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  await writeFile(tmp, data, { flag: 'wx', mode });
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
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
