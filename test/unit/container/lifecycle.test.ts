import { describe, expect, it } from 'vitest';
import { parseSince } from '../../../src/container/logs.js';
import { parseSignal } from '../../../src/container/kill.js';
import { statusText } from '../../../src/container/list.js';
import { oomCounterFile } from '../../../src/container/detached.js';
import type { Cgroup } from '../../../src/runtime/cgroups/index.js';

describe('logs --since', () => {
  const now = Date.parse('2026-12-03T12:00:00Z');
  it('accepts durations, Unix seconds and RFC 3339', () => {
    expect(parseSince('10m', now)).toBe(now - 600_000);
    expect(parseSince('1.5h', now)).toBe(now - 5_400_000);
    expect(parseSince('1700000000', now)).toBe(1_700_000_000_000);
    expect(parseSince('2026-12-03T11:00:00Z', now)).toBe(now - 3_600_000);
    expect(() => parseSince('yesterday', now)).toThrow(/invalid --since "yesterday"/);
  });
});

describe('kill -s', () => {
  it('takes names with or without SIG, and numbers', () => {
    expect(parseSignal('KILL')).toBe('SIGKILL');
    expect(parseSignal('sigterm')).toBe('SIGTERM');
    expect(parseSignal('15')).toBe(15);
    expect(() => parseSignal('NOPE')).toThrow(/invalid signal "NOPE"/);
    expect(() => parseSignal('0')).toThrow(/invalid signal/);
  });
});

describe('ps status', () => {
  const base = { id: 'x', name: 'n', image: 'i', imageId: 'sha256:x', created: '2026-12-03T11:00:00Z' };
  const now = Date.parse('2026-12-03T12:00:00Z');
  it('reads like docker', () => {
    expect(statusText({ ...base, state: 'created' }, now)).toBe('Created');
    expect(statusText({ ...base, state: 'running', started: '2026-12-03T11:59:30Z' }, now)).toBe('Up 30 seconds');
    expect(statusText({ ...base, state: 'paused', started: '2026-12-03T11:00:00Z' }, now)).toBe('Up About an hour (Paused)'); // go-units HumanDuration, as docker
    expect(statusText({ ...base, state: 'exited', exitCode: 137, finished: '2026-12-03T11:58:00Z' }, now)).toBe('Exited (137) 2 minutes ago');
  });
});

describe('OOM counter file', () => {
  const cg = (version: 1 | 2, paths: string[]) => ({ version, paths }) as unknown as Cgroup;
  it('is memory.events on v2 and the memory hierarchy\'s memory.oom_control on v1', () => {
    expect(oomCounterFile(cg(2, ['/sys/fs/cgroup/a/tspod/x']))).toBe('/sys/fs/cgroup/a/tspod/x/memory.events');
    expect(oomCounterFile(cg(1, ['/sys/fs/cgroup/cpu/tspod/x', '/sys/fs/cgroup/memory/p/tspod/x']))).toBe('/sys/fs/cgroup/memory/p/tspod/x/memory.oom_control');
    expect(oomCounterFile(cg(1, ['/sys/fs/cgroup/cpu/tspod/x']))).toBeUndefined();
  });
});
