import { describe, expect, it } from 'vitest';
import { overlayOptions, parseLimits } from '../../../src/container/run.js';

describe('parseLimits', () => {
  it('turns docker flags into cgroup limits', () => {
    expect(parseLimits({ memory: '64m', cpus: '0.5', pidsLimit: 20 })).toEqual({ memoryBytes: 64 * 1024 * 1024, cpuQuotaUs: 50000, cpuPeriodUs: 100000, pidsLimit: 20 });
    expect(parseLimits({ pidsLimit: -1 })).toEqual({});
  });
  it('refuses bad values, naming the flag', () => {
    expect(() => parseLimits({ memory: '1m' })).toThrow(/--memory "1m".*6MB/);
    expect(() => parseLimits({ memory: 'lots' })).toThrow(/--memory "lots"/);
    expect(() => parseLimits({ pidsLimit: 0 })).toThrow(/--pids-limit/);
    expect(() => parseLimits({ cpus: 'x' })).toThrow(/--cpus "x"/);
  });
});

describe('overlayOptions', () => {
  it('gives lowerdirs relative to the store, top first, and absolute upper/work', () => {
    expect(overlayOptions('/s', ['/s/layers/b/diff', '/s/layers/a/diff'], '/s/snap/1/upper', '/s/snap/1/work', '/c'))
      .toEqual({ data: 'lowerdir=layers/b/diff:layers/a/diff,upperdir=/s/snap/1/upper,workdir=/s/snap/1/work', chdir: '/s' });
  });
  it('refuses paths that would break the option string', () => {
    expect(() => overlayOptions('/s', ['/s/a,b'], '/u', '/w', '/c')).toThrow(/comma, colon/);
  });
  it('refuses more layers than fit in one page, saying how many', () => {
    const lowers = Array.from({ length: 80 }, (_, i) => `/s/layers/${'f'.repeat(60)}${i}/diff`);
    expect(() => overlayOptions('/s', lowers, '/u', '/w', '/c')).toThrow(/80 layers/);
  });
});
