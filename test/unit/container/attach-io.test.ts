// The attach wire's pure parts (src/container/attach-io.ts): frames, docker's detach-key syntax and the
// matcher that holds back a possible detach sequence.
import { describe, expect, it } from 'vitest';
import { DetachMatcher, FrameReader, frame, parseDetachKeys, resizeFrame, FRAME_RESIZE, FRAME_STDIN } from '../../../src/container/attach-io.js';

describe('attach frames', () => {
  it('uses docker\'s 8-byte header and reassembles frames split anywhere', () => {
    const f = Buffer.concat([frame(1, Buffer.from('hello')), frame(2, Buffer.from('')), frame(3, Buffer.from('137'))]);
    expect([...f.subarray(0, 8)]).toEqual([1, 0, 0, 0, 0, 0, 0, 5]);
    for (let cut = 0; cut <= f.length; cut++) {
      const got: [number, string][] = [];
      const r = new FrameReader();
      r.push(f.subarray(0, cut), (t, p) => got.push([t, p.toString()]));
      r.push(f.subarray(cut), (t, p) => got.push([t, p.toString()]));
      expect(got).toEqual([[1, 'hello'], [2, ''], [3, '137']]);
    }
  });

  it('encodes a window size as rows, cols (big endian)', () => {
    expect([...resizeFrame(40, 300)]).toEqual([FRAME_RESIZE, 0, 0, 0, 0, 0, 0, 4, 0, 40, 1, 44]);
    expect(frame(FRAME_STDIN, Buffer.from('x'))[0]).toBe(0);
  });
});

describe('detach keys', () => {
  it('parses docker\'s syntax', () => {
    expect([...parseDetachKeys('ctrl-p,ctrl-q')]).toEqual([16, 17]);
    expect([...parseDetachKeys('ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_')]).toEqual([0, 27, 28, 29, 30, 31]);
    expect([...parseDetachKeys('a,ctrl-A')]).toEqual([97, 1]);
    expect(parseDetachKeys('').length).toBe(0);
    expect(() => parseDetachKeys('ctrl-1')).toThrow(/invalid --detach-keys "ctrl-1": unknown key ctrl-1/);
    expect(() => parseDetachKeys('ab')).toThrow(/unknown key ab/);
  });

  it('holds back a started sequence, forwards it when it breaks, detaches when it completes', () => {
    const m = new DetachMatcher(parseDetachKeys('ctrl-p,ctrl-q'));
    expect(m.feed(Buffer.from('ab\x10'))).toEqual({ forward: Buffer.from('ab'), detach: false });
    expect(m.feed(Buffer.from('c'))).toEqual({ forward: Buffer.from('\x10c'), detach: false });
    expect(m.feed(Buffer.from('\x10\x10'))).toEqual({ forward: Buffer.from('\x10'), detach: false });
    expect(m.feed(Buffer.from('\x11rest'))).toEqual({ forward: Buffer.alloc(0), detach: true });
    const none = new DetachMatcher(Buffer.alloc(0));
    expect(none.feed(Buffer.from('\x10\x11'))).toEqual({ forward: Buffer.from('\x10\x11'), detach: false });
  });
});
