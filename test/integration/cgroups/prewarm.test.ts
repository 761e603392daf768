/**
 * prewarmAttach (src/runtime/cgroups/detect.ts) writes this process's own pid into the cgroup it is
 * already in, to take the kernel's grace-period wait ahead of a container's placement: it must leave
 * this process exactly where it was, in every hierarchy, and never fail the caller.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { prewarmAttach } from '../../../src/runtime/cgroups/index.js';
import { gated, isRoot } from '../../support/caps.js';

const reason = isRoot();

describe.skipIf(reason)(gated('prewarmAttach', reason), () => {
  it('leaves this process in the cgroups it was in', async () => {
    const before = readFileSync('/proc/self/cgroup', 'utf8');
    expect(prewarmAttach()).toBeUndefined();
    prewarmAttach();
    await sleep(300);
    expect(readFileSync('/proc/self/cgroup', 'utf8')).toBe(before);
  });
});
