import { createHash, type Hash } from 'node:crypto';
import { fail } from './errors.js';
import type { Digest } from '../oci/types.js';

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** True for a well-formed "sha256:<64 lowercase hex>" digest; tspod supports sha256 only. */
export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

/** Validates a digest and returns its hex part; throws EINVAL naming the digest otherwise. */
export function digestHex(digest: string): string {
  if (!isDigest(digest)) throw fail('EINVAL', `invalid digest "${digest}": want sha256:<64 hex>`);
  return digest.slice('sha256:'.length);
}

export function sha256(data: string | Uint8Array): Digest {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

export function newHash(): Hash {
  return createHash('sha256');
}

export function digestOf(hash: Hash): Digest {
  return 'sha256:' + hash.digest('hex');
}

/**
 * chainID per the OCI image spec (config.md#layer-chainid):
 * ChainID(L0) = DiffID(L0); ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)).
 */
export function chainIds(diffIds: Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    out.push(out.length === 0 ? d : sha256(out[out.length - 1] + ' ' + d));
  }
  return out;
}
