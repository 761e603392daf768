import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { forEachContainer } from '../../../src/cli/each.js';
import { fail } from '../../../src/util/errors.js';

describe('forEachContainer', () => {
  let out: string[];
  let err: string[];
  beforeEach(() => {
    out = [];
    err = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out.push(String(s)); return true; });
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => { err.push(String(s)); return true; });
    process.exitCode = undefined;
  });
  afterEach(() => {
    vi.restoreAllMocks();
    process.exitCode = undefined;
  });

  it('works on several at once, never more than the limit, and reports in the order given', async () => {
    let inFlight = 0;
    let most = 0;
    const finished: string[] = [];
    // Later references finish first: the report must still follow the arguments.
    const delays: Record<string, number> = { a: 40, b: 30, c: 20, d: 10, e: 5 };
    await forEachContainer(Object.keys(delays), async (ref) => {
      most = Math.max(most, ++inFlight);
      await sleep(delays[ref]);
      inFlight--;
      finished.push(ref);
    }, 3);
    expect(most).toBe(3);
    expect(finished[0]).toBe('c'); // c (20 ms) ends before a (40) and b (30), which started with it
    expect(out.join('')).toBe('a\nb\nc\nd\ne\n');
    expect(err).toEqual([]);
    expect(process.exitCode).toBeUndefined();
  });

  it('a failure is one line on stderr in its place, the others still run, and the exit status is 1', async () => {
    const seen: string[] = [];
    await forEachContainer(['x', 'missing', 'y'], async (ref) => {
      seen.push(ref);
      if (ref === 'missing') throw fail('ENOTFOUND', `no such container: ${ref}`);
    });
    expect(seen.sort()).toEqual(['missing', 'x', 'y']);
    expect(out.join('')).toBe('x\ny\n');
    expect(err).toEqual(['tspod: no such container: missing\n']);
    expect(process.exitCode).toBe(1);
  });
});
