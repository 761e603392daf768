// The compiled-seccomp cache (src/runtime/seccomp/cache.ts): a hit returns exactly what a fresh compile
// returns and does not compile; the key separates capabilities and profiles; a damaged entry is never
// returned but compiled again and replaced; an unwritable cache still yields the program.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cachedSeccompProgram, seccompCacheFile } from '../../../src/runtime/seccomp/cache.js';
import { DEFAULT_SECCOMP_PROFILE, seccompProgram, type SeccompProfile } from '../../../src/runtime/seccomp/index.js';

const CAPS = ['CAP_CHOWN', 'CAP_KILL', 'CAP_SETUID', 'CAP_SETGID'];

describe('seccomp program cache', () => {
  let dir: string;
  beforeEach(() => {
    dir = join(mkdtempSync(join(tmpdir(), 'tspod-seccomp-cache-')), 'cache');
  });
  afterEach(() => {
    rmSync(join(dir, '..'), { recursive: true, force: true });
  });

  const counting = (profile: SeccompProfile, caps: string[]) => {
    const c = { n: 0, compile: () => { c.n++; return seccompProgram(profile, caps); } };
    return c;
  };

  it('stores on a miss (root-only) and serves the same bytes on a hit without compiling', async () => {
    const fresh = seccompProgram(DEFAULT_SECCOMP_PROFILE, CAPS);
    const a = counting(DEFAULT_SECCOMP_PROFILE, CAPS);
    expect((await cachedSeccompProgram(dir, DEFAULT_SECCOMP_PROFILE, CAPS, a.compile)).equals(fresh)).toBe(true);
    expect(a.n).toBe(1);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const [entry] = readdirSync(dir);
    expect(entry).toMatch(/^[0-9a-f]{64}\.bpf$/);
    expect(statSync(join(dir, entry!)).mode & 0o777).toBe(0o600);
    const b = counting(DEFAULT_SECCOMP_PROFILE, CAPS);
    expect((await cachedSeccompProgram(dir, DEFAULT_SECCOMP_PROFILE, CAPS, b.compile)).equals(fresh)).toBe(true);
    expect(b.n).toBe(0);
  });

  it('keys on the capabilities and on the profile', async () => {
    const more = [...CAPS, 'CAP_SYS_ADMIN'];
    expect(seccompCacheFile(dir, DEFAULT_SECCOMP_PROFILE, CAPS)).not.toBe(seccompCacheFile(dir, DEFAULT_SECCOMP_PROFILE, more));
    const other: SeccompProfile = { ...DEFAULT_SECCOMP_PROFILE, defaultAction: 'SCMP_ACT_ALLOW' } as SeccompProfile;
    expect(seccompCacheFile(dir, other, CAPS)).not.toBe(seccompCacheFile(dir, DEFAULT_SECCOMP_PROFILE, CAPS));
    const withAdmin = await cachedSeccompProgram(dir, DEFAULT_SECCOMP_PROFILE, more, () => seccompProgram(DEFAULT_SECCOMP_PROFILE, more));
    const plain = await cachedSeccompProgram(dir, DEFAULT_SECCOMP_PROFILE, CAPS, () => seccompProgram(DEFAULT_SECCOMP_PROFILE, CAPS));
    expect(withAdmin.equals(plain)).toBe(false); // CAP_SYS_ADMIN opens mount & co.
    expect(withAdmin.equals(seccompProgram(DEFAULT_SECCOMP_PROFILE, more))).toBe(true);
    expect(readdirSync(dir)).toHaveLength(2);
  });

  it('never serves a damaged entry: truncated, flipped or empty entries are compiled again and replaced', async () => {
    const fresh = seccompProgram(DEFAULT_SECCOMP_PROFILE, CAPS);
    await cachedSeccompProgram(dir, DEFAULT_SECCOMP_PROFILE, CAPS, () => fresh);
    const file = seccompCacheFile(dir, DEFAULT_SECCOMP_PROFILE, CAPS);
    const good = readFileSync(file);
    const damaged = [
      good.subarray(0, good.length - 8), // truncated by one instruction
      Buffer.concat([good.subarray(0, 8), Buffer.from([good[8]! ^ 1]), good.subarray(9)]), // one bit of the program
      Buffer.alloc(0),
    ];
    for (const bad of damaged) {
      writeFileSync(file, bad);
      const c = counting(DEFAULT_SECCOMP_PROFILE, CAPS);
      expect((await cachedSeccompProgram(dir, DEFAULT_SECCOMP_PROFILE, CAPS, c.compile)).equals(fresh)).toBe(true);
      expect(c.n).toBe(1);
      expect(readFileSync(file).equals(good)).toBe(true);
    }
  });

  it('a cache folder that cannot be made still yields the compiled program', async () => {
    const blocker = join(dir, '..', 'file');
    writeFileSync(blocker, '');
    const c = counting(DEFAULT_SECCOMP_PROFILE, CAPS);
    const prog = await cachedSeccompProgram(join(blocker, 'sub'), DEFAULT_SECCOMP_PROFILE, CAPS, c.compile);
    expect(prog.equals(seccompProgram(DEFAULT_SECCOMP_PROFILE, CAPS))).toBe(true);
    expect(c.n).toBe(1);
  });
});
