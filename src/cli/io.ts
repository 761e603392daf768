import { createReadStream, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { fail, isErrno, messageOf } from '../util/errors.js';

/** A file to read (checked up front so a bad path is one clear line), or standard input when `path` is undefined. */
export async function openInput(path: string | undefined, what: string): Promise<Readable> {
  if (path === undefined) {
    if (process.stdin.isTTY) throw fail('EINVAL', `${what}: no input: give a file or pipe an archive into standard input`);
    return process.stdin;
  }
  let st: Stats;
  try {
    st = await stat(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw fail('ENOTFOUND', `${what}: ${path}: no such file`, err);
    throw fail('ESYS', `${what}: ${path}: ${messageOf(err)}`, err);
  }
  if (!st.isFile()) throw fail('EINVAL', `${what}: ${path} is not a file`);
  return createReadStream(path, { highWaterMark: 1 << 20 });
}
