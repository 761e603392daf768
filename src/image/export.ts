/**
 * export: a container's file system, flattened (its upper directory over the image's layers, as
 * the container sees it), as one plain tar (docker export). See mergedTar in src/unpack/diff.ts.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { mergedTar } from '../unpack/diff.js';
import { fail, messageOf, TspodError } from '../util/errors.js';

/** `dirs`: the container's upper dir, then the image's layer dirs, top first. */
export async function exportRootfs(dirs: string[], out: { output?: string; stream?: Writable; what?: string }): Promise<void> {
  const what = out.what ?? 'export';
  const src = () => Readable.from(mergedTar(dirs, { what }));
  if (out.output !== undefined) {
    const tmp = `${out.output}.tmp-${randomBytes(4).toString('hex')}`;
    try {
      await pipeline(src(), createWriteStream(tmp, { mode: 0o644 }));
      await rename(tmp, out.output);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      if (err instanceof TspodError) throw err;
      throw fail('ESYS', `${what} to ${out.output}: ${messageOf(err)}`, err);
    }
  } else if (out.stream) {
    await pipeline(src(), out.stream, { end: false });
  } else {
    throw fail('EINVAL', `${what}: no output`);
  }
}
