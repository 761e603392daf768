import { messageOf } from '../util/errors.js';
import { forEachBounded } from '../util/bounded.js';

/**
 * How many containers rm, stop, kill, pause and unpause work on at once. Docker's CLI sends these
 * requests in parallel; here the CLI does the work itself, and most of it is waiting (a killed init
 * being reaped, a stop timeout, the kernel's cgroup removal), so a few at a time go much faster than
 * one by one without crowding the libuv thread pool.
 */
export const PARALLEL_CONTAINERS = 8;

/**
 * Runs `op` on every reference, at most `limit` at a time, and reports in the order given, as docker
 * does: the reference on stdout once it succeeded, else one line on stderr. Each outcome is printed as
 * soon as it and all before it are known. Sets exit status 1 when any failed. `op` must be safe to run
 * concurrently for different containers (each holds its container's lock), and for the same one (the
 * second waits for the lock, then finds what the first left).
 */
export async function forEachContainer(refs: string[], op: (ref: string) => Promise<unknown>, limit = PARALLEL_CONTAINERS): Promise<void> {
  const errors: (string | null | undefined)[] = refs.map(() => undefined); // undefined: not done; null: succeeded
  let reported = 0;
  let failed = false;
  await forEachBounded(refs, limit, async (ref, i) => {
    errors[i] = await op(ref).then(() => null, (err: unknown) => messageOf(err));
    for (; reported < refs.length && errors[reported] !== undefined; reported++) {
      const error = errors[reported];
      if (error === null) {
        process.stdout.write(refs[reported] + '\n');
      } else {
        failed = true;
        process.stderr.write(`tspod: ${error}\n`);
      }
    }
  });
  if (failed) process.exitCode = 1;
}
