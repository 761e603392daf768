import { open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { closeSync, fsync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { isErrno } from './errors.js';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** fsync a directory so a rename or unlink inside it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  await fsyncPath(dir);
}

/** fsync a file's data and inode (not its directory entry: see fsyncDir). */
export async function fsyncFile(path: string): Promise<void> {
  await fsyncPath(path);
}

/**
 * Small writes: the open, write, close and rename calls around an fsync are made synchronously. Each costs µs
 * (page cache and metadata), where each fs.promises call costs a thread-pool round trip (≈ 0.1–1 ms on a busy
 * host, eight of them per durable write); only the fsyncs, which wait for the disk, go to the pool. Larger
 * data is written through the pool, so that a slow write never blocks the event loop.
 */
const SYNC_WRITE_MAX = 256 * 1024;

/** open (sync) → fsync (pool) → close (sync). */
async function fsyncPath(path: string): Promise<void> {
  const fd = openSync(path, 'r');
  try {
    await new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));
  } finally {
    closeSync(fd);
  }
}

/**
 * Write to `tmpPath`, fsync, rename over `path`, fsync the directory of `path`. A crash leaves the old file or the new one.
 * `syncFirst`: files of the same directory, already renamed into place without fsync (writeFileRenamed), that are
 * fsync'd alongside the temporary file, before the rename: the directory's fsync then makes their renames durable too,
 * so that a durable `path` never names a state whose companions were lost.
 */
export async function writeFileDurable(path: string, tmpPath: string, data: string | Uint8Array, mode = 0o644, syncFirst: string[] = []): Promise<void> {
  const big = (typeof data === 'string' ? data.length * 3 : data.byteLength) > SYNC_WRITE_MAX;
  if (big) return writeFileDurableAsync(path, tmpPath, data, mode, syncFirst);
  const fd = openSync(tmpPath, 'wx', mode);
  try {
    writeFileSync(fd, data);
    // allSettled: the fd stays open until its fsync is over, whatever a companion's fsync does.
    const done = await Promise.allSettled([new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve()))), ...syncFirst.map(fsyncFile)]);
    const failed = done.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (err) {
    closeSync(fd);
    rmSync(tmpPath, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmpPath, path);
  } catch (err) {
    rmSync(tmpPath, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
}

/** writeFileDurable of large data: every step through the pool. */
async function writeFileDurableAsync(path: string, tmpPath: string, data: string | Uint8Array, mode: number, syncFirst: string[]): Promise<void> {
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
 * write must follow (writeFileAtomic's `syncFirst`) before anything relies on it. Small data synchronously
 * (see SYNC_WRITE_MAX).
 */
export async function writeFileRenamed(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  if ((typeof data === 'string' ? data.length * 3 : data.byteLength) > SYNC_WRITE_MAX) await writeFile(tmp, data, { flag: 'wx', mode });
  else writeFileSync(tmp, data, { flag: 'wx', mode });
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
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
