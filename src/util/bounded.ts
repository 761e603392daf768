/**
 * Runs `fn` on every item, at most `limit` at a time, in the items' order. After a failure no further
 * item is started; the first error is thrown once the running ones have ended. (Used by pull's layers
 * and by the CLI's multi-container commands, whose `fn` never throws.)
 */
export async function forEachBounded<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const i = next++;
      try {
        await fn(items[i]!, i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed !== undefined) throw failed;
}
