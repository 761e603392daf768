import { describe, expect, it } from 'vitest';
import { splitAtFirstPositional } from '../../../src/cli/argv.js';

const flags = { rm: { type: 'boolean' as const }, name: { type: 'option' as const }, env: { char: 'e', type: 'option' as const }, interactive: { char: 'i', type: 'boolean' as const } };

describe('splitAtFirstPositional', () => {
  it('keeps everything after the image as the command, even flags', () => {
    expect(splitAtFirstPositional(['--rm', 'alpine', 'sh', '-c', 'echo --rm'], flags)).toEqual({ head: ['--rm', 'alpine'], rest: ['sh', '-c', 'echo --rm'] });
  });
  it('skips the values of value-taking flags, in every spelling', () => {
    expect(splitAtFirstPositional(['--name', 'x', '-e', 'A=1', '--env=B=2', '-ie', 'C=3', 'img', 'ls'], flags))
      .toEqual({ head: ['--name', 'x', '-e', 'A=1', '--env=B=2', '-ie', 'C=3', 'img'], rest: ['ls'] });
  });
  it('honours -- before the image', () => {
    expect(splitAtFirstPositional(['--rm', '--', '-weird', 'a'], flags)).toEqual({ head: ['--rm', '-weird'], rest: ['a'] });
  });
  it('returns everything as head when there is no image', () => {
    expect(splitAtFirstPositional(['--rm'], flags)).toEqual({ head: ['--rm'], rest: [] });
  });
});
