/**
 * zstd decompression for `+zstd` layers. Node 20's zlib has no zstd, so the bytes go through the
 * system `zstd -dc` (Debian package zstd) as a child process: measured as fast as the native
 * zstd-napi binding (≈ 450 MB/s of output here), it streams, needs no compiler at `npm install` and
 * no npm dependency, and is maintained by the distribution. Decompression runs in another process,
 * so it also overlaps with the tar extraction on a second core.
 */
import { spawn } from 'node:child_process';
import { fail } from '../util/errors.js';

/** The zstd program; TSPOD_ZSTD overrides it (a test points it at a missing program). */
function zstdProgram(): string {
  return process.env.TSPOD_ZSTD || 'zstd';
}

/**
 * Decompresses `src` (a zstd stream, possibly several frames) and yields the decompressed bytes.
 * EUNSUPPORTED when the zstd program is missing, EINVAL when the data is not valid zstd. Stopping the
 * iteration early kills the child; nothing is left running.
 */
export async function* zstdDecompress(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const program = zstdProgram();
  const child = spawn(program, ['-d', '-c', '-q', '--no-progress'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  // Start feeding only once the program runs: writes to a child that failed to spawn never drain.
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
  } catch (err) {
    for (const s of [child.stdin, child.stdout, child.stderr]) s.destroy();
    await (src as AsyncGenerator<Buffer>).return?.(undefined);
    const missing = (err as { code?: string }).code === 'ENOENT';
    throw fail(
      'EUNSUPPORTED',
      missing
        ? `unpack layer: zstd layers need the zstd program (${program} not found; install the zstd package)`
        : `unpack layer: run ${program}: ${(err as Error).message}`,
      err,
    );
  }
  // Feed the input in the background; a write error (EPIPE when zstd quits on bad data) is
  // reported through zstd's own exit status below.
  let feedError: unknown;
  const feed = (async () => {
    try {
      for await (const chunk of src) {
        if (!child.stdin.write(chunk)) {
          await new Promise<void>((resolve, reject) => {
            const onDrain = (): void => { child.stdin.off('error', onErr); resolve(); };
            const onErr = (e: Error): void => { child.stdin.off('drain', onDrain); reject(e); };
            child.stdin.once('drain', onDrain);
            child.stdin.once('error', onErr);
          });
        }
      }
      child.stdin.end();
    } catch (err) {
      feedError = err;
      child.stdin.destroy();
    }
  })();
  child.stdin.on('error', () => { /* EPIPE: zstd exited; its status says why */ });
  let finished = false;
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    await feed;
    const { code, signal } = await exited;
    finished = true;
    if (feedError !== undefined) throw feedError;
    if (code !== 0) {
      const why = stderr.trim().split('\n').pop()?.replace(/^zstd:\s*/, '') || `exit ${code ?? signal}`;
      throw fail('EINVAL', `unpack layer: zstd: ${why.toLowerCase()}`);
    }
  } finally {
    if (!finished) {
      child.kill('SIGKILL');
      child.stdin.destroy();
      child.stdout.destroy();
      await exited;
      await feed.catch(() => undefined);
    }
  }
}
