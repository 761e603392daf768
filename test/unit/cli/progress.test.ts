import { describe, expect, it } from 'vitest';
import { PullProgress, progressLine } from '../../../src/cli/progress.js';

const D1 = 'sha256:' + 'a'.repeat(64) as `sha256:${string}`;
const D2 = 'sha256:' + 'b'.repeat(64) as `sha256:${string}`;

function sink() {
  const out = { text: '', columns: 100, write(s: string) { this.text += s; return true; } };
  return out as typeof out & NodeJS.WritableStream;
}

describe('pull progress', () => {
  it('draws a bar with done/total', () => {
    expect(progressLine({ id: 'aaaaaaaaaaaa', status: 'downloading', done: 500_000, total: 1_000_000 }))
      .toBe(`aaaaaaaaaaaa: Downloading [${'='.repeat(19)}>${' '.repeat(20)}] 500kB/1MB`);
    expect(progressLine({ id: 'x', status: 'exists', done: 0, total: 0 })).toBe('x: Already exists');
  });

  it('on a terminal redraws one line per layer in place', () => {
    const out = sink();
    const p = new PullProgress({ out, tty: true, intervalMs: 0 });
    p.onEvent({ type: 'layer', digest: D1, status: 'waiting', total: 100 });
    p.onEvent({ type: 'layer', digest: D2, status: 'waiting', total: 100 });
    p.onEvent({ type: 'layer', digest: D1, status: 'downloading', done: 50, total: 100 });
    p.onEvent({ type: 'layer', digest: D2, status: 'exists' });
    p.finish();
    const frames = out.text.split('\x1b[2A');
    expect(frames.length).toBeGreaterThan(2);
    const last = frames.at(-1)!;
    expect(last).toContain('aaaaaaaaaaaa: Downloading [');
    expect(last).toContain('bbbbbbbbbbbb: Already exists');
  });

  it('without a terminal prints state changes only', () => {
    const out = sink();
    const p = new PullProgress({ out, tty: false });
    p.onEvent({ type: 'layer', digest: D1, status: 'waiting', total: 100 });
    for (let i = 1; i <= 10; i++) p.onEvent({ type: 'layer', digest: D1, status: 'downloading', done: i * 10, total: 100 });
    p.onEvent({ type: 'layer', digest: D1, status: 'extracting' });
    p.onEvent({ type: 'layer', digest: D1, status: 'done' });
    p.finish();
    expect(out.text).toBe('aaaaaaaaaaaa: Waiting\naaaaaaaaaaaa: Downloading 100B\naaaaaaaaaaaa: Extracting\naaaaaaaaaaaa: Pull complete\n');
  });
});
