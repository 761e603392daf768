/**
 * A disk cache of compiled seccomp programs. Compiling Docker's default profile for a container is
 * the largest piece of JavaScript on the run path (≈ 10–30 ms on these machines, more than the rest
 * of the engine's set-up together) and its result depends only on the profile, the capabilities,
 * the kernel release, the architecture and the compiler itself, so it is kept in a root-only folder
 * of the runroot (cleared at boot) and reused.
 *
 * The key is a sha256 over all of those; "the compiler itself" is the size and mtime of the module
 * file that holds this code (the CLI bundle, or dist/src), so every build starts a new cache. Each
 * entry carries the sha256 of its program as a trailer and is checked when read: a damaged or
 * truncated entry (a crash, a full disk) is never installed, it is compiled again and replaced.
 */
import { createHash, randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { arch, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SeccompProfile } from './profile.js';

const TRAILER = 32;
let codeStamp: string | undefined;

function compilerStamp(): string {
  if (codeStamp !== undefined) return codeStamp;
  try {
    const st = statSync(fileURLToPath(import.meta.url));
    codeStamp = `${st.size}-${st.mtimeMs}`;
  } catch {
    codeStamp = `unknown-${randomBytes(8).toString('hex')}`; // no stable identity: a cache per process only
  }
  return codeStamp;
}

/** The cache file of `profile` compiled for `caps` on this host and with this build. */
export function seccompCacheFile(dir: string, profile: SeccompProfile, caps: string[]): string {
  const key = createHash('sha256')
    .update(JSON.stringify({ v: 1, compiler: compilerStamp(), node: process.version, arch: arch(), kernel: release(), caps, profile }))
    .digest('hex');
  return join(dir, `${key}.bpf`);
}

/**
 * `compile()`'s program for (profile, caps), from the cache in `dir` when it holds a sound entry,
 * else compiled and stored (best effort: a cache that cannot be written costs only the compile).
 */
export async function cachedSeccompProgram(dir: string, profile: SeccompProfile, caps: string[], compile: () => Buffer): Promise<Buffer> {
  const file = seccompCacheFile(dir, profile, caps);
  try {
    const data = await readFile(file);
    if (data.length > TRAILER && (data.length - TRAILER) % 8 === 0) {
      const prog = data.subarray(0, data.length - TRAILER);
      if (createHash('sha256').update(prog).digest().equals(data.subarray(data.length - TRAILER))) return prog;
    }
  } catch {
    // absent (or unreadable): compile
  }
  const prog = compile();
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(tmp, Buffer.concat([prog, createHash('sha256').update(prog).digest()]), { mode: 0o600, flag: 'wx' });
    await rename(tmp, file);
  } catch {
    await rm(tmp, { force: true }).catch(() => undefined);
  }
  return prog;
}
