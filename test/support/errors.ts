// The error of a promise that must reject with tspod's own error type (TspodError: a code and a one-line message).
import { expect } from 'vitest';
import { TspodError } from '../../src/util/errors.js';

/** Awaits `p`, expects it to reject with a TspodError, and returns that error for further checks. */
export async function rejection(p: Promise<unknown>): Promise<TspodError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TspodError);
    return err as TspodError;
  }
  throw new Error('expected a rejection');
}
