import { describe, expect, it } from 'vitest';
import { parseLimits } from '../../../src/container/run.js';

describe('parseLimits', () => {
  it('turns docker flags into cgroup limits', () => {
    expect(parseLimits({ memory: '64m', cpus: '0.5', pidsLimit: 20 })).toEqual({ memoryBytes: 64 * 1024 * 1024, cpuQuotaUs: 50000, cpuPeriodUs: 100000, pidsLimit: 20 });
    expect(parseLimits({ pidsLimit: -1 })).toEqual({});
  });
  it('refuses bad values, naming the flag', () => {
    expect(() => parseLimits({ memory: '1m' })).toThrow(/--memory "1m".*6MB/);
    expect(() => parseLimits({ memory: 'lots' })).toThrow(/--memory "lots"/);
    expect(() => parseLimits({ pidsLimit: -2 })).toThrow(/--pids-limit/);
    expect(parseLimits({ pidsLimit: 0, cpus: '0' })).toEqual({}); // docker: no limit
    expect(() => parseLimits({ cpus: 'x' })).toThrow(/--cpus "x"/);
  });
});
// overlayOptions moved to src/mount/overlay.ts: test/unit/mount/overlay.test.ts
